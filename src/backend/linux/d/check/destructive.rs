//! Destructive actions (`system()`, `raise()`), which dtrace(1) refuses unless they are
//! allowed with `-w` or `-x destructive`. Options are resolved after checking (`-x` comes
//! from the command line), so the engine asks for the first such action once it knows.

use crate::backend::linux::d::ast::{ExprKind, Item, Program, Stmt};
use crate::backend::linux::d::Diagnostic;

/// An error at the program's first destructive action, if it has one.
pub fn first_destructive_action(program: &Program) -> Option<Diagnostic> {
    program.items.iter().find_map(|item| match item {
        Item::Clause(c) => c.body.as_deref().and_then(first_in),
        _ => None,
    })
}

fn first_in(stmts: &[Stmt]) -> Option<Diagnostic> {
    stmts.iter().find_map(|stmt| match stmt {
        Stmt::Expr(e) => match &e.kind {
            ExprKind::Call { func, .. } if func.is_destructive() => {
                let message = format!(
                    "`{}()` is a destructive action; allow destructive actions with -w \
                     (or -x destructive)",
                    func.name()
                );
                Some(Diagnostic::error(e.span, message))
            }
            _ => None,
        },
        Stmt::If {
            then, otherwise, ..
        } => first_in(then).or_else(|| otherwise.as_deref().and_then(first_in)),
        Stmt::Aggregate(_) => None,
    })
}
