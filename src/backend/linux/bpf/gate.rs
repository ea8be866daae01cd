//! The gate every dtk program passes first: one u32 in a BPF array map, which user space
//! flips to arm all the programs of a run at once and to disarm them all at once.
//!
//! Why a map, not the perf events: a run attaches many perf events (a uprobe and a
//! uretprobe per function, a tracepoint per system call, one event per CPU for profile-N),
//! and enabling or disabling them is one ioctl each, in some order. While they are turned on
//! one by one, an entry probe can be live without its return probe, and while they are
//! turned off one by one, returns go on being recorded after their entries have stopped:
//! after Ctrl-C on a busy Python program, thousands of returns without entries. Perf event
//! groups switch several events in one step, but only events of one task or one CPU, which a
//! run's events are not. One store to one map slot, read by every program before it does
//! anything else, switches them all together: a program that loads the gate after the store
//! sees the new value (`BPF_MAP_UPDATE_ELEM` on an array is a plain store, and every firing
//! loads it afresh). The cost is an inlined array lookup and a compare per firing.

use super::insn::{AluOp, Asm, Cond, Helper, Label, MapRef, Reg, Size, Src};
use super::maps::{Map, MapError, MapSpec, MapType, Update};

const KEY: [u8; 4] = 0u32.to_ne_bytes();

/// The gate's map, closed when created.
pub fn spec(name: &str) -> MapSpec {
    MapSpec::new(MapType::Array, 4, 4, 1, name)
}

/// Emits code that jumps to `out` while the gate `map` is closed. It uses the 4 stack bytes
/// at `r10 + key_slot` for the key and clobbers R0–R5; R6–R9 are preserved.
pub fn emit_check(asm: &mut Asm, map: MapRef, key_slot: i16, out: Label) {
    asm.st(Size::W, Reg::R10, key_slot, 0)
        .ld_map(Reg::R1, map)
        .mov64_reg(Reg::R2, Reg::R10)
        .alu64(AluOp::Add, Reg::R2, Src::Imm(key_slot.into()))
        .call(Helper::MapLookupElem)
        .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), out)
        .ldx(Size::W, Reg::R1, Reg::R0, 0)
        .jmp_if(Cond::Eq, Reg::R1, Src::Imm(0), out);
}

/// Arms every program that checks the gate `map` (created from [`spec`]), in one step.
pub fn open(map: &Map) -> Result<(), MapError> {
    map.update(&KEY, &1u32.to_ne_bytes(), Update::Any)
}

/// Disarms every program that checks the gate `map`, in one step: from here on, none of
/// them records or counts anything.
pub fn close(map: &Map) -> Result<(), MapError> {
    map.update(&KEY, &0u32.to_ne_bytes(), Update::Any)
}
