//! printf() and printa() formats: the one parser, used by the checker (which validates a
//! format and types its arguments) and by the executor (which applies it). A format is text
//! and `%` conversions: flags (`- + space # 0 '`, and `@` for printa's aggregation value),
//! a width and a precision (digits or `*`), length modifiers (accepted and ignored: D knows
//! each argument's type) and the conversion character.

use std::ops::Range;

/// The conversion characters D accepts.
const CONVERSIONS: &str = "diouxXcsSpaAYkeEfgG";

/// One piece of a format: literal text or a conversion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Conv(Spec),
}

/// Where a width or precision comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    Fixed(usize),
    /// `*`: the next argument.
    Star,
}

/// One `%` conversion.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spec {
    pub minus: bool,
    pub plus: bool,
    pub space: bool,
    pub alt: bool,
    pub zero: bool,
    /// `%@d`: prints the aggregation's value (printa only).
    pub aggregation: bool,
    pub width: Option<Count>,
    pub precision: Option<Count>,
    pub conv: char,
    /// Where the conversion is in the format, from its `%`: what messages quote.
    pub at: Range<usize>,
}

impl Spec {
    /// How many arguments its `*` width and precision take.
    pub fn stars(&self) -> usize {
        [self.width, self.precision]
            .iter()
            .filter(|c| **c == Some(Count::Star))
            .count()
    }
}

/// The conversions of a format, or why it is not one D accepts: an unknown conversion, or a
/// format that ends inside a conversion.
pub fn conversions(fmt: &str) -> Result<Vec<Spec>, String> {
    let (pieces, cut) = split(fmt);
    let mut out = Vec::new();
    for piece in pieces {
        let Piece::Conv(spec) = piece else { continue };
        if !CONVERSIONS.contains(spec.conv) {
            let text = &fmt[spec.at.clone()];
            return Err(format!("unknown conversion `{}`", text.escape_debug()));
        }
        out.push(spec);
    }
    match cut {
        Some(start) => Err(format!(
            "the format ends inside the conversion `{}`",
            &fmt[start..]
        )),
        None => Ok(out),
    }
}

/// Splits a format into text and conversions. `%%` is text. The checker has validated the
/// format; a conversion cut short at the end is kept as text.
pub fn parse(fmt: &str) -> Vec<Piece> {
    split(fmt).0
}

/// Splits a format into text and conversions, and says where a conversion cut short at the
/// end (kept as text) starts.
fn split(fmt: &str) -> (Vec<Piece>, Option<usize>) {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut cut = None;
    let mut rest = fmt;
    while let Some(at) = rest.find('%') {
        text.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("%%") {
            text.push('%');
            rest = after;
            continue;
        }
        let start = fmt.len() - rest.len();
        match parse_spec(&rest[1..]) {
            Some((mut spec, used)) => {
                spec.at = start..start + 1 + used;
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Conv(spec));
                rest = &rest[1 + used..];
            }
            None => {
                cut = Some(start);
                text.push_str(rest);
                rest = "";
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    (pieces, cut)
}

/// Parses what follows a `%`; returns the spec and the bytes it used.
fn parse_spec(s: &str) -> Option<(Spec, usize)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut spec = Spec::default();
    while let Some(&c) = bytes.get(i) {
        match c {
            b'-' => spec.minus = true,
            b'+' => spec.plus = true,
            b' ' => spec.space = true,
            b'#' => spec.alt = true,
            b'0' => spec.zero = true,
            b'@' => spec.aggregation = true,
            b'\'' => {}
            _ => break,
        }
        i += 1;
    }
    spec.width = parse_count(bytes, &mut i);
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        spec.precision = Some(parse_count(bytes, &mut i).unwrap_or(Count::Fixed(0)));
    }
    while bytes.get(i).is_some_and(|c| b"hlLzjt".contains(c)) {
        i += 1;
    }
    let conv = s[i..].chars().next()?;
    spec.conv = conv;
    Some((spec, i + conv.len_utf8()))
}

fn parse_count(bytes: &[u8], i: &mut usize) -> Option<Count> {
    if bytes.get(*i) == Some(&b'*') {
        *i += 1;
        return Some(Count::Star);
    }
    let start = *i;
    while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
        *i += 1;
    }
    let digits = std::str::from_utf8(&bytes[start..*i]).ok()?;
    digits.parse().ok().map(Count::Fixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_split_into_text_and_conversions() {
        let pieces = parse("a%%b %-*.*d %@8u%");
        assert_eq!(pieces.len(), 5, "{pieces:?}");
        assert_eq!(pieces[0], Piece::Text("a%b ".into()));
        let Piece::Conv(star) = &pieces[1] else {
            panic!("{pieces:?}")
        };
        assert_eq!(star.width, Some(Count::Star));
        assert_eq!(star.precision, Some(Count::Star));
        assert!(star.minus);
        let Piece::Conv(agg) = &pieces[3] else {
            panic!("{pieces:?}")
        };
        assert!(agg.aggregation);
        assert_eq!(agg.width, Some(Count::Fixed(8)));
        assert_eq!(pieces[4], Piece::Text("%".into()));
    }
}
