//! The BPF program of one attach point: pass the run's gate (`bpf::gate`), fill a record in a per-CPU scratch slot (the record
//! outgrows the 512-byte stack once a string is captured; a program that only runs kernel
//! clauses fills just the fields they read), evaluate the kernel-side filter,
//! read the captured strings and bytes, and submit the record with `bpf_ringbuf_output`,
//! counting a failure in the drop counter.
//!
//! The stack slots it uses are `frame`'s.
//!
//! Registers: R6 = the context (tracepoint record, or pt_regs for uprobes and perf events),
//! R7 = the record, R8 = the probe index (programs on raw_syscalls, which serve many probes).

use super::aggregate::AggregationMaps;
use super::frame::{ARG_SCRATCH, DROP_KEY_SLOT, KEY_SLOT};
use super::predicate::{self, Scope};
use super::threadvars::ThreadVars;
use super::usdt_arg::load_arg;
use crate::backend::linux::bpf::drops::DropSlots;
use crate::backend::linux::bpf::insn::{
    AluOp, Asm, AsmError, Cond, Helper, Insn, Label, MapRef, Reg, Size, Src,
};
use crate::backend::linux::bpf::{follow, gate};
use crate::backend::linux::d::ast::Expr;
use crate::backend::linux::firing::{Zone, MAX_ARGS};
use crate::backend::linux::plan::{
    regs, ArgLoad, DerivedRead, HeaderReads, KernelClause, ShadowStore,
};
use crate::backend::linux::record::{self, arg_offset, Layout};
use crate::inspect::task::{MemberRead, TaskLayout};

/// How the program learns which probe fired.
pub enum ProbeIndex<'a> {
    /// One probe per program.
    Fixed(u32),
    /// raw_syscalls: the syscall number at `id_offset` in the record indexes `numbers`, an
    /// array of u32 holding probe index + 1 (0: not traced). `filters` holds the kernel
    /// filter of each probe that has one.
    BySyscall {
        id_offset: u16,
        numbers: MapRef,
        /// Entries of `numbers`: syscall numbers at or above are not traced.
        slots: u32,
        filters: Vec<(u32, &'a [Expr])>,
        /// Some probe has clauses in user space, so records are emitted.
        emits: bool,
        /// How many probes the program serves.
        probes: usize,
    },
}

/// Everything one program needs.
pub struct ProgramSpec<'a> {
    pub index: ProbeIndex<'a>,
    pub args: &'a [ArgLoad],
    /// Offset of a byte of the context that must be non-zero, else the probe did not fire.
    pub guard: Option<u16>,
    pub layout: &'a Layout,
    /// The derived reads, one per `layout.derived` slot.
    pub derived: &'a [DerivedRead],
    /// Pointers to keep for a later probe (`Captures::shadow_stores`).
    pub shadow_stores: &'a [ShadowStore],
    /// For a fixed probe: the predicates to OR (None: emit every firing).
    pub filter: Option<&'a [Expr]>,
    /// The clauses run in the kernel, by probe index (one entry for a fixed probe).
    pub kernel_clauses: Vec<(u32, &'a [KernelClause])>,
    pub maps: &'a SharedMaps,
    /// The plan's zones, whose membership the header records.
    pub zones: &'a [Zone],
    /// Whether the program fires only in the followed set (when the run follows a tree):
    /// every program but tick-N's, which marks time whatever runs.
    pub in_followed_set: bool,
    /// Where the process state lives in the kernel, for a record with a process block.
    pub task: Option<&'a TaskLayout>,
    /// How to read each of the probe's `curthread->…` members, in `layout` order.
    pub thread_members: Vec<&'a MemberRead>,
}

/// The maps every program of a run may use.
pub struct SharedMaps {
    pub aggregations: AggregationMaps,
    pub vars: ThreadVars,
    /// Per-thread pointers of `Plan::shadow_vars`.
    pub shadows: Vec<MapRef>,
    /// The per-CPU slot a record is built in.
    pub scratch: MapRef,
    pub ring: MapRef,
    /// The ring buffer's data size in bytes.
    pub ring_size: usize,
    pub drops: DropSlots,
    /// Checked first: while it is closed the program does nothing.
    pub gate: MapRef,
    /// The followed set (`bpf::follow`), checked next when the run follows a tree.
    pub followed: Option<MapRef>,
    /// The `cpu` option: programs on any other CPU do nothing.
    pub cpu: Option<u32>,
}

