//! Evaluation of D expressions and statements over one firing.
//!
//! Integer arithmetic is `d::arith`'s, the rules constant folding uses too, applied with each
//! expression's checked type (the expression's own type for arithmetic, the promoted operand
//! type for comparisons). Strings compare with strcmp.

use super::agg::{KeyPart, Update};
use super::value::Value;
use super::vars::{Place as VarPlace, Stored};
use super::{Fault, Frame, Place, State};
use crate::backend::linux::d::arith::{self, is_signed, normalize, promote};
use crate::backend::linux::d::ast::{
    BinaryOp, Builtin, Clause, DType, Expr, ExprKind, Function, FunctionKind, IncDecOp, Stmt,
    UnaryOp, VarScope,
};
use crate::backend::linux::deep;
use crate::backend::linux::firing::{in_zone, thread_member_path, zone_compared};
use crate::event::DropKind;

pub(super) type Eval = Result<Value, Fault>;

impl State {
    /// Runs a clause: the predicate, then the statements. On a fault, says where it was.
    pub(super) fn run_clause(
        &mut self,
        clause: &Clause,
        f: &mut Frame<'_>,
    ) -> Result<(), (Fault, Place)> {
        self.scratch.clear();
        if let Some(pred) = &clause.predicate {
            let v = self
                .eval(pred, f)
                .map_err(|fault| (fault, Place::Predicate))?;
            if !v.truthy() {
                return Ok(());
            }
        }
        match clause.body.as_deref() {
            None | Some([]) => {
                self.fired(f);
                Ok(())
            }
            Some(body) => self
                .statements(body, f)
                .map_err(|fault| (fault, Place::Action(f.action))),
        }
    }

    fn statements(&mut self, stmts: &[Stmt], f: &mut Frame<'_>) -> Result<(), Fault> {
        for stmt in stmts {
            match stmt {
                Stmt::Expr(e) => {
                    f.action += 1;
                    self.statement_expr(e, f)?;
                }
                Stmt::Aggregate(a) => {
                    f.action += 1;
                    let keys = self.keys(&a.keys, f)?;
                    let mut args = Vec::with_capacity(a.args.len());
                    for arg in &a.args {
                        args.push(self.eval(arg, f)?.int() as i64);
                    }
                    let update = Update {
                        func: a.func,
                        args: &args,
                    };
                    self.aggs
                        .update(&a.name, keys, &update)
                        .map_err(|bad| Fault::BadParameters(bad.0))?;
                }
                Stmt::If {
                    cond,
                    then,
                    otherwise,
                    ..
                } => {
                    let start = f.action;
                    // A fault in the condition is reported at the first statement it guards.
                    f.action += 1;
                    let taken = self.eval(cond, f)?.truthy();
                    let otherwise = otherwise.as_deref().unwrap_or_default();
                    f.action = start;
                    if taken {
                        self.statements(then, f)?;
                    } else {
                        f.action += leaves(then);
                        self.statements(otherwise, f)?;
                    }
                    f.action = start + leaves(then) + leaves(otherwise);
                }
            }
        }
        Ok(())
    }

    fn statement_expr(&mut self, e: &Expr, f: &mut Frame<'_>) -> Result<(), Fault> {
        if let ExprKind::Call { func, args } = &e.kind {
            if func.kind() == FunctionKind::Action {
                return self.action(*func, args, f);
            }
            // stack() and ustack() as statements record the stack, as trace() of it does.
            if matches!(func, Function::Stack | Function::Ustack) {
                return self.action(Function::Trace, std::slice::from_ref(e), f);
            }
        }
        self.eval(e, f).map(|_| ())
    }

    /// Evaluates key expressions into a hashable tuple.
    pub(super) fn keys(
        &mut self,
        exprs: &[Expr],
        f: &mut Frame<'_>,
    ) -> Result<Vec<KeyPart>, Fault> {
        let mut keys = Vec::with_capacity(exprs.len());
        for e in exprs {
            let v = self.eval(e, f)?;
            keys.push(key_part(&v, &e.ty));
        }
        Ok(keys)
    }

