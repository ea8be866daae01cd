//! Derived reads: user memory at an address the probe computes, not an argument itself.
//!
//! D reads user memory at the probe, so a chain such as
//! `copyinstr(*(uint64_t *)copyin(arg1 + 8, 8))` (argv[1] at execve) or CPython's
//! frame → code object → name needs every link read while the probe fires: the memory may
//! change or be freed before the executor runs. For each copyin/copyinstr whose address is
//! built from arguments, constants, integer arithmetic, casts, ternaries and integers read
//! through `*(T *)copyin(…)` (directly or through `this->` variables assigned earlier at the
//! same firing), the probe's program computes the address in the kernel and reads there. The
//! record carries the address with what was read, and the executor's copyin/copyinstr find it
//! by address (`Firing::reads`).
//!
//! Every intermediate value is cut to its D type as the executor cuts it, so that both halves
//! compute the same address.

use std::collections::HashMap;

use crate::backend::linux::d::ast::{
    BinaryOp, Builtin, Clause, DType, Expr, ExprKind, Function, Stmt, UnaryOp, VarScope,
};

/// An address (or any integer) computed at the probe.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AddrExpr {
    Arg(u8),
    Const(u64),
    Binary(AddrOp, Box<AddrExpr>, Box<AddrExpr>),
    /// `cond ? then : otherwise`, cond tested against zero.
    Select(Box<AddrExpr>, Box<AddrExpr>, Box<AddrExpr>),
    /// The `bytes`-wide integer at the address, read from user memory at the probe.
    Load {
        addr: Box<AddrExpr>,
        bytes: u8,
        signed: bool,
    },
    /// The pointer an earlier probe of this thread stored for thread variable
    /// `Plan::shadow_vars[i]` (see `captures`: a path saved at a syscall's entry is read
    /// again at its return).
    Shadow(usize),
}

/// Integer operators of addresses; `Sar` is the arithmetic (signed) right shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AddrOp {
    Add,
    Sub,
    Mul,
    And,
    Or,
    Xor,
    Shl,
    Shr,
    Sar,
}

/// One derived read: a string (`size` None) or `size` bytes at `addr`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DerivedRead {
    pub addr: AddrExpr,
    pub size: Option<u32>,
}

/// Deepest address expression compiled into a program; deeper ones are not read in the kernel
/// (the executor then reports an invalid address, as for any read not captured).
pub const MAX_DEPTH: usize = 12;

impl AddrExpr {
    /// Whether computing it reads user memory (which can fail).
    pub fn loads(&self) -> bool {
        match self {
            AddrExpr::Arg(_) | AddrExpr::Const(_) => false,
            AddrExpr::Binary(_, a, b) => a.loads() || b.loads(),
            AddrExpr::Select(c, a, b) => c.loads() || a.loads() || b.loads(),
            AddrExpr::Load { .. } | AddrExpr::Shadow(_) => true,
        }
    }

    /// Levels of nesting: the scratch slots the program needs to compute it.
    pub fn depth(&self) -> usize {
        match self {
            AddrExpr::Arg(_) | AddrExpr::Const(_) | AddrExpr::Shadow(_) => 1,
            AddrExpr::Binary(_, a, b) => a.depth().max(1 + b.depth()),
            AddrExpr::Select(c, a, b) => c.depth().max(a.depth()).max(b.depth()),
            AddrExpr::Load { addr, .. } => addr.depth(),
        }
    }
}

/// The `this->` variables known at a point of a probe's firing, as address expressions.
type Locals = HashMap<String, Option<AddrExpr>>;

/// The derived reads of the clauses run at one probe, in clause order (`this->` variables
/// carry from one clause to the next at the same firing).
pub fn reads_of(clauses: &[&Clause]) -> Vec<DerivedRead> {
    let mut locals = Locals::new();
    let mut reads = Vec::new();
    for clause in clauses {
        if let Some(p) = &clause.predicate {
            collect(p, &locals, &mut reads);
        }
        for stmt in clause.body.iter().flatten() {
            statement(stmt, &mut locals, &mut reads, false);
        }
    }
    reads.sort();
    reads.dedup();
    reads
}

