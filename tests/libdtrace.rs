//! The libdtrace back end against the system's DTrace (compiled only where build.rs found
//! dtrace.h): the bundled scripts and one-liners, checked event by event against what the
//! test itself knows the traced programs did.
//!
//! pyflow is not here: it needs USDT probes, which Oracle's DTrace for Linux does not
//! enable on stock kernels.
//!
//! Oracle's libdtrace can go live once per process (its global BPF maps are made once), so
//! each test runs its body in a child: the test binary itself, asked for that one test.

use std::fs;
use std::io;
use std::process::Command;

use dtk::internals::event::{
    AggFunc, AggSnapshot, AggValue, Event, Printf, Value, QUANTIZE_BUCKETS,
};
use dtk::internals::script::{bundled, Param, Script, TargetMacro};
use dtk::internals::Target;
use dtk::internals::{select, BackendChoice, EventSink, Job, Stop};

use crate::util::kernel_available;

/// Set in a child to the name of the test it runs.
const CHILD: &str = "DTK_LIBDTRACE_TEST_CHILD";

/// Runs `body` in a child process of its own (or here, when this is that child), after the
/// kernel check.
fn in_own_process(test: &str, body: fn()) {
    if std::env::var(CHILD).as_deref() == Ok(test) {
        body();
        return;
    }
    if !kernel_available(test) {
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([&format!("libdtrace::{test}"), "--exact", "--nocapture"])
        .env(CHILD, test)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{test} failed in its child:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "{test} did not run in its child:\n{stdout}"
    );
}

#[derive(Default)]
struct Collect(Vec<Event>);

impl EventSink for Collect {
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn event(&mut self, event: Event) -> io::Result<()> {
        self.0.push(event);
        Ok(())
    }
}

fn run(script: Script, target: Target) -> Vec<Event> {
    run_with(script, target, &Stop::default())
}

fn run_with(script: Script, target: Target, stop: &Stop) -> Vec<Event> {
    let job = Job {
        script,
        args: Vec::new(),
        target,
        options: Vec::new(),
        allow_empty: false,
        dump_bpf: false,
        scope: Default::default(),
    };
    let mut backend = select(BackendChoice::Libdtrace).unwrap();
    let mut sink = Collect::default();
    backend.run(&job, stop, &mut sink).unwrap();
    assert_eq!(sink.0.last(), Some(&Event::Done), "{:?}", sink.0);
    sink.0
}

fn one_liner(text: &str) -> Vec<Event> {
    let script = Script {
        name: "-n".into(),
        text: text.into(),
    };
    run(script, Target::None)
}

fn command(args: &[&str]) -> Target {
    Target::Command(args.iter().map(|a| a.to_string()).collect())
}

fn printfs(events: &[Event]) -> Vec<&Printf> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Printf(p) => Some(p),
            _ => None,
        })
        .collect()
}

/// The last snapshot of the aggregation called `name`.
fn last_agg<'a>(events: &'a [Event], name: &str) -> &'a AggSnapshot {
    events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Agg(s) if s.name == name => Some(s),
            Event::FinalAggs(all) => all.iter().find(|s| s.name == name),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no snapshot of @{name} in {events:?}"))
}

#[test]
fn opens_reports_fd_and_errno_of_each_open() {
    in_own_process("opens_reports_fd_and_errno_of_each_open", || {
        let dir = tempfile::tempdir().unwrap();
        let present = dir.path().join("present");
        fs::write(&present, "x").unwrap();
        let missing = dir.path().join("missing");
        let script = bundled("opens")
            .unwrap()
            .instantiate(&[], TargetMacro::Keep)
            .unwrap();
        let target = command(&["cat", present.to_str().unwrap(), missing.to_str().unwrap()]);
        let events = run(script, target);
        let find = |path: &str| {
            printfs(&events)
                .into_iter()
                .find(|p| p.args.get(8).and_then(Value::as_str) == Some(path))
                .unwrap_or_else(|| panic!("no open of {path} in {events:?}"))
        };
        let ok = find(present.to_str().unwrap());
        assert_eq!(ok.args.len(), 9);
        assert!(ok.args[5].as_i64().unwrap() >= 3, "{ok:?}");
        assert_eq!(ok.args[4], Value::Str("cat".into()));
        assert!(
            ok.text
                .ends_with(format!("{}\n", present.display()).as_bytes()),
            "{ok:?}"
        );
        let failed = find(missing.to_str().unwrap());
        // The result is negative (-1 in most DTraces, the kernel's -errno in Oracle's).
        assert!(failed.args[5].as_i64().unwrap() < 0, "{failed:?}");
        assert_eq!(failed.args[6].as_i64(), Some(i64::from(libc::ENOENT)));
        assert!(events.iter().any(|e| matches!(e, Event::TargetExited(_))));
    });
}

