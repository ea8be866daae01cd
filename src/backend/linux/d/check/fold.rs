//! Constant folding: integer arithmetic, comparisons (of integers and of strings), logical
//! operators, `?:` and casts whose operands are constants after inline substitution become one
//! constant, so `(0 == 0 || pid == 0)` reaches the code generator as `1`.

use crate::backend::linux::d::arith::{self, normalize, DivideByZero};
use crate::backend::linux::d::ast::{BinaryOp, DType, Expr, ExprKind, UnaryOp};
use crate::backend::linux::d::diagnostic::Diagnostic;

/// Folds `e` in place when its operands are constants. `e` and its children are already
/// checked; `operand_ty` is the type both operands of a binary operator were converted to.
pub fn fold(e: &mut Expr, operand_ty: &DType) -> Result<(), Diagnostic> {
    let folded = match &e.kind {
        // `*` of a constant address reads memory, at run time.
        ExprKind::Unary { op, operand } => {
            operand.as_int().and_then(|v| arith::unary(*op, v, &e.ty))
        }
        ExprKind::Binary { op, lhs, rhs } => fold_binary(*op, lhs, rhs, operand_ty, &e.ty)?,
        ExprKind::Cast { expr, .. } if e.ty.is_integer() => expr.as_int(),
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => {
            if let Some(c) = cond.as_int() {
                let chosen = if c != 0 { then } else { otherwise };
                if chosen.ty == e.ty || chosen.as_int().is_some() {
                    let mut chosen = (**chosen).clone();
                    if let Some(v) = chosen.as_int() {
                        chosen.kind = ExprKind::Int(normalize(v, &e.ty));
                        chosen.ty = e.ty.clone();
                    }
                    *e = chosen;
                }
            }
            None
        }
        _ => None,
    };
    // Arithmetic keeps its 64 bits until stored, as it does at run time (see `arith`).
    let wide = matches!(&e.kind, ExprKind::Binary { .. });
    if let Some(v) = folded {
        e.kind = ExprKind::Int(if wide { v } else { normalize(v, &e.ty) });
    } else if let Some(kept) = drop_neutral_operand(e) {
        *e = kept;
    }
    Ok(())
}

/// `1 && c` and `0 || c` are `c` when `c` is already 0 or 1 (a comparison or logical
/// operator), which keeps predicates such as `(1 && pid == 3)` simple for the code generator.
fn drop_neutral_operand(e: &Expr) -> Option<Expr> {
    let ExprKind::Binary { op, lhs, rhs } = &e.kind else {
        return None;
    };
    let neutral = |x: &Expr| match (op, x.as_int()) {
        (BinaryOp::And, Some(v)) => v != 0,
        (BinaryOp::Or, Some(v)) => v == 0,
        _ => false,
    };
    let boolean = |x: &Expr| match &x.kind {
        ExprKind::Binary { op, .. } => op.is_comparison() || op.is_logical(),
        ExprKind::Unary { op, .. } => *op == UnaryOp::Not,
        _ => false,
    };
    if !op.is_logical() || *op == BinaryOp::Xor {
        return None;
    }
    if neutral(lhs) && boolean(rhs) {
        Some((**rhs).clone())
    } else if neutral(rhs) && boolean(lhs) {
        Some((**lhs).clone())
    } else {
        None
    }
}

fn fold_binary(
    op: BinaryOp,
    lhs: &Expr,
    rhs: &Expr,
    operand_ty: &DType,
    result_ty: &DType,
) -> Result<Option<u64>, Diagnostic> {
    if let (ExprKind::Str(a), ExprKind::Str(b)) = (&lhs.kind, &rhs.kind) {
        return Ok(arith::holds(op, a.cmp(b)).map(u64::from));
    }
    let (l, r) = (lhs.as_int(), rhs.as_int());
    // A constant right operand decides the result only when the left one, which runs
    // first, has no side effects: `(h = 3) || 1` still assigns h.
    let pure_lhs = !lhs.has_side_effects();
    match op {
        BinaryOp::And if l == Some(0) || (r == Some(0) && pure_lhs) => return Ok(Some(0)),
        BinaryOp::Or if l.is_some_and(|v| v != 0) || (r.is_some_and(|v| v != 0) && pure_lhs) => {
            return Ok(Some(1))
        }
        _ => {}
    }
    let (Some(a), Some(b)) = (l, r) else {
        return Ok(None);
    };
    if op.is_comparison() {
        return Ok(arith::compare(op, a, b, operand_ty).map(u64::from));
    }
    match arith::binary(op, (a, &lhs.ty), (b, &rhs.ty), result_ty) {
        Ok(v) => Ok(Some(v)),
        Err(DivideByZero) => Err(Diagnostic::error(
            rhs.span,
            "division by zero in a constant expression",
        )
        .tagged("D_DIV_ZERO")),
    }
}
