//! Following process trees (`-c`/`-p` follow children by default, `--no-follow` does not),
//! and Pythons that start after dtk, on the linux back end. Ground truth: strace -f on the
//! same workload, and what the traced programs write down about themselves.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::kernel_available;

const PYTHON: &str = "/usr/bin/python3.11";
/// How long a tracer may take to attach or to show an event, on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// `dtk --backend linux -o json ARGS`, with a scrubbed environment.
fn dtk(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dtk"));
    cmd.args(["--backend", "linux", "-o", "json"])
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("TERM");
    cmd
}

/// Runs dtk to the end; returns its JSON lines and its stderr.
fn dtk_lines(args: &[&str]) -> (Vec<Value>, String) {
    let out = dtk(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "dtk {args:?} failed:\n{stdout}\n{stderr}"
    );
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (lines, stderr)
}

/// The probes dtk may have left in tracefs: none, before and after each test.
fn uprobe_events() -> String {
    std::fs::read_to_string("/sys/kernel/tracing/uprobe_events").unwrap_or_default()
}

/// strace -f running `argv` with `-e trace=CALLS`, logging to `log`; returns the log.
fn strace(calls: &str, argv: &[&str], log: &Path) -> String {
    let status = Command::new("strace")
        .args(["-f", "-qq", "-s", "4096", "-e"])
        .arg(format!("trace={calls}"))
        .arg("-o")
        .arg(log)
        .args(argv)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "strace {argv:?}: {status}");
    std::fs::read_to_string(log).unwrap()
}

/// strace's `PID name("path", …) = result` lines, as (pid, path, fd or errno) in order.
fn strace_opens(log: &str) -> Vec<(u32, String, String)> {
    let line = regex::Regex::new(
        r#"^(\d+)\s+(?:open|openat)\([^"]*"((?:[^"\\]|\\.)*)".*\) = (-?\d+)(?: (E[A-Z0-9]+))?"#,
    )
    .unwrap();
    // With -f, a call another process interrupts is split: `PID openat(… <unfinished ...>`
    // and later `PID <... openat resumed>…) = 3`. Join them first.
    let mut pending: BTreeMap<u32, String> = BTreeMap::new();
    let mut joined = Vec::new();
    for l in log.lines() {
        let (pid, rest) = l.split_once(' ').unwrap();
        let pid: u32 = pid.parse().unwrap();
        if let Some(start) = rest.trim_start().strip_suffix(" <unfinished ...>") {
            pending.insert(pid, start.to_string());
        } else if let Some(resumed) = rest.trim_start().strip_prefix("<... ") {
            let tail = resumed.split_once("resumed>").unwrap().1;
            let start = pending.remove(&pid).unwrap_or_default();
            joined.push(format!("{pid} {start}{tail}"));
        } else {
            joined.push(l.to_string());
        }
    }
    joined
        .iter()
        .filter_map(|l| {
            let c = line.captures(l)?;
            let result = match c.get(4) {
                Some(errno) => errno.as_str().to_string(),
                None => c[3].to_string(),
            };
            Some((c[1].parse().unwrap(), c[2].to_string(), result))
        })
        .collect()
}

/// The opens dtk reported, as (pid, path, fd or errno) in order.
fn dtk_opens(lines: &[Value]) -> Vec<(u32, String, String)> {
    lines
        .iter()
        .filter(|v| v.get("path").is_some())
        .map(|v| {
            let result = match (&v["fd"], &v["errno"]) {
                (Value::Number(fd), _) => fd.to_string(),
                (_, Value::String(errno)) => errno.clone(),
                other => panic!("an open with neither fd nor errno: {other:?}"),
            };
            let pid = v["pid"].as_u64().unwrap() as u32;
            (pid, v["path"].as_str().unwrap().to_string(), result)
        })
        .collect()
}

/// Renumbers the pids of `opens` 0, 1, 2… in the order they first appear, so that two runs
/// of the same sequential workload compare equal.
fn by_process_order(opens: Vec<(u32, String, String)>) -> Vec<(usize, String, String)> {
    let mut order: Vec<u32> = Vec::new();
    opens
        .into_iter()
        .map(|(pid, path, result)| {
            let n = order.iter().position(|&p| p == pid).unwrap_or_else(|| {
                order.push(pid);
                order.len() - 1
            });
            (n, path, result)
        })
        .collect()
}

