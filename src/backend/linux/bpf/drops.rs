//! Counting records the ring buffer refused.
//!
//! A full BPF ring buffer does not count what it loses: `bpf_ringbuf_reserve` returns NULL and
//! `bpf_ringbuf_output` returns an error, and that is all. So every dtk program that emits
//! records bumps a per-CPU counter on failure (no atomics needed, one slot per CPU), and user
//! space sums the slots to report `Drop` events with exact counts.

use super::insn::{AluOp, Asm, Cond, Helper, Reg, Size, Src};
use super::maps::{Map, MapError, MapType};

/// A per-CPU array with one u64: records lost since creation.
#[derive(Debug)]
pub struct DropCounter {
    map: Map,
}

const KEY: [u8; 4] = 0u32.to_ne_bytes();

impl DropCounter {
    pub fn create(name: &str) -> Result<DropCounter, MapError> {
        Ok(DropCounter {
            map: Map::create(MapType::PerCpuArray, 4, 8, 1, name)?,
        })
    }

    /// Emits code that adds 1 to this CPU's counter. It uses the 4 stack bytes at
    /// `r10 + key_slot` for the key and clobbers R0–R5; R6–R9 are preserved.
    pub fn emit_count(&self, asm: &mut Asm, key_slot: i16) {
        let done = asm.label();
        asm.st(Size::W, Reg::R10, key_slot, 0)
            .ld_map_fd(Reg::R1, self.map.fd())
            .mov64_reg(Reg::R2, Reg::R10)
            .alu64(AluOp::Add, Reg::R2, Src::Imm(key_slot.into()))
            .call(Helper::MapLookupElem)
            .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), done)
            .ldx(Size::DW, Reg::R1, Reg::R0, 0)
            .alu64(AluOp::Add, Reg::R1, Src::Imm(1))
            .stx(Size::DW, Reg::R0, 0, Reg::R1)
            .bind(done);
    }

    /// Records lost so far, summed over CPUs.
    pub fn total(&self) -> Result<u64, MapError> {
        self.map.sum_u64(&KEY)
    }
}
