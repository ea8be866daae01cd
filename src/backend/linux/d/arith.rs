//! D's integer semantics, in one place: constant folding (`check::fold`) and the executor
//! (`exec::eval`) both compute with these functions, so a constant expression and the same
//! expression over variables give the same value.
//!
//! The rules are C's on LP64, as DTrace applies them: the type an operator works in is C's
//! (the usual arithmetic conversions, [`promote`]), and division, modulo, `>>` and
//! comparisons are signed or unsigned as that type says. Like DTrace, which computes in
//! 64-bit BPF registers, arithmetic does not wrap to that type's width: intermediate results
//! keep 64 bits, and a value is cut to its type where it is stored, cast, printed or used as
//! a key ([`normalize`]), so `i * i / i` is `i` for an `int` whose square needs 64 bits. Shifts are those of the machine DTrace compiles D to: dtrace-utils emits
//! BPF_LSH, BPF_RSH or BPF_ARSH on 64-bit registers, and the BPF instruction set takes the
//! shift count modulo 64 (`count & 63`), so `1 << 64` is 1 and `1 << -1` is `1 << 63`.
//! Division and modulo by zero are an error the caller reports: a compile-time diagnostic
//! when folding, a fault at run time.

use std::cmp::Ordering;

use super::ast::{BinaryOp, DType, UnaryOp};

/// The low `bits` bits of `value`, sign-extended to 64 bits when `signed`, zero-extended
/// otherwise. A width of 0 or 64 and more leaves `value` as it is.
pub fn extend(value: u64, bits: u32, signed: bool) -> u64 {
    if bits == 0 || bits >= 64 {
        return value;
    }
    let unused = 64 - bits;
    if signed {
        (((value << unused) as i64) >> unused) as u64
    } else {
        (value << unused) >> unused
    }
}

/// Truncates `value` to the width of `ty` and sign-extends it when `ty` is signed: the
/// canonical 64-bit form of every integer. Pointers and other types are left as they are.
pub fn normalize(value: u64, ty: &DType) -> u64 {
    match *ty {
        DType::Int { bits, signed } => extend(value, u32::from(bits), signed),
        _ => value,
    }
}

/// Whether `ty` is a signed integer type (pointers are unsigned).
pub fn is_signed(ty: &DType) -> bool {
    matches!(ty, DType::Int { signed: true, .. })
}

/// Width in bits of an integer or pointer type (64 for anything else).
pub fn bits(ty: &DType) -> u32 {
    match ty {
        DType::Int { bits, .. } => u32::from(*bits),
        _ => 64,
    }
}

/// The type both operands of an integer operator are converted to: C's usual arithmetic
/// conversions on LP64, with pointers as `unsigned long`.
pub fn promote(a: &DType, b: &DType) -> DType {
    let rank = |t: &DType| match t {
        DType::Int { bits, signed } => ((*bits).max(32), *signed),
        _ => (64, false),
    };
    let ((ab, asg), (bb, bsg)) = (rank(a), rank(b));
    let (bits, signed) = if asg == bsg {
        (ab.max(bb), asg)
    } else {
        let (unsigned_bits, signed_bits) = if asg { (bb, ab) } else { (ab, bb) };
        if unsigned_bits >= signed_bits {
            (unsigned_bits, false)
        } else {
            (signed_bits, true)
        }
    };
    DType::Int { bits, signed }
}

/// An integer division or modulo by zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DivideByZero;

/// `op v` for the integer unary operators (`-`, `+`, `~`, `!`) in the type `ty`; None for
/// the operators on places (`*`, `&`).
pub fn unary(op: UnaryOp, v: u64, ty: &DType) -> Option<u64> {
    Some(match op {
        UnaryOp::Neg => normalize(v.wrapping_neg(), ty),
        UnaryOp::Plus => normalize(v, ty),
        UnaryOp::BitNot => normalize(!v, ty),
        UnaryOp::Not => u64::from(v == 0),
        UnaryOp::Deref | UnaryOp::AddrOf => return None,
    })
}

/// Compares two integers converted to `ty` (the promoted type of both operands); None when
/// `op` is not a comparison.
pub fn compare(op: BinaryOp, a: u64, b: u64, ty: &DType) -> Option<bool> {
    let (a, b) = (normalize(a, ty), normalize(b, ty));
    let ord = if is_signed(ty) {
        (a as i64).cmp(&(b as i64))
    } else {
        a.cmp(&b)
    };
    holds(op, ord)
}