    pub(super) fn eval(&mut self, e: &Expr, f: &mut Frame<'_>) -> Eval {
        deep::recurse(|| match &e.kind {
            ExprKind::Int(v) => Ok(Value::Int(*v)),
            // A string constant holds at most strsize bytes, as in DTrace (not a drop).
            ExprKind::Str(s) => Ok(self
                .interned
                .value(&s.as_bytes()[..s.len().min(self.options.strsize)])),
            ExprKind::Ident(_) | ExprKind::Aggregation(_) => Ok(Value::zero(&e.ty)),
            ExprKind::Var { name, scope } => Ok(self.read_var(*scope, name, Vec::new(), &e.ty, f)),
            ExprKind::Builtin(b) => Ok(self.builtin(*b, &e.ty, f)),
            ExprKind::Unary { op, operand } => self.unary(*op, operand, &e.ty, f),
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, &e.ty, f),
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                let chosen = if self.eval(cond, f)?.truthy() {
                    then
                } else {
                    otherwise
                };
                Ok(self.eval(chosen, f)?.convert(&e.ty))
            }
            ExprKind::Assign { op, target, value } => self.assign(*op, target, value, f),
            ExprKind::IncDec { op, target } => self.inc_dec(*op, target, f),
            ExprKind::Cast { to, expr } => {
                let v = self.eval(expr, f)?;
                let v = match to {
                    DType::String => self.scratch_string(v, to),
                    _ => v,
                };
                Ok(v.convert(to))
            }
            ExprKind::SizeofType(t) => Ok(Value::Int(self.size_of(t))),
            ExprKind::SizeofExpr(x) => Ok(Value::Int(self.size_of(&x.ty))),
            ExprKind::Stringof(x) => {
                let v = self.eval(x, f)?;
                let v = self.deref_scratch(v);
                Ok(Value::str(self.stringof(&v, &x.ty)))
            }
            ExprKind::Member { base, member, .. } => match thread_member_path(e) {
                Some(path) => thread_member(&path, &e.ty, f),
                None => self.member(base, member, &e.ty, f),
            },
            ExprKind::Index { base, indices } => self.index(base, indices, &e.ty, f),
            ExprKind::Call { func, args } => self.subroutine(*func, args, &e.ty, f),
        })
    }

    fn size_of(&self, ty: &DType) -> u64 {
        match ty {
            DType::String => self.options.strsize as u64,
            other => other.size().unwrap_or(8),
        }
    }

    /// stringof: strings as they are, a captured user string as read, copyin's bytes up to
    /// their first NUL, integers in decimal.
    fn stringof(&self, v: &Value, ty: &DType) -> Vec<u8> {
        match v {
            Value::Str(s) => s.to_vec(),
            Value::Memory { bytes, .. } => {
                let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                bytes[..end].to_vec()
            }
            Value::User { capture, .. } if capture.string.is_some() => {
                capture.string.as_deref().unwrap_or_default().to_vec()
            }
            other if is_signed(ty) => (other.int() as i64).to_string().into_bytes(),
            other => other.int().to_string().into_bytes(),
        }
    }

    pub(super) fn read_var(
        &mut self,
        scope: VarScope,
        name: &str,
        keys: Vec<KeyPart>,
        ty: &DType,
        f: &Frame<'_>,
    ) -> Value {
        let place = VarPlace { scope, name, keys };
        self.vars
            .get(place, f.firing.tid)
            .cloned()
            .unwrap_or_else(|| self.zero(ty))
    }

    fn unary(&mut self, op: UnaryOp, operand: &Expr, ty: &DType, f: &mut Frame<'_>) -> Eval {
        let v = match op {
            // D variables live in DTrace's own storage, which has no address a D program
            // may take; DTrace refuses `&` of them.
            // `&p[i]` and `&p->m` are addresses computed from a pointer.
            UnaryOp::AddrOf => {
                return match self.address_of(operand, f) {
                    Some(addr) => addr.map(Value::Int),
                    None => Err(Fault::IllegalOperation),
                }
            }
            _ => self.eval(operand, f)?,
        };
        match op {
            UnaryOp::Not => Ok(Value::Int(u64::from(!v.truthy()))),
            _ => match arith::unary(op, v.int(), ty) {
                Some(n) => Ok(Value::Int(n)),
                None => load(&self.deref_scratch(v), 0, ty),
            },
        }
    }

    fn binary(
        &mut self,
        op: BinaryOp,
        lhs: &Expr,
        rhs: &Expr,
        ty: &DType,
        f: &mut Frame<'_>,
    ) -> Eval {
        if let Some(inside) =
            zone_compared(op, lhs, rhs).and_then(|name| in_zone(&self.zones, name, f.firing))
        {
            return Ok(Value::Int(u64::from(inside == (op == BinaryOp::Eq))));
        }
        let l = self.eval(lhs, f)?;
        match op {
            BinaryOp::And if !l.truthy() => return Ok(Value::Int(0)),
            BinaryOp::Or if l.truthy() => return Ok(Value::Int(1)),
            _ => {}
        }
        let r = self.eval(rhs, f)?;
        if op.is_logical() {
            let truth = match op {
                BinaryOp::Xor => l.truthy() != r.truthy(),
                _ => r.truthy(),
            };
            return Ok(Value::Int(u64::from(truth)));
        }
        if op.is_comparison() {
            let holds = if (lhs.ty == DType::String) != (rhs.ty == DType::String) {
                // A string against NULL: a string is a non-NULL pointer unless a subroutine
                // returned NULL (0) for it.
                let pointer = |v: &Value| u64::from(!matches!(v, Value::Int(0)));
                arith::compare(op, pointer(&l), pointer(&r), &DType::ULONG)
            } else if lhs.ty == DType::String {
                let ord = string_of(&l).cmp(string_of(&r));
                arith::holds(op, ord)
            } else {
                arith::compare(op, l.int(), r.int(), &promote(&lhs.ty, &rhs.ty))
            };
            return Ok(Value::Int(u64::from(holds.unwrap_or(false))));
        }
        arithmetic(op, (l.int(), &lhs.ty), (r.int(), &rhs.ty), ty).map(Value::Int)
    }

    fn assign(
        &mut self,
        op: Option<BinaryOp>,
        target: &Expr,
        value: &Expr,
        f: &mut Frame<'_>,
    ) -> Eval {
        let v = self.eval(value, f)?;
        if let Some(stored) = self.store_through_pointer(op, target, &v, &value.ty, f) {
            return stored;
        }
        let element = match &target.kind {
            ExprKind::Member { .. } => true,
            ExprKind::Index { base, .. } => matches!(base.ty, DType::Array(..)),
            _ => false,
        };
        if element {
            let v = v.convert(&target.ty);
            return self.assign_member(op, target, v, &value.ty, f);
        }
        let (scope, name, keys) = self.target(target, f)?;
        let new = match op {
            None => v,
            Some(op) => {
                let old = self.read_var(scope, name, keys.clone(), &target.ty, f);
                Value::Int(arithmetic(
                    op,
                    (old.int(), &target.ty),
                    (v.int(), &value.ty),
                    &target.ty,
                )?)
            }
        };
        let new = self.cut_value(new.convert(&target.ty));
        self.store(scope, name, keys, new.clone(), f);
        Ok(new)
    }

    fn inc_dec(&mut self, op: IncDecOp, target: &Expr, f: &mut Frame<'_>) -> Eval {
        let (scope, name, keys) = self.target(target, f)?;
        let old = self.read_var(scope, name, keys.clone(), &target.ty, f);
        let delta = match op {
            IncDecOp::PreInc | IncDecOp::PostInc => 1u64,
            IncDecOp::PreDec | IncDecOp::PostDec => u64::MAX,
        };
        let step = match &target.ty {
            DType::Pointer(to) => to.size().unwrap_or(1),
            _ => 1,
        };
        let new = Value::Int(normalize(
            old.int().wrapping_add(delta.wrapping_mul(step)),
            &target.ty,
        ));
        self.store(scope, name, keys, new.clone(), f);
        Ok(match op {
            IncDecOp::PreInc | IncDecOp::PreDec => new,
            IncDecOp::PostInc | IncDecOp::PostDec => Value::Int(normalize(old.int(), &target.ty)),
        })
    }

    /// The variable an assignment stores into, with its evaluated keys.
    pub(super) fn target<'e>(
        &mut self,
        target: &'e Expr,
        f: &mut Frame<'_>,
    ) -> Result<(VarScope, &'e str, Vec<KeyPart>), Fault> {
        let (named, keys) = match &target.kind {
            ExprKind::Index { base, indices } => (&**base, self.keys(indices, f)?),
            _ => (target, Vec::new()),
        };
        match &named.kind {
            ExprKind::Var { name, scope } => Ok((*scope, name.as_str(), keys)),
            _ => Err(Fault::IllegalOperation),
        }
    }

    pub(super) fn store(
        &mut self,
        scope: VarScope,
        name: &str,
        keys: Vec<KeyPart>,
        value: Value,
        f: &Frame<'_>,
    ) {
        let place = VarPlace { scope, name, keys };
        if self.vars.set(place, f.firing.tid, value) == Stored::Dropped {
            self.drop(DropKind::Dynamic);
        }
    }

    /// Strings are cut at strsize bytes (the terminating NUL not counted), as DTrace cuts
    /// them, and each cut counted.
    pub(super) fn cut_value(&mut self, v: Value) -> Value {
        match v {
            Value::Str(s) if s.len() > self.options.strsize => Value::str(self.cut(&s)),
            other => other,
        }
    }

    pub(super) fn cut<'s>(&mut self, s: &'s [u8]) -> &'s [u8] {
        let max = self.options.strsize;
        if s.len() <= max {
            return s;
        }
        self.drop(DropKind::TruncatedString);
        &s[..max]
    }

    fn member(&mut self, base: &Expr, member: &str, ty: &DType, f: &mut Frame<'_>) -> Eval {
        if let ExprKind::Builtin(Builtin::Curpsinfo) = base.kind {
            return Ok(self.psinfo_member(member, ty, f));
        }
        if let Some(v) = self.record_member(base, member, f) {
            return v;
        }
        // Other structures are kernel or user memory this engine does not read; DTrace
        // faults the same way on an address it cannot load.
        let v = self.eval(base, f)?;
        Err(Fault::InvalidAddress(v.int()))
    }

    fn index(&mut self, base: &Expr, indices: &[Expr], ty: &DType, f: &mut Frame<'_>) -> Eval {
        match &base.kind {
            ExprKind::Builtin(Builtin::Args) => {
                let n = indices.first().and_then(Expr::as_int).unwrap_or(0);
                Ok(self.arg(n as usize, f).convert(ty))
            }
            _ if matches!(base.ty, DType::Array(..)) => match indices.first() {
                Some(i) => self.array_element(base, i, f),
                None => Err(Fault::IllegalOperation),
            },
            // An associative array; a pointer variable is indexed below.
            ExprKind::Var { name, scope } if !matches!(base.ty, DType::Pointer(_)) => {
                let keys = self.keys(indices, f)?;
                Ok(self.read_var(*scope, name, keys, ty, f))
            }
            _ => {
                let pointer = self.eval(base, f)?;
                let i = match indices.first() {
                    Some(e) => self.eval(e, f)?.int(),
                    None => 0,
                };
                let size = self.types.size_of(ty).unwrap_or(1);
                load(&self.deref_scratch(pointer), i.wrapping_mul(size), ty)
            }
        }
    }
}

