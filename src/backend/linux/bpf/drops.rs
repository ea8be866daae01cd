//! Counting records the ring buffer refused.
//!
//! A full BPF ring buffer does not count what it loses: `bpf_ringbuf_reserve` returns NULL and
//! `bpf_ringbuf_output` returns an error, and that is all. So every dtk program that emits
//! records bumps a per-CPU counter on failure (no atomics needed, one slot per CPU), and user
//! space sums the slots to report `Drop` events with exact counts.
//!
//! The ring buffer's counter also counts per probe (slot 1 + the probe index read from the
//! record), so that a command can say what was lost in its own terms (`dtk opens`: opens,
//! not records). Slot 0 is the total, so that user space reads one slot while nothing is lost.

use super::insn::{AluOp, Asm, Cond, Helper, MapRef, Reg, Size, Src};
use super::maps::{Map, MapError, MapSpec, MapType};

/// A per-CPU array of u64: slot 0 counts what was lost since creation; with per-probe slots,
/// slot 1 + i counts what probe i lost. This is the counter as programs name it, before its
/// map exists (see `insn::MapRef`); [`DropCounter`] is the created one.
#[derive(Clone, Copy, Debug)]
pub struct DropSlots {
    map: MapRef,
    probes: u32,
}

const KEY: [u8; 4] = 0u32.to_ne_bytes();

impl DropSlots {
    /// The map of a counter of the total and of each of `probes` probes (0: the total only).
    pub fn spec(name: &str, probes: u32) -> MapSpec {
        MapSpec::new(MapType::PerCpuArray, 4, 8, probes + 1, name)
    }

    /// The counter in `map`, made from [`DropSlots::spec`] with the same `probes`.
    pub fn new(map: MapRef, probes: u32) -> DropSlots {
        DropSlots { map, probes }
    }

    pub fn map(&self) -> MapRef {
        self.map
    }

    pub fn probes(&self) -> u32 {
        self.probes
    }

    /// Emits code that adds 1 to this CPU's total. It uses the 4 stack bytes at
    /// `r10 + key_slot` for the key and clobbers R0–R5; R6–R9 are preserved.
    pub fn emit_count(&self, asm: &mut Asm, key_slot: i16) {
        asm.st(Size::W, Reg::R10, key_slot, 0);
        self.emit_add(asm, key_slot);
    }

    /// Emits code that adds 1 to this CPU's total and to the slot of the probe whose index
    /// is the u32 at `record + probe_offset` (`record` a register that the code preserves).
    /// Clobbers R0–R5, like `emit_count`.
    pub fn emit_count_probe(&self, asm: &mut Asm, key_slot: i16, record: Reg, probe_offset: i16) {
        self.emit_count(asm, key_slot);
        let skip = asm.label();
        asm.ldx(Size::W, Reg::R1, record, probe_offset)
            .jmp_if(Cond::Ge, Reg::R1, Src::Imm(self.probes as i32), skip)
            .alu64(AluOp::Add, Reg::R1, Src::Imm(1))
            .stx(Size::W, Reg::R10, key_slot, Reg::R1);
        self.emit_add(asm, key_slot);
        asm.bind(skip);
    }

    /// Adds 1 to the slot whose key is at `r10 + key_slot`.
    fn emit_add(&self, asm: &mut Asm, key_slot: i16) {
        let done = asm.label();
        asm.ld_map(Reg::R1, self.map)
            .mov64_reg(Reg::R2, Reg::R10)
            .alu64(AluOp::Add, Reg::R2, Src::Imm(key_slot.into()))
            .call(Helper::MapLookupElem)
            .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), done)
            .ldx(Size::DW, Reg::R1, Reg::R0, 0)
            .alu64(AluOp::Add, Reg::R1, Src::Imm(1))
            .stx(Size::DW, Reg::R0, 0, Reg::R1)
            .bind(done);
    }
}

/// A drop counter whose map exists: read what it counted, or emit code for programs built
/// around maps that already exist (the code names the map by its fd).
#[derive(Debug)]
pub struct DropCounter {
    map: Map,
    probes: u32,
}

impl DropCounter {
    /// A counter of the total only.
    pub fn create(name: &str) -> Result<DropCounter, MapError> {
        DropCounter::per_probe(name, 0)
    }

    /// A counter of the total and of each of `probes` probes.
    pub fn per_probe(name: &str, probes: u32) -> Result<DropCounter, MapError> {
        let spec = DropSlots::spec(name, probes);
        let map = Map::create(
            spec.kind,
            spec.key_size,
            spec.value_size,
            spec.max_entries,
            name,
        )?;
        Ok(DropCounter { map, probes })
    }

    /// The counter `slots` describes, in its created `map`.
    pub fn from_map(slots: DropSlots, map: Map) -> DropCounter {
        DropCounter {
            map,
            probes: slots.probes,
        }
    }

    /// The counter as code names it: by its map's fd.
    fn slots(&self) -> DropSlots {
        DropSlots::new(MapRef(self.map.fd() as u32), self.probes)
    }

    /// As [`DropSlots::emit_count`].
    pub fn emit_count(&self, asm: &mut Asm, key_slot: i16) {
        self.slots().emit_count(asm, key_slot);
    }

    /// As [`DropSlots::emit_count_probe`].
    pub fn emit_count_probe(&self, asm: &mut Asm, key_slot: i16, record: Reg, probe_offset: i16) {
        self.slots()
            .emit_count_probe(asm, key_slot, record, probe_offset);
    }

    /// Records lost so far, summed over CPUs.
    pub fn total(&self) -> Result<u64, MapError> {
        self.map.sum_u64(&KEY)
    }

    /// Records lost so far by each probe, summed over CPUs, by probe index.
    pub fn by_probe(&self) -> Result<Vec<u64>, MapError> {
        (1..=self.probes)
            .map(|slot| self.map.sum_u64(&slot.to_ne_bytes()))
            .collect()
    }
}
