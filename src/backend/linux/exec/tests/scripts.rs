//! The bundled scripts (d-scripts/) run over firings like the kernel half would decode
//! them: what dtk's commands will read from the executor.

use super::*;
use crate::event::{AggFunc, AggValue, Value};
use crate::script::{bundled, Param, TargetMacro};

fn script(name: &str, params: &[(&str, Param)], target: TargetMacro) -> String {
    bundled(name)
        .unwrap()
        .instantiate(params, target)
        .unwrap()
        .text
}

const OPENS_PROBES: &[(&str, ProbeKind)] = &[
    ("syscall::openat:entry", ProbeKind::SyscallEntry),
    ("syscall::openat:return", ProbeKind::SyscallReturn),
    ("syscall::openat2:entry", ProbeKind::SyscallEntry),
    ("syscall::openat2:return", ProbeKind::SyscallReturn),
];

/// The fields of an opens.d line after the timestamp and the walltimestamp.
fn opens_fields(line: &str) -> Vec<String> {
    line.trim_end()
        .split(' ')
        .skip(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn opens_reports_fd_flags_and_path() {
    let full = [("WANT_CWD", Param::Int(1))];
    let mut h = Harness::new(&script("opens", &full, TargetMacro::Keep), OPENS_PROBES);
    let entry = with_args(firing(0, 7), &[(-100i64) as u64, 0x1000, 0x80000]);
    h.fire(&with_string(entry, 1, "/etc/hosts"));
    let mut ret = with_args(firing(1, 7), &[3, 3]);
    ret.cwd = Some("/srv".into());
    h.fire(&ret);
    // openat2(dfd, path, how, size): the flags are read from struct open_how.
    let entry = with_args(firing(2, 7), &[5, 0x2000, 0x3000, 24]);
    let entry = with_string(entry, 1, "/nope");
    h.fire(&with_bytes(entry, 2, &0x241u64.to_le_bytes()));
    let mut ret = with_args(firing(3, 7), &[(-2i64) as u64, (-2i64) as u64]);
    ret.errno = 2;
    h.fire(&ret);
    let lines = h.printed();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let times: Vec<u64> = lines[0]
        .split(' ')
        .take(2)
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(times[0], firing(1, 7).ts_ns, "timestamp: {lines:?}");
    assert!(
        times[1] > 1_600_000_000_000_000_000,
        "walltimestamp: {lines:?}"
    );
    assert_eq!(
        opens_fields(&lines[0]),
        [
            "global",
            "100",
            "7",
            "cat",
            "3",
            "0",
            "524288",
            "-100",
            "/srv",
            "/etc/hosts"
        ]
    );
    assert_eq!(
        opens_fields(&lines[1]),
        ["global", "100", "7", "cat", "-2", "2", "577", "5", "", "/nope"]
    );
}

#[test]
fn opens_filters_by_name_and_failure() {
    let params = [
        ("FILTER_NAME", Param::Str("cat".into())),
        ("FAILED_ONLY", Param::Int(1)),
    ];
    let mut h = Harness::new(&script("opens", &params, TargetMacro::Keep), OPENS_PROBES);
    for (comm, result) in [("dd", -2i64), ("cat", 3), ("cat", -13)] {
        let mut entry = with_string(with_args(firing(0, 7), &[0, 0x1000, 0]), 1, "/x");
        entry.comm = comm.into();
        h.fire(&entry);
        let mut ret = with_args(firing(1, 7), &[result as u64]);
        ret.comm = comm.into();
        h.fire(&ret);
    }
    let lines = h.printed();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(opens_fields(&lines[0])[4], "-13");
}

#[test]
fn syscalls_counts_times_and_errors_per_process() {
    let params = [
        ("BY_PROCESS", Param::Int(1)),
        ("TIMED", Param::Int(1)),
        ("ERRORS", Param::Int(1)),
        ("HIST_CALL", Param::Str("read".into())),
    ];
    let probes = [
        ("syscall::read:entry", ProbeKind::SyscallEntry),
        ("syscall::read:return", ProbeKind::SyscallReturn),
    ];
    let mut h = Harness::new(&script("syscalls", &params, TargetMacro::Keep), &probes);
    for (start, took, errno) in [(1_000, 500, 0), (5_000, 3_000, 11)] {
        let mut entry = firing(0, 7);
        entry.ts_ns = start;
        h.fire(&entry);
        let mut ret = firing(1, 7);
        ret.ts_ns = start + took;
        ret.errno = errno;
        h.fire(&ret);
    }
    assert!(h.take().is_empty());
    let finals = h.finals();
    let names: Vec<&str> = finals.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["calls", "time", "errnos", "hist"]);
    let key = vec![
        Value::Int(100),
        Value::Str("cat".into()),
        Value::Str("read".into()),
    ];
    let value = |i: usize| {
        assert_eq!(finals[i].entries.len(), 1);
        assert_eq!(finals[i].entries[0].keys[..3], key);
        finals[i].entries[0].value.clone()
    };
    assert_eq!(value(0), AggValue::Scalar(2));
    assert_eq!(value(1), AggValue::Scalar(3_500));
    assert_eq!(value(2), AggValue::Scalar(1));
    assert_eq!(finals[2].entries[0].keys[3], Value::Int(11), "the errno");
    assert_eq!(finals[3].func, AggFunc::Quantize);
    let AggValue::Quantize(counts) = &finals[3].entries[0].value else {
        panic!("{:?}", finals[3])
    };
    // 500 is in [256, 512), 3000 in [2048, 4096).
    assert_eq!((counts[64 + 8], counts[64 + 11]), (1, 1));
}

#[test]
fn syscalls_prints_and_resets_every_interval() {
    let params = [("INTERVAL", Param::Int(2))];
    let probes = [
        ("syscall::read:entry", ProbeKind::SyscallEntry),
        ("profile:::tick-1s", ProbeKind::Tick),
    ];
    let mut h = Harness::new(&script("syscalls", &params, TargetMacro::Keep), &probes);
    h.fire(&firing(0, 7));
    h.fire(&firing(1, 0));
    assert!(h.take().is_empty());
    h.fire(&firing(1, 0));
    let events = h.take();
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e {
            Event::Agg(s) => format!("agg {} {}", s.name, s.entries.len()),
            Event::Printf(p) => p
                .text
                .to_str()
                .unwrap()
                .split(' ')
                .next()
                .unwrap_or("")
                .to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        ["agg calls 1", "agg time 0", "agg errnos 0", "interval"]
    );
    assert!(h.finals().is_empty());
}

#[test]
fn pyflow_prints_entries_and_returns() {
    let text = script("pyflow", &[], TargetMacro::Any);
    let probes = [
        (
            "python123:libpython3.11.so:_PyEval_EvalFrameDefault:function-entry",
            ProbeKind::Usdt,
        ),
        (
            "python123:libpython3.11.so:_PyEval_EvalFrameDefault:function-return",
            ProbeKind::Usdt,
        ),
        (
            "python123:libpython3.11.so:_PyEval_EvalFrameDefault:line",
            ProbeKind::Usdt,
        ),
    ];
    let mut h = Harness::new(&text, &probes);
    for probe in [0, 2, 1] {
        let f = with_args(firing(probe, 9), &[0x10, 0x20, 42]);
        h.fire(&with_string(with_string(f, 0, "app.py"), 1, "main"));
    }
    let printed = h.printed();
    // The process's first event announces it (its ppid is whatever process 100 has here).
    assert!(
        printed[0].starts_with("following 100 ") && printed[0].ends_with(" cat\n"),
        "{printed:?}"
    );
    assert_eq!(
        printed[1..],
        [
            "1000000 100 9 -> app.py 42 main\n",
            "1000000 100 9 <- app.py 42 main\n"
        ]
    );
}
