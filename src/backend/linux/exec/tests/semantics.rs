//! D's semantics where they are easy to get subtly wrong, each as DTrace defines it: sizes of
//! constants, strings that end at a NUL or at strsize, the side effects that constant
//! logical operands must not drop, and 64-bit intermediate arithmetic.

use super::*;

#[test]
fn a_character_constant_is_an_int_and_a_string_constant_an_array() {
    let src = r#"BEGIN { printf("%d %d %d %c\n", sizeof('c'), sizeof "hi", sizeof(""), 'x'); }"#;
    assert_eq!(begin(src), ["4 3 1 x\n"]);
}

#[test]
fn a_string_constant_ends_at_its_first_nul() {
    let src = r#"BEGIN { s = "ab\0cd"; printf("%s %d %d\n", s, strlen(s), s == "ab"); }"#;
    assert_eq!(begin(src), ["ab 2 1\n"]);
}

#[test]
fn strsize_bounds_constants_and_every_string_result() {
    let src = r#"
#pragma D option strsize=5
BEGIN {
    self->t = "abcdefgh";
    printf("%s %s %d %s %s %s\n", "abcdefgh", self->t, strlen("123456789"),
        lltostr(123456789), toupper("abcdefgh"), strjoin("ab", "cdefg"));
}
"#;
    let mut h = Harness::new(src, &[("BEGIN", ProbeKind::Begin)]);
    h.fire(&firing(0, 7));
    let cut = |s: &str| s[..5].to_string();
    let want = format!(
        "{} {} 5 {} {} {}\n",
        cut("abcdefgh"),
        cut("abcdefgh"),
        cut("123456789"),
        cut("ABCDEFGH"),
        cut("abcdefg")
    );
    assert_eq!(h.printed(), [want]);
}

#[test]
fn copyinstr_reads_its_limit_less_the_nul() {
    let src =
        r#"syscall::write:entry { printf("%s|%s|\n", copyinstr(arg1, 32), copyinstr(arg1, 1)); }"#;
    let mut h = Harness::new(src, &[("syscall::write:entry", ProbeKind::SyscallEntry)]);
    let text = "x".repeat(40);
    h.fire(&with_string(
        with_args(firing(0, 1), &[1, 0x1000]),
        1,
        &text,
    ));
    assert_eq!(h.printed(), [format!("{}||\n", &text[..31])]);
}

#[test]
fn a_constant_operand_of_a_logical_operator_keeps_the_other_side_effects() {
    let src = r#"
BEGIN { x = (h = 3) || 1; y = (g = 2) && 0; z = 0 && (k = 5); printf("%d %d %d %d %d %d\n", x, h, y, g, z, k); }
"#;
    assert_eq!(begin(src), ["1 3 0 2 0 0\n"]);
}

#[test]
fn an_assignment_in_a_predicate_is_an_assignment() {
    let src = "BEGIN /(this->a = 7) || 1/ { printf(\"%d\\n\", this->a); } BEGIN /i++ || 1/ { printf(\"%d\\n\", i); }";
    let compiled = d::compile("p.d", src, &d::MacroArgs::default()).unwrap();
    assert!(compiled.warnings.is_empty(), "{:?}", compiled.warnings);
    assert_eq!(begin(src), ["7\n", "1\n"]);
}

#[test]
fn int_arithmetic_keeps_64_bits_until_stored() {
    let i: i64 = 25920;
    let wide = i - (i + i * 3 + i) * i / i * i;
    let src = format!(
        "BEGIN {{ i = {i}; i = i - (i + (i * 3) + i) * i / i * i; printf(\"%d %d\\n\", i, {i} * {i} / {i}); }}"
    );
    assert_eq!(begin(&src), [format!("{} {i}\n", wide as i32)]);
}

#[test]
fn an_llquantize_whose_top_overflows_64_bits_is_refused_at_compile_time() {
    let compile = |high: u32| {
        let src = format!("BEGIN {{ @ = llquantize(1, 10, 0, {high}, 20); exit(0); }}");
        d::compile("l.d", &src, &d::MacroArgs::default()).map(|_| ())
    };
    // 10^(high+1) must fit in 64 bits, as dtrace requires.
    for high in [18, 19, 30] {
        let fits = 10u64.checked_pow(high + 1).is_some();
        let result = compile(high);
        assert_eq!(result.is_ok(), fits, "high {high}: {result:?}");
        if let Err(e) = result {
            assert!(
                e.to_string().contains("will cause overflow of 64 bits"),
                "{e}"
            );
        }
    }
}

#[test]
fn the_aggsort_options_order_printa_and_the_final_print() {
    // Keys and values chosen so that every option gives a different order.
    let entries = [(1, "b", 5), (2, "a", 3), (3, "c", 4)];
    let body: String = entries
        .iter()
        .map(|(n, s, v)| format!("@[{n}, \"{s}\"] = sum({v}); "))
        .collect();
    let run = |pragmas: &str| {
        let src = format!("{pragmas}\nBEGIN {{ {body} printa(\"%d %s %@d\\n\", @); }}");
        begin(&src).concat()
    };
    let expect = |mut order: Vec<(i32, &str, i32)>, rev: bool| {
        if rev {
            order.reverse();
        }
        order
            .iter()
            .map(|(n, s, v)| format!("{n} {s} {v}\n"))
            .collect::<String>()
    };
    let mut by_value = entries.to_vec();
    by_value.sort_by_key(|e| e.2);
    let mut by_key = entries.to_vec();
    by_key.sort_by_key(|e| e.0);
    let mut by_second_key = entries.to_vec();
    by_second_key.sort_by_key(|e| e.1);
    assert_eq!(run(""), expect(by_value.clone(), false));
    assert_eq!(run("#pragma D option aggsortrev"), expect(by_value, true));
    assert_eq!(
        run("#pragma D option aggsortkey"),
        expect(by_key.clone(), false)
    );
    let both = "#pragma D option aggsortkey\n#pragma D option aggsortrev";
    assert_eq!(run(both), expect(by_key, true));
    let pos = "#pragma D option aggsortkey\n#pragma D option aggsortkeypos=1";
    assert_eq!(run(pos), expect(by_second_key, false));
}

#[test]
fn aggsortpos_picks_the_aggregation_that_orders_a_printa() {
    let src = r#"
#pragma D option aggsortpos=1
BEGIN { @a[1] = sum(1); @a[2] = sum(2); @b[1] = sum(20); @b[2] = sum(10);
        printa("%d %@d %@d\n", @a, @b); }
"#;
    assert_eq!(begin(src), ["2 2 10\n", "1 1 20\n"]);
}

#[test]
fn an_unset_string_is_null_and_trace_of_it_faults() {
    let src = r#"
string s[int];
BEGIN { printf("%d [%s]\n", s[1] == "", s[1]); }
BEGIN { trace(s[1]); printf("not reached\n"); }
ERROR { printf("fault %d at %x\n", arg4, arg5); }
"#;
    let mut h = Harness::new(
        src,
        &[("BEGIN", ProbeKind::Begin), ("ERROR", ProbeKind::Error)],
    );
    h.fire(&firing(0, 0));
    // DTRACEFLT_BADADDR (1) at address 0.
    assert_eq!(h.printed(), ["1 []\n", "fault 1 at 0\n"]);
}
