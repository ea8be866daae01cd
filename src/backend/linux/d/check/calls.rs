//! Calls: each action, subroutine and aggregating function with the number and kinds of
//! arguments it takes, and the type it returns. `printf` and `printa` formats are checked in
//! `printf`.

use super::Checker;
use crate::backend::linux::d::ast::{
    AggFunc, Aggregate, DType, Expr, ExprKind, Function, FunctionKind,
};
use crate::backend::linux::d::span::Span;
use crate::event::llquantize_overflows;

/// What an argument must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An integer or pointer.
    Int,
    /// An integer constant (after folding).
    Const,
    /// A string (or pointer to char).
    Str,
    /// A string, or `NULL` (an integer constant 0).
    StrOrNull,
    /// An aggregation, `@name`.
    Agg,
    /// Any value that can be recorded: not an aggregation, not void.
    Any,
}

/// Argument kinds and how many are required; the return type.
fn signature(func: Function) -> (&'static [Kind], usize, DType) {
    use Function::*;
    use Kind::*;
    match func {
        Trace => (&[Any], 1, DType::Void),
        Exit => (&[Int], 1, DType::Void),
        Clear | Denormalize => (&[Agg], 1, DType::Void),
        Trunc => (&[Agg, Int], 1, DType::Void),
        Normalize => (&[Agg, Int], 2, DType::Void),
        Stack => (&[Const], 0, DType::Stack),
        Ustack => (&[Const, Const], 0, DType::Stack),
        Copyin => (&[Int, Int], 2, DType::Pointer(Box::new(DType::Void))),
        Copyinstr => (&[Int, Int], 1, DType::String),
        Strlen => (&[Str], 1, DType::ULONG),
        Strjoin | Strstr => (&[Str, Str], 2, DType::String),
        Substr => (&[Str, Int, Int], 2, DType::String),
        Index | Rindex => (&[Str, Str, Int], 2, DType::INT),
        Basename | Dirname | Tolower | Toupper | Cleanpath => (&[Str], 1, DType::String),
        Getmajor | Getminor => (
            &[Int],
            1,
            DType::Int {
                bits: 32,
                signed: false,
            },
        ),
        Lltostr => (&[Int, Int], 1, DType::String),
        Progenyof => (&[Int], 1, DType::INT),
        Speculation => (&[], 0, DType::INT),
        Strchr | Strrchr => (&[Str, Int], 2, DType::String),
        Strtok => (&[StrOrNull, StrOrNull], 2, DType::String),
        Rand => (&[], 0, DType::INT),
        Func | Mod | Ufunc | Uaddr | Umod => (&[Int], 1, DType::String),
        Htons | Ntohs => (
            &[Int],
            1,
            DType::Int {
                bits: 16,
                signed: false,
            },
        ),
        Htonl | Ntohl => (
            &[Int],
            1,
            DType::Int {
                bits: 32,
                signed: false,
            },
        ),
        Htonll | Ntohll => (&[Int], 1, DType::ULONG),
        Speculate | Commit | Discard | Raise => (&[Int], 1, DType::Void),
        Aggregating(AggFunc::Count) => (&[], 0, DType::Void),
        Aggregating(
            AggFunc::Sum
            | AggFunc::Min
            | AggFunc::Max
            | AggFunc::Avg
            | AggFunc::Stddev
            | AggFunc::Quantize,
        ) => (&[Int], 1, DType::Void),
        Aggregating(AggFunc::Lquantize) => (&[Int, Const, Const, Const], 3, DType::Void),
        Aggregating(AggFunc::Llquantize) => (&[Int, Const, Const, Const, Const], 5, DType::Void),
        Printf | Printa | System => (&[], 0, DType::Void),
    }
}

fn count_message(func: Function, min: usize, max: usize, found: usize) -> String {
    let takes = match (min, max) {
        (0, 0) => "no arguments".to_string(),
        (a, b) if a == b => format!("{a} argument{}", if a == 1 { "" } else { "s" }),
        (a, b) if b == a + 1 => format!("{a} or {b} arguments"),
        (a, b) => format!("{a} to {b} arguments"),
    };
    format!("`{}()` takes {takes}, found {found}", func.name())
}

