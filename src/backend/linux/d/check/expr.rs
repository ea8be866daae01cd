//! Typing of expressions: each expression gets its `DType`, names are resolved (builtins,
//! variables, inlines), and constant subexpressions are folded. An expression that fails a
//! check gets type `Unknown`, which silences follow-on errors about the same mistake.

use super::builtins::{builtin_type, psinfo_member};
use super::{fold, Checker};
use crate::backend::linux::d::arith::{normalize, promote};
use crate::backend::linux::d::ast::{
    BinaryOp, Builtin, DType, Expr, ExprKind, FunctionKind, UnaryOp, VarScope,
};
use crate::backend::linux::d::span::Span;
use crate::backend::linux::deep;
use crate::inspect::kallsyms::{self, KernelSymbol};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// The whole expression of a statement: actions allowed.
    Statement,
    /// Anywhere a value is needed.
    Value,
}

/// Whether an inline's value is too big to copy into every use. Real inlines are constants
/// or small expressions; the limit keeps a chain of inlines from growing without bound.
pub fn too_large(e: &Expr) -> bool {
    fn measure(e: &Expr, depth: usize, count: &mut usize) -> bool {
        *count += 1;
        if depth > 64 || *count > 256 {
            return true;
        }
        let mut large = false;
        e.for_each_child(&mut |c| {
            large = large || measure(c, depth + 1, count);
        });
        large
    }
    measure(e, 0, &mut 0)
}

impl Checker {
    pub(super) fn value(&mut self, e: &mut Expr) {
        self.expr(e, Context::Value);
    }

    pub(super) fn statement_expr(&mut self, e: &mut Expr) {
        self.expr(e, Context::Statement);
    }

    pub(super) fn expr(&mut self, e: &mut Expr, ctx: Context) {
        deep::recurse(|| {
            let (ty, operand_ty) = self.type_of(e, ctx);
            e.ty = ty;
            if let Err(d) = fold::fold(e, &operand_ty) {
                self.diagnostics.push(d);
            }
        })
    }

    /// The type of `e`, and the type its operands were converted to (for folding).
    fn type_of(&mut self, e: &mut Expr, ctx: Context) -> (DType, DType) {
        let span = e.span;
        match &mut e.kind {
            ExprKind::Assign { .. } => return (self.assign(e), DType::Unknown),
            ExprKind::SizeofType(t) => {
                let t = t.clone();
                return (self.size_of(e, &t), DType::Unknown);
            }
            ExprKind::SizeofExpr(inner) => {
                // A string constant is an array of its bytes and the NUL: sizeof "hi" is 3.
                if let ExprKind::Str(s) = &inner.kind {
                    e.kind = ExprKind::Int(s.len() as u64 + 1);
                    return (DType::ULONG, DType::Unknown);
                }
                self.value(inner);
                let t = inner.ty.clone();
                return (self.size_of(e, &t), DType::Unknown);
            }
            _ => {}
        }
        let ty = match &mut e.kind {
            ExprKind::Int(_) => e.ty.clone(),
            ExprKind::Str(_) => DType::String,
            ExprKind::Ident(name) => {
                let name = name.clone();
                return (self.identifier(e, &name), DType::Unknown);
            }
            ExprKind::Var { name, scope } => {
                let (name, scope) = (name.clone(), *scope);
                self.var_read(scope, &name, span)
            }
            ExprKind::Builtin(Builtin::Args) => {
                self.tagged(
                    "D_ARGS_IDX",
                    span,
                    "`args` must be indexed, as in `args[0]`",
                );
                DType::Unknown
            }
            ExprKind::Builtin(b) => builtin_type(*b),
            ExprKind::Aggregation(name) => {
                let message = format!(
                    "aggregation `@{name}` cannot be used as a value; print it with printa()"
                );
                self.tagged("D_AGG_SCALAR", span, message);
                DType::Unknown
            }
            ExprKind::Unary { op, operand } => {
                let ty = self.unary(*op, operand);
                // `&` of a kernel symbol is its address.
                if let (
                    UnaryOp::AddrOf,
                    ExprKind::Unary {
                        op: UnaryOp::Deref,
                        operand: p,
                    },
                ) = (*op, &mut operand.kind)
                {
                    if let ExprKind::Int(address) = p.kind {
                        e.kind = ExprKind::Int(address);
                        return (ty, DType::Unknown);
                    }
                }
                ty
            }
            ExprKind::Binary { op, lhs, rhs } => return self.binary(*op, lhs, rhs),
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => self.ternary(cond, then, otherwise),
            ExprKind::IncDec { target, .. } => self.inc_dec(target),
            ExprKind::Cast { to, expr } => {
                let to = to.clone();
                self.cast(&to, expr)
            }
            ExprKind::Assign { .. } | ExprKind::SizeofType(_) | ExprKind::SizeofExpr(_) => {
                DType::Unknown
            }
            ExprKind::Stringof(inner) => {
                self.value(inner);
                if inner.ty.is_scalar() || inner.ty.is_string_like() {
                    DType::String
                } else {
                    self.not_unknown(&inner.ty, inner.span, "stringof needs a scalar or a string");
                    DType::Unknown
                }
            }
            ExprKind::Member {
                base,
                member,
                arrow,
            } => {
                let (member, arrow) = (member.clone(), *arrow);
                self.member(base, &member, arrow, span)
            }
            ExprKind::Index { base, indices } => self.index(base, indices),
            ExprKind::Call { func, args } => {
                let func = *func;
                if ctx == Context::Value && func.kind() == FunctionKind::Action {
                    self.tagged(
                        "D_TRACE_VOID",
                        span,
                        format!("`{}()` is an action; it has no value", func.name()),
                    );
                }
                super::calls::call(self, func, args, span)
            }
        };
        let operand_ty = match &e.kind {
            ExprKind::Unary { .. } | ExprKind::Cast { .. } => ty.clone(),
            _ => DType::Unknown,
        };
        (ty, operand_ty)
    }