/// The number of statements (as numbered for error messages) in `stmts`.
fn leaves(stmts: &[Stmt]) -> usize {
    stmts
        .iter()
        .map(|s| match s {
            Stmt::If {
                then, otherwise, ..
            } => leaves(then) + otherwise.as_deref().map_or(0, leaves),
            _ => 1,
        })
        .sum()
}

/// A key for a variable or aggregation: integers signed or not by their type.
pub(super) fn key_part(v: &Value, ty: &DType) -> KeyPart {
    match v {
        Value::Str(s) => KeyPart::Str(s.to_vec()),
        Value::Memory { bytes, .. } if !ty.is_scalar() => KeyPart::Str(bytes.to_vec()),
        _ if *ty == DType::String => KeyPart::Str(string_of(v).to_vec()),
        Value::Stack(frames) => KeyPart::Stack(frames.clone()),
        other if is_signed(ty) => KeyPart::Int(normalize(other.int(), ty) as i64),
        other => KeyPart::UInt(normalize(other.int(), ty)),
    }
}

/// The text a string comparison sees: a string, or what was read at a user address.
pub(super) fn string_of(v: &Value) -> &[u8] {
    match v {
        Value::Str(s) => s,
        Value::User { capture, .. } => capture.string.as_deref().unwrap_or_default(),
        _ => b"",
    }
}

