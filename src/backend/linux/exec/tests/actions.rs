//! Actions and run-time errors: trace, printf, printa with and without a format, exit,
//! divide-by-zero, faults in predicates, copyin, and the default action.

use super::*;
use crate::event::{AggValue, TraceFormat, Value};

#[test]
fn trace_records_values_with_their_signedness() {
    let src = r#"
syscall::read:entry { trace(pid); trace(execname); trace(arg0); trace((int)arg0); }
"#;
    let mut h = Harness::new(src, &[("syscall::read:entry", ProbeKind::SyscallEntry)]);
    h.fire(&with_args(firing(0, 1), &[u64::MAX]));
    let events = h.take();
    assert_eq!(events.len(), 1, "one record per clause: {events:?}");
    let values: Vec<Value> = events
        .into_iter()
        .flat_map(|e| match e {
            Event::Record(r) => {
                assert_eq!(r.origin.probe.function, "read");
                r.values
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        values,
        [
            Value::Int(100),
            Value::Str("cat".into()),
            Value::UInt(u64::MAX),
            Value::Int(-1)
        ]
    );
}

#[test]
fn printf_keeps_its_arguments() {
    let src = r#"BEGIN { printf("%-5s|%5d|%x|%c|%S\n", "ab", -42, 255, 65, "a\tb"); }"#;
    let mut h = Harness::new(src, &[("BEGIN", ProbeKind::Begin)]);
    h.fire(&firing(0, 0));
    let events = h.take();
    let Event::Printf(p) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(p.text, "ab   |  -42|ff|A|a\\tb\n");
    assert_eq!(p.args[0], Value::Str("ab".into()));
    assert_eq!(p.args[1], Value::Int(-42));
}

#[test]
fn percent_y_prints_walltimestamp_as_a_date() {
    let text = begin(r#"BEGIN { printf("%Y", walltimestamp); }"#);
    let parts: Vec<&str> = text[0].split_whitespace().collect();
    assert_eq!(parts.len(), 4, "{text:?}");
    let year: i32 = parts[0].parse().unwrap();
    assert!(year >= 2024, "{text:?}");
}

#[test]
fn divide_by_zero_skips_the_rest_of_the_clause() {
    let src = r#"
syscall::read:entry { x = 1; printf("before\n"); y = 10 / (int)arg0; printf("after\n"); }
syscall::read:entry { printf("next clause %d\n", x); }
"#;
    let mut h = Harness::new(src, &[("syscall::read:entry", ProbeKind::SyscallEntry)]);
    h.fire(&with_args(firing(0, 1), &[0]));
    let events = h.take();
    assert_eq!(errors(&events), ["divide-by-zero in action #3"]);
    // The faulting clause's output is discarded; its assignment before the fault stays.
    let texts: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Printf(p) => Some(p.text.to_str().unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["next clause 1\n"]);
    let Event::Error { probe, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(probe.as_ref().unwrap().name, "entry");
}

#[test]
fn fault_in_a_predicate() {
    let src = r#"
syscall::read:entry /100 % (int)arg0 == 0/ { printf("yes\n"); }
"#;
    let mut h = Harness::new(src, &[("syscall::read:entry", ProbeKind::SyscallEntry)]);
    h.fire(&with_args(firing(0, 1), &[0]));
    assert_eq!(errors(&h.take()), ["divide-by-zero in predicate"]);
    h.fire(&with_args(firing(0, 1), &[10]));
    assert_eq!(h.printed(), ["yes\n"]);
}

#[test]
fn exit_returns_its_status_after_the_clause() {
    let src = r#"
syscall::read:entry { @n = count(); exit(3); printf("still runs\n"); }
END { printa(@n); }
"#;
    let mut h = Harness::new(
        src,
        &[
            ("syscall::read:entry", ProbeKind::SyscallEntry),
            ("END", ProbeKind::End),
        ],
    );
    assert_eq!(h.fire(&firing(0, 1)), Flow::Exit(3));
    assert_eq!(h.printed(), ["still runs\n"]);
    assert_eq!(h.fire(&firing(1, 0)), Flow::Exit(3));
    let events = h.take();
    assert!(matches!(&events[..], [Event::Agg(s)] if s.name == "n"));
    // printa printed @n in END: the final print leaves it out.
    assert!(h.finals().is_empty());
}

#[test]
fn exit_stops_the_later_clauses_of_its_firing_and_every_later_firing_but_end() {
    let src = r#"
BEGIN { exit(4); printf("same clause\n"); }
BEGIN { printf("next clause\n"); }
syscall::read:entry { printf("later firing\n"); }
END { printf("end\n"); }
END { printf("end again\n"); }
"#;
    let mut h = Harness::new(
        src,
        &[
            ("BEGIN", ProbeKind::Begin),
            ("syscall::read:entry", ProbeKind::SyscallEntry),
            ("END", ProbeKind::End),
        ],
    );
    assert_eq!(h.fire(&firing(0, 0)), Flow::Exit(4));
    assert_eq!(h.printed(), ["same clause\n"]);
    assert_eq!(h.fire(&firing(1, 1)), Flow::Exit(4));
    assert!(h.printed().is_empty());
    h.fire(&firing(2, 0));
    assert_eq!(h.printed(), ["end\n", "end again\n"]);
}

#[test]
fn exit_in_end_overrides_the_status_of_the_first_exit() {
    let src = "BEGIN { exit(1); } END { exit(0); }";
    let mut h = Harness::new(src, &[("BEGIN", ProbeKind::Begin), ("END", ProbeKind::End)]);
    assert_eq!(h.fire(&firing(0, 0)), Flow::Exit(1));
    assert_eq!(h.fire(&firing(1, 0)), Flow::Exit(0));
}

#[test]
fn an_aggregation_printa_printed_with_data_is_left_out_of_the_final_print() {
    let src = r#"
BEGIN { printa(@empty); @printed = count(); printa(@printed); @fmt[1] = sum(2);
        printa("%d %@d\n", @fmt); @kept = count(); }
END { @empty = count(); }
"#;
    let mut h = Harness::new(src, &[("BEGIN", ProbeKind::Begin), ("END", ProbeKind::End)]);
    h.fire(&firing(0, 0));
    h.fire(&firing(1, 0));
    h.take();
    let mut names: Vec<String> = h.finals().into_iter().map(|s| s.name).collect();
    names.sort();
    // @empty had no data when printa ran, so dtrace still prints it at the end.
    assert_eq!(names, ["empty", "kept"]);
}

#[test]
fn printa_with_a_format_prints_one_line_per_entry_sorted_by_value() {
    let src = r#"
syscall::read:entry { @calls[execname, pid] = count(); @bytes[execname, pid] = sum(arg2); }
END { printa("%-8s %6d %@5d %@d\n", @calls, @bytes); }
"#;
    let mut h = Harness::new(
        src,
        &[
            ("syscall::read:entry", ProbeKind::SyscallEntry),
            ("END", ProbeKind::End),
        ],
    );
    for (comm, pid, bytes) in [
        ("cat", 10, 100),
        ("dd", 20, 7),
        ("dd", 20, 8),
        ("cat", 10, 1),
    ] {
        let mut f = with_args(firing(0, 1), &[0, 0, bytes]);
        f.comm = comm.into();
        f.pid = pid;
        h.fire(&f);
    }
    h.fire(&firing(1, 0));
    let events = h.take();
    let rows: Vec<(&str, &[Value])> = events
        .iter()
        .filter_map(|e| match e {
            Event::Printf(p) => Some((p.text.to_str().unwrap(), p.args.as_slice())),
            _ => None,
        })
        .collect();
    assert_eq!(rows[0].0, "cat          10     2 101\n");
    assert_eq!(rows[1].0, "dd           20     2 15\n");
    assert_eq!(
        rows[0].1,
        [
            Value::Str("cat".into()),
            Value::Int(10),
            Value::Int(2),
            Value::Int(101)
        ]
    );
    assert!(h.finals().is_empty());
}

#[test]
fn copyin_reads_captured_bytes_as_the_type() {
    let src = r#"
syscall::openat2:entry {
	printf("%x %d\n", *(uint64_t *)copyin(arg2, sizeof (uint64_t)), *(int *)copyin(arg2, 4));
}
"#;
    let mut h = Harness::new(src, &[("syscall::openat2:entry", ProbeKind::SyscallEntry)]);
    let flags = 0x0008_0241u64.to_le_bytes();
    h.fire(&with_bytes(
        with_args(firing(0, 1), &[0, 0, 0x5000]),
        2,
        &flags,
    ));
    assert_eq!(h.printed(), ["80241 524865\n"]);
    // A read that faulted in the kernel (no bytes) is an invalid address here.
    h.fire(&with_bytes(
        with_args(firing(0, 1), &[0, 0, 0x5000]),
        2,
        &[],
    ));
    assert_eq!(errors(&h.take()), ["invalid address (0x5000) in action #1"]);
}

/// Unless the program is quiet, each clause's output for a firing (none, for a clause
/// without a body) is framed by its probe's markers; a clause that records nothing (it only
/// assigns), a clause whose predicate fails, or a quiet program, prints nothing.
#[test]
fn each_firing_of_a_clause_is_framed_unless_quiet() {
    let probes = [
        ("syscall::read:entry", ProbeKind::SyscallEntry),
        ("syscall::write:entry", ProbeKind::SyscallEntry),
    ];
    let src = "syscall::write:entry { x = 1; @a = count(); } \
               syscall::write:entry { trace(1); } syscall::read:entry /arg0 == 0/";
    let mut h = Harness::new(src, &probes);
    h.fire(&firing(1, 1));
    let events = h.take_all();
    assert!(
        matches!(
            &events[..],
            [Event::FiringStart { probe_id: 2, .. }, Event::Record(r), Event::FiringEnd]
                if r.values.len() == 1 && r.formats == [TraceFormat::Int(4)]
        ),
        "{events:?}"
    );
    h.fire(&firing(0, 1));
    let events = h.take_all();
    assert!(
        matches!(
            &events[..],
            [Event::FiringStart { probe_id: 1, .. }, Event::FiringEnd]
        ),
        "{events:?}"
    );
    h.fire(&with_args(firing(0, 1), &[1]));
    assert!(h.take_all().is_empty());
    let mut quiet = Harness::new(&format!("#pragma D option quiet\n{src}"), &probes);
    quiet.fire(&firing(1, 1));
    assert!(matches!(&quiet.take_all()[..], [Event::Record(_)]));
}

#[test]
fn if_else_runs_one_branch() {
    let src = r#"
syscall::read:entry {
	if (arg0 > 5) { printf("big\n"); } else { printf("small\n"); }
	if (arg0 == 0) printf("zero\n");
}
"#;
    let mut h = Harness::new(src, &[("syscall::read:entry", ProbeKind::SyscallEntry)]);
    h.fire(&with_args(firing(0, 1), &[9]));
    h.fire(&with_args(firing(0, 1), &[0]));
    assert_eq!(h.printed(), ["big\n", "small\n", "zero\n"]);
}

#[test]
fn kernel_aggregations_replace_entries() {
    let src = r#"syscall::read:entry { @c[probefunc] = count(); }"#;
    let mut h = Harness::new(src, &[("syscall::read:entry", ProbeKind::SyscallEntry)]);
    h.exec.set_kernel_aggregation(
        "c",
        crate::event::AggFunc::Count,
        vec![crate::event::AggEntry {
            keys: vec![Value::Str("read".into())],
            value: AggValue::Scalar(41),
        }],
    );
    h.fire(&firing(0, 1));
    let finals = h.finals();
    assert_eq!(finals.len(), 1);
    assert_eq!(finals[0].entries[0].value, AggValue::Scalar(42));
}

#[test]
fn unknown_probe_is_an_executor_error() {
    let mut h = Harness::new("BEGIN { }", &[("BEGIN", ProbeKind::Begin)]);
    let err = h.exec.fire(&firing(5, 0), &mut h.events).unwrap_err();
    assert!(err.to_string().contains("probe #5"), "{err}");
}

#[test]
fn faults_fire_the_error_probe() {
    let src = r#"
syscall::read:entry { x = 1; y = 1 / (int)arg0; }
syscall::read:entry { printf("%s\n", copyinstr(arg1)); }
ERROR { printf("ERROR %d %d %d 0x%x\n", arg1, arg2, arg4, arg5); z = 1 / (int)arg0; }
"#;
    let mut h = Harness::new(
        src,
        &[
            ("syscall::read:entry", ProbeKind::SyscallEntry),
            ("dtrace:::ERROR", ProbeKind::Error),
        ],
    );
    h.fire(&with_args(firing(0, 1), &[0, 0xbad]));
    let events = h.take();
    assert_eq!(
        errors(&events),
        [
            "divide-by-zero in action #2",
            "invalid address (0xbad) in action #1",
            // The ERROR clause's own fault is reported, and does not fire ERROR again.
            "divide-by-zero in action #2",
            "divide-by-zero in action #2",
        ]
    );
    let texts: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Printf(p) => Some(p.text.to_str().unwrap()),
            _ => None,
        })
        .collect();
    // The ERROR clause faulted after its printf, so its output is discarded too.
    assert!(texts.is_empty(), "{texts:?}");
}

#[test]
fn error_probe_arguments() {
    let src = r#"
syscall::read:entry { y = 1 / (int)arg0; }
syscall::read:entry /arg0 == 0/ { printf("%s\n", copyinstr(arg1)); }
ERROR { printf("ERROR %d %d %d 0x%x\n", arg1, arg2, arg4, arg5); }
"#;
    let mut h = Harness::new(
        src,
        &[
            ("syscall::read:entry", ProbeKind::SyscallEntry),
            ("dtrace:::ERROR", ProbeKind::Error),
        ],
    );
    h.fire(&with_args(firing(0, 1), &[0, 0xbad]));
    assert_eq!(h.printed(), ["ERROR 1 1 4 0x0\n", "ERROR 2 1 1 0xbad\n"]);
}

#[test]
fn length_modifiers_are_accepted_and_ignored() {
    let src = r#"BEGIN { printf("%hhd %hd %ld %lld %zu %lx %a\n", 1, 2, 3, 4, 5, 255, 4096); }"#;
    assert_eq!(begin(src), ["1 2 3 4 5 ff 0x1000\n"]);
}
