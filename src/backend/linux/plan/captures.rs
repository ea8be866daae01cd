//! Capture analysis: which user memory a probe's BPF program must read at the probe, because
//! it will be gone (or changed) by the time the executor runs the clause.
//!
//! `copyinstr(E)` and `copyin(E, size)` read the traced process's memory. When E is `argN`
//! (or `args[N]`, or a cast of either), the clause's probes capture the string or bytes at
//! argN. When E is a variable (global, `self->x`, `this->x`), every clause that assigns
//! `x = argN` captures argN at its probes, since the pointer is read later through the
//! variable (opensnoop's `self->path = arg1` at entry, `copyinstr(self->path)` at return).
//! The fixed header (ids, time, pid/tid, uid/gid, comm, cgroup) and the probe's arguments are
//! always captured.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::derived::{self, read_size, AddrExpr, DerivedRead, ShadowStore};
use super::walk::{walk, walk_stmt};
use super::{PlannedProbe, Site};
use crate::backend::linux::d::ast::{Builtin, Clause, Expr, ExprKind, Function, VarScope};
use crate::backend::linux::firing::thread_member_path;

/// What a probe's program reads from user memory besides its arguments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Captures {
    /// argN whose string is read (bpf_probe_read_user_str into a strsize slot), ascending.
    pub strings: Vec<u8>,
    /// (argN, size) whose bytes are read (bpf_probe_read_user), ascending by N.
    pub bytes: Vec<(u8, u32)>,
    /// Reads at addresses the program computes (`derived`), sorted.
    pub derived: Vec<DerivedRead>,
    /// Values (argN, or what `derived` computes) to keep as this thread's
    /// `Plan::shadow_vars[i]`, for a later probe to read through (`AddrExpr::Shadow`); in
    /// the order of the firing's assignments.
    pub shadow_stores: Vec<ShadowStore>,
    /// The process state the clauses read (`ppid`, `curthread`; `curpsinfo`, `progenyof`),
    /// which the program reads from the current task at the probe (`record::process`).
    pub process: ProcessRead,
    /// `curthread->…` paths the clauses read (`firing::thread_member_path`), sorted; the
    /// plan's `thread_members` says how to read each.
    pub thread_members: Vec<Arc<str>>,
    /// The clauses read `cwd`, which the program reads by walking up from the task's
    /// working directory (`record::cwd`).
    pub cwd: bool,
    /// The kernel stack is recorded (`stack()`, `stackdepth`, `caller`).
    pub kernel_stack: bool,
    /// The user stack is recorded (`ustack()`, `ustackdepth`, `ucaller`).
    pub user_stack: bool,
}

/// What a pointer expression given to copyinstr/copyin refers to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pointer {
    Arg(u8),
    Var(String, Scope),
}

/// `VarScope` with an order, for sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    Global,
    Thread,
    Clause,
}

/// One clause's reads (string or `Some(size)` bytes) and `var = argN` assignments.
#[derive(Default)]
struct ClauseUse {
    reads: BTreeSet<(Pointer, Option<u32>)>,
    assigns: BTreeSet<(String, Scope, u8)>,
}

