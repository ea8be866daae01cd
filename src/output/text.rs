//! Traced text made safe to show. A traced program chooses its file names, its process name
//! and its function names, so their bytes must not reach a terminal as they are: a newline
//! forges an output line, and ESC or OSC sequences recolour the screen, set the window title
//! or clear it. Text output shows such bytes as visible escapes, on terminals and in pipes
//! alike (as `ls` and ripgrep show names); JSON keeps the exact bytes.
//!
//! The escapes, chosen so that the shown form maps back to exactly one byte string:
//! - `\\` for a backslash, `\n`, `\t` and `\r` for those controls;
//! - `\xNN` (two lowercase hex digits) for any other C0 control byte, for DEL, and for each
//!   byte that is not part of valid UTF-8;
//! - `\u{NNNN}` for a valid character that moves or hides text: the C1 controls
//!   (U+0080–U+009F; a terminal may read U+009B as CSI), the line and paragraph separators,
//!   and the bidirectional formatting characters that reorder a line (U+061C, U+200E, U+200F,
//!   U+202A–U+202E, U+2066–U+2069).
//!
//! Everything else, printable ASCII and UTF-8 alike, is shown as it is. Escaping happens
//! before any colouring, so the colour codes dtk adds are the only ones on the line.
//!
//! JSON strings are valid UTF-8 by definition; a traced string that is not is written as
//! `{"bytes":"<base64>"}` (standard alphabet, with padding), the form ripgrep's JSON output uses.
//!
//! The event model's traced strings ([`ByteString`]), probe names ([`ProbeDesc`]) and printf
//! output ([`Printf`]) are shown through the impls here, so that the event model itself knows
//! nothing of presentation.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::ops::Range;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::event::{ByteString, Printf, ProbeDesc};

/// `bytes` as text output shows them: unchanged when nothing needs an escape.
pub fn escape(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(needs_escape) => Cow::Borrowed(s),
        _ => {
            let mut out = String::with_capacity(bytes.len() + 8);
            push_escaped(&mut out, bytes);
            Cow::Owned(out)
        }
    }
}

/// Appends `bytes`, escaped, to `out`.
pub fn push_escaped(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_ascii_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if needs_escape(c) => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// The text of `bytes` where only the byte ranges in `traced` (sorted, not overlapping) are
/// escaped: D's printf output, whose format text (its own `\n`) is the program's, while the
/// values it formats are the traced process's.
pub fn escape_ranges(bytes: &[u8], traced: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut at = 0;
    for r in traced {
        let (start, end) = (r.start.clamp(at, bytes.len()), r.end.min(bytes.len()));
        out.push_str(&String::from_utf8_lossy(&bytes[at..start]));
        if start < end {
            push_escaped(&mut out, &bytes[start..end]);
        }
        at = end.max(start);
    }
    out.push_str(&String::from_utf8_lossy(&bytes[at..]));
    out
}

impl fmt::Display for ByteString {
    /// The escaped text; width and alignment (`{:<16}`) apply to what is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&escape(self.as_bytes()))
    }
}

impl Serialize for ByteString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.to_str() {
            Some(s) => serializer.serialize_str(s),
            None => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("bytes", &base64(self.as_bytes()))?;
                map.end()
            }
        }
    }
}

impl fmt::Display for ProbeDesc {
    /// The four names, escaped: a USDT or pid probe takes its names from the traced binary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = |s: &str| escape(s.as_bytes()).into_owned();
        write!(
            f,
            "{}:{}:{}:{}",
            e(&self.provider),
            e(&self.module),
            e(&self.function),
            e(&self.name)
        )
    }
}

impl Printf {
    /// The text as text output shows it: traced values escaped, the format's text as it is.
    pub fn display(&self) -> String {
        escape_ranges(&self.text, &self.traced)
    }
}

