//! `dtk pyflow` as a user runs it: attached to a running loop with -p and stopped with Ctrl-C
//! (the target's probe semaphores back to 0 afterwards), frame filtering, JSON, no colour in a
//! pipe, and `| head -1`.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use dtk::internals::inspect::UsdtProbes;
use serde_json::Value;

use super::{dtk, programs, success, Interpreter};
use crate::util::{kernel_available, spawn_fresh_executable};

const PYTHON: &str = "/usr/bin/python3.11";

/// A process this test started, killed by pid when dropped.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// tests/pyflow/loop.py on `python`, once it has said it is ready.
fn start_loop_on(python: &Interpreter) -> Started {
    start_on(python, &["loop.py"])
}

/// A program of tests/pyflow (and its arguments) on `python`, once it has said it is ready.
fn start_on(python: &Interpreter, script: &[&str]) -> Started {
    let mut child = spawn_fresh_executable(
        python
            .command(script)
            .current_dir(programs())
            .stdout(Stdio::piped()),
    );
    let mut ready = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready, "ready\n");
    Started(child)
}

/// The values of python3.11's semaphores of `names` in process `pid` (Debian's python3.11 is
/// not PIE: a semaphore's address in the file is its address in the process).
fn semaphores(pid: u32, names: &[&str]) -> Vec<u16> {
    let probes = UsdtProbes::open(Path::new(PYTHON)).unwrap();
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    names
        .iter()
        .map(|name| {
            let site = probes.find("python", name).unwrap()[0].clone();
            let semaphore = site.semaphore.expect("python3.11's probes have semaphores");
            let mut bytes = [0u8; 2];
            mem.read_exact_at(&mut bytes, semaphore.address).unwrap();
            u16::from_ne_bytes(bytes)
        })
        .collect()
}

/// Waits for `child` to exit, for at most `limit`.
fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn pyflow_attaches_to_a_running_loop_and_restores_its_semaphores() {
    if !kernel_available("pyflow_attaches_to_a_running_loop_and_restores_its_semaphores") {
        return;
    }
    // A copy of python3.11 of the test's own: a following `dtk pyflow` that another test runs
    // at the same time raises the semaphores of every process running /usr/bin/python3.11.
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("python3.11");
    std::fs::copy(PYTHON, &private).unwrap();
    let mut python = Interpreter::system_3_11();
    python.argv = vec![private.to_string_lossy().into_owned()];
    python.env.push(("PYTHONHOME".into(), "/usr".into()));
    let target = start_loop_on(&python);
    let pid = target.0.id();
    let names = ["function__entry", "function__return", "line"];
    assert_eq!(semaphores(pid, &names), [0, 0, 0]);
    let mut dtk = dtk(&programs())
        .args(["pyflow", "--no-header", "-p", &pid.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(dtk.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        seen.push(lines.next().expect("pyflow printed lines").unwrap());
    }
    let during = semaphores(pid, &names);
    // SAFETY: kill(2) on the pid of the dtk process this test started.
    unsafe { libc::kill(dtk.id() as i32, libc::SIGINT) };
    let status = wait_for(&mut dtk, Duration::from_secs(10));
    if status.is_none() {
        let _ = dtk.kill();
        let _ = dtk.wait();
    }
    assert_eq!(status.map(|s| s.code()), Some(Some(0)), "dtk after SIGINT");
    assert!(
        during.iter().all(|&s| s > 0),
        "semaphores while attached: {during:?}"
    );
    // dtk leaves the last close of its uprobes to a process of its own, so as to exit at
    // once: the kernel lowers the semaphores as it unregisters them, a grace period each.
    let start = Instant::now();
    let mut after = semaphores(pid, &names);
    while after != [0, 0, 0] && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
        after = semaphores(pid, &names);
    }
    assert_eq!(after, [0, 0, 0], "semaphores after");
    for line in &seen {
        assert!(!line.contains('\x1b'), "colour in a pipe: {line:?}");
        assert!(
            line.ends_with("-> tick  loop.py:7") || line.ends_with("<- tick  loop.py:8"),
            "{line:?}"
        );
    }
}

#[test]
fn pyflow_into_head_exits_zero() {
    if !kernel_available("pyflow_into_head_exits_zero") {
        return;
    }
    let python = Interpreter::system_3_11();
    let mut dtk = dtk(&programs())
        .args(["pyflow", "-c", &python.command_line("loop.py")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first line is the header or the program's own "ready" (the same pipe): read it
    // and go away, as `head -1` does.
    let mut first = String::new();
    BufReader::new(dtk.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty());
    let status = wait_for(&mut dtk, Duration::from_secs(10));
    if status.is_none() {
        let _ = dtk.kill();
        let _ = dtk.wait();
    }
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "dtk after its reader left"
    );
}

/// The files of the frames `dtk pyflow -o json` shows for imports.py with `options`.
fn files_shown(options: &[&str]) -> Vec<String> {
    let python = Interpreter::system_3_11();
    let out = dtk(&programs())
        .args([
            "pyflow",
            "-o",
            "json",
            "-c",
            &python.command_line("imports.py"),
        ])
        .args(options)
        .output()
        .unwrap();
    success(&format!("dtk pyflow {options:?}"), &out);
    let mut files: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["file"].as_str().unwrap().to_string()
        })
        .collect();
    files.sort();
    files.dedup();
    files
}