/// Assembles the program.
pub fn build(spec: &ProgramSpec<'_>) -> Result<Vec<Insn>, AsmError> {
    let mut asm = Asm::new();
    // A fixed probe whose clauses all run in the kernel, or whose predicates can never hold,
    // emits no records.
    let emits = match &spec.index {
        ProbeIndex::Fixed(_) => !spec.filter.is_some_and(<[Expr]>::is_empty),
        ProbeIndex::BySyscall { emits, .. } => *emits,
    };
    if !emits && spec.kernel_clauses.is_empty() {
        // Nothing to do: the program only enables the probe (and its semaphore).
        asm.mov64_imm(Reg::R0, 0).exit();
        return asm.finish();
    }
    let out = asm.label();
    asm.mov64_reg(Reg::R6, Reg::R1);
    gate::emit_check(&mut asm, spec.maps.gate, KEY_SLOT, out);
    if let Some(cpu) = spec.maps.cpu {
        asm.call(Helper::GetSmpProcessorId)
            .jmp_if(Cond::Ne, Reg::R0, Src::Imm(cpu as i32), out);
    }
    if let Some(followed) = spec.maps.followed.filter(|_| spec.in_followed_set) {
        follow::emit_check(&mut asm, followed, KEY_SLOT, out);
    }
    if let Some(offset) = spec.guard {
        asm.ldx(Size::B, Reg::R1, Reg::R6, offset as i16).jmp_if(
            Cond::Eq,
            Reg::R1,
            Src::Imm(0),
            out,
        );
    }
    lookup_zero_key(&mut asm, spec.maps.scratch, out);
    asm.mov64_reg(Reg::R7, Reg::R0);
    probe_index(&mut asm, &spec.index, out);
    let reads = if emits {
        HeaderReads::ALL
    } else {
        spec.kernel_clauses
            .iter()
            .map(|(_, clauses)| HeaderReads::of(clauses))
            .fold(HeaderReads::default(), HeaderReads::union)
    };
    header(&mut asm, reads);
    // zonename reads as HeaderReads::all.
    if reads.all {
        zone_membership(&mut asm, spec.zones);
    }
    if reads.args {
        arguments(&mut asm, spec.args);
    }
    kernel_clauses(&mut asm, spec);
    if emits {
        match &spec.index {
            ProbeIndex::Fixed(_) => {
                if let Some(filter) = spec.filter {
                    any_true(&mut asm, filter, spec.zones, out);
                }
            }
            ProbeIndex::BySyscall {
                filters, probes, ..
            } => match filters.first() {
                Some((_, shared)) if same_for_all(filters, *probes) => {
                    any_true(&mut asm, shared, spec.zones, out)
                }
                _ => per_probe_filters(&mut asm, filters, spec.zones, out),
            },
        }
        if let (Some(at), Some(task)) = (spec.layout.process, spec.task) {
            super::process::emit(&mut asm, task, at, spec.layout.process_full);
        }
        if let (Some(at), Some(task)) = (spec.layout.cwd, spec.task) {
            super::process::emit_cwd(&mut asm, task, at);
        }
        for (read, &at) in spec.thread_members.iter().zip(&spec.layout.thread_members) {
            super::process::emit_member(&mut asm, read, at);
        }
        captures(&mut asm, spec.layout);
        stacks(&mut asm, spec.layout);
        let shadows = &spec.maps.shadows;
        for (read, slot) in spec.derived.iter().zip(&spec.layout.derived) {
            super::derived::emit(&mut asm, read, slot, shadows);
        }
        let scope = Scope {
            zones: spec.zones,
            vars: &spec.maps.vars.names,
        };
        super::derived::emit_shadow_stores(
            &mut asm,
            spec.shadow_stores,
            &spec.layout.store_scratch,
            shadows,
            scope,
        );
        submit(&mut asm, spec, out);
    }
    asm.bind(out).mov64_imm(Reg::R0, 0).exit();
    asm.finish()
}

