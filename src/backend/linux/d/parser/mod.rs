//! The D parser: recursive descent for programs, clauses, declarations and statements
//! (this file), precedence climbing for expressions (`expr`), D types (`types`). It stops at
//! the first syntax error, which it reports as "expected X, found Y" at a span.

mod expr;
mod types;

use super::ast::{
    Aggregate, Clause, DType, Decl, Expr, ExprKind, Function, Item, Pragma, ProbeDesc, Program,
    Stmt, VarScope,
};
use super::diagnostic::Diagnostic;
use super::lexer::Lexer;
use super::macros::substitute_target;
use super::span::Span;
use super::token::{Tok, Token};
use super::typetable::TypeTable;
use super::MacroArgs;

/// How deeply expressions and statements may nest. Real scripts stay far below it; the limit
/// keeps hostile input from exhausting the stack here and in the passes that walk the tree.
const MAX_DEPTH: usize = 96;

type PResult<T> = Result<T, Diagnostic>;

pub struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token>,
    /// End of the last consumed token: where a missing `;` is reported.
    prev_end: usize,
    depth: usize,
    /// Inside `/.../`: a `/` followed by `{` ends the predicate instead of dividing.
    in_predicate: bool,
    /// The structs, unions, enums and typedefs declared so far.
    types: TypeTable,
}

/// Parses a D program, with every macro substituted from `macros`.
pub fn parse(source: &str, macros: &MacroArgs) -> PResult<Program> {
    let parsed = parse_whole(source, macros)?;
    let mut program = parsed.program;
    substitute_target(&mut program, &parsed.target_uses, macros.target)?;
    Ok(program)
}

/// A parsed program whose `$target` is not yet substituted.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub program: Program,
    /// What makes the program unfit to run although it parses, reported after the
    /// checker's own errors: it has no probe clause (nothing would ever fire, and dtrace(1)
    /// and bpftrace refuse it too), or a macro argument is never referred to.
    pub unfit: Option<Diagnostic>,
    /// Where `$target` is used.
    pub target_uses: Vec<Span>,
}

/// Parses a D program that is to run. `macros.target` is not read: `$target` is left for
/// `substitute_target`.
pub fn parse_whole(source: &str, macros: &MacroArgs) -> PResult<Parsed> {
    let mut parser = Parser {
        lexer: Lexer::new(source, macros),
        peeked: None,
        prev_end: 0,
        depth: 0,
        in_predicate: false,
        types: TypeTable::default(),
    };
    let program = parser.program()?;
    let end = Span::new(source.len(), source.len());
    let unfit = if !program.items.iter().any(|i| matches!(i, Item::Clause(_))) {
        Some(Diagnostic::error(
            end,
            "no probes specified: the program has no probe clauses",
        ))
    } else {
        parser.lexer.check_unused_args().err()
    };
    Ok(Parsed {
        program,
        unfit,
        target_uses: std::mem::take(&mut parser.lexer.target_uses),
    })
}

