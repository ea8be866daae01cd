//! The D language front end: lexer, parser, AST with spans, semantic checks, diagnostics.
//!
//! `compile` runs the whole front end: parsing (the lexer substitutes the script's
//! arguments), `$target` substitution, then checking, which resolves names, substitutes
//! inlines, folds constants and types every expression. The engine runs it in two steps,
//! `parse_program` and `finish`, because it needs the program's providers before it starts
//! the target process whose pid `$target` is; the program is parsed once. The code generator consumes the checked `ast::Program`, and may rely on this:
//!
//! - every expression has a type (`DType::Unknown` never survives a successful compile);
//! - no `ExprKind::Ident` is left: names are `Var` (global, `self->`, `this->`), `Builtin`,
//!   or the value an inline or a predefined name (`ENOENT`, `NULL`) stands for;
//! - constant subexpressions are folded (`(0 == 0 || pid == 0)` is `1`), and `sizeof` is a
//!   constant except for strings (whose size depends on the `strsize` option) and
//!   structs (whose layout the front end does not know);
//! - `ExprKind::Aggregation` appears only as an argument of printa, clear, trunc, normalize
//!   and denormalize; aggregations are filled only by `Stmt::Aggregate`;
//! - `Program::variables` lists every variable and aggregation with its type and key types;
//! - assigning integer 0 to a thread-local or an associative element frees it, whatever its
//!   type, as in D.
//!
//! Layout: `lexer` (with `macros` and `literal`), `arith` (integer semantics, shared with the
//! executor), `format` (printf formats, shared with the executor), `parser` (items and statements; `expr`,
//! `types`), `check` (names and types in `expr`, assignments in `targets`, calls in `calls`
//! and `printf`, the order of actions around speculate() and commit() in `speculation`,
//! destructive actions in `destructive`, `fold`, `options`, `constants`, `builtins`), `diagnostic`, `dump` (the text
//! form the golden tests compare).

pub(crate) mod arith;
pub(crate) mod ast;
mod check;
mod diagnostic;
mod dump;
pub(crate) mod format;
mod lexer;
mod literal;
mod macros;
mod parser;
mod span;
mod token;
pub(crate) mod typetable;

pub use check::{check_option, first_destructive_action};
pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use dump::dump;
#[cfg(test)]
pub use span::Span;

/// Values for D's macros: `$target` (from -p/-c) and `$1`…`$9` / `$$1`…`$$9` (the script's
/// arguments). `$pid` and `$ppid` are dtk's own, as in dtrace(1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MacroArgs {
    /// Read by `compile` and `parse`; `parse_program` leaves `$target` for `finish`.
    pub target: Option<u32>,
    pub args: Vec<String>,
    /// `-x defaultargs`: unset arguments are 0 and "", and unused ones are not errors.
    pub defaultargs: bool,
}

/// A checked program, and the warnings found on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    pub program: ast::Program,
    pub warnings: Vec<Diagnostic>,
}

/// A parsed program, not yet checked, whose `$target` is not yet known.
#[derive(Debug, Clone)]
pub struct Parsed(parser::Parsed);

impl Parsed {
    /// The program as parsed: probe descriptions still hold `$target` as written.
    pub fn program(&self) -> &ast::Program {
        &self.0.program
    }
}

/// Parses and checks a D script. `file` names it in diagnostics. On error, the result holds
/// every error and warning, in source order.
pub fn compile(file: &str, source: &str, macros: &MacroArgs) -> Result<Compiled, Diagnostics> {
    let parsed = parse_program(file, source, macros)?;
    finish(file, source, parsed, macros.target)
}

/// Parses a D script; `macros.target` is not read (see [`finish`]).
pub fn parse_program(file: &str, source: &str, macros: &MacroArgs) -> Result<Parsed, Diagnostics> {
    parser::parse_whole(source, macros)
        .map(Parsed)
        .map_err(|d| Diagnostics {
            source_text: source.to_string(),
            // The parser stops at its first error; dtrace calls those syntax errors unless
            // the lexer or parser named a more precise one.
            diagnostics: vec![named(file, syntax_unless_tagged(d))],
            errtags: false,
        })
}

fn syntax_unless_tagged(d: Diagnostic) -> Diagnostic {
    match d.tag {
        Some(_) => d,
        None => d.tagged("D_SYNTAX"),
    }
}

/// Substitutes `$target` (None: no target process) and checks a parsed script.
pub fn finish(
    file: &str,
    source: &str,
    parsed: Parsed,
    target: Option<u32>,
) -> Result<Compiled, Diagnostics> {
    let parser::Parsed {
        mut program,
        unfit,
        target_uses,
    } = parsed.0;
    macros::substitute_target(&mut program, &target_uses, target).map_err(|d| Diagnostics {
        source_text: source.to_string(),
        diagnostics: vec![named(file, d)],
        errtags: false,
    })?;
    let mut diagnostics: Vec<Diagnostic> = check::check(&mut program)
        .into_iter()
        .map(|d| named(file, d))
        .collect();
    if !diagnostics.iter().any(|d| d.severity == Severity::Error) {
        diagnostics.extend(unfit.map(|d| named(file, d)));
    }
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        return Err(Diagnostics {
            source_text: source.to_string(),
            diagnostics,
            errtags: false,
        });
    }
    Ok(Compiled {
        program,
        warnings: diagnostics,
    })
}

fn named(file: &str, mut d: Diagnostic) -> Diagnostic {
    d.file = file.to_string();
    d
}

/// Parses without checking: the lexer and parser alone (for the fuzz target and benchmarks
/// that measure them separately).
pub fn parse(source: &str, macros: &MacroArgs) -> Result<ast::Program, Diagnostic> {
    parser::parse(source, macros)
}
