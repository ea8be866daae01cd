//! Kernel-side aggregations: a clause whose body is only `@a[keys] = count()`, `sum(v)`,
//! `min(v)` or `max(v)`, with keys and values the kernel has at the probe (pid, tid, uid, gid,
//! cpu, argN, constants, execname, probefunc, probename), under a predicate the kernel can
//! evaluate, on probes that fire in the kernel, runs entirely in the probe's BPF program: it
//! updates a per-CPU hash map and sends nothing to user space. The executor skips such
//! clauses (they leave `ProbeInfo::clauses`) and reads the maps when it prints.
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
}

impl KeyKind {
    pub fn size(&self) -> usize {
        match self {
            KeyKind::Execname => 16,
            KeyKind::Str(_) => 0,
            _ => 8,
        }
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
    aggregations
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
            Some(KernelAggregation { name, func, keys })
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