/// Fills in every probe's captures, and returns the thread variables whose pointers are
/// shadowed in the kernel. Probes served by one raw_syscalls program share one record
/// layout, so they get the union of their captures.
///
/// A thread variable set from an argument at one probe and read with copyinstr/copyin at
/// another (`self->path = arg1` at a syscall's entry, `copyinstr(self->path)` at its return)
/// is captured at the first probe, and read again at the second, as DTrace reads it: the
/// first probe also stores the pointer in a per-thread map (`shadow_stores`), and the second
/// reads through it (`AddrExpr::Shadow`). The second read sees what the process has written
/// or paged in meanwhile (the kernel faults a path in while opening it; BPF cannot); the
/// executor prefers it when its address is the variable's.
pub fn assign(probes: &mut [PlannedProbe], clauses: &[&Clause]) -> Vec<String> {
    let uses: Vec<ClauseUse> = clauses.iter().map(|c| clause_use(c)).collect();
    let var_reads: BTreeSet<(String, Scope, Option<u32>)> = uses
        .iter()
        .flat_map(|u| u.reads.iter())
        .filter_map(|(p, size)| match p {
            Pointer::Var(name, scope) => Some((name.clone(), *scope, *size)),
            Pointer::Arg(_) => None,
        })
        .collect();
    let shadow_vars: Vec<String> = var_reads
        .iter()
        .filter(|(name, scope, _)| {
            *scope == Scope::Thread
                && uses.iter().any(|u| {
                    u.assigns
                        .iter()
                        .any(|(v, s, _)| v == name && *s == Scope::Thread)
                })
        })
        .map(|(name, _, _)| name.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let shadow_vars = with_followed(probes, clauses, shadow_vars);
    let shadow = |name: &str, scope: Scope| {
        (scope == Scope::Thread)
            .then(|| shadow_vars.iter().position(|v| v == name))
            .flatten()
    };
    for probe in probes.iter_mut() {
        let mut wanted: BTreeSet<(u8, Option<u32>)> = BTreeSet::new();
        let mut shadow_reads: BTreeSet<(usize, Option<u32>)> = BTreeSet::new();
        let mut shadow_stores: BTreeSet<(usize, u8)> = BTreeSet::new();
        for &c in &probe.info.clauses {
            let Some(used) = uses.get(c) else { continue };
            for (pointer, size) in &used.reads {
                match pointer {
                    Pointer::Arg(n) => {
                        wanted.insert((*n, *size));
                    }
                    Pointer::Var(name, scope) => {
                        if let Some(i) = shadow(name, *scope) {
                            shadow_reads.insert((i, *size));
                        }
                    }
                }
            }
            for (name, scope, n) in &used.assigns {
                for (_, _, size) in var_reads.iter().filter(|(v, s, _)| v == name && s == scope) {
                    wanted.insert((*n, *size));
                }
                if let Some(i) = shadow(name, *scope) {
                    shadow_stores.insert((i, *n));
                }
            }
        }
        let provided = probe.site.args().len();
        probe.captures = to_captures(
            wanted
                .into_iter()
                .filter(|(n, _)| usize::from(*n) < provided),
        );
        let derived = derived::reads_of(&own_clauses(probe, clauses), &shadow_vars, &probe.info);
        let mut reads = derived.reads;
        reads.extend(shadow_reads.into_iter().map(|(i, size)| DerivedRead {
            addr: AddrExpr::Shadow(i),
            size,
        }));
        reads.sort();
        reads.dedup();
        probe.captures.derived = reads;
        let mut stores: Vec<ShadowStore> = shadow_stores
            .into_iter()
            .filter(|(i, n)| {
                usize::from(*n) < provided && !derived.stores.iter().any(|s| s.var == *i)
            })
            .map(|(var, n)| ShadowStore {
                var,
                value: AddrExpr::Arg(n),
                guard: None,
                probe: None,
            })
            .collect();
        stores.extend(derived.stores);
        probe.captures.shadow_stores = stores;
        let own = own_clauses(probe, clauses);
        probe.captures.process = own
            .iter()
            .map(|c| reads_process(c))
            .max()
            .unwrap_or_default();
        probe.captures.thread_members = thread_members(&own);
        probe.captures.cwd = own.iter().any(|c| reads_builtin(c, Builtin::Cwd));
        if probe.site != Site::UserSpace {
            let (kernel, user) = stacks_used(&own_clauses(probe, clauses));
            probe.captures.kernel_stack = kernel;
            probe.captures.user_stack = user;
        }
    }
    unify_raw_syscalls(probes);
    shadow_vars
}

/// Adds to `shadow_vars` the thread variables that the kernel follows for derived reads: a
/// `self->x` in the address of a copyin/copyinstr (`copyin(self->frame + 8, 8)`) is computed
/// at the probe from the value an earlier probe of the thread kept, when every assignment to
/// x is one the kernel can mirror: `self->x = E` outside `if` bodies, with E computable at
/// the probe (arguments, constants, arithmetic, reads through pointers, and other followed
/// variables), in a clause without a predicate, with one the kernel evaluates, or with one
/// that is such a value itself (`/self->t/`: x keeps `t ? E : x`, see `derived`). The kernel
/// then keeps x when the executor sets it; a variable set any other way is not followed (its
/// reads go through the executor, which cannot reach the memory: an invalid address).
fn with_followed(
    probes: &[PlannedProbe],
    clauses: &[&Clause],
    mut shadow_vars: Vec<String>,
) -> Vec<String> {
    let mut candidates: BTreeSet<String> = address_vars(clauses)
        .into_iter()
        .filter_map(|(name, scope)| (scope == VarScope::Thread).then_some(name))
        .collect();
    candidates.retain(|name| !shadow_vars.contains(name));
    loop {
        let mut kept = shadow_vars.clone();
        kept.extend(candidates.iter().cloned());
        let mut unfollowable = BTreeSet::new();
        for probe in probes {
            let own = own_clauses(probe, clauses);
            unfollowable.extend(derived::reads_of(&own, &kept, &probe.info).unfollowable);
        }
        let before = candidates.len();
        candidates.retain(|name| !unfollowable.contains(name));
        if candidates.len() == before {
            break;
        }
    }
    shadow_vars.extend(candidates);
    shadow_vars
}

/// The variables (`this->` and `self->`) that addresses of copyin/copyinstr are computed
/// from: those named in the address, and those named in the values assigned to them.
fn address_vars<'c>(clauses: &[&'c Clause]) -> BTreeSet<(String, VarScope)> {
    let mut found: BTreeSet<(String, VarScope)> = BTreeSet::new();
    let mut assigned: Vec<((String, VarScope), &'c Expr)> = Vec::new();
    let names = |e: &Expr, into: &mut BTreeSet<(String, VarScope)>| {
        walk(e, &mut |e: &Expr| {
            if let ExprKind::Var { name, scope } = &e.kind {
                if *scope != VarScope::Global {
                    into.insert((name.clone(), *scope));
                }
            }
        });
    };
    for clause in clauses {
        let mut visit = |e: &'c Expr| match &e.kind {
            ExprKind::Call { func, args } if read_size(*func, args).is_some() => {
                if let Some(pointer) = args.first() {
                    names(pointer, &mut found);
                }
            }
            ExprKind::Assign { target, value, .. } => {
                if let ExprKind::Var { name, scope } = &target.kind {
                    assigned.push(((name.clone(), *scope), &**value));
                }
            }
            _ => {}
        };
        if let Some(p) = &clause.predicate {
            walk(p, &mut visit);
        }
        for stmt in clause.body.iter().flatten() {
            walk_stmt(stmt, &mut visit);
        }
    }
    loop {
        let before = found.len();
        for (target, value) in &assigned {
            if found.contains(target) {
                names(value, &mut found);
            }
        }
        if found.len() == before {
            return found;
        }
    }
}