/// Three files, and a shell that reads the first, then runs a shell that reads the second and
/// runs a shell that reads the third: a three-level tree, one process at a time.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        for name in ["one", "two", "three"] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        Tree { dir }
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// The command line, split as dtk -c splits it.
    fn argv(&self) -> Vec<String> {
        let cat = |name| format!("cat {} >/dev/null", self.file(name));
        let inner = format!("{}; true", cat("three"));
        let middle = format!("{}; sh -c '{inner}'; true", cat("two"));
        let outer = format!("{}; sh -c \"{middle}\"; true", cat("one"));
        vec!["sh".into(), "-c".into(), outer]
    }

    /// The command line for -c: the argv quoted for dtk's shell-like split.
    fn command(&self) -> String {
        let argv = self.argv();
        format!("sh -c '{}'", argv[2].replace('\'', r"'\''"))
    }
}

#[test]
fn opens_c_follows_a_three_level_tree_as_strace_f_does() {
    if !kernel_available("opens_c_follows_a_three_level_tree_as_strace_f_does") {
        return;
    }
    let tree = Tree::new();
    let log = tree.dir.path().join("strace.log");
    let argv = tree.argv();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let straced = strace_opens(&strace("open,openat", &argv, &log));
    let processes: BTreeSet<u32> = straced.iter().map(|(pid, _, _)| *pid).collect();
    assert!(processes.len() >= 3, "{straced:#?}");
    for name in ["one", "two", "three"] {
        assert!(straced.iter().any(|(_, path, _)| *path == tree.file(name)));
    }
    let (lines, stderr) = dtk_lines(&["opens", "-c", &tree.command()]);
    let reported = dtk_opens(&lines);
    assert_eq!(
        by_process_order(reported),
        by_process_order(straced),
        "{stderr}"
    );
}

#[test]
fn opens_no_follow_keeps_to_the_one_process() {
    if !kernel_available("opens_no_follow_keeps_to_the_one_process") {
        return;
    }
    let tree = Tree::new();
    let (lines, stderr) = dtk_lines(&["opens", "--no-follow", "-c", &tree.command()]);
    let opens = dtk_opens(&lines);
    let pids: BTreeSet<u32> = opens.iter().map(|(pid, _, _)| *pid).collect();
    assert_eq!(pids.len(), 1, "{opens:#?}\n{stderr}");
    // The shell's own opens (its loader's) are there; its children's files are not.
    assert!(!opens.is_empty(), "{stderr}");
    for name in ["one", "two", "three"] {
        assert!(!opens.iter().any(|(_, path, _)| *path == tree.file(name)));
    }
}

/// strace's count of each call in `calls`, over every process, and the processes that made
/// them.
fn strace_counts(log: &str, calls: &[&str]) -> (BTreeMap<String, u64>, BTreeSet<u32>) {
    let mut counts = BTreeMap::new();
    let mut pids = BTreeSet::new();
    for l in log.lines() {
        let Some((pid, rest)) = l.split_once(' ') else {
            continue;
        };
        pids.insert(pid.parse().unwrap());
        let rest = rest.trim_start();
        for call in calls {
            if rest.starts_with(&format!("{call}(")) {
                *counts.entry(call.to_string()).or_default() += 1;
            }
        }
    }
    (counts, pids)
}

