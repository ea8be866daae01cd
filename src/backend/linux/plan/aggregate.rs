//! Kernel-side aggregations: a clause whose body is only `@a[keys] = count()`, `sum(v)`,
//! `min(v)` or `max(v)`, with keys and values the kernel has at the probe (pid, tid, uid, gid,
//! cpu, argN, constants, execname, probefunc, probename), under a predicate the kernel can
//! evaluate, on probes that fire in the kernel, runs entirely in the probe's BPF program: it
//! updates a per-CPU hash map and sends nothing to user space. The executor skips such
//! clauses (they leave `ProbeInfo::clauses`) and reads the maps when it prints.
//!
//! An aggregation whose keys are all constants and probe names (probefunc, probename) is kept
//! in a per-CPU array indexed by the probe (`Storage::ByProbe`) instead of a hash map: the
//! probe index alone tells its entries apart, and an array slot is found by a bounds check
//! where a hash map hashes the key, walks a bucket and inserts new keys. `syscall:::entry {
//! @[probefunc] = count(); }` is the common case.
//!
//! An aggregation qualifies only if every clause that updates it qualifies, every update
//! uses the same function and key shapes, and no action but printa names it: the executor
//! prints it from `Attached::read_kernel_aggregations`, while clear, trunc and normalize act
//! on values the executor must hold. Clauses whose predicate the front end folded
//! to 0 never run and are left out of the reckoning.

use std::collections::{BTreeMap, BTreeSet};

use super::captures::walk;
use super::filter::{is_value, kernel_predicate, specialize};
use super::{PlannedProbe, Site};
use crate::backend::linux::d::ast::{Builtin, Clause, Expr, ExprKind, Function, Stmt};
use crate::backend::linux::firing::ProbeInfo;
use crate::event::AggFunc;

/// Keys of a kernel aggregation larger than this stay in user space (they live on the BPF
/// stack while the map is updated).
const MAX_KEY_SIZE: usize = 256;

/// One aggregation kept in a BPF map.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelAggregation {
    /// The name without `@` (empty for `@`).
    pub name: String,
    pub func: AggFunc,
    pub keys: Vec<KeyKind>,
    pub storage: Storage,
}

/// The kind of map an aggregation lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// A per-CPU hash map whose key is the key values' bytes (`KernelAggregation::key_size`).
    Hash,
    /// A per-CPU array with one slot per probe of the plan (a single slot when no key names
    /// the probe): every key is a constant or the name of the probe that fired.
    ByProbe { slots: u32 },
}

impl KernelAggregation {
    /// Bytes of a map key: 8 per key, 16 for execname.
    pub fn key_size(&self) -> usize {
        key_size(&self.keys)
    }
}

/// Bytes of a map key with these keys (at least 8: a map key cannot be empty).
fn key_size(keys: &[KeyKind]) -> usize {
    keys.iter().map(|k| k.size()).sum::<usize>().max(8)
}

/// How one key is stored in a map key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// A 64-bit integer; `signed` decides how it reads back.
    Int {
        signed: bool,
    },
    /// execname: comm's 16 bytes.
    Execname,
    /// probefunc or probename: stored as the plan's probe index, named again when read.
    ProbeFunc,
    ProbeName,
    /// A string constant: takes no room in the map key.
    Str(String),
    /// An integer that every update gives the same constant value: takes no room either.
    Const {
        value: u64,
        signed: bool,
    },
}

impl KeyKind {
    pub fn size(&self) -> usize {
        match self {
            KeyKind::Execname => 16,
            KeyKind::Str(_) | KeyKind::Const { .. } => 0,
            _ => 8,
        }
    }

    fn names_probe(&self) -> bool {
        matches!(self, KeyKind::ProbeFunc | KeyKind::ProbeName)
    }
}

/// One update a kernel clause makes.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelUpdate {
    /// Index into `Plan::kernel_aggregations`.
    pub aggregation: usize,
    pub keys: Vec<Expr>,
    /// The value for sum/min/max; None for count.
    pub value: Option<Expr>,
}

/// A clause run in the kernel at one probe.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelClause {
    /// Index among the program's clauses.
    pub clause: usize,
    /// The predicate as the kernel evaluates it at this probe; None when there is none.
    pub predicate: Option<Expr>,
    pub updates: Vec<KernelUpdate>,
}

