//! `dtk pyflow` end to end, on every CPython Debian provides here.
//!
//! Ground truth: for each program in tests/pyflow/, the entries and returns that
//! `dtk pyflow -o json -c` shows must be, thread by thread, the 'call' and 'return' events that
//! sys.setprofile (with threading.setprofile) records for the same program, with the same
//! frames left out (tests/pyflow/setprofile.py), at the same depths and lines. On 3.9, 3.11
//! and through the perf trampoline (3.12 to 3.14), a generator's yields and resumes must be
//! marked as such where sys.setprofile's frame stopped at a yield.

mod behaviour;
pub(crate) mod interpreter;
mod program;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use assert_cmd::cargo::cargo_bin;
use serde_json::Value;

use crate::util::kernel_available;
use interpreter::Interpreter;

/// The directory of the test programs.
fn programs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyflow")
}

/// The dtk binary, with the variables that change its output removed, run in `dir`.
fn dtk(dir: &Path) -> Command {
    let mut cmd = Command::new(cargo_bin("dtk"));
    cmd.env_remove("NO_COLOR")
        .env_remove("TERM")
        .current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("DTK_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// One event as both sides report it: kind, file, function, line, depth.
type Call = (String, String, String, i64, u64);

/// Events grouped by thread, each thread's in order; threads sorted, since their ids differ
/// from run to run.
fn by_thread(lines: &str) -> Vec<Vec<Call>> {
    let mut threads: BTreeMap<u64, Vec<Call>> = BTreeMap::new();
    for line in lines.lines().filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        threads
            .entry(v["tid"].as_u64().unwrap())
            .or_default()
            .push((
                v["kind"].as_str().unwrap().to_string(),
                v["file"].as_str().unwrap().to_string(),
                v["function"].as_str().unwrap().to_string(),
                v["line"].as_i64().unwrap_or(-1),
                v["depth"].as_u64().unwrap(),
            ));
    }
    let mut threads: Vec<Vec<Call>> = threads.into_values().collect();
    threads.sort();
    threads
}

fn render(threads: &[Vec<Call>]) -> String {
    let mut s = String::new();
    for (i, calls) in threads.iter().enumerate() {
        s.push_str(&format!("thread {i}:\n"));
        for (kind, file, function, line, depth) in calls {
            let (arrow, mark) = match kind.as_str() {
                "entry" => ("->", ""),
                "resume" => ("->", " (resume)"),
                "yield" => ("<-", " (yield)"),
                "unwind" => ("<-", " !"),
                _ => ("<-", ""),
            };
            let indent = "  ".repeat(*depth as usize);
            s.push_str(&format!(
                "  {indent}{arrow} {function}{mark}  {file}:{line}\n"
            ));
        }
    }
    s
}

fn success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What sys.setprofile records for `program` on `python`.
fn setprofile_flow(python: &Interpreter, program: &str) -> Vec<Vec<Call>> {
    setprofile_of(python, &[program])
}

/// What sys.setprofile records on `python` for what `args` run: a program (and its
/// arguments), or `-c CODE`.
fn setprofile_of(python: &Interpreter, args: &[&str]) -> Vec<Vec<Call>> {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("events.json");
    let mut words = vec!["setprofile.py", out_file.to_str().unwrap()];
    words.extend(args);
    let out = python
        .command(&words)
        .current_dir(programs())
        .output()
        .unwrap();
    success(&format!("{} setprofile.py {args:?}", python.name), &out);
    by_thread(&std::fs::read_to_string(out_file).unwrap())
}

/// What `dtk pyflow -o json -c` shows for `program` on `python`.
fn pyflow_flow(python: &Interpreter, program: &str) -> Vec<Vec<Call>> {
    let out = dtk(&programs())
        .args(["pyflow", "-o", "json", "-c", &python.command_line(program)])
        .envs(python.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    success(&format!("dtk pyflow on {} {program}", python.name), &out);
    by_thread(&String::from_utf8(out.stdout).unwrap())
}

/// What the perf-trampoline path can know: a return gives its function's entry line (the
/// frame is gone when the evaluator returns), and a return by an exception is an "unwind",
/// which sys.setprofile reports as a return. Applied to both sides for the interpreters that
/// take that path. Yields and resumes are compared as they are.
fn as_the_trampoline_sees(threads: Vec<Vec<Call>>) -> Vec<Vec<Call>> {
    threads
        .into_iter()
        .map(|calls| {
            let mut entered: Vec<i64> = Vec::new();
            calls
                .into_iter()
                .map(|(kind, file, function, line, depth)| {
                    if kind == "entry" || kind == "resume" {
                        entered.push(line);
                        return (kind, file, function, line, depth);
                    }
                    let line = entered.pop().unwrap_or(line);
                    let kind = if kind == "unwind" {
                        "return".into()
                    } else {
                        kind
                    };
                    (kind, file, function, line, depth)
                })
                .collect()
        })
        .collect()
}

/// The events with kinds renamed: (from, to) pairs.
fn renamed(threads: Vec<Vec<Call>>, names: &[(&str, &str)]) -> Vec<Vec<Call>> {
    threads
        .into_iter()
        .map(|calls| {
            calls
                .into_iter()
                .map(|(kind, file, function, line, depth)| {
                    let kind = names
                        .iter()
                        .find(|(from, _)| *from == kind)
                        .map_or(kind, |(_, to)| to.to_string());
                    (kind, file, function, line, depth)
                })
                .collect()
        })
        .collect()
}

/// sys.setprofile's view of a return by an exception: a return.
const UNWINDS_AS_RETURNS: &[(&str, &str)] = &[("unwind", "return")];

/// What the markers alone tell (USDT: 3.8 and 3.10): entries and returns only, since
/// function__entry and function__return fire alike for a call and a resume, a return and a
/// yield.
const AS_THE_MARKERS_SEE: &[(&str, &str)] = &[("resume", "entry"), ("yield", "return")];

/// The ground truth of this module: pyflow shows what sys.setprofile records.
pub fn assert_flow_matches_setprofile(python: &Interpreter, program: &str) {
    let want = setprofile_flow(python, program);
    let have = pyflow_flow(python, program);
    assert_same_flow(python, program, want, have);
}

/// What pyflow shows (`have`) is what sys.setprofile records (`want`), as far as `python`'s
/// probes can tell.
pub fn assert_same_flow(
    python: &Interpreter,
    what: &str,
    mut want: Vec<Vec<Call>>,
    mut have: Vec<Vec<Call>>,
) {
    if python.trampoline {
        want = as_the_trampoline_sees(want);
        have = as_the_trampoline_sees(have);
    } else if python.yields {
        have = renamed(have, UNWINDS_AS_RETURNS);
    } else {
        want = renamed(want, AS_THE_MARKERS_SEE);
    }
    assert!(
        want.iter().map(Vec::len).sum::<usize>() > 5,
        "{what}: too few events recorded to compare:\n{}",
        render(&want)
    );
    assert!(
        have == want,
        "{} {what}: pyflow shows\n{}\nsys.setprofile records\n{}",
        python.name,
        render(&have),
        render(&want)
    );
}

const PROGRAMS: [&str; 11] = [
    "recursion.py",
    "generators.py",
    "exceptions.py",
    "threads.py",
    "imports.py",
    "classes.py",
    "genexpr.py",
    "docstring.py",
    "generated.py",
    "gather.py",
    "asyncgen.py",
];

/// Generators stopped while suspended (throw(), close(), dropped), where the perf
/// trampoline's, 3.11's and 3.15's yields and resumes are told apart (3.15's markers fire no
/// function__entry when throw() or close() resumes a generator; pyflow.d reports the resume
/// from the generator's frame). Not 3.9, whose sys.setprofile misses what a dropped
/// generator's finalizer runs (the markers fire for it).
const SUSPENDED: &str = "suspended.py";

/// Recursion deeper than 900 frames. Not on 3.12, whose `-X perf` makes the recursion limit
/// apply to C frames too: the program itself fails with RecursionError at about 750 frames
/// (CPython's own limit, not dtk's).
const DEEP: &str = "deep.py";

fn assert_every_program(test: &str, python: Option<Interpreter>) {
    if !kernel_available(test) {
        return;
    }
    let Some(python) = python else {
        return;
    };
    for program in PROGRAMS {
        assert_flow_matches_setprofile(&python, program);
    }
    if python.yields && python.name != "python3.9" {
        assert_flow_matches_setprofile(&python, SUSPENDED);
    }
    if !python.name.contains("3.12") {
        assert_flow_matches_setprofile(&python, DEEP);
    }
}

#[test]
fn pyflow_matches_setprofile_on_python_3_11() {
    let test = "pyflow_matches_setprofile_on_python_3_11";
    assert_every_program(test, Some(Interpreter::system_3_11()));
}

#[test]
fn pyflow_matches_setprofile_on_python_3_9() {
    let test = "pyflow_matches_setprofile_on_python_3_9";
    assert_every_program(test, Interpreter::debian("3.9", test));
}

#[test]
fn pyflow_matches_setprofile_on_python_3_15() {
    let test = "pyflow_matches_setprofile_on_python_3_15";
    assert_every_program(test, Interpreter::debian("3.15", test));
}

// CPython 3.12 to 3.14 have no function markers: pyflow starts them with -X perf and follows
// the perf trampoline (d-scripts/pyflow-trampoline.d).

#[test]
fn pyflow_matches_setprofile_on_python_3_13_through_the_trampoline() {
    let test = "pyflow_matches_setprofile_on_python_3_13_through_the_trampoline";
    assert_every_program(test, Interpreter::debian("3.13", test));
}

#[test]
fn pyflow_matches_setprofile_on_python_3_14_through_the_trampoline() {
    let test = "pyflow_matches_setprofile_on_python_3_14_through_the_trampoline";
    assert_every_program(test, Interpreter::debian("3.14", test));
}

#[test]
fn pyflow_matches_setprofile_on_pyenv_3_12_through_the_trampoline() {
    let test = "pyflow_matches_setprofile_on_pyenv_3_12_through_the_trampoline";
    assert_every_program(test, Interpreter::pyenv("3.12.1", test));
}

#[test]
fn pyflow_matches_setprofile_on_pyenv_3_13_through_the_trampoline() {
    let test = "pyflow_matches_setprofile_on_pyenv_3_13_through_the_trampoline";
    assert_every_program(test, Interpreter::pyenv("3.13.0", test));
}

#[test]
fn module_that_matches_nothing_is_warned_at_the_end() {
    if !kernel_available("module_that_matches_nothing_is_warned_at_the_end") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.py");
    std::fs::write(&app, "import json\ndef f():\n    json.dumps(1)\nf()\n").unwrap();
    let out = dtk(dir.path())
        .args(["pyflow", "--module", "nosuchmod", "--module", "json", "-c"])
        .arg(format!("/usr/bin/python3.11 {}", app.display()))
        .output()
        .unwrap();
    success("pyflow --module", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("-> dumps"), "{stdout}");
    assert_eq!(
        stderr,
        "dtk: warning: --module nosuchmod matched nothing: no traced call was in a package or \
         module of that name\n"
    );
}

#[test]
fn a_pyenv_shim_runs_the_interpreter_it_selects() {
    if !kernel_available("a_pyenv_shim_runs_the_interpreter_it_selects") {
        return;
    }
    let (_root, shim) = crate::util::fake_pyenv("python3.11", "/usr/bin/python3.11");
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.py");
    std::fs::write(&app, "def f():\n    pass\nf()\n").unwrap();
    let out = dtk(dir.path())
        .args(["pyflow", "-c"])
        .arg(format!("{} {}", shim.display(), app.display()))
        .output()
        .unwrap();
    success("pyflow through a pyenv shim", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("-> f"), "{stdout}");
    assert_eq!(
        stderr,
        format!(
            "dtk: {} is a pyenv shim (a shell script): running the interpreter it selects here, \
             /usr/bin/python3.11 (`pyenv which`)\n",
            shim.display()
        )
    );
}