/// dtk syscalls' rows (one table at the end), as ((pid, comm), syscall) → count.
fn syscall_rows(lines: &[Value]) -> Vec<(u32, String, String, u64)> {
    let table = lines.last().expect("a table");
    table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["pid"].as_u64().unwrap() as u32,
                r["comm"].as_str().unwrap().to_string(),
                r["syscall"].as_str().unwrap().to_string(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn syscalls_c_follows_parallel_children_as_make_runs_them() {
    if !kernel_available("syscalls_c_follows_parallel_children_as_make_runs_them") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = (0..4)
        .map(|i| {
            let path = dir.path().join(format!("f{i}"));
            std::fs::write(&path, "x".repeat(100_000 * (i + 1))).unwrap();
            path.display().to_string()
        })
        .collect();
    // Two jobs at once, each running two cats at once, like make -j2 with recursive makes.
    let job = |a: &str, b: &str| format!("sh -c 'cat {a} >/dev/null & cat {b} >/dev/null & wait'");
    let script = format!(
        "{} & {} & wait",
        job(&files[0], &files[1]),
        job(&files[2], &files[3])
    );
    let calls = ["openat", "read", "close"];
    let log = dir.path().join("strace.log");
    let (want, straced) = strace_counts(
        &strace(&calls.join(","), &["sh", "-c", &script], &log),
        &calls,
    );
    let command = format!("sh -c \"{script}\"");
    let (lines, stderr) = dtk_lines(&["syscalls", "-P", "-c", &command]);
    let rows = syscall_rows(&lines);
    let mut have: BTreeMap<String, u64> = BTreeMap::new();
    for (_, _, syscall, count) in &rows {
        if calls.contains(&syscall.as_str()) {
            *have.entry(syscall.clone()).or_default() += count;
        }
    }
    assert_eq!(have, want, "{rows:#?}\n{stderr}");
    let processes = |comm: &str| -> BTreeSet<u32> {
        rows.iter().filter(|r| r.1 == comm).map(|r| r.0).collect()
    };
    assert_eq!(processes("cat").len(), 4, "{rows:#?}");
    // A forked shell is `sh` until it execs: count processes by pid.
    let pids: BTreeSet<u32> = rows.iter().map(|r| r.0).collect();
    assert_eq!(pids.len(), straced.len(), "{rows:#?}");

    let (lines, _) = dtk_lines(&["syscalls", "-P", "--no-follow", "-c", &command]);
    let pids: BTreeSet<u32> = syscall_rows(&lines).iter().map(|r| r.0).collect();
    assert_eq!(pids.len(), 1, "--no-follow: {lines:#?}");
}

/// A python3.11 program that forks: the child calls `child` from inside `parent`, and writes
/// down its pid and the depth of `child`'s frame (the frames below it). It then lives on a
/// while: pyflow starts it inside its parent's frames by its ppid, which the engine reads
/// from /proc when it processes the event.
fn forking_program(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let truth = dir.join("truth");
    let program = dir.join("forks.py");
    std::fs::write(
        &program,
        format!(
            r#"import os, sys, time

def child(n):
    f, depth = sys._getframe(), 0
    while f.f_back:
        f, depth = f.f_back, depth + 1
    with open({truth:?}, "w") as out:
        out.write(f"{{os.getpid()}} {{depth}}")
    return n + 1

def parent():
    pid = os.fork()
    if pid == 0:
        child(1)
        time.sleep(3)
        os._exit(0)
    os.waitpid(pid, 0)
    return pid

parent()
"#,
            truth = truth.display().to_string()
        ),
    )
    .unwrap();
    (program, truth)
}

/// pyflow -c on `python` running a program that forks: the child's calls are shown under its
/// own pid, at its depth (it starts inside its parent's frames), and announced; with
/// --no-follow they are not shown. No uprobe is left behind.
fn forked_child_is_shown(python: &str) {
    let before = uprobe_events();
    let dir = tempfile::tempdir().unwrap();
    let (program, truth) = forking_program(dir.path());
    let command = format!("{python} {}", program.display());
    let (lines, stderr) = dtk_lines(&["pyflow", "-c", &command]);
    let truth = std::fs::read_to_string(&truth).unwrap();
    let (pid, depth) = truth.split_once(' ').unwrap();
    let (pid, depth): (u64, u64) = (pid.parse().unwrap(), depth.parse().unwrap());
    let entry = |function: &str| {
        lines
            .iter()
            .find(|v| v["function"] == function && v["kind"] == "entry")
            .unwrap_or_else(|| panic!("no entry of {function}: {lines:#?}\n{stderr}"))
    };
    let child = entry("child");
    assert_eq!(child["pid"], pid, "{lines:#?}");
    assert_eq!(child["depth"], depth, "{lines:#?}");
    let parent = entry("parent");
    assert_ne!(parent["pid"], pid);
    let name = Path::new(python).file_name().unwrap().to_string_lossy();
    assert!(
        stderr.contains(&format!("dtk: following {name} pid {pid}")),
        "{stderr}"
    );
    assert_eq!(uprobe_events(), before);

    let (lines, _) = dtk_lines(&["pyflow", "--no-follow", "-c", &command]);
    assert!(
        !lines.iter().any(|v| v["function"] == "child"),
        "--no-follow: {lines:#?}"
    );
    assert!(lines.iter().any(|v| v["function"] == "parent"));
    assert_eq!(uprobe_events(), before);
}

#[test]
fn pyflow_c_shows_a_forked_child_with_its_pid_and_depth() {
    if kernel_available("pyflow_c_shows_a_forked_child_with_its_pid_and_depth") {
        forked_child_is_shown(PYTHON);
    }
}

/// The same through the perf trampoline (a pyenv 3.12 of the machine image, no markers).
#[test]
fn pyflow_c_shows_a_forked_child_through_the_trampoline() {
    let test = "pyflow_c_shows_a_forked_child_through_the_trampoline";
    if !kernel_available(test) {
        return;
    }
    let python = "/root/.pyenv/versions/3.12.1/bin/python3.12";
    if !Path::new(python).exists() {
        assert!(
            std::env::var("DTK_REQUIRE_KERNEL").as_deref() != Ok("1"),
            "{test}: {python} is not on this machine"
        );
        eprintln!("{test}: skipped: {python} is not on this machine");
        return;
    }
    forked_child_is_shown(python);
}

/// A running `dtk pyflow -o json` with no target, its lines collected as they come.
struct Pyflow {
    child: Child,
    lines: Receiver<Value>,
    seen: Vec<Value>,
}

impl Pyflow {
    fn start() -> Pyflow {
        let mut child = dtk(&["pyflow"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line).unwrap();
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Pyflow {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits up to `within` for an event that `test` accepts.
    fn saw(&mut self, within: Duration, test: impl Fn(&Value) -> bool) -> bool {
        let deadline = Instant::now() + within;
        if self.seen.iter().any(&test) {
            return true;
        }
        while let Ok(v) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let hit = test(&v);
            self.seen.push(v);
            if hit {
                return true;
            }
        }
        false
    }

    /// Ctrl-C; returns stderr.
    fn stop(self) -> String {
        // SAFETY: kill sends SIGINT to the dtk this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let out = self.child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// Starts python3.11 on `code`, written to `name` in `dir` (pyflow hides `<string>`, the
/// file of `-c` code).
fn python(dir: &Path, name: &str, code: &str) -> Child {
    let program = dir.join(name);
    std::fs::write(&program, code).unwrap();
    Command::new(PYTHON)
        .arg(program)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn pyflow_without_a_target_shows_a_python_started_later() {
    if !kernel_available("pyflow_without_a_target_shows_a_python_started_later") {
        return;
    }
    let before = uprobe_events();
    let dir = tempfile::tempdir().unwrap();
    let mut pyflow = Pyflow::start();
    // Attached: a Python started now is seen. It calls for a second, so that some of its
    // calls get through while other tests' Pythons, traced too, fill the ring buffer.
    let ping_code =
        "import time\ndef dtk_ping(): time.sleep(0.01)\nfor _ in range(100): dtk_ping()\n";
    let start = Instant::now();
    loop {
        let mut ping = python(dir.path(), "ping.py", ping_code);
        let pid = ping.id();
        ping.wait().unwrap();
        if pyflow.saw(Duration::from_millis(500), |v| {
            v["pid"] == pid && v["function"] == "dtk_ping"
        }) {
            break;
        }
        assert!(start.elapsed() < PATIENCE, "pyflow never attached");
    }
    std::thread::sleep(Duration::from_millis(1500));
    let stop = dir.path().join("stop");
    let code = format!(
        "import os, time\ndef dtk_later(): time.sleep(0.05)\nwhile not os.path.exists({:?}): dtk_later()\n",
        stop.display().to_string()
    );
    let mut later = python(dir.path(), "later.py", &code);
    let pid = later.id();
    let shown = pyflow.saw(PATIENCE, |v| {
        v["pid"] == pid && v["function"] == "dtk_later" && v["kind"] == "return"
    });
    std::fs::write(&stop, "").unwrap();
    later.wait().unwrap();
    let tail: Vec<Value> = pyflow.seen.iter().rev().take(10).cloned().collect();
    let stderr = pyflow.stop();
    assert!(
        shown,
        "no call of pid {pid} shown; the last lines: {tail:#?}\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("dtk: following python3.11 pid {pid}")),
        "{stderr}"
    );
    assert_eq!(uprobe_events(), before);
}

#[test]
fn opens_p_follows_the_children_a_running_process_has_and_makes() {
    if !kernel_available("opens_p_follows_the_children_a_running_process_has_and_makes") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("polled");
    std::fs::write(&file, "x").unwrap();
    // The target's child (there before dtk) starts a cat every 100 ms.
    let poll = format!(
        "while :; do cat {} >/dev/null; sleep 0.1; done",
        file.display()
    );
    let mut target = Command::new("sh")
        .args(["-c", &format!("sh -c '{poll}' & wait")])
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = target.id().to_string();
    let opens_of_file = |extra: &[&str]| -> Vec<(u32, String, String)> {
        let mut args = vec!["opens", "-p", &pid, "-d", "4"];
        args.extend(extra);
        let (lines, _) = dtk_lines(&args);
        dtk_opens(&lines)
            .into_iter()
            .filter(|(_, path, _)| Path::new(path) == file)
            .collect()
    };
    let followed = opens_of_file(&[]);
    let alone = opens_of_file(&["--no-follow"]);
    // SAFETY: kill sends SIGKILL to the process group of the shell this test started.
    unsafe { libc::kill(-(target.id() as i32), libc::SIGKILL) };
    target.wait().unwrap();
    let cats: BTreeSet<u32> = followed.iter().map(|(pid, _, _)| *pid).collect();
    assert!(cats.len() >= 2, "the target's grandchildren: {followed:#?}");
    assert!(alone.is_empty(), "--no-follow: {alone:#?}");
}
