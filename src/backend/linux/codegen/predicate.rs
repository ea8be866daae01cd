//! BPF code for a kernel-side predicate (see `plan::filter` for what qualifies). It runs
//! after the record's header and arguments are filled, and reads its operands from the
//! record (R7), so it needs no helpers: every operand is a leaf loaded into R1 or R2, and
//! `&&`, `||` and `!` become jumps. A zone test reads the membership bits the header
//! computed (see `firing::Zone`).

use super::frame::thread_var_slot;
use crate::backend::linux::bpf::insn::{AluOp, Asm, Cond, Label, Reg, Size, Src};
use crate::backend::linux::d::ast::{BinaryOp, Builtin, DType, Expr, ExprKind, UnaryOp, VarScope};
use crate::backend::linux::deep;
use crate::backend::linux::firing::{zone_compared, Zone};
use crate::backend::linux::plan::filter::{args_index, execname_constant};
use crate::backend::linux::record::{
    arg_offset, COMM, COMM_LEN, CPU, GID, PID, TID, TIMESTAMP, UID, ZONES,
};

/// What kernel expressions refer to besides the record: the plan's zones, in membership-bit
/// order, and the thread variables kept in the kernel, whose values the clause's code has
/// loaded into the stack slots `frame::thread_var_slot` gives (see `codegen::threadvars`).
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub zones: &'a [Zone],
    pub vars: &'a [String],
}

/// Jumps to `target` when `e`'s truth is `when`; falls through otherwise.
pub fn branch(asm: &mut Asm, e: &Expr, scope: Scope<'_>, target: Label, when: bool) {
    deep::recurse(|| {
        let zones = scope.zones;
        match &e.kind {
            ExprKind::Binary { op, lhs, rhs } if matches!(op, BinaryOp::And | BinaryOp::Or) => {
                // `a && b` jumps on false as soon as a is false; `a || b` on true as soon as a is.
                let shortcut = *op == BinaryOp::Or;
                if when == shortcut {
                    branch(asm, lhs, scope, target, when);
                    branch(asm, rhs, scope, target, when);
                } else {
                    let skip = asm.label();
                    branch(asm, lhs, scope, skip, shortcut);
                    branch(asm, rhs, scope, target, when);
                    asm.bind(skip);
                }
            }
            ExprKind::Binary { op, lhs, rhs } if op.is_comparison() => {
                let equal = (*op == BinaryOp::Eq) == when;
                if let Some(text) = execname_constant(*op, lhs, rhs) {
                    execname(asm, text, equal, target);
                } else if let Some(name) = zone_compared(*op, lhs, rhs) {
                    zone(asm, zones, name, equal, target);
                } else {
                    compare(asm, *op, lhs, rhs, scope.vars, target, when);
                }
            }
            ExprKind::Unary {
                op: UnaryOp::Not,
                operand,
            } => branch(asm, operand, scope, target, !when),
            ExprKind::Int(v) => {
                if (*v != 0) == when {
                    asm.jmp(target);
                }
            }
            _ => {
                load(asm, e, scope.vars, Reg::R1);
                let cond = if when { Cond::Ne } else { Cond::Eq };
                asm.jmp_if(cond, Reg::R1, Src::Imm(0), target);
            }
        }
    })
}

fn is_signed(ty: &DType) -> bool {
    matches!(ty, DType::Int { signed: true, .. })
}

fn compare(
    asm: &mut Asm,
    op: BinaryOp,
    lhs: &Expr,
    rhs: &Expr,
    vars: &[String],
    target: Label,
    when: bool,
) {
    load(asm, lhs, vars, Reg::R1);
    // A constant that the 32-bit immediate holds (it is sign-extended to 64 bits) is
    // compared as one: half the instructions of a chain such as `pid == 1 || pid == 2 || …`,
    // whose jumps must stay within the 16-bit offset of a BPF jump.
    let right = match rhs.kind {
        ExprKind::Int(v) if i32::try_from(v as i64).is_ok() => Src::Imm(v as i64 as i32),
        _ => {
            load(asm, rhs, vars, Reg::R2);
            Src::Reg(Reg::R2)
        }
    };
    let signed = is_signed(&lhs.ty) && is_signed(&rhs.ty);
    // When jumping on false, jump on the opposite comparison.
    let op = if when { op } else { negate(op) };
    let cond = match (op, signed) {
        (BinaryOp::Eq, _) => Cond::Eq,
        (BinaryOp::Ne, _) => Cond::Ne,
        (BinaryOp::Lt, true) => Cond::Slt,
        (BinaryOp::Lt, false) => Cond::Lt,
        (BinaryOp::Le, true) => Cond::Sle,
        (BinaryOp::Le, false) => Cond::Le,
        (BinaryOp::Gt, true) => Cond::Sgt,
        (BinaryOp::Gt, false) => Cond::Gt,
        (_, true) => Cond::Sge,
        (_, false) => Cond::Ge,
    };
    asm.jmp_if(cond, Reg::R1, right, target);
}

fn negate(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Eq => BinaryOp::Ne,
        BinaryOp::Ne => BinaryOp::Eq,
        BinaryOp::Lt => BinaryOp::Ge,
        BinaryOp::Ge => BinaryOp::Lt,
        BinaryOp::Gt => BinaryOp::Le,
        _ => BinaryOp::Gt,
    }
}

