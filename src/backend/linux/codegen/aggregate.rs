//! Kernel-side aggregations (see `plan::aggregate`): one per-CPU map per aggregation (a hash
//! map, or an array indexed by probe for `Storage::ByProbe`), and the BPF code that updates
//! it at a probe. Reading the maps back (and switching generations) is `load`'s.
//!
//! A map value is 16 bytes per CPU: how many updates this CPU made, then the count, sum,
//! minimum or maximum. The update count tells a CPU that never touched a key (its slot is
//! zero) from one whose minimum is 0. Per-CPU maps need no atomics; user space combines the
//! CPUs when it reads (kernel ≥ 4.6 for `BPF_MAP_TYPE_PERCPU_HASH`).
//!
//! An aggregation that clear or trunc names (`KernelAggregation::drained`) must be read and
//! reset at each tick with no count lost, while other CPUs go on updating it. It has two
//! maps, one per generation, and every drained aggregation is in the same generation: a
//! clause that updates one first reads which generation is current, then updates that
//! generation's maps. The current generation is itself a map in a map (`Generation`): to
//! read, user space replaces it with the other one, which starts the other generation for
//! every drained aggregation at the same moment. The kernel returns from that replacement
//! only once every program that may have read the old generation has finished
//! (`synchronize_rcu` in `maybe_wait_bpf_programs`, for updates of map-in-map types; kernel
//! ≥ 5.0): a BPF program runs whole inside one RCU read-side section, so an update that
//! raced with the switch has landed by then, and nothing writes the old generation's maps
//! afterwards. User space reads them whole and empties them for the next switch. Every
//! update lands in exactly one generation and each generation is read once, so the reads
//! add up exactly to what was counted; the executor adds each read to the entries it holds,
//! where clear and trunc act as they do on any aggregation. Simpler schemes lose counts
//! under concurrent updates: subtracting the values last read works for count and sum but
//! not for min and max, and never frees a key; `BPF_MAP_LOOKUP_AND_DELETE_BATCH` can delete
//! an entry that a program on another CPU has just looked up, whose increment then goes to
//! a freed element. A read costs one RCU grace period (milliseconds), at tick-N and at the
//! end only; a clause that updates a drained aggregation makes two more (array) lookups to
//! find the generation. Other aggregations keep one map and none of this.

use super::frame::{aggregation_key, DROP_KEY_SLOT, GENERATION, INITIAL_VALUE};
use super::predicate::{branch, load, Scope};
use super::threadvars::ThreadVars;
use crate::backend::linux::bpf::drops::DropSlots;
use crate::backend::linux::bpf::insn::{AluOp, Asm, Cond, Helper, MapRef, Reg, Size, Src};
use crate::backend::linux::bpf::maps::{MapSpec, MapTable, MapType};
use crate::backend::linux::firing::Zone;
use crate::backend::linux::plan::{
    KernelAggregation, KernelClause, KernelUpdate, KeyKind, Plan, Storage,
};
use crate::backend::linux::record;
use crate::event::AggFunc;

/// Entries each aggregation map can hold; updates beyond are counted as aggregation drops.
const MAX_ENTRIES: u32 = 16384;
/// A map value per CPU: {u64 updates, i64 value}.
const VALUE_SIZE: u32 = 16;

/// The maps of a plan's kernel aggregations, in `Plan::kernel_aggregations` order.
#[derive(Debug)]
pub struct AggregationMaps {
    pub maps: Vec<(KernelAggregation, Counts)>,
    /// Present when some aggregation is drained.
    pub generation: Option<Generation>,
    /// Updates that found their map full.
    pub drops: DropSlots,
}

