//! Kernel-side filtering: when every clause of a probe has a predicate the kernel can
//! evaluate, the probe's program evaluates their OR and emits nothing when it is false, so a
//! busy system does not flood user space with firings every clause would discard.
//!
//! The kernel evaluates: pid, tid, uid, gid, cpu, argN / args[N], integer constants,
//! `execname == "…"` / `!=`, `zonename == "…"` / `!=` (the zone's cgroup or below it, see
//! `firing::Zone`), comparisons, `&&`, `||` and `!`, and errno at syscall returns
//! (from the return value, as `decode` computes it; 0 at every other probe). probeprov,
//! probemod, probefunc and probename are known per probe, so comparisons of them with
//! strings are decided here. The executor still runs the predicates; the kernel only drops firings that
//! could not pass them.
//!
//! A predicate the kernel cannot evaluate whole still filters by the parts of its `&&` chain
//! that it can: `/pid == 812 && self->path/` emits only pid 812's firings, and the executor
//! decides the rest.

use crate::backend::linux::d::ast::{
    string_test, BinaryOp, Builtin, Clause, DType, Expr, ExprKind, UnaryOp, VarScope,
};
use crate::backend::linux::deep;
use crate::backend::linux::firing::{zone_compared, ProbeInfo};

/// The predicates to OR in the kernel for a probe whose clauses are `clauses`, or None when
/// some clause must see every firing. No clauses (all of them run in the kernel) means no
/// firing is emitted.
pub fn kernel_filter(clauses: &[&Clause], probe: &ProbeInfo) -> Option<Vec<Expr>> {
    let predicates: Vec<Expr> = clauses
        .iter()
        .map(|c| kernel_necessary(c.predicate.as_ref()?, probe))
        .collect::<Option<_>>()?;
    // A predicate that is always true lets everything through; one that is never true
    // (`/0/`, which enables a probe for its side effects only) adds nothing to the OR. An
    // empty list means the kernel emits nothing.
    if predicates
        .iter()
        .any(|p| p.as_int().is_some_and(|v| v != 0))
        || predicates.iter().map(size).sum::<usize>() > MAX_KERNEL_PREDICATE
    {
        return None;
    }
    Some(
        predicates
            .into_iter()
            .filter(|p| p.as_int().is_none())
            .collect(),
    )
}

/// A condition the kernel can evaluate that holds whenever `predicate` does at `probe`: the
/// predicate itself, or the conjuncts of its `&&` chain that the kernel can evaluate. None
/// when there is none.
fn kernel_necessary(predicate: &Expr, probe: &ProbeInfo) -> Option<Expr> {
    necessary_part(simplify(specialize(predicate, probe)))
}

/// The conjuncts of `e`'s `&&` chain that the kernel can evaluate, joined again with `&&` in
/// their order. The chain is taken apart with a stack, not by recursion, so that a long one
/// costs time in proportion to its length.
fn necessary_part(e: Expr) -> Option<Expr> {
    if is_condition(&e, &[]) {
        return Some(e);
    }
    let ty = e.ty.clone();
    let mut parts = vec![e];
    let mut kept: Option<Expr> = None;
    while let Some(mut part) = parts.pop() {
        match part.take_kind() {
            ExprKind::Binary {
                op: BinaryOp::And,
                lhs,
                rhs,
            } => {
                parts.push(*rhs);
                parts.push(*lhs);
            }
            kind => {
                part.kind = kind;
                if !is_condition(&part, &[]) {
                    continue;
                }
                kept = Some(match kept {
                    None => part,
                    Some(lhs) => Expr {
                        span: lhs.span.to(part.span),
                        kind: ExprKind::Binary {
                            op: BinaryOp::And,
                            lhs: Box::new(lhs),
                            rhs: Box::new(part),
                        },
                        ty: ty.clone(),
                    },
                });
            }
        }
    }
    kept
}

/// `predicate` as the kernel evaluates it at `probe`, or None when it cannot.
pub fn kernel_predicate(predicate: &Expr, probe: &ProbeInfo) -> Option<Expr> {
    kernel_predicate_in(predicate, probe, &[])
}

/// `kernel_predicate`, where the thread variables `kernel_vars` live in the kernel too (see
/// `plan::threadvars`).
pub fn kernel_predicate_in(
    predicate: &Expr,
    probe: &ProbeInfo,
    kernel_vars: &[String],
) -> Option<Expr> {
    let p = simplify(specialize(predicate, probe));
    (size(&p) <= MAX_KERNEL_PREDICATE && is_condition(&p, kernel_vars)).then_some(p)
}