/// The clauses `probe` runs in user space, in order.
fn own_clauses<'a>(probe: &PlannedProbe, clauses: &[&'a Clause]) -> Vec<&'a Clause> {
    probe
        .info
        .clauses
        .iter()
        .filter_map(|&c| clauses.get(c).copied())
        .collect()
}

fn to_captures(wanted: impl Iterator<Item = (u8, Option<u32>)>) -> Captures {
    let mut captures = Captures::default();
    for (n, size) in wanted {
        match size {
            None => captures.strings.push(n),
            Some(size) => captures.bytes.push((n, size)),
        }
    }
    captures.strings.dedup();
    captures.bytes.dedup();
    captures
}

fn unify_raw_syscalls(probes: &mut [PlannedProbe]) {
    for entry in [true, false] {
        let is_group =
            |p: &PlannedProbe| matches!(p.site, Site::RawSyscall { entry: e, .. } if e == entry);
        let mut strings = BTreeSet::new();
        let mut bytes = BTreeSet::new();
        let mut derived = BTreeSet::new();
        let mut shadow_stores: Vec<ShadowStore> = Vec::new();
        let mut process = ProcessRead::None;
        let mut cwd = false;
        let mut members = BTreeSet::new();
        let (mut kernel_stack, mut user_stack) = (false, false);
        for (index, p) in probes.iter().enumerate().filter(|(_, p)| is_group(p)) {
            process = process.max(p.captures.process);
            cwd |= p.captures.cwd;
            members.extend(p.captures.thread_members.iter().cloned());
            kernel_stack |= p.captures.kernel_stack;
            user_stack |= p.captures.user_stack;
            strings.extend(p.captures.strings.iter().copied());
            bytes.extend(p.captures.bytes.iter().copied());
            derived.extend(p.captures.derived.iter().cloned());
            // One program serves the group: each store is made only where its probe fired.
            shadow_stores.extend(p.captures.shadow_stores.iter().map(|store| ShadowStore {
                probe: u32::try_from(index).ok(),
                ..store.clone()
            }));
        }
        let union = Captures {
            strings: strings.into_iter().collect(),
            bytes: bytes.into_iter().collect(),
            derived: derived.into_iter().collect(),
            shadow_stores,
            process,
            thread_members: members.into_iter().collect(),
            cwd,
            kernel_stack,
            user_stack,
        };
        for p in probes.iter_mut().filter(|p| is_group(p)) {
            p.captures = union.clone();
        }
    }
}

/// The `curthread->…` paths the clauses read, sorted: those read for their own value, not
/// only on the way to a member below them (`->thread` of `curthread->thread.fsbase`).
fn thread_members(clauses: &[&Clause]) -> Vec<Arc<str>> {
    let mut uses: BTreeMap<String, isize> = BTreeMap::new();
    let mut visit = |e: &Expr| {
        if let Some(path) = thread_member_path(e) {
            *uses.entry(path).or_default() += 1;
            if let ExprKind::Member { base, .. } = &e.kind {
                if let Some(inner) = thread_member_path(base) {
                    *uses.entry(inner).or_default() -= 1;
                }
            }
        }
    };
    for clause in clauses {
        if let Some(p) = &clause.predicate {
            walk(p, &mut visit);
        }
        for stmt in clause.body.iter().flatten() {
            walk_stmt(stmt, &mut visit);
        }
    }
    uses.into_iter()
        .filter(|&(_, n)| n > 0)
        .map(|(path, _)| Arc::from(path))
        .collect()
}