    /// Reports `message` unless `ty` is already the result of an earlier error.
    pub(super) fn not_unknown(&mut self, ty: &DType, span: Span, message: &str) {
        if *ty != DType::Unknown {
            self.tagged("D_OP_INCOMPAT", span, format!("{message}, found {ty}"));
        }
    }

    /// A plain name: an inline (substituted here), a global variable, or a predefined
    /// constant such as `ENOENT`.
    fn identifier(&mut self, e: &mut Expr, name: &str) -> DType {
        if let Some(value) = self.inlines.get(name) {
            let span = e.span;
            *e = value.clone();
            e.span = span;
            return e.ty.clone();
        }
        let key = (VarScope::Global, name.to_string());
        if self.vars.contains_key(&key) || self.assigned.contains(&key) {
            e.kind = ExprKind::Var {
                name: name.to_string(),
                scope: VarScope::Global,
            };
            return self.var_read(VarScope::Global, name, e.span);
        }
        if let Some((module, symbol)) = name.split_once('`') {
            return self.kernel_symbol(e, module, symbol);
        }
        if let Some(value) = self.types.enumerator(name) {
            e.kind = ExprKind::Int(normalize(value as u64, &DType::INT));
            return DType::INT;
        }
        if let Some(value) = super::constants::constant(name) {
            e.kind = ExprKind::Int(value);
            return DType::INT;
        }
        self.tagged(
            "D_IDENT_UNDEF",
            e.span,
            format!("unknown identifier `{name}`"),
        );
        DType::Unknown
    }

    /// `` `sym `` or ``mod`sym``: a kernel variable, read at its address from
    /// /proc/kallsyms. Its type is the one an `extern` declaration gives it, else
    /// `uintptr_t`, as dtrace types a kernel symbol that it has no type information for (dtk
    /// reads no kernel types for symbols).
    fn kernel_symbol(&mut self, e: &mut Expr, module: &str, symbol: &str) -> DType {
        let module = (!module.is_empty()).then_some(module);
        let address = match kallsyms::lookup(module, symbol) {
            KernelSymbol::Address(a) => a,
            KernelSymbol::Hidden => {
                let message = format!(
                    "the kernel hides the address of `{symbol}` (kernel.kptr_restrict, or not root)"
                );
                self.tagged("D_SYM_BADREF", e.span, message);
                return DType::Unknown;
            }
            KernelSymbol::Missing => {
                let within = module.map_or(String::new(), |m| format!(" in module `{m}`"));
                let message = format!("kernel symbol `{symbol}`{within} is not in /proc/kallsyms");
                self.tagged("D_SYM_BADREF", e.span, message);
                return DType::Unknown;
            }
        };
        let ty = self
            .types
            .extern_type(symbol)
            .cloned()
            .unwrap_or(DType::ULONG);
        let pointer = Expr {
            kind: ExprKind::Int(address),
            span: e.span,
            ty: DType::Pointer(Box::new(ty.clone())),
        };
        e.kind = ExprKind::Unary {
            op: UnaryOp::Deref,
            operand: Box::new(pointer),
        };
        ty
    }

