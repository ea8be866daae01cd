//! Integer constants as C writes them: decimal, octal and hex, with `u`/`l`/`ll` suffixes,
//! typed as C types them (the first of int, unsigned int, long, unsigned long that holds the
//! value, as the base and suffix allow).

use super::ast::DType;
use super::token::Tok;

/// Parses a C integer constant with an optional `u`/`l`/`ll` suffix, and gives it the first
/// of C's types that holds its value.
pub fn parse_integer(text: &str) -> Result<Tok, String> {
    let is_hex = text.starts_with("0x") || text.starts_with("0X");
    let body_start = if is_hex { 2 } else { 0 };
    let digits_end = text[body_start..]
        .find(|c: char| !(c.is_ascii_hexdigit() && (is_hex || c.is_ascii_digit())))
        .map_or(text.len(), |i| i + body_start);
    let (digits, suffix) = text.split_at(digits_end);
    let (radix, body) = if is_hex {
        (16, &digits[2..])
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    let value = u64::from_str_radix(body, radix).map_err(|e| {
        if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) {
            format!("integer constant `{text}` is too large for 64 bits")
        } else {
            format!("invalid integer constant `{text}`")
        }
    })?;
    let lower = suffix.to_ascii_lowercase();
    let (unsigned, long) = match lower.as_str() {
        "" => (false, false),
        "u" => (true, false),
        "l" | "ll" => (false, true),
        "ul" | "ull" | "lu" | "llu" => (true, true),
        _ => return Err(format!("invalid suffix `{suffix}` on integer constant")),
    };
    let candidates: &[(u8, bool)] = match (unsigned, long, radix == 10) {
        (false, false, true) => &[(32, true), (64, true), (64, false)],
        (false, false, false) => &[(32, true), (32, false), (64, true), (64, false)],
        (true, false, _) => &[(32, false), (64, false)],
        (false, true, true) => &[(64, true), (64, false)],
        (false, true, false) => &[(64, true), (64, false)],
        (true, true, _) => &[(64, false)],
    };
    let (bits, signed) = candidates
        .iter()
        .copied()
        .find(|&(bits, signed)| {
            let limit = if signed { bits - 1 } else { bits };
            limit >= 64 || value < (1u64 << limit)
        })
        .unwrap_or((64, false));
    Ok(Tok::Int {
        value,
        ty: DType::Int { bits, signed },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_take_c_types() {
        let int = |s| parse_integer(s).unwrap();
        assert_eq!(
            int("10"),
            Tok::Int {
                value: 10,
                ty: DType::INT
            }
        );
        assert_eq!(
            int("0xffffffff"),
            Tok::Int {
                value: 0xffff_ffff,
                ty: DType::Int {
                    bits: 32,
                    signed: false
                }
            }
        );
        assert_eq!(
            int("010"),
            Tok::Int {
                value: 8,
                ty: DType::INT
            }
        );
        assert_eq!(
            int("5ull"),
            Tok::Int {
                value: 5,
                ty: DType::ULONG
            }
        );
        assert!(parse_integer("09").is_err());
        assert!(parse_integer("5q").is_err());
        assert!(parse_integer("99999999999999999999").is_err());
    }
}
