//! dtk as a user runs it. On a terminal (tmux), each command's lines must show while dtk is
//! still running, not when it ends. Idle, dtk must sleep in one blocking wait rather than
//! spin (counted with `strace -c`). Stopped with SIGINT on a busy Python program, it must
//! stop every probe in one step: the returns it printed match the entries it printed, less
//! the frames still open at the stop, and it exits promptly.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;
use serde_json::Value;

use crate::util::{kernel_available, Tmux};

const PYTHON: &str = "/usr/bin/python3.11";

/// A Python program run for a test, in a directory of its own; killed when dropped.
struct Program {
    child: Child,
    dir: tempfile::TempDir,
}

impl Program {
    /// Starts `code` (which may name `{dir}`, the program's directory).
    fn start(code: &str) -> Program {
        let dir = tempfile::tempdir().unwrap();
        let code = code.replace("{dir}", dir.path().to_str().unwrap());
        let path = dir.path().join("work.py");
        std::fs::write(&path, code).unwrap();
        let child = Command::new(PYTHON)
            .arg(&path)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Program { child, dir }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `dtk --backend linux ARGS` in tmux and waits until the screen shows `expect` while
/// dtk is still running; then Ctrl-C must end it with status 0.
fn shows_while_running(args: &str, expect: &str) {
    let command = format!(
        "{} --backend linux {args}; echo dtk-exited-$?; sleep 60",
        cargo_bin("dtk").display()
    );
    let tmux = Tmux::start(&command);
    let screen = tmux.wait_for(expect, |s| s.contains(expect) || s.contains("dtk-exited"));
    assert!(
        !screen.contains("dtk-exited"),
        "dtk ended before `{expect}` showed:\n{screen}"
    );
    tmux.keys("C-c");
    let screen = tmux.wait_for("dtk's exit", |s| s.contains("dtk-exited"));
    assert!(screen.contains("dtk-exited-0"), "{screen}");
}

#[test]
fn pyflow_lines_show_on_a_terminal_while_tracing() {
    if !kernel_available("pyflow_lines_show_on_a_terminal_while_tracing") {
        return;
    }
    let program = Program::start(
        "import time\ndef heartbeat():\n    time.sleep(0.1)\nwhile True:\n    heartbeat()\n",
    );
    shows_while_running(&format!("pyflow -p {}", program.pid()), "-> heartbeat");
}

#[test]
fn opens_lines_show_on_a_terminal_while_tracing() {
    if !kernel_available("opens_lines_show_on_a_terminal_while_tracing") {
        return;
    }
    let program = Program::start(
        "import time\nopen('{dir}/marker', 'w').close()\nwhile True:\n    open('{dir}/marker').close()\n    time.sleep(0.1)\n",
    );
    let marker = program.dir().join("marker");
    shows_while_running(
        &format!("opens -p {}", program.pid()),
        marker.to_str().unwrap(),
    );
}

#[test]
fn run_tick_printf_shows_on_a_terminal_at_each_tick() {
    if !kernel_available("run_tick_printf_shows_on_a_terminal_at_each_tick") {
        return;
    }
    // The third tick shows while dtk runs: lines come as they are printed, not in one block.
    shows_while_running(
        "run -n 'int n; tick-200ms { n++; printf(\"tick number %d\\n\", n); }'",
        "tick number 3",
    );
}

#[test]
fn syscalls_interval_tables_show_on_a_terminal_while_tracing() {
    if !kernel_available("syscalls_interval_tables_show_on_a_terminal_while_tracing") {
        return;
    }
    let program =
        Program::start("import os, time\nwhile True:\n    os.getppid()\n    time.sleep(0.01)\n");
    shows_while_running(&format!("syscalls -i 1 -p {}", program.pid()), "getppid");
}

/// System calls that put a thread to sleep: each return is a wakeup.
const WAITS: &[&str] = &[
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "nanosleep",
    "clock_nanosleep",
    "futex",
    "read",
];

/// Calls per system call of `pid` (all its threads) over `seconds`, from `strace -c`.
fn syscalls_of(pid: u32, seconds: u32) -> BTreeMap<String, u64> {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("strace.txt");
    let status = Command::new("timeout")
        .args([
            "-s",
            "INT",
            &seconds.to_string(),
            "strace",
            "-c",
            "-f",
            "-o",
        ])
        .arg(&report)
        .args(["-p", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .expect("strace is needed (apt-get install strace)");
    // timeout's own status is 124 when it ended strace, as intended.
    assert!(status.code().is_some(), "{status:?}");
    let text = std::fs::read_to_string(&report).unwrap();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let calls = fields.get(3)?.parse().ok()?;
            let name = fields.last()?;
            (*name != "total").then(|| (name.to_string(), calls))
        })
        .collect()
}

#[test]
fn idle_dtk_sleeps_instead_of_polling() {
    if !kernel_available("idle_dtk_sleeps_instead_of_polling") {
        return;
    }
    let mut sleeper = Command::new("sleep").arg("600").spawn().unwrap();
    let sleeper_pid = sleeper.id().to_string();
    let runs: [&[&str]; 2] = [
        &["opens", "-p", &sleeper_pid],
        &["run", "-n", "tick-1s { printf(\"still here\\n\"); }"],
    ];
    for args in runs {
        let mut dtk = Command::new(cargo_bin("dtk"))
            .args(["--backend", "linux"])
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // Past compiling and attaching, into the loop.
        std::thread::sleep(Duration::from_secs(2));
        assert!(dtk.try_wait().unwrap().is_none(), "{args:?} ended early");
        const SECONDS: u32 = 3;
        let calls = syscalls_of(dtk.id(), SECONDS);
        // SAFETY: kill sends a signal to our own child.
        unsafe { libc::kill(dtk.id() as i32, libc::SIGINT) };
        dtk.wait().unwrap();
        let waits: u64 = WAITS.iter().filter_map(|w| calls.get(*w)).sum();
        let total: u64 = calls.values().sum();
        assert!(
            waits > 0,
            "{args:?}: strace saw no wait at all, so it measured nothing: {calls:?}"
        );
        // At most 50 wakeups a second, and no busy loop of other calls either.
        assert!(
            waits <= 50 * u64::from(SECONDS),
            "{args:?}: {waits} waits in {SECONDS} s: {calls:?}"
        );
        assert!(
            total <= 150 * u64::from(SECONDS),
            "{args:?}: {total} system calls in {SECONDS} s: {calls:?}"
        );
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

/// What one stopped run of pyflow printed, thread by thread.
#[derive(Debug, Default)]
struct Flow {
    entries: u64,
    /// Returns that matched the innermost open frame.
    returns: u64,
    /// Returns before the thread's first entry: frames entered before tracing began.
    returns_before_first_entry: u64,
    /// Returns after the thread's first entry that matched no open frame.
    orphans: Vec<String>,
    /// Frames still open at the end.
    open: u64,
}

fn flow_of(json_lines: &str) -> Flow {
    let mut flow = Flow::default();
    let mut stacks: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for line in json_lines.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let tid = v["tid"].as_u64().unwrap();
        let function = v["function"].as_str().unwrap().to_string();
        let started = stacks.contains_key(&tid);
        match v["kind"].as_str().unwrap() {
            "entry" | "resume" => {
                flow.entries += 1;
                stacks.entry(tid).or_default().push(function);
            }
            _ if !started => flow.returns_before_first_entry += 1,
            _ => {
                let stack = stacks.get_mut(&tid).unwrap();
                if stack.last() == Some(&function) {
                    stack.pop();
                    flow.returns += 1;
                } else {
                    flow.orphans.push(line.to_string());
                }
            }
        }
    }
    flow.open = stacks.values().map(|s| s.len() as u64).sum();
    flow
}

/// Waits up to `limit` for `path` to hold a complete line.
fn wait_for_output(path: &Path, child: &mut Child, limit: Duration) {
    let start = Instant::now();
    while !std::fs::read_to_string(path).is_ok_and(|t| t.contains('\n')) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "dtk ended before printing anything"
        );
        assert!(start.elapsed() < limit, "dtk printed nothing in {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigint_on_a_busy_python_stops_every_probe_at_once_and_exits_promptly() {
    if !kernel_available("sigint_on_a_busy_python_stops_every_probe_at_once_and_exits_promptly") {
        return;
    }
    let uprobe_events = Path::new("/sys/kernel/tracing/uprobe_events");
    let uprobes_before = std::fs::read_to_string(uprobe_events).ok();
    // About a million calls a second untraced.
    let program = Program::start("def f():\n    pass\nwhile True:\n    f()\n");
    let mut exit_times = Vec::new();
    for run in 0..20u64 {
        let out = program.dir().join(format!("flow-{run}.json"));
        let mut dtk = Command::new(cargo_bin("dtk"))
            .args(["--backend", "linux", "-o", "json", "pyflow", "-p"])
            .arg(program.pid().to_string())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_output(&out, &mut dtk, Duration::from_secs(30));
        // Stop at a different moment of the flow each time.
        std::thread::sleep(Duration::from_millis(run * 37 % 300));
        let signalled = Instant::now();
        // SAFETY: kill sends a signal to our own child.
        unsafe { libc::kill(dtk.id() as i32, libc::SIGINT) };
        let status = dtk.wait().unwrap();
        exit_times.push(signalled.elapsed());
        let stderr = std::io::read_to_string(dtk.stderr.take().unwrap()).unwrap();
        assert!(status.success(), "run {run}: {status:?}\n{stderr}");
        let flow = flow_of(&std::fs::read_to_string(&out).unwrap());
        assert!(
            flow.orphans.is_empty(),
            "run {run}: returns with no entry after tracing began: {:?}\n{stderr}",
            &flow.orphans[..flow.orphans.len().min(5)]
        );
        assert!(flow.entries > 0, "run {run}: no entries: {flow:?}");
        // Only f's frame can have been open when the probes went live.
        assert!(flow.returns_before_first_entry <= 1, "run {run}: {flow:?}");
        assert_eq!(
            flow.returns,
            flow.entries - flow.open,
            "run {run}: {flow:?}"
        );
        // At most f itself was running at the stop.
        assert!(flow.open <= 1, "run {run}: {flow:?}");
    }
    exit_times.sort();
    let median = exit_times[exit_times.len() / 2];
    let slowest = exit_times[exit_times.len() - 1];
    // dtk gives itself 80 ms to show what came before the stop; the bounds leave room for a
    // loaded machine. Before the stop was made one step, draining took seconds.
    assert!(
        median < Duration::from_millis(500) && slowest < Duration::from_secs(2),
        "times from SIGINT to exit: {exit_times:?}"
    );
    assert_eq!(
        std::fs::read_to_string(uprobe_events).ok(),
        uprobes_before,
        "uprobe_events changed"
    );
}
