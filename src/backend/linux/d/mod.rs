//! The D language front end: lexer, parser, AST with spans, semantic checks, diagnostics.
