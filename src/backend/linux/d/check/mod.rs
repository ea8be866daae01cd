//! Semantic checks over a parsed program: names resolve, inlines are substituted, each
//! expression gets its D type, actions and aggregating functions get the arguments they need,
//! printf formats match their arguments, aggregations are not used as values, and a variable
//! read but never assigned draws a warning. Constants are folded on the way (`fold`).

mod ahead;
mod builtins;
mod calls;
mod constants;
mod destructive;
mod expr;
mod fold;
mod options;
mod printf;
mod speculation;
mod targets;

pub use destructive::first_destructive_action;
pub use options::check_option;

use std::collections::{HashMap, HashSet};

use super::ast::{
    Aggregate, DType, Decl, Expr, ExprKind, Function, Item, Program, Stmt, VarScope, Variable,
    VariableKind,
};
use super::diagnostic::{Diagnostic, Severity};
use super::span::Span;
use super::typetable::TypeTable;

/// What a checked variable is known to be so far.
struct VarState {
    /// Index into `Program::variables`.
    index: usize,
    /// Whether anything in the program assigns it (found before checking starts).
    assigned: bool,
    warned: bool,
}

#[derive(Default)]
pub struct Checker {
    diagnostics: Vec<Diagnostic>,
    /// `#pragma D option scratchsize=`, the most alloca() may ask for (else 256).
    scratchsize: Option<usize>,
    variables: Vec<Variable>,
    vars: HashMap<(VarScope, String), VarState>,
    aggs: HashMap<String, usize>,
    inlines: HashMap<String, Expr>,
    /// Variables some statement assigns, and aggregations some statement fills.
    assigned: HashSet<(VarScope, String)>,
    filled_aggs: HashSet<String>,
    /// The lquantize()/llquantize() parameters of each aggregation's first use.
    quantize_params: HashMap<String, Vec<i64>>,
    /// Types of variables from an earlier pass, for reads before the assigning clause.
    later_types: HashMap<(VarScope, String), DType>,
    /// Whether some variable was read before any clause assigned it.
    read_ahead: bool,
    /// Variables whose only assignments so far failed their check (the error is reported
    /// there): a later read of one is of no known type, not a read ahead.
    failed_stores: HashSet<(VarScope, String)>,
    second_pass: bool,
    /// The program's structs, unions, enums and typedefs.
    types: TypeTable,
}

/// Checks `program` in place. Returns every diagnostic (errors and warnings), in source
/// order.
pub fn check(program: &mut Program) -> Vec<Diagnostic> {
    // Only a program that may read a variable ahead of its assignment needs a copy for
    // the second pass.
    let pristine = ahead::may_read_ahead(program).then(|| program.clone());
    let first = run(program, HashMap::new(), false);
    let Some(pristine) = pristine.filter(|_| first.read_ahead) else {
        // An assignment inside an expression whose check failed early is never checked,
        // so a later read of its variable looks like a read ahead; the error already
        // reported is the one to show.
        let failed = first
            .diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error);
        debug_assert!(
            !first.read_ahead || failed,
            "a read ahead that ahead.rs did not foresee"
        );
        return first.finish();
    };
    // A variable was read before the clause that assigns it, so its type was not known
    // there: check again, knowing the type each variable's first assignment gave it.
    let later_types = first
        .variables
        .iter()
        .filter_map(|v| match v.kind {
            VariableKind::Scalar(scope) => Some(((scope, v.name.clone()), v.ty.clone())),
            VariableKind::Aggregation => None,
        })
        .collect();
    *program = pristine;
    run(program, later_types, true).finish()
}

/// One checking pass over the program; moves the variable table into it.
fn run(
    program: &mut Program,
    later_types: HashMap<(VarScope, String), DType>,
    second_pass: bool,
) -> Checker {
    let mut checker = Checker {
        second_pass,
        later_types,
        types: program.types.clone(),
        ..Checker::default()
    };
    (checker.assigned, checker.filled_aggs) = assignments(program);
    for item in &mut program.items {
        match item {
            Item::Pragma(p) => checker.pragma(p),
            Item::Decl(d) => checker.declaration(d),
            Item::Clause(c) => {
                if let Some(pred) = &mut c.predicate {
                    checker.condition(pred, "a predicate");
                }
                if let Some(body) = &mut c.body {
                    checker.statements(body);
                    checker.action_order(body);
                }
            }
        }
    }
    program.variables = checker.variables.clone();
    checker
}