/// The parts of the record header that kernel clauses read. A program that emits no record
/// fills only these: the helpers behind the others (the clock, comm, the cgroup id) cost more
/// than a map update, on every firing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeaderReads {
    pub cpu: bool,
    /// pid and tid.
    pub pid_tgid: bool,
    /// uid and gid.
    pub uid_gid: bool,
    pub comm: bool,
    /// arg0 … arg9 (args[N] and errno read them too).
    pub args: bool,
    /// Something else: fill the whole header.
    pub all: bool,
}

impl HeaderReads {
    pub const ALL: HeaderReads = HeaderReads {
        cpu: true,
        pid_tgid: true,
        uid_gid: true,
        comm: true,
        args: true,
        all: true,
    };

    /// What these clauses read, together.
    pub fn of(clauses: &[KernelClause]) -> HeaderReads {
        let mut reads = HeaderReads::default();
        let exprs = clauses.iter().flat_map(|c| {
            c.predicate.iter().chain(
                c.updates
                    .iter()
                    .flat_map(|u| u.keys.iter().chain(u.value.iter())),
            )
        });
        for e in exprs {
            walk(e, &mut |e| reads.add(e));
        }
        reads
    }

    fn add(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Builtin(b) => match b {
                Builtin::Cpu => self.cpu = true,
                Builtin::Pid | Builtin::Tid => self.pid_tgid = true,
                Builtin::Uid | Builtin::Gid => self.uid_gid = true,
                Builtin::Execname => self.comm = true,
                Builtin::Arg(_) | Builtin::Args | Builtin::Errno => self.args = true,
                // Stored as the probe index, which every program writes.
                Builtin::Probefunc | Builtin::Probename => {}
                _ => *self = HeaderReads::ALL,
            },
            ExprKind::Int(_)
            | ExprKind::Str(_)
            | ExprKind::Binary { .. }
            | ExprKind::Unary { .. }
            | ExprKind::Cast { .. }
            | ExprKind::Ternary { .. }
            | ExprKind::Index { .. } => {}
            _ => *self = HeaderReads::ALL,
        }
    }

    pub fn union(self, other: HeaderReads) -> HeaderReads {
        HeaderReads {
            cpu: self.cpu || other.cpu,
            pid_tgid: self.pid_tgid || other.pid_tgid,
            uid_gid: self.uid_gid || other.uid_gid,
            comm: self.comm || other.comm,
            args: self.args || other.args,
            all: self.all || other.all,
        }
    }
}

/// The shape of one aggregating statement, when the kernel can run it.
struct Shape {
    name: String,
    func: AggFunc,
    keys: Vec<KeyKind>,
}

/// Moves the qualifying clauses of each probe to `PlannedProbe::kernel_clauses` and returns
/// the aggregations they update.
pub fn assign(probes: &mut [PlannedProbe], clauses: &[&Clause]) -> Vec<KernelAggregation> {
    let aggregations = eligible_aggregations(probes, clauses);
    let index_of = |name: &str| aggregations.iter().position(|a| a.name == name);
    for probe in probes.iter_mut() {
        let mut kept = Vec::new();
        for &c in &probe.info.clauses {
            match kernel_clause(clauses[c], c, &probe.info, &index_of) {
                Some(kernel) => probe.kernel_clauses.push(kernel),
                None => kept.push(c),
            }
        }
        probe.info.clauses = kept;
    }
    let mut aggregations = aggregations;
    for (index, aggregation) in aggregations.iter_mut().enumerate() {
        fold_constant_keys(aggregation, &updates_of(probes, index));
        aggregation.storage = storage(&aggregation.keys, probes.len());
    }
    aggregations
}

/// Every update of aggregation `index`, at every probe.
fn updates_of(probes: &[PlannedProbe], index: usize) -> Vec<&KernelUpdate> {
    probes
        .iter()
        .flat_map(|p| &p.kernel_clauses)
        .flat_map(|c| &c.updates)
        .filter(|u| u.aggregation == index)
        .collect()
}

