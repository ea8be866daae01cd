//! The D front end: golden files (tests/d/*.d beside their expected *.out, regenerated with
//! DTK_UPDATE_GOLDEN=1), the bundled scripts and a corpus of realistic scripts that must
//! compile cleanly, and error cases that pin each message to its line and column.

use std::path::{Path, PathBuf};

use dtk::internals::d::ast::{DType, Expr, ExprKind, Item, Stmt};
use dtk::internals::d::{compile, dump, MacroArgs, Severity};

fn golden_macros() -> MacroArgs {
    MacroArgs {
        target: Some(4242),
        args: vec!["10".into(), "read".into(), "hello world".into()],
        // One set of arguments serves every golden file, whichever of them it uses.
        defaultargs: true,
    }
}

fn d_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "d"))
        .collect();
    files.sort();
    files
}

/// What a golden file holds for a script: the AST dump and rendered warnings, or the
/// rendered diagnostics.
fn golden_text(name: &str, source: &str) -> String {
    match compile(name, source, &golden_macros()) {
        Ok(compiled) => {
            let mut out = dump(&compiled.program, source);
            for w in &compiled.warnings {
                out.push_str(&w.render(source));
            }
            out
        }
        Err(diagnostics) => diagnostics.to_string(),
    }
}

#[test]
fn golden_files_match() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/d");
    let update = std::env::var("DTK_UPDATE_GOLDEN").as_deref() == Ok("1");
    let files = d_files(&dir);
    assert!(
        files.len() >= 20,
        "expected the golden scripts in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let source = std::fs::read_to_string(&path).expect("read golden script");
        let actual = golden_text(&name, &source);
        let out = path.with_extension("out");
        if update {
            std::fs::write(&out, &actual).expect("write golden output");
            continue;
        }
        let expected = std::fs::read_to_string(&out).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{name}:\n--- expected\n{expected}--- actual\n{actual}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches (DTK_UPDATE_GOLDEN=1 regenerates):\n{}",
        failures.join("\n")
    );
}

fn assert_compiles_cleanly(path: &Path, macros: &MacroArgs) {
    let source = std::fs::read_to_string(path).expect("read script");
    let name = path.display().to_string();
    match compile(&name, &source, macros) {
        Ok(compiled) => {
            let warnings: Vec<String> = compiled
                .warnings
                .iter()
                .map(|w| w.render(&source))
                .collect();
            assert!(warnings.is_empty(), "{name} warns:\n{}", warnings.concat());
        }
        Err(e) => panic!("{name} does not compile:\n{e}"),
    }
}

#[test]
fn bundled_scripts_compile() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("d-scripts");
    let files = d_files(&dir);
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(String::from))
        .collect();
    for expected in ["opens.d", "pyflow.d", "syscalls.d"] {
        assert!(
            names.iter().any(|n| n == expected),
            "d-scripts/{expected} is missing"
        );
    }
    let macros = MacroArgs {
        target: Some(std::process::id()),
        ..MacroArgs::default()
    };
    for path in files {
        assert_compiles_cleanly(&path, &macros);
    }
}

#[test]
fn corpus_scripts_compile() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/d/corpus");
    let files = d_files(&dir);
    assert!(files.len() >= 40, "the corpus has {} scripts", files.len());
    let macros = MacroArgs {
        target: Some(4242),
        args: vec!["1000".into(), "bash".into()],
        defaultargs: true,
    };
    for path in files {
        assert_compiles_cleanly(&path, &macros);
    }
}

/// One script with an error, and where and what the first error must be.
struct ErrorCase {
    source: &'static str,
    line: usize,
    column: usize,
    message: &'static str,
}

const fn case(
    source: &'static str,
    line: usize,
    column: usize,
    message: &'static str,
) -> ErrorCase {
    ErrorCase {
        source,
        line,
        column,
        message,
    }
}

