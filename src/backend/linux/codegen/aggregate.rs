//! Kernel-side aggregations (see `plan::aggregate`): one per-CPU map per aggregation (a hash
//! map, or an array indexed by probe for `Storage::ByProbe`), the BPF code that updates it at
//! a probe, and reading the maps back into entries.
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

use super::predicate::{branch, load, thread_var_slot, Scope};
use super::record::{self, DerivedSlot};
use crate::backend::linux::bpf::drops::DropCounter;
use crate::backend::linux::bpf::insn::{AluOp, Asm, Cond, Helper, Reg, Size, Src};
use crate::backend::linux::bpf::maps::{Map, MapError, MapType, Update};
use crate::backend::linux::d::ast::{Expr, ExprKind, VarScope};
use crate::backend::linux::firing::Zone;
use crate::backend::linux::plan::{
    AddrExpr, KernelAggregation, KernelClause, KernelUpdate, KeyKind, Plan, ShadowStore, Storage,
    ThreadAssign,
};
use crate::event::{AggEntry, AggFunc, AggValue, Value};

/// Entries each aggregation map can hold; updates beyond are counted as aggregation drops.
const MAX_ENTRIES: u32 = 16384;
const VALUE_SIZE: u32 = 16;
/// Stack: the zeroed value for a new key, then the key below it.
const INITIAL_VALUE: i16 = -40;
/// Stack: the generation a clause's drained aggregations count in (a u32), below the
/// thread variables' slots.
const GENERATION: i16 = -448;

/// Threads whose kernel thread variables can be set at once (DTrace's dynamic variable
/// space); a set beyond is counted as a dynamic-variable drop.
const THREAD_VAR_ENTRIES: u32 = 65536;
/// Stack: the thread id, the key of the thread variable maps, and the value being stored.
pub(super) const THREAD_KEY: i16 = -432;
const THREAD_VALUE: i16 = -440;

/// The maps of a plan's kernel aggregations, in `Plan::kernel_aggregations` order, and of its
/// kernel thread variables (`Plan::kernel_vars`), hash maps from thread id to value.
#[derive(Debug)]
pub struct AggregationMaps {
    maps: Vec<(KernelAggregation, Counts)>,
    /// Present when some aggregation is drained.
    generation: Option<Generation>,
    drops: DropCounter,
    /// The plan's zones, for predicates that test them.
    zones: Vec<Zone>,
    var_names: Vec<String>,
    vars: Vec<Map>,
    var_drops: DropCounter,
    /// Per-thread pointers of `Plan::shadow_vars`.
    shadows: Vec<Map>,
}

impl AggregationMaps {
    pub fn create(plan: &Plan) -> Result<AggregationMaps, MapError> {
        let maps = plan
            .kernel_aggregations
            .iter()
            .map(|a| Ok((a.clone(), Counts::create(a)?)))
            .collect::<Result<_, MapError>>()?;
        let generation = plan
            .kernel_aggregations
            .iter()
            .any(|a| a.drained)
            .then(Generation::create)
            .transpose()?;
        let vars = plan
            .kernel_vars
            .iter()
            .map(|name| {
                Map::create(
                    MapType::Hash,
                    8,
                    8,
                    THREAD_VAR_ENTRIES,
                    &format!("dtk_self_{name}"),
                )
            })
            .collect::<Result<_, MapError>>()?;
        let shadows = plan
            .shadow_vars
            .iter()
            .map(|name| {
                Map::create(
                    MapType::Hash,
                    8,
                    8,
                    THREAD_VAR_ENTRIES,
                    &format!("dtk_ptr_{name}"),
                )
            })
            .collect::<Result<_, MapError>>()?;
        Ok(AggregationMaps {
            maps,
            generation,
            drops: DropCounter::create("dtk_agg_drops")?,
            zones: plan.zones.clone(),
            var_names: plan.kernel_vars.clone(),
            vars,
            var_drops: DropCounter::create("dtk_var_drops")?,
            shadows,
        })
    }

    /// Updates that found the map full.
    pub fn dropped(&self) -> Result<u64, MapError> {
        self.drops.total()
    }

