//! Code generation for the Linux engine: one BPF program per attach point of a [`Plan`],
//! loaded and attached, all writing records to one ring buffer (see `record` for the layout
//! and [`decode`]). [`attach`] returns an [`Attached`] that owns every program, map, ring
//! buffer and link; dropping it detaches everything.
//!
//! Going live and stopping are each one step, for all programs together: every program
//! first checks the run's gate (`bpf::gate`), closed while the perf events are created and
//! enabled one by one, and opened once they all are; [`Attached::disarm`] closes it again, so
//! that the reader can drain what was recorded before the stop and nothing after it. An entry
//! probe is thus never live without its return probe.
//!
//! - `program`: the instructions of one program (record header, arguments, kernel clauses,
//!   filter, captured strings, output).
//! - `predicate`: kernel-side predicates as jumps.
//! - `aggregate`: kernel-side aggregations in per-CPU maps, and reading (or draining) them.
//! - `record`: the record layout and [`decode`].
//!
//! Minimum kernel: 5.8 (ring buffer, bpf_probe_read_user_str); uprobes with USDT semaphores
//! need 4.20, which 5.8 includes.

mod aggregate;
mod derived;
mod predicate;
mod program;
pub mod record;
pub mod usdt_arg;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use thiserror::Error;

use super::attach::perf::attach_cpu_clock;
use super::attach::tracepoint::attach_tracepoint;
use super::attach::uprobe::attach_uprobe;
use super::attach::{AttachError, Link};
use super::bpf::drops::DropCounter;
use super::bpf::gate::Gate;
use super::bpf::insn::{disassemble, AsmError, Insn};
use super::bpf::maps::{Map, MapError, MapType, Update};
use super::bpf::prog::{load, LoadError, ProgType};
use super::bpf::ringbuf::RingBuf;
use super::d::ast::Expr;
use super::options::Options;
use super::plan::{raw_id_offset, ArgLoad, KernelClause, Plan, PlanError, PlannedProbe, Site};
use aggregate::AggregationMaps;
pub use aggregate::KernelAggregationRead;
use program::{ProbeIndex, ProgramSpec};
pub use record::{decode, probe_of, DecodeError, Decoder, Layout};

/// Syscall numbers the raw_syscalls programs can map (x86_64 and aarch64 stay below 512).
const MAX_SYSCALL_NR: u32 = 1024;

/// Why the plan could not be turned into attached programs.
#[derive(Debug, Error)]
pub enum CodegenError {
    #[error("cannot create the {what} map")]
    Map {
        what: &'static str,
        #[source]
        source: MapError,
    },
    #[error("cannot assemble the program for {what}")]
    Asm {
        what: String,
        #[source]
        source: AsmError,
    },
    #[error("the kernel refused the program for {what}")]
    Load {
        what: String,
        #[source]
        source: LoadError,
    },
    #[error(transparent)]
    Attach(#[from] AttachError),
    #[error(transparent)]
    Plan(Box<PlanError>),
    #[error("a record of {what} would take {size} bytes; lower strsize (at most 32767 bytes per record)")]
    RecordTooLarge { what: String, size: usize },
}

/// One loaded and attached program. Fields drop in order: the link first, so the program is
/// detached before it is closed.
#[derive(Debug)]
struct AttachedProgram {
    link: Link,
    insns: Vec<Insn>,
    _program: super::bpf::prog::Program,
    _maps: Vec<Map>,
}

/// Everything a plan attached. Dropping it detaches every program and frees every map.
#[derive(Debug)]
pub struct Attached {
    programs: Vec<AttachedProgram>,
    scratch: Map,
    ring: RingBuf,
    drops: DropCounter,
    aggregations: AggregationMaps,
    gate: Gate,
}

impl Attached {
    /// The ring buffer every program writes to; decode its records with [`decode`].
    pub fn ring_buffer(&mut self) -> &mut RingBuf {
        &mut self.ring
    }

    /// Records lost because the ring buffer was full (report as `DropKind::Buffer`).
    pub fn dropped(&self) -> Result<u64, MapError> {
        self.drops.total()
    }

    /// Records lost because the ring buffer was full, by the index of the probe that fired.
    pub fn dropped_by_probe(&self) -> Result<Vec<u64>, MapError> {
        self.drops.by_probe()
    }

    /// Kernel aggregation updates lost because a map was full (report as
    /// `DropKind::Aggregation`).
    pub fn aggregation_drops(&self) -> Result<u64, MapError> {
        self.aggregations.dropped()
    }

    /// Kernel thread variables not set because their map was full (report as
    /// `DropKind::Dynamic`).
    pub fn thread_var_drops(&self) -> Result<u64, MapError> {
        self.aggregations.var_drops()
    }

