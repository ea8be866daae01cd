//! printf() and printa() formats: the conversions a format holds, and whether each argument
//! (or each aggregation key) has a type its conversion can print.

use super::Checker;
use crate::backend::linux::d::ast::{DType, Expr, ExprKind, Function};
use crate::backend::linux::d::format::{conversions, Spec};
use crate::backend::linux::d::span::Span;

/// What a conversion prints, when `ty` is not something it can print.
fn wanted(conv: char, ty: &DType) -> Option<&'static str> {
    let ok = match conv {
        'd' | 'i' | 'o' | 'u' | 'x' | 'X' | 'c' | 'p' | 'a' | 'A' | 'Y' => ty.is_scalar(),
        's' | 'S' => ty.is_string_like(),
        'k' => *ty == DType::Stack,
        _ => false,
    };
    if ok || *ty == DType::Unknown {
        return None;
    }
    Some(match conv {
        's' | 'S' => "a string",
        'k' => "a stack",
        'e' | 'E' | 'f' | 'g' | 'G' => "a floating-point value, which D does not have",
        _ => "an integer",
    })
}

/// DTrace's tag for printf arguments that do not match the format's count: too many, a `*`
/// width or precision with no argument, or a conversion with none.
fn count_tag(convs: &[Spec], given: usize) -> &'static str {
    let mut left = given;
    for c in convs {
        if left < c.stars() {
            return "D_PRINTF_DYN_PROTO";
        }
        left -= c.stars();
        if left == 0 {
            return "D_PRINTF_ARG_PROTO";
        }
        left -= 1;
    }
    "D_PRINTF_ARG_EXTRA"
}

impl Checker {
    /// The format argument: a string constant (an inline of type string counts).
    fn format_of(&mut self, func: Function, arg: &mut Expr) -> Option<(String, Vec<Spec>)> {
        self.value(arg);
        let ExprKind::Str(fmt) = &arg.kind else {
            let message = format!(
                "the format of `{}()` must be a string constant",
                func.name()
            );
            self.tagged("D_PRINTF_ARG_FMT", arg.span, message);
            return None;
        };
        match conversions(fmt) {
            Ok(c) => Some((fmt.clone(), c)),
            Err(message) => {
                let message = format!("`{}()`: {message}", func.name());
                // dtrace's printf format parser reports these as syntax errors.
                self.tagged("D_SYNTAX", arg.span, message);
                None
            }
        }
    }

    /// printf(), and system(), whose command is formatted as printf formats.
    pub(super) fn printf(&mut self, func: Function, args: &mut [Expr], span: Span) -> DType {
        let Some((fmt, rest)) = args.split_first_mut() else {
            let message = format!(
                "`{}()` takes a format and its arguments, found none",
                func.name()
            );
            self.tagged("D_PROTO_LEN", span, message);
            return DType::Void;
        };
        for arg in rest.iter_mut() {
            self.value(arg);
        }
        let Some((text, convs)) = self.format_of(func, fmt) else {
            return DType::Void;
        };
        if text.is_empty() {
            let message = format!("{}() format string is empty", func.name());
            self.tagged("D_PRINTF_FMT_EMPTY", fmt.span, message);
            return DType::Void;
        }
        if let Some(c) = convs.iter().find(|c| c.aggregation) {
            let message = format!(
                "`{}` prints an aggregation; it is only valid in printa()",
                &text[c.at.clone()]
            );
            self.tagged("D_PRINTF_AGG_CONV", fmt.span, message);
            return DType::Void;
        }
        let needed: usize = convs.iter().map(|c| c.stars() + 1).sum();
        if needed != rest.len() {
            let message = format!(
                "the format of `{}()` needs {needed} argument{} after it, found {}",
                func.name(),
                if needed == 1 { "" } else { "s" },
                rest.len()
            );
            self.tagged(count_tag(&convs, rest.len()), span, message);
            return DType::Void;
        }
        let mut next = rest.iter();
        for (n, c) in convs.iter().enumerate() {
            let c_text = &text[c.at.clone()];
            let star_args = (&mut next).take(c.stars());
            for arg in star_args {
                if wanted('d', &arg.ty).is_some() {
                    let message = format!(
                        "conversion #{} `{c_text}` takes its width or precision from an integer, but this argument has type {}",
                        n + 1,
                        arg.ty
                    );
                    self.tagged("D_PRINTF_DYN_TYPE", arg.span, message);
                }
            }
            if let Some(arg) = next.next() {
                if let Some(want) = wanted(c.conv, &arg.ty) {
                    self.format_mismatch(n, c_text, arg, want);
                }
            }
        }
        DType::Void
    }

