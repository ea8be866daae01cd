//! Constant folding: integer arithmetic, comparisons (of integers and of strings), logical
//! operators, `?:` and casts whose operands are constants after inline substitution become one
//! constant, so `(0 == 0 || pid == 0)` reaches the code generator as `1`.

use crate::backend::linux::d::ast::{BinaryOp, DType, Expr, ExprKind, UnaryOp};
use crate::backend::linux::d::diagnostic::Diagnostic;

/// Truncates `value` to the width of `ty` and sign-extends it when `ty` is signed: the
/// canonical 64-bit form of every integer constant.
pub fn normalize(value: u64, ty: &DType) -> u64 {
    let DType::Int { bits, signed } = *ty else {
        return value;
    };
    if bits >= 64 {
        return value;
    }
    let mask = (1u64 << bits) - 1;
    let v = value & mask;
    if signed && v >> (bits - 1) & 1 == 1 {
        v | !mask
    } else {
        v
    }
}

fn signed(ty: &DType) -> bool {
    matches!(ty, DType::Int { signed: true, .. })
}

/// Folds `e` in place when its operands are constants. `e` and its children are already
/// checked; `operand_ty` is the type both operands of a binary operator were converted to.
pub fn fold(e: &mut Expr, operand_ty: &DType) -> Result<(), Diagnostic> {
    let folded = match &e.kind {
        ExprKind::Unary { op, operand } => operand.as_int().map(|v| fold_unary(*op, v, &e.ty)),
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
    if let Some(v) = folded {
        e.kind = ExprKind::Int(normalize(v, &e.ty));
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

fn fold_unary(op: UnaryOp, v: u64, ty: &DType) -> u64 {
    match op {
        UnaryOp::Neg => v.wrapping_neg(),
        UnaryOp::BitNot => !v,
        UnaryOp::Not => u64::from(v == 0),
        UnaryOp::Plus | UnaryOp::Deref | UnaryOp::AddrOf => normalize(v, ty),
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
        return Ok(compare(op, a.cmp(b)));
    }
    let (l, r) = (lhs.as_int(), rhs.as_int());
    match op {
        BinaryOp::And if l == Some(0) || r == Some(0) => return Ok(Some(0)),
        BinaryOp::Or if l.is_some_and(|v| v != 0) || r.is_some_and(|v| v != 0) => {
            return Ok(Some(1))
        }
        _ => {}
    }
    let (Some(a), Some(b)) = (l, r) else {
        return Ok(None);
    };
    let (a, b) = (normalize(a, operand_ty), normalize(b, operand_ty));
    if op.is_comparison() {
        let ord = if signed(operand_ty) {
            (a as i64).cmp(&(b as i64))
        } else {
            a.cmp(&b)
        };
        return Ok(compare(op, ord));
    }
    let is_signed = signed(result_ty);
    let value = match op {
        BinaryOp::Add => a.wrapping_add(b),
        BinaryOp::Sub => a.wrapping_sub(b),
        BinaryOp::Mul => a.wrapping_mul(b),
        BinaryOp::Div | BinaryOp::Mod if b == 0 => {
            return Err(Diagnostic::error(
                rhs.span,
                "division by zero in a constant expression",
            ))
        }
        BinaryOp::Div if is_signed => (a as i64).wrapping_div(b as i64) as u64,
        BinaryOp::Div => a / b,
        BinaryOp::Mod if is_signed => (a as i64).wrapping_rem(b as i64) as u64,
        BinaryOp::Mod => a % b,
        BinaryOp::Shl => a.checked_shl(b as u32).filter(|_| b < 64).unwrap_or(0),
        BinaryOp::Shr if is_signed => (a as i64 >> b.min(63)) as u64,
        BinaryOp::Shr => a.checked_shr(b as u32).filter(|_| b < 64).unwrap_or(0),
        BinaryOp::BitAnd => a & b,
        BinaryOp::BitOr => a | b,
        BinaryOp::BitXor => a ^ b,
        BinaryOp::And => u64::from(a != 0 && b != 0),
        BinaryOp::Or => u64::from(a != 0 || b != 0),
        BinaryOp::Xor => u64::from((a != 0) != (b != 0)),
        _ => return Ok(None),
    };
    Ok(Some(value))
}

fn compare(op: BinaryOp, ord: std::cmp::Ordering) -> Option<u64> {
    use std::cmp::Ordering::*;
    let truth = match op {
        BinaryOp::Lt => ord == Less,
        BinaryOp::Le => ord != Greater,
        BinaryOp::Gt => ord == Greater,
        BinaryOp::Ge => ord != Less,
        BinaryOp::Eq => ord == Equal,
        BinaryOp::Ne => ord != Equal,
        _ => return None,
    };
    Some(u64::from(truth))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_sign_extends_and_truncates() {
        assert_eq!(normalize(0xff, &DType::CHAR), u64::MAX);
        assert_eq!(normalize(0x1_0000_0001, &DType::INT), 1);
        assert_eq!(
            normalize(
                u64::MAX,
                &DType::Int {
                    bits: 16,
                    signed: false
                }
            ),
            0xffff
        );
    }
}