#[test]
fn syscalls_counts_the_reads_and_writes_of_dd() {
    in_own_process("syscalls_counts_the_reads_and_writes_of_dd", || {
        let blocks = 300;
        let script = bundled("syscalls")
            .unwrap()
            .instantiate(
                &[("TIMED", Param::Int(1)), ("ERRORS", Param::Int(1))],
                TargetMacro::Keep,
            )
            .unwrap();
        let count = format!("count={blocks}");
        let target = command(&["dd", "if=/dev/zero", "of=/dev/null", "bs=1", &count]);
        let events = run(script, target);
        let calls = last_agg(&events, "calls");
        assert_eq!(calls.func, AggFunc::Count);
        let count_of = |call: &str| {
            calls
                .entries
                .iter()
                .find(|e| e.keys.get(2).and_then(Value::as_str) == Some(call))
                .map(|e| e.value.clone())
        };
        // dd reads and writes each block once, plus a few reads and writes of its own.
        for call in ["read", "write"] {
            let Some(AggValue::Scalar(n)) = count_of(call) else {
                panic!("no count for {call}: {calls:?}");
            };
            assert!(
                (blocks..blocks + 20).contains(&n),
                "{call}: {n} in {calls:?}"
            );
        }
        assert_eq!(last_agg(&events, "time").func, AggFunc::Sum);
        // Failures by errno: dd's libc looks for locale files that Debian does not ship
        // (/usr/lib/locale/locale-archive), so ENOENT is among them.
        let errnos = last_agg(&events, "errnos");
        assert_eq!(errnos.func, AggFunc::Count);
        assert!(
            errnos
                .entries
                .iter()
                .any(|e| e.keys.get(3).and_then(Value::as_i64) == Some(i64::from(libc::ENOENT))),
            "{errnos:?}"
        );
    });
}

#[test]
fn every_aggregating_function_is_decoded() {
    in_own_process("every_aggregating_function_is_decoded", || {
        let events = one_liner(
            "BEGIN { @c = count(); @s[\"k\", 7] = sum(5); @q = quantize(100); \
             @l = lquantize(3, 0, 10, 2); @ll = llquantize(50, 10, 0, 3, 10); @a = avg(4); \
             @a = avg(6); @sd = stddev(3); @mn = min(-2); @mx = max(9); exit(0); }",
        );
        let value = |name: &str| last_agg(&events, name).entries[0].value.clone();
        assert_eq!(value("c"), AggValue::Scalar(1));
        let sum = last_agg(&events, "s");
        assert_eq!(
            sum.entries[0].keys,
            vec![Value::Str("k".into()), Value::Int(7)]
        );
        assert_eq!(sum.entries[0].value, AggValue::Scalar(5));
        let AggValue::Quantize(buckets) = value("q") else {
            panic!("not a quantize");
        };
        assert_eq!(buckets.len(), QUANTIZE_BUCKETS);
        // 100 is in [64, 128): bucket 63 + 1 + 6.
        assert_eq!(buckets[70], 1);
        assert_eq!(buckets.iter().sum::<i64>(), 1);
        assert_eq!(
            value("l"),
            AggValue::Lquantize {
                base: 0,
                step: 2,
                levels: 5,
                counts: vec![0, 0, 1, 0, 0, 0, 0]
            }
        );
        let AggValue::Llquantize { factor, counts, .. } = value("ll") else {
            panic!("not an llquantize");
        };
        assert_eq!(factor, 10);
        assert_eq!(counts.iter().sum::<i64>(), 1);
        assert_eq!(
            value("a"),
            AggValue::Avg {
                count: 2,
                total: 10
            }
        );
        assert_eq!(
            value("sd"),
            AggValue::Stddev {
                count: 1,
                total: 3,
                total_squares: 9
            }
        );
        assert_eq!(value("mn"), AggValue::Scalar(-2));
        assert_eq!(value("mx"), AggValue::Scalar(9));
    });
}

