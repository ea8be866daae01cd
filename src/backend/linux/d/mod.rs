//! The D language front end: lexer, parser, AST with spans, semantic checks, diagnostics.
//!
//! `compile` runs the whole front end: macro substitution (in the lexer), parsing, then
//! checking, which resolves names, substitutes inlines, folds constants and types every
//! expression. The code generator consumes the checked `ast::Program`.

pub mod ast;
mod check;
mod diagnostic;
mod dump;
mod lexer;
mod literal;
mod macros;
mod parser;
mod span;
mod token;

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use dump::dump;
pub use span::{locate, Location, Span};

/// Values for D's macros: `$target` (from -p/-c) and `$1`…`$9` / `$$1`…`$$9` (the script's
/// arguments). `$pid` and `$ppid` are dtk's own, as in dtrace(1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MacroArgs {
    pub target: Option<u32>,
    pub args: Vec<String>,
}

/// A checked program, and the warnings found on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    pub program: ast::Program,
    pub warnings: Vec<Diagnostic>,
}

/// Parses and checks a D script. `file` names it in diagnostics. On error, the result holds
/// every error and warning, in source order.
pub fn compile(file: &str, source: &str, macros: &MacroArgs) -> Result<Compiled, Diagnostics> {
    let named = |mut d: Diagnostic| {
        d.file = file.to_string();
        d
    };
    let mut program = parser::parse(source, macros).map_err(|d| Diagnostics {
        source_text: source.to_string(),
        diagnostics: vec![named(d)],
    })?;
    let diagnostics: Vec<Diagnostic> = check::check(&mut program).into_iter().map(named).collect();
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        return Err(Diagnostics {
            source_text: source.to_string(),
            diagnostics,
        });
    }
    Ok(Compiled {
        program,
        warnings: diagnostics,
    })
}

/// Parses without checking: the lexer and parser alone (for the fuzz target and benchmarks
/// that measure them separately).
pub fn parse(source: &str, macros: &MacroArgs) -> Result<ast::Program, Diagnostic> {
    parser::parse(source, macros)
}
