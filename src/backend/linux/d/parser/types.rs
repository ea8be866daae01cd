//! D type names: the integer types and their typedefs, `string`, `void`, `struct`/`union`
//! names and pointers to any of them, as they appear in declarations, casts and `sizeof`.

use super::{PResult, Parser};
use crate::backend::linux::d::ast::DType;
use crate::backend::linux::d::diagnostic::Diagnostic;
use crate::backend::linux::d::token::{Tok, Token};

/// Typedef names D knows, with their LP64 meaning.
const TYPEDEFS: &[(&str, u8, bool)] = &[
    ("int8_t", 8, true),
    ("int16_t", 16, true),
    ("int32_t", 32, true),
    ("int64_t", 64, true),
    ("uint8_t", 8, false),
    ("uint16_t", 16, false),
    ("uint32_t", 32, false),
    ("uint64_t", 64, false),
    ("size_t", 64, false),
    ("ssize_t", 64, true),
    ("uintptr_t", 64, false),
    ("intptr_t", 64, true),
    ("pid_t", 32, true),
    ("uid_t", 32, false),
    ("gid_t", 32, false),
    ("off_t", 64, true),
    ("time_t", 64, true),
    ("hrtime_t", 64, true),
    ("uchar_t", 8, false),
    ("ushort_t", 16, false),
    ("uint_t", 32, false),
    ("ulong_t", 64, false),
];

/// Words that begin a type.
const TYPE_WORDS: &[&str] = &[
    "char", "short", "int", "long", "signed", "unsigned", "void", "string", "struct", "union",
    "const", "volatile",
];

pub fn is_type_word(word: &str) -> bool {
    TYPE_WORDS.contains(&word) || TYPEDEFS.iter().any(|(n, _, _)| *n == word)
}

/// Words that begin a top-level declaration.
pub fn starts_declaration(word: &str) -> bool {
    is_type_word(word) || matches!(word, "inline" | "self" | "this")
}

pub fn starts_type(token: &Token) -> bool {
    matches!(&token.tok, Tok::Ident(w) if is_type_word(w))
}

impl Parser<'_> {
    pub(super) fn parse_type(&mut self) -> PResult<DType> {
        let mut ty = self.base_type()?;
        while self.eat("*")? {
            ty = DType::Pointer(Box::new(ty));
        }
        Ok(ty)
    }

    fn base_type(&mut self) -> PResult<DType> {
        while self.peek()?.is_ident("const") || self.peek()?.is_ident("volatile") {
            self.bump()?;
        }
        let token = self.bump()?;
        let Tok::Ident(word) = &token.tok else {
            return Err(expected_type(&token));
        };
        if let Some((_, bits, signed)) = TYPEDEFS.iter().find(|(n, _, _)| n == word) {
            return Ok(DType::Int {
                bits: *bits,
                signed: *signed,
            });
        }
        match word.as_str() {
            "void" => Ok(DType::Void),
            "string" => Ok(DType::String),
            "struct" | "union" => {
                let union = word == "union";
                let (name, span) = self.expect_ident("a struct or union name")?;
                if self.at("{")? {
                    return Err(Diagnostic::error(
                        span,
                        "struct and union definitions are not supported; use the type by name",
                    ));
                }
                Ok(DType::Record { union, name })
            }
            "signed" | "unsigned" => {
                let signed = word == "signed";
                let bits = if self.peek_integer_word()? {
                    let word = self.expect_ident("an integer type")?.0;
                    self.integer_bits(&word)?
                } else {
                    32
                };
                Ok(DType::Int { bits, signed })
            }
            "char" | "short" | "int" | "long" => Ok(DType::Int {
                bits: self.integer_bits(word)?,
                signed: true,
            }),
            _ => Err(expected_type(&token)),
        }
    }

    fn peek_integer_word(&mut self) -> PResult<bool> {
        let t = self.peek()?;
        Ok(["char", "short", "int", "long"]
            .iter()
            .any(|w| t.is_ident(w)))
    }

    /// Width of `char`, `short`, `int`, `long`, `long long` (with an optional trailing
    /// `int`), the first word already consumed.
    fn integer_bits(&mut self, first: &str) -> PResult<u8> {
        let bits = match first {
            "char" => return Ok(8),
            "short" => 16,
            "int" => return Ok(32),
            _ => {
                if self.peek()?.is_ident("long") {
                    self.bump()?;
                }
                64
            }
        };
        if self.peek()?.is_ident("int") {
            self.bump()?;
        }
        Ok(bits)
    }
}

fn expected_type(token: &Token) -> Diagnostic {
    Diagnostic::error(
        token.span,
        format!("expected a type, found {}", token.describe()),
    )
}