const ERROR_CASES: &[ErrorCase] = &[
    case("BEGIN\n{\n    self->t = timestamp\n    trace(1);\n}\n", 3, 24, "expected `;`, found identifier `trace`"),
    case("BEGIN { x = (1 + 2; }", 1, 19, "expected `)`, found `;`"),
    case("BEGIN { trace(nosuch); }", 1, 15, "unknown identifier `nosuch`"),
    case("BEGIN { frobnicate(1); }", 1, 9, "unknown function `frobnicate`"),
    case("BEGIN { exit(); }", 1, 9, "`exit()` takes 1 argument, found 0"),
    case("BEGIN { x = substr(\"abc\"); }", 1, 13, "`substr()` takes 2 or 3 arguments, found 1"),
    case("BEGIN { x = strlen(3); }", 1, 20, "argument 1 of `strlen()` must be a string, found int"),
    case("BEGIN { @a = count(1); }", 1, 9, "`count()` takes no arguments, found 1"),
    case("BEGIN { @a = sum(\"x\"); }", 1, 18, "argument 1 of `sum()` must be an integer, found string"),
    case("BEGIN { @a = lquantize(1, 0, 10, pid); }", 1, 34, "argument 4 of `lquantize()` must be an integer constant, found a non-constant expression"),
    case("BEGIN { @a = lquantize(1, 10, 0, 1); }", 1, 9, "lquantize() base (argument #1) must be less than limit (argument #2)"),
    case("BEGIN { @a = lquantize(1, 0, 10000000, 1); }", 1, 9, "lquantize() step (argument #3) too small"),
    case("BEGIN { @a = lquantize(1, 0, 10, 20); }", 1, 9, "lquantize() step (argument #3) too large"),
    case("BEGIN { @a = llquantize(1, 1, 0, 6, 20); }", 1, 28, "llquantize() argument #1 must be an unsigned 16-bit quantity greater than or equal to 2"),
    case("BEGIN { @a = llquantize(1, 10, 0, 30, 20); }", 1, 35, "llquantize() argument #3 (high magnitude) will cause overflow of 64 bits"),
    case("BEGIN { @a = llquantize(1, 10, 0, 6, 3); }", 1, 28, "llquantize() argument #4 (steps) must evenly divide argument #1 (factor)"),
    case("BEGIN { @a = lquantize(1, 0, 10, 1);\n@a = lquantize(1, 0, 20, 1); }", 2, 1, "lquantize() limit (argument #2) doesn't match previous declaration: expected 10, found 20"),
    case("BEGIN { stack(0); }", 1, 15, "stack() argument #1 must be a non-zero positive integer constant"),
    case("BEGIN { printf(\"\"); }", 1, 16, "printf() format string is empty"),
    case("BEGIN { printf(\"%d\\n\", execname); }", 1, 24, "conversion #1 `%d` needs an integer, but this argument has type string"),
    case("BEGIN { printf(\"%s %s\\n\", execname); }", 1, 9, "the format of `printf()` needs 2 arguments after it, found 1"),
    case("BEGIN { printf(\"%d\\n\", 1, 2); }", 1, 9, "the format of `printf()` needs 1 argument after it, found 2"),
    case("BEGIN { printf(\"%q\\n\", 1); }", 1, 16, "`printf()`: unknown conversion `%q`"),
    case("BEGIN { printf(execname); }", 1, 16, "the format of `printf()` must be a string constant"),
    case("BEGIN { printf(\"%f\\n\", 1); }", 1, 24, "conversion #1 `%f` needs a floating-point value, which D does not have"),
    case("BEGIN { @a = count(); x = @a; }", 1, 27, "aggregation `@a` cannot be used as a value; print it with printa()"),
    case("BEGIN { @a = count(); trace(@a + 1); }", 1, 29, "aggregation `@a` cannot be used as a value"),
    case("BEGIN { x = count(); }", 1, 13, "aggregating function `count()` can only be used as `@name[keys] = count(...)`"),
    case("BEGIN { @a = 1; }", 1, 14, "`@a` can only be assigned an aggregating function such as count() or quantize()"),
    case("BEGIN { x = trace(1); }", 1, 13, "`trace()` is an action; it has no value"),
    case("BEGIN { printa(@nope); }", 1, 16, "`@nope` is not an aggregation this program fills"),
    case("BEGIN { @a = count(); @a = sum(1); }", 1, 23, "`@a` is used with sum() here but with count() before"),
    case("BEGIN { @a[1] = count(); @a[1, 2] = count(); }", 1, 26, "`@a` has 2 key(s) here but 1 before"),
    case("BEGIN { x = \"a\"; x = 1; }", 1, 22, "cannot assign int to `x`, which has type string"),
    case("BEGIN { x = execname + 1; }", 1, 13, "`+` needs integer operands, found string and int"),
    case("BEGIN /execname == 1/ { }", 1, 8, "cannot compare string with int using `==`"),
    case("BEGIN /execname/ { }", 1, 8, "a predicate must be an integer or a pointer, found string"),
    case("BEGIN { x = pid ? \"a\" : 1; }", 1, 19, "the branches of `?:` have different types: string and int"),
    case("BEGIN { pid = 1; }", 1, 9, "a builtin variable cannot be assigned"),
    case("inline int N = 3;\nBEGIN { N = 4; }", 2, 9, "inline `N` cannot be assigned"),
    case("inline int N = \"x\";", 1, 16, "inline `N` is declared int but its value has type string"),
    case("BEGIN { x = args; }", 1, 13, "`args` must be indexed, as in `args[0]`"),
    case("BEGIN { x = curpsinfo->pr_nosuch; }", 1, 13, "psinfo_t has no member `pr_nosuch`"),
    case("BEGIN { x = curpsinfo.pr_pid; }", 1, 13, "is a pointer; use `->pr_pid`"),
    case("BEGIN { x = (int)execname; }", 1, 18, "cannot cast string to int"),
    case("BEGIN { x = 1 / 0; }", 1, 17, "division by zero in a constant expression"),
    case("BEGIN { x = 99999999999999999999; }", 1, 13, "integer constant `99999999999999999999` is too large for 64 bits"),
    case("BEGIN { x = 12q; }", 1, 13, "invalid suffix `q` on integer constant"),
    case("BEGIN { x = \"abc; }", 1, 13, "unterminated string constant"),
    case("BEGIN { x = 1; } /* open", 1, 18, "unterminated comment"),
    case("BEGIN { x = $4; }", 1, 13, "macro argument `$4` is not defined: 3 argument(s) given"),
    case("BEGIN { x = $3; }", 1, 13, "is neither an integer nor an identifier; use `$$3` for a string"),
    case("#pragma D option nosuch\n", 1, 1, "failed to set option `nosuch`: Invalid option name"),
    case("#pragma D option bufsize\n", 1, 1, "failed to set option `bufsize`: it needs a value: `bufsize=...`"),
    case("#pragma D option bufsize=lots\n", 1, 1, "failed to set option `bufsize`: it takes a size such as 4m, found `lots`"),
    case("#pragma D option switchrate=often\n", 1, 1, "failed to set option `switchrate`: it takes a rate such as 10hz or 100ms, found `often`"),
    case("#pragma D option bufpolicy=drop\n", 1, 1, "failed to set option `bufpolicy`: it takes fill, switch, ring, found `drop`"),
    case("#include <stdio.h>\n", 1, 1, "`#include` is a C preprocessor directive"),
    case("a:b:c:d:e { }", 1, 1, "has 5 parts; at most four"),
    case("syscall::[ab:entry { }", 1, 1, "has no closing `]`"),
    case("BEGIN { x = ; }", 1, 13, "expected an expression, found `;`"),
    case("BEGIN { if (1) { x = 1; }", 1, 7, "this `{` has no matching `}`"),
    case("BEGIN { trace(1) trace(2); }", 1, 17, "expected `;`, found identifier `trace`"),
    case("BEGIN /pid/ ;", 1, 13, "expected `{` to start the clause body, found `;`"),
    case("BEGIN { x = self; }", 1, 17, "expected `->`, found `;`"),
    case("int x; int x;", 1, 8, "`x` is already declared"),
    case("int x = 5;", 1, 7, "a D declaration has no initializer; assign `x` in a clause"),
    case("BEGIN { a[1] = 2; a = 3; }", 1, 19, "`a` is an associative array; assign `a[key]`"),
    case("BEGIN { a[1, 2] = 2; x = a[1]; }", 1, 26, "`a` has 2 key(s), but 1 are given here"),
    case("BEGIN { x = ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))); }", 1, 60, "nested too deeply"),
    case("BEGIN { x = '\\q'; }", 1, 14, "unknown escape sequence"),
    case("BEGIN { x = ` y; }", 1, 13, "unexpected character '`'"),
    case("struct s { int a : 0; };", 1, 20, "bit-field width 0 is not between 1 and 64"),
    case("struct s { char a : 9; };", 1, 8, "bit-field width 9 exceeds its type, char"),
    case("struct s { string a : 3; };", 1, 19, "member `a` cannot have type string"),
    case("struct s { int a; int a; };", 1, 8, "member `a` is declared twice"),
    case("struct s { int a; };\nstruct s { int b; };", 2, 8, "struct s is already defined"),
    case("struct s { int a; } v;\nBEGIN { v.b = 1; }", 2, 9, "struct s has no member `b`"),
    case("struct t v;\nBEGIN { exit(0); }", 1, 1, "`v` has incomplete type struct t"),
    case("struct s { int a : 3; };\nBEGIN { x = offsetof(struct s, a); }", 2, 32, "offsetof cannot be applied to bit-field `a`"),
    case("BEGIN { x = offsetof(int, a); }", 1, 22, "offsetof needs a struct or union type, found int"),
    case("enum e { A = 0x80000000 };", 1, 10, "enumerator `A`'s value 2147483648 does not fit in an int"),
    case("enum e { A, B };\nenum f { B };", 2, 10, "enumerator `B` is already defined"),
    case("typedef int t;\ntypedef long t;", 2, 14, "typedef `t` is already defined"),
    case("int a[2];\nBEGIN { a[2] = 1; }", 2, 11, "index 2 is past the end of int [2]"),
    case("BEGIN { y = 1; y.x = 2; }", 1, 16, "only members of struct, union and array variables can be assigned"),
    case("int i;\nBEGIN { p = &i; }", 2, 14, "cannot take the address of D variable `i`"),
    case("int a[2];\nBEGIN { p = &a[1]; }", 2, 14, "dtk gives D variables no addresses"),
    case("int `x;", 1, 5, "a D variable's name has no scope"),
    case("this int a[int];", 1, 1, "clause-local `this->a` cannot be an associative array"),
    case("void *p;\nBEGIN { q = p + 1; }", 2, 13, "`+` cannot move a void pointer"),
    case("extern int;", 1, 1, "this extern declaration declares nothing"),
    case("int a[2], b[2];\nBEGIN { a = b; }", 2, 13, "an array cannot be assigned as a whole"),
    case(
        "BEGIN { x = `dtk_no_such_symbol; }",
        1,
        13,
        "kernel symbol `dtk_no_such_symbol` is not in /proc/kallsyms",
    ),
    case("BEGIN { x = $target; }", 1, 13, "`$target` is used but no target process was given"),
    case("", 1, 1, "no probes specified: the program has no probe clauses"),
    case("/* only a comment */\n#pragma D option quiet\n", 3, 1, "no probes specified"),
    case("BEGIN { x = $1; y = $$2; }", 1, 27, "extraneous argument \"hello world\" ($3 is not referenced)"),
];