    pub(super) fn var_read(&mut self, scope: VarScope, name: &str, span: Span) -> DType {
        let key = (scope, name.to_string());
        if !self.vars.contains_key(&key) {
            if self.assigned.contains(&key) {
                return self.type_read_ahead(&key);
            }
            self.define(scope, name, DType::LONG, Vec::new(), span);
        }
        let ty = self.warn_unassigned(scope, name, span);
        let keyed = self
            .vars
            .get(&key)
            .is_some_and(|s| !self.variables[s.index].keys.is_empty());
        if keyed {
            let message =
                format!("`{name}` is an associative array; index it, as in `{name}[key]`");
            self.tagged("D_VAR_UNDEF", span, message);
            return DType::Unknown;
        }
        ty
    }

    fn unary(&mut self, op: UnaryOp, operand: &mut Expr) -> DType {
        self.value(operand);
        let t = operand.ty.clone();
        if t == DType::Unknown {
            return t;
        }
        match op {
            UnaryOp::Neg | UnaryOp::Plus | UnaryOp::BitNot if t.is_integer() => promote(&t, &t),
            UnaryOp::Not if t.is_scalar() => DType::INT,
            UnaryOp::Deref => match t {
                DType::Pointer(to) if *to != DType::Void => *to,
                _ => {
                    self.tagged(
                        "D_DEREF_NONPTR",
                        operand.span,
                        format!("cannot dereference {t}"),
                    );
                    DType::Unknown
                }
            },
            UnaryOp::AddrOf => match variable_place(operand) {
                Some(name) if matches!(operand.kind, ExprKind::Var { .. }) => {
                    let message = format!("cannot take the address of D variable `{name}`");
                    self.tagged("D_ADDROF_VAR", operand.span, message);
                    DType::Unknown
                }
                // DTrace gives an element of an array variable an address in its own
                // storage; dtk's executor keeps variables as values, with no addresses.
                Some(name) => {
                    let message = format!(
                        "dtk gives D variables no addresses: `&` of an element or member of `{name}` is not available"
                    );
                    self.tagged("D_ADDROF_VAR", operand.span, message);
                    DType::Unknown
                }
                None => DType::Pointer(Box::new(t)),
            },
            _ => {
                let sym = match op {
                    UnaryOp::Neg => "-",
                    UnaryOp::Plus => "+",
                    UnaryOp::BitNot => "~",
                    _ => "!",
                };
                let what = if op == UnaryOp::Not {
                    "a scalar"
                } else {
                    "an integer"
                };
                self.tagged(
                    "D_OP_INT",
                    operand.span,
                    format!("unary `{sym}` needs {what} operand, found {t}"),
                );
                DType::Unknown
            }
        }
    }

    fn binary(&mut self, op: BinaryOp, lhs: &mut Expr, rhs: &mut Expr) -> (DType, DType) {
        self.value(lhs);
        self.value(rhs);
        let (l, r) = (lhs.ty.clone(), rhs.ty.clone());
        if l == DType::Unknown || r == DType::Unknown {
            return (DType::Unknown, DType::Unknown);
        }
        let span = lhs.span.to(rhs.span);
        let sym = op.symbol();
        if op.is_logical() {
            if l.is_scalar() && r.is_scalar() {
                return (DType::INT, promote(&l, &r));
            }
            self.tagged(
                "D_OP_SCALAR",
                span,
                format!("`{sym}` needs scalar operands, found {l} and {r}"),
            );
            return (DType::Unknown, DType::Unknown);
        }
        if op.is_comparison() {
            if l.is_scalar() && r.is_scalar() {
                return (DType::INT, promote(&l, &r));
            }
            if l.is_string_like() && r.is_string_like() {
                return (DType::INT, DType::String);
            }
            // `s == NULL`: whether a string subroutine found nothing.
            let null = |e: &Expr, other: &DType| e.as_int() == Some(0) && *other == DType::String;
            if null(lhs, &r) || null(rhs, &l) {
                return (DType::INT, DType::Unknown);
            }
            self.tagged(
                "D_OP_INCOMPAT",
                span,
                format!("cannot compare {l} with {r} using `{sym}`"),
            );
            return (DType::Unknown, DType::Unknown);
        }
        let pointer_math = matches!(op, BinaryOp::Add | BinaryOp::Sub);
        let void_pointer = |t: &DType| matches!(t, DType::Pointer(to) if **to == DType::Void);
        if pointer_math && (void_pointer(&l) || void_pointer(&r)) {
            self.tagged(
                "D_OP_VFPTR",
                span,
                format!("`{sym}` cannot move a void pointer, found {l} and {r}"),
            );
            return (DType::Unknown, DType::Unknown);
        }
        let ty = match (&l, &r) {
            (DType::Pointer(_), DType::Pointer(_)) if op == BinaryOp::Sub => DType::LONG,
            (DType::Pointer(_), DType::Int { .. }) if pointer_math => l.clone(),
            (DType::Int { .. }, DType::Pointer(_)) if op == BinaryOp::Add => r.clone(),
            (a, b) if a.is_scalar() && b.is_scalar() => {
                if matches!(op, BinaryOp::Shl | BinaryOp::Shr) {
                    promote(a, a)
                } else {
                    promote(a, b)
                }
            }
            _ => {
                self.tagged(
                    "D_OP_INT",
                    span,
                    format!("`{sym}` needs integer operands, found {l} and {r}"),
                );
                return (DType::Unknown, DType::Unknown);
            }
        };
        (ty.clone(), ty)
    }