impl Checker {
    fn finish(self) -> Vec<Diagnostic> {
        let mut diagnostics = self.diagnostics;
        diagnostics.sort_by_key(|d| (d.span.start, d.severity == Severity::Warning));
        diagnostics
    }

    /// The type of a variable read before any clause assigned it: what a later assignment
    /// gives it (known on the second pass), else D's zero, a long.
    fn type_read_ahead(&mut self, key: &(VarScope, String)) -> DType {
        if self.failed_stores.contains(key) {
            return DType::Unknown;
        }
        self.read_ahead = true;
        self.later_types.get(key).cloned().unwrap_or(DType::LONG)
    }

    /// An error, with DTrace's tag for it (see `Diagnostic::tag`).
    fn tagged(&mut self, tag: &'static str, span: Span, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::error(span, message).tagged(tag));
    }

    fn declaration(&mut self, d: &mut Decl) {
        if let Some(value) = &mut d.inline {
            self.inline(&d.name, &d.ty, value, d.span);
            return;
        }
        let key = (d.scope, d.name.clone());
        if self.vars.contains_key(&key) || self.inlines.contains_key(&d.name) {
            self.tagged(
                "D_DECL_IDRED",
                d.span,
                format!("`{}` is already declared", d.name),
            );
            return;
        }
        if matches!(d.ty, DType::Void) {
            self.tagged(
                "D_DECL_VOIDOBJ",
                d.span,
                format!("`{}` cannot have type void", d.name),
            );
            return;
        }
        if d.scope == VarScope::Clause && !d.keys.is_empty() {
            let message = format!(
                "clause-local `this->{}` cannot be an associative array",
                d.name
            );
            self.tagged("D_DECL_LOCASSC", d.span, message);
            return;
        }
        if matches!(d.ty, DType::Record { .. }) && self.types.size_of(&d.ty).is_none() {
            let message = format!("`{}` has incomplete type {}", d.name, d.ty);
            self.tagged("D_DECL_INCOMPLETE", d.span, message);
            return;
        }
        self.define(d.scope, &d.name, d.ty.clone(), d.keys.clone(), d.span);
    }

    fn inline(&mut self, name: &str, ty: &DType, value: &mut Expr, span: Span) {
        if self.inlines.contains_key(name)
            || self.vars.contains_key(&(VarScope::Global, name.into()))
        {
            self.tagged(
                "D_DECL_IDRED",
                span,
                format!("`{name}` is already declared"),
            );
            return;
        }
        self.value(value);
        let compatible = match ty {
            DType::String => value.ty.is_string_like(),
            DType::Int { .. } | DType::Pointer(_) => value.ty.is_scalar(),
            _ => false,
        };
        if value.ty != DType::Unknown && !compatible {
            self.tagged(
                "D_OP_INCOMPAT",
                value.span,
                format!(
                    "inline `{name}` is declared {ty} but its value has type {}",
                    value.ty
                ),
            );
            return;
        }
        if let Some(v) = value.as_int() {
            value.kind = ExprKind::Int(super::arith::normalize(v, ty));
        }
        value.ty = ty.clone();
        if expr::too_large(value) {
            self.tagged(
                "D_DECL_IDRED",
                span,
                format!("inline `{name}` expands to too large an expression"),
            );
            return;
        }
        self.inlines.insert(name.to_string(), value.clone());
    }

    /// Adds a variable to the table; returns its index.
    fn define(
        &mut self,
        scope: VarScope,
        name: &str,
        ty: DType,
        keys: Vec<DType>,
        span: Span,
    ) -> usize {
        let index = self.variables.len();
        self.variables.push(Variable {
            name: name.to_string(),
            kind: VariableKind::Scalar(scope),
            ty,
            keys,
            func: None,
            span,
        });
        let assigned = self.assigned.contains(&(scope, name.to_string()));
        self.vars.insert(
            (scope, name.to_string()),
            VarState {
                index,
                assigned,
                warned: false,
            },
        );
        index
    }