/// The most nodes a predicate (or the OR of a probe's predicates) may have to be evaluated
/// in the kernel. The verifier follows at most 8,192 pending branches of one program
/// (BPF_COMPLEXITY_LIMIT_JMP_SEQ), and a jump reaches at most 32,767 instructions: a longer
/// chain, such as thousands of `pid == N` joined by `||`, is evaluated by the executor.
const MAX_KERNEL_PREDICATE: usize = 4096;

fn size(e: &Expr) -> usize {
    let mut nodes = 0;
    super::walk::walk(e, &mut |_| nodes += 1);
    nodes
}

/// Folds `&&`, `||` and `!` over constants, and execname comparisons that cannot hold (comm
/// keeps 15 characters), so that no code the kernel sees is unreachable.
fn simplify(mut e: Expr) -> Expr {
    deep::recurse(move || {
        let truth = |e: &Expr| e.as_int().map(|v| v != 0);
        let rebuilt = |mut e: Expr, kind| {
            e.kind = kind;
            e
        };
        let constant = |e: Expr, v: bool| rebuilt(e, ExprKind::Int(u64::from(v)));
        match e.take_kind() {
            ExprKind::Binary { op, lhs, rhs } if matches!(op, BinaryOp::And | BinaryOp::Or) => {
                let (lhs, rhs) = (simplify(*lhs), simplify(*rhs));
                let and = op == BinaryOp::And;
                match (truth(&lhs), truth(&rhs)) {
                    (Some(l), _) if l != and => constant(e, l),
                    (_, Some(r)) if r != and => constant(e, r),
                    (Some(_), _) => rhs,
                    (_, Some(_)) => lhs,
                    _ => rebuilt(
                        e,
                        ExprKind::Binary {
                            op,
                            lhs: Box::new(lhs),
                            rhs: Box::new(rhs),
                        },
                    ),
                }
            }
            ExprKind::Unary {
                op: UnaryOp::Not,
                operand,
            } => {
                let operand = simplify(*operand);
                match truth(&operand) {
                    Some(v) => constant(e, !v),
                    None => rebuilt(
                        e,
                        ExprKind::Unary {
                            op: UnaryOp::Not,
                            operand: Box::new(operand),
                        },
                    ),
                }
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let decided = match execname_constant(op, &lhs, &rhs) {
                    Some(text) => (text.len() >= 16).then_some(op == BinaryOp::Ne),
                    None => compare_constants(op, &lhs, &rhs),
                };
                match decided {
                    Some(v) => constant(e, v),
                    None => rebuilt(e, ExprKind::Binary { op, lhs, rhs }),
                }
            }
            kind => rebuilt(e, kind),
        }
    })
}

/// Replaces the probe-name builtins with this probe's strings (and errno with 0 where it is
/// always 0), and decides comparisons of two strings.
pub fn specialize(e: &Expr, probe: &ProbeInfo) -> Expr {
    deep::recurse(|| {
        let desc = &probe.desc;
        let kind = match &e.kind {
            ExprKind::Builtin(Builtin::Errno) if !probe.kind.sets_errno() => ExprKind::Int(0),
            ExprKind::Builtin(
                b @ (Builtin::Probeprov
                | Builtin::Probemod
                | Builtin::Probefunc
                | Builtin::Probename),
            ) => ExprKind::Str(
                match b {
                    Builtin::Probeprov => &desc.provider,
                    Builtin::Probemod => &desc.module,
                    Builtin::Probefunc => &desc.function,
                    _ => &desc.name,
                }
                .clone(),
            ),
            ExprKind::Binary { op, lhs, rhs } => {
                let (lhs, rhs) = (specialize(lhs, probe), specialize(rhs, probe));
                match (&lhs.kind, &rhs.kind, op) {
                    (ExprKind::Str(a), ExprKind::Str(b), BinaryOp::Eq | BinaryOp::Ne) => {
                        ExprKind::Int(u64::from((a == b) == (*op == BinaryOp::Eq)))
                    }
                    _ => ExprKind::Binary {
                        op: *op,
                        lhs: Box::new(lhs),
                        rhs: Box::new(rhs),
                    },
                }
            }
            ExprKind::Unary { op, operand } => ExprKind::Unary {
                op: *op,
                operand: Box::new(specialize(operand, probe)),
            },
            ExprKind::Cast { to, expr } => ExprKind::Cast {
                to: to.clone(),
                expr: Box::new(specialize(expr, probe)),
            },
            other => other.clone(),
        };
        Expr {
            kind,
            span: e.span,
            ty: e.ty.clone(),
        }
    })
}

