//! D's macros. `$pid`, `$ppid`, `$pgid`, `$sid`, `$uid`, `$gid`, `$euid`, `$egid`,
//! `$projid` and `$taskid` (dtk's own, as in dtrace(1)), `$1`…`$9` (an integer or an
//! identifier) and `$$1`…`$$9` (always a string) are substituted as the lexer meets them: an
//! argument may be an identifier, which the parser must see as one. Unset arguments are
//! errors unless `#pragma D option defaultargs` makes them 0 and "".
//!
//! `$target` (the traced process) is always an integer, and is not known when the program
//! is parsed: the engine must know the program's providers before it starts the command it
//! traces. The lexer leaves a placeholder and records where; `substitute_target` fills in
//! the value afterwards, so the program is lexed and parsed once.

use super::ast::{DType, Expr, ExprKind, Item, Program, Stmt};
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
        if name == "target" {
            self.note_target(span);
            let tok = if as_string {
                Tok::Str(String::new())
            } else {
                Tok::Int {
                    value: 0,
                    ty: DType::INT,
                }
            };
            return Ok(Token { tok, span });
        }
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
            ).tagged("D_MACRO_UNDEF"));
        };
        Ok(Token { tok, span })
    }

    /// The text a macro stands for.
    fn macro_value(&self, name: &str, as_string: bool, span: Span) -> LexResult<String> {
        match name {
            "pid" => Ok(std::process::id().to_string()),
            "ppid" => Ok(std::os::unix::process::parent_id().to_string()),
            "pgid" | "sid" | "uid" | "gid" | "euid" | "egid" => Ok(own_id(name).to_string()),
            // Solaris projects and tasks: Linux has neither, and dtrace for Linux gives 0.
            "projid" | "taskid" => Ok("0".to_string()),
            _ => self.macro_argument(name, as_string, span),
        }
    }

    fn macro_argument(&self, name: &str, as_string: bool, span: Span) -> LexResult<String> {
        let index: usize = match name.parse() {
            Ok(n) if n >= 1 && name.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                return Err(Diagnostic::error(span, format!("unknown macro `${name}`"))
                    .tagged("D_MACRO_UNDEF"))
            }
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
            )
            .tagged("D_MACRO_UNDEF")),
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
            )
            .tagged("D_MACRO_UNUSED")),
            None => Ok(()),
        }
    }

    pub(super) fn macro_in_spec(&mut self) -> LexResult<String> {
        let start = self.pos;
        let as_string = self.rest().starts_with("$$");
        self.pos += if as_string { 2 } else { 1 };
        let name = self.ident_text();
        let span = Span::new(start, self.pos);
        if name == "target" {
            self.note_target(span);
            return Ok(TARGET.to_string());
        }
        self.macro_value(name, as_string, span)
    }

    /// Records a use of `$target` (the parser may lex a token twice, after a lookahead).
    fn note_target(&mut self, span: Span) {
        if !self.target_uses.contains(&span) {
            self.target_uses.push(span);
        }
    }
}

/// What a probe description holds in place of `$target` until it is substituted.
const TARGET: &str = "$target";

/// Fills in `$target` where the lexer left placeholders (`uses`), in expressions and probe
/// descriptions. Without a target process, the first use is an error.
pub(super) fn substitute_target(
    program: &mut Program,
    uses: &[Span],
    target: Option<u32>,
) -> LexResult<()> {
    let Some(first) = uses.iter().min_by_key(|s| s.start) else {
        return Ok(());
    };
    let Some(target) = target else {
        return Err(Diagnostic::error(
            *first,
            "`$target` is used but no target process was given (-p PID or -c CMD)",
        )
        .tagged("D_MACRO_UNDEF"));
    };
    let text = target.to_string();
    let int = parse_integer(&text)
        .map_err(|message| Diagnostic::error(*first, message).tagged("D_MACRO_OFLOW"))?;
    let Tok::Int { value, ty } = int else {
        return Ok(());
    };
    let mut fill = |e: &mut Expr| {
        if uses.contains(&e.span) {
            match &mut e.kind {
                ExprKind::Int(v) => {
                    *v = value;
                    e.ty = ty.clone();
                }
                ExprKind::Str(s) => *s = text.clone(),
                _ => {}
            }
        }
    };
    for item in &mut program.items {
        match item {
            Item::Decl(d) => d.inline.iter_mut().for_each(|e| each_expr(e, &mut fill)),
            Item::Clause(c) => {
                for p in &mut c.probes {
                    for part in [&mut p.provider, &mut p.module, &mut p.function, &mut p.name] {
                        if part.contains(TARGET) {
                            *part = part.replace(TARGET, &text);
                        }
                    }
                }
                c.predicate.iter_mut().for_each(|e| each_expr(e, &mut fill));
                c.body
                    .iter_mut()
                    .flatten()
                    .for_each(|s| each_stmt_expr(s, &mut fill));
            }
            Item::Pragma(_) => {}
        }
    }
    Ok(())
}

