//! Calls: each action, subroutine and aggregating function with the number and kinds of
//! arguments it takes, and the type it returns. `printf` and `printa` formats are checked in
//! `printf`.

use super::Checker;
use crate::backend::linux::d::ast::{
    AggFunc, Aggregate, DType, Expr, ExprKind, Function, FunctionKind,
};
use crate::backend::linux::d::span::Span;
use crate::event::llquantize_overflows;

/// dtrace's `scratchsize` when no pragma sets it (the run-time default is the same).
const DEFAULT_SCRATCHSIZE: usize = 256;

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
        Alloca => (&[Int], 1, DType::Pointer(Box::new(DType::Void))),
        Bcopy => (&[Any, Int, Int], 3, DType::Void),
        Copyinto => (&[Int, Int, Int], 3, DType::Void),
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

/// DTrace's tag for a wrong argument `i` (0-based) of `func`: the aggregating functions name
/// their own parameters.
fn argument_tag(func: Function, i: usize) -> &'static str {
    const LQUANTIZE: [&str; 3] = ["D_LQUANT_BASETYPE", "D_LQUANT_LIMTYPE", "D_LQUANT_STEPTYPE"];
    const LLQUANTIZE: [&str; 4] = [
        "D_LLQUANT_FACTORTYPE",
        "D_LLQUANT_LMAGTYPE",
        "D_LLQUANT_HMAGTYPE",
        "D_LLQUANT_STEPTYPE",
    ];
    match (func, i) {
        (Function::Aggregating(_), 0) => "D_AGG_SCALAR",
        (Function::Aggregating(AggFunc::Lquantize), i) => {
            LQUANTIZE.get(i - 1).copied().unwrap_or("D_PROTO_ARG")
        }
        (Function::Aggregating(AggFunc::Llquantize), i) => {
            LLQUANTIZE.get(i - 1).copied().unwrap_or("D_PROTO_ARG")
        }
        _ => "D_PROTO_ARG",
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
            checker.tagged("D_AGG_FUNC", span, message);
            return DType::Unknown;
        }
        _ if matches!(func, Function::Printf | Function::System) => {
            return checker.printf(func, args, span)
        }
        _ if func == Function::Printa => return checker.printa(args, span),
        _ => {}
    }
    let (kinds, min, ret) = signature(func);
    if !checker.arguments(func, kinds, min, args, span) {
        return DType::Unknown;
    }
    let scratchsize = checker.scratchsize.unwrap_or(DEFAULT_SCRATCHSIZE) as u64;
    if let (Function::Alloca, Some(size)) = (func, args.first().and_then(Expr::as_int)) {
        if size > scratchsize {
            let message = format!("alloca({size}) size larger than scratchsize {scratchsize}");
            checker.tagged("D_ALLOCA_SIZE", span, message);
            return DType::Unknown;
        }
    }
    // bcopy() and copyinto() write through their destination, which must be a pointer.
    let dst = match func {
        Function::Bcopy => args.get(1),
        Function::Copyinto => args.get(2),
        _ => None,
    };
    if let Some(dst) = dst.filter(|d| !matches!(d.ty, DType::Pointer(_) | DType::Unknown)) {
        let message = format!(
            "{}() argument #{} must be a pointer to scratch memory, found {}",
            func.name(),
            if func == Function::Bcopy { 2 } else { 3 },
            dst.ty
        );
        checker.tagged("D_PROTO_ARG", dst.span, message);
        return DType::Unknown;
    }
    let tags: &[&str] = match func {
        Function::Stack => &["D_STACK_SIZE"],
        Function::Ustack => &["D_USTACK_FRAMES", "D_USTACK_STRSIZE"],
        _ => &[],
    };
    for (arg, tag) in args.iter().zip(tags) {
        if arg.as_int().is_some_and(|v| v as i64 <= 0) {
            let message = format!(
                "{}() argument #{} must be a non-zero positive integer constant",
                func.name(),
                if *tag == "D_USTACK_STRSIZE" { 2 } else { 1 }
            );
            checker.tagged(tag, arg.span, message);
            return DType::Unknown;
        }
    }
    ret
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
    let problem = match a.func {
        AggFunc::Lquantize => lquantize_problem(&consts),
        AggFunc::Llquantize => llquantize_problem(&consts),
        _ => None,
    };
    if let Some((arg, tag, message)) = problem {
        // The argument dtrace points at (its 1-based number), else the whole call.
        let span = arg.and_then(|n| a.args.get(n)).map_or(a.span, |e| e.span);
        checker.tagged(tag, span, message);
    }
}