/// A comparison of two integer constants (errno at a probe where it is 0, say), decided.
fn compare_constants(op: BinaryOp, lhs: &Expr, rhs: &Expr) -> Option<bool> {
    let (a, b) = (lhs.as_int()?, rhs.as_int()?);
    let signed = [lhs, rhs]
        .iter()
        .all(|e| matches!(e.ty, DType::Int { signed: true, .. }));
    let order = if signed {
        (a as i64).cmp(&(b as i64))
    } else {
        a.cmp(&b)
    };
    use std::cmp::Ordering::*;
    Some(match op {
        BinaryOp::Eq => order == Equal,
        BinaryOp::Ne => order != Equal,
        BinaryOp::Lt => order == Less,
        BinaryOp::Le => order != Greater,
        BinaryOp::Gt => order == Greater,
        BinaryOp::Ge => order != Less,
        _ => return None,
    })
}

/// Whether the kernel can evaluate `e` as a condition.
fn is_condition(e: &Expr, kernel_vars: &[String]) -> bool {
    deep::recurse(|| match &e.kind {
        ExprKind::Binary {
            op: BinaryOp::And | BinaryOp::Or,
            lhs,
            rhs,
        } => is_condition(lhs, kernel_vars) && is_condition(rhs, kernel_vars),
        ExprKind::Binary { op, lhs, rhs } if op.is_comparison() => {
            (is_value_in(lhs, kernel_vars) && is_value_in(rhs, kernel_vars))
                || is_execname_test(*op, lhs, rhs)
                || zone_compared(*op, lhs, rhs).is_some()
        }
        ExprKind::Unary {
            op: UnaryOp::Not,
            operand,
        } => is_condition(operand, kernel_vars),
        _ => is_value_in(e, kernel_vars),
    })
}

/// Whether `e` is an integer the kernel has at the probe.
pub fn is_value(e: &Expr) -> bool {
    is_value_in(e, &[])
}

/// `is_value`, where the thread variables `kernel_vars` live in the kernel too. Arithmetic
/// qualifies when its right operand is a leaf (the code keeps one temporary register):
/// `timestamp - self->ts` does, `a - (b - c)` does not.
pub fn is_value_in(e: &Expr, kernel_vars: &[String]) -> bool {
    deep::recurse(|| match &e.kind {
        ExprKind::Int(_) => true,
        ExprKind::Builtin(b) => value_builtin(*b),
        ExprKind::Index { .. } => args_index(e).is_some(),
        ExprKind::Cast { expr, to } => to.is_scalar() && is_value_in(expr, kernel_vars),
        ExprKind::Unary {
            op: UnaryOp::Neg,
            operand,
        } => is_value_in(operand, kernel_vars),
        ExprKind::Var {
            name,
            scope: VarScope::Thread,
        } => kernel_vars.contains(name),
        ExprKind::Binary { op, lhs, rhs } => {
            is_arithmetic(*op)
                && [&lhs.ty, &rhs.ty, &e.ty]
                    .iter()
                    .all(|ty| matches!(ty, DType::Int { .. }))
                && !matches!(rhs.kind, ExprKind::Binary { .. })
                && is_value_in(lhs, kernel_vars)
                && is_value_in(rhs, kernel_vars)
        }
        _ => false,
    })
}

/// Operators the kernel computes on values (division is left out: it would need a check
/// for zero).
pub fn is_arithmetic(op: BinaryOp) -> bool {
    matches!(
        op,
        BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::BitAnd
            | BinaryOp::BitOr
            | BinaryOp::BitXor
            | BinaryOp::Shl
            | BinaryOp::Shr
    )
}

fn value_builtin(b: Builtin) -> bool {
    matches!(
        b,
        Builtin::Timestamp
            | Builtin::Pid
            | Builtin::Tid
            | Builtin::Uid
            | Builtin::Gid
            | Builtin::Cpu
            | Builtin::Arg(_)
            | Builtin::Errno
    )
}

