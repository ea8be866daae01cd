//! Aggregating functions through D: values, bucket layouts, clear, trunc, normalize.

use super::*;
use crate::event::{AggEntry, AggFunc, AggValue, Value, QUANTIZE_BUCKETS};

/// Fires probe 0 once per value, with the value in arg0, then returns the final snapshots.
fn aggregate(src: &str, values: &[i64]) -> Vec<AggSnapshot> {
    let mut h = Harness::new(src, &[("syscall::read:entry", ProbeKind::SyscallEntry)]);
    for &v in values {
        h.fire(&with_args(firing(0, 1), &[v as u64]));
    }
    assert!(errors(&h.take()).is_empty());
    h.finals()
}

fn only_value(snapshots: &[AggSnapshot]) -> AggValue {
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    assert_eq!(snapshots[0].entries.len(), 1, "{snapshots:?}");
    snapshots[0].entries[0].value.clone()
}

#[test]
fn scalar_functions() {
    let values = [5, -3, 12, 7];
    let cases = [
        ("count()", AggValue::Scalar(4)),
        ("sum((long)arg0)", AggValue::Scalar(21)),
        ("min((long)arg0)", AggValue::Scalar(-3)),
        ("max((long)arg0)", AggValue::Scalar(12)),
        (
            "avg((long)arg0)",
            AggValue::Avg {
                count: 4,
                total: 21,
            },
        ),
        (
            "stddev((long)arg0)",
            AggValue::Stddev {
                count: 4,
                total: 21,
                total_squares: 25 + 9 + 144 + 49,
            },
        ),
    ];
    for (call, expected) in cases {
        let src = format!("syscall::read:entry {{ @a = {call}; }}");
        let snapshots = aggregate(&src, &values);
        assert_eq!(only_value(&snapshots), expected, "{call}");
        assert_eq!(snapshots[0].name, "a");
    }
}

#[test]
fn quantize_buckets() {
    let snapshots = aggregate(
        "syscall::read:entry { @q = quantize((long)arg0); }",
        &[0, 1, 2, 3, 1024, -5],
    );
    assert_eq!(snapshots[0].func, AggFunc::Quantize);
    let AggValue::Quantize(counts) = only_value(&snapshots) else {
        panic!("not quantize")
    };
    assert_eq!(counts.len(), QUANTIZE_BUCKETS);
    let mut expected = vec![0; QUANTIZE_BUCKETS];
    expected[63] = 1; // 0
    expected[64] = 1; // 1
    expected[65] = 2; // 2, 3
    expected[74] = 1; // 1024
    expected[60] = 1; // -5 in (-8, -4]
    assert_eq!(counts, expected);
}

#[test]
fn lquantize_edges() {
    let snapshots = aggregate(
        "syscall::read:entry { @l = lquantize((long)arg0, 0, 100, 10); }",
        &[-1, 0, 9, 10, 99, 100, 1000],
    );
    assert_eq!(
        only_value(&snapshots),
        AggValue::Lquantize {
            base: 0,
            step: 10,
            levels: 10,
            counts: vec![1, 2, 1, 0, 0, 0, 0, 0, 0, 0, 1, 2],
        }
    );
}

#[test]
fn llquantize_orders_of_magnitude() {
    let snapshots = aggregate(
        "syscall::read:entry { @l = llquantize((long)arg0, 10, 0, 2, 10); }",
        &[0, 1, 5, 10, 55, 100, 999, 1000, 5000],
    );
    let AggValue::Llquantize {
        factor,
        low,
        high,
        nsteps,
        counts,
    } = only_value(&snapshots)
    else {
        panic!("not llquantize")
    };
    assert_eq!((factor, low, high, nsteps), (10, 0, 2, 10));
    // <1, then 1..9, 10..90, 100..900 (9 buckets each), then >= 1000.
    assert_eq!(counts.len(), 1 + 27 + 1);
    let mut expected = vec![0; 29];
    expected[0] = 1; // 0
    expected[1] = 1; // 1
    expected[5] = 1; // 5
    expected[10] = 1; // 10
    expected[14] = 1; // 55 in [50, 60)
    expected[19] = 1; // 100
    expected[27] = 1; // 999 in [900, 1000)
    expected[28] = 2; // 1000, 5000
    assert_eq!(counts, expected);
}