/// Whether `ord` satisfies the comparison `op`; None when `op` is not a comparison.
pub fn holds(op: BinaryOp, ord: Ordering) -> Option<bool> {
    Some(match op {
        BinaryOp::Lt => ord == Ordering::Less,
        BinaryOp::Le => ord != Ordering::Greater,
        BinaryOp::Gt => ord == Ordering::Greater,
        BinaryOp::Ge => ord != Ordering::Less,
        BinaryOp::Eq => ord == Ordering::Equal,
        BinaryOp::Ne => ord != Ordering::Equal,
        _ => return None,
    })
}

/// An arithmetic, bitwise or logical binary operator on `l` and `r` (each a value with its
/// own type), computed in the result type `ty`. Pointer arithmetic is scaled by the size of
/// what the pointer points to, as in C. Comparisons are [`compare`]'s.
pub fn binary(
    op: BinaryOp,
    l: (u64, &DType),
    r: (u64, &DType),
    ty: &DType,
) -> Result<u64, DivideByZero> {
    if op.is_logical() {
        let (a, b) = (l.0 != 0, r.0 != 0);
        return Ok(u64::from(match op {
            BinaryOp::And => a && b,
            BinaryOp::Or => a || b,
            _ => a != b,
        }));
    }
    if let Some(v) = pointer_arithmetic(op, l, r) {
        return Ok(v);
    }
    let (a, b) = (l.0, r.0);
    let count = (b & 63) as u32;
    let signed = is_signed(ty);
    let v = match op {
        BinaryOp::Add => a.wrapping_add(b),
        BinaryOp::Sub => a.wrapping_sub(b),
        BinaryOp::Mul => a.wrapping_mul(b),
        BinaryOp::Div | BinaryOp::Mod if b == 0 => return Err(DivideByZero),
        BinaryOp::Div if signed => (a as i64).wrapping_div(b as i64) as u64,
        BinaryOp::Div => a / b,
        BinaryOp::Mod if signed => (a as i64).wrapping_rem(b as i64) as u64,
        BinaryOp::Mod => a % b,
        BinaryOp::Shl => a << count,
        BinaryOp::Shr if signed => ((a as i64) >> count) as u64,
        BinaryOp::Shr => a >> count,
        BinaryOp::BitAnd => a & b,
        BinaryOp::BitOr => a | b,
        BinaryOp::BitXor => a ^ b,
        _ => return Ok(u64::from(compare(op, a, b, ty).unwrap_or(false))),
    };
    Ok(v)
}

