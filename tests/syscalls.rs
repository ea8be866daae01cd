//! Kernel tests of `dtk syscalls` on the linux back end: children that make a known number
//! of known system calls are counted exactly (with their errnos), -P tells two children
//! apart, -L gives plausible latencies, the counts agree with `strace -c -f` on the same
//! workload, the live view works in a real terminal (tmux), and counting by call alone
//! compiles to a program that reads no process state.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use assert_cmd::cargo::cargo_bin;
use serde_json::Value;

use crate::util::{feed, fifo, kernel_available, Tmux};

const PYTHON: &str = "/usr/bin/python3.11";

/// 1,000 getppid calls, then 500 opens of a regular file as a directory (ENOTDIR, which
/// CPython's startup never gets).
const KNOWN_CALLS: &str = "import os
for _ in range(1000):
    os.getppid()
for _ in range(500):
    try:
        os.open('/etc/hostname', os.O_RDONLY | os.O_DIRECTORY)
    except NotADirectoryError:
        pass
";

fn dtk() -> Command {
    let mut cmd = Command::new(cargo_bin("dtk"));
    cmd.args(["--backend", "linux"])
        .env_remove("NO_COLOR")
        .env_remove("TERM");
    cmd
}

/// A script file in a fresh directory (kept alive by the returned guard).
fn script_file(code: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("work.py");
    std::fs::write(&path, code).unwrap();
    let path = path.to_str().unwrap().to_string();
    (dir, path)
}

/// `dtk syscalls -o json ARGS -c "python3.11 FILE"`: the rows of its one JSON table.
fn json_rows(args: &[&str], script: &str) -> Vec<Value> {
    let out = dtk()
        .args(["-o", "json", "syscalls"])
        .args(args)
        .args(["-c", &format!("{PYTHON} {script}")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dtk syscalls failed: {stderr}");
    let table: Value = serde_json::from_slice(&out.stdout).unwrap();
    table["rows"].as_array().unwrap().clone()
}

fn row<'a>(rows: &'a [Value], call: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["syscall"] == call)
        .unwrap_or_else(|| panic!("no {call} row in {rows:#?}"))
}

#[test]
fn known_calls_are_counted_exactly_with_their_errnos() {
    if !kernel_available("known_calls_are_counted_exactly_with_their_errnos") {
        return;
    }
    let (_dir, script) = script_file(KNOWN_CALLS);
    let rows = json_rows(&["-e"], &script);
    assert_eq!(row(&rows, "getppid")["count"], 1000);
    assert_eq!(row(&rows, "getppid")["errors"], 0);
    let openat = row(&rows, "openat");
    assert_eq!(openat["errnos"]["ENOTDIR"], 500, "{openat}");
    assert!(openat["count"].as_i64().unwrap() >= 500);
    assert_eq!(openat["pid"], Value::Null, "no process columns without -P");
}

#[test]
fn latency_is_positive_and_plausible() {
    if !kernel_available("latency_is_positive_and_plausible") {
        return;
    }
    let (_dir, script) = script_file(
        "import os, time\nfor _ in range(10):\n    time.sleep(0.02)\n    os.getppid()\n",
    );
    let rows = json_rows(&["-L"], &script);
    let sleep = row(&rows, "clock_nanosleep");
    let (count, total) = (
        sleep["count"].as_i64().unwrap(),
        sleep["total_ns"].as_i64().unwrap(),
    );
    assert_eq!(count, 10);
    assert!(
        (200_000_000..2_000_000_000).contains(&total),
        "ten 20 ms sleeps took {total} ns"
    );
    let getppid = row(&rows, "getppid");
    let total = getppid["total_ns"].as_i64().unwrap();
    assert_eq!(getppid["count"], 10);
    assert!(
        total > 0 && total < 10_000_000,
        "ten getppid calls took {total} ns"
    );
}

/// What `strace -c -f` counted running `argv`: syscall → (calls, errors).
fn strace_counts(argv: &[&str]) -> BTreeMap<String, (i64, i64)> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("strace.txt");
    // The workload gets the stdio dtk's -c child gets (stdin closed, stdout and stderr
    // pipes), since CPython's startup calls depend on what they are (lseek fails on a pipe).
    let status = Command::new("strace")
        .args(["-c", "-f", "-o"])
        .arg(&out)
        .args(argv)
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    let mut counts = BTreeMap::new();
    for line in std::fs::read_to_string(&out).unwrap().lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |i: usize| words.get(i).and_then(|w| w.parse::<i64>().ok());
        let (Some(calls), Some(name)) = (number(3), words.last()) else {
            continue;
        };
        if *name != "total" {
            let errors = if words.len() == 6 { number(4) } else { None };
            counts.insert(name.to_string(), (calls, errors.unwrap_or(0)));
        }
    }
    counts
}

