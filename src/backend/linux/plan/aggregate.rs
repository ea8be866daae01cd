//! Kernel-side aggregations: a clause whose body is only `@a[keys] = count()`, `sum(v)`,
//! `min(v)` or `max(v)`, with keys and values the kernel has at the probe (pid, tid, uid, gid,
//! cpu, argN, constants, execname, probefunc, probename), under a predicate the kernel can
//! evaluate, on probes that fire in the kernel, runs entirely in the probe's BPF program: it
//! updates a per-CPU map and sends nothing to user space. The executor skips such
//! clauses (they leave `ProbeInfo::clauses`) and reads the maps when it prints.
//!
//! An aggregation whose keys are all constants and probe names (probefunc, probename) is kept
//! in a per-CPU array indexed by the probe (`Storage::ByProbe`) instead of a hash map: the
//! probe index alone tells its entries apart, and an array slot is found by a bounds check
//! where a hash map hashes the key, walks a bucket and inserts new keys. `syscall:::entry {
//! @[probefunc] = count(); }` is the common case.
//!
//! An aggregation qualifies only if every clause that updates it qualifies and every update
//! uses the same function and key shapes. The executor prints it from what
//! `Attached::read_kernel_aggregations` reads before the engine fires tick-N and END. clear,
//! trunc, normalize and denormalize act on the copy the executor holds, so they may name a
//! kernel aggregation only in clauses of those probes, where that copy is current; in any
//! other clause (a kernel probe's, whose record the executor runs later, or BEGIN's or
//! ERROR's) they keep the aggregation in user space. An aggregation that clear or
//! trunc names is `KernelAggregation::drained`: the kernel keeps only what was counted since
//! the last read, which the executor adds to its copy (codegen::aggregate says how no count
//! is lost). Clauses whose predicate the front end folded to 0 never run and are left out of
//! the reckoning.

use std::collections::{BTreeMap, BTreeSet};

use super::filter::{is_value, is_value_in, kernel_predicate_in, specialize};
use super::walk::walk;
use super::PlannedProbe;
use crate::backend::linux::d::ast::{Builtin, Clause, Expr, ExprKind, Function, Stmt, VarScope};
use crate::backend::linux::deep;
use crate::backend::linux::firing::{ProbeInfo, ProbeKind};
use crate::event::AggFunc;

/// Keys of a kernel aggregation larger than this stay in user space (they live on the BPF
/// stack while the map is updated).
pub const MAX_KEY_SIZE: usize = 256;

/// One aggregation kept in a BPF map.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelAggregation {
    /// The name without `@` (empty for `@`).
    pub name: String,
    pub func: AggFunc,
    pub keys: Vec<KeyKind>,
    pub storage: Storage,
    /// clear or trunc names it: each read takes what the kernel counted since the last
    /// read, and leaves the kernel counting from nothing.
    pub drained: bool,
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
    /// Assignments to thread variables kept in the kernel, in clause order among the updates.
    pub assigns: Vec<ThreadAssign>,
}