/// Whether a character is shown as an escape.
fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Standard base64 (RFC 4648, with padding): the JSON form of bytes that are not UTF-8.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Origin;
    use std::sync::Arc;

    #[test]
    fn byte_strings_are_json_strings_when_utf8_and_base64_when_not() {
        let utf8 = ByteString::from("a\n\u{1b}é");
        assert_eq!(serde_json::to_string(&utf8).unwrap(), r#""a\n\u001bé""#);
        let raw = ByteString::from(&b"x\xff\xfe"[..]);
        assert_eq!(serde_json::to_string(&raw).unwrap(), r#"{"bytes":"eP/+"}"#);
    }

    #[test]
    fn byte_strings_display_escaped_and_padded() {
        let name = ByteString::from(&b"a\x1b[2J\xff"[..]);
        assert_eq!(format!("{name:<14}|"), "a\\x1b[2J\\xff  |");
        assert_eq!(
            name.as_bytes(),
            b"a\x1b[2J\xff",
            "the bytes themselves are kept"
        );
    }

    #[test]
    fn printf_shows_traced_values_escaped_and_its_format_as_is() {
        let p = Printf {
            origin: Origin {
                probe: Arc::new(ProbeDesc::default()),
                cpu: 0,
                ts_ns: 0,
            },
            text: ByteString::from(&b"open a\nb\x1b 3\n"[..]),
            traced: vec![5..9, 10..11],
            args: Vec::new(),
            printa: None,
        };
        assert_eq!(p.display(), "open a\\nb\\x1b 3\n");
    }

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(
            escape("/var/www/index.html".as_bytes()),
            Cow::Borrowed("/var/www/index.html")
        ));
        assert_eq!(escape("café ☕ 日本".as_bytes()), "café ☕ 日本");
    }

    #[test]
    fn controls_and_backslash_are_escaped() {
        assert_eq!(escape(b"a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(
            escape(b"\x1b[2J\x1b]0;owned\x07"),
            "\\x1b[2J\\x1b]0;owned\\x07"
        );
        assert_eq!(escape(b"\x00\x7f"), "\\x00\\x7f");
        assert_eq!(
            escape(b"a\\nb"),
            "a\\\\nb",
            "a backslash cannot pass for an escape"
        );
    }

    #[test]
    fn invalid_utf8_is_escaped_byte_by_byte() {
        assert_eq!(escape(b"\xff\xfe"), "\\xff\\xfe");
        assert_eq!(escape(b"ok\xc3"), "ok\\xc3", "a cut sequence");
        assert_eq!(escape("é".as_bytes()), "é");
    }

    #[test]
    fn unicode_controls_that_move_text_are_escaped() {
        assert_eq!(escape("\u{9b}2J".as_bytes()), "\\u{9b}2J", "C1 CSI");
        assert_eq!(escape("a\u{202e}b".as_bytes()), "a\\u{202e}b");
        assert_eq!(escape("a\u{2028}b".as_bytes()), "a\\u{2028}b");
    }

    /// Reads an escaped form back, to show that it names exactly one byte string.
    fn unescape(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            rest = &rest[c.len_utf8()..];
            if c != '\\' {
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
            let kind = rest.as_bytes()[0];
            rest = &rest[1..];
            match kind {
                b'\\' => out.push(b'\\'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'x' => {
                    out.push(u8::from_str_radix(&rest[..2], 16).unwrap());
                    rest = &rest[2..];
                }
                b'u' => {
                    let end = rest.find('}').unwrap();
                    let c = char::from_u32(u32::from_str_radix(&rest[1..end], 16).unwrap());
                    out.extend_from_slice(c.unwrap().encode_utf8(&mut [0; 4]).as_bytes());
                    rest = &rest[end + 1..];
                }
                other => panic!("unknown escape {other}"),
            }
        }
        out
    }

    #[test]
    fn every_byte_string_round_trips_and_shows_no_control() {
        let mut cases: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b, b'x', b]).collect();
        cases.push("\\x41 \u{85}\u{2066}é\n".as_bytes().to_vec());
        cases.push(b"\xe2\x80".to_vec());
        for bytes in cases {
            let shown = escape(&bytes);
            assert!(
                !shown.chars().any(|c| c.is_control()),
                "{bytes:?} shown as {shown:?}"
            );
            assert_eq!(unescape(&shown), bytes, "{shown:?}");
        }
    }

    #[test]
    fn only_traced_ranges_are_escaped() {
        let text = b"open \x1b[31m\n -> 3\n";
        assert_eq!(
            escape_ranges(text, &[5..11, 15..16]),
            "open \\x1b[31m\\n -> 3\n"
        );
        assert_eq!(escape_ranges(b"a\nb", &[]), "a\nb");
        assert_eq!(escape_ranges(b"ab", &[0..0, 1..9]), "ab");
    }

    #[test]
    fn base64_matches_rfc_4648() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"\xff\xfe", "//4="),
        ];
        for (bytes, want) in cases {
            assert_eq!(base64(bytes), want);
        }
    }
}