/// An arithmetic or bitwise operator, by D's integer rules.
pub(super) fn arithmetic(
    op: BinaryOp,
    l: (u64, &DType),
    r: (u64, &DType),
    ty: &DType,
) -> Result<u64, Fault> {
    arith::binary(op, l, r, ty).map_err(|arith::DivideByZero| Fault::DivideByZero)
}

/// Reads a `ty` at `offset` in the memory `pointer` refers to: only copyin's buffer is
/// memory this engine holds; any other address faults, as an unmapped one does in DTrace.
fn load(pointer: &Value, offset: u64, ty: &DType) -> Eval {
    let Value::Memory { addr, bytes } = pointer else {
        return Err(Fault::InvalidAddress(pointer.int().wrapping_add(offset)));
    };
    let size = ty.size().unwrap_or(8) as usize;
    let start = usize::try_from(offset).ok();
    let Some(chunk) = start.and_then(|s| bytes.get(s..s.checked_add(size)?)) else {
        return Err(Fault::InvalidAddress(addr.wrapping_add(offset)));
    };
    let mut raw = [0u8; 8];
    raw[..chunk.len().min(8)].copy_from_slice(&chunk[..chunk.len().min(8)]);
    Ok(Value::Int(normalize(u64::from_le_bytes(raw), ty)))
}

/// `curthread->…`: what the kernel read there at the probe, or the fault DTrace reports
/// when a link cannot be read.
fn thread_member(path: &str, ty: &DType, f: &Frame<'_>) -> Eval {
    let found = f.firing.thread_members.iter().find(|(p, _)| &**p == path);
    match found {
        Some((_, Some(value))) => Ok(Value::Int(*value).convert(ty)),
        _ => Err(Fault::InvalidAddress(0)),
    }
}