impl AggregationMaps {
    pub fn plan(plan: &Plan, table: &mut MapTable) -> AggregationMaps {
        let maps = plan
            .kernel_aggregations
            .iter()
            .map(|a| (a.clone(), Counts::plan(a, table)))
            .collect();
        let generation = plan
            .kernel_aggregations
            .iter()
            .any(|a| a.drained)
            .then(|| Generation::plan(table));
        AggregationMaps {
            maps,
            generation,
            drops: DropSlots::new(table.add(DropSlots::spec("dtk_agg_drops", 0)), 0),
        }
    }

    /// Emits the code of `clauses` (R7 = the filled record; clobbers R0–R5 and R9).
    pub fn emit_clauses(
        &self,
        asm: &mut Asm,
        clauses: &[KernelClause],
        vars: &ThreadVars,
        zones: &[Zone],
    ) {
        let scope = Scope {
            zones,
            vars: &vars.names,
        };
        for clause in clauses {
            let skip = asm.label();
            vars.emit_loads(asm, clause);
            if let Some(predicate) = &clause.predicate {
                branch(asm, predicate, scope, skip, false);
            }
            if let Some(generation) = self.generation.as_ref().filter(|_| self.drains(clause)) {
                generation.emit_load(asm);
            }
            let mut assigns = clause.assigns.iter().peekable();
            for (done, update) in clause.updates.iter().enumerate() {
                while let Some(assign) = assigns.next_if(|a| a.after <= done) {
                    vars.emit_assign(asm, assign);
                }
                self.emit_update(asm, update, &vars.names);
            }
            for assign in assigns {
                vars.emit_assign(asm, assign);
            }
            asm.bind(skip);
        }
    }

    /// Whether `clause` updates a drained aggregation.
    fn drains(&self, clause: &KernelClause) -> bool {
        clause
            .updates
            .iter()
            .any(|u| self.maps.get(u.aggregation).is_some_and(|(a, _)| a.drained))
    }

    fn emit_update(&self, asm: &mut Asm, update: &KernelUpdate, vars: &[String]) {
        let Some((aggregation, counts)) = self.maps.get(update.aggregation) else {
            return;
        };
        if let Storage::ByProbe { slots } = aggregation.storage {
            return emit_array_update(asm, aggregation, counts, slots, update, vars);
        }
        let key = aggregation_key(aggregation.key_size());
        write_key(asm, aggregation, &update.keys, key);
        match &update.value {
            Some(value) => load(asm, value, vars, Reg::R1),
            None => {
                asm.mov64_imm(Reg::R1, 0);
            }
        }
        asm.mov64_reg(Reg::R9, Reg::R1);
        let have = asm.label();
        let done = asm.label();
        counts.emit_lookup(asm, key);
        asm.jmp_if(Cond::Ne, Reg::R0, Src::Imm(0), have)
            .st(Size::DW, Reg::R10, INITIAL_VALUE, 0)
            .st(Size::DW, Reg::R10, INITIAL_VALUE + 8, 0);
        counts.emit_map(asm);
        asm.mov64_reg(Reg::R2, Reg::R10)
            .alu64(AluOp::Add, Reg::R2, Src::Imm(key.into()))
            .mov64_reg(Reg::R3, Reg::R10)
            .alu64(AluOp::Add, Reg::R3, Src::Imm(INITIAL_VALUE.into()))
            // BPF_NOEXIST: another CPU may have added the key meanwhile; look it up again.
            .mov64_imm(Reg::R4, 1)
            .call(Helper::MapUpdateElem);
        counts.emit_lookup(asm, key);
        asm.jmp_if(Cond::Ne, Reg::R0, Src::Imm(0), have);
        self.drops.emit_count(asm, DROP_KEY_SLOT);
        asm.jmp(done).bind(have);
        combine(asm, aggregation.func);
        asm.bind(done);
    }
}

