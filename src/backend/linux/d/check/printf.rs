//! printf() and printa() formats: the conversions a format holds, and whether each argument
//! (or each aggregation key) has a type its conversion can print.

use super::Checker;
use crate::backend::linux::d::ast::{DType, Expr, ExprKind, Function};
use crate::backend::linux::d::span::Span;

/// One `%` conversion of a format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    /// The conversion as written, such as `%-8s`.
    pub text: String,
    pub conv: char,
    /// `%@d` in printa: prints the aggregation's value.
    pub aggregation: bool,
    /// How many `*` (width or precision taken from an argument).
    pub stars: usize,
}

/// Splits a format into its conversions (`%%` is text, not a conversion).
pub fn parse_format(fmt: &str) -> Result<Vec<Conversion>, String> {
    let mut out = Vec::new();
    let mut chars = fmt.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c != '%' {
            continue;
        }
        if chars.next_if(|&(_, c)| c == '%').is_some() {
            continue;
        }
        let mut aggregation = false;
        let mut stars = 0;
        while let Some((_, c)) = chars.next_if(|&(_, c)| "-+ #0'@".contains(c)) {
            aggregation |= c == '@';
        }
        let mut in_precision = false;
        loop {
            match chars.peek().map(|&(_, c)| c) {
                Some('*') => stars += 1,
                Some('.') if !in_precision => in_precision = true,
                Some(c) if c.is_ascii_digit() => {}
                _ => break,
            }
            chars.next();
        }
        while chars.next_if(|&(_, c)| "hlLzjt".contains(c)).is_some() {}
        let Some((end, conv)) = chars.next() else {
            return Err(format!(
                "the format ends inside the conversion `{}`",
                &fmt[start..]
            ));
        };
        let text = fmt[start..end + conv.len_utf8()].to_string();
        if !"diouxXcsSpaAYkeEfgG".contains(conv) {
            return Err(format!("unknown conversion `{}`", text.escape_debug()));
        }
        out.push(Conversion {
            text,
            conv,
            aggregation,
            stars,
        });
    }
    Ok(out)
}

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

impl Checker {
    /// The format argument: a string constant (an inline of type string counts).
    fn format_of(&mut self, func: Function, arg: &mut Expr) -> Option<Vec<Conversion>> {
        self.value(arg);
        let ExprKind::Str(fmt) = &arg.kind else {
            let message = format!(
                "the format of `{}()` must be a string constant",
                func.name()
            );
            self.error(arg.span, message);
            return None;
        };
        match parse_format(fmt) {
            Ok(c) => Some(c),
            Err(message) => {
                let message = format!("`{}()`: {message}", func.name());
                self.error(arg.span, message);
                None
            }
        }
    }

    pub(super) fn printf(&mut self, args: &mut [Expr], span: Span) -> DType {
        let Some((fmt, rest)) = args.split_first_mut() else {
            self.error(
                span,
                "`printf()` takes a format and its arguments, found none",
            );
            return DType::Void;
        };
        for arg in rest.iter_mut() {
            self.value(arg);
        }
        let Some(convs) = self.format_of(Function::Printf, fmt) else {
            return DType::Void;
        };
        if let Some(c) = convs.iter().find(|c| c.aggregation) {
            let message = format!(
                "`{}` prints an aggregation; it is only valid in printa()",
                c.text
            );
            self.error(fmt.span, message);
            return DType::Void;
        }
        let needed: usize = convs.iter().map(|c| c.stars + 1).sum();
        if needed != rest.len() {
            let message = format!(
                "the format of `printf()` needs {needed} argument{} after it, found {}",
                if needed == 1 { "" } else { "s" },
                rest.len()
            );
            self.error(span, message);
            return DType::Void;
        }
        let mut next = rest.iter();
        for (n, c) in convs.iter().enumerate() {
            let star_args = (&mut next).take(c.stars);
            for arg in star_args {
                if let Some(want) = wanted('d', &arg.ty) {
                    self.format_mismatch(n, c, arg, want);
                }
            }
            if let Some(arg) = next.next() {
                if let Some(want) = wanted(c.conv, &arg.ty) {
                    self.format_mismatch(n, c, arg, want);
                }
            }
        }
        DType::Void
    }

    fn format_mismatch(&mut self, n: usize, c: &Conversion, arg: &Expr, want: &str) {
        let message = format!(
            "conversion #{} `{}` needs {want}, but this argument has type {}",
            n + 1,
            c.text,
            arg.ty
        );
        self.error(arg.span, message);
    }

    pub(super) fn printa(&mut self, args: &mut [Expr], span: Span) -> DType {
        let Some((first, rest)) = args.split_first_mut() else {
            self.error(
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
        let convs = self.format_of(Function::Printa, first);
        if rest.is_empty() {
            self.error(
                span,
                "`printa()` with a format needs at least one aggregation after it",
            );
            return DType::Void;
        }
        let mut all_ok = true;
        for arg in rest.iter_mut() {
            all_ok &= self.aggregation_arg(Function::Printa, arg);
        }
        if let (Some(convs), true) = (convs, all_ok) {
            self.printa_keys(&convs, &rest[0]);
        }
        DType::Void
    }

    /// The conversions other than `%@` print the keys of the first aggregation, in order.
    fn printa_keys(&mut self, convs: &[Conversion], agg: &Expr) {
        let ExprKind::Aggregation(name) = &agg.kind else {
            return;
        };
        let Some(keys) = self.aggs.get(name).map(|&i| self.variables[i].keys.clone()) else {
            return;
        };
        let key_convs: Vec<&Conversion> = convs.iter().filter(|c| !c.aggregation).collect();
        if key_convs.len() > keys.len() {
            let message = format!(
                "the format has {} key conversions but `@{name}` has {} key(s)",
                key_convs.len(),
                keys.len()
            );
            self.error(agg.span, message);
            return;
        }
        for (n, (c, key)) in key_convs.iter().zip(&keys).enumerate() {
            if let Some(want) = wanted(c.conv, key) {
                let message = format!(
                    "conversion #{} `{}` needs {want}, but key {} of `@{name}` has type {key}",
                    n + 1,
                    c.text,
                    n + 1
                );
                self.error(agg.span, message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_split_into_conversions() {
        let c = parse_format("%-8s %5d%% %*.*lld %@u\n").unwrap();
        let convs: Vec<(char, bool, usize)> =
            c.iter().map(|c| (c.conv, c.aggregation, c.stars)).collect();
        assert_eq!(
            convs,
            vec![
                ('s', false, 0),
                ('d', false, 0),
                ('d', false, 2),
                ('u', true, 0)
            ]
        );
        assert!(parse_format("%q").is_err());
        assert!(parse_format("abc %-").is_err());
    }
}
