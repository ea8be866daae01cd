//! What dtk does to the program it follows, and what it shows of it: `python -c` code is the
//! user's; an exec starts a new flow; a `-c` run on the trampoline path leaves no perf map
//! behind; CPython 3.12's recursion under `-X perf` is announced; `-q` silences notices.
//! The flows are compared with sys.setprofile's (tests/pyflow/setprofile.py).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{assert_same_flow, by_thread, dtk, programs, setprofile_of, success, Interpreter};
use crate::util::kernel_available;

/// The Pythons with markers: 3.9, Debian 12's 3.11 and 3.15 (those the fixture has).
fn marker_pythons(test: &str) -> Vec<Interpreter> {
    let mut all = vec![Interpreter::system_3_11()];
    all.extend(Interpreter::debian("3.9", test));
    all.extend(Interpreter::debian("3.15", test));
    all
}

/// `dtk pyflow -o json -c` on `python` with `args`: its output lines.
fn pyflow_json(python: &Interpreter, args: &[&str]) -> String {
    let out = dtk(&programs())
        .args(["pyflow", "-o", "json", "-c", &python.command_line_of(args)])
        .envs(python.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    success(&format!("dtk pyflow on {} {args:?}", python.name), &out);
    String::from_utf8(out.stdout).unwrap()
}

/// The code of `python -c` is the user's, and shown; what the standard library compiles from
/// a string and runs itself (json's and dataclasses' helpers) is not.
#[test]
fn python_c_code_is_shown_as_the_users() {
    let test = "python_c_code_is_shown_as_the_users";
    if !kernel_available(test) {
        return;
    }
    let code = "import json\n\
                from dataclasses import dataclass\n\
                @dataclass\n\
                class Row:\n    n: int\n\
                def walk(n):\n    return json.dumps(Row(n).n) if n == 0 else walk(n - 1)\n\
                walk(3)\n";
    for python in marker_pythons(test) {
        let want = setprofile_of(&python, &["-c", code]);
        let have = by_thread(&pyflow_json(&python, &["-c", code]));
        assert!(
            want.iter().flatten().any(|c| c.2 == "walk"),
            "{}: {want:?}",
            python.name
        );
        assert_same_flow(&python, "python -c", want, have);
    }
}

/// After os.execv, the new program's flow starts at depth 0, after one exec line; before it,
/// the flow is the old program's, with its calls left open.
#[test]
fn an_exec_starts_a_new_flow_at_depth_0() {
    let test = "an_exec_starts_a_new_flow_at_depth_0";
    if !kernel_available(test) {
        return;
    }
    for python in marker_pythons(test) {
        let lines = pyflow_json(&python, &["exec_before.py"]);
        let execs: Vec<(usize, Value)> = lines
            .lines()
            .enumerate()
            .map(|(i, l)| (i, serde_json::from_str::<Value>(l).unwrap()))
            .filter(|(_, v)| v["kind"] == "exec")
            .collect();
        assert_eq!(execs.len(), 1, "{}: one exec line\n{lines}", python.name);
        let (at, exec) = &execs[0];
        assert_eq!(exec["depth"], 0, "{exec}");
        let program = Path::new(&python.argv[0]).file_name().unwrap();
        assert_eq!(exec["file"], program.to_str().unwrap(), "{exec}");
        let before: Vec<&str> = lines.lines().take(*at).collect();
        let after: Vec<&str> = lines.lines().skip(at + 1).collect();
        assert_same_flow(
            &python,
            "exec_before.py",
            setprofile_of(&python, &["exec_before.py"]),
            by_thread(&before.join("\n")),
        );
        assert_same_flow(
            &python,
            "exec_after.py",
            setprofile_of(&python, &["exec_after.py"]),
            by_thread(&after.join("\n")),
        );
    }
}

/// A program that writes its pid to the file named by its first argument.
const WRITES_PID: &str = "import os, sys\nopen(sys.argv[1], 'w').write(str(os.getpid()))\n\
                          def f():\n    return 1\nf()\n";

/// `dtk pyflow -c` on the trampoline path: the perf map of the process it started with
/// -X perf is gone once dtk exits.
#[test]
fn pyflow_removes_the_perf_map_of_the_process_it_started() {
    let test = "pyflow_removes_the_perf_map_of_the_process_it_started";
    if !kernel_available(test) {
        return;
    }
    let Some(python) = Interpreter::debian("3.13", test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let out = dtk(dir.path())
        .args(["pyflow", "-c"])
        .arg(python.command_line_of(&["-c", WRITES_PID, pid_file.to_str().unwrap()]))
        .envs(python.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    success("dtk pyflow on python3.13", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("-> f  <string>:3"), "{stdout}");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let map = format!("/tmp/perf-{pid}.map");
    assert!(!Path::new(&map).exists(), "{map} is left behind");

    // Stopped with Ctrl-C while the program runs: dtk kills it, and removes its map too.
    let looping = format!("{WRITES_PID}while True:\n    f()\n");
    let pid_file = dir.path().join("pid-of-loop");
    let mut tracing = dtk(dir.path())
        .args(["pyflow", "-c"])
        .arg(python.command_line_of(&["-c", &looping, pid_file.to_str().unwrap()]))
        .envs(python.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let pid = loop {
        match std::fs::read_to_string(&pid_file) {
            Ok(pid) if !pid.is_empty() => break pid,
            _ if Instant::now() > deadline => {
                let _ = tracing.kill();
                panic!("the traced program did not start");
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let map = format!("/tmp/perf-{pid}.map");
    while !Path::new(&map).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(Path::new(&map).exists(), "-X perf writes {map}");
    // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
    unsafe { libc::kill(tracing.id() as libc::pid_t, libc::SIGINT) };
    let status = tracing.wait().unwrap();
    assert!(status.success(), "dtk pyflow after Ctrl-C: {status}");
    assert!(
        !Path::new(&map).exists(),
        "{map} is left behind after Ctrl-C"
    );
}

/// The depth at which `python` under -X perf raises RecursionError, as the test measures it.
fn depth_under_perf(python: &Path) -> u64 {
    let code = "import sys\nsys.setrecursionlimit(1000)\nd = 0\n\
                def down():\n    global d\n    d += 1\n    down()\n\
                try:\n    down()\nexcept RecursionError:\n    pass\nprint(d)\n";
    let out = std::process::Command::new(python)
        .args(["-X", "perf", "-c", code])
        .output()
        .unwrap();
    success("python -X perf", &out);
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// On a CPython 3.12 that raises RecursionError early under -X perf, `dtk pyflow -c` says at
/// what depth; -q says nothing at all.
#[test]
fn pyflow_announces_3_12s_recursion_under_perf_and_q_silences_it() {
    let test = "pyflow_announces_3_12s_recursion_under_perf_and_q_silences_it";
    if !kernel_available(test) {
        return;
    }
    let Some(python) = Interpreter::pyenv("3.12.1", test) else {
        return;
    };
    let interpreter = Path::new(&python.argv[0]);
    let depth = depth_under_perf(interpreter);
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let command = python.command_line_of(&["-c", WRITES_PID, pid_file.to_str().unwrap()]);
    let out = dtk(dir.path())
        .args(["pyflow", "-c", &command])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    success("dtk pyflow on python3.12", &out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let noticed = stderr.contains(&format!("RecursionError at about {} nested", depth));
    // The default recursion limit is 1,000; the notice is for a 3.12 that stops well short.
    assert_eq!(noticed, depth + 50 < 1000, "depth {depth}: {stderr}");
    assert!(
        stderr.contains("starting CPython 3.12 with -X perf"),
        "{stderr}"
    );
    let quiet = dtk(dir.path())
        .args(["pyflow", "-q", "-c", &command])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    success("dtk pyflow -q on python3.12", &quiet);
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
    assert!(String::from_utf8_lossy(&quiet.stdout).contains("-> f  <string>:3"));
}