#[test]
fn trace_and_printf_values_keep_their_types() {
    in_own_process("trace_and_printf_values_keep_their_types", || {
        let events = one_liner(
            "BEGIN { trace(-1); trace(\"str\"); trace((uint8_t)255); trace((int16_t)-3); \
             printf(\"%d %s|\", 42, \"x\"); exit(0); }",
        );
        let record = events
            .iter()
            .find_map(|e| match e {
                Event::Record(r) => Some(r),
                _ => None,
            })
            .unwrap();
        assert_eq!(record.origin.probe.name, "BEGIN");
        assert_eq!(
            record.values,
            vec![
                Value::Int(-1),
                Value::Str("str".into()),
                Value::UInt(255),
                Value::Int(-3)
            ]
        );
        let printf = printfs(&events)[0];
        assert_eq!(printf.text, "42 x|");
        assert_eq!(printf.args, vec![Value::Int(42), Value::Str("x".into())]);
    });
}

#[test]
fn printa_snapshots_before_trunc() {
    in_own_process("printa_snapshots_before_trunc", || {
        let events = one_liner(
            "BEGIN { @n[1] = count(); @n[2] = count(); printa(@n); trunc(@n); exit(0); }",
        );
        let snapshots: Vec<&AggSnapshot> = events
            .iter()
            .flat_map(|e| match e {
                Event::Agg(s) if s.name == "n" => vec![s],
                Event::FinalAggs(all) => all.iter().filter(|s| s.name == "n").collect(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(snapshots[0].entries.len(), 2, "{snapshots:?}");
        assert!(
            snapshots[1..].iter().all(|s| s.entries.is_empty()),
            "{snapshots:?}"
        );
    });
}

#[test]
fn runtime_errors_are_reported_and_the_run_goes_on() {
    in_own_process("runtime_errors_are_reported_and_the_run_goes_on", || {
        let events = one_liner("BEGIN { trace(*(int *)0); } BEGIN { trace(1); exit(0); }");
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Error { probe: Some(p), .. } if p.name == "BEGIN")),
            "{events:?}"
        );
        assert!(events
            .iter()
            .any(|e| matches!(e, Event::Record(r) if r.values == [Value::Int(1)])));
    });
}

#[test]
fn a_stop_request_ends_the_run_with_a_final_snapshot() {
    in_own_process("a_stop_request_ends_the_run_with_a_final_snapshot", || {
        let stop = Stop::default();
        stop.set();
        let script = Script {
            name: "-n".into(),
            text: "BEGIN { @begun = count(); }".into(),
        };
        let events = run_with(script, Target::None, &stop);
        assert_eq!(
            last_agg(&events, "begun").entries[0].value,
            AggValue::Scalar(1)
        );
    });
}

#[test]
fn a_grabbed_process_ends_the_run_when_it_exits() {
    in_own_process("a_grabbed_process_ends_the_run_when_it_exits", || {
        // A process that is not this one's child, as with `dtk -p` from a shell.
        let out = Command::new("sh")
            .args(["-c", "sleep 5 >/dev/null 2>&1 & echo $!"])
            .output()
            .unwrap();
        let pid: u32 = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let script = Script {
            name: "-n".into(),
            text: "syscall::exit_group:entry /pid == $target/ { @exits = count(); }".into(),
        };
        let events = run(script, Target::Pid(pid));
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::TargetExited(exit) if exit.pid == pid)),
            "{events:?}"
        );
        assert_eq!(
            last_agg(&events, "exits").entries[0].value,
            AggValue::Scalar(1)
        );
    });
}