    /// Kernel thread variables that could not be set because their map was full.
    pub fn var_drops(&self) -> Result<u64, MapError> {
        self.var_drops.total()
    }

    /// The map of shadowed thread variable `i`.
    pub fn shadow(&self, i: usize) -> Option<&Map> {
        self.shadows.get(i)
    }

    /// Keeps each store's value as this thread's value of its variable, in order, where its
    /// guard holds (R7 = the record, `scratch` its room for computing values; clobbers
    /// R0–R5). A value whose link cannot be read is not kept, as the executor's assignment
    /// fails there too. A full map keeps nothing, and a later probe falls back on what the
    /// first one read.
    pub fn emit_shadow_stores(&self, asm: &mut Asm, stores: &[ShadowStore], scratch: &DerivedSlot) {
        if stores.is_empty() {
            return;
        }
        // The key of every store; computing a kept value looks it up again, to the same id.
        thread_key(asm);
        for store in stores {
            let Some(map) = self.shadows.get(store.var) else {
                continue;
            };
            let skip = asm.label();
            if let Some(index) = store.probe {
                asm.jmp_if(Cond::Ne, Reg::R8, Src::Imm(index as i32), skip);
            }
            if let Some(guard) = &store.guard {
                branch(asm, guard, self.scope(), skip, false);
            }
            let value = &store.value;
            if let AddrExpr::Arg(n) = value {
                asm.ldx(Size::DW, Reg::R0, Reg::R7, record::arg_offset(*n));
            } else {
                super::derived::compute(asm, value, scratch, skip, self);
            }
            asm.mov64_reg(Reg::R1, Reg::R0);
            set_for_thread(asm, map);
            asm.bind(skip);
        }
    }

    fn scope(&self) -> Scope<'_> {
        Scope {
            zones: &self.zones,
            vars: &self.var_names,
        }
    }

    /// Emits the code of `clauses` (R7 = the filled record; clobbers R0–R5 and R9).
    pub fn emit_clauses(&self, asm: &mut Asm, clauses: &[KernelClause]) {
        for clause in clauses {
            let skip = asm.label();
            self.load_thread_vars(asm, clause);
            if let Some(predicate) = &clause.predicate {
                branch(asm, predicate, self.scope(), skip, false);
            }
            if let Some(generation) = self.generation.as_ref().filter(|_| self.drains(clause)) {
                generation.emit_load(asm);
            }
            let mut assigns = clause.assigns.iter().peekable();
            for (done, update) in clause.updates.iter().enumerate() {
                while let Some(assign) = assigns.next_if(|a| a.after <= done) {
                    self.emit_assign(asm, assign);
                }
                self.emit_update(asm, update);
            }
            for assign in assigns {
                self.emit_assign(asm, assign);
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

    /// Reads the thread's value of each kernel thread variable `clause` uses into its stack
    /// slot (0 when the thread has none), with the thread id left in THREAD_KEY.
    fn load_thread_vars(&self, asm: &mut Asm, clause: &KernelClause) {
        let used = clause_vars(clause, &self.var_names);
        if used.is_empty() {
            return;
        }
        thread_key(asm);
        for i in used {
            let Some(map) = self.vars.get(i) else {
                continue;
            };
            let absent = asm.label();
            let done = asm.label();
            lookup(asm, map, THREAD_KEY);
            asm.jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), absent)
                .ldx(Size::DW, Reg::R1, Reg::R0, 0)
                .jmp(done)
                .bind(absent)
                .mov64_imm(Reg::R1, 0)
                .bind(done)
                .stx(Size::DW, Reg::R10, thread_var_slot(i), Reg::R1);
        }
    }

    /// `self->x = value`: the slot (for the clause's later statements) and the map; 0
    /// deletes the thread's entry.
    fn emit_assign(&self, asm: &mut Asm, assign: &ThreadAssign) {
        let Some(map) = self.vars.get(assign.var) else {
            return;
        };
        let delete = asm.label();
        let done = asm.label();
        load(asm, &assign.value, &self.var_names, Reg::R1);
        asm.stx(Size::DW, Reg::R10, thread_var_slot(assign.var), Reg::R1)
            .jmp_if(Cond::Eq, Reg::R1, Src::Imm(0), delete);
        set_for_thread(asm, map);
        asm.jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), done);
        self.var_drops
            .emit_count(asm, super::program::DROP_KEY_SLOT);
        asm.jmp(done)
            .bind(delete)
            .ld_map_fd(Reg::R1, map.fd())
            .mov64_reg(Reg::R2, Reg::R10)
            .alu64(AluOp::Add, Reg::R2, Src::Imm(THREAD_KEY.into()))
            .call(Helper::MapDeleteElem)
            .bind(done);
    }

    fn emit_update(&self, asm: &mut Asm, update: &KernelUpdate) {
        let Some((aggregation, counts)) = self.maps.get(update.aggregation) else {
            return;
        };
        if let Storage::ByProbe { slots } = aggregation.storage {
            return emit_array_update(asm, aggregation, counts, slots, update, &self.var_names);
        }
        let key = INITIAL_VALUE - aggregation.key_size().next_multiple_of(8) as i16;
        write_key(asm, aggregation, &update.keys, key);
        match &update.value {
            Some(value) => load(asm, value, &self.var_names, Reg::R1),
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
        self.drops.emit_count(asm, super::program::DROP_KEY_SLOT);
        asm.jmp(done).bind(have);
        combine(asm, aggregation.func);
        asm.bind(done);
    }
}

