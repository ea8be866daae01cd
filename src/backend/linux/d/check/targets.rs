//! Assignments: the pre-pass that finds every variable and aggregation the program assigns,
//! and the checks of `=`, `op=`, `++`/`--` and associative arrays. A variable's type comes
//! from its declaration or, failing that, from its first assignment, as in D.

use std::collections::HashSet;

use super::expr::display_name;
use super::{same_kind, Checker};
use crate::backend::linux::d::ast::{
    BinaryOp, Builtin, DType, Expr, ExprKind, Stmt, UnaryOp, VarScope,
};
use crate::backend::linux::d::diagnostic::Diagnostic;
use crate::backend::linux::d::span::Span;
use crate::backend::linux::deep;

/// Records the variables `stmt` assigns and the aggregations it fills.
pub fn assignments<'a>(
    stmt: &'a Stmt,
    vars: &mut HashSet<(VarScope, &'a str)>,
    aggs: &mut HashSet<&'a str>,
) {
    match stmt {
        Stmt::Expr(e) => expr_assignments(e, vars),
        Stmt::Aggregate(a) => {
            aggs.insert(&a.name);
            a.keys
                .iter()
                .chain(&a.args)
                .for_each(|e| expr_assignments(e, vars));
        }
        Stmt::If {
            cond,
            then,
            otherwise,
            ..
        } => {
            expr_assignments(cond, vars);
            for s in then.iter().chain(otherwise.iter().flatten()) {
                assignments(s, vars, aggs);
            }
        }
    }
}

/// Records the variables `e` assigns or increments.
pub fn expr_assignments<'a>(e: &'a Expr, vars: &mut HashSet<(VarScope, &'a str)>) {
    deep::recurse(|| {
        if let ExprKind::Assign { target, .. } | ExprKind::IncDec { target, .. } = &e.kind {
            match &member_root(target).kind {
                ExprKind::Ident(name) => {
                    vars.insert((VarScope::Global, name));
                }
                ExprKind::Var { name, scope } => {
                    vars.insert((*scope, name));
                }
                _ => {}
            }
        }
        e.for_each_child(&mut |c| expr_assignments(c, vars));
    })
}

/// The variable that `x`, `x[k]`, `x.a.b` or `x[k].a[2]` stores into.
pub(super) fn member_root(mut target: &Expr) -> &Expr {
    while let ExprKind::Member {
        base, arrow: false, ..
    }
    | ExprKind::Index { base, .. } = &target.kind
    {
        target = base;
    }
    target
}

/// Records the stored-to variable's type on the target (and on the array of `a[k] = v`).
fn set_target_type(target: &mut Expr, ty: &DType) {
    target.ty = ty.clone();
    if let ExprKind::Index { base, .. } = &mut target.kind {
        base.ty = ty.clone();
    }
}

/// A variable an assignment stores into: scope, name and key expressions.
struct Target {
    scope: VarScope,
    name: String,
    keyed: bool,
    span: Span,
}

impl Checker {
    /// Checks `target = value` or `target op= value`; returns the target's type. A store
    /// that fails its check into a variable not yet defined leaves it undefined, and
    /// later reads of it of no known type (the error is reported once, here).
    pub(super) fn assign(&mut self, e: &mut Expr) -> DType {
        let key = match &e.kind {
            ExprKind::Assign { target, .. } => match &member_root(target).kind {
                ExprKind::Ident(name) => Some((VarScope::Global, name.clone())),
                ExprKind::Var { name, scope } => Some((*scope, name.clone())),
                _ => None,
            },
            _ => None,
        };
        let ty = self.assign_checked(e);
        if let Some(key) = key.filter(|k| ty == DType::Unknown && !self.vars.contains_key(k)) {
            self.failed_stores.insert(key);
        }
        ty
    }