#[test]
fn pyflow_filters_frames_by_library_module_include_and_exclude() {
    if !kernel_available("pyflow_filters_frames_by_library_module_include_and_exclude") {
        return;
    }
    assert_eq!(files_shown(&[]), ["imports.py"]);
    let json = files_shown(&["--module", "json"]);
    assert!(json.contains(&"imports.py".to_string()), "{json:?}");
    assert!(
        json.iter().any(|f| f.ends_with("/json/decoder.py")),
        "{json:?}"
    );
    assert!(
        json.iter()
            .all(|f| f == "imports.py" || f.contains("/json/")),
        "{json:?}"
    );
    let all = files_shown(&["--all"]);
    for library in [
        "/json/decoder.py",
        "/functools.py",
        "/re/__init__.py",
        "<frozen",
    ] {
        assert!(
            all.iter().any(|f| f.contains(library)),
            "{library}: {all:?}"
        );
    }
    assert_eq!(files_shown(&["--include", "re/__init__"]).len(), 1);
    let no_re = files_shown(&["--all", "--exclude", "/re/"]);
    assert!(no_re.iter().all(|f| !f.contains("/re/")), "{no_re:?}");
    assert!(no_re.contains(&"imports.py".to_string()), "{no_re:?}");
}

/// Entries of _PyEval_EvalFrameDefault in `pid` during one second. loop.py calls tick() 200
/// times a second; without the perf trampoline those calls stay inside one evaluator run.
fn evaluator_entries(pid: u32) -> u64 {
    let out = dtk(&programs())
        .args(["run", "-q", "-p", &pid.to_string(), "-n"])
        .arg("pid$target::_PyEval_EvalFrameDefault:entry { @ = count(); } tick-1s { exit(0); }")
        .output()
        .unwrap();
    success("dtk run counting evaluator entries", &out);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .last()
        .map_or(0, |n| n.parse().unwrap())
}

#[test]
fn pyflow_activate_turns_the_trampoline_of_python_3_14_on_and_off_again() {
    let test = "pyflow_activate_turns_the_trampoline_of_python_3_14_on_and_off_again";
    if !kernel_available(test) {
        return;
    }
    let Some(python) = Interpreter::debian("3.14", test) else {
        return;
    };
    let target = start_loop_on(&python);
    let pid = target.0.id().to_string();
    let refused = dtk(&programs())
        .args(["pyflow", "-p", &pid])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("perf trampoline is not active") && stderr.contains("--activate"),
        "{stderr}"
    );
    assert!(
        evaluator_entries(target.0.id()) < 20,
        "the trampoline is off before"
    );

    let mut dtk = dtk(&programs())
        .args(["pyflow", "--no-header", "--activate", "-p", &pid])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(dtk.stdout.take().unwrap()).lines();
    let seen: Vec<String> = (0..4)
        .map(|_| lines.next().expect("pyflow printed lines").unwrap())
        .collect();
    // SAFETY: kill(2) on the pid of the dtk process this test started.
    unsafe { libc::kill(dtk.id() as i32, libc::SIGINT) };
    let status = wait_for(&mut dtk, Duration::from_secs(10));
    if status.is_none() {
        let _ = dtk.kill();
    }
    let out = dtk.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.map(|s| s.code()), Some(Some(0)), "{stderr}");
    assert!(
        stderr.contains("turning the perf trampoline of pid"),
        "{stderr}"
    );
    assert!(stderr.contains("off again"), "{stderr}");
    for line in &seen {
        // The trampoline path gives a return its def line.
        assert!(
            line.ends_with("-> tick  loop.py:7") || line.ends_with("<- tick  loop.py:7"),
            "{line:?}"
        );
    }
    // The deactivation runs at the target's next bytecode: within a few ticks.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        evaluator_entries(target.0.id()) < 20,
        "the trampoline is off after"
    );
    assert!(
        !Path::new(&format!("/tmp/perf-{pid}.map")).exists(),
        "perf map removed"
    );
}