/// Jumps to `target` when the record's comm equals `text` (`equal`) or differs from it
/// (`!equal`). comm is NUL-padded to 16 bytes, so two 8-byte compares decide it; a text
/// longer than comm can hold never equals it.
fn execname(asm: &mut Asm, text: &str, equal: bool, target: Label) {
    if text.len() >= COMM_LEN {
        if !equal {
            asm.jmp(target);
        }
        return;
    }
    let mut padded = [0u8; COMM_LEN];
    padded[..text.len()].copy_from_slice(text.as_bytes());
    let differ = asm.label();
    let on_difference = if equal { differ } else { target };
    for (i, chunk) in padded.chunks(8).enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        asm.ldx(Size::DW, Reg::R1, Reg::R7, COMM + 8 * i as i16)
            .ld_imm64(Reg::R2, u64::from_ne_bytes(word))
            .jmp_if(Cond::Ne, Reg::R1, Src::Reg(Reg::R2), on_difference);
    }
    if equal {
        asm.jmp(target);
    }
    asm.bind(differ);
}

/// Jumps to `target` when the thread is in the zone `name` (`inside`) or outside it
/// (`!inside`). A zone at the root holds every thread: the header sets its bit for every
/// thread, and it is tested like any other, since an unconditional jump here would leave
/// the code after it unreachable, which the verifier refuses. The plan resolves every zone a
/// program compares with, so `name` is among `zones`; the fall-back only keeps this total.
fn zone(asm: &mut Asm, zones: &[Zone], name: &str, inside: bool, target: Label) {
    let Some(i) = zones.iter().position(|z| z.name == name) else {
        if !inside {
            asm.jmp(target);
        }
        return;
    };
    let cond = if inside { Cond::Ne } else { Cond::Eq };
    asm.ldx(Size::DW, Reg::R1, Reg::R7, ZONES)
        .ld_imm64(Reg::R2, 1 << i)
        .alu64(AluOp::And, Reg::R1, Src::Reg(Reg::R2))
        .jmp_if(cond, Reg::R1, Src::Imm(0), target);
}

/// Loads a kernel-evaluable value into `dst` (R1 or R2; R3 is the temporary of arithmetic,
/// whose right operand is always a leaf; nothing else is touched).
pub fn load(asm: &mut Asm, e: &Expr, vars: &[String], dst: Reg) {
    deep::recurse(|| {
        let field = |asm: &mut Asm, size, off| {
            asm.ldx(size, dst, Reg::R7, off);
        };
        match &e.kind {
            ExprKind::Int(v) => {
                asm.ld_imm64(dst, *v);
            }
            ExprKind::Builtin(Builtin::Pid) => field(asm, Size::W, PID),
            ExprKind::Builtin(Builtin::Tid) => field(asm, Size::W, TID),
            ExprKind::Builtin(Builtin::Uid) => field(asm, Size::W, UID),
            ExprKind::Builtin(Builtin::Gid) => field(asm, Size::W, GID),
            ExprKind::Builtin(Builtin::Cpu) => field(asm, Size::W, CPU),
            ExprKind::Builtin(Builtin::Arg(n)) => field(asm, Size::DW, arg_offset(*n)),
            // Only at syscall returns (plan::filter makes it 0 elsewhere): −arg0 for a return
            // value in [−4095, −1], else 0.
            ExprKind::Builtin(Builtin::Errno) => {
                let zero = asm.label();
                let done = asm.label();
                field(asm, Size::DW, arg_offset(0));
                asm.jmp_if(Cond::Sge, dst, Src::Imm(0), zero)
                    .jmp_if(Cond::Slt, dst, Src::Imm(-4095), zero)
                    .neg64(dst)
                    .jmp(done)
                    .bind(zero)
                    .mov64_imm(dst, 0)
                    .bind(done);
            }
            ExprKind::Index { .. } => field(asm, Size::DW, arg_offset(args_index(e).unwrap_or(0))),
            ExprKind::Builtin(Builtin::Timestamp) => field(asm, Size::DW, TIMESTAMP),
            ExprKind::Var {
                name,
                scope: VarScope::Thread,
            } => match vars.iter().position(|v| v == name) {
                Some(i) => {
                    asm.ldx(Size::DW, dst, Reg::R10, thread_var_slot(i));
                }
                None => {
                    asm.mov64_imm(dst, 0);
                }
            },
            ExprKind::Binary { op, lhs, rhs } => {
                load(asm, lhs, vars, dst);
                load(asm, rhs, vars, Reg::R3);
                let alu = match op {
                    BinaryOp::Add => AluOp::Add,
                    BinaryOp::Sub => AluOp::Sub,
                    BinaryOp::Mul => AluOp::Mul,
                    BinaryOp::BitAnd => AluOp::And,
                    BinaryOp::BitOr => AluOp::Or,
                    BinaryOp::BitXor => AluOp::Xor,
                    BinaryOp::Shl => AluOp::Lsh,
                    _ if is_signed(&lhs.ty) => AluOp::Arsh,
                    _ => AluOp::Rsh,
                };
                asm.alu64(alu, dst, Src::Reg(Reg::R3));
                fit(asm, &e.ty, dst);
            }
            ExprKind::Cast { expr, to } => {
                load(asm, expr, vars, dst);
                fit(asm, to, dst);
            }
            ExprKind::Unary {
                op: UnaryOp::Neg,
                operand,
            } => {
                load(asm, operand, vars, dst);
                asm.neg64(dst);
            }
            // plan::filter admits nothing else; a constant keeps the code total.
            _ => {
                asm.mov64_imm(dst, 0);
            }
        }
    })
}

/// A narrower integer type keeps the low bits, sign- or zero-extended, as the executor cuts
/// values to their type.
fn fit(asm: &mut Asm, ty: &DType, dst: Reg) {
    if let DType::Int { bits, signed } = ty {
        let shift = 64 - i32::from(*bits).min(64);
        if shift > 0 {
            let back = if *signed { AluOp::Arsh } else { AluOp::Rsh };
            asm.alu64(AluOp::Lsh, dst, Src::Imm(shift))
                .alu64(back, dst, Src::Imm(shift));
        }
    }
}
