//! Speculative tracing: data recorded after speculate() appears only when its buffer is
//! committed, in commit order; discard() drops it; nspec bounds the buffers handed out and
//! specsize the data each holds, with drops counted.

use super::*;

fn begin_with_drops(source: &str) -> (Vec<String>, Vec<String>, u64) {
    let mut h = Harness::new(source, &[("BEGIN", ProbeKind::Begin)]);
    h.fire(&firing(0, 0));
    let events = h.take();
    let printed = events
        .iter()
        .filter_map(|e| match e {
            Event::Printf(p) => Some(p.text.to_str_lossy().into_owned()),
            _ => None,
        })
        .collect();
    (printed, errors(&events), h.drops(DropKind::Speculation))
}

#[test]
fn speculative_data_is_output_on_commit_in_commit_order_and_dropped_on_discard() {
    let src = r#"
#pragma D option nspec=3
BEGIN { a = speculation(); b = speculation(); c = speculation(); printf("%d %d %d\n", a, b, c); }
BEGIN { speculate(a); printf("a\n"); }
BEGIN { speculate(b); printf("b\n"); }
BEGIN { speculate(c); printf("c\n"); }
BEGIN { printf("plain\n"); }
BEGIN { commit(c); discard(b); commit(a); }
BEGIN { printf("end\n"); }
"#;
    let (printed, errors, drops) = begin_with_drops(src);
    assert_eq!(printed, ["1 2 3\n", "plain\n", "c\n", "a\n", "end\n"]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(drops, 0);
}

#[test]
fn speculation_returns_zero_and_counts_a_drop_when_no_buffer_is_free() {
    let src = r#"
#pragma D option nspec=2
BEGIN { printf("%d %d %d\n", speculation(), speculation(), speculation()); }
"#;
    let (printed, _, drops) = begin_with_drops(src);
    assert_eq!(printed, ["1 2 0\n"]);
    assert_eq!(drops, 1);
}

#[test]
fn a_committed_buffer_is_free_again() {
    let src = r#"
BEGIN { a = speculation(); }
BEGIN { speculate(a); printf("first\n"); }
BEGIN { commit(a); }
BEGIN { b = speculation(); printf("again %d\n", b); }
"#;
    let (printed, _, drops) = begin_with_drops(src);
    assert_eq!(printed, ["first\n", "again 1\n"]);
    assert_eq!(drops, 0);
}

#[test]
fn speculate_on_an_inactive_or_invalid_buffer_ends_the_clause_silently() {
    let src = r#"
#pragma D option nspec=2
BEGIN { n = 0; }
BEGIN { speculate(0); n++; printf("zero\n"); }
BEGIN { speculate(-1); n++; }
BEGIN { speculate(2); n++; }
BEGIN { speculate(123456); n++; }
BEGIN { printf("n=%d\n", n); }
"#;
    let (printed, errors, _) = begin_with_drops(src);
    assert_eq!(printed, ["n=0\n"]);
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn commit_and_discard_of_an_id_out_of_range_are_illegal_and_of_zero_do_nothing() {
    let src = r#"
#pragma D option nspec=8
BEGIN { n = 0; }
BEGIN { commit(0); discard(0); n++; }
BEGIN { commit(1); discard(2); n++; }
BEGIN { commit(9); n++; }
BEGIN { discard(-1); n++; }
BEGIN { printf("n=%d\n", n); }
"#;
    let (printed, errors, _) = begin_with_drops(src);
    assert_eq!(printed, ["n=2\n"]);
    assert_eq!(
        errors,
        [
            "illegal operation in action #1",
            "illegal operation in action #1"
        ]
    );
}

/// With a 16-byte header and 8 bytes per integer, a clause of `n` printf("%d") records
/// 16 + 8n bytes: it stops where it passes specsize, and a clause that fits alone but not in
/// the buffer runs to its end with its data dropped.
#[test]
fn specsize_bounds_each_clause_and_the_whole_buffer() {
    let program = |specsize: usize| {
        format!(
            r#"
#pragma D option specsize={specsize}
BEGIN {{ s = speculation(); n = 0; }}
BEGIN {{ speculate(s); printf("%d\n", 1); printf("%d\n", 2); n++; }}
BEGIN {{ speculate(s); printf("%d\n", 3); printf("%d\n", 4); printf("%d\n", 5); n++; }}
BEGIN {{ commit(s); }}
BEGIN {{ printf("n=%d\n", n); }}
"#
        )
    };
    let clause1 = 16 + 2 * 8;
    let clause2 = 16 + 3 * 8;
    let cases = [
        (clause1 - 1, vec!["n=0\n"], 2),
        (clause2 - 1, vec!["1\n", "2\n", "n=1\n"], 1),
        (clause1 + clause2 - 1, vec!["1\n", "2\n", "n=2\n"], 1),
        (
            clause1 + clause2,
            vec!["1\n", "2\n", "3\n", "4\n", "5\n", "n=2\n"],
            0,
        ),
    ];
    for (specsize, expected, expected_drops) in cases {
        let (printed, errors, drops) = begin_with_drops(&program(specsize));
        assert_eq!(printed, expected, "specsize={specsize}");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(drops, expected_drops, "specsize={specsize}");
    }
}

#[test]
fn speculative_buffers_hold_data_across_firings_until_committed() {
    let src = r#"
syscall::read:entry { self->s = speculation(); }
syscall::read:entry { speculate(self->s); printf("read %d\n", arg0); }
syscall::read:return /arg0 == 0/ { commit(self->s); }
syscall::read:return /arg0 != 0/ { discard(self->s); }
"#;
    let probes = [
        ("syscall::read:entry", ProbeKind::SyscallEntry),
        ("syscall::read:return", ProbeKind::SyscallReturn),
    ];
    let mut h = Harness::new(src, &probes);
    for (fd, ret) in [(3u64, 1u64), (4, 0), (5, 10)] {
        h.fire(&with_args(firing(0, 1), &[fd]));
        assert_eq!(h.printed(), Vec::<String>::new());
        h.fire(&with_args(firing(1, 1), &[ret]));
        let out = h.printed();
        let expected = if ret == 0 {
            vec![format!("read {fd}\n")]
        } else {
            vec![]
        };
        assert_eq!(out, expected);
    }
}
