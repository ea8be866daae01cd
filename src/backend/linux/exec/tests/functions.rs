//! strchr, strrchr, strtok and their NULL results, the byte-order functions and rand.

use super::*;

#[test]
fn strchr_and_strrchr_return_null_when_the_character_is_absent() {
    let src = r#"
BEGIN {
    s = "fooeyfooeyfoo";
    printf("%s|%s|%d|%d\n", strchr(s, 'y'), strrchr(s, 'y'), strchr(s, 'a') == NULL,
        NULL != strrchr(s, 'f'));
}
"#;
    assert_eq!(begin(src), ["yfooeyfoo|yfoo|1|1\n"]);
}

#[test]
fn strtok_continues_the_last_string_and_ends_with_null() {
    let src = r#"
BEGIN { t = strtok(",,a,,bc,", ","); printf("%s\n", t); }
BEGIN { t = strtok(NULL, ","); printf("%s\n", t); }
BEGIN { printf("%d\n", strtok(NULL, ",") == NULL); }
"#;
    assert_eq!(begin(src), ["a\n", "bc\n", "1\n"]);
}

#[test]
fn strtok_of_null_before_any_string_or_with_null_delimiters_faults() {
    for src in [
        r#"BEGIN { trace(strtok(NULL, ",")); }"#,
        r#"BEGIN { trace(strtok("a,b", NULL)); }"#,
    ] {
        let mut h = Harness::new(src, &[("BEGIN", ProbeKind::Begin)]);
        h.fire(&firing(0, 0));
        assert_eq!(
            errors(&h.take()),
            ["invalid address (0x0) in action #1"],
            "{src}"
        );
    }
}

#[test]
fn byte_order_functions_swap_16_32_and_64_bits() {
    let v: u64 = 0x1234_5678_9abc_def0;
    let src = format!(
        r#"BEGIN {{ printf("%x %x %x %x %x %x\n", htons({v}ll), htonl({v}ll), htonll({v}ll),
            ntohs({v}ll), ntohl({v}ll), ntohll({v}ll)); }}"#
    );
    let s = format!("{:x}", (v as u16).swap_bytes());
    let l = format!("{:x}", (v as u32).swap_bytes());
    let ll = format!("{:x}", v.swap_bytes());
    assert_eq!(begin(&src), [format!("{s} {l} {ll} {s} {l} {ll}\n")]);
}

#[test]
fn rand_varies_between_calls() {
    let src = r#"BEGIN { printf("%d %d %d %d\n", rand(), rand(), rand(), rand()); }"#;
    let out = begin(src);
    let values: Vec<i64> = out[0]
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(values.len(), 4);
    assert!(
        values.windows(2).any(|w| w[0] != w[1]),
        "four equal values: {values:?}"
    );
}

#[test]
fn error_probes_compare_fault_types_with_the_dtraceflt_constants() {
    let src = r#"
BEGIN { x = 0; y = 1 / x; }
ERROR { printf("%d %d\n", arg4 == DTRACEFLT_DIVZERO, arg4 == DTRACEFLT_BADADDR); }
"#;
    let mut h = Harness::new(
        src,
        &[("BEGIN", ProbeKind::Begin), ("ERROR", ProbeKind::Error)],
    );
    h.fire(&firing(0, 0));
    assert_eq!(h.printed(), ["1 0\n"]);
}

#[test]
fn jstack_is_ustack() {
    let compiled = d::compile(
        "t.d",
        "BEGIN { jstack(); jstack(3, 100); }",
        &d::MacroArgs::default(),
    )
    .unwrap();
    let body = compiled.program.clauses()[0].body.clone().unwrap();
    for stmt in body {
        let ast::Stmt::Expr(e) = stmt else {
            panic!("{stmt:?}")
        };
        assert!(
            matches!(
                e.kind,
                ast::ExprKind::Call {
                    func: ast::Function::Ustack,
                    ..
                }
            ),
            "{e:?}"
        );
    }
}

#[test]
fn strstr_of_an_absent_string_is_null_and_prints_empty() {
    let src = r#"
BEGIN {
    printf("%d %d [%s]\n", strstr("foobar", "bar") != NULL, strstr("foobar", "baz") == NULL,
        strstr("foobar", "baz"));
}
"#;
    assert_eq!(begin(src), ["1 1 []\n"]);
}

#[test]
fn strtok_resumes_at_the_delimiter_that_ended_the_last_token() {
    // The next call skips that delimiter only if it is one of its own.
    let src = r#"
BEGIN { printf("%s\n", strtok("xyAbcMd", "A")); }
BEGIN { printf("%s\n", strtok(NULL, "M")); }
"#;
    assert_eq!(begin(src), ["xy\n", "Abc\n"]);
}

#[test]
fn cleanpath_getmajor_and_getminor() {
    let dev: u64 = 0xabcd_ef01_2345_6789;
    let src = format!(
        r#"BEGIN {{ printf("%s %x %x\n", cleanpath("/a/./b//../c/"), getmajor({dev}ll),
            getminor({dev}ll)); }}"#
    );
    let major = (dev as u32) >> 20;
    let minor = dev & 0xf_ffff;
    assert_eq!(begin(&src), [format!("/a/c {major:x} {minor:x}\n")]);
}