impl Parser<'_> {
    fn peek(&mut self) -> PResult<&Token> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_token()?);
        }
        Ok(self.peeked.get_or_insert_with(|| Token {
            tok: Tok::Eof,
            span: Span::default(),
        }))
    }

    fn bump(&mut self) -> PResult<Token> {
        self.peek()?;
        let token = self.peeked.take().unwrap_or(Token {
            tok: Tok::Eof,
            span: Span::default(),
        });
        self.prev_end = token.span.end;
        Ok(token)
    }

    fn at(&mut self, punct: &str) -> PResult<bool> {
        Ok(self.peek()?.is(punct))
    }

    fn eat(&mut self, punct: &str) -> PResult<bool> {
        let found = self.at(punct)?;
        if found {
            self.bump()?;
        }
        Ok(found)
    }

    /// Consumes `punct` or reports what was there instead. A missing `;` is reported just
    /// after the previous token, where it belongs.
    fn expect(&mut self, punct: &str) -> PResult<Token> {
        if self.at(punct)? {
            return self.bump();
        }
        let found = self.peek()?.clone();
        let span = if punct == ";" {
            Span::new(self.prev_end, self.prev_end)
        } else {
            found.span
        };
        Err(Diagnostic::error(
            span,
            format!("expected `{punct}`, found {}", found.describe()),
        ))
    }

    fn expect_ident(&mut self, what: &str) -> PResult<(String, Span)> {
        let token = self.bump()?;
        match token.tok {
            Tok::Ident(name) => Ok((name, token.span)),
            _ => Err(Diagnostic::error(
                token.span,
                format!("expected {what}, found {}", token.describe()),
            )),
        }
    }

    /// Counts one more level of nesting, failing past `MAX_DEPTH`.
    fn deeper(&mut self, span: Span) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Diagnostic::error(
                span,
                format!("nested too deeply (more than {MAX_DEPTH} levels)"),
            ));
        }
        Ok(())
    }

    fn program(&mut self) -> PResult<Program> {
        let mut items = Vec::new();
        loop {
            if let Some(t) = self.peeked.take() {
                self.lexer.seek(t.span.start);
            }
            let typedefs = &self.types;
            let declares = |w: &str| types::starts_declaration(w) || typedefs.typedef(w).is_some();
            if self.lexer.at_declaration(declares)? {
                let token = self.peek()?.clone();
                match token.tok {
                    Tok::Eof => break,
                    Tok::Pragma { name, value } => {
                        self.bump()?;
                        items.push(Item::Pragma(Pragma {
                            name,
                            value,
                            span: token.span,
                        }));
                    }
                    _ => items.extend(self.declaration()?.into_iter().map(Item::Decl)),
                }
            } else {
                items.push(Item::Clause(self.clause()?));
            }
        }
        Ok(Program {
            items,
            variables: Vec::new(),
            types: std::mem::take(&mut self.types),
        })
    }

    fn clause(&mut self) -> PResult<Clause> {
        let mut probes = vec![self.probe_desc()?];
        while self.lexer.eat_char(b',')? {
            probes.push(self.probe_desc()?);
        }
        let start = probes[0].span;
        let predicate = if self.eat("/")? {
            self.in_predicate = true;
            let pred = self.expr()?;
            self.in_predicate = false;
            self.expect("/")?;
            Some(pred)
        } else {
            None
        };
        let body = if self.at("{")? {
            Some(self.block()?)
        } else {
            let next = self.peek()?.clone();
            if predicate.is_some() && !matches!(next.tok, Tok::Ident(_) | Tok::Eof) {
                return Err(Diagnostic::error(
                    next.span,
                    format!(
                        "expected `{{` to start the clause body, found {}",
                        next.describe()
                    ),
                ));
            }
            None
        };
        Ok(Clause {
            probes,
            predicate,
            body,
            span: start.to(Span::new(self.prev_end, self.prev_end)),
        })
    }

    fn probe_desc(&mut self) -> PResult<ProbeDesc> {
        let Some((text, span)) = self.lexer.probe_spec()? else {
            let found = self.peek()?.clone();
            return Err(Diagnostic::error(
                found.span,
                format!("expected a probe description, found {}", found.describe()),
            ));
        };
        self.prev_end = span.end;
        let parts: Vec<&str> = text.split(':').collect();
        if parts.len() > 4 {
            return Err(Diagnostic::error(
                span,
                format!(
                    "probe description `{text}` has {} parts; at most four (provider:module:function:name)",
                    parts.len()
                ),
            ));
        }
        for part in &parts {
            check_glob(part, span)?;
        }
        let mut four = vec![String::new(); 4 - parts.len()];
        four.extend(parts.iter().map(|p| p.to_string()));
        let [provider, module, function, name] = <[String; 4]>::try_from(four)
            .map_err(|_| Diagnostic::error(span, "malformed probe description"))?;
        Ok(ProbeDesc {
            provider,
            module,
            function,
            name,
            span,
        })
    }

    fn block(&mut self) -> PResult<Vec<Stmt>> {
        let open = self.expect("{")?;
        self.deeper(open.span)?;
        let mut stmts = Vec::new();
        while !self.eat("}")? {
            if self.peek()?.tok == Tok::Eof {
                return Err(Diagnostic::error(open.span, "this `{` has no matching `}`"));
            }
            if self.eat(";")? {
                continue;
            }
            let stmt = self.statement()?;
            let needs_semicolon = !matches!(stmt, Stmt::If { .. });
            stmts.push(stmt);
            if needs_semicolon && !self.at("}")? {
                self.expect(";")?;
            }
        }
        self.depth -= 1;
        Ok(stmts)
    }

    fn statement(&mut self) -> PResult<Stmt> {
        if self.peek()?.is_ident("if") {
            return self.if_statement();
        }
        let expr = self.expr()?;
        aggregate_statement(expr)
    }

    fn if_statement(&mut self) -> PResult<Stmt> {
        let start = self.bump()?.span;
        self.deeper(start)?;
        self.expect("(")?;
        let cond = self.expr()?;
        self.expect(")")?;
        let then = self.branch()?;
        let otherwise = if self.peek()?.is_ident("else") {
            self.bump()?;
            Some(self.branch()?)
        } else {
            None
        };
        self.depth -= 1;
        Ok(Stmt::If {
            cond,
            then,
            otherwise,
            span: start.to(Span::new(self.prev_end, self.prev_end)),
        })
    }

    /// The body of an `if` or `else`: a block, or one statement with its `;`.
    fn branch(&mut self) -> PResult<Vec<Stmt>> {
        if self.at("{")? {
            return self.block();
        }
        let stmt = self.statement()?;
        if !matches!(stmt, Stmt::If { .. }) && !self.at("}")? {
            self.expect(";")?;
        }
        Ok(vec![stmt])
    }
}

