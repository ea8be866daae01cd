//! Whether a program may read a variable before the clause that assigns it: only then does
//! the checker need a second pass (knowing the types later assignments give), and so a
//! pristine copy of the program to run it on. Most programs do not, and are checked in one
//! pass without a copy.
//!
//! The answer may be a false "yes" (a copy that was not needed), never a false "no": it
//! follows the checker's order (declarations, then each clause's predicate and statements)
//! and counts as a read every use of a name the program assigns somewhere, before the
//! statement that assigns it (other than as the variable stored to), and every store of
//! what may be the constant 0 into a thread-local or associative element not yet assigned
//! (D frees those, whatever their type, so the type comes from a later assignment).

use std::collections::HashSet;

use super::targets;
use crate::backend::linux::d::ast::{Expr, ExprKind, Item, Program, Stmt, UnaryOp, VarScope};
use crate::backend::linux::deep;

/// A variable, borrowed from the program: the walk looks names up without copying them.
type Key<'a> = (VarScope, &'a str);

/// The variables and aggregations the program assigns anywhere.
pub fn assignments(program: &Program) -> (HashSet<Key<'_>>, HashSet<&str>) {
    let (mut vars, mut aggs) = (HashSet::new(), HashSet::new());
    for c in program.clauses() {
        if let Some(p) = &c.predicate {
            targets::expr_assignments(p, &mut vars);
        }
        for stmt in c.body.iter().flatten() {
            targets::assignments(stmt, &mut vars, &mut aggs);
        }
    }
    (vars, aggs)
}

/// Whether checking `program` may meet a read ahead of the assignment that types it.
pub fn may_read_ahead(program: &Program) -> bool {
    let (assigned, _) = assignments(program);
    let assigned = &assigned;
    let mut seen: Seen<'_> = HashSet::new();
    let mut aggs = HashSet::new();
    for item in &program.items {
        match item {
            Item::Pragma(_) => {}
            Item::Decl(d) => {
                if d.inline.as_ref().is_some_and(|e| reads(e, assigned, &seen)) {
                    return true;
                }
                seen.insert((d.scope, &d.name));
            }
            Item::Clause(c) => {
                if c.predicate
                    .as_ref()
                    .is_some_and(|e| reads(e, assigned, &seen))
                {
                    return true;
                }
                if let Some(p) = &c.predicate {
                    targets::expr_assignments(p, &mut seen);
                }
                for stmt in c.body.iter().flatten() {
                    if stmt_reads(stmt, assigned, &seen) {
                        return true;
                    }
                    targets::assignments(stmt, &mut seen, &mut aggs);
                }
            }
        }
    }
    false
}

type Seen<'a> = HashSet<Key<'a>>;

fn stmt_reads(stmt: &Stmt, assigned: &Seen<'_>, seen: &Seen<'_>) -> bool {
    match stmt {
        Stmt::Expr(e) => reads(e, assigned, seen),
        Stmt::Aggregate(a) => a
            .keys
            .iter()
            .chain(&a.args)
            .any(|e| reads(e, assigned, seen)),
        Stmt::If {
            cond,
            then,
            otherwise,
            ..
        } => {
            reads(cond, assigned, seen)
                || then
                    .iter()
                    .chain(otherwise.iter().flatten())
                    .any(|s| stmt_reads(s, assigned, seen))
        }
    }
}

/// The variable `e` names, if it names one.
fn key(e: &Expr) -> Option<Key<'_>> {
    match &e.kind {
        ExprKind::Ident(name) => Some((VarScope::Global, name)),
        ExprKind::Var { name, scope } => Some((*scope, name)),
        _ => None,
    }
}