/// Checks a call and returns its type.
pub fn call(checker: &mut Checker, func: Function, args: &mut [Expr], span: Span) -> DType {
    match func.kind() {
        FunctionKind::Aggregating => {
            let message = format!(
                "aggregating function `{0}()` can only be used as `@name[keys] = {0}(...)`",
                func.name()
            );
            checker.error(span, message);
            return DType::Unknown;
        }
        _ if matches!(func, Function::Printf | Function::System) => {
            return checker.printf(func, args, span)
        }
        _ if func == Function::Printa => return checker.printa(args, span),
        _ => {}
    }
    let (kinds, min, ret) = signature(func);
    if checker.arguments(func, kinds, min, args, span) {
        ret
    } else {
        DType::Unknown
    }
}

/// Checks the arguments of an aggregation statement.
pub fn aggregating_args(checker: &mut Checker, a: &mut Aggregate) {
    let func = Function::Aggregating(a.func);
    let (kinds, min, _) = signature(func);
    if !checker.arguments(func, kinds, min, &mut a.args, a.span) {
        return;
    }
    let consts: Vec<i64> = a
        .args
        .iter()
        .skip(1)
        .filter_map(|e| e.as_int())
        .map(|v| v as i64)
        .collect();
    let problem = match (a.func, consts.as_slice()) {
        (AggFunc::Lquantize, [low, high, ..]) if high <= low => {
            Some("the upper bound of `lquantize()` must be greater than its lower bound")
        }
        (AggFunc::Lquantize, [_, _, step]) if *step <= 0 => {
            Some("the step of `lquantize()` must be positive")
        }
        (AggFunc::Llquantize, [factor, ..]) if *factor < 2 => {
            Some("the factor of `llquantize()` must be at least 2")
        }
        (AggFunc::Llquantize, [_, low, high, _]) if high <= low || *low < 0 => {
            Some("`llquantize()` needs 0 <= low magnitude < high magnitude")
        }
        (AggFunc::Llquantize, [factor, _, high, _]) if llquantize_overflows(*factor, *high) => {
            Some("the high magnitude of `llquantize()` would overflow 64 bits (factor^(high+1))")
        }
        (AggFunc::Llquantize, [_, _, _, steps]) if *steps <= 0 => {
            Some("the steps per magnitude of `llquantize()` must be positive")
        }
        _ => None,
    };
    if let Some(message) = problem {
        checker.error(a.span, message);
    }
}

impl Checker {
    /// Checks count and kinds; returns whether all were right.
    fn arguments(
        &mut self,
        func: Function,
        kinds: &[Kind],
        min: usize,
        args: &mut [Expr],
        span: Span,
    ) -> bool {
        let mut ok = true;
        for (i, arg) in args.iter_mut().enumerate() {
            let kind = kinds.get(i).copied().unwrap_or(Kind::Any);
            ok &= self.argument(func, i, kind, arg);
        }
        if args.len() < min || args.len() > kinds.len() {
            let message = count_message(func, min, kinds.len(), args.len());
            self.error(span, message);
            return false;
        }
        ok
    }

    fn argument(&mut self, func: Function, i: usize, kind: Kind, arg: &mut Expr) -> bool {
        if kind == Kind::Agg {
            return self.aggregation_arg(func, arg);
        }
        self.value(arg);
        let ty = arg.ty.clone();
        if ty == DType::Unknown {
            return false;
        }
        let (ok, wanted) = match kind {
            Kind::Int => (ty.is_scalar(), "an integer"),
            Kind::Const => (arg.as_int().is_some(), "an integer constant"),
            Kind::Str => (ty.is_string_like(), "a string"),
            Kind::StrOrNull => (
                ty.is_string_like() || arg.as_int() == Some(0),
                "a string or NULL",
            ),
            _ => (!matches!(ty, DType::Void | DType::Aggregation), "a value"),
        };
        if !ok {
            let found = if kind == Kind::Const && ty.is_integer() {
                "a non-constant expression".to_string()
            } else {
                ty.to_string()
            };
            let message = format!(
                "argument {} of `{}()` must be {wanted}, found {found}",
                i + 1,
                func.name()
            );
            self.error(arg.span, message);
        }
        ok
    }

    /// An argument that names an aggregation (`printa(@a)`, `clear(@a)`).
    pub(super) fn aggregation_arg(&mut self, func: Function, arg: &mut Expr) -> bool {
        let ExprKind::Aggregation(name) = &arg.kind else {
            let message = format!(
                "`{}()` needs an aggregation such as `@counts` here",
                func.name()
            );
            self.error(arg.span, message);
            return false;
        };
        if !self.filled_aggs.contains(name) {
            let message = format!("`@{name}` is not an aggregation this program fills");
            self.error(arg.span, message);
            return false;
        }
        arg.ty = DType::Aggregation;
        true
    }
}