/// Turns `@name[keys] = func(args)` into an aggregation statement; other expressions stay
/// expression statements.
fn aggregate_statement(mut expr: Expr) -> PResult<Stmt> {
    let span = expr.span;
    let (mut target, mut value) = match expr.take_kind() {
        ExprKind::Assign {
            op: None,
            target,
            value,
        } => (target, value),
        kind => {
            expr.kind = kind;
            return Ok(Stmt::Expr(expr));
        }
    };
    let not_aggregation = |target, value| {
        Ok(Stmt::Expr(Expr::new(
            ExprKind::Assign {
                op: None,
                target,
                value,
            },
            span,
        )))
    };
    let (name, keys) = match target.take_kind() {
        ExprKind::Aggregation(name) => (name, Vec::new()),
        ExprKind::Index { mut base, indices } => match base.take_kind() {
            ExprKind::Aggregation(name) => (name, indices),
            kind => {
                base.kind = kind;
                target.kind = ExprKind::Index { base, indices };
                return not_aggregation(target, value);
            }
        },
        kind => {
            target.kind = kind;
            return not_aggregation(target, value);
        }
    };
    match value.take_kind() {
        ExprKind::Call {
            func: Function::Aggregating(func),
            args,
        } => {
            Ok(Stmt::Aggregate(Aggregate {
                name,
                keys,
                func,
                args,
                span,
            }))
        }
        _ => Err(Diagnostic::error(
            value.span,
            format!(
                "`@{name}` can only be assigned an aggregating function such as count() or quantize()"
            ),
        )
        .tagged("D_AGG_FUNC")),
    }
}

/// Rejects a probe-description part whose `[` has no `]`.
fn check_glob(part: &str, span: Span) -> PResult<()> {
    let mut open = false;
    for c in part.chars() {
        match c {
            '[' if !open => open = true,
            ']' if open => open = false,
            _ => {}
        }
    }
    if open {
        return Err(Diagnostic::error(
            span,
            format!("`[` in probe description part `{part}` has no closing `]`"),
        ));
    }
    Ok(())
}