    fn ternary(&mut self, cond: &mut Expr, then: &mut Expr, otherwise: &mut Expr) -> DType {
        self.condition(cond, "the condition of `?:`");
        self.value(then);
        self.value(otherwise);
        let (a, b) = (&then.ty, &otherwise.ty);
        match (a, b) {
            (DType::Unknown, _) | (_, DType::Unknown) => DType::Unknown,
            (DType::Int { .. }, DType::Int { .. }) => promote(a, b),
            (x, y) if x.is_string_like() && y.is_string_like() => DType::String,
            (DType::Pointer(_), DType::Pointer(_)) if a == b => a.clone(),
            (DType::Pointer(_), DType::Int { .. }) => a.clone(),
            (DType::Int { .. }, DType::Pointer(_)) => b.clone(),
            _ => {
                let message = format!("the branches of `?:` have different types: {a} and {b}");
                self.tagged("D_OP_INCOMPAT", then.span.to(otherwise.span), message);
                DType::Unknown
            }
        }
    }

    fn cast(&mut self, to: &DType, expr: &mut Expr) -> DType {
        self.value(expr);
        let from = expr.ty.clone();
        if from == DType::Unknown {
            return DType::Unknown;
        }
        let allowed = match to {
            DType::Int { .. } | DType::Pointer(_) => from.is_scalar(),
            // `(string)p` reads the string at a pointer, as stringof(p) does.
            DType::String => from.is_string_like() || matches!(from, DType::Pointer(_)),
            _ => false,
        };
        if !allowed {
            self.tagged(
                "D_CAST_INVAL",
                expr.span,
                format!("cannot cast {from} to {to}"),
            );
            return DType::Unknown;
        }
        if let (Some(v), DType::Int { .. }) = (expr.as_int(), to) {
            expr.kind = ExprKind::Int(normalize(v, to));
        }
        to.clone()
    }

    /// `sizeof`: folded to a constant when the size is known without options.
    fn size_of(&mut self, e: &mut Expr, t: &DType) -> DType {
        match t {
            DType::Unknown => return DType::Unknown,
            DType::Void | DType::Aggregation | DType::Stack => {
                self.tagged(
                    "D_SIZEOF_TYPE",
                    e.span,
                    format!("sizeof cannot be applied to {t}"),
                );
                return DType::Unknown;
            }
            _ => {}
        }
        if let Some(size) = self.types.size_of(t) {
            e.kind = ExprKind::Int(size);
        }
        DType::ULONG
    }

    fn member(&mut self, base: &mut Expr, member: &str, arrow: bool, span: Span) -> DType {
        self.value(base);
        let t = base.ty.clone();
        let record = match (&t, arrow) {
            (DType::Pointer(to), true) => &**to,
            (r @ DType::Record { .. }, false) => r,
            _ => &DType::Unknown,
        };
        if let DType::Record { name, union } = record {
            if self.types.record(*union, name).is_some() {
                return match self.types.member(record, member) {
                    Some(m) => m.ty.clone(),
                    None => {
                        self.tagged(
                            "D_TYPE_MEMBER",
                            span,
                            format!("{record} has no member `{member}`"),
                        );
                        DType::Unknown
                    }
                };
            }
        }
        match (&t, arrow) {
            (DType::Unknown, _) => DType::Unknown,
            (DType::Pointer(to), true) if matches!(**to, DType::Record { .. }) => match &**to {
                DType::Record { name, .. } if name == "psinfo_t" => psinfo_member(member)
                    .unwrap_or_else(|| {
                        self.tagged(
                            "D_TYPE_MEMBER",
                            span,
                            format!("psinfo_t has no member `{member}`"),
                        );
                        DType::Unknown
                    }),
                _ => DType::LONG,
            },
            (DType::Record { .. }, false) | (DType::Int { .. }, _) => DType::LONG,
            (DType::Pointer(_), false) => {
                self.tagged(
                    "D_OP_SOU",
                    span,
                    format!("{t} is a pointer; use `->{member}`"),
                );
                DType::Unknown
            }
            (DType::Record { .. }, true) => {
                self.tagged(
                    "D_OP_PTR",
                    span,
                    format!("{t} is not a pointer; use `.{member}`"),
                );
                DType::Unknown
            }
            _ => {
                let op = if arrow { "->" } else { "." };
                self.tagged(
                    "D_OP_SOU",
                    span,
                    format!("`{op}` needs a struct or union, found {t}"),
                );
                DType::Unknown
            }
        }
    }