/// `Storage::ByProbe`: the slot is the probe index (or 0), which is always in the array, so
/// there is no key to write and no entry to create.
fn emit_array_update(
    asm: &mut Asm,
    aggregation: &KernelAggregation,
    counts: &Counts,
    slots: u32,
    update: &KernelUpdate,
    vars: &[String],
) {
    let done = asm.label();
    match &update.value {
        Some(value) => load(asm, value, vars, Reg::R1),
        None => {
            asm.mov64_imm(Reg::R1, 0);
        }
    }
    asm.mov64_reg(Reg::R9, Reg::R1);
    if slots > 1 {
        asm.ldx(Size::W, Reg::R1, Reg::R7, record::PROBE).stx(
            Size::W,
            Reg::R10,
            INITIAL_VALUE,
            Reg::R1,
        );
    } else {
        asm.st(Size::W, Reg::R10, INITIAL_VALUE, 0);
    }
    counts.emit_lookup(asm, INITIAL_VALUE);
    asm.jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), done);
    combine(asm, aggregation.func);
    asm.bind(done);
}

/// Where one kernel aggregation counts.
#[derive(Clone, Copy, Debug)]
pub enum Counts {
    /// One map, counting from the start of the run.
    Total(MapRef),
    /// One map per generation (see the module doc).
    Drained([MapRef; 2]),
}

impl Counts {
    fn plan(aggregation: &KernelAggregation, table: &mut MapTable) -> Counts {
        let name = format!("dtk_agg_{}", aggregation.name);
        let mut map = || {
            table.add(match aggregation.storage {
                Storage::Hash => MapSpec::new(
                    MapType::PerCpuHash,
                    aggregation.key_size() as u32,
                    VALUE_SIZE,
                    MAX_ENTRIES,
                    &name,
                ),
                Storage::ByProbe { slots } => {
                    MapSpec::new(MapType::PerCpuArray, 4, VALUE_SIZE, slots, &name)
                }
            })
        };
        if aggregation.drained {
            Counts::Drained([map(), map()])
        } else {
            Counts::Total(map())
        }
    }

    /// R1 = the map to update: for a drained aggregation, that of the generation at
    /// GENERATION.
    fn emit_map(&self, asm: &mut Asm) {
        match self {
            Counts::Total(map) => {
                asm.ld_map(Reg::R1, *map);
            }
            Counts::Drained([first, second]) => {
                let other = asm.label();
                let chosen = asm.label();
                asm.ldx(Size::W, Reg::R1, Reg::R10, GENERATION)
                    .jmp_if(Cond::Ne, Reg::R1, Src::Imm(0), other)
                    .ld_map(Reg::R1, *first)
                    .jmp(chosen)
                    .bind(other)
                    .ld_map(Reg::R1, *second)
                    .bind(chosen);
            }
        }
    }

    /// R0 = the value for the key on the stack at `key`, or 0. Clobbers R1–R5.
    fn emit_lookup(&self, asm: &mut Asm, key: i16) {
        self.emit_map(asm);
        asm.mov64_reg(Reg::R2, Reg::R10)
            .alu64(AluOp::Add, Reg::R2, Src::Imm(key.into()))
            .call(Helper::MapLookupElem);
    }
}

/// The generation the drained aggregations count in: 0 while slot 0 of `live`, an array of
/// maps, is empty (so that starting waits for nothing), else the value in the one-entry
/// array the slot holds, one of `flags`. Replacing the slot starts the other generation
/// for every drained aggregation at once.
#[derive(Clone, Copy, Debug)]
pub struct Generation {
    pub live: MapRef,
    pub flags: [MapRef; 2],
}

impl Generation {
    fn plan(table: &mut MapTable) -> Generation {
        let mut flag = |generation: u32| {
            let mut spec = MapSpec::new(MapType::Array, 4, 4, 1, "dtk_generation");
            spec.entries = vec![(0u32.to_ne_bytes().into(), generation.to_ne_bytes().into())];
            table.add(spec)
        };
        let flags = [flag(0), flag(1)];
        let mut live = MapSpec::new(MapType::ArrayOfMaps, 4, 4, 1, "dtk_generation");
        live.inner = Some(flags[0]);
        Generation {
            live: table.add(live),
            flags,
        }
    }

