//! D type names: the integer types and their typedefs, `string`, `void`, structs, unions and
//! enums (defined in place or by name), the program's typedefs, pointers and arrays, as they
//! appear in declarations, casts, `sizeof` and `offsetof`. Definitions go into the parser's
//! `TypeTable`.

use super::{PResult, Parser};
use crate::backend::linux::d::arith;
use crate::backend::linux::d::ast::{DType, Expr, ExprKind};
use crate::backend::linux::d::diagnostic::Diagnostic;
use crate::backend::linux::d::span::Span;
use crate::backend::linux::d::token::{Tok, Token};
use crate::backend::linux::d::typetable::MemberDecl;

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
    "enum", "const", "volatile",
];

/// D's own type words and typedefs (the program's own typedefs are in its `TypeTable`).
pub fn is_type_word(word: &str) -> bool {
    TYPE_WORDS.contains(&word) || TYPEDEFS.iter().any(|(n, _, _)| *n == word)
}

/// Words that begin a top-level declaration, besides the program's typedef names.
pub fn starts_declaration(word: &str) -> bool {
    is_type_word(word) || matches!(word, "inline" | "self" | "this" | "typedef" | "extern")
}

impl Parser<'_> {
    /// Whether `token` begins a type: a type word, or a typedef the program declared.
    pub(super) fn starts_type(&self, token: &Token) -> bool {
        matches!(&token.tok, Tok::Ident(w) if is_type_word(unscoped(w)) || self.types.typedef(unscoped(w)).is_some())
    }

    /// Whether the token after the next one begins a type (as in `(int)` or `[string]`).
    pub(super) fn type_follows(&mut self) -> PResult<bool> {
        let next = self.lexer.lookahead()?;
        Ok(self.starts_type(&next))
    }

    /// A type name as casts, `sizeof`, `offsetof` and key types write it: a base type and
    /// any `*`s.
    pub(super) fn parse_type(&mut self) -> PResult<DType> {
        let ty = self.base_type()?;
        self.pointers(ty)
    }

    pub(super) fn pointers(&mut self, mut ty: DType) -> PResult<DType> {
        while self.eat("*")? {
            ty = DType::Pointer(Box::new(ty));
        }
        Ok(ty)
    }

    /// `[N]` after a declarator's name, any number of times: `int a[2][3]` is two arrays of
    /// three ints.
    pub(super) fn array_suffix(&mut self, ty: DType) -> PResult<DType> {
        let mut dims = Vec::new();
        while self.eat("[")? {
            let size = self.expr()?;
            let n = self.const_int(&size).filter(|&n| n > 0).ok_or_else(|| {
                Diagnostic::error(size.span, "array size must be a positive integer constant")
            })?;
            self.expect("]")?;
            dims.push(n as u64);
        }
        Ok(dims
            .into_iter()
            .rev()
            .fold(ty, |ty, n| DType::Array(Box::new(ty), n)))
    }

    /// The base type of a declaration, cast or member: a type word sequence, a typedef name,
    /// or a struct, union or enum, which may be defined here.
    pub(super) fn base_type(&mut self) -> PResult<DType> {
        while self.peek()?.is_ident("const") || self.peek()?.is_ident("volatile") {
            self.bump()?;
        }
        let token = self.bump()?;
        let Tok::Ident(word) = &token.tok else {
            return Err(expected_type(&token));
        };
        let word = unscoped(word);
        if let Some((_, bits, signed)) = TYPEDEFS.iter().find(|(n, _, _)| *n == word) {
            return Ok(DType::Int {
                bits: *bits,
                signed: *signed,
            });
        }
        if let Some(ty) = self.types.typedef(word) {
            return Ok(ty.clone());
        }
        match word {
            "void" => Ok(DType::Void),
            "string" => Ok(DType::String),
            "struct" | "union" => self.record_type(word == "union", token.span),
            "enum" => self.enum_type(token.span),
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

    /// An optional name after `struct`, `union` or `enum`.
    fn tag_name(&mut self) -> PResult<Option<(String, Span)>> {
        if matches!(self.peek()?.tok, Tok::Ident(_)) {
            let (name, span) = self.expect_ident("a name")?;
            return Ok(Some((unscoped(&name).to_string(), span)));
        }
        Ok(None)
    }

    /// `struct name`, or a definition `struct [name] { members }`.
    fn record_type(&mut self, union: bool, keyword: Span) -> PResult<DType> {
        let tag = self.tag_name()?;
        if !self.at("{")? {
            let (name, _) = match tag {
                Some(tag) => tag,
                None => self.expect_ident("a struct or union name")?,
            };
            return Ok(DType::Record { union, name });
        }
        let span = tag.as_ref().map_or(keyword, |t| t.1);
        let name = match tag {
            Some((name, _)) => name,
            None => self.types.anonymous_name(),
        };
        let members = self.member_decls()?;
        self.types
            .add_record(union, &name, members)
            .map_err(|m| Diagnostic::error(span, m))?;
        Ok(DType::Record { union, name })
    }

    /// `{ type declarator [: width], ...; ... }` of a struct or union.
    fn member_decls(&mut self) -> PResult<Vec<MemberDecl>> {
        let open = self.expect("{")?.span;
        self.deeper(open)?;
        let mut members = Vec::new();
        while !self.eat("}")? {
            if self.peek()?.tok == Tok::Eof {
                return Err(Diagnostic::error(open, "this `{` has no matching `}`"));
            }
            let base = self.base_type()?;
            loop {
                let ty = self.pointers(base.clone())?;
                let (name, span) = self.expect_ident("a member name")?;
                let ty = self.array_suffix(ty)?;
                let width = if self.eat(":")? {
                    Some(self.bit_width(span)?)
                } else {
                    None
                };
                if matches!(ty, DType::Void | DType::String) {
                    return Err(Diagnostic::error(
                        span,
                        format!("member `{name}` cannot have type {ty}"),
                    ));
                }
                members.push(MemberDecl { name, ty, width });
                if !self.eat(",")? {
                    break;
                }
            }
            self.expect(";")?;
        }
        self.depth -= 1;
        Ok(members)
    }

    fn bit_width(&mut self, member: Span) -> PResult<u8> {
        let e = self.ternary()?;
        match self.const_int(&e) {
            Some(w) if (1..=64).contains(&w) => Ok(w as u8),
            Some(w) => Err(Diagnostic::error(
                e.span,
                format!("bit-field width {w} is not between 1 and 64"),
            )),
            None => Err(Diagnostic::error(
                member.to(e.span),
                "a bit-field width must be an integer constant",
            )),
        }
    }

    /// `enum name`, or a definition `enum [name] { A, B = 2, ... }`. Enums are ints.
    fn enum_type(&mut self, keyword: Span) -> PResult<DType> {
        let tag = self.tag_name()?;
        if !self.at("{")? {
            return match tag {
                Some((name, _)) if self.types.has_enum(&name) => Ok(DType::INT),
                Some((name, span)) => Err(Diagnostic::error(
                    span,
                    format!("enum {name} is not defined"),
                )),
                None => Err(Diagnostic::error(keyword, "expected an enum name or `{`")),
            };
        }
        let span = tag.as_ref().map_or(keyword, |t| t.1);
        let name = match tag {
            Some((name, _)) => name,
            None => self.types.anonymous_name(),
        };
        let list = self.enumerators()?;
        self.types
            .add_enum(&name, list)
            .map_err(|m| Diagnostic::error(span, m))?;
        Ok(DType::INT)
    }

    fn enumerators(&mut self) -> PResult<Vec<(String, i64)>> {
        self.expect("{")?;
        let mut list: Vec<(String, i64)> = Vec::new();
        let mut next = 0i64;
        while !self.eat("}")? {
            let (name, span) = self.expect_ident("an enumerator")?;
            if list.iter().any(|(n, _)| *n == name) || self.types.enumerator(&name).is_some() {
                return Err(Diagnostic::error(
                    span,
                    format!("enumerator `{name}` is already defined"),
                ));
            }
            if self.eat("=")? {
                let e = self.ternary()?;
                next = self.const_int_with(&e, &list).ok_or_else(|| {
                    Diagnostic::error(e.span, "an enumerator's value must be an integer constant")
                })?;
            }
            if i32::try_from(next).is_err() {
                return Err(Diagnostic::error(
                    span,
                    format!("enumerator `{name}`'s value {next} does not fit in an int"),
                ));
            }
            list.push((name, next));
            next += 1;
            if !self.eat(",")? {
                self.expect("}")?;
                break;
            }
        }
        Ok(list)
    }

    /// The value of an integer constant expression, with enumerators declared so far.
    pub(super) fn const_int(&self, e: &Expr) -> Option<i64> {
        self.const_int_with(e, &[])
    }

    fn const_int_with(&self, e: &Expr, local: &[(String, i64)]) -> Option<i64> {
        let int = DType::LONG;
        match &e.kind {
            ExprKind::Int(v) => Some(*v as i64),
            ExprKind::Ident(name) => local
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| *v)
                .or_else(|| self.types.enumerator(name)),
            ExprKind::Unary { op, operand } => {
                let v = self.const_int_with(operand, local)?;
                arith::unary(*op, v as u64, &int).map(|v| v as i64)
            }
            ExprKind::Binary { op, lhs, rhs } if !op.is_logical() && !op.is_comparison() => {
                let l = self.const_int_with(lhs, local)? as u64;
                let r = self.const_int_with(rhs, local)? as u64;
                arith::binary(*op, (l, &int), (r, &int), &int)
                    .ok()
                    .map(|v| v as i64)
            }
            _ => None,
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

/// A type name without its module: ``D`s`` (the program's own types) and ``vmlinux`s`` name
/// `s`. dtk reads no kernel types, so a kernel struct is one the program may only point to.
fn unscoped(word: &str) -> &str {
    word.rsplit_once('`').map_or(word, |(_, name)| name)
}

fn expected_type(token: &Token) -> Diagnostic {
    Diagnostic::error(
        token.span,
        format!("expected a type, found {}", token.describe()),
    )
}
