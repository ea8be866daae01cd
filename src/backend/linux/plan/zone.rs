//! Zones: every string the program compares `zonename` with (`zonename == "web"`), resolved
//! once to a cgroup, before anything is attached. A name that matches no cgroup, or several,
//! is an error here rather than a filter that silently matches nothing. The kernel then tests
//! membership (the cgroup or a descendant) at each firing; see `firing::Zone`.

use super::walk::{walk, walk_stmt};
use super::PlanError;
use crate::backend::linux::d::ast::{Clause, Expr, ExprKind};
use crate::backend::linux::firing::{zone_compared, Zone, MAX_ZONES};
use crate::inspect::cgroup;

/// The zones of `clauses`, in the order the program first names them.
pub fn resolve(clauses: &[&Clause]) -> Result<Vec<Zone>, PlanError> {
    let mut names: Vec<String> = Vec::new();
    let mut note = |e: &Expr| {
        if let ExprKind::Binary { op, lhs, rhs } = &e.kind {
            if let Some(name) = zone_compared(*op, lhs, rhs) {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
            }
        }
    };
    for clause in clauses {
        if let Some(p) = &clause.predicate {
            walk(p, &mut note);
        }
        for stmt in clause.body.iter().flatten() {
            walk_stmt(stmt, &mut note);
        }
    }
    if names.len() > MAX_ZONES {
        return Err(PlanError::TooManyZones { count: names.len() });
    }
    names
        .into_iter()
        .map(|name| match cgroup::find(&name) {
            Ok(found) => Ok(Zone {
                name,
                cgroup_id: found.id,
                level: found.level,
            }),
            Err(source) => Err(PlanError::Zone { name, source }),
        })
        .collect()
}