/// Writes the thread id (the low 32 bits of pid_tgid) at THREAD_KEY: the key of the
/// per-thread maps.
pub(super) fn thread_key(asm: &mut Asm) {
    asm.call(Helper::GetCurrentPidTgid)
        .alu64(AluOp::Lsh, Reg::R0, Src::Imm(32))
        .alu64(AluOp::Rsh, Reg::R0, Src::Imm(32))
        .stx(Size::DW, Reg::R10, THREAD_KEY, Reg::R0);
}

/// map[THREAD_KEY] = R1 (BPF_ANY); R0 is the helper's result.
fn set_for_thread(asm: &mut Asm, map: &Map) {
    asm.stx(Size::DW, Reg::R10, THREAD_VALUE, Reg::R1)
        .ld_map_fd(Reg::R1, map.fd())
        .mov64_reg(Reg::R2, Reg::R10)
        .alu64(AluOp::Add, Reg::R2, Src::Imm(THREAD_KEY.into()))
        .mov64_reg(Reg::R3, Reg::R10)
        .alu64(AluOp::Add, Reg::R3, Src::Imm(THREAD_VALUE.into()))
        .mov64_imm(Reg::R4, 0)
        .call(Helper::MapUpdateElem);
}

/// The indices of the kernel thread variables `clause` reads or writes, ascending.
fn clause_vars(clause: &KernelClause, names: &[String]) -> Vec<usize> {
    let mut used = std::collections::BTreeSet::new();
    let mut visit = |e: &Expr| {
        if let ExprKind::Var {
            name,
            scope: VarScope::Thread,
        } = &e.kind
        {
            if let Some(i) = names.iter().position(|n| n == name) {
                used.insert(i);
            }
        }
    };
    let exprs = clause
        .predicate
        .iter()
        .chain(
            clause
                .updates
                .iter()
                .flat_map(|u| u.keys.iter().chain(u.value.iter())),
        )
        .chain(clause.assigns.iter().map(|a| &a.value));
    for e in exprs {
        crate::backend::linux::plan::walk(e, &mut visit);
    }
    used.extend(clause.assigns.iter().map(|a| a.var));
    used.into_iter().collect()
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
#[derive(Debug)]
enum Counts {
    /// One map, counting from the start of the run.
    Total(Map),
    /// One map per generation (see the module doc).
    Drained([Map; 2]),
}

impl Counts {
    fn create(aggregation: &KernelAggregation) -> Result<Counts, MapError> {
        let name = format!("dtk_agg_{}", aggregation.name);
        let map = || match aggregation.storage {
            Storage::Hash => Map::create(
                MapType::PerCpuHash,
                aggregation.key_size() as u32,
                VALUE_SIZE,
                MAX_ENTRIES,
                &name,
            ),
            Storage::ByProbe { slots } => {
                Map::create(MapType::PerCpuArray, 4, VALUE_SIZE, slots, &name)
            }
        };
        Ok(if aggregation.drained {
            Counts::Drained([map()?, map()?])
        } else {
            Counts::Total(map()?)
        })
    }

    /// R1 = the map to update: for a drained aggregation, that of the generation at
    /// GENERATION.
    fn emit_map(&self, asm: &mut Asm) {
        match self {
            Counts::Total(map) => {
                asm.ld_map_fd(Reg::R1, map.fd());
            }
            Counts::Drained([first, second]) => {
                let other = asm.label();
                let chosen = asm.label();
                asm.ldx(Size::W, Reg::R1, Reg::R10, GENERATION)
                    .jmp_if(Cond::Ne, Reg::R1, Src::Imm(0), other)
                    .ld_map_fd(Reg::R1, first.fd())
                    .jmp(chosen)
                    .bind(other)
                    .ld_map_fd(Reg::R1, second.fd())
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
#[derive(Debug)]
struct Generation {
    live: Map,
    flags: [Map; 2],
    current: u32,
}

impl Generation {
    fn create() -> Result<Generation, MapError> {
        let flag = |generation: u32| {
            let map = Map::create(MapType::Array, 4, 4, 1, "dtk_generation")?;
            map.update(&0u32.to_ne_bytes(), &generation.to_ne_bytes(), Update::Any)?;
            Ok::<_, MapError>(map)
        };
        let flags = [flag(0)?, flag(1)?];
        Ok(Generation {
            live: Map::create_array_of_maps(&flags[0], 1, "dtk_generation")?,
            flags,
            current: 0,
        })
    }

    /// Starts the other generation. Returns the one that ends, which no program updates
    /// once this returns.
    fn switch(&mut self) -> Result<usize, MapError> {
        let ended = self.current;
        self.live.set_inner(0, &self.flags[1 - ended as usize])?;
        self.current = 1 - ended;
        Ok(ended as usize)
    }

    /// Stores the current generation (a u32) at GENERATION. Clobbers R0–R5.
    fn emit_load(&self, asm: &mut Asm) {
        let loaded = asm.label();
        asm.st(Size::W, Reg::R10, GENERATION, 0)
            .ld_map_fd(Reg::R1, self.live.fd())
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

/// R0 = the map's value for the key on the stack at `key`, or 0.
fn lookup(asm: &mut Asm, map: &Map, key: i16) {
    asm.ld_map_fd(Reg::R1, map.fd())
        .mov64_reg(Reg::R2, Reg::R10)
        .alu64(AluOp::Add, Reg::R2, Src::Imm(key.into()))
        .call(Helper::MapLookupElem);
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

/// One kernel aggregation as read back.
#[derive(Debug)]
pub struct KernelAggregationRead {
    pub name: String,
    /// The CPUs combined.
    pub entries: Vec<AggEntry>,
    /// What was counted since the last read (a drained aggregation), to add to the entries
    /// the executor holds; else the totals since the start, which replace them.
    pub increments: bool,
}

impl AggregationMaps {
    /// Every kernel aggregation's entries. Drained aggregations start a new generation
    /// together, and the one that ended is read and left empty.
    pub fn read(&mut self, plan: &Plan) -> Result<Vec<KernelAggregationRead>, MapError> {
        let ended = match &mut self.generation {
            Some(generation) => generation.switch()?,
            None => 0,
        };
        self.maps
            .iter()
            .map(|(aggregation, counts)| {
                let (slots, increments) = match counts {
                    Counts::Total(map) => (slots(aggregation, map, plan)?, false),
                    Counts::Drained(maps) => {
                        let slots = slots(aggregation, &maps[ended], plan)?;
                        empty(&maps[ended], aggregation.storage, &slots)?;
                        (slots, true)
                    }
                };
                Ok(KernelAggregationRead {
                    name: aggregation.name.clone(),
                    entries: slots.into_iter().filter_map(|(_, entry)| entry).collect(),
                    increments,
                })
            })
            .collect()
    }
}

/// Every key of one aggregation's map, with its entry when some CPU updated it.
type Slots = Vec<(Vec<u8>, Option<AggEntry>)>;

fn slots(aggregation: &KernelAggregation, map: &Map, plan: &Plan) -> Result<Slots, MapError> {
    let mut slots = Vec::new();
    for key in map.keys()? {
        let Some(per_cpu) = map.lookup_per_cpu(&key)? else {
            continue;
        };
        let entry = combined(aggregation.func, &per_cpu).map(|value| AggEntry {
            keys: key_values(aggregation, &key, plan),
            value: AggValue::Scalar(value),
        });
        slots.push((key, entry));
    }
    Ok(slots)
}

/// Empties a map no program updates any more: deletes every key of a hash map, and zeroes
/// the array slots that were updated (array slots cannot be deleted).
fn empty(map: &Map, storage: Storage, slots: &Slots) -> Result<(), MapError> {
    let zero = vec![0u8; map.per_cpu_value_size()];
    for (key, entry) in slots {
        match storage {
            Storage::Hash => {
                map.delete(key)?;
            }
            Storage::ByProbe { .. } if entry.is_some() => map.update(key, &zero, Update::Any)?,
            Storage::ByProbe { .. } => {}
        }
    }
    Ok(())
}

fn word(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_ne_bytes(b)
}

/// The CPUs' slots combined; None when no CPU updated the key.
fn combined(func: AggFunc, per_cpu: &[Vec<u8>]) -> Option<i64> {
    let used: Vec<(u64, i64)> = per_cpu
        .iter()
        .filter(|slot| slot.len() >= 16)
        .map(|slot| (word(slot, 0), word(slot, 8) as i64))
        .filter(|&(updates, _)| updates > 0)
        .collect();
    let values = used.iter().map(|&(_, v)| v);
    match func {
        AggFunc::Count => (!used.is_empty()).then(|| used.iter().map(|&(n, _)| n as i64).sum()),
        AggFunc::Sum => (!used.is_empty()).then(|| values.sum()),
        AggFunc::Min => values.min(),
        _ => values.max(),
    }
}

/// The D values of a map key (for `Storage::ByProbe`, the array index).
fn key_values(aggregation: &KernelAggregation, key: &[u8], plan: &Plan) -> Vec<Value> {
    let mut at = 0;
    let mut values = Vec::new();
    for kind in &aggregation.keys {
        let probe = || {
            let index = match aggregation.storage {
                Storage::Hash => word(key, at) as usize,
                Storage::ByProbe { .. } => {
                    let mut b = [0u8; 4];
                    b.copy_from_slice(&key[..4]);
                    u32::from_ne_bytes(b) as usize
                }
            };
            plan.probes.get(index).map(|p| &p.info.desc)
        };
        values.push(match kind {
            KeyKind::Int { signed: true } => Value::Int(word(key, at) as i64),
            KeyKind::Int { signed: false } => Value::UInt(word(key, at)),
            KeyKind::Execname => {
                let comm = &key[at..at + 16];
                let end = comm.iter().position(|&b| b == 0).unwrap_or(16);
                Value::Str(comm[..end].into())
            }
            KeyKind::ProbeFunc => Value::Str(
                probe()
                    .map(|d| d.function.clone())
                    .unwrap_or_default()
                    .into(),
            ),
            KeyKind::ProbeName => {
                Value::Str(probe().map(|d| d.name.clone()).unwrap_or_default().into())
            }
            KeyKind::Str(s) => Value::Str(s.as_str().into()),
            KeyKind::Const {
                value,
                signed: true,
            } => Value::Int(*value as i64),
            KeyKind::Const { value, .. } => Value::UInt(*value),
        });
        at += kind.size();
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(updates: u64, value: i64) -> Vec<u8> {
        [updates.to_ne_bytes(), value.to_ne_bytes()].concat()
    }

    #[test]
    fn cpus_combine_and_untouched_slots_are_ignored() {
        let slots = vec![slot(2, 5), slot(0, 0), slot(3, -4)];
        assert_eq!(combined(AggFunc::Count, &slots), Some(5));
        assert_eq!(combined(AggFunc::Sum, &slots), Some(1));
        assert_eq!(combined(AggFunc::Min, &slots), Some(-4));
        assert_eq!(combined(AggFunc::Max, &slots), Some(5));
        assert_eq!(combined(AggFunc::Min, &[slot(0, 0)]), None);
    }
}
