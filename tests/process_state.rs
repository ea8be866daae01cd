//! Process state read at the probe (`ppid`, `curpsinfo`, `progenyof()`, `curthread`): the
//! kernel reads it from the current task through BTF offsets, so a process that has already
//! exited when its record is processed still shows its parent. Every expected value comes
//! from the workload itself: pids the parent shell wrote down, ids a Python read with os.*.

use std::collections::{HashMap, HashSet};
use std::process::Output;

use assert_cmd::cargo::cargo_bin;

use crate::util::kernel_available;

const PYTHON: &str = "/usr/bin/python3.11";

fn dtk_run(prog: &str, command: &str) -> Output {
    std::process::Command::new(cargo_bin("dtk"))
        .args(["--backend", "linux", "run", "-n", prog, "-c", command])
        .env_remove("NO_COLOR")
        .env_remove("TERM")
        .output()
        .unwrap()
}

fn succeeded(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "dtk failed ({:?})\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `pid ppid execname` lines.
fn exec_lines(out: &str) -> Vec<(u32, u32, String)> {
    out.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let pid = f.next()?.parse().ok()?;
            let ppid = f.next()?.parse().ok()?;
            Some((pid, ppid, f.next()?.to_string()))
        })
        .collect()
}

const EXECS: &str =
    "proc:::exec-success /progenyof($target)/ { printf(\"%d %d %s\\n\", pid, ppid, execname); }";

#[test]
fn every_one_of_1000_short_lived_processes_shows_its_parent() {
    if !kernel_available("every_one_of_1000_short_lived_processes_shows_its_parent") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    // The parent writes its own pid, then each child's as it starts it.
    let script = format!(
        "echo $$ > {p}; i=0; while [ $i -lt 1000 ]; do sh -c /bin/true & echo $! >> {p}; wait $!; i=$((i+1)); done",
        p = pids.display()
    );
    let out = dtk_run(EXECS, &format!("sh -c '{script}'"));
    let stdout = succeeded(&out);
    let written = std::fs::read_to_string(&pids).unwrap();
    let mut known = written.lines().map(|l| l.parse::<u32>().unwrap());
    let parent = known.next().unwrap();
    let children: HashSet<u32> = known.collect();
    assert_eq!(children.len(), 1000);
    let lines = exec_lines(&stdout);
    let shells: HashMap<u32, u32> = lines
        .iter()
        .filter(|(_, _, name)| name == "sh")
        .map(|&(pid, ppid, _)| (pid, ppid))
        .collect();
    for child in &children {
        assert_eq!(
            shells.get(child),
            Some(&parent),
            "child {child} of {parent}: its exec of sh shows another parent\n{stdout}"
        );
    }
    // Each child's /bin/true: run by the child itself (sh execs a lone command), or by a child
    // of it; either way its parent is one the test knows.
    let trues: Vec<&(u32, u32, String)> = lines.iter().filter(|(_, _, n)| n == "true").collect();
    assert_eq!(trues.len(), 1000, "{stdout}");
    for (pid, ppid, _) in trues {
        assert!(
            *ppid == parent || children.contains(ppid),
            "true ({pid}) shows parent {ppid}; the parent is {parent}"
        );
    }
}

#[test]
fn the_issue_example_shows_the_shell_as_parent() {
    if !kernel_available("the_issue_example_shows_the_shell_as_parent") {
        return;
    }
    let prog = "proc:::exec-success { printf(\"%d %d %s\\n\", pid, ppid, execname); }";
    let out = dtk_run(prog, "sh -c 'echo shell $$; /bin/true; /bin/echo hi'");
    let stdout = succeeded(&out);
    let shell: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("shell "))
        .unwrap()
        .parse()
        .unwrap();
    // The program traces every exec on the system: the shell's are those it is parent of.
    let lines = exec_lines(&stdout);
    for name in ["true", "echo"] {
        assert!(
            lines.iter().any(|(_, ppid, n)| n == name && *ppid == shell),
            "no exec of {name} by the shell {shell}\n{stdout}"
        );
    }
}