/// C's pointer arithmetic: `p + n` and `p - n` move by `n` elements, `p - q` counts them.
fn pointer_arithmetic(op: BinaryOp, l: (u64, &DType), r: (u64, &DType)) -> Option<u64> {
    let scale = |t: &DType| match t {
        DType::Pointer(to) => to.size().unwrap_or(1).max(1),
        _ => 1,
    };
    match (l.1, r.1, op) {
        (DType::Pointer(_), DType::Pointer(_), BinaryOp::Sub) => {
            let diff = l.0.wrapping_sub(r.0) as i64;
            Some((diff / scale(l.1) as i64) as u64)
        }
        (DType::Pointer(_), _, BinaryOp::Add) => {
            Some(l.0.wrapping_add(r.0.wrapping_mul(scale(l.1))))
        }
        (DType::Pointer(_), _, BinaryOp::Sub) => {
            Some(l.0.wrapping_sub(r.0.wrapping_mul(scale(l.1))))
        }
        (_, DType::Pointer(_), BinaryOp::Add) => {
            Some(r.0.wrapping_add(l.0.wrapping_mul(scale(r.1))))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UINT: DType = DType::Int {
        bits: 32,
        signed: false,
    };

    #[test]
    fn extend_cuts_and_sign_extends() {
        assert_eq!(normalize(0xff, &DType::CHAR), u64::MAX);
        assert_eq!(normalize(0x1_0000_0001, &DType::INT), 1);
        assert_eq!(normalize(0xffff_ffff, &DType::INT) as i64, -1);
        assert_eq!(normalize(0x80, &DType::CHAR) as i64, -128);
        assert_eq!(normalize(u64::MAX, &UINT), 0xffff_ffff);
        assert_eq!(extend(0x8000, 16, false), 0x8000);
        assert_eq!(extend(0x8000, 16, true) as i64, -0x8000);
        // The zero-width guard: no width means no cut (and no shift by 64).
        assert_eq!(extend(0x1234, 0, true), 0x1234);
        assert_eq!(extend(u64::MAX, 64, false), u64::MAX);
    }

    #[test]
    fn usual_arithmetic_conversions() {
        assert_eq!(promote(&DType::INT, &UINT), UINT);
        assert_eq!(promote(&DType::INT, &DType::LONG), DType::LONG);
        assert_eq!(promote(&UINT, &DType::LONG), DType::LONG);
        assert_eq!(promote(&DType::LONG, &DType::ULONG), DType::ULONG);
        assert_eq!(promote(&DType::CHAR, &DType::CHAR), DType::INT);
    }

    #[test]
    fn shift_counts_are_taken_modulo_64_as_bpf_does() {
        let shl = |a: u64, n: i64, ty: &DType| {
            binary(BinaryOp::Shl, (a, ty), (n as u64, &DType::LONG), ty).unwrap()
        };
        assert_eq!(shl(1, 64, &DType::LONG), 1);
        assert_eq!(shl(1, 65, &DType::LONG), 2);
        assert_eq!(shl(1, -1, &DType::LONG), 1 << 63);
        // The shift is done on 64 bits, and cut to the type only where it is stored.
        assert_eq!(shl(1, 40, &DType::INT), 1 << 40);
        assert_eq!(normalize(shl(1, 40, &DType::INT), &DType::INT), 0);
        let sar = binary(
            BinaryOp::Shr,
            (u64::MAX - 7, &DType::LONG),
            (66, &DType::INT),
            &DType::LONG,
        );
        assert_eq!(sar.map(|v| v as i64), Ok(-2));
        let shr = binary(
            BinaryOp::Shr,
            (u64::MAX, &DType::ULONG),
            (127, &DType::INT),
            &DType::ULONG,
        );
        assert_eq!(shr, Ok(1));
    }

    #[test]
    fn division_by_zero_is_an_error_and_signed_division_wraps() {
        let div = |op, a: i64, b: i64| {
            binary(
                op,
                (a as u64, &DType::LONG),
                (b as u64, &DType::LONG),
                &DType::LONG,
            )
        };
        assert_eq!(div(BinaryOp::Div, 7, 0), Err(DivideByZero));
        assert_eq!(div(BinaryOp::Mod, 7, 0), Err(DivideByZero));
        assert_eq!(div(BinaryOp::Div, i64::MIN, -1), Ok(i64::MIN as u64));
        assert_eq!(div(BinaryOp::Mod, -7, 2), Ok(-1i64 as u64));
    }

    #[test]
    fn intermediate_results_keep_64_bits() {
        let int = |op, a: i64, b: i64| {
            binary(
                op,
                (a as u64, &DType::INT),
                (b as u64, &DType::INT),
                &DType::INT,
            )
            .unwrap()
        };
        let i: i64 = 25920;
        let product = int(BinaryOp::Mul, 5 * i, i);
        assert_eq!(product as i64, 5 * i * i);
        let back = int(BinaryOp::Div, product as i64, i);
        assert_eq!(back as i64, 5 * i);
        // Stored into an int, the 64-bit difference is cut to 32 bits, as in DTrace.
        let diff = int(BinaryOp::Sub, i, product as i64);
        assert_eq!(
            normalize(diff, &DType::INT) as i64,
            i64::from((i - 5 * i * i) as i32)
        );
    }

    #[test]
    fn comparisons_follow_the_promoted_signedness() {
        let minus_one = -1i64 as u64;
        assert_eq!(compare(BinaryOp::Lt, minus_one, 1, &DType::INT), Some(true));
        assert_eq!(compare(BinaryOp::Lt, minus_one, 1, &UINT), Some(false));
        assert_eq!(compare(BinaryOp::Add, 1, 1, &UINT), None);
    }

    #[test]
    fn pointer_arithmetic_is_scaled() {
        let p = DType::Pointer(Box::new(DType::INT));
        assert_eq!(
            binary(BinaryOp::Add, (0x1000, &p), (2, &DType::INT), &p),
            Ok(0x1008)
        );
        assert_eq!(
            binary(BinaryOp::Sub, (0x1010, &p), (0x1000, &p), &DType::LONG),
            Ok(4)
        );
    }
}