    /// Stores the current generation (a u32) at GENERATION. Clobbers R0–R5.
    fn emit_load(&self, asm: &mut Asm) {
        let loaded = asm.label();
        asm.st(Size::W, Reg::R10, GENERATION, 0)
            .ld_map(Reg::R1, self.live)
            .mov64_reg(Reg::R2, Reg::R10)
            .alu64(AluOp::Add, Reg::R2, Src::Imm(GENERATION.into()))
            .call(Helper::MapLookupElem)
            .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), loaded)
            .mov64_reg(Reg::R1, Reg::R0)
            .mov64_reg(Reg::R2, Reg::R10)
            .alu64(AluOp::Add, Reg::R2, Src::Imm(GENERATION.into()))
            .call(Helper::MapLookupElem)
            .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), loaded)
            .ldx(Size::W, Reg::R1, Reg::R0, 0)
            .stx(Size::W, Reg::R10, GENERATION, Reg::R1)
            .bind(loaded);
    }
}

/// Writes every byte of the key at `r10 + at`.
fn write_key(
    asm: &mut Asm,
    aggregation: &KernelAggregation,
    keys: &[crate::backend::linux::d::ast::Expr],
    at: i16,
) {
    // A key of constants only is one zero word (map keys cannot be empty).
    if aggregation.keys.iter().all(|k| k.size() == 0) {
        asm.st(Size::DW, Reg::R10, at, 0);
    }
    let mut offset = at;
    for (kind, expr) in aggregation.keys.iter().zip(keys) {
        match kind {
            KeyKind::Int { .. } => {
                // Keys never name thread variables (`plan::aggregate::key_kind`).
                load(asm, expr, &[], Reg::R1);
                asm.stx(Size::DW, Reg::R10, offset, Reg::R1);
            }
            KeyKind::Execname => {
                for half in [0, 8] {
                    asm.ldx(Size::DW, Reg::R1, Reg::R7, record::COMM + half)
                        .stx(Size::DW, Reg::R10, offset + half, Reg::R1);
                }
            }
            KeyKind::ProbeFunc | KeyKind::ProbeName => {
                asm.ldx(Size::W, Reg::R1, Reg::R7, record::PROBE).stx(
                    Size::DW,
                    Reg::R10,
                    offset,
                    Reg::R1,
                );
            }
            KeyKind::Str(_) | KeyKind::Const { .. } => {}
        }
        offset += kind.size() as i16;
    }
}

/// Folds R9 into this CPU's value at R0: {u64 updates, i64 value}.
fn combine(asm: &mut Asm, func: AggFunc) {
    let bump = asm.label();
    asm.ldx(Size::DW, Reg::R1, Reg::R0, 0);
    match func {
        AggFunc::Sum => {
            asm.ldx(Size::DW, Reg::R2, Reg::R0, 8)
                .alu64(AluOp::Add, Reg::R2, Src::Reg(Reg::R9))
                .stx(Size::DW, Reg::R0, 8, Reg::R2);
        }
        AggFunc::Min | AggFunc::Max => {
            let store = asm.label();
            let keep = if func == AggFunc::Min {
                Cond::Sge
            } else {
                Cond::Sle
            };
            asm.jmp_if(Cond::Eq, Reg::R1, Src::Imm(0), store)
                .ldx(Size::DW, Reg::R2, Reg::R0, 8)
                .jmp_if(keep, Reg::R9, Src::Reg(Reg::R2), bump)
                .bind(store)
                .stx(Size::DW, Reg::R0, 8, Reg::R9);
        }
        _ => {}
    }
    asm.bind(bump)
        .alu64(AluOp::Add, Reg::R1, Src::Imm(1))
        .stx(Size::DW, Reg::R0, 0, Reg::R1);
}