impl Parser<'_> {
    /// A declaration at the top of the program; `int a, b;` declares two.
    fn declaration(&mut self) -> PResult<Vec<Decl>> {
        let start = self.peek()?.span;
        let first = self.peek()?.clone();
        let scope = if first.is_ident("self") {
            self.bump()?;
            VarScope::Thread
        } else if first.is_ident("this") {
            self.bump()?;
            VarScope::Clause
        } else {
            VarScope::Global
        };
        if scope == VarScope::Global && first.is_ident("inline") {
            self.bump()?;
            return Ok(vec![self.inline_decl(start)?]);
        }
        if scope == VarScope::Global && first.is_ident("typedef") {
            self.bump()?;
            self.typedef()?;
            return Ok(Vec::new());
        }
        if scope == VarScope::Global && first.is_ident("extern") {
            self.bump()?;
            self.extern_decl(start)?;
            return Ok(Vec::new());
        }
        let base = self.base_type()?;
        let mut decls = Vec::new();
        // `struct s { ... };` and `enum e { ... };` define a type and declare nothing.
        if self.eat(";")? {
            return Ok(decls);
        }
        loop {
            let ty = self.pointers(base.clone())?;
            let (name, name_span) = self.expect_ident("a variable name")?;
            if name.contains('`') {
                let message = format!("a D variable's name has no scope: `{name}`");
                return Err(Diagnostic::error(name_span, message));
            }
            if self.at("=")? {
                let span = self.peek()?.span;
                return Err(Diagnostic::error(
                    span,
                    format!(
                        "a D declaration has no initializer; assign `{name}` in a clause, or declare it `inline`"
                    ),
                ));
            }
            let keyed = self.at("[")? && self.type_follows()?;
            let (ty, keys) = if keyed {
                self.bump()?;
                (ty, self.key_types()?)
            } else {
                (self.array_suffix(ty)?, Vec::new())
            };
            decls.push(Decl {
                scope,
                ty,
                name,
                keys,
                inline: None,
                span: start.to(name_span),
            });
            if !self.eat(",")? {
                break;
            }
        }
        self.expect(";")?;
        Ok(decls)
    }

    /// `extern type name, ...;` (after `extern`): the type of a kernel symbol, which a
    /// backquoted name then reads as.
    fn extern_decl(&mut self, start: Span) -> PResult<()> {
        let base = self.base_type()?;
        if self.at(";")? {
            let span = start.to(Span::new(self.prev_end, self.prev_end));
            return Err(Diagnostic::error(
                span,
                "this extern declaration declares nothing",
            ));
        }
        loop {
            let ty = self.pointers(base.clone())?;
            let (name, span) = self.expect_ident("the symbol's name")?;
            let ty = self.array_suffix(ty)?;
            self.types
                .add_extern(&name, ty)
                .map_err(|m| Diagnostic::error(span, m))?;
            if !self.eat(",")? {
                break;
            }
        }
        self.expect(";")?;
        Ok(())
    }

    /// `typedef type name;` (after `typedef`), with `*`s and `[N]` as in a declaration.
    fn typedef(&mut self) -> PResult<()> {
        let base = self.base_type()?;
        loop {
            let ty = self.pointers(base.clone())?;
            let (name, span) = self.expect_ident("the typedef's name")?;
            let ty = self.array_suffix(ty)?;
            self.types
                .add_typedef(&name, ty)
                .map_err(|m| Diagnostic::error(span, m))?;
            if !self.eat(",")? {
                break;
            }
        }
        self.expect(";")?;
        Ok(())
    }

    fn inline_decl(&mut self, start: Span) -> PResult<Decl> {
        let ty = self.parse_type()?;
        let (name, _) = self.expect_ident("the inline's name")?;
        self.expect("=")?;
        let value = self.expr()?;
        self.expect(";")?;
        Ok(Decl {
            scope: VarScope::Global,
            ty,
            name,
            keys: Vec::new(),
            inline: Some(value),
            span: start.to(Span::new(self.prev_end, self.prev_end)),
        })
    }

    fn key_types(&mut self) -> PResult<Vec<DType>> {
        let mut keys = vec![self.parse_type()?];
        while self.eat(",")? {
            keys.push(self.parse_type()?);
        }
        self.expect("]")?;
        Ok(keys)
    }
}