/// The constant parameters of an lquantize() or llquantize() (dtrace requires every use of
/// one aggregation to repeat them).
pub fn quantize_params(a: &Aggregate) -> Option<Vec<i64>> {
    if !matches!(a.func, AggFunc::Lquantize | AggFunc::Llquantize) {
        return None;
    }
    let mut params: Vec<i64> = a
        .args
        .iter()
        .skip(1)
        .filter_map(|e| e.as_int())
        .map(|v| v as i64)
        .collect();
    if a.func == AggFunc::Lquantize && params.len() == 2 {
        params.push(1);
    }
    Some(params)
}

/// The tag and message when `now` repeats an aggregation's quantize parameters wrongly.
pub fn params_mismatch(
    func: AggFunc,
    first: &[i64],
    now: &[i64],
) -> Option<(&'static str, String)> {
    let names: &[(&str, &str)] = match func {
        AggFunc::Lquantize => &[
            ("D_LQUANT_MATCHBASE", "base (argument #1)"),
            ("D_LQUANT_MATCHLIM", "limit (argument #2)"),
            ("D_LQUANT_MATCHSTEP", "step (argument #3)"),
        ],
        _ => &[
            ("D_LLQUANT_MATCHFACTOR", "factor (argument #1)"),
            ("D_LLQUANT_MATCHLMAG", "lmag (argument #2)"),
            ("D_LLQUANT_MATCHHMAG", "hmag (argument #3)"),
            ("D_LLQUANT_MATCHSTEPS", "steps (argument #4)"),
        ],
    };
    let i = (0..names.len()).find(|&i| first.get(i) != now.get(i))?;
    let (tag, what) = names[i];
    let shown = |v: Option<&i64>| v.map_or("none".to_string(), i64::to_string);
    Some((
        tag,
        format!(
            "{}() {what} doesn't match previous declaration: expected {}, found {}",
            Function::Aggregating(func).name(),
            shown(first.get(i)),
            shown(now.get(i))
        ),
    ))
}

/// What dtrace rejects in `lquantize(value, base, limit[, step])`: the argument (1-based),
/// the tag and the message.
type QuantizeProblem = (Option<usize>, &'static str, &'static str);

fn lquantize_problem(params: &[i64]) -> Option<QuantizeProblem> {
    let &[base, limit, ref rest @ ..] = params else {
        return None;
    };
    let step = rest.first().copied().unwrap_or(1);
    let int32 = |v: i64| i32::try_from(v).is_ok();
    Some(if !int32(base) {
        (
            Some(1),
            "D_LQUANT_BASEVAL",
            "lquantize() argument #1 must be a 32-bit quantity",
        )
    } else if !int32(limit) {
        (
            Some(2),
            "D_LQUANT_LIMVAL",
            "lquantize() argument #2 must be a 32-bit quantity",
        )
    } else if limit <= base {
        (
            None,
            "D_LQUANT_MISMATCH",
            "lquantize() base (argument #1) must be less than limit (argument #2)",
        )
    } else if step <= 0 {
        (
            Some(3),
            "D_LQUANT_STEPTYPE",
            "lquantize() argument #3 must be a non-zero positive integer constant",
        )
    } else if step > i64::from(u16::MAX) {
        (
            Some(3),
            "D_LQUANT_STEPVAL",
            "lquantize() argument #3 must be a 16-bit quantity",
        )
    } else if (limit - base) / step == 0 {
        (
            None,
            "D_LQUANT_STEPLARGE",
            "lquantize() step (argument #3) too large: must have at least one quantization level",
        )
    } else if (limit - base) / step > i64::from(u16::MAX) {
        (
            None,
            "D_LQUANT_STEPSMALL",
            "lquantize() step (argument #3) too small: number of quantization levels must be a 16-bit quantity",
        )
    } else {
        return None;
    })
}

