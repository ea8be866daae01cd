//! The D lexer: a cursor over the source that the parser drives one token at a time. The
//! parser can also ask for a probe description at the cursor (`probe_spec`), because D lexes
//! `syscall::open*:entry` differently from expressions. The script's arguments (`$1`, `$$1`)
//! and `$pid` are substituted here, by D's rules, so the parser never sees them; `$target`
//! is a placeholder whose value `macros::substitute_target` fills in after parsing.

use super::arith::normalize;
use super::ast::DType;
use super::diagnostic::Diagnostic;
use super::literal::parse_integer;
use super::span::Span;
use std::cell::Cell;

use super::token::{Tok, Token, PUNCTUATION};
use super::MacroArgs;

pub struct Lexer<'a> {
    pub(super) src: &'a str,
    pub(super) pos: usize,
    pub(super) macros: &'a MacroArgs,
    /// Set by `#pragma D option defaultargs`: unset `$N` become 0 and `$$N` "".
    pub(super) defaultargs: bool,
    /// Which macro arguments (`$1` is index 0) the program refers to.
    pub(super) used_args: Vec<Cell<bool>>,
    /// Where the program refers to `$target`, whose value is substituted after parsing
    /// (`macros::substitute_target`): the target process may not exist yet.
    pub(super) target_uses: Vec<Span>,
}

type LexResult<T> = Result<T, Diagnostic>;

pub(super) fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

