//! The followed set: the process tree a run traces (`-c`/`-p` in the toolkit commands), kept
//! in the kernel as a BPF hash map of tgids, so that a child is traced from its first
//! instruction and an exited process needs no lookup in /proc.
//!
//! Two programs keep it, on tracepoints that need no BTF (kernel ≥ 4.7 for tracepoint
//! programs):
//! - `sched:sched_process_fork` fires in the parent, after the child is made and before it
//!   first runs. When the parent's tgid is in the set, the child's pid goes in, with the
//!   parent's tgid as its value. The record does not say whether the child is a thread: a
//!   thread's entry (its tid, never another process's tgid while it lives) is harmless and
//!   goes at its exit.
//! - `sched:sched_process_exit` fires in every exiting thread. A thread other than the group
//!   leader removes its own entry; the process's entry goes when the whole thread group is
//!   dead (`group_dead`, where the kernel has the field; else when the leader exits).
//!
//! Across exec the tgid stays, so the set needs no update there. The map is bounded
//! ([`MAX_FOLLOWED`]); a child that finds it full is counted in a drop counter, which the
//! engine reports, rather than lost silently.
//!
//! Every probe program of a following run checks the set right after the gate: a firing in a
//! process outside it does nothing more.

use super::drops::DropSlots;
use super::insn::{AluOp, Asm, AsmError, Cond, Helper, Insn, Label, MapRef, Reg, Size, Src};
use super::maps::{MapSpec, MapType};

/// The most processes (and threads, briefly) the set holds at once.
pub const MAX_FOLLOWED: u32 = 65536;

/// The stack slots the maintenance programs use: a key, a value and a drop-counter key.
const KEY: i16 = -8;
const VALUE: i16 = -16;
const DROP_KEY: i16 = -24;

/// The set's map, holding `seed` (tgids followed from the start) when created.
pub fn spec(name: &str, seed: &[u32]) -> MapSpec {
    let mut spec = MapSpec::new(MapType::Hash, 4, 4, MAX_FOLLOWED, name);
    spec.entries = seed
        .iter()
        .map(|pid| (pid.to_ne_bytes().into(), 0u32.to_ne_bytes().into()))
        .collect();
    spec
}

/// Emits code that jumps to `out` unless the current process is in the set `map`. It uses
/// the 4 stack bytes at `r10 + key_slot` for the key and clobbers R0–R5; R6–R9 are preserved.
pub fn emit_check(asm: &mut Asm, map: MapRef, key_slot: i16, out: Label) {
    asm.call(Helper::GetCurrentPidTgid)
        .alu64(AluOp::Rsh, Reg::R0, Src::Imm(32))
        .stx(Size::W, Reg::R10, key_slot, Reg::R0)
        .ld_map(Reg::R1, map)
        .mov64_reg(Reg::R2, Reg::R10)
        .alu64(AluOp::Add, Reg::R2, Src::Imm(key_slot.into()))
        .call(Helper::MapLookupElem)
        .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), out);
}

/// The program on sched_process_fork: adds the child (its pid at `child_pid` in the record)
/// when the parent is followed, counting in `full` a child the full map refused.
pub fn fork_program(map: MapRef, full: DropSlots, child_pid: u16) -> Result<Vec<Insn>, AsmError> {
    let mut asm = Asm::new();
    let out = asm.label();
    asm.mov64_reg(Reg::R6, Reg::R1);
    emit_check(&mut asm, map, VALUE, out);
    asm.ldx(Size::W, Reg::R1, Reg::R6, child_pid as i16)
        .stx(Size::W, Reg::R10, KEY, Reg::R1)
        .ld_map(Reg::R1, map)
        .mov64_reg(Reg::R2, Reg::R10)
        .alu64(AluOp::Add, Reg::R2, Src::Imm(KEY.into()))
        .mov64_reg(Reg::R3, Reg::R10)
        .alu64(AluOp::Add, Reg::R3, Src::Imm(VALUE.into()))
        .mov64_imm(Reg::R4, 0)
        .call(Helper::MapUpdateElem)
        .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), out);
    full.emit_count(&mut asm, DROP_KEY);
    asm.bind(out);
    asm.mov64_imm(Reg::R0, 0).exit();
    asm.finish()
}

/// The program on sched_process_exit: removes an exiting thread's own entry, and the
/// process's when its thread group is dead (the byte at `group_dead` in the record; without
/// it, when the group leader exits).
pub fn exit_program(map: MapRef, group_dead: Option<u16>) -> Result<Vec<Insn>, AsmError> {
    let mut asm = Asm::new();
    let leader = asm.label();
    let out = asm.label();
    asm.mov64_reg(Reg::R6, Reg::R1)
        .call(Helper::GetCurrentPidTgid)
        .mov64_reg(Reg::R7, Reg::R0)
        // R8 = tid, R9 = tgid.
        .mov32_reg(Reg::R8, Reg::R7)
        .mov64_reg(Reg::R9, Reg::R7)
        .alu64(AluOp::Rsh, Reg::R9, Src::Imm(32))
        .jmp_if(Cond::Eq, Reg::R8, Src::Reg(Reg::R9), leader);
    delete(&mut asm, map, Reg::R8);
    asm.bind(leader);
    match group_dead {
        Some(offset) => {
            asm.ldx(Size::B, Reg::R1, Reg::R6, offset as i16).jmp_if(
                Cond::Eq,
                Reg::R1,
                Src::Imm(0),
                out,
            );
        }
        None => {
            asm.jmp_if(Cond::Ne, Reg::R8, Src::Reg(Reg::R9), out);
        }
    }
    delete(&mut asm, map, Reg::R9);
    asm.bind(out);
    asm.mov64_imm(Reg::R0, 0).exit();
    asm.finish()
}

/// Deletes the key held in `pid` (a u32 in a register that is preserved) from `map`.
fn delete(asm: &mut Asm, map: MapRef, pid: Reg) {
    asm.stx(Size::W, Reg::R10, KEY, pid)
        .ld_map(Reg::R1, map)
        .mov64_reg(Reg::R2, Reg::R10)
        .alu64(AluOp::Add, Reg::R2, Src::Imm(KEY.into()))
        .call(Helper::MapDeleteElem);
}
