//! D expressions by precedence climbing, with C's precedence and associativity plus D's
//! `^^` (logical exclusive or, between `&&` and `||`). Unary, cast, `sizeof`, `stringof` and
//! postfix forms are recursive descent.

use super::{PResult, Parser};
use crate::backend::linux::d::ast::{
    BinaryOp, Builtin, DType, Expr, ExprKind, Function, IncDecOp, UnaryOp, VarScope,
};
use crate::backend::linux::d::diagnostic::Diagnostic;
use crate::backend::linux::d::span::Span;
use crate::backend::linux::d::token::{Tok, Token};

/// Binary operators with their precedence; higher binds tighter. All are left-associative.
fn binary_op(token: &Token) -> Option<(BinaryOp, u8)> {
    use BinaryOp::*;
    let Tok::Punct(p) = token.tok else {
        return None;
    };
    Some(match p {
        "||" => (Or, 1),
        "^^" => (Xor, 2),
        "&&" => (And, 3),
        "|" => (BitOr, 4),
        "^" => (BitXor, 5),
        "&" => (BitAnd, 6),
        "==" => (Eq, 7),
        "!=" => (Ne, 7),
        "<" => (Lt, 8),
        "<=" => (Le, 8),
        ">" => (Gt, 8),
        ">=" => (Ge, 8),
        "<<" => (Shl, 9),
        ">>" => (Shr, 9),
        "+" => (Add, 10),
        "-" => (Sub, 10),
        "*" => (Mul, 11),
        "/" => (Div, 11),
        "%" => (Mod, 11),
        _ => return None,
    })
}

/// `=` gives `None`; `+=` gives `Some(Add)`.
fn assign_op(token: &Token) -> Option<Option<BinaryOp>> {
    use BinaryOp::*;
    let Tok::Punct(p) = token.tok else {
        return None;
    };
    Some(match p {
        "=" => None,
        "+=" => Some(Add),
        "-=" => Some(Sub),
        "*=" => Some(Mul),
        "/=" => Some(Div),
        "%=" => Some(Mod),
        "&=" => Some(BitAnd),
        "^=" => Some(BitXor),
        "|=" => Some(BitOr),
        "<<=" => Some(Shl),
        ">>=" => Some(Shr),
        _ => return None,
    })
}

fn builtin(name: &str) -> Option<Builtin> {
    use Builtin::*;
    Some(match name {
        "pid" => Pid,
        "tid" => Tid,
        "ppid" => Ppid,
        "uid" => Uid,
        "gid" => Gid,
        "execname" => Execname,
        "zonename" => Zonename,
        "cpu" => Cpu,
        "timestamp" => Timestamp,
        "vtimestamp" => Vtimestamp,
        "walltimestamp" => Walltimestamp,
        "probeprov" => Probeprov,
        "probemod" => Probemod,
        "probefunc" => Probefunc,
        "probename" => Probename,
        "args" => Args,
        "errno" => Errno,
        "curthread" => Curthread,
        "stackdepth" => Stackdepth,
        "ustackdepth" => Ustackdepth,
        "caller" => Caller,
        "ucaller" => Ucaller,
        "epid" => Epid,
        "id" => Id,
        "curpsinfo" => Curpsinfo,
        "cwd" => Cwd,
        _ => {
            let n = name.strip_prefix("arg")?;
            let digit = n.parse::<u8>().ok().filter(|d| *d <= 9 && n.len() == 1)?;
            Arg(digit)
        }
    })
}

