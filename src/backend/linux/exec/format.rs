//! D's printf conversions (parsed by `d::format`, the parser the checker uses too), done as
//! C's printf does them: flags (`- + space # 0`), widths, precisions, `*` taken from an
//! argument, and length modifiers accepted and ignored (D knows each argument's type, so `%d`
//! of a `char` and of a `long` both print right).
//!
//! Integers print as libdtrace prints them: at the size of their D type, `%d` signed or
//! unsigned as the type is, `%i` and `%c` signed, `%u %o %x %X` unsigned (so `%x` of a
//! `char` holding -1 is `ff`, not C's `ffffffff`), and `%p` as `%x` does.
//!
//! D adds its own conversions: `%S` (a string with C escapes), `%Y` (a walltimestamp as a
//! date), `%a` (a kernel symbol, printed here as its address: this engine has no symbol
//! table) and `%@` (an aggregation's value, in printa). D has no floating point; `%e %f %g`
//! print the integer argument as a double, as C would after a conversion.

use std::fmt::Write as _;

use crate::backend::linux::d::arith::extend;
use crate::backend::linux::d::format::{parse, Piece, Spec};
use crate::local_time::local_time;

/// An argument, as a conversion sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arg<'a> {
    /// An integer with the width and signedness of its D type.
    Int { value: u64, bits: u32, signed: bool },
    /// A string: bytes, printed as they are, as C's printf prints them.
    Str(&'a [u8]),
}

impl Arg<'_> {
    /// The integer as libdtrace's signed printer reads it: sign-extended from its size.
    fn as_signed(&self) -> i64 {
        match *self {
            Arg::Int { value, bits, .. } => extend(value, bits, true) as i64,
            Arg::Str(_) => 0,
        }
    }

    /// The integer as libdtrace's unsigned printer reads it: zero-extended from its size.
    fn as_unsigned(&self) -> u64 {
        match *self {
            Arg::Int { value, bits, .. } => extend(value, bits, false),
            Arg::Str(_) => 0,
        }
    }

    fn is_signed(&self) -> bool {
        matches!(self, Arg::Int { signed: true, .. })
    }

    fn as_f64(&self) -> f64 {
        if self.is_signed() {
            self.as_signed() as f64
        } else {
            self.as_unsigned() as f64
        }
    }
}

/// `parse(fmt)`, parsed once per format: a program's formats are few and fixed, and a busy
/// printf runs hundreds of thousands of times a second.
pub fn parsed(fmt: &str) -> std::rc::Rc<[Piece]> {
    thread_local! {
        static PARSED: std::cell::RefCell<std::collections::HashMap<String, std::rc::Rc<[Piece]>>> =
            std::cell::RefCell::default();
    }
    PARSED.with(|cache| {
        if let Some(pieces) = cache.borrow().get(fmt) {
            return pieces.clone();
        }
        let pieces: std::rc::Rc<[Piece]> = parse(fmt).into();
        cache.borrow_mut().insert(fmt.to_string(), pieces.clone());
        pieces
    })
}

/// Formats one argument. `width` and `precision` are resolved (a `*` already read); a
/// negative `*` width arrives as `minus` set on the spec. The result is bytes: `%s` and `%c`
/// print what they are given, which need not be UTF-8.
pub fn convert(spec: &Spec, width: usize, precision: Option<usize>, arg: Arg<'_>) -> Vec<u8> {
    match spec.conv {
        'c' => {
            let spaces = Spec {
                zero: false,
                ..spec.clone()
            };
            pad_bytes(&spaces, width, &[arg.as_signed() as u8])
        }
        's' | 'S' => {
            let text = match arg {
                Arg::Str(s) => s,
                Arg::Int { .. } => b"",
            };
            if spec.conv == 'S' {
                string(spec, width, precision, escape(text).as_bytes())
            } else {
                string(spec, width, precision, text)
            }
        }
        _ => number(spec, width, precision, arg).into_bytes(),
    }
}

/// The conversions printf runs most, `%d %i %u %s` with no flag, width or precision, written
/// straight onto `out` (no text of their own is made); false, with `out` unchanged, for every
/// other conversion, which `convert` makes.
pub fn plain(
    spec: &Spec,
    width: usize,
    precision: Option<usize>,
    arg: Arg<'_>,
    out: &mut Vec<u8>,
) -> bool {
    use std::io::Write as _;
    let flagged = spec.minus || spec.plus || spec.space || spec.alt || spec.zero;
    if flagged || width != 0 || precision.is_some() {
        return false;
    }
    // Writing to a Vec cannot fail.
    let _ = match (spec.conv, arg) {
        ('s', Arg::Str(s)) => out.write_all(s),
        ('d', a) if !a.is_signed() => write!(out, "{}", a.as_unsigned()),
        ('d' | 'i', a @ Arg::Int { .. }) => write!(out, "{}", a.as_signed()),
        ('u', a @ Arg::Int { .. }) => write!(out, "{}", a.as_unsigned()),
        _ => return false,
    };
    true
}