    /// The aggregations kept in the kernel (`Plan::kernel_aggregations`), each with its
    /// entries, the CPUs combined; the executor merges them into what it prints. Drained
    /// aggregations give what was counted since the last call.
    pub fn read_kernel_aggregations(
        &mut self,
        plan: &Plan,
    ) -> Result<Vec<KernelAggregationRead>, MapError> {
        self.aggregations.read(plan)
    }

    /// Stops every program at once: from here on none records or counts anything, and what
    /// they wrote before can still be read.
    pub fn disarm(&self) -> Result<(), MapError> {
        self.gate.close()
    }

    /// Detaches and unloads every program, keeping the ring buffer and the maps: what the
    /// programs wrote can still be read, and nothing more arrives.
    pub fn detach(&mut self) {
        self.programs.clear();
    }

    /// Detaches everything without making the caller wait for the kernel to unregister the
    /// uprobes.
    ///
    /// The last close of a uprobe's perf event waits for RCU grace periods under a global
    /// mutex, about 100 ms per uprobe on a 6.x kernel, one after the other: three for pyflow,
    /// hundreds for `pid$target:::entry`. So a process forked for it (twice, so that it is
    /// nobody's zombie) keeps copies of the perf event fds, waits until dtk has closed its
    /// own, and then closes them as it exits, while dtk goes on to exit. The programs are
    /// disarmed (the gate) and the events disabled first, so that nothing more is recorded;
    /// the uprobes' breakpoints, and the USDT semaphores they raise, stay in the traced
    /// processes until that process is done, a grace period per uprobe later. Where the fork
    /// fails, the events are closed here.
    pub fn release(self) {
        for program in &self.programs {
            program.link.disable();
        }
        let keep: Vec<RawFd> = self
            .programs
            .iter()
            .flat_map(|p| p.link.event_fds())
            .collect();
        let last_close = close_after(keep);
        drop(self);
        // The closer sees the end of the pipe, and closes the last copies.
        drop(last_close);
    }

    /// What each program is attached to.
    pub fn attachments(&self) -> Vec<&str> {
        self.programs.iter().map(|p| p.link.describe()).collect()
    }