/// `args[N]` → N.
pub fn args_index(e: &Expr) -> Option<u8> {
    let ExprKind::Index { base, indices } = &e.kind else {
        return None;
    };
    if !matches!(base.kind, ExprKind::Builtin(Builtin::Args)) || indices.len() != 1 {
        return None;
    }
    u8::try_from(indices[0].as_int()?).ok().filter(|&n| n < 10)
}

/// `execname == "str"` or `"str" != execname`.
pub fn is_execname_test(op: BinaryOp, lhs: &Expr, rhs: &Expr) -> bool {
    execname_constant(op, lhs, rhs).is_some()
}

/// The string an execname comparison tests against.
pub fn execname_constant<'a>(op: BinaryOp, lhs: &'a Expr, rhs: &'a Expr) -> Option<&'a str> {
    string_test(Builtin::Execname, op, lhs, rhs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::linux::d::{compile, MacroArgs};
    use crate::backend::linux::firing::ProbeKind;

    fn filter_of(src: &str) -> Option<Vec<Expr>> {
        let program = compile("t.d", src, &MacroArgs::default()).unwrap().program;
        let clauses = program.clauses();
        let probe = ProbeInfo {
            desc: std::sync::Arc::new(crate::event::ProbeDesc {
                provider: "syscall".into(),
                module: String::new(),
                function: "read".into(),
                name: "entry".into(),
            }),
            kind: ProbeKind::SyscallEntry,
            clauses: vec![0],
        };
        kernel_filter(&clauses, &probe)
    }

    #[test]
    fn kernel_evaluable_predicates() {
        assert!(filter_of("syscall::read:entry /pid == 42 && arg0 > 2/ {}").is_some());
        assert!(filter_of("syscall::read:entry /execname == \"cat\" || !(uid == 0)/ {}").is_some());
        assert!(filter_of("syscall::read:entry /probefunc == \"read\"/ {}").is_none());
        assert_eq!(
            filter_of("syscall::read:entry /probefunc == \"write\"/ {}"),
            Some(vec![])
        );
        assert!(filter_of("syscall::read:entry /args[1] != 0/ {}").is_some());
        assert!(filter_of("syscall::read:entry /zonename == \"web\" && pid != 1/ {}").is_some());
        assert!(filter_of("syscall::read:entry /zonename < \"web\"/ {}").is_none());
        assert_eq!(
            filter_of("syscall::read:entry /errno != 0/ {}"),
            Some(vec![]),
            "errno is 0 at an entry"
        );
        assert_eq!(filter_of("syscall::read:entry /0/ {}"), Some(vec![]));
        assert!(
            filter_of("syscall::read:entry /0/ {} syscall::read:entry /1 || pid/ {}").is_none()
        );
        let folded = filter_of("syscall::read:entry /!(probename == \"entry\") || pid == 3/ {}");
        assert!(matches!(
            folded.unwrap()[0].kind,
            ExprKind::Binary {
                op: BinaryOp::Eq,
                ..
            }
        ));
    }

    #[test]
    fn anything_else_stays_in_user_space() {
        assert!(filter_of("syscall::read:entry { }").is_none());
        assert!(filter_of("syscall::read:entry /self->x/ {}").is_none());
        assert!(filter_of("syscall::read:entry /pid == 1/ {} syscall::read:entry {}").is_none());
        assert!(filter_of("syscall::read:entry /walltimestamp > 5/ {}").is_none());
        assert!(
            filter_of("syscall::read:entry /self->x/ {}").is_none(),
            "thread variables"
        );
        assert!(filter_of("syscall::read:entry /timestamp - arg0 > 5/ {}").is_some());
        assert!(
            filter_of("syscall::read:entry /self->x || pid == 3/ {}").is_none(),
            "an alternative the kernel cannot evaluate"
        );
    }

    #[test]
    fn the_kernel_filters_by_what_it_can_evaluate_of_a_conjunction() {
        let filter = filter_of("syscall::read:entry /self->x && pid == 3 && arg0 > 2/ {}");
        let [part] = filter.as_deref().unwrap() else {
            panic!("{filter:?}");
        };
        let ExprKind::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        } = &part.kind
        else {
            panic!("{part:?}");
        };
        assert!(matches!(
            lhs.kind,
            ExprKind::Binary {
                op: BinaryOp::Eq,
                ..
            }
        ));
        assert!(matches!(
            rhs.kind,
            ExprKind::Binary {
                op: BinaryOp::Gt,
                ..
            }
        ));
    }
}
