//! D's macros, substituted as the lexer meets them: `$target` (the traced process),
//! `$pid` and `$ppid` (dtk's own, as in dtrace(1)), `$1`…`$9` (an integer or an identifier)
//! and `$$1`…`$$9` (always a string). Unset arguments are errors unless
//! `#pragma D option defaultargs` makes them 0 and "".

use super::diagnostic::Diagnostic;
use super::lexer::{is_ident_char, is_ident_start, Lexer};
use super::literal::parse_integer;
use super::span::Span;
use super::token::{Tok, Token};

type LexResult<T> = Result<T, Diagnostic>;

impl Lexer<'_> {
    /// A macro in an expression: `$target`, `$pid`, `$ppid`, `$N` (an integer or an
    /// identifier) or `$$N` (always a string).
    pub(super) fn macro_token(&mut self) -> LexResult<Token> {
        let start = self.pos;
        let as_string = self.rest().starts_with("$$");
        self.pos += if as_string { 2 } else { 1 };
        let name = self.ident_text();
        let span = Span::new(start, self.pos);
        let value = self.macro_value(name, as_string, span)?;
        let tok = if as_string {
            Tok::Str(value)
        } else if let Ok(int) = parse_integer(&value) {
            int
        } else if !value.is_empty()
            && is_ident_start(value.as_bytes()[0])
            && value.bytes().all(is_ident_char)
        {
            Tok::Ident(value)
        } else {
            return Err(Diagnostic::error(
                span,
                format!(
                    "macro argument `{}` ({value:?}) is neither an integer nor an identifier; use `$${name}` for a string",
                    &self.src[start..self.pos]
                ),
            ));
        };
        Ok(Token { tok, span })
    }

    /// The text a macro stands for.
    fn macro_value(&self, name: &str, as_string: bool, span: Span) -> LexResult<String> {
        match name {
            "target" => self.macros.target.map(|t| t.to_string()).ok_or_else(|| {
                Diagnostic::error(
                    span,
                    "`$target` is used but no target process was given (-p PID or -c CMD)",
                )
            }),
            "pid" => Ok(std::process::id().to_string()),
            "ppid" => Ok(std::os::unix::process::parent_id().to_string()),
            _ => self.macro_argument(name, as_string, span),
        }
    }

    fn macro_argument(&self, name: &str, as_string: bool, span: Span) -> LexResult<String> {
        let index: usize = match name.parse() {
            Ok(n) if n >= 1 && name.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(Diagnostic::error(span, format!("unknown macro `${name}`"))),
        };
        match self.macros.args.get(index - 1) {
            Some(v) => {
                self.used_args[index - 1].set(true);
                Ok(v.clone())
            }
            None if self.defaultargs => Ok(if as_string { "" } else { "0" }.to_string()),
            None => Err(Diagnostic::error(
                span,
                format!(
                    "macro argument `${index}` is not defined: {} argument(s) given",
                    self.macros.args.len()
                ),
            )),
        }
    }

    /// As dtrace(1): an argument the program never refers to is an error (a mistyped
    /// command line), unless `defaultargs` is set.
    pub(super) fn check_unused_args(&self) -> LexResult<()> {
        if self.defaultargs {
            return Ok(());
        }
        match self.used_args.iter().position(|used| !used.get()) {
            Some(i) => Err(Diagnostic::error(
                Span::new(self.src.len(), self.src.len()),
                format!(
                    "extraneous argument {:?} (${} is not referenced)",
                    self.macros.args[i],
                    i + 1
                ),
            )),
            None => Ok(()),
        }
    }

    pub(super) fn macro_in_spec(&mut self) -> LexResult<String> {
        let start = self.pos;
        let as_string = self.rest().starts_with("$$");
        self.pos += if as_string { 2 } else { 1 };
        let name = self.ident_text();
        self.macro_value(name, as_string, Span::new(start, self.pos))
    }
}