/// Whether the clause reads builtin `b`.
fn reads_builtin(clause: &Clause, b: Builtin) -> bool {
    let mut found = false;
    let mut visit = |e: &Expr| found |= matches!(&e.kind, ExprKind::Builtin(x) if *x == b);
    if let Some(p) = &clause.predicate {
        walk(p, &mut visit);
    }
    for stmt in clause.body.iter().flatten() {
        walk_stmt(stmt, &mut visit);
    }
    found
}

/// How much of the process block a probe's clauses need. A probe that reads only `ppid` or
/// `curthread` (pyflow's per-process line, on every call) costs three reads, not the
/// block's forty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProcessRead {
    #[default]
    None,
    /// `ppid` and `curthread`: the task, and its parent's tgid.
    Parent,
    /// Also `curpsinfo`'s members and `progenyof()`'s ancestors: the whole block.
    Full,
}

/// What the clause reads of what the kernel keeps about the process: `ppid` and `curthread`,
/// or also `curpsinfo` or `progenyof()`.
fn reads_process(clause: &Clause) -> ProcessRead {
    let mut found = ProcessRead::None;
    let mut visit = |e: &Expr| {
        let read = match e.kind {
            ExprKind::Builtin(Builtin::Ppid | Builtin::Curthread) => ProcessRead::Parent,
            ExprKind::Builtin(Builtin::Curpsinfo)
            | ExprKind::Call {
                func: Function::Progenyof,
                ..
            } => ProcessRead::Full,
            _ => ProcessRead::None,
        };
        found = found.max(read);
    };
    if let Some(p) = &clause.predicate {
        walk(p, &mut visit);
    }
    for stmt in clause.body.iter().flatten() {
        walk_stmt(stmt, &mut visit);
    }
    found
}

/// Whether `clauses` read the kernel stack and the user stack.
fn stacks_used(clauses: &[&Clause]) -> (bool, bool) {
    let (mut kernel, mut user) = (false, false);
    let mut visit = |e: &Expr| match &e.kind {
        ExprKind::Call {
            func: Function::Stack,
            ..
        }
        | ExprKind::Builtin(Builtin::Stackdepth | Builtin::Caller) => kernel = true,
        ExprKind::Call {
            func: Function::Ustack,
            ..
        }
        | ExprKind::Builtin(Builtin::Ustackdepth | Builtin::Ucaller) => user = true,
        _ => {}
    };
    for clause in clauses {
        if let Some(p) = &clause.predicate {
            walk(p, &mut visit);
        }
        for stmt in clause.body.iter().flatten() {
            walk_stmt(stmt, &mut visit);
        }
    }
    (kernel, user)
}

fn clause_use(clause: &Clause) -> ClauseUse {
    let mut used = ClauseUse::default();
    let mut visit = |e: &Expr| note(e, &mut used);
    if let Some(p) = &clause.predicate {
        walk(p, &mut visit);
    }
    for stmt in clause.body.iter().flatten() {
        walk_stmt(stmt, &mut visit);
    }
    used
}

/// Records a copyinstr/copyin read or an assignment from an argument.
fn note(e: &Expr, used: &mut ClauseUse) {
    match &e.kind {
        ExprKind::Call { func, args } => {
            let Some(size) = read_size(*func, args) else {
                return;
            };
            if let Some(pointer) = args.first().and_then(pointer_of) {
                used.reads.insert((pointer, size));
            }
        }
        ExprKind::Assign {
            op: None,
            target,
            value,
        } => {
            if let (Some(Pointer::Var(name, scope)), Some(Pointer::Arg(n))) =
                (pointer_of(target), pointer_of(value))
            {
                used.assigns.insert((name, scope, n));
            }
        }
        _ => {}
    }
}

/// `argN`, `args[N]` or a variable, seen through casts.
fn pointer_of(e: &Expr) -> Option<Pointer> {
    match &e.kind {
        ExprKind::Cast { expr, .. } => pointer_of(expr),
        ExprKind::Builtin(Builtin::Arg(n)) => Some(Pointer::Arg(*n)),
        ExprKind::Index { base, indices }
            if matches!(base.kind, ExprKind::Builtin(Builtin::Args)) =>
        {
            let n = indices.first()?.as_int()?;
            u8::try_from(n).ok().filter(|&n| n < 10).map(Pointer::Arg)
        }
        ExprKind::Var { name, scope } => Some(Pointer::Var(
            name.clone(),
            match scope {
                VarScope::Global => Scope::Global,
                VarScope::Thread => Scope::Thread,
                VarScope::Clause => Scope::Clause,
            },
        )),
        _ => None,
    }
}