    fn assign_checked(&mut self, e: &mut Expr) -> DType {
        let ExprKind::Assign { op, target, value } = &mut e.kind else {
            return DType::Unknown;
        };
        self.value(value);
        let element = match &target.kind {
            ExprKind::Member { arrow: false, .. } => true,
            ExprKind::Index { base, .. } => {
                self.is_array_var(base)
                    || matches!(base.kind, ExprKind::Member { arrow: false, .. })
            }
            _ => false,
        };
        if self.through_pointer(target) {
            return self.pointer_assign(*op, target, value);
        }
        if element {
            return self.member_assign(*op, target, value);
        }
        let Some(t) = self.target(target) else {
            return DType::Unknown;
        };
        let value_ty = value.ty.clone();
        if value_ty == DType::Unknown {
            return DType::Unknown;
        }
        if matches!(value_ty, DType::Array(..)) {
            let message = "an array cannot be assigned as a whole; assign its elements";
            self.tagged("D_OP_INCOMPAT", value.span, message);
            return DType::Unknown;
        }
        let sized = self.types.size_of(&value_ty).is_some();
        if matches!(value_ty, DType::Stack | DType::Void)
            || matches!(value_ty, DType::Record { .. } | DType::Array(..)) && !sized
        {
            self.tagged(
                "D_OP_INCOMPAT",
                value.span,
                format!("a {value_ty} value cannot be stored in a variable"),
            );
            return DType::Unknown;
        }
        if let Some(op) = op {
            let var_ty = self.existing_type(&t);
            if !var_ty.is_scalar() || !value_ty.is_scalar() {
                let message = format!(
                    "`{}=` needs integer operands, found {var_ty} and {value_ty}",
                    op.symbol()
                );
                self.tagged("D_OP_INCOMPAT", target.span.to(value.span), message);
                return DType::Unknown;
            }
        }
        let keys: Vec<DType> = match &target.kind {
            ExprKind::Index { indices, .. } => indices.iter().map(|i| i.ty.clone()).collect(),
            _ => Vec::new(),
        };
        // D frees a dynamic variable (thread-local or associative element) of any type when
        // it is assigned zero: `self->path = 0` after a string.
        let frees =
            op.is_none() && value.as_int() == Some(0) && (t.scope == VarScope::Thread || t.keyed);
        let key = (t.scope, t.name.clone());
        let stored = match (frees, self.vars.contains_key(&key)) {
            (true, true) => self.existing_type(&t),
            // Freed before any clause gave it a value: its type comes from that later
            // assignment.
            (true, false) if !self.second_pass => {
                self.read_ahead = true;
                target.ty = DType::LONG;
                return DType::LONG;
            }
            (true, false) => self.later_types.get(&key).cloned().unwrap_or(value_ty),
            (false, _) => value_ty,
        };
        let ty = self.store(&t, stored, keys, value.span);
        set_target_type(target, &ty);
        ty
    }

    /// Whether `target` is memory reached through a pointer: `*p`, `p[i]`, `p->m`, or a
    /// member or element of one of those.
    fn through_pointer(&self, target: &Expr) -> bool {
        match &target.kind {
            ExprKind::Unary {
                op: UnaryOp::Deref, ..
            }
            | ExprKind::Member { arrow: true, .. } => true,
            ExprKind::Index { base, .. } => {
                self.is_pointer_var(base)
                    || matches!(base.ty, DType::Pointer(_))
                    || self.through_pointer(base)
            }
            ExprKind::Member { base, .. } => self.through_pointer(base),
            _ => false,
        }
    }

    /// `*p = v`, `p[i] op= v`, `p->m = v`: a store into the memory a pointer points at.
    fn pointer_assign(&mut self, op: Option<BinaryOp>, target: &mut Expr, value: &Expr) -> DType {
        self.value(target);
        let (ty, value_ty) = (target.ty.clone(), value.ty.clone());
        if ty == DType::Unknown || value_ty == DType::Unknown {
            return DType::Unknown;
        }
        let fits = match op {
            Some(_) => ty.is_integer() && value_ty.is_scalar(),
            None => ty.is_scalar() && value_ty.is_scalar(),
        };
        if !fits {
            let message = format!("cannot assign {value_ty} to memory of type {ty}");
            self.tagged("D_OP_INCOMPAT", value.span, message);
            return DType::Unknown;
        }
        ty
    }