/// `self->NAME = value` in a kernel clause.
#[derive(Clone, Debug, PartialEq)]
pub struct ThreadAssign {
    /// Index into `Plan::kernel_vars`.
    pub var: usize,
    pub value: Expr,
    /// How many of the clause's updates come before it.
    pub after: usize,
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
    pub timestamp: bool,
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
        timestamp: true,
        all: true,
    };

    /// What these clauses read, together.
    pub fn of(clauses: &[KernelClause]) -> HeaderReads {
        let mut reads = HeaderReads::default();
        let exprs = clauses.iter().flat_map(|c| {
            c.predicate
                .iter()
                .chain(
                    c.updates
                        .iter()
                        .flat_map(|u| u.keys.iter().chain(u.value.iter())),
                )
                .chain(c.assigns.iter().map(|a| &a.value))
        });
        for e in exprs {
            walk(e, &mut |e| reads.add(e));
        }
        reads
    }

    fn add(&mut self, e: &Expr) {
        deep::recurse(|| {
            match &e.kind {
            ExprKind::Builtin(b) => match b {
                Builtin::Cpu => self.cpu = true,
                Builtin::Pid | Builtin::Tid => self.pid_tgid = true,
                Builtin::Uid | Builtin::Gid => self.uid_gid = true,
                Builtin::Execname => self.comm = true,
                Builtin::Arg(_) | Builtin::Args | Builtin::Errno => self.args = true,
                Builtin::Timestamp => self.timestamp = true,
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
            | ExprKind::Index { .. }
            // Thread variables are looked up by the clause's own code.
            | ExprKind::Var { .. } => {}
            _ => *self = HeaderReads::ALL,
        }
        })
    }

    pub fn union(self, other: HeaderReads) -> HeaderReads {
        HeaderReads {
            cpu: self.cpu || other.cpu,
            pid_tgid: self.pid_tgid || other.pid_tgid,
            uid_gid: self.uid_gid || other.uid_gid,
            comm: self.comm || other.comm,
            args: self.args || other.args,
            timestamp: self.timestamp || other.timestamp,
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
pub fn assign(
    probes: &mut [PlannedProbe],
    clauses: &[&Clause],
    kernel_vars: &[String],
) -> Vec<KernelAggregation> {
    let aggregations = eligible_aggregations(probes, clauses, kernel_vars);
    let index_of = |name: &str| aggregations.iter().position(|a| a.name == name);
    for probe in probes.iter_mut() {
        let mut kept = Vec::new();
        for &c in &probe.info.clauses {
            match kernel_clause(clauses[c], c, &probe.info, &index_of, kernel_vars) {
                // A clause with nothing to do at this probe needs no code.
                Some(kernel) if kernel.updates.is_empty() && kernel.assigns.is_empty() => {}
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
fn eligible_aggregations(
    probes: &[PlannedProbe],
    clauses: &[&Clause],
    kernel_vars: &[String],
) -> Vec<KernelAggregation> {
    let mut shapes: BTreeMap<String, Option<(AggFunc, Vec<KeyKind>)>> = BTreeMap::new();
    for (index, clause) in clauses.iter().enumerate() {
        if is_dead(clause) {
            continue;
        }
        match clause_shapes(clause, kernel_vars)
            .filter(|_| runs_in_kernel(probes, clauses, index, kernel_vars))
        {
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
    let actions = other_actions(probes, clauses);
    for name in actions.user_space {
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
                drained: actions.drained.contains(&name),
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
fn runs_in_kernel(
    probes: &[PlannedProbe],
    clauses: &[&Clause],
    index: usize,
    kernel_vars: &[String],
) -> bool {
    probes
        .iter()
        .filter(|p| p.info.clauses.contains(&index))
        .all(|p| {
            let kernel_site = p.info.kind.in_kernel();
            let predicate_ok = clauses[index]
                .predicate
                .as_ref()
                .is_none_or(|e| kernel_predicate_in(e, &p.info, kernel_vars).is_some());
            kernel_site && predicate_ok
        })
}

/// The aggregating statements of a clause the kernel can run whole (aggregations, and
/// assignments to kernel thread variables and to clause-local variables), each with a shape
/// the kernel can run; None otherwise.
fn clause_shapes(clause: &Clause, kernel_vars: &[String]) -> Option<Vec<Shape>> {
    let mut shapes = Vec::new();
    for statement in kernel_statements(clause, kernel_vars)? {
        if let Statement::Aggregate {
            name, func, keys, ..
        } = statement
        {
            shapes.push(Shape {
                name,
                func,
                keys: keys.iter().map(key_kind).collect::<Option<_>>()?,
            });
        }
    }
    Some(shapes)
}

/// A statement of a kernel clause, with `this->` variables replaced by their values.
enum Statement {
    Aggregate {
        name: String,
        func: AggFunc,
        keys: Vec<Expr>,
        value: Option<Expr>,
    },
    Assign {
        var: usize,
        value: Expr,
    },
}

/// The statements of `clause` when the kernel can run them all: aggregations with
/// count/sum/min/max of kernel values, `self->x = value` for x kept in the kernel, and
/// `this->t = value` (which the following statements read as the value itself).
fn kernel_statements(clause: &Clause, kernel_vars: &[String]) -> Option<Vec<Statement>> {
    let body = clause.body.as_ref().filter(|b| !b.is_empty())?;
    let mut locals: Vec<(String, Expr)> = Vec::new();
    let mut out = Vec::new();
    for stmt in body {
        match stmt {
            Stmt::Aggregate(a) => {
                let args: Vec<Expr> = a.args.iter().map(|v| with_locals(v, &locals)).collect();
                let value_ok = |v: &Expr| is_value_in(v, kernel_vars);
                let func = match (a.func, args.as_slice()) {
                    (AggFunc::Count, []) => AggFunc::Count,
                    (AggFunc::Sum, [v]) if value_ok(v) => AggFunc::Sum,
                    (AggFunc::Min, [v]) if value_ok(v) => AggFunc::Min,
                    (AggFunc::Max, [v]) if value_ok(v) => AggFunc::Max,
                    _ => return None,
                };
                out.push(Statement::Aggregate {
                    name: a.name.clone(),
                    func,
                    keys: a.keys.iter().map(|k| with_locals(k, &locals)).collect(),
                    value: args.into_iter().next(),
                });
            }
            Stmt::Expr(Expr {
                kind:
                    ExprKind::Assign {
                        op: None,
                        target,
                        value,
                    },
                ..
            }) => {
                let value = with_locals(value, &locals);
                if !is_value_in(&value, kernel_vars) {
                    return None;
                }
                match &target.kind {
                    ExprKind::Var {
                        name,
                        scope: VarScope::Thread,
                    } => out.push(Statement::Assign {
                        var: kernel_vars.iter().position(|v| v == name)?,
                        value: Expr {
                            kind: ExprKind::Cast {
                                to: target.ty.clone(),
                                expr: Box::new(value),
                            },
                            span: target.span,
                            ty: target.ty.clone(),
                        },
                    }),
                    ExprKind::Var {
                        name,
                        scope: VarScope::Clause,
                    } => locals.push((name.clone(), value)),
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

/// `e` with each `this->` variable set earlier in the clause replaced by its value.
fn with_locals(e: &Expr, locals: &[(String, Expr)]) -> Expr {
    let mut out = e.clone();
    replace_locals(&mut out, locals);
    out
}

fn replace_locals(e: &mut Expr, locals: &[(String, Expr)]) {
    deep::recurse(|| match &mut e.kind {
        ExprKind::Var {
            name,
            scope: VarScope::Clause,
        } => {
            if let Some((_, value)) = locals.iter().rev().find(|(n, _)| n == name) {
                *e = value.clone();
            }
        }
        ExprKind::Binary { lhs, rhs, .. } => {
            replace_locals(lhs, locals);
            replace_locals(rhs, locals);
        }
        ExprKind::Unary { operand: x, .. } | ExprKind::Cast { expr: x, .. } => {
            replace_locals(x, locals)
        }
        _ => {}
    })
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

/// What clear, trunc, normalize and denormalize require of the aggregations they name.
#[derive(Default)]
struct OtherActions {
    /// Named where the executor's copy may be stale: they stay in user space.
    user_space: BTreeSet<String>,
    /// Cleared or truncated where the copy is current: the kernel drains them.
    drained: BTreeSet<String>,
}

/// The aggregations that clear, trunc, normalize or denormalize name in clauses that can
/// run, sorted by where those clauses run.
fn other_actions(probes: &[PlannedProbe], clauses: &[&Clause]) -> OtherActions {
    let mut actions = OtherActions::default();
    for (index, clause) in clauses.iter().enumerate().filter(|(_, c)| !is_dead(c)) {
        let current = runs_where_aggregations_are_read(probes, index);
        let mut visit = |e: &Expr| {
            let ExprKind::Call { func, args } = &e.kind else {
                return;
            };
            let names = args.iter().filter_map(|a| match &a.kind {
                ExprKind::Aggregation(name) => Some(name.clone()),
                _ => None,
            });
            match func {
                Function::Printa => {}
                Function::Clear | Function::Trunc if current => actions.drained.extend(names),
                Function::Normalize | Function::Denormalize if current => {}
                _ => actions.user_space.extend(names),
            }
        };
        for stmt in clause.body.iter().flatten() {
            super::walk::walk_stmt(stmt, &mut visit);
        }
        if let Some(p) = &clause.predicate {
            walk(p, &mut visit);
        }
    }
    actions
}

/// Whether clause `index` runs only at probes before which the engine reads the kernel
/// aggregations: tick-N and END.
fn runs_where_aggregations_are_read(probes: &[PlannedProbe], index: usize) -> bool {
    probes
        .iter()
        .filter(|p| p.info.clauses.contains(&index))
        .all(|p| aggregations_read_before(&p.info.kind))
}

/// Whether the engine reads the kernel aggregations before it fires probes of this kind.
fn aggregations_read_before(kind: &ProbeKind) -> bool {
    match kind {
        ProbeKind::End | ProbeKind::Tick => true,
        ProbeKind::Begin
        | ProbeKind::Error
        | ProbeKind::Profile
        | ProbeKind::SyscallEntry
        | ProbeKind::SyscallReturn
        | ProbeKind::Proc
        | ProbeKind::Usdt
        | ProbeKind::Uprobe => false,
    }
}

/// The kernel form of clause `clause` at a probe, when all it updates is kernel-kept.
fn kernel_clause(
    clause: &Clause,
    index: usize,
    probe: &ProbeInfo,
    index_of: &impl Fn(&str) -> Option<usize>,
    kernel_vars: &[String],
) -> Option<KernelClause> {
    let predicate = match &clause.predicate {
        None => None,
        Some(p) => Some(kernel_predicate_in(p, probe, kernel_vars)?),
    };
    // A predicate decided at this probe leaves no test, or nothing to do, whatever the body
    // (a clause that never runs here is the kernel's, so it holds no variable back).
    let predicate = match predicate.as_ref().and_then(Expr::as_int) {
        Some(0) => {
            return Some(KernelClause {
                clause: index,
                predicate: None,
                updates: Vec::new(),
                assigns: Vec::new(),
            })
        }
        Some(_) => None,
        None => predicate,
    };
    let mut updates = Vec::new();
    let mut assigns = Vec::new();
    for statement in kernel_statements(clause, kernel_vars)? {
        match statement {
            Statement::Aggregate {
                name, keys, value, ..
            } => updates.push(KernelUpdate {
                aggregation: index_of(&name)?,
                // probefunc and probename keys stay as they are: the program stores the
                // probe index, so that probes can share one copy of the clause.
                keys: keys
                    .iter()
                    .map(|k| match key_kind(k) {
                        Some(KeyKind::Int { .. }) => specialize(k, probe),
                        _ => k.clone(),
                    })
                    .collect(),
                value: value.map(|v| specialize(&v, probe)),
            }),
            Statement::Assign { var, value } => assigns.push(ThreadAssign {
                var,
                value: specialize(&value, probe),
                after: updates.len(),
            }),
        }
    }
    Some(KernelClause {
        clause: index,
        predicate,
        updates,
        assigns,
    })
}