#[test]
fn error_cases_report_message_line_and_column() {
    assert!(ERROR_CASES.len() >= 30);
    let mut failures = Vec::new();
    for (i, c) in ERROR_CASES.iter().enumerate() {
        let macros = if c.message.contains("$target") {
            MacroArgs::default()
        } else {
            MacroArgs {
                defaultargs: false,
                ..golden_macros()
            }
        };
        let Err(diagnostics) = compile("case.d", c.source, &macros) else {
            failures.push(format!("case {i}: compiled without error: {}", c.source));
            continue;
        };
        let Some(first) = diagnostics.errors().next() else {
            failures.push(format!("case {i}: no error diagnostics"));
            continue;
        };
        let (line, column) = first.line_column(c.source);
        if !first.message.contains(c.message) || (line, column) != (c.line, c.column) {
            failures.push(format!(
                "case {i}: expected {}:{} {:?}\n  got {}:{} {:?}",
                c.line, c.column, c.message, line, column, first.message
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Each error carries DTrace's tag for it (dt_errtags.h), and `-x errtags` renders it.
#[test]
fn errors_carry_dtrace_error_tags() {
    let cases = [
        ("BEGIN { x = ; }", "D_SYNTAX"),
        ("BEGIN { trace(nosuch); }", "D_IDENT_UNDEF"),
        ("BEGIN { exit(1, 2); }", "D_PROTO_LEN"),
        ("BEGIN { printf(\"%d\\n\", \"s\"); }", "D_PRINTF_ARG_TYPE"),
        (
            "BEGIN { @a = lquantize(1, 0, 10, 1); @a = lquantize(1, 5, 10, 1); }",
            "D_LQUANT_MATCHBASE",
        ),
        (
            "BEGIN { @a = llquantize(1, 10, 0, 6, 0); }",
            "D_LLQUANT_STEPTYPE",
        ),
        ("BEGIN { ustack(1, -1); }", "D_USTACK_STRSIZE"),
        ("#pragma D option nosuch\n", "D_PRAGMA_OPTSET"),
        ("BEGIN { trace($3); }", "D_MACRO_UNDEF"),
        ("BEGIN { copyinto(1, 2, 3); }", "D_PROTO_ARG"),
        ("BEGIN { bcopy(\"ab\", 4, 2); }", "D_PROTO_ARG"),
        ("BEGIN { p = alloca(); }", "D_PROTO_LEN"),
        ("BEGIN { p = alloca(257); }", "D_ALLOCA_SIZE"),
        (
            "#pragma D option scratchsize=1k\nBEGIN { p = alloca(1025); }",
            "D_ALLOCA_SIZE",
        ),
    ];
    for (source, tag) in cases {
        let Err(mut diagnostics) = compile("t.d", source, &MacroArgs::default()) else {
            panic!("compiled: {source}");
        };
        let first = diagnostics.errors().next().expect("an error");
        assert_eq!(first.tag, Some(tag), "{source}");
        let plain = diagnostics.to_string();
        assert!(!plain.contains(&format!("[{tag}]")), "{plain}");
        diagnostics.errtags = true;
        let tagged = diagnostics.to_string();
        assert!(tagged.contains(&format!(": error: [{tag}] ")), "{tagged}");
    }
}

/// A store that fails its check leaves its variable of no known type: later reads of it,
/// in the same clause or a later one, are not errors of their own (nor reads ahead of an
/// assignment), and the one error names the failed store.
#[test]
fn failed_store_is_reported_once() {
    let cases = [
        (
            "BEGIN {\n    printf(\"%d\\n\", (s = (string)pid)[1] == 'y');\n    printf(\"%s\", s);\n}\n",
            "pid)[1]",
        ),
        (
            "BEGIN\n{\n    i = NO_SUCH_NAME;\n    trace(i + 1);\n}\nEND\n{\n    printf(\"%s\", i);\n}\n",
            "NO_SUCH_NAME",
        ),
        (
            "BEGIN { x[self->k = (string)pid] = 1; } END { trace(self->k); }",
            "pid]",
        ),
    ];
    for (source, at) in cases {
        let Err(diagnostics) = compile("f.d", source, &MacroArgs::default()) else {
            panic!("compiled without error: {source}");
        };
        let errors: Vec<_> = diagnostics.errors().collect();
        let shown: Vec<_> = errors.iter().map(|d| d.render(source)).collect();
        assert_eq!(errors.len(), 1, "{source}\n{}", shown.join(""));
        let start = errors[0].span.start;
        assert!(source[start..].starts_with(at), "{}", shown[0]);
    }
    // The same shapes with valid stores compile, with the stored types read back.
    let valid = "BEGIN {\n    printf(\"%d\\n\", (s = execname) == \"y\");\n    printf(\"%s\", s);\n}\nEND\n{\n    i = 2;\n    trace(i + 1);\n}\n";
    compile("v.d", valid, &MacroArgs::default()).expect("compiles");
}

#[test]
fn unassigned_variable_read_is_a_warning() {
    let source = "syscall::read:return\n/self->ts/\n{\n    trace(timestamp - self->ts);\n}\n";
    let compiled = compile("w.d", source, &MacroArgs::default()).expect("compiles");
    assert_eq!(compiled.warnings.len(), 1);
    let w = &compiled.warnings[0];
    assert_eq!(w.severity, Severity::Warning);
    assert_eq!(w.line_column(source), (2, 2));
    assert_eq!(
        w.render(source),
        "w.d:2:2: warning: `self->ts` is read but never assigned; it is always zero\n    /self->ts/\n     ^^^^^^^^\n"
    );
}

#[test]
fn diagnostics_render_every_error() {
    let source = "BEGIN { x = nosuch; y = strlen(1); }";
    let err = compile("two.d", source, &MacroArgs::default()).expect_err("two errors");
    let text = err.to_string();
    assert_eq!(err.errors().count(), 2);
    assert!(
        text.contains("two.d:1:13: error: unknown identifier `nosuch`"),
        "{text}"
    );
    assert!(
        text.contains("two.d:1:32: error: argument 1 of `strlen()`"),
        "{text}"
    );
    assert!(text.contains("\n                ^^^^^^\n"), "{text}");
}

#[test]
fn inline_constants_fold_in_predicates() {
    let source = "inline int P = 0;\ninline string N = \"\";\nsyscall:::entry\n/(P == 0 || pid == P) && (N == \"\" || execname == N)/\n{ @[probefunc] = count(); }\n";
    let compiled = compile("f.d", source, &MacroArgs::default()).expect("compiles");
    let text = dump(&compiled.program, source);
    assert!(text.contains("  predicate 1:i32\n"), "{text}");
}

#[test]
fn dtk_run_reports_diagnostics_with_exit_code_2() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let script = dir.path().join("bad.d");
    std::fs::write(&script, "BEGIN\n{\n    printf(\"%d\\n\", execname);\n}\n").expect("write");
    let out = assert_cmd::Command::new(assert_cmd::cargo::cargo_bin("dtk"))
        .env("NO_COLOR", "1")
        .args(["--backend", "linux", "run"])
        .arg(&script)
        .output()
        .expect("run dtk");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "{}:3:20: error: conversion #1 `%d` needs an integer, but this argument has type string\n        printf(\"%d\\n\", execname);\n                       ^^^^^^^^\n",
        script.display()
    );
    assert!(stderr.contains(&expected), "stderr:\n{stderr}");
}

/// Calls `f` on `e` and every expression inside it.
fn walk(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    e.for_each_child(&mut |c| walk(c, f));
}

fn walk_stmts(stmts: &[Stmt], f: &mut dyn FnMut(&Expr)) {
    for stmt in stmts {
        match stmt {
            Stmt::Expr(e) => walk(e, f),
            Stmt::Aggregate(a) => a.keys.iter().chain(&a.args).for_each(|e| walk(e, f)),
            Stmt::If {
                cond,
                then,
                otherwise,
                ..
            } => {
                walk(cond, f);
                walk_stmts(then, f);
                walk_stmts(otherwise.as_deref().unwrap_or(&[]), f);
            }
        }
    }
}

/// What the code generator relies on: after `compile`, every expression has a type and no
/// name is left unresolved.
#[test]
fn checked_programs_are_fully_typed_and_resolved() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = d_files(&root.join("tests/d/corpus"));
    files.extend(d_files(&root.join("d-scripts")));
    files.extend(d_files(&root.join("tests/d")));
    let mut checked = 0;
    for path in files {
        let source = std::fs::read_to_string(&path).expect("read script");
        let Ok(compiled) = compile("t.d", &source, &golden_macros()) else {
            continue;
        };
        checked += 1;
        let mut problems = Vec::new();
        let mut check = |e: &Expr| {
            if e.ty == DType::Unknown || matches!(e.kind, ExprKind::Ident(_)) {
                problems.push(format!("{:?} at {:?}", e.kind, e.span));
            }
        };
        for item in &compiled.program.items {
            match item {
                Item::Clause(c) => {
                    if let Some(p) = &c.predicate {
                        walk(p, &mut check);
                    }
                    walk_stmts(c.body.as_deref().unwrap_or(&[]), &mut check);
                }
                Item::Decl(d) => {
                    if let Some(v) = &d.inline {
                        walk(v, &mut check);
                    }
                }
                Item::Pragma(_) => {}
            }
        }
        assert!(problems.is_empty(), "{}: {problems:#?}", path.display());
    }
    assert!(checked > 60, "only {checked} scripts compiled");
}

/// Runs `f` on a thread with a 2 MiB stack, the size of a test thread's or a small main
/// thread's, so that a pass that recursed without bound would overflow it.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// `a op b op c …` with `n` terms.
fn chain(term: impl Fn(usize) -> String, op: &str, n: usize) -> String {
    (1..=n).map(term).collect::<Vec<_>>().join(op)
}

#[test]
fn left_associative_chains_are_not_nesting() {
    on_small_stack(|| {
        for n in [95, 100, 10_000] {
            let sum = format!("BEGIN {{ x = {}; }}", chain(|_| "1".into(), " + ", n));
            let compiled = compile("sum.d", &sum, &MacroArgs::default())
                .unwrap_or_else(|e| panic!("{n} terms: {e}"));
            // Folded to the sum: the checker and the folder walked every term.
            let Item::Clause(clause) = &compiled.program.items[0] else {
                panic!("a clause")
            };
            let Stmt::Expr(assign) = &clause.body.as_ref().unwrap()[0] else {
                panic!("an assignment")
            };
            let ExprKind::Assign { value, .. } = &assign.kind else {
                panic!("an assignment")
            };
            assert_eq!(value.as_int(), Some(n as u64));
            let pids = chain(|i| format!("pid == {i}"), " || ", n);
            let predicate = format!("syscall::getpid:entry /{pids}/ {{ @ = count(); }}");
            let compiled = compile("or.d", &predicate, &MacroArgs::default())
                .unwrap_or_else(|e| panic!("{n} terms: {e}"));
            // Clone, compare, print and drop the deep tree too.
            let copy = compiled.clone();
            assert_eq!(copy, compiled);
            let text = dump(&copy.program, &predicate);
            assert!(text.contains(&format!("(== pid:i32 {n}:i32)")));
            drop(copy);
        }
        // Real nesting keeps its bound and its clear error.
        let nested = format!("BEGIN {{ x = {}1{}; }}", "(".repeat(97), ")".repeat(97));
        let err = compile("nested.d", &nested, &MacroArgs::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("nested too deeply (more than 96 levels)"),
            "{err}"
        );
    });
}