    /// `x.a.b = v`: a store into a member of a struct variable.
    fn member_assign(&mut self, op: Option<BinaryOp>, target: &mut Expr, value: &Expr) -> DType {
        let declared = match &member_root(target).kind {
            ExprKind::Ident(name) => self.vars.contains_key(&(VarScope::Global, name.clone())),
            ExprKind::Var { name, scope } => self.vars.contains_key(&(*scope, name.clone())),
            _ => true,
        };
        if !declared {
            let message = "declare a struct or union variable before assigning its members";
            self.tagged("D_OP_LVAL", target.span, message);
            return DType::Unknown;
        }
        self.value(target);
        let (ty, value_ty) = (target.ty.clone(), value.ty.clone());
        if ty == DType::Unknown || value_ty == DType::Unknown {
            return DType::Unknown;
        }
        if !self.in_struct_variable(target) {
            self.tagged(
                "D_OP_INCOMPAT",
                target.span,
                "only members of struct, union and array variables can be assigned",
            );
            return DType::Unknown;
        }
        let fits = match op {
            _ if matches!(ty, DType::Array(..)) => false,
            Some(_) => ty.is_integer() && value_ty.is_scalar(),
            None if ty.is_scalar() => value_ty.is_scalar(),
            None => ty == value_ty,
        };
        if !fits {
            let message = format!("cannot assign {value_ty} to a member of type {ty}");
            self.tagged("D_OP_INCOMPAT", value.span, message);
            return DType::Unknown;
        }
        ty
    }

    /// Whether every base of the member chain `target` is a struct or union held in a
    /// variable (or an element of an array member), not one reached through a pointer.
    fn in_struct_variable(&self, mut target: &Expr) -> bool {
        loop {
            let base = match &target.kind {
                ExprKind::Member {
                    base, arrow: false, ..
                } => base,
                ExprKind::Index { base, .. } if matches!(base.ty, DType::Array(..)) => base,
                ExprKind::Var { .. } => return true,
                ExprKind::Index { base, .. } => return matches!(base.kind, ExprKind::Var { .. }),
                _ => return false,
            };
            let defined = match &base.ty {
                DType::Record { .. } | DType::Array(..) => self.types.size_of(&base.ty).is_some(),
                _ => false,
            };
            if !defined {
                return false;
            }
            target = base;
        }
    }

    pub(super) fn inc_dec(&mut self, target: &mut Expr) -> DType {
        let Some(t) = self.target(target) else {
            return DType::Unknown;
        };
        let ty = self.existing_type(&t);
        if !ty.is_scalar() {
            self.tagged(
                "D_OP_SCALAR",
                t.span,
                format!("`++` and `--` need an integer, found {ty}"),
            );
            return DType::Unknown;
        }
        let keys: Vec<DType> = match &target.kind {
            ExprKind::Index { indices, .. } => indices.iter().map(|i| i.ty.clone()).collect(),
            _ => Vec::new(),
        };
        let ty = self.store(&t, ty, keys, t.span);
        set_target_type(target, &ty);
        ty
    }

    /// Resolves the left side of an assignment to a variable, checking its keys.
    fn target(&mut self, target: &mut Expr) -> Option<Target> {
        let span = target.span;
        let (named, keyed) = match &mut target.kind {
            ExprKind::Index { base, indices } => {
                for i in indices.iter_mut() {
                    self.key(i);
                }
                (&mut **base, true)
            }
            _ => (target, false),
        };
        let resolved = match &named.kind {
            ExprKind::Ident(name) if self.inlines.contains_key(name) => {
                self.tagged(
                    "D_OP_LVAL",
                    span,
                    format!("inline `{name}` cannot be assigned"),
                );
                return None;
            }
            ExprKind::Ident(name) => (VarScope::Global, name.clone()),
            ExprKind::Var { name, scope } => (*scope, name.clone()),
            ExprKind::Builtin(Builtin::Args) => {
                self.tagged("D_OP_LVAL", span, "`args[]` cannot be assigned");
                return None;
            }
            ExprKind::Builtin(_) => {
                self.tagged("D_OP_LVAL", span, "a builtin variable cannot be assigned");
                return None;
            }
            ExprKind::Aggregation(name) => {
                let message = format!("`@{name}` can only be assigned with `@{name} = func(...)`");
                self.tagged("D_AGG_SCALAR", span, message);
                return None;
            }
            _ => {
                self.tagged("D_OP_LVAL", span, "only variables can be assigned");
                return None;
            }
        };
        named.kind = ExprKind::Var {
            name: resolved.1.clone(),
            scope: resolved.0,
        };
        Some(Target {
            scope: resolved.0,
            name: resolved.1,
            keyed,
            span,
        })
    }

    fn existing_type(&self, t: &Target) -> DType {
        self.vars
            .get(&(t.scope, t.name.clone()))
            .map_or(DType::LONG, |s| self.variables[s.index].ty.clone())
    }