#[test]
fn counts_match_strace_on_the_same_workload() {
    if !kernel_available("counts_match_strace_on_the_same_workload") {
        return;
    }
    let (_dir, script) = script_file(KNOWN_CALLS);
    let strace = strace_counts(&[PYTHON, &script]);
    let rows = json_rows(&["-e"], &script);
    let mut dtk = BTreeMap::new();
    for r in &rows {
        let name = r["syscall"].as_str().unwrap();
        // The tracepoints name the stat family's current entry points (newfstat, newuname);
        // strace uses the plain names.
        let name = match name.strip_prefix("new") {
            Some(plain) if !strace.contains_key(name) => plain,
            _ => name,
        };
        let counts = (r["count"].as_i64().unwrap(), r["errors"].as_i64().unwrap());
        dtk.insert(name.to_string(), counts);
    }
    // strace sees the execve that starts the workload (dtk starts counting once it has
    // returned) and not exit_group, which never returns.
    let mut expected = strace.clone();
    expected.remove("execve");
    dtk.remove("exit_group");
    assert_eq!(dtk, expected, "dtk (left) against strace -c -f (right)");
    assert_eq!(strace["getppid"], (1000, 0));
}

/// Reads JSON tables from `dtk syscalls -i 1 -o json` on another thread.
fn json_tables(child: &mut Child) -> std::sync::mpsc::Receiver<Value> {
    let (send, receive) = std::sync::mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if send.send(serde_json::from_str(&line).unwrap()).is_err() {
                break;
            }
        }
    });
    receive
}