fn keyed(snapshot: &AggSnapshot) -> Vec<(String, i64)> {
    snapshot
        .entries
        .iter()
        .map(|AggEntry { keys, value }| {
            let Value::Str(k) = &keys[0] else {
                panic!("{keys:?}")
            };
            let AggValue::Scalar(v) = value else {
                panic!("{value:?}")
            };
            (k.to_str_lossy().into_owned(), *v)
        })
        .collect()
}

fn printas(h: &mut Harness) -> Vec<AggSnapshot> {
    h.take()
        .into_iter()
        .filter_map(|e| match e {
            Event::Agg(s) => Some(s),
            _ => None,
        })
        .collect()
}

#[test]
fn clear_trunc_normalize_through_actions() {
    let src = r#"
syscall::read:entry { @s[execname] = sum((long)arg0); }
tick-1s /arg0 == 0/ { normalize(@s, 10); printa(@s); denormalize(@s); }
tick-1s /arg0 == 1/ { trunc(@s, 1); printa(@s); }
tick-1s /arg0 == 2/ { clear(@s); printa(@s); }
tick-1s /arg0 == 3/ { trunc(@s); printa(@s); }
"#;
    let mut h = Harness::new(
        src,
        &[
            ("syscall::read:entry", ProbeKind::SyscallEntry),
            ("profile:::tick-1s", ProbeKind::Tick),
        ],
    );
    for (comm, n) in [("cat", 100), ("dd", 250), ("ls", 30)] {
        let mut f = with_args(firing(0, 1), &[n]);
        f.comm = comm.into();
        h.fire(&f);
    }
    let s = |k: &str, v: i64| (k.to_string(), v);
    h.fire(&with_args(firing(1, 0), &[0]));
    assert_eq!(
        keyed(&printas(&mut h)[0]),
        [s("cat", 10), s("dd", 25), s("ls", 3)]
    );
    h.fire(&with_args(firing(1, 0), &[1]));
    assert_eq!(keyed(&printas(&mut h)[0]), [s("dd", 250)]);
    h.fire(&with_args(firing(1, 0), &[2]));
    assert_eq!(keyed(&printas(&mut h)[0]), [s("dd", 0)]);
    h.fire(&with_args(firing(1, 0), &[3]));
    assert_eq!(keyed(&printas(&mut h)[0]), []);
    assert!(h.finals().is_empty());
}

#[test]
fn printa_of_a_distribution_with_a_format() {
    let src = r#"
syscall::read:entry { @q[execname] = quantize((long)arg0); }
END { printa("%s%@d\n", @q); }
"#;
    let mut h = Harness::new(
        src,
        &[
            ("syscall::read:entry", ProbeKind::SyscallEntry),
            ("END", ProbeKind::End),
        ],
    );
    h.fire(&with_args(firing(0, 1), &[4]));
    h.fire(&firing(1, 0));
    let text = h.printed().join("");
    assert!(text.starts_with("cat\n"), "{text:?}");
    assert!(text.contains("Distribution"), "{text:?}");
    assert!(
        text.contains("               4 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 1"),
        "{text:?}"
    );
}

#[test]
fn final_print_follows_program_order() {
    let src = r#"
syscall::read:entry /arg0 == 1/ { @first = count(); }
syscall::read:entry { @second = sum((long)arg0); }
"#;
    let mut h = Harness::new(src, &[("syscall::read:entry", ProbeKind::SyscallEntry)]);
    h.fire(&with_args(firing(0, 1), &[2]));
    h.fire(&with_args(firing(0, 1), &[1]));
    let names: Vec<String> = h.finals().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["first", "second"]);
}

#[test]
fn printa_of_several_aggregations_fills_missing_keys_with_zero() {
    let src = r#"
syscall::read:entry { @c[execname] = count(); @q[execname] = quantize((long)arg0); }
syscall::write:entry { @c[execname] = count(); trunc(@q); }
END { printa("%s %@d\n%@d", @c, @q); }
"#;
    let mut h = Harness::new(
        src,
        &[
            ("syscall::read:entry", ProbeKind::SyscallEntry),
            ("syscall::write:entry", ProbeKind::SyscallEntry),
            ("END", ProbeKind::End),
        ],
    );
    h.fire(&with_args(firing(0, 1), &[8]));
    h.fire(&firing(1, 1));
    h.fire(&firing(2, 0));
    let text = h.printed().join("");
    assert!(text.starts_with("cat 2\n"), "{text:?}");
    // @q has no entry for "cat" after trunc: its distribution is all zero.
    assert!(text.contains("               0 |"), "{text:?}");
    assert!(!text.contains('@'), "{text:?}");
}