fn statement(stmt: &Stmt, locals: &mut Locals, reads: &mut Vec<DerivedRead>, branch: bool) {
    match stmt {
        Stmt::Expr(e) => {
            collect(e, locals, reads);
            assignments(e, locals, branch);
        }
        Stmt::Aggregate(a) => a
            .keys
            .iter()
            .chain(&a.args)
            .for_each(|e| collect(e, locals, reads)),
        Stmt::If {
            cond,
            then,
            otherwise,
            ..
        } => {
            collect(cond, locals, reads);
            for s in then.iter().chain(otherwise.iter().flatten()) {
                statement(s, locals, reads, true);
            }
        }
    }
}

/// Notes `this->x = E` (only outside `if` bodies: an assignment that may not run makes x
/// unknown, as does any other change to x).
fn assignments(e: &Expr, locals: &mut Locals, branch: bool) {
    super::captures::walk(e, &mut |e: &Expr| {
        let (target, known) = match &e.kind {
            ExprKind::Assign {
                op: None,
                target,
                value,
            } if !branch => (target, address(value, locals).map(|a| fit(a, &target.ty))),
            ExprKind::Assign { target, .. } | ExprKind::IncDec { target, .. } => (target, None),
            _ => return,
        };
        if let ExprKind::Var {
            name,
            scope: VarScope::Clause,
        } = &target.kind
        {
            locals.insert(name.clone(), known);
        }
    });
}

/// Adds a derived read for every copyin/copyinstr in `e` whose address is computed.
fn collect(e: &Expr, locals: &Locals, reads: &mut Vec<DerivedRead>) {
    super::captures::walk(e, &mut |e: &Expr| {
        let ExprKind::Call { func, args } = &e.kind else {
            return;
        };
        let Some(size) = super::captures::read_size(*func, args) else {
            return;
        };
        let Some(addr) = args.first().and_then(|a| address(a, locals)) else {
            return;
        };
        // A plain argument is an ordinary capture (`Captures::strings`/`bytes`).
        if !matches!(addr, AddrExpr::Arg(_)) && addr.depth() <= MAX_DEPTH {
            reads.push(DerivedRead { addr, size });
        }
    });
}

/// `e` as an address expression, when the kernel can compute it.
fn address(e: &Expr, locals: &Locals) -> Option<AddrExpr> {
    let a = match &e.kind {
        ExprKind::Int(v) => AddrExpr::Const(*v),
        ExprKind::Builtin(Builtin::Arg(n)) => AddrExpr::Arg(*n),
        ExprKind::Index { base, indices }
            if matches!(base.kind, ExprKind::Builtin(Builtin::Args)) =>
        {
            let n = indices.first()?.as_int()?;
            AddrExpr::Arg(u8::try_from(n).ok().filter(|&n| n < 10)?)
        }
        ExprKind::Var {
            name,
            scope: VarScope::Clause,
        } => locals.get(name).cloned().flatten()?,
        ExprKind::Cast { to, expr } => fit(address(expr, locals)?, to),
        ExprKind::Unary { op, operand } => match op {
            UnaryOp::Plus => address(operand, locals)?,
            UnaryOp::Neg => binary(AddrOp::Sub, AddrExpr::Const(0), address(operand, locals)?),
            UnaryOp::BitNot => binary(
                AddrOp::Xor,
                address(operand, locals)?,
                AddrExpr::Const(u64::MAX),
            ),
            UnaryOp::Deref => load(operand, locals)?,
            UnaryOp::Not | UnaryOp::AddrOf => return None,
        },
        ExprKind::Binary { op, lhs, rhs } => arithmetic(*op, lhs, rhs, locals)?,
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => AddrExpr::Select(
            Box::new(address(cond, locals)?),
            Box::new(address(then, locals)?),
            Box::new(address(otherwise, locals)?),
        ),
        _ => return None,
    };
    Some(fit(a, &e.ty))
}

