//! The command line as a user sees it: the real binary, with a scrubbed environment.

use std::path::Path;
use std::process::{Command, Stdio};

use assert_cmd::cargo::cargo_bin;

/// The dtk binary, with the variables that change its output removed.
fn dtk() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(cargo_bin("dtk"));
    cmd.env_remove("NO_COLOR").env_remove("TERM");
    for (key, _) in std::env::vars() {
        if key.starts_with("DTK_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn stdout_of(args: &[&str]) -> String {
    let out = dtk().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "dtk {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_subcommand_help_has_examples() {
    for sub in [
        "pyflow", "opens", "syscalls", "run", "list", "show", "generate",
    ] {
        let help = stdout_of(&[sub, "--help"]);
        assert!(
            help.contains("Examples:\n  dtk "),
            "dtk {sub} --help:\n{help}"
        );
    }
}

#[test]
fn list_names_every_bundled_script() {
    let out = stdout_of(&["list"]);
    let names: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(names, ["pyflow", "pyflow-trampoline", "opens", "syscalls"]);
    let json = stdout_of(&["-o", "json", "list"]);
    for line in json.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["description"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

#[test]
fn show_substitutes_the_pid_into_probe_descriptions() {
    // pyflow reads the process's interpreter to choose its script: a real python3.11.
    let mut python = std::process::Command::new("/usr/bin/python3.11")
        .args(["-c", "import time; time.sleep(30)"])
        .spawn()
        .unwrap();
    let pid = python.id().to_string();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let out = stdout_of(&["show", "pyflow", "-p", &pid]);
    let _ = python.kill();
    let _ = python.wait();
    assert!(
        out.contains(&format!("\npython{pid}:::function-entry\n")),
        "{out}"
    );
    assert!(!out.contains("python$target:::"), "{out}");
    let all = stdout_of(&["show", "pyflow"]);
    assert!(all.contains("\npython*:::function-return\n"), "{all}");
}

#[test]
fn show_escapes_a_quote_in_a_name() {
    let out = stdout_of(&["show", "opens", "-n", "a\"b"]);
    assert!(
        out.contains("inline string FILTER_NAME = \"a\\\"b\";\n"),
        "{out}"
    );
}

#[test]
fn show_passes_hostile_values_as_one_literal() {
    let hostile = "x\"; } BEGIN { system(\"id\"); } /* \\";
    let out = stdout_of(&["show", "syscalls", "-z", hostile, "-n", "a\nb"]);
    assert!(
        out.contains(r#"inline string FILTER_ZONE = "x\"; } BEGIN { system(\"id\"); } /* \\";"#),
        "{out}"
    );
    assert!(
        out.contains("inline string FILTER_NAME = \"a\\nb\";\n"),
        "{out}"
    );
    assert_eq!(out.matches("BEGIN").count(), 1, "only inside the literal");
}

#[test]
fn show_of_a_command_target_keeps_dollar_target() {
    let out = stdout_of(&["show", "opens", "-c", "cat /etc/hostname"]);
    assert!(out.contains("inline int FILTER_PID = $target;\n"), "{out}");
}

#[test]
fn bad_pid_is_a_clear_error_with_exit_code_2() {
    let out = dtk()
        .args(["show", "pyflow", "-p", "notapid"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("dtk: error: invalid value 'notapid' for '--pid <PID>'"),
        "{err}"
    );
}

#[test]
fn missing_process_is_reported_before_any_backend_work() {
    let out = dtk().args(["pyflow", "-p", "4194321"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "dtk: error: pid 4194321: no such process\n"
    );
}

/// Only where the libdtrace back end was not built; where it was, tests/libdtrace.rs runs it.
#[cfg(not(dtk_libdtrace))]
#[test]
fn unavailable_backend_says_why_and_what_to_do() {
    let out = dtk()
        .args(["--backend", "libdtrace", "opens"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("dtk: error: the libdtrace back end is not available: "),
        "{err}"
    );
    assert!(err.contains("hint: "), "{err}");
}

#[test]
fn unreadable_script_names_the_file() {
    let out = dtk().args(["run", "/nonexistent/x.d"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("dtk: error: reading the D script /nonexistent/x.d: No such file"),
        "{err}"
    );
}

/// The reader of dtk's output goes away before dtk writes: dtk must exit 0, silently.
#[test]
fn closed_pipe_exits_zero_silently() {
    let mut child = Command::new(cargo_bin("dtk"))
        .args(["generate", "complete-zsh"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn multicall_link_runs_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("pyflow");
    std::os::unix::fs::symlink(cargo_bin("dtk"), &link).unwrap();
    let out = Command::new(&link).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.starts_with("Python call flow"), "{help}");
    assert!(help.contains("Usage: dtk pyflow"), "{help}");
}

/// man/ and completions/ are generated from the CLI; this fails when they are stale.
#[test]
fn generated_docs_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fresh = tempfile::tempdir().unwrap();
    for (kind, dir) in [
        ("man", "man"),
        ("complete-bash", "completions"),
        ("complete-zsh", "completions"),
        ("complete-fish", "completions"),
    ] {
        let out_dir = fresh.path().join(dir);
        dtk()
            .args(["generate", kind, "--dir"])
            .arg(&out_dir)
            .assert()
            .success();
    }
    for dir in ["man", "completions"] {
        let mut names: Vec<_> = std::fs::read_dir(fresh.path().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        let mut committed: Vec<_> = std::fs::read_dir(root.join(dir))
            .map(|rd| rd.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        committed.sort();
        assert_eq!(
            names, committed,
            "{dir}/ holds other files than dtk generates"
        );
        for name in names {
            let want = std::fs::read(fresh.path().join(dir).join(&name)).unwrap();
            let have = std::fs::read(root.join(dir).join(&name)).unwrap();
            assert!(
                want == have,
                "{dir}/{} is stale: regenerate with `cargo run -- generate man --dir man` and \
                 `cargo run -- generate complete-SHELL --dir completions`",
                name.to_string_lossy()
            );
        }
    }
}

/// The README follows the CLI: every subcommand, and every option of each (by its long or its
/// short name), is named in it, and its `dtk list` output is what `dtk list` prints.
#[test]
fn readme_is_current() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    // (short, long) of each option in a --help text.
    let options = |help: &str| -> Vec<(Option<String>, String)> {
        help.lines()
            .filter_map(|l| {
                let l = l.trim_start();
                let (short, rest) = match l.strip_prefix('-') {
                    Some(r) if !r.starts_with('-') => {
                        let (s, rest) = r.split_once(", ")?;
                        (Some(format!("-{s}")), rest)
                    }
                    _ => (None, l),
                };
                let name = rest.strip_prefix("--")?.split([' ', '=', '<']).next()?;
                (!["help", "version"].contains(&name)).then(|| (short, format!("--{name}")))
            })
            .collect()
    };
    let named = |(short, long): &(Option<String>, String)| {
        readme.contains(long.as_str())
            || short.as_ref().is_some_and(|s| {
                readme.contains(&format!("{s} ")) || readme.contains(&format!("`{s}`"))
            })
    };
    let mut missing = Vec::new();
    for option in options(&stdout_of(&["--help"])) {
        if !named(&option) {
            missing.push(format!("dtk {}", option.1));
        }
    }
    for sub in [
        "pyflow", "opens", "syscalls", "run", "list", "show", "generate",
    ] {
        if !readme.contains(&format!("dtk {sub}")) {
            missing.push(format!("dtk {sub}"));
        }
        for option in options(&stdout_of(&[sub, "--help"])) {
            if !named(&option) {
                missing.push(format!("dtk {sub} {}", option.1));
            }
        }
    }
    assert!(missing.is_empty(), "README.md does not name: {missing:?}");
    let list = stdout_of(&["list"]);
    assert!(
        readme.contains(&format!("$ dtk list\n{list}")),
        "README.md's `dtk list` is not what it prints now:\n{list}"
    );
}

/// dtk's stderr and exit code for `args`, failing the test if it runs for more than 30 s (a
/// hang) or panics.
fn failure_of(args: &[&str]) -> (Option<i32>, String) {
    let out = dtk()
        .args(args)
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains("panicked"), "dtk {args:?}: {err}");
    (out.status.code(), err)
}

#[test]
fn durations_out_of_range_are_refused_not_a_panic() {
    for value in ["99999999999999999999", "1e300", "18446744073709551616"] {
        for command in ["opens", "syscalls"] {
            let (code, err) = failure_of(&["show", command, "-d", value]);
            assert_eq!(code, Some(2), "{err}");
            assert!(
                err.contains(&format!(
                    "invalid value '{value}' for '--duration <SECONDS>': too large"
                )),
                "{err}"
            );
        }
    }
    let (code, err) = failure_of(&["show", "opens", "-d", "-5"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a positive number of seconds"), "{err}");
}

#[test]
fn negative_pid_is_not_a_process_id() {
    let (code, err) = failure_of(&["show", "opens", "-p", "-1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with("dtk: error: invalid value '-1' for '--pid <PID>': not a process id"),
        "{err}"
    );
}

#[test]
fn empty_programs_are_refused_not_run_forever() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.d");
    std::fs::write(&empty, "").unwrap();
    let comments = dir.path().join("comments.d");
    std::fs::write(
        &comments,
        "/* nothing */\n// here\n#pragma D option quiet\n",
    )
    .unwrap();
    for args in [
        vec!["run", "-n", ""],
        vec!["run", empty.to_str().unwrap()],
        vec!["run", comments.to_str().unwrap()],
    ] {
        let (code, err) = failure_of(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(
            err.contains("error: no probes specified"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn unknown_d_option_is_named() {
    let (code, err) = failure_of(&["run", "-x", "bogusopt=1", "-n", "BEGIN { exit(0); }"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("failed to set -x bogusopt: Invalid option name"),
        "{err}"
    );
}

#[test]
fn unused_script_arguments_are_named() {
    let (code, err) = failure_of(&["run", "-n", "BEGIN { trace($2); exit(0); }", "1", "2", "3"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("extraneous argument \"1\" ($1 is not referenced)"),
        "{err}"
    );
    // As in dtrace(1), -x defaultargs allows arguments the script does not use.
    let out = dtk()
        .args([
            "run",
            "-x",
            "defaultargs",
            "-n",
            "BEGIN { trace($2); exit(0); }",
        ])
        .args(["1", "22", "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("22"));
}

#[test]
fn long_process_names_are_cut_to_the_kernels_15_bytes_with_a_notice() {
    for command in ["opens", "syscalls"] {
        let out = dtk()
            .args(["show", command, "-n", "a-very-long-process-name"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains("comparing the first 15: \"a-very-long-pro\""),
            "{err}"
        );
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(
            script.contains("inline string FILTER_NAME = \"a-very-long-pro\";"),
            "{script}"
        );
        let quiet = dtk()
            .args(["-q", "show", command, "-n", "exactly15chars_"])
            .output()
            .unwrap();
        assert!(quiet.stderr.is_empty());
    }
}

#[test]
fn sorting_by_time_or_errors_measures_them() {
    let time = stdout_of(&["show", "syscalls", "--sort", "time"]);
    assert!(time.contains("inline int TIMED = 1;"), "{time}");
    let errors = stdout_of(&["show", "syscalls", "--sort", "errors"]);
    assert!(errors.contains("inline int ERRORS = 1;"), "{errors}");
    let count = stdout_of(&["show", "syscalls"]);
    assert!(count.contains("inline int TIMED = 0;") && count.contains("inline int ERRORS = 0;"));
}

/// A process that runs `program` (a copy of sleep under that name) for 30 s, killed on drop;
/// the directory that holds the copy lives as long.
struct Sleeper(std::process::Child, #[allow(dead_code)] tempfile::TempDir);

impl Sleeper {
    fn named(name: &str) -> Sleeper {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join(name);
        std::fs::copy("/bin/sleep", &program).unwrap();
        let child = crate::util::spawn_fresh_executable(Command::new(&program).arg("30"));
        // Until exec is done, the maps are the test's own.
        std::thread::sleep(std::time::Duration::from_millis(200));
        Sleeper(child, dir)
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn pyflow_says_what_a_process_is_when_it_is_not_cpython_3() {
    let python2 = Sleeper::named("python2.7");
    let (code, err) = failure_of(&["show", "pyflow", "-p", &python2.pid()]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains(&format!("error: pid {} runs Python 2 (", python2.pid()))
            && err.contains("python2.7); dtk follows CPython 3 only"),
        "{err}"
    );
    let other = Sleeper::named("worker");
    let (_, err) = failure_of(&["show", "pyflow", "-p", &other.pid()]);
    assert!(
        err.contains(&format!(
            "error: pid {} (worker) is not a CPython",
            other.pid()
        )),
        "{err}"
    );
    // A child that has exited and that the test has not reaped yet.
    let mut zombie = Command::new("true").spawn().unwrap();
    let pid = zombie.id().to_string();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (_, err) = failure_of(&["show", "pyflow", "-p", &pid]);
    zombie.wait().unwrap();
    assert_eq!(
        err,
        format!("dtk: error: pid {pid} is a zombie: it has exited, and its parent has not reaped it yet\n")
    );
}

#[test]
fn pyflow_says_a_script_is_a_script() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("run.sh");
    std::fs::write(&script, "#!/bin/sh\nexec python3 app.py\n").unwrap();
    let (code, err) = failure_of(&["show", "pyflow", "-c", script.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(
        err.starts_with(&format!(
            "dtk: error: {} is a script (#!/bin/sh), not a CPython interpreter\n  hint: ",
            script.display()
        )),
        "{err}"
    );
}

#[test]
fn pyflow_resolves_a_pyenv_shim_or_says_why_not() {
    let (_root, shim) = crate::util::fake_pyenv("python3.11", "");
    let (code, err) = failure_of(&[
        "show",
        "pyflow",
        "-c",
        &format!("{} app.py", shim.display()),
    ]);
    assert_eq!(code, Some(2));
    assert!(
        err.starts_with(&format!(
            "dtk: error: {} is a pyenv shim (a shell script) and the interpreter it runs is not \
             known: `pyenv which python3.11` failed: pyenv: python3.11: command not found",
            shim.display()
        )),
        "{err}"
    );
    // Resolved, the shim stands for the interpreter pyenv names: its script is the one for
    // that interpreter (Debian's 3.11 has markers).
    let (_root, shim) = crate::util::fake_pyenv("python3.11", "/usr/bin/python3.11");
    let script = stdout_of(&[
        "show",
        "pyflow",
        "-c",
        &format!("{} app.py", shim.display()),
    ]);
    assert!(
        script.contains("python$target:::function-entry"),
        "{script}"
    );
}

#[test]
fn activate_is_refused_before_cpython_3_14_with_the_reason() {
    let mut python = Command::new("/usr/bin/python3.11")
        .args(["-c", "import time; time.sleep(30)"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let pid = python.id().to_string();
    let (code, err) = failure_of(&["pyflow", "-p", &pid, "--activate"]);
    let _ = python.kill();
    let _ = python.wait();
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        format!(
            "dtk: error: --activate turns on the perf trampoline of CPython 3.14 or later through \
             sys.remote_exec, and pid {pid} runs CPython 3.11; it has function probes, which \
             pyflow follows without --activate\n"
        )
    );
}

/// Needs root to drop privileges (setpriv), and BPF for the access check to pass.
#[test]
fn unreadable_maps_and_tracefs_say_why_as_non_root() {
    if !crate::util::kernel_available("unreadable_maps_and_tracefs_say_why_as_non_root") {
        return;
    }
    let root_python = Sleeper::named("python3.11");
    let out = crate::util::dtk_as_nobody(&["pyflow", "-p", &root_python.pid()], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "cannot read /proc/{}/maps: pid {} belongs to uid 0 and dtk runs as uid 65534",
            root_python.pid(),
            root_python.pid()
        )),
        "{err}"
    );
    let out = crate::util::dtk_as_nobody(&["opens", "-d", "1"], "bpf,perfmon");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tracefs is mounted at ") && err.contains("but this process cannot read it"),
        "{err}"
    );
    assert!(!err.contains("not mounted"), "{err}");
}