/// Turns each integer key that every update sets to one constant into `KeyKind::Const`
/// (`@[BY_PROCESS ? pid : 0, probefunc]` with BY_PROCESS = 0).
fn fold_constant_keys(aggregation: &mut KernelAggregation, updates: &[&KernelUpdate]) {
    for (position, kind) in aggregation.keys.iter_mut().enumerate() {
        let KeyKind::Int { signed } = *kind else {
            continue;
        };
        let mut values = updates
            .iter()
            .map(|u| u.keys.get(position).and_then(Expr::as_int));
        let Some(Some(first)) = values.next() else {
            continue;
        };
        if values.all(|v| v == Some(first)) {
            *kind = KeyKind::Const {
                value: first,
                signed,
            };
        }
    }
}

/// A per-probe array when the keys hold nothing but constants and probe names.
fn storage(keys: &[KeyKind], probes: usize) -> Storage {
    if !keys.iter().all(|k| k.size() == 0 || k.names_probe()) {
        return Storage::Hash;
    }
    let slots = if keys.iter().any(KeyKind::names_probe) {
        probes.max(1)
    } else {
        1
    };
    Storage::ByProbe {
        slots: u32::try_from(slots).unwrap_or(u32::MAX),
    }
}

/// The aggregations every updating clause of which can run in the kernel at all its probes.
fn eligible_aggregations(probes: &[PlannedProbe], clauses: &[&Clause]) -> Vec<KernelAggregation> {
    let mut shapes: BTreeMap<String, Option<(AggFunc, Vec<KeyKind>)>> = BTreeMap::new();
    for (index, clause) in clauses.iter().enumerate() {
        if is_dead(clause) {
            continue;
        }
        match clause_shapes(clause).filter(|_| runs_in_kernel(probes, clauses, index)) {
            Some(statements) => {
                for s in statements {
                    let shape = (s.func, s.keys);
                    let entry = shapes.entry(s.name).or_insert_with(|| Some(shape.clone()));
                    if entry.as_ref() != Some(&shape) {
                        *entry = None;
                    }
                }
            }
            None => {
                for name in aggregation_names(clause) {
                    shapes.insert(name, None);
                }
            }
        }
    }
    for name in names_used_by_other_actions(clauses) {
        shapes.insert(name, None);
    }
    for (_, shape) in shapes.iter_mut() {
        if shape
            .as_ref()
            .is_some_and(|(_, keys)| key_size(keys) > MAX_KEY_SIZE)
        {
            *shape = None;
        }
    }
    // A clause that also updates a user-space aggregation stays in user space, and with it
    // every aggregation it updates; repeat until nothing changes.
    let names: Vec<Vec<String>> = clauses.iter().map(|c| aggregation_names(c)).collect();
    let mut changed = true;
    while changed {
        changed = false;
        for clause_names in &names {
            let user = clause_names
                .iter()
                .any(|n| shapes.get(n).is_some_and(Option::is_none));
            for name in clause_names.iter().filter(|_| user) {
                if let Some(shape) = shapes.get_mut(name).filter(|s| s.is_some()) {
                    *shape = None;
                    changed = true;
                }
            }
        }
    }
    shapes
        .into_iter()
        .filter_map(|(name, shape)| {
            let (func, keys) = shape?;
            Some(KernelAggregation {
                name,
                func,
                keys,
                storage: Storage::Hash,
            })
        })
        .collect()
}

/// Whether clause `index`'s predicate can run in the kernel at every probe it is on, and
/// every one of those probes fires in the kernel.
fn runs_in_kernel(probes: &[PlannedProbe], clauses: &[&Clause], index: usize) -> bool {
    probes
        .iter()
        .filter(|p| p.info.clauses.contains(&index))
        .all(|p| {
            let kernel_site = !matches!(p.site, Site::UserSpace | Site::Tick { .. });
            let predicate_ok = clauses[index]
                .predicate
                .as_ref()
                .is_none_or(|e| kernel_predicate(e, &p.info).is_some());
            kernel_site && predicate_ok
        })
}