    fn index(&mut self, base: &mut Expr, indices: &mut [Expr]) -> DType {
        for i in indices.iter_mut() {
            self.key(i);
        }
        match &base.kind {
            ExprKind::Builtin(Builtin::Args) => {
                base.ty = DType::LONG;
                match indices {
                    [i] if i.as_int().is_some_and(|v| v <= 9) => DType::LONG,
                    _ => {
                        self.tagged(
                            "D_ARGS_IDX",
                            base.span.to(indices.last().map_or(base.span, |i| i.span)),
                            "`args[]` takes one integer constant index from 0 to 9",
                        );
                        DType::Unknown
                    }
                }
            }
            ExprKind::Ident(_) | ExprKind::Var { .. } if self.is_array_var(base) => {
                self.value(base);
                self.array_index(base, indices)
            }
            ExprKind::Ident(_) | ExprKind::Var { .. } if !self.is_pointer_var(base) => {
                self.assoc_read(base, indices)
            }
            _ => {
                self.value(base);
                match (&base.ty, &*indices) {
                    (DType::Unknown, _) => DType::Unknown,
                    (DType::Pointer(to), [i]) if i.ty.is_integer() => (**to).clone(),
                    _ => self.array_index(base, indices),
                }
            }
        }
    }

    /// `a[i]` of an array: the element type.
    fn array_index(&mut self, base: &Expr, indices: &[Expr]) -> DType {
        match (&base.ty, indices) {
            (DType::Unknown, _) => DType::Unknown,
            (DType::Array(_, n), [i]) if i.as_int().is_some_and(|i| i >= *n) => {
                let message = format!(
                    "index {} is past the end of {}",
                    i.as_int().unwrap_or(0) as i64,
                    base.ty
                );
                self.tagged("D_ARR_BOUNDS", i.span, message);
                DType::Unknown
            }
            (DType::Array(elem, _), [i]) if i.ty.is_integer() => (**elem).clone(),
            (t, _) => {
                let message = format!("`[]` needs a pointer or an associative array, found {t}");
                self.tagged("D_OP_INCOMPAT", base.span, message);
                DType::Unknown
            }
        }
    }

    /// Whether `e` names a variable declared as an array (`int a[5];`).
    pub(super) fn is_array_var(&self, e: &Expr) -> bool {
        let key = match &e.kind {
            ExprKind::Ident(name) => (VarScope::Global, name.clone()),
            ExprKind::Var { name, scope } => (*scope, name.clone()),
            _ => return false,
        };
        self.vars
            .get(&key)
            .is_some_and(|s| matches!(self.variables[s.index].ty, DType::Array(..)))
    }
}

impl Checker {
    /// Whether `e` names a scalar variable that holds a pointer, which `e[i]` indexes.
    pub(super) fn is_pointer_var(&self, e: &Expr) -> bool {
        let key = match &e.kind {
            ExprKind::Ident(name) => (VarScope::Global, name.clone()),
            ExprKind::Var { name, scope } => (*scope, name.clone()),
            _ => return false,
        };
        self.vars.get(&key).is_some_and(|s| {
            let var = &self.variables[s.index];
            var.keys.is_empty() && matches!(var.ty, DType::Pointer(_))
        })
    }
}

/// The variable that `x`, `x[i]` or `x.a.b` is (a part of), as the user wrote it.
fn variable_place(mut e: &Expr) -> Option<String> {
    loop {
        match &e.kind {
            ExprKind::Var { name, scope } => return Some(display_name(*scope, name)),
            ExprKind::Member {
                base, arrow: false, ..
            }
            | ExprKind::Index { base, .. }
                if !matches!(base.ty, DType::Pointer(_)) =>
            {
                e = base
            }
            _ => return None,
        }
    }
}

/// `self->x`, `this->x` or `x`, as the user wrote it.
pub fn display_name(scope: VarScope, name: &str) -> String {
    match scope {
        VarScope::Global => name.to_string(),
        VarScope::Thread => format!("self->{name}"),
        VarScope::Clause => format!("this->{name}"),
    }
}