impl Parser<'_> {
    pub(super) fn expr(&mut self) -> PResult<Expr> {
        let start = self.peek()?.span;
        self.deeper(start)?;
        let target = self.ternary()?;
        let result = match assign_op(self.peek()?) {
            Some(op) => {
                self.bump()?;
                let value = self.expr()?;
                let span = target.span.to(value.span);
                Expr::new(
                    ExprKind::Assign {
                        op,
                        target: Box::new(target),
                        value: Box::new(value),
                    },
                    span,
                )
            }
            None => target,
        };
        self.depth -= 1;
        Ok(result)
    }

    pub(super) fn ternary(&mut self) -> PResult<Expr> {
        let cond = self.binary(1)?;
        if !self.eat("?")? {
            return Ok(cond);
        }
        let then = self.expr()?;
        self.expect(":")?;
        let start = self.peek()?.span;
        self.deeper(start)?;
        let otherwise = self.ternary()?;
        self.depth -= 1;
        let span = cond.span.to(otherwise.span);
        Ok(Expr::new(
            ExprKind::Ternary {
                cond: Box::new(cond),
                then: Box::new(then),
                otherwise: Box::new(otherwise),
            },
            span,
        ))
    }

    /// A left-associative chain (`a + b + c`) is built in this loop, not by recursion, and
    /// is not nesting: only the right operand, parsed one level deeper, counts toward
    /// `MAX_DEPTH`. The passes that walk the resulting left spine grow their stack as they
    /// go (`crate::backend::linux::deep`).
    fn binary(&mut self, min_prec: u8) -> PResult<Expr> {
        let mut lhs = self.unary()?;
        while let Some((op, prec)) = binary_op(self.peek()?) {
            if prec < min_prec || (op == BinaryOp::Div && self.slash_ends_predicate()?) {
                break;
            }
            let op_span = self.bump()?.span;
            self.deeper(op_span)?;
            let rhs = self.binary(prec + 1)?;
            self.depth -= 1;
            let span = lhs.span.to(rhs.span);
            lhs = Expr::new(
                ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                span,
            );
        }
        Ok(lhs)
    }

    /// In a predicate, a `/` closes the predicate when what follows it is `{`, `;`, `/` or
    /// the end of input (D's own rule); otherwise it divides.
    fn slash_ends_predicate(&mut self) -> PResult<bool> {
        if !self.in_predicate {
            return Ok(false);
        }
        let next = self.lexer.lookahead()?;
        Ok(next.is("{") || next.is(";") || next.is("/") || next.tok == Tok::Eof)
    }

    fn unary(&mut self) -> PResult<Expr> {
        let token = self.peek()?.clone();
        self.deeper(token.span)?;
        let op = match &token.tok {
            Tok::Punct("!") => Some(UnaryOp::Not),
            Tok::Punct("~") => Some(UnaryOp::BitNot),
            Tok::Punct("-") => Some(UnaryOp::Neg),
            Tok::Punct("+") => Some(UnaryOp::Plus),
            Tok::Punct("*") => Some(UnaryOp::Deref),
            Tok::Punct("&") => Some(UnaryOp::AddrOf),
            _ => None,
        };
        let result = if let Some(op) = op {
            self.bump()?;
            let operand = self.unary()?;
            let span = token.span.to(operand.span);
            Expr::new(
                ExprKind::Unary {
                    op,
                    operand: Box::new(operand),
                },
                span,
            )
        } else if token.is("++") || token.is("--") {
            self.bump()?;
            let target = self.unary()?;
            let op = if token.is("++") {
                IncDecOp::PreInc
            } else {
                IncDecOp::PreDec
            };
            let span = token.span.to(target.span);
            Expr::new(
                ExprKind::IncDec {
                    op,
                    target: Box::new(target),
                },
                span,
            )
        } else if token.is_ident("sizeof") {
            self.sizeof()?
        } else if token.is_ident("stringof") {
            self.bump()?;
            let operand = self.unary()?;
            let span = token.span.to(operand.span);
            Expr::new(ExprKind::Stringof(Box::new(operand)), span)
        } else if token.is("(") && self.type_follows()? {
            self.bump()?;
            let to = self.parse_type()?;
            self.expect(")")?;
            let expr = self.unary()?;
            let span = token.span.to(expr.span);
            Expr::new(
                ExprKind::Cast {
                    to,
                    expr: Box::new(expr),
                },
                span,
            )
        } else {
            self.postfix()?
        };
        self.depth -= 1;
        Ok(result)
    }

    fn sizeof(&mut self) -> PResult<Expr> {
        let start = self.bump()?.span;
        if self.at("(")? && self.type_follows()? {
            self.bump()?;
            let ty = self.parse_type()?;
            let end = self.expect(")")?.span;
            return Ok(Expr::new(ExprKind::SizeofType(ty), start.to(end)));
        }
        let operand = self.unary()?;
        let span = start.to(operand.span);
        Ok(Expr::new(ExprKind::SizeofExpr(Box::new(operand)), span))
    }

    fn postfix(&mut self) -> PResult<Expr> {
        let mut expr = self.primary()?;
        let entry_depth = self.depth;
        loop {
            let token = self.peek()?.clone();
            if token.is("[") {
                self.deeper(token.span)?;
                self.bump()?;
                let indices = self.arguments("]")?;
                let span = expr.span.to(Span::new(self.prev_end, self.prev_end));
                expr = Expr::new(
                    ExprKind::Index {
                        base: Box::new(expr),
                        indices,
                    },
                    span,
                );
            } else if token.is(".") || token.is("->") {
                self.deeper(token.span)?;
                self.bump()?;
                let (member, member_span) = self.expect_ident("a member name")?;
                let span = expr.span.to(member_span);
                expr = Expr::new(
                    ExprKind::Member {
                        base: Box::new(expr),
                        member,
                        arrow: token.is("->"),
                    },
                    span,
                );
            } else if token.is("++") || token.is("--") {
                self.deeper(token.span)?;
                self.bump()?;
                let op = if token.is("++") {
                    IncDecOp::PostInc
                } else {
                    IncDecOp::PostDec
                };
                let span = expr.span.to(token.span);
                expr = Expr::new(
                    ExprKind::IncDec {
                        op,
                        target: Box::new(expr),
                    },
                    span,
                );
            } else {
                break;
            }
        }
        self.depth = entry_depth;
        Ok(expr)
    }

    /// Comma-separated expressions up to `close` (consumed); the opening bracket is already
    /// consumed.
    fn arguments(&mut self, close: &str) -> PResult<Vec<Expr>> {
        let mut args = Vec::new();
        if self.eat(close)? {
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            if self.eat(close)? {
                return Ok(args);
            }
            self.expect(",").map_err(|_| {
                let found = self.peeked.clone().unwrap_or(Token {
                    tok: Tok::Eof,
                    span: Span::default(),
                });
                Diagnostic::error(
                    found.span,
                    format!("expected `,` or `{close}`, found {}", found.describe()),
                )
            })?;
        }
    }

    fn primary(&mut self) -> PResult<Expr> {
        let token = self.bump()?;
        let span = token.span;
        let kind = match token.tok {
            Tok::Int { value, ty } => {
                return Ok(Expr {
                    kind: ExprKind::Int(value),
                    span,
                    ty,
                })
            }
            // A D string ends at its first NUL: "ab\0cd" is "ab".
            Tok::Str(mut s) => {
                s.truncate(s.find('\0').unwrap_or(s.len()));
                ExprKind::Str(s)
            }
            Tok::Agg(name) => ExprKind::Aggregation(name),
            Tok::Punct("(") => {
                let inner = self.expr()?;
                self.expect(")")?;
                return Ok(inner);
            }
            Tok::Ident(name) => return self.identifier(name, span),
            _ => {
                return Err(Diagnostic::error(
                    span,
                    format!("expected an expression, found {}", token.describe()),
                ))
            }
        };
        Ok(Expr::new(kind, span))
    }

    fn identifier(&mut self, name: String, span: Span) -> PResult<Expr> {
        if name == "self" || name == "this" {
            self.expect("->")?;
            let (var, var_span) = self.expect_ident("a variable name")?;
            let scope = if name == "self" {
                VarScope::Thread
            } else {
                VarScope::Clause
            };
            return Ok(Expr::new(
                ExprKind::Var { name: var, scope },
                span.to(var_span),
            ));
        }
        if name == "offsetof" && self.at("(")? {
            return self.offsetof(span);
        }
        if self.at("(")? {
            let func = Function::from_name(&name).ok_or_else(|| {
                Diagnostic::error(span, format!("unknown function `{name}`"))
                    .tagged("D_IDENT_UNDEF")
            })?;
            self.bump()?;
            let args = self.arguments(")")?;
            let full = span.to(Span::new(self.prev_end, self.prev_end));
            return Ok(Expr::new(ExprKind::Call { func, args }, full));
        }
        let kind = match builtin(&name) {
            Some(b) => ExprKind::Builtin(b),
            None => ExprKind::Ident(name),
        };
        Ok(Expr::new(kind, span))
    }

    /// `offsetof(type, member)`: the member's offset in bytes, a constant of type size_t.
    fn offsetof(&mut self, start: Span) -> PResult<Expr> {
        self.expect("(")?;
        let ty_span = self.peek()?.span;
        let ty = self.parse_type()?;
        self.expect(",")?;
        let (member, member_span) = self.expect_ident("a member name")?;
        let end = self.expect(")")?.span;
        let DType::Record { union, name } = &ty else {
            let message = format!("offsetof needs a struct or union type, found {ty}");
            return Err(Diagnostic::error(ty_span, message));
        };
        let Some(record) = self.types.record(*union, name) else {
            return Err(Diagnostic::error(ty_span, format!("{ty} is not defined")));
        };
        let m = record.member(&member).ok_or_else(|| {
            Diagnostic::error(member_span, format!("{ty} has no member `{member}`"))
        })?;
        if m.width.is_some() {
            let message = format!("offsetof cannot be applied to bit-field `{member}`");
            return Err(Diagnostic::error(member_span, message));
        }
        Ok(Expr {
            kind: ExprKind::Int(m.offset / 8),
            span: start.to(end),
            ty: DType::ULONG,
        })
    }
}
