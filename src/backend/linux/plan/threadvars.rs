//! Thread variables kept in the kernel: a `self->x` that every clause using it runs in the
//! kernel lives in a BPF hash map keyed by thread id, so that the canonical timing pattern
//!
//! ```d
//! syscall:::entry { self->ts = timestamp; }
//! syscall:::return /self->ts/ { @[probefunc] = sum(timestamp - self->ts); self->ts = 0; }
//! ```
//!
//! sends nothing to user space. Whether a clause can run in the kernel depends on which
//! variables are kernel-kept, and the reverse, so `resolve` starts from every thread variable
//! the clauses name and drops, until nothing changes, each one that a clause left in user
//! space reads or writes. Assigning 0 deletes the thread's entry, as it frees a DTrace
//! dynamic variable.

use std::collections::BTreeSet;

use super::aggregate::{self, KernelAggregation};
use super::walk::{walk, walk_stmt};
use super::PlannedProbe;
use crate::backend::linux::d::ast::{Clause, Expr, ExprKind, VarScope};

/// Most thread variables kept in the kernel: their values sit in stack slots while a clause
/// runs (`codegen::frame`, which checks that they fit).
pub const MAX_KERNEL_VARS: usize = 16;

/// Moves the clauses the kernel can run to `kernel_clauses`, with the thread variables they
/// keep in the kernel; returns the kernel aggregations and those variables.
pub fn resolve(
    probes: &mut Vec<PlannedProbe>,
    clauses: &[&Clause],
) -> (Vec<KernelAggregation>, Vec<String>) {
    let mut kernel_vars: Vec<String> = named(clauses.iter().copied())
        .into_iter()
        .take(MAX_KERNEL_VARS)
        .collect();
    loop {
        let mut trial = probes.clone();
        let aggregations = aggregate::assign(&mut trial, clauses, &kernel_vars);
        let in_user_space = named(
            trial
                .iter()
                .flat_map(|p| &p.info.clauses)
                .map(|&c| clauses[c]),
        );
        let before = kernel_vars.len();
        kernel_vars.retain(|v| !in_user_space.contains(v));
        if kernel_vars.len() == before {
            *probes = trial;
            return (aggregations, kernel_vars);
        }
    }
}

/// The thread variables these clauses name.
fn named<'c>(clauses: impl Iterator<Item = &'c Clause>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut visit = |e: &Expr| {
        if let ExprKind::Var {
            name,
            scope: VarScope::Thread,
        } = &e.kind
        {
            names.insert(name.clone());
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
    names
}
