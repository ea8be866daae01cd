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

use super::walk::walk;
use crate::backend::linux::d::ast::{
    BinaryOp, Builtin, Clause, DType, Expr, ExprKind, Function, Stmt, UnaryOp, VarScope,
};
use crate::backend::linux::deep;
use crate::backend::linux::firing::{thread_member_path, ProbeInfo};
use crate::inspect::task::{self, MemberRead};

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
    /// The value an earlier probe of this thread kept for thread variable
    /// `Plan::shadow_vars[i]` (see `captures`: a path saved at a syscall's entry is read
    /// again at its return; a pointer set at one probe is followed at another).
    Shadow(usize),
    /// A `curthread->…` member, read from the current task at the probe
    /// (`curthread->thread.fsbase`, the thread pointer that TLS addresses start from).
    ThreadMember(MemberRead),
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
            AddrExpr::Load { .. } | AddrExpr::Shadow(_) | AddrExpr::ThreadMember(_) => true,
        }
    }

    /// Levels of nesting: the scratch slots the program needs to compute it.
    pub fn depth(&self) -> usize {
        match self {
            AddrExpr::Arg(_)
            | AddrExpr::Const(_)
            | AddrExpr::Shadow(_)
            | AddrExpr::ThreadMember(_) => 1,
            AddrExpr::Binary(_, a, b) => a.depth().max(1 + b.depth()),
            AddrExpr::Select(c, a, b) => c.depth().max(a.depth()).max(b.depth()),
            AddrExpr::Load { addr, .. } => addr.depth(),
        }
    }
}

/// The `this->` variables (by name) and kept thread variables (by `self->name`) known at a
/// point of a probe's firing, as address expressions.
type Locals = HashMap<String, Option<AddrExpr>>;

/// `self->x = value` as the kernel mirrors it: keep `value` as this thread's
/// `Plan::shadow_vars[var]` once the reads are done, when `guard` (the clause's predicate, as
/// the kernel evaluates it) holds, and, in a program serving several probes, when `probe`
/// (the plan's index of the probe whose clause assigns) fired.
#[derive(Clone, Debug, PartialEq)]
pub struct ShadowStore {
    pub var: usize,
    pub value: AddrExpr,
    pub guard: Option<Expr>,
    pub probe: Option<u32>,
}

/// What the kernel does for the clauses run at one probe.
#[derive(Debug, Default, PartialEq)]
pub struct ProbeReads {
    /// The derived reads, sorted.
    pub reads: Vec<DerivedRead>,
    /// The assignments of kept variables, the last of each, in the order of the firing.
    pub stores: Vec<ShadowStore>,
    /// Kept thread variables that a clause here sets in a way the kernel cannot follow (in
    /// an `if`, with a compound operator, to a value it cannot compute, or in a clause whose
    /// predicate it cannot evaluate).
    pub unfollowable: Vec<String>,
}

/// The derived reads of the clauses run at one probe, in clause order (`this->` variables
/// carry from one clause to the next at the same firing), and the values of `kept` thread
/// variables to keep: a kept `self->x` reads as the value its last assignment at this firing
/// gave it, or else as the value an earlier firing kept (`AddrExpr::Shadow`).
pub fn reads_of(clauses: &[&Clause], kept: &[String], probe: &ProbeInfo) -> ProbeReads {
    let mut at = Firing {
        locals: Locals::new(),
        kept,
        guard: Ok(None),
        out: ProbeReads::default(),
    };
    for clause in clauses {
        // A clause that never runs (`/0/`, or an inline constant that is 0) reads nothing.
        if clause.predicate.as_ref().and_then(Expr::as_int) == Some(0) {
            continue;
        }
        at.guard = match &clause.predicate {
            None => Ok(None),
            Some(p) => super::filter::kernel_predicate(p, probe)
                .map(Some)
                .ok_or(()),
        };
        if let Some(p) = &clause.predicate {
            at.collect(p);
        }
        for stmt in clause.body.iter().flatten() {
            at.statement(stmt, false);
        }
    }
    let mut out = at.out;
    out.reads.sort();
    out.reads.dedup();
    out.unfollowable.sort();
    out.unfollowable.dedup();
    // The last assignment of each variable, in firing order: a value that names another
    // kept variable (not set earlier at this firing) reads it before it is replaced.
    let all = std::mem::take(&mut out.stores);
    for (n, store) in all.iter().enumerate() {
        if !all[n + 1..].iter().any(|later| later.var == store.var) {
            out.stores.push(store.clone());
        }
    }
    out
}

/// The walk over one probe's clauses.
struct Firing<'a> {
    locals: Locals,
    kept: &'a [String],
    /// The current clause's predicate as the kernel evaluates it (Err: it cannot).
    guard: Result<Option<Expr>, ()>,
    out: ProbeReads,
}

