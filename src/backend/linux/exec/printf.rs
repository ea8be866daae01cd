//! The text of printf() and of printa() with a format: conversions applied to typed
//! arguments, or, for printa, to an aggregation's keys (in order) and values (`%@`).
//!
//! A `%@` of a quantize-family aggregation prints its distribution exactly as the final
//! print does, through the presenter's renderer, so that both look the same.
//!
//! The text is bytes (a `%s` prints a traced string as it is), and it records which bytes the
//! conversions of traced values made, so that text output escapes those and leaves the
//! format's own text (its `\n`) alone.

use std::ops::Range;

use super::agg::KeyPart;
use super::eval::string_of;
use super::format::{self, Arg};
use super::value::Value;
use crate::aggregation_text;
use crate::backend::linux::d::arith::{bits, is_signed};
use crate::backend::linux::d::ast::DType;
use crate::backend::linux::d::format::{parse, Count, Piece, Spec};
use crate::event::{AggEntry, AggFunc, AggSnapshot, AggValue};

/// One printf argument with its D type.
pub struct Typed {
    pub value: Value,
    pub ty: DType,
}

/// What a conversion prints: an integer or a string.
enum Operand<'a> {
    Int(Arg<'a>),
    Str(&'a [u8]),
}

/// What printf or a printa row produced: the bytes, and the ranges of them that came from
/// traced values.
#[derive(Debug, Default, PartialEq)]
pub struct Formatted {
    pub text: Vec<u8>,
    pub traced: Vec<Range<usize>>,
}

impl Formatted {
    fn format_text(&mut self, text: &str) {
        self.text.extend_from_slice(text.as_bytes());
    }

    /// The output of one conversion: traced, except `%S`, whose own escapes leave only
    /// printable ASCII (escaping it again would double its backslashes).
    fn converted(&mut self, spec: &Spec, bytes: &[u8]) {
        let start = self.text.len();
        self.text.extend_from_slice(bytes);
        self.traced_from(spec, start);
    }

    /// Marks what a conversion wrote from `start` on as traced (see `converted`).
    fn traced_from(&mut self, spec: &Spec, start: usize) {
        if self.text.len() > start && spec.conv != 'S' {
            self.traced.push(start..self.text.len());
        }
    }

    /// A conversion `format::plain` can write in place, written; false for the others.
    fn plain(&mut self, spec: &Spec, width: usize, precision: Option<usize>, arg: Arg<'_>) -> bool {
        let start = self.text.len();
        let done = format::plain(spec, width, precision, arg, &mut self.text);
        if done {
            self.traced_from(spec, start);
        }
        done
    }
}

/// The text of `printf(fmt, args…)`.
pub fn printf(fmt: &str, args: &[Typed]) -> Formatted {
    // Room for the usual line, so that it is made in one allocation.
    let mut out = Formatted {
        text: Vec::with_capacity(fmt.len() + 24 * args.len()),
        traced: Vec::with_capacity(args.len()),
    };
    let mut next = args.iter();
    for piece in format::parsed(fmt).iter() {
        match piece {
            Piece::Text(t) => out.format_text(t),
            Piece::Conv(spec) => {
                let mut star = || next.next().map_or(0, |a| a.value.int() as i64);
                let (spec, width, precision) = resolve(spec.clone(), &mut star);
                let Some(arg) = next.next() else { break };
                let plain = match &arg.value {
                    Value::Stack(_) => None,
                    v if arg.ty.is_string_like() && !matches!(v, Value::Int(_)) => {
                        Some(Arg::Str(string_of(v)))
                    }
                    v => Some(Arg::Int {
                        value: v.int(),
                        bits: bits(&arg.ty),
                        signed: is_signed(&arg.ty),
                    }),
                };
                if plain.is_some_and(|a| out.plain(&spec, width, precision, a)) {
                    continue;
                }
                let operand = match &arg.value {
                    Value::Stack(_) => Operand::Str(b""),
                    v if arg.ty.is_string_like() && !matches!(v, Value::Int(_)) => {
                        Operand::Str(string_of(v))
                    }
                    v => Operand::Int(Arg::Int {
                        value: v.int(),
                        bits: bits(&arg.ty),
                        signed: is_signed(&arg.ty),
                    }),
                };
                out.converted(&spec, &apply(&spec, width, precision, operand));
            }
        }
    }
    out
}

/// Reads `*` widths and precisions: a negative width means left-justified, as in C. A
/// precision applies only when it is above zero: libdtrace leaves `.0` (and a negative `*`
/// precision) out of the format it hands to printf.
fn resolve(mut spec: Spec, star: &mut impl FnMut() -> i64) -> (Spec, usize, Option<usize>) {
    let width = match spec.width {
        Some(Count::Fixed(w)) => w,
        Some(Count::Star) => {
            let w = star();
            if w < 0 {
                spec.minus = true;
            }
            usize::try_from(w.unsigned_abs()).unwrap_or(0)
        }
        None => 0,
    };
    let precision = match spec.precision {
        Some(Count::Fixed(p)) => Some(p),
        Some(Count::Star) => usize::try_from(star()).ok(),
        None => None,
    };
    (spec, width, precision.filter(|&p| p > 0))
}

/// Applies a conversion, with D's own: `%Y` formats a date, `%k` a stack.
fn apply(spec: &Spec, width: usize, precision: Option<usize>, operand: Operand<'_>) -> Vec<u8> {
    match (spec.conv, operand) {
        ('Y', Operand::Int(arg)) => {
            let ns = match arg {
                Arg::Int { value, .. } => value,
                Arg::Str(_) => 0,
            };
            format::string(spec, width, precision, format::date(ns).as_bytes())
        }
        (_, Operand::Int(arg)) => format::convert(spec, width, precision, arg),
        (_, Operand::Str(s)) => format::convert(spec, width, precision, Arg::Str(s)),
    }
}

/// The text of `printa(fmt, @a, …)` for one row: the keys and the aggregations' values.
pub fn printa_row(
    fmt: &str,
    funcs: &[AggFunc],
    keys: &[KeyPart],
    values: &[AggValue],
) -> Formatted {
    let mut out = Formatted::default();
    let mut next_key = keys.iter();
    // Each `%@` prints the next aggregation's value; those beyond the last aggregation print
    // the last one's again, as libdtrace does.
    let mut next_agg = 0;
    for piece in parse(fmt) {
        match piece {
            Piece::Text(t) => out.format_text(&t),
            Piece::Conv(spec) if spec.aggregation => {
                let mut star = || 0;
                let (spec, width, precision) = resolve(spec, &mut star);
                let i = next_agg.min(values.len().saturating_sub(1));
                next_agg += 1;
                let (Some(value), Some(func)) = (values.get(i), funcs.get(i)) else {
                    continue;
                };
                out.text
                    .extend(value_text(&spec, width, precision, value, *func));
            }
            Piece::Conv(spec) => {
                let mut star = || match next_key.next() {
                    Some(KeyPart::Int(v)) => *v,
                    Some(KeyPart::UInt(v)) => *v as i64,
                    _ => 0,
                };
                let (spec, width, precision) = resolve(spec, &mut star);
                let Some(key) = next_key.next() else { continue };
                let operand = match key {
                    KeyPart::Int(v) => Operand::Int(long(*v as u64, true)),
                    KeyPart::UInt(v) => Operand::Int(long(*v, false)),
                    KeyPart::Str(s) => Operand::Str(s),
                    KeyPart::Stack(_) => Operand::Str(b""),
                };
                out.converted(&spec, &apply(&spec, width, precision, operand));
            }
        }
    }
    out
}

fn long(value: u64, signed: bool) -> Arg<'static> {
    Arg::Int {
        value,
        bits: 64,
        signed,
    }
}