#[test]
fn stack_keys_are_symbolised() {
    in_own_process("stack_keys_are_symbolised", || {
        let out = Command::new("sh")
            .args([
                "-c",
                "dd if=/dev/zero of=/dev/null bs=1 count=20000000 >/dev/null 2>&1 & echo $!",
            ])
            .output()
            .unwrap();
        let pid: u32 = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let script = Script {
            name: "-n".into(),
            text:
                "profile-997 /pid == $target/ { @u[ustack(4)] = count(); @k[stack(4)] = count(); } \
                   tick-1s { printa(@u); printa(@k); exit(0); }"
                    .into(),
        };
        let events = run(script, Target::Pid(pid));
        // SAFETY: kill sends a signal to the dd this test started.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let frames = |name: &str| -> Vec<String> {
            let snapshot = events
                .iter()
                .find_map(|e| match e {
                    Event::Agg(s) if s.name == name => Some(s),
                    Event::FinalAggs(all) => all.iter().find(|s| s.name == name),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("no printa of @{name}: {events:?}"));
            snapshot
                .entries
                .iter()
                .flat_map(|e| match &e.keys[..] {
                    [Value::Stack(frames)] => frames.clone(),
                    other => panic!("@{name} key is not a stack: {other:?}"),
                })
                .collect()
        };
        // dd is stripped: its frames are module`address; the kernel's have symbols.
        let user = frames("u");
        assert!(user.iter().any(|f| f.starts_with("dd`")), "{user:?}");
        let kernel = frames("k");
        assert!(
            kernel.iter().any(|f| f.starts_with("vmlinux`")),
            "{kernel:?}"
        );
    });
}

/// `dtk --backend libdtrace pyflow` shows the same flow as the linux back end. libdtrace's
/// USDT does not reach Python's markers on every platform (not on Oracle's DTrace for Linux),
/// so this runs CPython 3.12, which both back ends follow through the perf trampoline with
/// the pid provider. Compared: each event's kind, function, file and depth.
#[test]
fn pyflow_shows_the_same_flow_as_the_linux_back_end() {
    let test = "pyflow_shows_the_same_flow_as_the_linux_back_end";
    if !kernel_available(test) {
        return;
    }
    let python = "/root/.pyenv/versions/3.12.1/bin/python3.12";
    if !std::path::Path::new(python).exists() {
        assert!(
            std::env::var("DTK_REQUIRE_KERNEL").as_deref() != Ok("1"),
            "{python} is not on this machine"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("flow.py");
    fs::write(
        &program,
        "def bad():\n    raise ValueError()\n\ndef gen():\n    yield 1\n    yield 2\n\n\
         def main():\n    try:\n        bad()\n    except ValueError:\n        pass\n    \
         return sum(gen())\n\nmain()\n",
    )
    .unwrap();
    let flow = |backend: &str| -> Vec<(String, String, String, u64)> {
        let out = Command::new(assert_cmd::cargo::cargo_bin("dtk"))
            .args(["--backend", backend, "-o", "json", "pyflow", "-c"])
            .arg(format!("{python} {}", program.display()))
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let text = |k: &str| v[k].as_str().unwrap().to_string();
                (
                    text("kind"),
                    text("function"),
                    text("file"),
                    v["depth"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let linux = flow("linux");
    assert_eq!(linux.len(), 12, "{linux:?}");
    assert_eq!(flow("libdtrace"), linux);
}

#[test]
fn run_l_lists_the_probes_a_description_matches() {
    in_own_process("run_l_lists_the_probes_a_description_matches", || {
        let job = Job {
            script: Script {
                name: "-n".into(),
                text: "syscall::read:entry, syscall::write:return, syscall::openat*:entry {}"
                    .into(),
            },
            args: Vec::new(),
            target: Target::None,
            options: Vec::new(),
            allow_empty: false,
            dump_bpf: false,
            scope: Default::default(),
        };
        let mut backend = select(BackendChoice::Libdtrace).unwrap();
        let mut probes: Vec<String> = backend
            .list(&job)
            .unwrap()
            .iter()
            .map(|p| format!("{}::{}:{}", p.provider, p.function, p.name))
            .collect();
        probes.sort();
        let mut want: Vec<String> = ["read:entry", "write:return", "openat:entry"]
            .iter()
            .map(|p| format!("syscall::{p}"))
            .collect();
        // openat2 where the kernel has it.
        if std::path::Path::new("/sys/kernel/tracing/events/syscalls/sys_enter_openat2").exists()
            || std::path::Path::new("/sys/kernel/debug/tracing/events/syscalls/sys_enter_openat2")
                .exists()
        {
            want.push("syscall::openat2:entry".into());
        }
        want.sort();
        assert_eq!(probes, want);
    });
}
