//! Tokens of D, as the lexer hands them to the parser. Punctuation is kept as its text so the
//! parser can match it directly (`"->"`, `"<<="`).

use super::ast::DType;
use super::span::Span;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    /// An integer or character constant, with the type its suffix and size give it.
    Int {
        value: u64,
        ty: DType,
    },
    Str(String),
    /// `@name`; the name is empty for the anonymous aggregation `@`.
    Agg(String),
    /// `#pragma D option name[=value]`.
    Pragma {
        name: String,
        value: Option<String>,
    },
    Punct(&'static str),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

impl Token {
    pub fn is(&self, punct: &str) -> bool {
        matches!(self.tok, Tok::Punct(p) if p == punct)
    }

    pub fn is_ident(&self, name: &str) -> bool {
        matches!(&self.tok, Tok::Ident(n) if n == name)
    }

    /// How the token reads in a message: "`}`", "identifier `foo`", "end of file".
    pub fn describe(&self) -> String {
        match &self.tok {
            Tok::Ident(n) => format!("identifier `{n}`"),
            Tok::Int { value, .. } => format!("integer `{value}`"),
            Tok::Str(_) => "string constant".to_string(),
            Tok::Agg(n) => format!("aggregation `@{n}`"),
            Tok::Pragma { .. } => "`#pragma`".to_string(),
            Tok::Punct(p) => format!("`{p}`"),
            Tok::Eof => "end of file".to_string(),
        }
    }
}

/// Multi-character operators first, so the lexer takes the longest match.
pub const PUNCTUATION: &[&str] = &[
    ">>=", "<<=", "->", "++", "--", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "^^", "+=",
    "-=", "*=", "/=", "%=", "&=", "^=", "|=", "+", "-", "*", "/", "%", "<", ">", "=", "!", "~",
    "&", "|", "^", "?", ":", ";", ",", ".", "(", ")", "[", "]", "{", "}",
];