pub(super) fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Characters of a probe description, as D's lexer accepts them.
fn is_probe_char(c: u8) -> bool {
    is_ident_char(c) || b"-$:.?*\\[]!`".contains(&c)
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str, macros: &'a MacroArgs) -> Lexer<'a> {
        Lexer {
            src,
            pos: 0,
            macros,
            defaultargs: macros.defaultargs,
            used_args: vec![Cell::new(false); macros.args.len()],
            target_uses: Vec::new(),
        }
    }

    /// Moves the cursor back to `pos` (a token start the parser saw), to re-lex from there.
    pub fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.src.len());
    }

    fn peek_byte(&self, ahead: usize) -> u8 {
        self.src
            .as_bytes()
            .get(self.pos + ahead)
            .copied()
            .unwrap_or(0)
    }

    pub(super) fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    /// Skips whitespace, comments and a `#!` interpreter line at the very start.
    fn skip_trivia(&mut self) -> LexResult<()> {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if self.pos == 0 && trimmed.starts_with("#!") {
                self.skip_line();
            } else if let Some(body) = trimmed.strip_prefix("/*") {
                let Some(end) = body.find("*/") else {
                    return Err(Diagnostic::error(
                        Span::new(self.pos, self.pos + 2),
                        "unterminated comment: `/*` has no closing `*/`",
                    )
                    .tagged("D_SYNTAX"));
                };
                self.pos += end + 4;
            } else if trimmed.starts_with("//") || is_foreign_pragma(trimmed) {
                self.skip_line();
            } else {
                return Ok(());
            }
        }
    }

    fn skip_line(&mut self) {
        self.pos = self
            .rest()
            .find('\n')
            .map_or(self.src.len(), |i| self.pos + i);
    }

    pub fn next_token(&mut self) -> LexResult<Token> {
        self.skip_trivia()?;
        let start = self.pos;
        let c = self.peek_byte(0);
        let tok = match c {
            0 if self.pos >= self.src.len() => Tok::Eof,
            b'#' => return self.directive(),
            b'$' => return self.macro_token(),
            b'"' => Tok::Str(self.string()?),
            b'\'' => self.char_constant()?,
            b'@' => {
                self.pos += 1;
                Tok::Agg(self.ident_text().to_string())
            }
            c if is_ident_start(c) => Tok::Ident(self.scoped_ident()),
            b'`' if is_ident_start(self.peek_byte(1)) => Tok::Ident(self.scoped_ident()),
            c if c.is_ascii_digit() => self.number()?,
            _ => self.punct()?,
        };
        Ok(Token {
            tok,
            span: Span::new(start, self.pos),
        })
    }

    pub(super) fn ident_text(&mut self) -> &'a str {
        let start = self.pos;
        while is_ident_char(self.peek_byte(0)) {
            self.pos += 1;
        }
        &self.src[start..self.pos]
    }

    /// A name, with its scope if it has one: ``mod`name`` or `` `name `` (a kernel symbol,
    /// or a type of a module, `D` being the program's own types).
    fn scoped_ident(&mut self) -> String {
        let mut text = String::new();
        if self.peek_byte(0) != b'`' {
            text.push_str(self.ident_text());
        }
        if self.peek_byte(0) == b'`' && is_ident_start(self.peek_byte(1)) {
            self.pos += 1;
            text.push('`');
            text.push_str(self.ident_text());
        }
        text
    }

    fn punct(&mut self) -> LexResult<Tok> {
        let rest = self.rest();
        if let Some(p) = PUNCTUATION.iter().find(|p| rest.starts_with(**p)) {
            self.pos += p.len();
            return Ok(Tok::Punct(p));
        }
        let ch = rest.chars().next().unwrap_or('\0');
        Err(Diagnostic::error(
            Span::new(self.pos, self.pos + ch.len_utf8()),
            format!("unexpected character '{}'", ch.escape_debug()),
        ))
    }

    /// `#pragma D option ...` becomes a token (other `#pragma`s are skipped as trivia); any
    /// other directive needs the C preprocessor, which dtk does not run.
    fn directive(&mut self) -> LexResult<Token> {
        let start = self.pos;
        self.skip_line();
        let span = Span::new(start, self.pos);
        let line = self.src[start + 1..self.pos].trim();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("pragma") => {}
            _ => {
                return Err(Diagnostic::error(
                    span,
                    format!(
                    "`#{}` is a C preprocessor directive: run the program with -C to preprocess it",
                    line.split_whitespace().next().unwrap_or("")
                ),
                )
                .tagged("D_PRAGCTL_INVAL"))
            }
        }
        match (words.next(), words.next()) {
            (Some("D"), Some("option")) => {}
            (Some("D"), other) => {
                return Err(Diagnostic::error(
                    span,
                    format!(
                        "unsupported `#pragma D {}`: dtk supports `#pragma D option`",
                        other.unwrap_or("")
                    ),
                )
                .tagged("D_PRAGMA_INVAL"))
            }
            _ => {
                return Err(
                    Diagnostic::error(span, "expected `#pragma D option name[=value]`")
                        .tagged("D_PRAGMA_MALFORM"),
                )
            }
        }
        let (Some(setting), None) = (words.next(), words.next()) else {
            return Err(Diagnostic::error(
                span,
                "expected one `name` or `name=value` after `#pragma D option`",
            )
            .tagged("D_PRAGMA_MALFORM"));
        };
        let (name, value) = match setting.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (setting.to_string(), None),
        };
        if name == "defaultargs" {
            self.defaultargs = true;
        }
        Ok(Token {
            tok: Tok::Pragma { name, value },
            span,
        })
    }

    fn number(&mut self) -> LexResult<Tok> {
        let start = self.pos;
        while is_ident_char(self.peek_byte(0)) {
            self.pos += 1;
        }
        let text = &self.src[start..self.pos];
        parse_integer(text)
            .map_err(|msg| Diagnostic::error(Span::new(start, self.pos), msg).tagged("D_INT_OFLOW"))
    }

    fn string(&mut self) -> LexResult<String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek_byte(0) {
                b'"' => {
                    self.pos += 1;
                    break;
                }
                b'\\' => out.push(self.escape()?),
                b'\n' | 0 if self.peek_byte(0) == b'\n' || self.pos >= self.src.len() => {
                    return Err(Diagnostic::error(
                        Span::new(start, self.pos),
                        "unterminated string constant",
                    )
                    .tagged("D_STR_NL"))
                }
                c => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn char_constant(&mut self) -> LexResult<Tok> {
        let start = self.pos;
        self.pos += 1;
        let value = match self.peek_byte(0) {
            b'\\' => self.escape()?,
            b'\'' | b'\n' => {
                return Err(Diagnostic::error(
                    Span::new(start, self.pos + 1),
                    "empty character constant",
                )
                .tagged("D_CHR_NULL"))
            }
            0 if self.pos >= self.src.len() => 0,
            c => {
                self.pos += 1;
                c
            }
        };
        if self.peek_byte(0) != b'\'' {
            return Err(Diagnostic::error(
                Span::new(start, self.pos),
                "character constant must hold one character and end with `'`",
            )
            .tagged("D_CHR_OFLOW"));
        }
        self.pos += 1;
        // A character constant is an int, as in C: sizeof('c') is 4.
        Ok(Tok::Int {
            value: normalize(u64::from(value), &DType::CHAR),
            ty: DType::INT,
        })
    }

    /// One escape sequence at the cursor (which is on the backslash).
    fn escape(&mut self) -> LexResult<u8> {
        let start = self.pos;
        self.pos += 1;
        let c = self.peek_byte(0);
        self.pos += 1;
        let simple = match c {
            b'n' => Some(b'\n'),
            b't' => Some(b'\t'),
            b'r' => Some(b'\r'),
            b'a' => Some(7),
            b'b' => Some(8),
            b'f' => Some(12),
            b'v' => Some(11),
            b'\\' | b'\'' | b'"' | b'?' => Some(c),
            _ => None,
        };
        if let Some(v) = simple {
            return Ok(v);
        }
        let (radix, max_digits, first) = match c {
            b'0'..=b'7' => (8, 3, Some(c)),
            b'x' => (16, 2, None),
            _ => {
                self.pos = self.pos.min(self.src.len());
                while !self.src.is_char_boundary(self.pos) {
                    self.pos += 1;
                }
                return Err(Diagnostic::error(
                    Span::new(start, self.pos),
                    "unknown escape sequence",
                )
                .tagged("D_SYNTAX"));
            }
        };
        let mut digits = String::new();
        if let Some(f) = first {
            digits.push(f as char);
        }
        while digits.len() < max_digits && (self.peek_byte(0) as char).is_digit(radix) {
            digits.push(self.peek_byte(0) as char);
            self.pos += 1;
        }
        u32::from_str_radix(&digits, radix)
            .ok()
            .and_then(|v| u8::try_from(v).ok())
            .ok_or_else(|| {
                Diagnostic::error(
                    Span::new(start, self.pos),
                    "escape sequence out of range for a character",
                )
                .tagged("D_SYNTAX")
            })
    }

    /// Whether the next item starts with a word that `is_decl_word` accepts (and is not the
    /// start of a probe description such as `int:::x`), or with a `#` directive, or is the end
    /// of input: then the parser reads it with ordinary tokens.
    pub fn at_declaration(&mut self, is_decl_word: impl Fn(&str) -> bool) -> LexResult<bool> {
        self.skip_trivia()?;
        let rest = self.rest();
        if rest.is_empty() || rest.starts_with('#') {
            return Ok(true);
        }
        let len = rest.bytes().take_while(|&b| is_ident_char(b)).count();
        let next = rest.as_bytes().get(len).copied().unwrap_or(b' ');
        Ok(len > 0 && is_decl_word(&rest[..len]) && !is_probe_char(next))
    }

    /// Consumes `c` if it is the next character after trivia.
    pub fn eat_char(&mut self, c: u8) -> LexResult<bool> {
        self.skip_trivia()?;
        let found = self.peek_byte(0) == c;
        if found {
            self.pos += 1;
        }
        Ok(found)
    }

    /// The token after the cursor, without moving the cursor.
    pub fn lookahead(&mut self) -> LexResult<Token> {
        let save = self.pos;
        let token = self.next_token();
        self.pos = save;
        token
    }

    /// A probe description at the cursor, with its macros expanded; `None` at end of input.
    pub fn probe_spec(&mut self) -> LexResult<Option<(String, Span)>> {
        self.skip_trivia()?;
        let start = self.pos;
        let mut text = String::new();
        while is_probe_char(self.peek_byte(0)) {
            if self.peek_byte(0) == b'$' {
                let m = self.macro_in_spec()?;
                text.push_str(&m);
            } else {
                text.push(self.peek_byte(0) as char);
                self.pos += 1;
            }
        }
        if self.pos == start {
            return Ok(None);
        }
        Ok(Some((text, Span::new(start, self.pos))))
    }
}