/// What dtrace rejects in `llquantize(value, factor, low, high, steps)`.
fn llquantize_problem(params: &[i64]) -> Option<QuantizeProblem> {
    let &[factor, lmag, hmag, steps] = params else {
        return None;
    };
    let u16_range = |v: i64| (0..=i64::from(u16::MAX)).contains(&v);
    // What steps must divide when steps > factor (factor² when lmag is 0).
    let bucket_base = || (factor as u128).pow(lmag.max(1) as u32 + 1);
    Some(if !(2..=i64::from(u16::MAX)).contains(&factor) {
        (
            Some(1),
            "D_LLQUANT_FACTORVAL",
            "llquantize() argument #1 must be an unsigned 16-bit quantity greater than or equal to 2",
        )
    } else if !u16_range(lmag) {
        (
            Some(2),
            "D_LLQUANT_LMAGVAL",
            "llquantize() argument #2 must be an unsigned 16-bit quantity",
        )
    } else if !u16_range(hmag) {
        (
            Some(3),
            "D_LLQUANT_HMAGVAL",
            "llquantize() argument #3 must be an unsigned 16-bit quantity",
        )
    } else if hmag < lmag {
        (
            Some(3),
            "D_LLQUANT_HMAGVAL",
            "llquantize() argument #3 (high magnitude) must be at least argument #2 (low magnitude)",
        )
    } else if llquantize_overflows(factor, hmag) {
        (
            Some(3),
            "D_LLQUANT_HMAGVAL",
            "llquantize() argument #3 (high magnitude) will cause overflow of 64 bits",
        )
    } else if steps <= 0 {
        (
            Some(4),
            "D_LLQUANT_STEPTYPE",
            "llquantize() argument #4 must be a non-zero positive integer constant",
        )
    } else if steps > i64::from(u16::MAX) {
        (
            Some(4),
            "D_LLQUANT_STEPVAL",
            "llquantize() argument #4 must be an unsigned 16-bit quantity",
        )
    } else if steps < factor && factor % steps != 0 {
        (
            Some(1),
            "D_LLQUANT_STEPVAL",
            "llquantize() argument #4 (steps) must evenly divide argument #1 (factor) when steps<factor",
        )
    } else if steps > factor && steps % factor != 0 {
        (
            Some(1),
            "D_LLQUANT_STEPVAL",
            "llquantize() argument #4 (steps) must be a multiple of argument #1 (factor) when steps>factor",
        )
    } else if steps > factor && bucket_base() % steps as u128 != 0 {
        (
            Some(1),
            "D_LLQUANT_STEPVAL",
            "llquantize() argument #4 (steps) must evenly divide pow(argument #1 (factor), lmag (argument #2) + 1) when steps>factor",
        )
    } else {
        return None;
    })
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
            self.tagged("D_PROTO_LEN", span, message);
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
            self.tagged(argument_tag(func, i), arg.span, message);
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
            let tag = match func {
                Function::Clear => "D_CLEAR_AGGARG",
                Function::Trunc => "D_TRUNC_AGGARG",
                Function::Normalize | Function::Denormalize => "D_NORMALIZE_AGGARG",
                _ => "D_PRINTA_AGGARG",
            };
            self.tagged(tag, arg.span, message);
            return false;
        };
        if !self.filled_aggs.contains(name) {
            let message = format!("`@{name}` is not an aggregation this program fills");
            self.tagged("D_PRINTA_AGGARG", arg.span, message);
            return false;
        }
        arg.ty = DType::Aggregation;
        true
    }
}