/// The kernel clauses of the probe that fired: directly for a fixed probe, or when every
/// probe of a raw_syscalls program has the same ones (`syscall:::entry { @[probefunc] =
/// count(); }`); else by R8.
fn kernel_clauses(asm: &mut Asm, spec: &ProgramSpec<'_>) {
    let shared = match spec.index {
        ProbeIndex::Fixed(_) => true,
        ProbeIndex::BySyscall { probes, .. } => same_for_all(&spec.kernel_clauses, probes),
    };
    let maps = spec.maps;
    if shared {
        if let Some((_, clauses)) = spec.kernel_clauses.first() {
            maps.aggregations
                .emit_clauses(asm, clauses, &maps.vars, spec.zones);
        }
        return;
    }
    for (index, clauses) in &spec.kernel_clauses {
        let next = asm.label();
        asm.jmp_if(Cond::Ne, Reg::R8, Src::Imm(*index as i32), next);
        maps.aggregations
            .emit_clauses(asm, clauses, &maps.vars, spec.zones);
        asm.bind(next);
    }
}

/// Whether `per_probe` has an entry for each of `probes` probes, all equal.
fn same_for_all<T: PartialEq>(per_probe: &[(u32, &[T])], probes: usize) -> bool {
    per_probe.len() == probes && per_probe.windows(2).all(|w| w[0].1 == w[1].1)
}

/// R0 = &map[0], or goto `out` when the lookup fails.
fn lookup_zero_key(asm: &mut Asm, map: MapRef, out: Label) {
    asm.st(Size::W, Reg::R10, KEY_SLOT, 0)
        .ld_map(Reg::R1, map)
        .mov64_reg(Reg::R2, Reg::R10)
        .alu64(AluOp::Add, Reg::R2, Src::Imm(KEY_SLOT.into()))
        .call(Helper::MapLookupElem)
        .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), out);
}

fn probe_index(asm: &mut Asm, index: &ProbeIndex<'_>, out: Label) {
    match index {
        ProbeIndex::Fixed(i) => {
            asm.st(Size::W, Reg::R7, record::PROBE, *i as i32);
        }
        ProbeIndex::BySyscall {
            id_offset,
            numbers,
            slots,
            ..
        } => {
            // An unsigned compare also sends the −1 of an unknown syscall to `out`.
            asm.ldx(Size::DW, Reg::R1, Reg::R6, *id_offset as i16)
                .jmp_if(Cond::Ge, Reg::R1, Src::Imm(*slots as i32), out)
                .stx(Size::W, Reg::R10, KEY_SLOT, Reg::R1)
                .ld_map(Reg::R1, *numbers)
                .mov64_reg(Reg::R2, Reg::R10)
                .alu64(AluOp::Add, Reg::R2, Src::Imm(KEY_SLOT.into()))
                .call(Helper::MapLookupElem)
                .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), out)
                .ldx(Size::W, Reg::R8, Reg::R0, 0)
                .jmp_if(Cond::Eq, Reg::R8, Src::Imm(0), out)
                .alu64(AluOp::Sub, Reg::R8, Src::Imm(1))
                .stx(Size::W, Reg::R7, record::PROBE, Reg::R8);
        }
    }
}

/// cpu, timestamp, pid/tid, uid/gid, cgroup id and comm: those `reads` names (a record
/// that is emitted needs them all).
fn header(asm: &mut Asm, reads: HeaderReads) {
    if reads.cpu {
        asm.call(Helper::GetSmpProcessorId)
            .stx(Size::W, Reg::R7, record::CPU, Reg::R0);
    }
    if reads.timestamp {
        asm.call(Helper::KtimeGetNs)
            .stx(Size::DW, Reg::R7, record::TIMESTAMP, Reg::R0);
    }
    if reads.pid_tgid {
        asm.call(Helper::GetCurrentPidTgid)
            .stx(Size::W, Reg::R7, record::TID, Reg::R0)
            .alu64(AluOp::Rsh, Reg::R0, Src::Imm(32))
            .stx(Size::W, Reg::R7, record::PID, Reg::R0);
    }
    if reads.uid_gid {
        asm.call(Helper::GetCurrentUidGid)
            .stx(Size::W, Reg::R7, record::UID, Reg::R0)
            .alu64(AluOp::Rsh, Reg::R0, Src::Imm(32))
            .stx(Size::W, Reg::R7, record::GID, Reg::R0);
    }
    if reads.all {
        asm.call(Helper::GetCurrentCgroupId)
            .stx(Size::DW, Reg::R7, record::CGROUP, Reg::R0);
    }
    if reads.comm {
        asm.mov64_reg(Reg::R1, Reg::R7)
            .alu64(AluOp::Add, Reg::R1, Src::Imm(record::COMM.into()))
            .mov64_imm(Reg::R2, record::COMM_LEN as i32)
            .call(Helper::GetCurrentComm);
    }
}

