//! The order of actions in a clause that speculates or commits, as DTrace enforces it at
//! compile time: `speculate()` comes before any data is recorded and at most once, nothing
//! but data may follow it (no aggregation, exit or destructive action), and `commit()`
//! comes before any data and is followed by none.

use super::Checker;
use crate::backend::linux::d::ast::{ExprKind, Function, FunctionKind, Stmt};
use crate::backend::linux::d::span::Span;

/// What a clause has done so far, in statement order.
#[derive(Debug, Default)]
struct Seen {
    speculate: bool,
    commit: bool,
    data: bool,
}

/// How a statement counts for the order rules.
enum Step {
    Speculate,
    Commit,
    Discard,
    Aggregation,
    /// A data-recording action; `destructive` and `exit` for the rules after speculate().
    Data {
        destructive: bool,
        exit: bool,
    },
    /// An assignment or other expression: records nothing.
    Nothing,
}

fn step(stmt: &Stmt) -> Step {
    let e = match stmt {
        Stmt::Aggregate(_) => return Step::Aggregation,
        Stmt::Expr(e) => e,
        Stmt::If { .. } => return Step::Nothing,
    };
    let ExprKind::Call { func, .. } = &e.kind else {
        return Step::Nothing;
    };
    match func {
        Function::Speculate => Step::Speculate,
        Function::Commit => Step::Commit,
        Function::Discard => Step::Discard,
        Function::Stack | Function::Ustack => Step::Data {
            destructive: false,
            exit: false,
        },
        f if f.kind() == FunctionKind::Action => Step::Data {
            destructive: f.is_destructive(),
            exit: *f == Function::Exit,
        },
        _ => Step::Nothing,
    }
}

fn span_of(stmt: &Stmt) -> Span {
    match stmt {
        Stmt::Expr(e) => e.span,
        Stmt::Aggregate(a) => a.span,
        Stmt::If { span, .. } => *span,
    }
}

impl Checker {
    /// Checks the order of a clause body's actions (statements in `if` branches count in
    /// source order, as the actions they may record).
    pub(super) fn action_order(&mut self, body: &[Stmt]) {
        let mut seen = Seen::default();
        self.order_in(body, &mut seen);
    }

    fn order_in(&mut self, stmts: &[Stmt], seen: &mut Seen) {
        for stmt in stmts {
            if let Stmt::If {
                then, otherwise, ..
            } = stmt
            {
                self.order_in(then, seen);
                if let Some(o) = otherwise {
                    self.order_in(o, seen);
                }
                continue;
            }
            if let Some((tag, message)) = order_problem(step(stmt), seen) {
                self.tagged(tag, span_of(stmt), message);
            }
        }
    }
}

/// Applies one step to `seen`; the rule it breaks, if any, with DTrace's tag for it.
fn order_problem(step: Step, seen: &mut Seen) -> Option<(&'static str, &'static str)> {
    match step {
        Step::Nothing => None,
        Step::Discard => None,
        Step::Commit => {
            let problem = seen.data.then_some((
                "D_COMM_DREC",
                "`commit()` may not follow data-recording actions",
            ));
            seen.commit = true;
            problem
        }
        Step::Speculate => {
            let problem = if seen.speculate {
                Some(("D_SPEC_SPEC", "`speculate()` may not follow `speculate()`"))
            } else if seen.commit {
                Some(("D_SPEC_COMM", "`speculate()` may not follow `commit()`"))
            } else if seen.data {
                Some((
                    "D_SPEC_DREC",
                    "`speculate()` may not follow data-recording actions",
                ))
            } else {
                None
            };
            seen.speculate = true;
            problem
        }
        Step::Aggregation => {
            let problem = if seen.commit {
                Some((
                    "D_AGG_COMM",
                    "aggregating actions may not follow `commit()`",
                ))
            } else if seen.speculate {
                Some((
                    "D_AGG_SPEC",
                    "aggregating actions may not follow `speculate()`",
                ))
            } else {
                None
            };
            seen.data = true;
            problem
        }
        Step::Data { destructive, exit } => {
            let problem = if seen.speculate && destructive {
                Some((
                    "D_ACT_SPEC",
                    "destructive actions may not follow `speculate()`",
                ))
            } else if seen.speculate && exit {
                Some(("D_EXIT_SPEC", "`exit()` may not follow `speculate()`"))
            } else if seen.commit {
                Some((
                    "D_DREC_COMM",
                    "data-recording actions may not follow `commit()`",
                ))
            } else {
                None
            };
            seen.data = true;
            problem
        }
    }
}
