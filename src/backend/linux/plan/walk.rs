//! Walking a clause's expressions: every pass that asks "does this clause use X" (captures,
//! derived reads, kernel predicates, aggregations, zones) visits expressions the same way, so
//! the walk lives here, below all of them.

use crate::backend::linux::d::ast::{Expr, Stmt};

/// Calls `visit` on every expression of `stmt`, nested statements included.
pub fn walk_stmt<'e>(stmt: &'e Stmt, visit: &mut impl FnMut(&'e Expr)) {
    match stmt {
        Stmt::Expr(e) => walk(e, visit),
        Stmt::Aggregate(a) => a.keys.iter().chain(&a.args).for_each(|e| walk(e, visit)),
        Stmt::If {
            cond,
            then,
            otherwise,
            ..
        } => {
            walk(cond, visit);
            then.iter()
                .chain(otherwise.iter().flatten())
                .for_each(|s| walk_stmt(s, visit));
        }
    }
}

/// Calls `visit` on `e` and every expression inside it.
pub fn walk<'e>(e: &'e Expr, visit: &mut impl FnMut(&'e Expr)) {
    visit(e);
    e.for_each_child(&mut |c| walk(c, visit));
}