/// `%@`: a scalar as an integer; a distribution as the text the final print shows.
fn value_text(
    spec: &Spec,
    width: usize,
    precision: Option<usize>,
    value: &AggValue,
    func: AggFunc,
) -> Vec<u8> {
    let scalar = value.scalar();
    if let Some(v) = scalar {
        return format::convert(spec, width, precision, long(v as u64, true));
    }
    let snapshot = AggSnapshot {
        name: String::new(),
        func,
        key_sizes: Vec::new(),
        sort: crate::event::AggSort::default(),
        entries: vec![AggEntry {
            keys: Vec::new(),
            value: value.clone(),
        }],
    };
    let text = aggregation_text::render(&snapshot);
    let text = text.strip_prefix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\n').unwrap_or(text);
    format::string(spec, width, precision, text.as_bytes())
}

/// The number an aggregation's value prints as, unless it is a distribution.
#[cfg(test)]
mod tests {
    use super::*;

    fn int(v: i64) -> Typed {
        Typed {
            value: Value::Int(v as u64),
            ty: DType::INT,
        }
    }

    #[test]
    fn star_width_and_precision_come_from_arguments() {
        assert_eq!(printf("[%*d]", &[int(5), int(42)]).text, b"[   42]");
        assert_eq!(printf("[%*d]", &[int(-5), int(42)]).text, b"[42   ]");
        assert_eq!(printf("[%.*d]", &[int(4), int(42)]).text, b"[0042]");
        assert_eq!(printf("[%.*d]", &[int(-1), int(42)]).text, b"[42]");
        assert_eq!(printf("[%.0d]", &[int(0)]).text, b"[0]");
        assert_eq!(printf("100%%", &[]).text, b"100%");
    }

    #[test]
    fn string_conversions_are_bytes_and_marked_traced() {
        let name = || Typed {
            value: Value::str(b"a\nb\xff"),
            ty: DType::String,
        };
        let out = printf("open %-6s|%d|%S\n", &[name(), int(3), name()]);
        assert_eq!(out.text, b"open a\nb\xff  |3|a\\nb\\377\n");
        assert_eq!(out.traced, [5..11, 12..13], "%S is escaped already");
    }

    #[test]
    fn printa_formats_keys_then_values() {
        let row = printa_row(
            "%-6s %5d %@8d|%@d\n",
            &[AggFunc::Count, AggFunc::Avg],
            &[KeyPart::Str("cat".into()), KeyPart::Int(-3)],
            &[AggValue::Scalar(7), AggValue::Avg { count: 2, total: 9 }],
        );
        assert_eq!(row.text, b"cat       -3        7|4\n");
        assert_eq!(row.traced, [0..6, 7..12], "the keys, not the values");
        let row = printa_row("%@d %@d\n", &[AggFunc::Sum], &[], &[AggValue::Scalar(5)]);
        assert_eq!(row.text, b"5 5\n");
    }

    #[test]
    fn stddev_of_known_values() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, standard deviation 2.
        let stddev = |count, total, total_squares| {
            AggValue::Stddev {
                count,
                total,
                total_squares,
            }
            .scalar()
            .unwrap()
        };
        assert_eq!(stddev(8, 40, 232), 2);
        assert_eq!(stddev(0, 0, 0), 0);
        // 1 and 2: libdtrace's integer steps give 1 where the exact value is 0.5.
        assert_eq!(stddev(2, 3, 5), 1);
        assert_eq!(stddev(2, -3, 5), 1);
    }
}