/// A `#pragma` not meant for D (such as `#pragma ident`): D ignores these, so they are
/// skipped like comments.
fn is_foreign_pragma(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('#') else {
        return false;
    };
    let mut words = rest.split_whitespace();
    words.next() == Some("pragma") && words.next() != Some("D")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex_all(src: &str) -> Result<Vec<Tok>, Diagnostic> {
        let macros = MacroArgs {
            target: Some(42),
            args: vec!["7".into(), "open".into(), "a b".into()],
            ..MacroArgs::default()
        };
        let mut lexer = Lexer::new(src, &macros);
        let mut out = Vec::new();
        loop {
            let t = lexer.next_token()?;
            if t.tok == Tok::Eof {
                return Ok(out);
            }
            out.push(t.tok);
        }
    }

    #[test]
    fn macros_substitute_by_kind() {
        // `$target` is a placeholder here, filled in after parsing (macros.rs tests it).
        let toks = lex_all("$target $1 $2 $$1").unwrap();
        assert_eq!(
            toks[0],
            Tok::Int {
                value: 0,
                ty: DType::INT
            }
        );
        assert_eq!(
            toks[1],
            Tok::Int {
                value: 7,
                ty: DType::INT
            }
        );
        assert_eq!(toks[2], Tok::Ident("open".into()));
        assert_eq!(toks[3], Tok::Str("7".into()));
        assert!(lex_all("$3").is_err());
        assert!(lex_all("$4").is_err());
    }

    #[test]
    fn strings_and_chars_decode_escapes() {
        let toks = lex_all(r#""a\tb\x41\101\n" '\0' 'z'"#).unwrap();
        assert_eq!(toks[0], Tok::Str("a\tbAA\n".into()));
        assert_eq!(
            toks[1],
            Tok::Int {
                value: 0,
                ty: DType::INT
            }
        );
        assert_eq!(
            toks[2],
            Tok::Int {
                value: b'z'.into(),
                ty: DType::INT
            }
        );
        assert!(lex_all("\"abc").is_err());
        assert!(lex_all("'ab'").is_err());
    }

    #[test]
    fn pragmas_and_comments() {
        let toks = lex_all("#!/usr/sbin/dtrace -s\n/* c */ #pragma D option bufsize=4m\n// x\n#pragma ident \"x\"\n+").unwrap();
        assert_eq!(
            toks,
            vec![
                Tok::Pragma {
                    name: "bufsize".into(),
                    value: Some("4m".into())
                },
                Tok::Punct("+")
            ]
        );
        assert!(lex_all("#include <x.h>").is_err());
        assert!(lex_all("/* open").is_err());
    }
}