/// The aggregating statements of a clause made only of them, each with a shape the kernel
/// can run; None otherwise.
fn clause_shapes(clause: &Clause) -> Option<Vec<Shape>> {
    let body = clause.body.as_ref().filter(|b| !b.is_empty())?;
    body.iter()
        .map(|stmt| match stmt {
            Stmt::Aggregate(a) => {
                let func = match (a.func, a.args.as_slice()) {
                    (Function::Count, []) => AggFunc::Count,
                    (Function::Sum, [v]) if is_value(v) => AggFunc::Sum,
                    (Function::Min, [v]) if is_value(v) => AggFunc::Min,
                    (Function::Max, [v]) if is_value(v) => AggFunc::Max,
                    _ => return None,
                };
                let keys = a.keys.iter().map(key_kind).collect::<Option<_>>()?;
                Some(Shape {
                    name: a.name.clone(),
                    func,
                    keys,
                })
            }
            _ => None,
        })
        .collect()
}

fn key_kind(e: &Expr) -> Option<KeyKind> {
    match &e.kind {
        ExprKind::Builtin(Builtin::Execname) => Some(KeyKind::Execname),
        ExprKind::Builtin(Builtin::Probefunc) => Some(KeyKind::ProbeFunc),
        ExprKind::Builtin(Builtin::Probename) => Some(KeyKind::ProbeName),
        ExprKind::Str(s) => Some(KeyKind::Str(s.clone())),
        _ if is_value(e) => Some(KeyKind::Int {
            signed: matches!(
                e.ty,
                crate::backend::linux::d::ast::DType::Int { signed: true, .. }
            ),
        }),
        _ => None,
    }
}

/// Every aggregation a clause updates.
fn aggregation_names(clause: &Clause) -> Vec<String> {
    fn collect(stmts: &[Stmt], out: &mut Vec<String>) {
        for stmt in stmts {
            match stmt {
                Stmt::Aggregate(a) => out.push(a.name.clone()),
                Stmt::If {
                    then, otherwise, ..
                } => {
                    collect(then, out);
                    collect(otherwise.as_deref().unwrap_or_default(), out);
                }
                Stmt::Expr(_) => {}
            }
        }
    }
    let mut names = Vec::new();
    collect(clause.body.as_deref().unwrap_or_default(), &mut names);
    names
}

/// A clause whose predicate is the constant 0.
fn is_dead(clause: &Clause) -> bool {
    clause.predicate.as_ref().and_then(Expr::as_int) == Some(0)
}

/// Aggregations named by clear, trunc, normalize or denormalize in a clause that can run.
fn names_used_by_other_actions(clauses: &[&Clause]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut visit = |e: &Expr| {
        if let ExprKind::Call { func, args } = &e.kind {
            if *func != Function::Printa {
                for arg in args {
                    if let ExprKind::Aggregation(name) = &arg.kind {
                        names.insert(name.clone());
                    }
                }
            }
        }
    };
    for clause in clauses.iter().filter(|c| !is_dead(c)) {
        for stmt in clause.body.iter().flatten() {
            super::captures::walk_stmt(stmt, &mut visit);
        }
        if let Some(p) = &clause.predicate {
            walk(p, &mut visit);
        }
    }
    names
}

/// The kernel form of clause `clause` at a probe, when all it updates is kernel-kept.
fn kernel_clause(
    clause: &Clause,
    index: usize,
    probe: &ProbeInfo,
    index_of: &impl Fn(&str) -> Option<usize>,
) -> Option<KernelClause> {
    let body = clause.body.as_ref().filter(|b| !b.is_empty())?;
    let updates = body
        .iter()
        .map(|stmt| match stmt {
            Stmt::Aggregate(a) => Some(KernelUpdate {
                aggregation: index_of(&a.name)?,
                // probefunc and probename keys stay as they are: the program stores the
                // probe index, so that probes can share one copy of the clause.
                keys: a
                    .keys
                    .iter()
                    .map(|k| match key_kind(k) {
                        Some(KeyKind::Int { .. }) => specialize(k, probe),
                        _ => k.clone(),
                    })
                    .collect(),
                value: a.args.first().map(|v| specialize(v, probe)),
            }),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    let predicate = match &clause.predicate {
        None => None,
        Some(p) => Some(kernel_predicate(p, probe)?),
    };
    // A predicate decided at this probe leaves no test, or no updates, to emit.
    let (predicate, updates) = match predicate.as_ref().and_then(Expr::as_int) {
        Some(0) => (None, Vec::new()),
        Some(_) => (None, updates),
        None => (predicate, updates),
    };
    Some(KernelClause {
        clause: index,
        predicate,
        updates,
    })
}