    /// The disassembly of every program, each under a comment naming its attach point
    /// (`dtk run --dump-bpf`).
    pub fn dump(&self) -> String {
        self.programs
            .iter()
            .map(|p| format!("; {}\n{}", p.link.describe(), disassemble(&p.insns)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Starts a grandchild process that holds copies of the fds in `keep` and closes them as
/// it exits, once the returned pipe end (and every other copy of it) is closed: the caller
/// closes its own copies of `keep` first, so that the slow last close falls to the
/// grandchild. The children call only async-signal-safe functions (fork, setsid,
/// close_range, read, _exit) on memory prepared before the fork, as a child of a
/// multithreaded process must. None (nothing started) when `keep` is empty or a pipe or fork
/// fails.
fn close_after(mut keep: Vec<RawFd>) -> Option<OwnedFd> {
    if keep.is_empty() {
        return None;
    }
    let mut pipe = [0; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    // SAFETY: both are new fds that nothing else owns.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
    keep.push(read_end.as_raw_fd());
    keep.sort_unstable();
    // SAFETY: see the function's doc: the children use only async-signal-safe calls, on
    // `keep` and `pipe` (allocated before the fork), and end with _exit; the parent only
    // waits for the first child, which exits at once.
    unsafe {
        let child = libc::fork();
        if child == 0 {
            if libc::fork() == 0 {
                // Out of the terminal's process group: a second Ctrl-C is not for it.
                libc::setsid();
                // Every other fd goes, among them the pipes a reader waits on to see dtk end.
                let mut from = 0u32;
                for &fd in &keep {
                    if fd as u32 > from {
                        libc::syscall(libc::SYS_close_range, from, fd as u32 - 1, 0);
                    }
                    from = fd as u32 + 1;
                }
                libc::syscall(libc::SYS_close_range, from, u32::MAX, 0);
                // Nothing is ever written: read returns at the end of the pipe.
                let mut byte = 0u8;
                while libc::read(pipe[0], (&mut byte as *mut u8).cast(), 1) < 0
                    && *libc::__errno_location() == libc::EINTR
                {}
            }
            libc::_exit(0);
        }
        if child < 0 {
            return None;
        }
        libc::waitpid(child, std::ptr::null_mut(), 0);
    }
    drop(read_end);
    Some(write_end)
}

/// Builds, loads and attaches a program for every kernel attach point of `plan`.
pub fn attach(plan: &Plan, options: &Options) -> Result<Attached, CodegenError> {
    let size = options.bufsize.clamp(4096, 1 << 30).next_power_of_two() as u32;
    let ring = RingBuf::create(size, "dtk_events").map_err(|source| CodegenError::Map {
        what: "ring buffer",
        source,
    })?;
    let probes = u32::try_from(plan.probes.len()).unwrap_or(u32::MAX - 1);
    let drops =
        DropCounter::per_probe("dtk_drops", probes).map_err(|source| CodegenError::Map {
            what: "drop counter",
            source,
        })?;
    let aggregations = AggregationMaps::create(plan).map_err(|source| CodegenError::Map {
        what: "kernel aggregation",
        source,
    })?;
    let gate = Gate::create("dtk_gate").map_err(|source| CodegenError::Map {
        what: "gate",
        source,
    })?;
    let mut attached = Attached {
        programs: Vec::new(),
        scratch: record_scratch(plan)?,
        ring,
        drops,
        aggregations,
        gate,
    };
    for (index, probe) in plan.probes.iter().enumerate() {
        attach_probe(&mut attached, plan, index as u32, probe)?;
    }
    for entry in [true, false] {
        attach_raw_syscalls(&mut attached, plan, entry)?;
    }
    for program in &attached.programs {
        program.link.enable()?;
    }
    attached.gate.open().map_err(|source| CodegenError::Map {
        what: "gate",
        source,
    })?;
    Ok(attached)
}

/// The attach point of a probe that has one of its own.
fn attach_probe(
    attached: &mut Attached,
    plan: &Plan,
    index: u32,
    probe: &PlannedProbe,
) -> Result<(), CodegenError> {
    let what = probe.info.desc.to_string();
    let filter = probe.kernel_filter.as_deref();
    let build = |attached: &Attached, args: &[ArgLoad], guard, kind| {
        let parts = Parts {
            index: ProbeIndex::Fixed(index),
            args,
            guard,
            filter,
            kernel_clauses: Some((index, probe.kernel_clauses.as_slice()))
                .filter(|(_, clauses)| !clauses.is_empty())
                .into_iter()
                .collect(),
        };
        build_and_load(attached, plan, probe, &what, parts, kind)
    };
    // A probe with nothing to emit or update needs no program, unless attaching has an effect
    // of its own (a USDT semaphore raised while a uprobe is attached).
    let idle = never_emits(probe) && probe.kernel_clauses.is_empty();
    match &probe.site {
        Site::UserSpace | Site::Tick { .. } | Site::RawSyscall { .. } => {}
        Site::Tracepoint { .. } | Site::Profile { .. } if idle => {}
        Site::Tracepoint {
            category,
            name,
            args,
            guard,
        } => {
            let (program, insns, maps) = build(attached, args, *guard, ProgType::Tracepoint)?;
            let link = attach_tracepoint(&program, category, name)?;
            attached.push(link, insns, program, maps);
        }
        Site::Profile { hz, args } => {
            let (program, insns, maps) = build(attached, args, None, ProgType::PerfEvent)?;
            let link = attach_cpu_clock(&program, *hz)?;
            attached.push(link, insns, program, maps);
        }
        Site::Uprobe { sites } => {
            for site in sites {
                let (program, insns, maps) = build(attached, &site.args, None, ProgType::Kprobe)?;
                let link = attach_uprobe(&program, &site.spec)?;
                attached.push(link, insns, program, maps);
            }
        }
    }
    Ok(())
}

impl Attached {
    fn push(
        &mut self,
        link: Link,
        insns: Vec<Insn>,
        program: super::bpf::prog::Program,
        maps: Vec<Map>,
    ) {
        self.programs.push(AttachedProgram {
            link,
            insns,
            _program: program,
            _maps: maps,
        });
    }
}

/// Whether the kernel filter of `probe` lets nothing through (all its clauses run in the
/// kernel, or none of their predicates can hold).
fn never_emits(probe: &PlannedProbe) -> bool {
    probe
        .kernel_filter
        .as_deref()
        .is_some_and(<[Expr]>::is_empty)
}

type Built = (super::bpf::prog::Program, Vec<Insn>, Vec<Map>);

/// What a program does, apart from the maps it writes.
struct Parts<'a> {
    index: ProbeIndex<'a>,
    args: &'a [ArgLoad],
    guard: Option<u16>,
    filter: Option<&'a [Expr]>,
    kernel_clauses: Vec<(u32, &'a [KernelClause])>,
}

/// Assembles the program for `probe`'s record and loads it.
fn build_and_load(
    attached: &Attached,
    plan: &Plan,
    probe: &PlannedProbe,
    what: &str,
    parts: Parts<'_>,
    kind: ProgType,
) -> Result<Built, CodegenError> {
    let layout = Layout::new(&probe.captures, plan.strsize);
    let spec = ProgramSpec {
        index: parts.index,
        args: parts.args,
        guard: parts.guard,
        layout: &layout,
        derived: &probe.captures.derived,
        shadow_stores: &probe.captures.shadow_stores,
        filter: parts.filter,
        kernel_clauses: parts.kernel_clauses,
        aggregations: &attached.aggregations,
        zones: &plan.zones,
        scratch: &attached.scratch,
        ring: &attached.ring,
        drops: &attached.drops,
        gate: &attached.gate,
    };
    let insns = program::build(&spec).map_err(|source| CodegenError::Asm {
        what: what.to_string(),
        source,
    })?;
    let program = load(kind, &insns, "GPL").map_err(|source| CodegenError::Load {
        what: what.to_string(),
        source,
    })?;
    Ok((program, insns, Vec::new()))
}

/// The per-CPU slot every program builds its record in, as large as the largest record.
/// Programs cannot interrupt one another on a CPU (the kernel skips a tracing program that
/// would nest in another), so one slot per CPU is enough.
fn record_scratch(plan: &Plan) -> Result<Map, CodegenError> {
    let largest = plan
        .probes
        .iter()
        .map(|p| (p, Layout::new(&p.captures, plan.strsize).room))
        .max_by_key(|&(_, size)| size);
    if let Some((probe, size)) = largest.filter(|&(_, size)| size > i16::MAX as usize) {
        return Err(CodegenError::RecordTooLarge {
            what: probe.info.desc.to_string(),
            size,
        });
    }
    let size = largest.map_or(record::HEADER, |(_, size)| size);
    Map::create(MapType::PerCpuArray, 4, size as u32, 1, "dtk_record").map_err(|source| {
        CodegenError::Map {
            what: "record scratch",
            source,
        }
    })
}

/// One program on raw_syscalls:sys_enter (or sys_exit) for every probe planned there.
fn attach_raw_syscalls(
    attached: &mut Attached,
    plan: &Plan,
    entry: bool,
) -> Result<(), CodegenError> {
    let probes: Vec<(u32, &PlannedProbe, u32)> = plan
        .probes
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p.site {
            Site::RawSyscall { entry: e, nr, .. } if e == entry => Some((i as u32, p, nr)),
            _ => None,
        })
        .collect();
    let Some(&(_, first, _)) = probes.first() else {
        return Ok(());
    };
    let emits = probes.iter().any(|(_, p, _)| !never_emits(p));
    if !emits && probes.iter().all(|(_, p, _)| p.kernel_clauses.is_empty()) {
        return Ok(());
    }
    let numbers =
        Map::create(MapType::Array, 4, 4, MAX_SYSCALL_NR, "dtk_sysnr").map_err(|source| {
            CodegenError::Map {
                what: "syscall numbers",
                source,
            }
        })?;
    for &(index, _, nr) in &probes {
        if nr < MAX_SYSCALL_NR {
            numbers
                .update(&nr.to_ne_bytes(), &(index + 1).to_ne_bytes(), Update::Any)
                .map_err(|source| CodegenError::Map {
                    what: "syscall numbers",
                    source,
                })?;
        }
    }
    let filters: Vec<(u32, &[Expr])> = probes
        .iter()
        .filter_map(|(i, p, _)| p.kernel_filter.as_deref().map(|f| (*i, f)))
        .collect();
    let id_offset = raw_id_offset(entry).map_err(|e| CodegenError::Plan(Box::new(e)))?;
    let tracepoint = if entry { "sys_enter" } else { "sys_exit" };
    let what = format!("raw_syscalls:{tracepoint}");
    let args = first.site.args().to_vec();
    let parts = Parts {
        index: ProbeIndex::BySyscall {
            id_offset,
            numbers: &numbers,
            filters,
            emits,
            probes: probes.len(),
        },
        args: &args,
        guard: None,
        filter: None,
        kernel_clauses: probes
            .iter()
            .filter(|(_, p, _)| !p.kernel_clauses.is_empty())
            .map(|(i, p, _)| (*i, p.kernel_clauses.as_slice()))
            .collect(),
    };
    let (program, insns, mut maps) =
        build_and_load(attached, plan, first, &what, parts, ProgType::Tracepoint)?;
    let link = attach_tracepoint(&program, "raw_syscalls", tracepoint)?;
    maps.push(numbers);
    attached.push(link, insns, program, maps);
    Ok(())
}
