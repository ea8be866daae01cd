//! The executor through its public API, as the Linux engine drives it: BEGIN, firings of a
//! syscall probe, exit(), END, then the final aggregation snapshots and the drop counts.

use std::sync::Arc;

use dtk::internals::d::{self, ast};
use dtk::internals::event::{AggValue, DropKind, Event, ProbeDesc, Value};
use dtk::internals::EventSink;
use dtk::internals::Options;
use dtk::internals::{CapturedString, Firing, ProbeInfo, ProbeKind};
use dtk::internals::{Executor, Flow};

#[derive(Default)]
struct Collect(Vec<Event>);

impl EventSink for Collect {
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn event(&mut self, event: Event) -> std::io::Result<()> {
        self.0.push(event);
        Ok(())
    }
}

const PROGRAM: &str = r#"
#pragma D option quiet
#pragma D option strsize=16
BEGIN { printf("start\n"); }
syscall::openat:entry { @opens[copyinstr(arg1)] = count(); n++; }
syscall::openat:entry /n == 3/ { exit(7); }
END { printf("%d opens\n", n); }
"#;

fn probe(
    provider: &str,
    function: &str,
    name: &str,
    kind: ProbeKind,
    clauses: Vec<usize>,
) -> ProbeInfo {
    ProbeInfo {
        desc: Arc::new(ProbeDesc {
            provider: provider.into(),
            module: String::new(),
            function: function.into(),
            name: name.into(),
        }),
        kind,
        clauses,
    }
}

fn open_of(path: &str) -> Firing {
    Firing {
        probe: 1,
        pid: 42,
        tid: 42,
        comm: "cat".into(),
        args: [0, 0x7000, 0, 0, 0, 0, 0, 0, 0, 0],
        strings: vec![CapturedString {
            arg: 1,
            value: path.as_bytes()[..path.len().min(15)].into(),
            truncated: path.len() > 15,
        }],
        ..Firing::default()
    }
}

#[test]
fn executor_runs_a_program_through_its_public_api() {
    let program: ast::Program = d::compile("t.d", PROGRAM, &d::MacroArgs::default())
        .unwrap()
        .program;
    let options = Options::resolve(&program, &[]).unwrap();
    let probes = vec![
        probe("dtrace", "", "BEGIN", ProbeKind::Begin, vec![0]),
        probe(
            "syscall",
            "openat",
            "entry",
            ProbeKind::SyscallEntry,
            vec![1, 2],
        ),
        probe("dtrace", "", "END", ProbeKind::End, vec![3]),
    ];
    let mut exec = Executor::new(program, probes, options);
    let mut sink = Collect::default();
    let begin = Firing::default();
    assert_eq!(exec.fire(&begin, &mut sink).unwrap(), Flow::Continue);
    let mut flows = Vec::new();
    for path in ["/etc/hosts", "/etc/hosts", "/usr/lib/a/very/long/path"] {
        flows.push(exec.fire(&open_of(path), &mut sink).unwrap());
    }
    assert_eq!(flows, [Flow::Continue, Flow::Continue, Flow::Exit(7)]);
    let end = Firing {
        probe: 2,
        ..Firing::default()
    };
    exec.fire(&end, &mut sink).unwrap();
    exec.final_snapshots(&mut sink).unwrap();

    let texts: Vec<&str> = sink
        .0
        .iter()
        .filter_map(|e| match e {
            Event::Printf(p) => Some(p.text.to_str().unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["start\n", "3 opens\n"]);
    let snapshots: Vec<_> = sink
        .0
        .iter()
        .flat_map(|e| match e {
            Event::FinalAggs(s) => s.iter().collect(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(snapshots.len(), 1);
    let counts: Vec<(Value, AggValue)> = snapshots[0]
        .entries
        .iter()
        .map(|e| (e.keys[0].clone(), e.value.clone()))
        .collect();
    assert_eq!(
        counts,
        [
            (Value::Str("/etc/hosts".into()), AggValue::Scalar(2)),
            (Value::Str("/usr/lib/a/very".into()), AggValue::Scalar(1)),
        ]
    );
    assert_eq!(exec.take_drops(), [(DropKind::TruncatedString, 1)]);
}

/// Strings are bytes from the kernel to the event: a name that is not UTF-8, or that holds
/// controls, reaches printf's text, its arguments, trace() and aggregation keys exactly, the
/// string functions work on its bytes, and only text output escapes it.
#[test]
fn traced_strings_keep_their_bytes_through_the_executor() {
    const PROGRAM: &str = r#"
syscall::openat:entry {
    printf("%s|%s\n", basename(copyinstr(arg1)), execname);
    trace(substr(copyinstr(arg1), 6, 3));
    @[execname, copyinstr(arg1)] = count();
}
"#;
    let program = d::compile("t.d", PROGRAM, &d::MacroArgs::default())
        .unwrap()
        .program;
    let options = Options::resolve(&program, &[]).unwrap();
    let probes = vec![probe(
        "syscall",
        "openat",
        "entry",
        ProbeKind::SyscallEntry,
        vec![0],
    )];
    let mut exec = Executor::new(program, probes, options);
    let mut sink = Collect::default();
    let path: &[u8] = b"/tmp/a\nb\xff\xfe";
    let comm: &[u8] = b"ev\x1b]0;T\x07";
    let firing = Firing {
        probe: 0,
        comm: comm.into(),
        args: [0, 0x7000, 0, 0, 0, 0, 0, 0, 0, 0],
        strings: vec![CapturedString {
            arg: 1,
            value: path.into(),
            truncated: false,
        }],
        ..Firing::default()
    };
    exec.fire(&firing, &mut sink).unwrap();
    exec.final_snapshots(&mut sink).unwrap();

    let Some(Event::Printf(p)) = sink.0.iter().find(|e| matches!(e, Event::Printf(_))) else {
        panic!("no printf in {:?}", sink.0)
    };
    assert_eq!(p.text.as_bytes(), b"a\nb\xff\xfe|ev\x1b]0;T\x07\n");
    assert_eq!(p.display(), "a\\nb\\xff\\xfe|ev\\x1b]0;T\\x07\n");
    assert_eq!(
        serde_json::to_value(&p.args).unwrap(),
        serde_json::json!([{"bytes": "YQpi//4="}, "ev\u{1b}]0;T\u{7}"])
    );
    let Some(Event::Record(r)) = sink.0.iter().find(|e| matches!(e, Event::Record(_))) else {
        panic!("no trace() record in {:?}", sink.0)
    };
    assert_eq!(r.values, [Value::Str((&b"\nb\xff"[..]).into())]);
    let keys: Vec<&Vec<Value>> = sink
        .0
        .iter()
        .flat_map(|e| match e {
            Event::FinalAggs(s) => s.iter().flat_map(|s| &s.entries).map(|e| &e.keys).collect(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(
        keys,
        [&vec![Value::Str(comm.into()), Value::Str(path.into())]]
    );
}