    fn statements(&mut self, stmts: &mut [Stmt]) {
        for stmt in stmts {
            match stmt {
                Stmt::Expr(e) => self.statement_expr(e),
                Stmt::Aggregate(a) => self.aggregate(a),
                Stmt::If {
                    cond,
                    then,
                    otherwise,
                    ..
                } => {
                    self.condition(cond, "an `if` condition");
                    self.statements(then);
                    if let Some(o) = otherwise {
                        self.statements(o);
                    }
                }
            }
        }
    }

    /// A predicate or `if` condition: an integer or pointer.
    fn condition(&mut self, e: &mut Expr, what: &str) {
        self.value(e);
        if e.ty != DType::Unknown && !e.ty.is_scalar() {
            self.tagged(
                "D_OP_INCOMPAT",
                e.span,
                format!("{what} must be an integer or a pointer, found {}", e.ty),
            );
        }
    }

    fn aggregate(&mut self, a: &mut Aggregate) {
        for key in &mut a.keys {
            self.key(key);
        }
        calls::aggregating_args(self, a);
        if let Some(params) = calls::quantize_params(a) {
            match self.quantize_params.get(&a.name) {
                None => {
                    self.quantize_params.insert(a.name.clone(), params);
                }
                Some(first) => {
                    if let Some((tag, message)) = calls::params_mismatch(a.func, first, &params) {
                        self.tagged(tag, a.span, message);
                    }
                }
            }
        }
        let keys: Vec<DType> = a.keys.iter().map(|k| k.ty.clone()).collect();
        let Some(&index) = self.aggs.get(&a.name) else {
            self.aggs.insert(a.name.clone(), self.variables.len());
            self.variables.push(Variable {
                name: a.name.clone(),
                kind: VariableKind::Aggregation,
                ty: DType::Aggregation,
                keys,
                func: Some(a.func),
                span: a.span,
            });
            return;
        };
        let first = self.variables[index].clone();
        if first.func != Some(a.func) {
            self.tagged(
                "D_AGG_REDEF",
                a.span,
                format!(
                    "`@{}` is used with {}() here but with {}() before",
                    a.name,
                    Function::Aggregating(a.func).name(),
                    first.func.map_or("", |f| Function::Aggregating(f).name())
                ),
            );
        } else if first.keys.len() != keys.len() {
            self.tagged(
                "D_AGG_REDEF",
                a.span,
                format!(
                    "`@{}` has {} key(s) here but {} before",
                    a.name,
                    keys.len(),
                    first.keys.len()
                ),
            );
        } else if let Some(i) = (0..keys.len()).find(|&i| !same_kind(&first.keys[i], &keys[i])) {
            self.tagged(
                "D_AGG_REDEF",
                a.keys[i].span,
                format!(
                    "key {} of `@{}` has type {} here but {} before",
                    i + 1,
                    a.name,
                    keys[i],
                    first.keys[i]
                ),
            );
        }
    }

    /// An aggregation or associative-array key: any value (including a stack), not an
    /// aggregation.
    fn key(&mut self, e: &mut Expr) {
        self.value(e);
        if matches!(e.ty, DType::Void) {
            self.tagged("D_KEY_TYPE", e.span, "a key must have a value");
        }
    }
}

/// The variables and the aggregations the program assigns anywhere, so a read before the
/// assigning clause is not mistaken for an unknown name.
fn assignments(program: &Program) -> (HashSet<(VarScope, String)>, HashSet<String>) {
    let (vars, aggs) = ahead::assignments(program);
    let vars = vars.into_iter().map(|(s, n)| (s, n.to_string())).collect();
    (vars, aggs.into_iter().map(str::to_string).collect())
}

/// Whether two types are interchangeable as keys or variable values: integers with
/// integers (of any width), strings with strings.
fn same_kind(a: &DType, b: &DType) -> bool {
    match (a, b) {
        (DType::Unknown, _) | (_, DType::Unknown) => true,
        (x, y) if x.is_scalar() && y.is_scalar() => true,
        (x, y) if x.is_string_like() && y.is_string_like() => true,
        (x, y) => x == y,
    }
}