/// The zone membership bits: set for a zone at the root (every thread is in it), and for
/// another when the thread's ancestor at the zone's level is the zone's cgroup, which holds
/// for the cgroup itself and every cgroup below it. Clobbers R0–R5.
///
/// `bpf_get_current_ancestor_cgroup_id` (helper 123) came in kernel 5.7; 6.4 offers it to
/// every program type, tracepoint, kprobe/uprobe and perf-event programs included.
fn zone_membership(asm: &mut Asm, zones: &[Zone]) {
    let everywhere = zones
        .iter()
        .enumerate()
        .filter(|(_, z)| z.level == 0)
        .fold(0u64, |bits, (i, _)| bits | 1 << i);
    asm.ld_imm64(Reg::R1, everywhere)
        .stx(Size::DW, Reg::R7, record::ZONES, Reg::R1);
    for (i, zone) in zones.iter().enumerate().filter(|(_, z)| z.level > 0) {
        let outside = asm.label();
        asm.mov64_imm(Reg::R1, zone.level as i32)
            .call(Helper::GetCurrentAncestorCgroupId)
            .ld_imm64(Reg::R1, zone.cgroup_id)
            .jmp_if(Cond::Ne, Reg::R0, Src::Reg(Reg::R1), outside)
            .ldx(Size::DW, Reg::R1, Reg::R7, record::ZONES)
            .ld_imm64(Reg::R2, 1 << i)
            .alu64(AluOp::Or, Reg::R1, Src::Reg(Reg::R2))
            .stx(Size::DW, Reg::R7, record::ZONES, Reg::R1)
            .bind(outside);
    }
}

/// arg0 … arg9; those the site does not provide are zeroed (the scratch slot keeps the last
/// record's bytes).
fn arguments(asm: &mut Asm, args: &[ArgLoad]) {
    for n in 0..MAX_ARGS {
        let at = arg_offset(n as u8);
        match args.get(n) {
            Some(arg) => {
                load_argument(asm, arg);
                asm.stx(Size::DW, Reg::R7, at, Reg::R1);
            }
            None => {
                asm.st(Size::DW, Reg::R7, at, 0);
            }
        }
    }
}

/// Leaves the argument in R1 (may clobber R0–R5).
fn load_argument(asm: &mut Asm, arg: &ArgLoad) {
    match arg {
        ArgLoad::Field {
            offset,
            size,
            signed,
        } => {
            let width = match size {
                1 => Size::B,
                2 => Size::H,
                4 => Size::W,
                _ => Size::DW,
            };
            asm.ldx(width, Reg::R1, Reg::R6, *offset as i16);
            let shift = 64 - 8 * i32::from(*size).min(8);
            if *signed && shift > 0 {
                asm.alu64(AluOp::Lsh, Reg::R1, Src::Imm(shift)).alu64(
                    AluOp::Arsh,
                    Reg::R1,
                    Src::Imm(shift),
                );
            }
        }
        ArgLoad::Register { offset } => {
            asm.ldx(Size::DW, Reg::R1, Reg::R6, *offset as i16);
        }
        ArgLoad::Usdt(usdt) => load_arg(asm, usdt, Reg::R6, Reg::R1, ARG_SCRATCH),
        ArgLoad::SampledPc { user } => {
            let (mode_offset, mask, user_value) = regs::user_mode_test();
            let keep = asm.label();
            asm.ldx(Size::DW, Reg::R1, Reg::R6, regs::PC as i16)
                .ldx(Size::DW, Reg::R2, Reg::R6, mode_offset as i16)
                .alu64(AluOp::And, Reg::R2, Src::Imm(mask));
            let in_wanted_mode = if *user { Cond::Eq } else { Cond::Ne };
            asm.jmp_if(in_wanted_mode, Reg::R2, Src::Imm(user_value), keep)
                .mov64_imm(Reg::R1, 0)
                .bind(keep);
        }
        ArgLoad::Constant(v) => {
            asm.ld_imm64(Reg::R1, *v);
        }
    }
}

/// Goes on when one of `filter` holds, else to `out`.
fn any_true(asm: &mut Asm, filter: &[Expr], zones: &[Zone], out: Label) {
    let pass = asm.label();
    for predicate in filter {
        predicate::branch(
            asm,
            predicate,
            predicate::Scope { zones, vars: &[] },
            pass,
            true,
        );
    }
    asm.jmp(out).bind(pass);
}