fn each_stmt_expr(stmt: &mut Stmt, f: &mut impl FnMut(&mut Expr)) {
    match stmt {
        Stmt::Expr(e) => each_expr(e, f),
        Stmt::Aggregate(a) => a
            .keys
            .iter_mut()
            .chain(&mut a.args)
            .for_each(|e| each_expr(e, f)),
        Stmt::If {
            cond,
            then,
            otherwise,
            ..
        } => {
            each_expr(cond, f);
            then.iter_mut()
                .chain(otherwise.iter_mut().flatten())
                .for_each(|s| each_stmt_expr(s, f));
        }
    }
}

/// Calls `f` on `e` and every expression inside it.
fn each_expr(e: &mut Expr, f: &mut impl FnMut(&mut Expr)) {
    f(e);
    e.for_each_child_mut(&mut |c| each_expr(c, f));
}

impl Lexer<'_> {}

/// dtk's own process group, session or credential, for `$pgid`, `$sid`, `$uid`, `$gid`,
/// `$euid` and `$egid`, which name the dtrace process in D.
fn own_id(name: &str) -> u32 {
    // SAFETY: these calls take no pointers and cannot fail for the calling process.
    unsafe {
        match name {
            "pgid" => libc::getpgid(0) as u32,
            "sid" => libc::getsid(0) as u32,
            "uid" => libc::getuid(),
            "gid" => libc::getgid(),
            "euid" => libc::geteuid(),
            _ => libc::getegid(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parser, MacroArgs};
    use super::*;

    fn parse(src: &str, target: Option<u32>) -> LexResult<Program> {
        let macros = MacroArgs {
            target,
            ..MacroArgs::default()
        };
        parser::parse(src, &macros)
    }

    #[test]
    fn target_is_substituted_after_parsing() {
        let src = "pid$target::malloc:entry /pid == $target/ { trace($$target); }";
        let program = parse(src, Some(42)).unwrap();
        let clause = program.clauses()[0];
        assert_eq!(clause.probes[0].provider, "pid42");
        let Some(ExprKind::Binary { rhs, .. }) = clause.predicate.as_ref().map(|p| &p.kind) else {
            panic!("{:?}", clause.predicate)
        };
        assert_eq!(rhs.kind, ExprKind::Int(42));
        assert_eq!(rhs.ty, DType::INT);
        let Some([Stmt::Expr(call)]) = clause.body.as_deref() else {
            panic!("{:?}", clause.body)
        };
        let ExprKind::Call { args, .. } = &call.kind else {
            panic!("{call:?}")
        };
        assert_eq!(args[0].kind, ExprKind::Str("42".into()));
    }

    #[test]
    fn target_without_a_process_is_an_error_at_its_first_use() {
        let src = "BEGIN { x = 1; }\nBEGIN { y = $target; z = $target; }";
        let err = parse(src, None).unwrap_err();
        assert_eq!(err.span, Span::new(29, 36));
        assert!(err.message.contains("no target process"), "{}", err.message);
        assert!(parse("BEGIN { x = 1; }", None).is_ok());
    }

    #[test]
    fn process_macros_name_dtk_itself() {
        let src = "BEGIN { trace($pgid); trace($sid); trace($uid); trace($gid); trace($projid); }";
        let program = parse(src, None).unwrap();
        let Some(body) = program.clauses()[0].body.as_deref() else {
            panic!("no body")
        };
        let values: Vec<u64> = body
            .iter()
            .map(|stmt| match stmt {
                Stmt::Expr(Expr {
                    kind: ExprKind::Call { args, .. },
                    ..
                }) => match args[0].kind {
                    ExprKind::Int(v) => v,
                    ref other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect();
        // SAFETY: plain queries of this process.
        let expected = unsafe {
            [
                libc::getpgid(0) as u64,
                libc::getsid(0) as u64,
                u64::from(libc::getuid()),
                u64::from(libc::getgid()),
                0,
            ]
        };
        assert_eq!(values, expected);
    }
}