/// A python3.11 child that calls getppid `n` times once it reads a line.
fn waiting_child(n: usize) -> Child {
    let code =
        format!("import os, sys\nsys.stdin.readline()\nfor _ in range({n}):\n    os.getppid()\n");
    Command::new(PYTHON)
        .args(["-c", &code])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn by_process_separates_two_children() {
    if !kernel_available("by_process_separates_two_children") {
        return;
    }
    let mut dtk = dtk()
        .args([
            "-o",
            "json",
            "syscalls",
            "-P",
            "-i",
            "1",
            "-n",
            "python3.11",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let tables = json_tables(&mut dtk);
    // The first table means dtk is attached.
    let first = tables.recv_timeout(Duration::from_secs(30)).unwrap();
    let mut children = [waiting_child(300), waiting_child(700)];
    let pids = children.each_ref().map(|c| i64::from(c.id()));
    for child in &mut children {
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    for child in &mut children {
        assert!(child.wait().unwrap().success());
    }
    // SAFETY: signalling the dtk process this test started.
    unsafe { libc::kill(dtk.id() as i32, libc::SIGINT) };
    assert!(dtk.wait().unwrap().success());
    let mut getppid = BTreeMap::new();
    for table in std::iter::once(first).chain(tables.iter()) {
        assert_eq!(table["interval_s"], 1);
        for r in table["rows"].as_array().unwrap() {
            if r["syscall"] == "getppid" && pids.contains(&r["pid"].as_i64().unwrap()) {
                assert_eq!(r["comm"], "python3.11");
                *getppid.entry(r["pid"].as_i64().unwrap()).or_insert(0) +=
                    r["count"].as_i64().unwrap();
            }
        }
    }
    assert_eq!(
        getppid,
        BTreeMap::from([(pids[0], 300), (pids[1], 700)]),
        "getppid calls by pid"
    );
}

/// dd copying single bytes: one read and one write per byte (`count=`), after the reads
/// of its startup.
const DD_BYTES: &str = "dd of=/dev/null bs=1 status=none";

/// `-i 1` while dd copies three rounds of bytes that the test feeds it through a FIFO, each
/// after a pause of 0.8 s, so that dd outlasts two ticks: the tables add up to exactly dd's reads and
/// writes (its count=, and its startup reads as strace counts them), nothing is dropped, and
/// each table carries its own time: the ticks' a second apart (when each fired), then the
/// end's.
#[test]
fn interval_tables_add_up_to_every_call_each_at_its_own_time() {
    if !kernel_available("interval_tables_add_up_to_every_call_each_at_its_own_time") {
        return;
    }
    const ROUND: usize = 300_000;
    let copy_nothing = format!("{DD_BYTES} if=/dev/zero count=0");
    let startup_reads = strace_counts(&copy_nothing.split(' ').collect::<Vec<_>>())["read"].0;
    let dir = tempfile::tempdir().unwrap();
    let bytes = fifo(dir.path(), "bytes");
    let copy = format!("{DD_BYTES} if={} count={}", bytes.display(), 3 * ROUND);
    let dtk = dtk()
        .args(["-o", "json", "syscalls", "-i", "1", "-c", &copy])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // dd, traced, opens the FIFO once dtk has attached.
    feed(&bytes, 3, ROUND, Duration::from_millis(800));
    let out = dtk.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("drop"), "{stderr}");
    let tables: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|t| t["type"] == "table")
        .collect();
    let mut calls = BTreeMap::<String, i64>::new();
    for r in tables.iter().flat_map(|t| t["rows"].as_array().unwrap()) {
        *calls
            .entry(r["syscall"].as_str().unwrap().to_string())
            .or_default() += r["count"].as_i64().unwrap();
    }
    let copied = 3 * ROUND as i64;
    assert_eq!(
        (calls["read"], calls["write"]),
        (copied + startup_reads, copied),
        "{} tables",
        tables.len()
    );
    let times: Vec<i64> = tables
        .iter()
        .map(|t| t["walltime_ns"].as_i64().unwrap())
        .collect();
    assert!(times.len() >= 3, "two ticks and the end: {times:?}");
    let (end, ticks) = times.split_last().unwrap();
    // A tick is a kernel timer's sample: it fires when due, give or take the timer's slack.
    assert!(
        ticks
            .windows(2)
            .all(|w| (w[1] - w[0] - 1_000_000_000).abs() < 200_000_000),
        "{times:?}"
    );
    assert!(end > ticks.last().unwrap(), "{times:?}");
}

#[test]
fn live_view_in_tmux_shows_the_tables_and_quits_on_q() {
    if !kernel_available("live_view_in_tmux_shows_the_tables_and_quits_on_q") {
        return;
    }
    if !Path::new("/usr/bin/tmux").exists() {
        panic!("tmux is needed (apt-get install tmux)");
    }
    let (_dir, script) =
        script_file("import os, time\nwhile True:\n    os.getppid()\n    time.sleep(0.001)\n");
    let command = format!(
        "{} --backend linux syscalls --live -c '{PYTHON} {script}'; echo dtk exited $?; sleep 60",
        cargo_bin("dtk").display()
    );
    let tmux = Tmux::start(&command);
    let screen = tmux.wait_for("getppid row and process table", |s| {
        s.lines().any(|l| l.starts_with("getppid ")) && s.contains("PID     COMM")
    });
    assert!(screen.contains("sort: count"), "{screen}");
    assert!(screen.contains("python3.11"), "{screen}");
    tmux.keys("n");
    tmux.wait_for("sort by name", |s| s.contains("sort: name"));
    tmux.keys("q");
    let screen = tmux.wait_for("exit", |s| s.contains("dtk exited"));
    assert!(screen.contains("dtk exited 0"), "{screen}");
    assert!(
        !screen.contains("SYSCALL"),
        "the normal screen is back:\n{screen}"
    );
}

#[test]
fn counting_by_call_reads_no_process_state_and_indexes_an_array() {
    if !kernel_available("counting_by_call_reads_no_process_state_and_indexes_an_array") {
        return;
    }
    let out = dtk().args(["show", "syscalls"]).output().unwrap();
    let script = String::from_utf8(out.stdout).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("syscalls.d");
    std::fs::write(&path, script).unwrap();
    // Options before the script: what follows it are the script's arguments.
    let out = dtk()
        .args(["run", "--dump-bpf", "-c", "/bin/true"])
        .arg(&path)
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{dump}");
    let program = dump
        .split("; tracepoint ")
        .find(|p| p.starts_with("raw_syscalls:sys_enter"))
        .unwrap_or_else(|| panic!("no raw_syscalls program:\n{dump}"));
    for helper in [
        "get_current_comm",
        "ktime_get_ns",
        "get_current_cgroup_id",
        "map_update_elem",
    ] {
        assert!(!program.contains(helper), "{helper} in:\n{program}");
    }
}

#[test]
fn live_view_needs_a_terminal_and_has_no_json_form() {
    let out = dtk()
        .args(["-o", "json", "syscalls", "--live"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no JSON form"), "{stderr}");
    let out = dtk().args(["syscalls", "--live"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--live needs a terminal"), "{stderr}");
}

#[test]
fn hist_of_an_unknown_call_is_an_error() {
    if !kernel_available("hist_of_an_unknown_call_is_an_error") {
        return;
    }
    for call in ["nosuchcall", "read*", ""] {
        let out = dtk()
            .args(["syscalls", "--hist", call, "-d", "1"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err,
            format!("dtk: error: --hist {call:?}: no such system call\n")
        );
        assert!(out.stdout.is_empty());
    }
    // A real call is accepted, and its histogram is printed.
    let out = dtk()
        .args(["syscalls", "--hist", "read", "-c", "cat /etc/hostname"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Distribution"));
}