/// The conversions whose text is ASCII: integers, addresses and floating point.
fn number(spec: &Spec, width: usize, precision: Option<usize>, arg: Arg<'_>) -> String {
    match spec.conv {
        // `%d` follows the argument's signedness; `%i` is always signed.
        'd' if !arg.is_signed() => unsigned(spec, width, precision, arg.as_unsigned(), 10, ""),
        'd' | 'i' => signed(spec, width, precision, arg.as_signed()),
        'u' => unsigned(spec, width, precision, arg.as_unsigned(), 10, ""),
        'o' => unsigned(spec, width, precision, arg.as_unsigned(), 8, ""),
        'x' => unsigned(spec, width, precision, arg.as_unsigned(), 16, "0x"),
        'X' => unsigned(spec, width, precision, arg.as_unsigned(), 16, "0X"),
        // libdtrace prints `%p` as `%x` does.
        'p' => unsigned(spec, width, precision, arg.as_unsigned(), 16, "0x"),
        'a' | 'A' => {
            let hex = format!("0x{:x}", arg.as_unsigned());
            pad(spec, width, "", &hex)
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => float(spec, width, precision, arg.as_f64()),
        _ => String::new(),
    }
}

/// `%s`: the precision cuts the string (in bytes, as C does), the width pads it.
pub fn string(spec: &Spec, width: usize, precision: Option<usize>, text: &[u8]) -> Vec<u8> {
    let cut = match precision {
        Some(p) if p < text.len() => &text[..p],
        _ => text,
    };
    let spaces = Spec {
        zero: false,
        ..spec.clone()
    };
    pad_bytes(&spaces, width, cut)
}

/// Pads `body` with spaces to `width` bytes: on the right with `-`, else on the left.
fn pad_bytes(spec: &Spec, width: usize, body: &[u8]) -> Vec<u8> {
    let fill = width.saturating_sub(body.len());
    let mut out = Vec::with_capacity(body.len() + fill);
    if !spec.minus {
        out.resize(fill, b' ');
    }
    out.extend_from_slice(body);
    if spec.minus {
        out.resize(out.len() + fill, b' ');
    }
    out
}

/// Pads `prefix` + `body` to `width`: on the right with `-`, with zeros after the prefix
/// with `0`, else with spaces on the left.
fn pad(spec: &Spec, width: usize, prefix: &str, body: &str) -> String {
    // C counts bytes, not characters.
    let len = prefix.len() + body.len();
    let fill = width.saturating_sub(len);
    let mut out = String::with_capacity(len + fill);
    if spec.minus {
        out.push_str(prefix);
        out.push_str(body);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero {
        out.push_str(prefix);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(body);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(prefix);
        out.push_str(body);
    }
    out
}

fn sign(spec: &Spec, negative: bool) -> &'static str {
    if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

/// Digits with at least `precision` of them; none for 0 with precision 0, as in C.
fn digits(value: u64, radix: u32, upper: bool, precision: Option<usize>) -> String {
    if value == 0 && precision == Some(0) {
        return String::new();
    }
    let mut s = match radix {
        8 => format!("{value:o}"),
        16 if upper => format!("{value:X}"),
        16 => format!("{value:x}"),
        _ => value.to_string(),
    };
    if let Some(p) = precision {
        if s.len() < p {
            s.insert_str(0, &"0".repeat(p - s.len()));
        }
    }
    s
}

/// A spec whose `0` flag is dropped when a precision is given, as C does for integers.
fn integer_spec(spec: &Spec, precision: Option<usize>) -> Spec {
    Spec {
        zero: spec.zero && precision.is_none() && !spec.minus,
        ..spec.clone()
    }
}

fn signed(spec: &Spec, width: usize, precision: Option<usize>, v: i64) -> String {
    let body = digits(v.unsigned_abs(), 10, false, precision);
    pad(
        &integer_spec(spec, precision),
        width,
        sign(spec, v < 0),
        &body,
    )
}

fn unsigned(
    spec: &Spec,
    width: usize,
    precision: Option<usize>,
    v: u64,
    radix: u32,
    alt_prefix: &str,
) -> String {
    let mut body = digits(v, radix, spec.conv == 'X', precision);
    let mut prefix = "";
    if spec.alt {
        if radix == 8 && !body.starts_with('0') {
            body.insert(0, '0');
        } else if radix == 16 && v != 0 {
            prefix = alt_prefix;
        }
    }
    pad(&integer_spec(spec, precision), width, prefix, &body)
}

/// `%e`, `%f` and `%g` of a double, with C's exponent form (`e+05`) and `%g`'s choice
/// between the two and its removal of trailing zeros.
fn float(spec: &Spec, width: usize, precision: Option<usize>, x: f64) -> String {
    let p = precision.unwrap_or(6);
    let upper = spec.conv.is_ascii_uppercase();
    let mut body = match spec.conv.to_ascii_lowercase() {
        'e' => exponent_form(x.abs(), p, spec.alt),
        'g' => general_form(x.abs(), p, spec.alt),
        _ => fixed_form(x.abs(), p, spec.alt),
    };
    if upper {
        body = body.to_ascii_uppercase();
    }
    let negative = x.is_sign_negative() && x != 0.0;
    let zero_ok = Spec {
        zero: spec.zero && !spec.minus,
        ..spec.clone()
    };
    pad(&zero_ok, width, sign(spec, negative), &body)
}

fn fixed_form(x: f64, p: usize, alt: bool) -> String {
    let mut s = format!("{x:.p$}");
    if alt && p == 0 {
        s.push('.');
    }
    s
}

fn exponent_form(x: f64, p: usize, alt: bool) -> String {
    let s = format!("{x:.p$e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut out = mantissa.to_string();
    if alt && p == 0 {
        out.push('.');
    }
    let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    out
}

fn general_form(x: f64, p: usize, alt: bool) -> String {
    let p = p.max(1);
    let exp = if x == 0.0 {
        0
    } else {
        let s = format!("{x:.prec$e}", prec = p - 1);
        s.split_once('e')
            .and_then(|(_, e)| e.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let mut s = if exp < -4 || exp >= p as i64 {
        exponent_form(x, p - 1, alt)
    } else {
        fixed_form(x, (p as i64 - 1 - exp) as usize, alt)
    };
    if !alt {
        let (mantissa, tail) = match s.find('e') {
            Some(at) => s.split_at(at),
            None => (s.as_str(), ""),
        };
        if mantissa.contains('.') {
            let trimmed = mantissa.trim_end_matches('0').trim_end_matches('.');
            s = format!("{trimmed}{tail}");
        }
    }
    s
}

/// `%S`: the string with C escapes for quotes, backslashes and unprintable bytes.
pub fn escape(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s {
        match b {
            b'\x07' => out.push_str("\\a"),
            b'\x08' => out.push_str("\\b"),
            b'\x0c' => out.push_str("\\f"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'\x0b' => out.push_str("\\v"),
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out
}

/// `%Y`: nanoseconds since the epoch as `2026 Nov 24 10:15:03`, in local time, as
/// dtrace(1) prints it (strftime's `%Y %b %e %T`).
pub fn date(ns: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let Some(t) = i64::try_from(ns / 1_000_000_000).ok().and_then(local_time) else {
        return ns.to_string();
    };
    let month = (t.month as usize)
        .checked_sub(1)
        .and_then(|m| MONTHS.get(m))
        .copied()
        .unwrap_or("???");
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02}",
        t.year, month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::linux::d::format::Count;
    use std::ffi::CString;

    /// C's snprintf with one argument of the given kind.
    fn c_int(fmt: &str, v: i64) -> String {
        c_format(fmt, |buf, f| {
            // SAFETY: buf is 256 bytes long and snprintf writes at most that many; the format
            // takes exactly one long long.
            unsafe { libc::snprintf(buf, 256, f, v as libc::c_longlong) }
        })
    }

    fn c_double(fmt: &str, v: f64) -> String {
        c_format(fmt, |buf, f| {
            // SAFETY: as above, with one double argument.
            unsafe { libc::snprintf(buf, 256, f, v) }
        })
    }

    fn c_str(fmt: &str, s: &str) -> String {
        let arg = CString::new(s).unwrap();
        c_format(fmt, |buf, f| {
            // SAFETY: as above, with one NUL-terminated string argument.
            unsafe { libc::snprintf(buf, 256, f, arg.as_ptr()) }
        })
    }

    fn c_format(
        fmt: &str,
        call: impl Fn(*mut libc::c_char, *const libc::c_char) -> libc::c_int,
    ) -> String {
        let f = CString::new(fmt).unwrap();
        let mut buf = vec![0 as libc::c_char; 256];
        let n = call(buf.as_mut_ptr(), f.as_ptr());
        let bytes: Vec<u8> = buf[..n as usize].iter().map(|&c| c as u8).collect();
        String::from_utf8(bytes).unwrap()
    }

    fn ours(fmt: &str, arg: Arg<'_>) -> String {
        let mut out = Vec::new();
        for piece in parse(fmt) {
            match piece {
                Piece::Text(t) => out.extend_from_slice(t.as_bytes()),
                Piece::Conv(spec) => {
                    let width = match spec.width {
                        Some(Count::Fixed(w)) => w,
                        _ => 0,
                    };
                    let precision = match spec.precision {
                        Some(Count::Fixed(p)) => Some(p),
                        _ => None,
                    };
                    out.extend(convert(&spec, width, precision, arg));
                }
            }
        }
        String::from_utf8(out).unwrap()
    }

    fn long(v: i64) -> Arg<'static> {
        Arg::Int {
            value: v as u64,
            bits: 64,
            signed: true,
        }
    }

    #[test]
    fn integer_conversions_match_c() {
        let formats = [
            "%lld", "%lli", "%5lld", "%-5lld|", "%05lld", "%+lld", "% lld", "%.3lld", "%8.3lld",
            "%-08lld|", "%.0lld", "%llu", "%llx", "%llX", "%#llx", "%#llo", "%llo", "%#10llx",
            "%010llx", "%+05lld", "%#.0llo", "%#.5llx", "%#.0llx",
        ];
        for fmt in formats {
            for v in [0i64, 1, -1, 42, -42, 255, 65536, i64::MAX, i64::MIN] {
                let ours_fmt = fmt.replace("ll", "");
                assert_eq!(
                    ours(&ours_fmt, long(v)),
                    c_int(fmt, v),
                    "format {fmt} of {v}"
                );
            }
        }
    }

    #[test]
    fn narrow_types_print_at_their_width() {
        let int_minus_one = Arg::Int {
            value: u64::MAX,
            bits: 32,
            signed: true,
        };
        assert_eq!(ours("%u", int_minus_one), "4294967295");
        assert_eq!(ours("%x", int_minus_one), "ffffffff");
        assert_eq!(ours("%d", int_minus_one), "-1");
        let uchar = Arg::Int {
            value: 0xff,
            bits: 8,
            signed: false,
        };
        assert_eq!(ours("%d", uchar), "255");
        let char_minus_one = Arg::Int {
            value: u64::MAX,
            bits: 8,
            signed: true,
        };
        assert_eq!(ours("%d", char_minus_one), "-1");
        assert_eq!(ours("%x", char_minus_one), "ff");
        let uint_max = Arg::Int {
            value: 0xffff_ffff,
            bits: 32,
            signed: false,
        };
        assert_eq!(ours("%d", uint_max), "4294967295");
        assert_eq!(ours("%i", uint_max), "-1");
    }

    #[test]
    fn char_pointer_and_string_conversions() {
        for fmt in ["%c", "%3c", "%-3c|"] {
            assert_eq!(ours(fmt, long(65)), c_int(fmt, 65), "{fmt}");
        }
        assert_eq!(ours("%p", long(0x7fff1234)), "7fff1234");
        assert_eq!(ours("%#p", long(0x7fff1234)), c_int("%p", 0x7fff1234));
        for fmt in ["%s", "%10s", "%-10s|", "%.3s", "%10.2s", "%.0s|"] {
            for s in ["", "hello", "a longer string"] {
                assert_eq!(
                    ours(fmt, Arg::Str(s.as_bytes())),
                    c_str(fmt, s),
                    "{fmt} of {s:?}"
                );
            }
        }
    }

    #[test]
    fn floating_conversions_match_c() {
        let formats = [
            "%f", "%.2f", "%10.3f", "%-10.1f|", "%+f", "%#.0f", "%e", "%.3e", "%E", "%g", "%.3g",
            "%G", "%#g", "%10g", "%010.2f", "%.0e", "%.10g",
        ];
        for fmt in formats {
            for v in [0i64, 1, -1, 7, 100, 123456, 1234567, -98765432, 1 << 40] {
                assert_eq!(
                    ours(fmt, long(v)),
                    c_double(fmt, v as f64),
                    "format {fmt} of {v}"
                );
            }
        }
    }

    #[test]
    fn escaped_strings() {
        assert_eq!(escape(b"a\tb\n\"q\"\\\x01"), "a\\tb\\n\\\"q\\\"\\\\\\001");
        assert_eq!(ours("%S", Arg::Str(b"x\ny")), "x\\ny");
        assert_eq!(
            convert(
                &parse("%.2s")
                    .iter()
                    .find_map(|p| match p {
                        Piece::Conv(s) => Some(s.clone()),
                        Piece::Text(_) => None,
                    })
                    .unwrap(),
                0,
                Some(2),
                Arg::Str(b"\xff\xfe\xfd")
            ),
            b"\xff\xfe",
            "strings are bytes"
        );
    }

    #[test]
    fn dates_look_like_dtrace() {
        let text = date(1_795_000_000_000_000_000);
        let parts: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(parts.len(), 4, "{text}");
        assert_eq!(parts[0].len(), 4);
        assert_eq!(parts[3].len(), 8);
    }
}