    /// Stores a value of type `ty` into the target: defines the variable on first use, and
    /// otherwise checks the value and keys against what it already holds.
    fn store(&mut self, t: &Target, ty: DType, keys: Vec<DType>, value_span: Span) -> DType {
        let shown = display_name(t.scope, &t.name);
        let Some(state) = self.vars.get(&(t.scope, t.name.clone())) else {
            self.define(t.scope, &t.name, ty.clone(), keys, t.span);
            return ty;
        };
        let var = self.variables[state.index].clone();
        if var.keys.is_empty() == t.keyed {
            let message = if t.keyed {
                format!("`{shown}` is not an associative array")
            } else {
                format!("`{shown}` is an associative array; assign `{shown}[key]`")
            };
            self.tagged("D_ARR_LOCAL", t.span, message);
            return DType::Unknown;
        }
        if var.keys.len() != keys.len() {
            let message = format!(
                "`{shown}` has {} key(s), but {} are given here",
                var.keys.len(),
                keys.len()
            );
            self.tagged("D_ARR_BADREF", t.span, message);
            return DType::Unknown;
        }
        if let Some(i) = (0..keys.len()).find(|&i| !same_kind(&var.keys[i], &keys[i])) {
            let message = format!(
                "key {} of `{shown}` has type {} here but {} before",
                i + 1,
                keys[i],
                var.keys[i]
            );
            self.tagged("D_ARR_BADREF", t.span, message);
            return DType::Unknown;
        }
        if !same_kind(&var.ty, &ty) {
            let message = format!("cannot assign {ty} to `{shown}`, which has type {}", var.ty);
            self.tagged("D_OP_INCOMPAT", value_span, message);
            return DType::Unknown;
        }
        var.ty
    }

    /// Reads `name[keys]` from an associative array.
    pub(super) fn assoc_read(&mut self, base: &mut Expr, indices: &[Expr]) -> DType {
        let (scope, name) = match &base.kind {
            ExprKind::Var { name, scope } => (*scope, name.clone()),
            ExprKind::Ident(name) => (VarScope::Global, name.clone()),
            _ => return DType::Unknown,
        };
        let key = (scope, name.clone());
        let known = self.vars.contains_key(&key) || self.assigned.contains(&key);
        if scope == VarScope::Global && !known {
            self.tagged(
                "D_IDENT_UNDEF",
                base.span,
                format!("unknown identifier `{name}`"),
            );
            return DType::Unknown;
        }
        base.kind = ExprKind::Var {
            name: name.clone(),
            scope,
        };
        let Some(state) = self.vars.get(&key) else {
            if !known {
                let keys = indices.iter().map(|i| i.ty.clone()).collect();
                self.define(scope, &name, DType::LONG, keys, base.span);
                base.ty = DType::LONG;
                return self.warn_unassigned(scope, &name, base.span);
            }
            base.ty = self.type_read_ahead(&key);
            return base.ty.clone();
        };
        let var = self.variables[state.index].clone();
        let shown = display_name(scope, &name);
        if var.keys.len() != indices.len() {
            let message = if var.keys.is_empty() {
                format!("`{shown}` is not an associative array")
            } else {
                format!(
                    "`{shown}` has {} key(s), but {} are given here",
                    var.keys.len(),
                    indices.len()
                )
            };
            self.tagged("D_ARR_BADREF", base.span, message);
            return DType::Unknown;
        }
        base.ty = var.ty.clone();
        self.warn_unassigned(scope, &name, base.span)
    }

    /// The variable's type; warns, once, when nothing in the program assigns it.
    pub(super) fn warn_unassigned(&mut self, scope: VarScope, name: &str, span: Span) -> DType {
        let Some(state) = self.vars.get_mut(&(scope, name.to_string())) else {
            return DType::Unknown;
        };
        let index = state.index;
        if !state.assigned && !state.warned {
            state.warned = true;
            let ty = &self.variables[index].ty;
            let always = if ty.is_string_like() { "NULL" } else { "zero" };
            let message = format!(
                "`{}` is read but never assigned; it is always {always}",
                display_name(scope, name)
            );
            self.diagnostics.push(Diagnostic::warning(span, message));
        }
        self.variables[index].ty.clone()
    }
}