/// raw_syscalls: the filter of whichever probe R8 names.
fn per_probe_filters(asm: &mut Asm, filters: &[(u32, &[Expr])], zones: &[Zone], out: Label) {
    let done = asm.label();
    for (index, filter) in filters {
        if filter.is_empty() {
            asm.jmp_if(Cond::Eq, Reg::R8, Src::Imm(*index as i32), out);
            continue;
        }
        let next = asm.label();
        asm.jmp_if(Cond::Ne, Reg::R8, Src::Imm(*index as i32), next);
        any_true(asm, filter, zones, out);
        asm.jmp(done).bind(next);
    }
    asm.bind(done);
}

/// Reads each captured string and byte range from the user pointer in its argument.
fn captures(asm: &mut Asm, layout: &Layout) {
    let reads = layout
        .strings
        .iter()
        .map(|&(arg, at)| (arg, at, layout.strsize, Helper::ProbeReadUserStr))
        .chain(
            layout
                .bytes
                .iter()
                .map(|&(arg, size, at)| (arg, at, size as usize, Helper::ProbeReadUser)),
        );
    for (arg, at, size, helper) in reads {
        asm.mov64_reg(Reg::R1, Reg::R7)
            .alu64(AluOp::Add, Reg::R1, Src::Imm(at as i32 + 8))
            .mov64_imm(Reg::R2, size as i32)
            .ldx(Size::DW, Reg::R3, Reg::R7, arg_offset(arg))
            .call(helper)
            .stx(Size::DW, Reg::R7, at as i16, Reg::R0);
    }
}

/// `bpf_get_stack` flag: the user stack rather than the kernel's.
const BPF_F_USER_STACK: i32 = 1 << 8;

/// Records the kernel and user stacks the layout has slots for: the byte count (or a
/// negative error) at the slot, the addresses after it.
fn stacks(asm: &mut Asm, layout: &Layout) {
    let slots = [
        (layout.kernel_stack, record::KERNEL_FRAMES, 0),
        (layout.user_stack, record::USER_FRAMES, BPF_F_USER_STACK),
    ];
    for (at, frames, flags) in slots {
        let Some(at) = at else { continue };
        asm.mov64_reg(Reg::R1, Reg::R6)
            .mov64_reg(Reg::R2, Reg::R7)
            .alu64(AluOp::Add, Reg::R2, Src::Imm(at as i32 + 8))
            .mov64_imm(Reg::R3, (8 * frames) as i32)
            .mov64_imm(Reg::R4, flags)
            .call(Helper::GetStack)
            .stx(Size::DW, Reg::R7, at as i16, Reg::R0);
    }
}

/// `bpf_ringbuf_query` flag: bytes written and not yet consumed.
const BPF_RB_AVAIL_DATA: i32 = 0;
/// `bpf_ringbuf_output` flags.
const BPF_RB_NO_WAKEUP: i32 = 1;
const BPF_RB_FORCE_WAKEUP: i32 = 2;

/// Writes the record to the ring buffer without waking the reader, unless the buffer is a
/// quarter full. The engine reads at least every 100 ms, as dtrace reads its buffers at
/// switchrate; waking it for every record would make it trace itself in a loop when its own
/// system calls are traced (each wakeup's epoll_wait is another record).
fn submit(asm: &mut Asm, spec: &ProgramSpec<'_>, out: Label) {
    let quiet = asm.label();
    let threshold = (spec.maps.ring_size / 4).min(i32::MAX as usize) as i32;
    asm.ld_map(Reg::R1, spec.maps.ring)
        .mov64_imm(Reg::R2, BPF_RB_AVAIL_DATA)
        .call(Helper::RingbufQuery)
        .mov64_imm(Reg::R4, BPF_RB_NO_WAKEUP)
        .jmp_if(Cond::Lt, Reg::R0, Src::Imm(threshold), quiet)
        .mov64_imm(Reg::R4, BPF_RB_FORCE_WAKEUP)
        .bind(quiet)
        .ld_map(Reg::R1, spec.maps.ring)
        .mov64_reg(Reg::R2, Reg::R7)
        .mov64_imm(Reg::R3, spec.layout.size as i32)
        .call(Helper::RingbufOutput)
        .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), out);
    spec.maps
        .drops
        .emit_count_probe(asm, DROP_KEY_SLOT, Reg::R7, record::PROBE);
}