impl Firing<'_> {
    fn statement(&mut self, stmt: &Stmt, branch: bool) {
        match stmt {
            Stmt::Expr(e) => {
                self.collect(e);
                self.assignments(e, branch);
            }
            Stmt::Aggregate(a) => a.keys.iter().chain(&a.args).for_each(|e| self.collect(e)),
            Stmt::If {
                cond,
                then,
                otherwise,
                ..
            } => {
                self.collect(cond);
                for s in then.iter().chain(otherwise.iter().flatten()) {
                    self.statement(s, true);
                }
            }
        }
    }

    /// Notes `this->x = E` and `self->x = E` (only outside `if` bodies: an assignment that
    /// may not run makes x unknown, as does any other change to x).
    fn assignments<'e>(&mut self, e: &'e Expr, branch: bool) {
        deep::recurse(|| {
            let mut changes: Vec<(&'e Expr, Option<&'e Expr>)> = Vec::new();
            walk(e, &mut |e: &'e Expr| {
                let (target, value) = match &e.kind {
                    ExprKind::Assign {
                        op: None,
                        target,
                        value,
                    } if !branch => (target, Some(value)),
                    ExprKind::Assign { target, .. } | ExprKind::IncDec { target, .. } => {
                        (target, None)
                    }
                    _ => return,
                };
                changes.push((target, value.map(|v| &**v)));
            });
            for (target, value) in changes {
                let ExprKind::Var { name, scope } = &target.kind else {
                    continue;
                };
                let known = value
                    .and_then(|v| address(v, &self.locals, self.kept))
                    .map(|a| fit(a, &target.ty));
                match scope {
                    VarScope::Clause => {
                        self.locals.insert(name.clone(), known);
                    }
                    VarScope::Thread => {
                        let Some(i) = self.kept.iter().position(|k| k == name) else {
                            continue;
                        };
                        match (&known, &self.guard) {
                            (Some(value), Ok(guard)) => self.out.stores.push(ShadowStore {
                                var: i,
                                value: value.clone(),
                                guard: guard.clone(),
                                probe: None,
                            }),
                            _ => self.out.unfollowable.push(name.clone()),
                        }
                        self.locals.insert(format!("self->{name}"), known);
                    }
                    VarScope::Global => {}
                }
            }
        })
    }

    /// Adds a derived read for every copyin/copyinstr in `e` whose address is computed.
    fn collect(&mut self, e: &Expr) {
        deep::recurse(|| {
            walk(e, &mut |e: &Expr| {
                let ExprKind::Call { func, args } = &e.kind else {
                    return;
                };
                let Some(size) = read_size(*func, args) else {
                    return;
                };
                let Some(addr) = args
                    .first()
                    .and_then(|a| address(a, &self.locals, self.kept))
                else {
                    return;
                };
                // A plain argument is an ordinary capture (`Captures::strings`/`bytes`).
                if !matches!(addr, AddrExpr::Arg(_)) && addr.depth() <= MAX_DEPTH {
                    self.out.reads.push(DerivedRead { addr, size });
                }
            });
        })
    }
}

/// `e` as an address expression, when the kernel can compute it.
fn address(e: &Expr, locals: &Locals, kept: &[String]) -> Option<AddrExpr> {
    deep::recurse(|| {
        let a = match &e.kind {
            ExprKind::Int(v) => AddrExpr::Const(*v),
            ExprKind::Builtin(Builtin::Arg(n)) => AddrExpr::Arg(*n),
            // A member BTF cannot resolve is not read here; planning reports it.
            ExprKind::Member { .. } => {
                AddrExpr::ThreadMember(task::member_read(&thread_member_path(e)?).ok()?)
            }
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
            ExprKind::Var {
                name,
                scope: VarScope::Thread,
            } => match locals.get(&format!("self->{name}")) {
                Some(known) => known.clone()?,
                None => AddrExpr::Shadow(kept.iter().position(|k| k == name)?),
            },
            ExprKind::Cast { to, expr } => fit(address(expr, locals, kept)?, to),
            ExprKind::Unary { op, operand } => match op {
                UnaryOp::Plus => address(operand, locals, kept)?,
                UnaryOp::Neg => binary(
                    AddrOp::Sub,
                    AddrExpr::Const(0),
                    address(operand, locals, kept)?,
                ),
                UnaryOp::BitNot => binary(
                    AddrOp::Xor,
                    address(operand, locals, kept)?,
                    AddrExpr::Const(u64::MAX),
                ),
                UnaryOp::Deref => load(operand, locals, kept)?,
                UnaryOp::Not | UnaryOp::AddrOf => return None,
            },
            ExprKind::Binary { op, lhs, rhs } => arithmetic(*op, lhs, rhs, locals, kept)?,
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => AddrExpr::Select(
                Box::new(address(cond, locals, kept)?),
                Box::new(address(then, locals, kept)?),
                Box::new(address(otherwise, locals, kept)?),
            ),
            _ => return None,
        };
        Some(fit(a, &e.ty))
    })
}

/// `*(T *)copyin(E, n)` with T an integer type.
fn load(operand: &Expr, locals: &Locals, kept: &[String]) -> Option<AddrExpr> {
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
        addr: Box::new(address(args.first()?, locals, kept)?),
        bytes: bits / 8,
        signed,
    })
}

/// C's arithmetic, with pointer arithmetic scaled by the pointee's size.
fn arithmetic(
    op: BinaryOp,
    lhs: &Expr,
    rhs: &Expr,
    locals: &Locals,
    kept: &[String],
) -> Option<AddrExpr> {
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
    let (mut a, mut b) = (address(lhs, locals, kept)?, address(rhs, locals, kept)?);
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

/// What a copyinstr (`Some(None)`: a string) or copyin with a constant size
/// (`Some(Some(size))`) reads; None for any other call.
pub fn read_size(func: Function, args: &[Expr]) -> Option<Option<u32>> {
    match func {
        Function::Copyinstr => Some(None),
        Function::Copyin => {
            let size = args.get(1).and_then(Expr::as_int)?;
            Some(Some(u32::try_from(size).unwrap_or(u32::MAX)))
        }
        _ => None,
    }
}