#[test]
fn curpsinfo_agrees_with_what_the_process_reads_about_itself() {
    if !kernel_available("curpsinfo_agrees_with_what_the_process_reads_about_itself") {
        return;
    }
    let code = "import os, sys\n\
        print('self', os.getpid(), os.getppid(), os.getpgrp(), os.getsid(0), os.geteuid(), os.getegid(), len(sys.argv) + 2, flush=True)\n\
        os.getppid()";
    let prog = "syscall::getppid:entry /pid == $target/ { printf(\"probe %d %d %d %d %d %d %d %d %d\\n\", \
        pid, ppid, curpsinfo->pr_pgid, curpsinfo->pr_sid, curpsinfo->pr_euid, curpsinfo->pr_egid, \
        curpsinfo->pr_argc, progenyof(1), curthread != 0); \
        printf(\"thread %d %d %d\\n\", curthread->tgid, curthread->real_parent->tgid, \
        curthread->cred->euid.val); }";
    let command = format!("{PYTHON} -c {}", shlex::try_quote(code).unwrap());
    let stdout = succeeded(&dtk_run(prog, &command));
    let fields = |prefix: &str| -> Vec<String> {
        let line = stdout.lines().find(|l| l.starts_with(prefix));
        let line = line.unwrap_or_else(|| panic!("no {prefix} line\n{stdout}"));
        line.split_whitespace()
            .skip(1)
            .map(str::to_string)
            .collect()
    };
    let own = fields("self ");
    // Python's getppid at entry and at its own call: the first is the probe's.
    let probe = fields("probe ");
    assert_eq!(probe[..7], own[..], "{stdout}");
    assert_eq!(probe[7..], ["1", "1"], "{stdout}");
    // curthread's members, resolved through BTF and read at the probe.
    assert_eq!(
        fields("thread "),
        [own[0].clone(), own[1].clone(), own[4].clone()],
        "{stdout}"
    );
}

/// CPython 3.13+ keeps the running thread's state only in TLS: `curthread->thread.fsbase`
/// plus the offset `thread_state_tls` finds reads it at the probe, and it is the pointer
/// Python's own PyThreadState_GetUnchecked returns.
fn thread_state_through_fsbase(version: &str, test: &str) {
    use dtk::internals::python::{thread_state_tls, ThreadStateTls};
    if !kernel_available(test) {
        return;
    }
    let Some(python) = crate::pyflow::interpreter::Interpreter::debian(version, test) else {
        return;
    };
    let tls = thread_state_tls(std::path::Path::new(&python.argv[0])).unwrap();
    let ThreadStateTls::Fixed(offset) = tls else {
        panic!("{test}: Debian's executable uses local-exec TLS, found {tls:?}");
    };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("tstate.py");
    std::fs::write(
        &script,
        "import ctypes, os\n\
         get = ctypes.pythonapi.PyThreadState_GetUnchecked\n\
         get.restype = ctypes.c_void_p\n\
         print('python', hex(get())[2:], flush=True)\n\
         os.getppid()\n",
    )
    .unwrap();
    let sign = if offset < 0 { '-' } else { '+' };
    let prog = format!(
        "syscall::getppid:entry /pid == $target/ {{ printf(\"probe %x\\n\", \
         *(uint64_t *)copyin(curthread->thread.fsbase {sign} {}, 8)); }}",
        offset.unsigned_abs()
    );
    let out = std::process::Command::new(cargo_bin("dtk"))
        .args(["--backend", "linux", "run", "-n", &prog, "-c"])
        .arg(python.command_line(&script.to_string_lossy()))
        .envs(python.env.iter().map(|(k, v)| (k, v)))
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let stdout = succeeded(&out);
    let value = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{test}: no {prefix}line\n{stdout}"))
            .to_string()
    };
    assert_eq!(value("probe "), value("python "), "{stdout}");
}

#[test]
fn python_3_13_thread_state_read_through_fsbase() {
    thread_state_through_fsbase("3.13", "python_3_13_thread_state_read_through_fsbase");
}

#[test]
fn python_3_15_thread_state_read_through_fsbase() {
    thread_state_through_fsbase("3.15", "python_3_15_thread_state_read_through_fsbase");
}

/// `cwd` is read at the probe by walking up the directory tree, across mount points (tracefs
/// under /sys, /proc): each line is the directory Python had just changed to.
#[test]
fn cwd_is_the_working_directory_at_the_probe() {
    if !kernel_available("cwd_is_the_working_directory_at_the_probe") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("a b/c");
    std::fs::create_dir_all(&deep).unwrap();
    let dirs = [
        deep.to_str().unwrap(),
        "/",
        "/sys/kernel/tracing",
        "/proc/self/fdinfo",
    ];
    let code = format!(
        "import os\nfor d in {dirs:?}:\n    os.chdir(d)\n    print('python', os.getcwd(), flush=True)\n    os.getppid()\n"
    );
    let prog = "syscall::getppid:entry /pid == $target/ { printf(\"probe %s\\n\", cwd); }";
    let command = format!("{PYTHON} -c {}", shlex::try_quote(&code).unwrap());
    let stdout = succeeded(&dtk_run(prog, &command));
    let of = |prefix: &str| -> Vec<&str> {
        stdout
            .lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .collect()
    };
    assert_eq!(of("probe "), of("python "), "{stdout}");
    assert_eq!(of("probe ").len(), dirs.len(), "{stdout}");
}