/// Whether `e` reads, or frees, an assigned variable not yet seen assigned.
fn reads(e: &Expr, assigned: &Seen<'_>, seen: &Seen<'_>) -> bool {
    deep::recurse(|| match &e.kind {
        // The variable stored to is not read (`x += 1` and `x++` on a variable not yet
        // assigned make it a long there and then); its keys and the value are.
        ExprKind::Assign { op, target, value } => {
            let frees = op.is_none() && may_be_zero(value);
            stored_ahead(target, frees, assigned, seen) || reads(value, assigned, seen)
        }
        ExprKind::IncDec { target, .. } => stored_ahead(target, false, assigned, seen),
        _ => {
            if ahead(key(e), assigned, seen) {
                return true;
            }
            let mut found = false;
            e.for_each_child(&mut |c| found = found || reads(c, assigned, seen));
            found
        }
    })
}

/// Whether a store to `target` reads ahead: its keys do, or it frees (`frees`: the value
/// may be 0) a thread-local or associative element not yet assigned.
fn stored_ahead(target: &Expr, frees: bool, assigned: &Seen<'_>, seen: &Seen<'_>) -> bool {
    let (named, indices, keyed) = match &target.kind {
        ExprKind::Index { base, indices } => (&**base, indices.as_slice(), true),
        _ => (target, &[][..], false),
    };
    let k = key(named);
    let dynamic = keyed || k.is_some_and(|(scope, _)| scope == VarScope::Thread);
    (frees && dynamic && ahead(k, assigned, seen))
        || indices.iter().any(|i| reads(i, assigned, seen))
}

/// Whether `k` is a variable the program assigns, not yet seen assigned.
fn ahead(k: Option<Key<'_>>, assigned: &Seen<'_>, seen: &Seen<'_>) -> bool {
    k.is_some_and(|k| assigned.contains(&k) && !seen.contains(&k))
}

/// Whether `e` may fold to the constant 0: it is 0, or it is made of literals, names (an
/// inline or a predefined constant such as NULL) and operators, and is not a plain non-zero
/// literal such as `-100`.
fn may_be_zero(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Int(v) => *v == 0,
        ExprKind::Unary {
            op: UnaryOp::Neg | UnaryOp::Plus,
            operand,
        } if matches!(operand.kind, ExprKind::Int(_)) => may_be_zero(operand),
        _ => may_be_constant(e),
    }
}

/// Whether `e` may fold to a constant: literals, names and operators.
fn may_be_constant(e: &Expr) -> bool {
    match e.kind {
        ExprKind::Int(_)
        | ExprKind::Ident(_)
        | ExprKind::SizeofType(_)
        | ExprKind::SizeofExpr(_) => true,
        ExprKind::Unary { .. }
        | ExprKind::Binary { .. }
        | ExprKind::Ternary { .. }
        | ExprKind::Cast { .. } => {
            let mut constant = true;
            e.for_each_child(&mut |c| constant = constant && may_be_constant(c));
            constant
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::{parser, MacroArgs};
    use super::*;

    fn ahead(src: &str) -> bool {
        let program = parser::parse(src, &MacroArgs::default()).unwrap();
        may_read_ahead(&program)
    }

    #[test]
    fn entry_and_return_clauses_read_nothing_ahead() {
        let src = "syscall::read:entry { self->ts = timestamp; self->fd = arg0; }
                   syscall::read:return /self->ts/ { @[self->fd] = sum(timestamp - self->ts);
                   self->ts = 0; this->n = 1; x = this->n + 1; }";
        assert!(!ahead(src));
    }

    #[test]
    fn reads_and_frees_before_the_assignment_are_found() {
        assert!(ahead("BEGIN { y = x; } END { x = \"s\"; }"));
        assert!(ahead("BEGIN { x = x + 1; }"));
        assert!(ahead("BEGIN { a[x] += 2; } END { x = 3; }"));
        assert!(!ahead("BEGIN { a[1] += 2; n++; } END { a[1] = 3; n = 1; }"));
        assert!(ahead("BEGIN { self->p = 1 - 1; } END { self->p = \"s\"; }"));
        assert!(ahead("BEGIN { self->p = 0; } END { self->p = \"s\"; }"));
        assert!(ahead("BEGIN { self->p = NULL; } END { self->p = \"s\"; }"));
        assert!(!ahead("BEGIN { self->p = -100; } END { self->p = 1; }"));
        assert!(ahead("BEGIN /x/ { } END { x = 1; }"));
    }
}