/// The scripts sys.remote_exec ran in a process started on audited.py, as it logged them.
fn remote_scripts_run(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

#[test]
fn show_with_activate_prints_the_program_and_leaves_the_target_alone() {
    let test = "show_with_activate_prints_the_program_and_leaves_the_target_alone";
    if !kernel_available(test) {
        return;
    }
    let Some(python) = Interpreter::debian("3.14", test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("remote-scripts");
    let target = start_on(&python, &["audited.py", log.to_str().unwrap()]);
    let pid = target.0.id();
    // The same build with its trampoline on from the start: `show` of it needs no
    // --activate, and prints the program for the target with only the pid changed.
    let mut perf = python.clone();
    perf.argv.extend(["-X".to_string(), "perf".to_string()]);
    let on = start_loop_on(&perf);
    let expected = dtk(&programs())
        .args(["show", "pyflow", "-p", &on.0.id().to_string()])
        .output()
        .unwrap();
    success(
        "dtk show pyflow of a process with the trampoline on",
        &expected,
    );
    let expected = String::from_utf8_lossy(&expected.stdout)
        .replace(&format!("pid{}::", on.0.id()), &format!("pid{pid}::"))
        .replace(
            &format!("/pid == {}/", on.0.id()),
            &format!("/pid == {pid}/"),
        );
    assert!(expected.contains(&format!("pid{pid}::_PyEval_EvalFrameDefault:entry")));

    let shown = dtk(&programs())
        .args(["show", "pyflow", "-p", &pid.to_string(), "--activate"])
        .output()
        .unwrap();
    success("dtk show pyflow --activate", &shown);
    assert_eq!(String::from_utf8_lossy(&shown.stdout), expected);
    assert_eq!(String::from_utf8_lossy(&shown.stderr), "");
    // A remote script runs at the target's next bytecode, within a few 5 ms ticks.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(remote_scripts_run(&log), "", "show ran code in the target");
    assert!(
        !Path::new(&format!("/tmp/perf-{pid}.map")).exists(),
        "the trampoline stays off"
    );

    // The log does see sys.remote_exec: one that does nothing shows up in it.
    let script = dir.path().join("nothing.py");
    std::fs::write(&script, "pass\n").unwrap();
    let sent = python
        .command(&[
            "-c",
            &format!("import sys; sys.remote_exec({pid}, {script:?})"),
        ])
        .output()
        .unwrap();
    success("sys.remote_exec of a script that does nothing", &sent);
    let deadline = Instant::now() + Duration::from_secs(10);
    while remote_scripts_run(&log).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(remote_scripts_run(&log), format!("{}\n", script.display()));
}

/// On the trampoline path the evaluator's return probe is a uprobe on each of its return
/// instructions, not a uretprobe (which the kernel places on at most 64 nested calls of a
/// thread): every call of a deep recursion is shown, and none is said to be too deep.
#[test]
fn calls_nested_past_64_are_followed_on_the_trampoline_path() {
    let test = "calls_nested_past_64_are_followed_on_the_trampoline_path";
    if !kernel_available(test) {
        return;
    }
    let Some(python) = Interpreter::pyenv("3.12.1", test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // 3.12's -X perf makes its recursion limit count C frames too: about 750 Python frames.
    let depth = 600;
    let program = dir.path().join("deep.py");
    std::fs::write(
        &program,
        format!(
            "def rec(n):\n    return rec(n - 1) if n else 0\n\nrec({})\n",
            depth - 1
        ),
    )
    .unwrap();
    let out = dtk(dir.path())
        .args(["pyflow", "-o", "json", "-c"])
        .arg(python.command_line(program.to_str().unwrap()))
        .output()
        .unwrap();
    success("dtk pyflow on deep.py", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v["type"] == "flow")
        .collect();
    let count = |kind: &str| events.iter().filter(|e| e["kind"] == kind).count();
    // <module> and `depth` nested rec() calls, each returning.
    assert_eq!((count("entry"), count("return")), (depth + 1, depth + 1));
    let deepest = events.iter().filter_map(|e| e["depth"].as_u64()).max();
    assert_eq!(deepest, Some(depth as u64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("nested deeper"), "{stderr}");
}

/// How many times each trampoline Python is attached to a running loop.
const ATTACHES: usize = 50;

/// Attaching with -p to a loop that runs under the perf trampoline, again and again: every
/// attach shows tick()'s calls at depth 0, each entry followed by its return, and never a
/// return whose entry was not shown (the probes go live together, and a thread's depth is
/// counted only from an entry seen).
#[test]
fn attaching_mid_run_never_drifts_on_the_trampoline_path() {
    let test = "attaching_mid_run_never_drifts_on_the_trampoline_path";
    if !kernel_available(test) {
        return;
    }
    let pythons = [
        Interpreter::debian("3.13", test),
        Interpreter::debian("3.14", test),
        Interpreter::pyenv("3.12.1", test),
    ];
    for mut python in pythons.into_iter().flatten() {
        python.env.push(("PYTHONPERFSUPPORT".into(), "1".into()));
        let target = start_loop_on(&python);
        let pid = target.0.id().to_string();
        for attach in 0..ATTACHES {
            let lines = attach_for_lines(&pid, 6);
            let what = format!("{} attach {attach}: {lines:#?}", python.name);
            for (i, line) in lines.iter().enumerate() {
                let kind = if i % 2 == 0 { "entry" } else { "return" };
                assert_eq!(line["kind"], kind, "{what}");
                assert_eq!(line["function"], "tick", "{what}");
                assert_eq!(line["depth"], 0, "{what}");
            }
        }
    }
}

/// `dtk pyflow -o json -p PID` until it has shown `count` flow lines, then Ctrl-C.
fn attach_for_lines(pid: &str, count: usize) -> Vec<Value> {
    let mut dtk = dtk(&programs())
        .args(["pyflow", "-o", "json", "-p", pid])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(dtk.stdout.take().unwrap()).lines();
    let mut flow = Vec::new();
    while flow.len() < count {
        let line = lines.next().expect("pyflow printed lines").unwrap();
        let value: Value = serde_json::from_str(&line).unwrap();
        if value["type"] == "flow" {
            flow.push(value);
        }
    }
    // SAFETY: kill(2) on the pid of the dtk process this test started.
    unsafe { libc::kill(dtk.id() as i32, libc::SIGINT) };
    let status = wait_for(&mut dtk, Duration::from_secs(10));
    if status.is_none() {
        let _ = dtk.kill();
        let _ = dtk.wait();
    }
    assert_eq!(status.map(|s| s.code()), Some(Some(0)), "dtk after SIGINT");
    flow
}

/// A class called in a loop: CPython 3.14 shows each `__init__` (the program's own count);
/// 3.13 runs the specialised ones without the perf trampoline, which dtk says on stderr.
#[test]
fn repeated_init_calls_are_shown_or_said_missing() {
    let test = "repeated_init_calls_are_shown_or_said_missing";
    if !kernel_available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let calls = 5;
    let program = dir.path().join("init.py");
    std::fs::write(
        &program,
        format!(
            "class C:\n    def __init__(self, v):\n        self.v = v\n\n\n\
             def main():\n    for i in range({calls}):\n        C(i)\n\n\nmain()\n"
        ),
    )
    .unwrap();
    for version in ["3.13", "3.14"] {
        let Some(python) = Interpreter::debian(version, test) else {
            continue;
        };
        let out = dtk(dir.path())
            .args(["pyflow", "-o", "json", "-c"])
            .arg(python.command_line(program.to_str().unwrap()))
            .output()
            .unwrap();
        success("dtk pyflow on init.py", &out);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let inits = stdout
            .lines()
            .filter(|l| l.contains("\"entry\"") && l.contains("\"__init__\""))
            .count();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = stderr.contains("__init__ calls are not shown");
        if version == "3.13" {
            assert!(said, "{stderr}");
            assert!(inits <= calls, "{stdout}");
        } else {
            assert!(!said, "{stderr}");
            assert_eq!(inits, calls, "{stdout}");
        }
    }
}