/// `*(T *)copyin(E, n)` with T an integer type.
fn load(operand: &Expr, locals: &Locals) -> Option<AddrExpr> {
    let ExprKind::Cast {
        to: DType::Pointer(to),
        expr,
    } = &operand.kind
    else {
        return None;
    };
    let DType::Int { bits, signed } = **to else {
        return None;
    };
    let ExprKind::Call {
        func: Function::Copyin,
        args,
    } = &expr.kind
    else {
        return None;
    };
    let size = args.get(1)?.as_int()?;
    if size < u64::from(bits / 8) {
        return None;
    }
    Some(AddrExpr::Load {
        addr: Box::new(address(args.first()?, locals)?),
        bytes: bits / 8,
        signed,
    })
}

/// C's arithmetic, with pointer arithmetic scaled by the pointee's size.
fn arithmetic(op: BinaryOp, lhs: &Expr, rhs: &Expr, locals: &Locals) -> Option<AddrExpr> {
    let signed = matches!(lhs.ty, DType::Int { signed: true, .. });
    let op = match op {
        BinaryOp::Add => AddrOp::Add,
        BinaryOp::Sub => AddrOp::Sub,
        BinaryOp::Mul => AddrOp::Mul,
        BinaryOp::BitAnd => AddrOp::And,
        BinaryOp::BitOr => AddrOp::Or,
        BinaryOp::BitXor => AddrOp::Xor,
        BinaryOp::Shl => AddrOp::Shl,
        BinaryOp::Shr if signed => AddrOp::Sar,
        BinaryOp::Shr => AddrOp::Shr,
        _ => return None,
    };
    let scale = |ty: &DType| match ty {
        DType::Pointer(to) => to.size().unwrap_or(1).max(1),
        _ => 1,
    };
    let (mut a, mut b) = (address(lhs, locals)?, address(rhs, locals)?);
    match (&lhs.ty, &rhs.ty, op) {
        (DType::Pointer(_), DType::Pointer(_), _) => return None,
        (DType::Pointer(_), _, AddrOp::Add | AddrOp::Sub) => b = scaled(b, scale(&lhs.ty)),
        (_, DType::Pointer(_), AddrOp::Add) => a = scaled(a, scale(&rhs.ty)),
        _ => {}
    }
    Some(binary(op, a, b))
}

fn scaled(e: AddrExpr, by: u64) -> AddrExpr {
    if by == 1 {
        e
    } else {
        binary(AddrOp::Mul, e, AddrExpr::Const(by))
    }
}

/// `a op b`, folded when both are constants.
fn binary(op: AddrOp, a: AddrExpr, b: AddrExpr) -> AddrExpr {
    match (&a, &b) {
        (AddrExpr::Const(x), AddrExpr::Const(y)) => AddrExpr::Const(op.apply(*x, *y)),
        _ => AddrExpr::Binary(op, Box::new(a), Box::new(b)),
    }
}

impl AddrOp {
    /// The operator on 64-bit values, as the BPF instruction computes it (shifts by the low
    /// six bits).
    pub fn apply(self, a: u64, b: u64) -> u64 {
        let shift = (b & 63) as u32;
        match self {
            AddrOp::Add => a.wrapping_add(b),
            AddrOp::Sub => a.wrapping_sub(b),
            AddrOp::Mul => a.wrapping_mul(b),
            AddrOp::And => a & b,
            AddrOp::Or => a | b,
            AddrOp::Xor => a ^ b,
            AddrOp::Shl => a << shift,
            AddrOp::Shr => a >> shift,
            AddrOp::Sar => ((a as i64) >> shift) as u64,
        }
    }
}

/// Cuts `e` to the integer type `ty` as the executor does: zero-extended for unsigned types,
/// sign-extended for signed ones. Pointers and 64-bit integers are left as they are.
fn fit(e: AddrExpr, ty: &DType) -> AddrExpr {
    let DType::Int { bits, signed } = *ty else {
        return e;
    };
    if bits >= 64 {
        return e;
    }
    let unused = u64::from(64 - bits);
    if signed {
        binary(
            AddrOp::Sar,
            binary(AddrOp::Shl, e, AddrExpr::Const(unused)),
            AddrExpr::Const(unused),
        )
    } else {
        binary(AddrOp::And, e, AddrExpr::Const(u64::MAX >> unused))
    }
}