    fn format_mismatch(&mut self, n: usize, c_text: &str, arg: &Expr, want: &str) {
        let message = format!(
            "conversion #{} `{c_text}` needs {want}, but this argument has type {}",
            n + 1,
            arg.ty
        );
        self.tagged("D_PRINTF_ARG_TYPE", arg.span, message);
    }

    pub(super) fn printa(&mut self, args: &mut [Expr], span: Span) -> DType {
        let Some((first, rest)) = args.split_first_mut() else {
            self.tagged(
                "D_PROTO_LEN",
                span,
                "`printa()` takes an aggregation, or a format and aggregations",
            );
            return DType::Void;
        };
        if matches!(first.kind, ExprKind::Aggregation(_)) {
            self.aggregation_arg(Function::Printa, first);
            for arg in rest.iter_mut() {
                self.aggregation_arg(Function::Printa, arg);
            }
            return DType::Void;
        }
        self.value(first);
        if !matches!(first.kind, ExprKind::Str(_)) {
            self.tagged(
                "D_PRINTA_AGGARG",
                first.span,
                "`printa()` needs an aggregation, or a format string and aggregations",
            );
            return DType::Void;
        }
        let convs = self.format_of(Function::Printa, first);
        if rest.is_empty() {
            self.tagged(
                "D_PRINTA_PROTO",
                span,
                "`printa()` with a format needs at least one aggregation after it",
            );
            return DType::Void;
        }
        let mut all_ok = true;
        for arg in rest.iter_mut() {
            all_ok &= self.aggregation_arg(Function::Printa, arg);
        }
        if let (Some((text, convs)), true) = (convs, all_ok) {
            self.printa_keys(&text, &convs, &rest[0]);
        }
        DType::Void
    }

    /// The conversions other than `%@` print the keys of the first aggregation, in order.
    fn printa_keys(&mut self, text: &str, convs: &[Spec], agg: &Expr) {
        let ExprKind::Aggregation(name) = &agg.kind else {
            return;
        };
        let Some(keys) = self.aggs.get(name).map(|&i| self.variables[i].keys.clone()) else {
            return;
        };
        let key_convs: Vec<&Spec> = convs.iter().filter(|c| !c.aggregation).collect();
        if key_convs.len() > keys.len() {
            let message = format!(
                "the format has {} key conversions but `@{name}` has {} key(s)",
                key_convs.len(),
                keys.len()
            );
            self.tagged("D_PRINTF_ARG_PROTO", agg.span, message);
            return;
        }
        for (n, (c, key)) in key_convs.iter().zip(&keys).enumerate() {
            if let Some(want) = wanted(c.conv, key) {
                let message = format!(
                    "conversion #{} `{}` needs {want}, but key {} of `@{name}` has type {key}",
                    n + 1,
                    &text[c.at.clone()],
                    n + 1
                );
                self.tagged("D_PRINTF_ARG_TYPE", agg.span, message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_split_into_conversions() {
        let c = conversions("%-8s %5d%% %*.*lld %@u\n").unwrap();
        let convs: Vec<(char, bool, usize)> = c
            .iter()
            .map(|c| (c.conv, c.aggregation, c.stars()))
            .collect();
        assert_eq!(
            convs,
            vec![
                ('s', false, 0),
                ('d', false, 0),
                ('d', false, 2),
                ('u', true, 0)
            ]
        );
        assert!(conversions("%q").is_err());
        assert!(conversions("abc %-").is_err());
    }
}
