//! Exit statuses and the traced process's lifetime, on the linux back end: `exit(N)` in D is
//! dtk's status; with -c, the toolkit commands exit with the command's own status (128 + the
//! signal that killed it, reported on stderr); the end of a -p target is reported with its
//! status; and a -c command does not outlive dtk, even when dtk is killed with SIGKILL.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use crate::util::kernel_available;

const PYTHON: &str = "/usr/bin/python3.11";
/// How long a tracer may take to attach, on a loaded machine.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(30);

/// `dtk --backend linux ARGS`, with a scrubbed environment.
fn dtk(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dtk"));
    cmd.args(["--backend", "linux"])
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("TERM");
    cmd
}

fn run(args: &[&str]) -> Output {
    dtk(args).stdin(Stdio::null()).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Single quotes for sh.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[test]
fn exit_in_d_is_dtk_s_exit_status() {
    if !kernel_available("exit_in_d_is_dtk_s_exit_status") {
        return;
    }
    for status in [0, 3, 42, 255] {
        let program = format!("BEGIN {{ exit({status}); }}");
        let out = run(&["run", "-n", &program]);
        assert_eq!(
            out.status.code(),
            Some(status),
            "{program}: {}",
            stderr(&out)
        );
    }
    // From a probe the kernel fires, after END has run; the low 8 bits, as exit(2) keeps.
    let out = run(&[
        "run",
        "-q",
        "-n",
        "syscall::getppid:entry /pid == $target/ { exit(256 + 7); } END { printf(\"end\\n\"); }",
        "-c",
        &format!("{PYTHON} -c 'import os, time\nwhile True: os.getppid(); time.sleep(0.01)'"),
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "end");
}

#[test]
fn run_with_a_command_exits_0_unless_the_program_calls_exit() {
    if !kernel_available("run_with_a_command_exits_0_unless_the_program_calls_exit") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let command = format!(
        "sh -c {}",
        quoted(&format!("echo $$ > {}; exit 4", pid_file.display()))
    );
    let out = run(&[
        "run",
        "-n",
        "syscall::exit_group:entry /pid == $target/ {}",
        "-c",
        &command,
    ]);
    // As dtrace(1): the command's end is reported, and does not decide the status.
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(
        stderr(&out).contains(&format!("dtk: pid {} exited (status 4)", pid.trim())),
        "{}",
        stderr(&out)
    );
}

/// For each toolkit command: the status a -c command exits with is dtk's.
#[test]
fn toolkit_commands_exit_with_their_command_s_status() {
    if !kernel_available("toolkit_commands_exit_with_their_command_s_status") {
        return;
    }
    let python = format!("{PYTHON} -c 'import sys\ndef f(): sys.exit(3)\nf()'");
    let cases = [
        ("opens", "sh -c 'exit 3'".to_string(), 3),
        ("syscalls", "sh -c 'exit 3'".to_string(), 3),
        ("opens", "sh -c 'exit 0'".to_string(), 0),
        ("pyflow", python, 3),
    ];
    for (command, target, status) in cases {
        let out = run(&[command, "-c", &target]);
        assert_eq!(
            out.status.code(),
            Some(status),
            "{command} -c {target}: {}",
            stderr(&out)
        );
        // An ordinary exit is not reported, as with time(1).
        assert!(!stderr(&out).contains("exited"), "{}", stderr(&out));
    }
}

#[test]
fn command_killed_by_a_signal_is_reported_and_gives_128_plus_the_signal() {
    if !kernel_available("command_killed_by_a_signal_is_reported_and_gives_128_plus_the_signal") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    for (command, signal, name) in [
        ("opens", libc::SIGKILL, "SIGKILL"),
        ("syscalls", libc::SIGTERM, "SIGTERM"),
        ("pyflow", libc::SIGTERM, "SIGTERM"),
    ] {
        let target = if command == "pyflow" {
            let code = format!(
                "import os\nopen({:?}, \"w\").write(str(os.getpid()))\nos.kill(os.getpid(), {signal})",
                pid_file.display().to_string()
            );
            format!("{PYTHON} -c {}", quoted(&code))
        } else {
            let script = format!("echo $$ > {}; kill -{signal} $$", pid_file.display());
            format!("sh -c {}", quoted(&script))
        };
        let out = run(&[command, "-c", &target]);
        assert_eq!(
            out.status.code(),
            Some(128 + signal),
            "{command}: {}",
            stderr(&out)
        );
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let line = format!("dtk: pid {} killed by signal {signal} ({name})", pid.trim());
        assert!(stderr(&out).contains(&line), "{command}: {}", stderr(&out));
    }
}

/// Lines of `child`'s stdout, as they come.
fn lines_of(child: &mut Child) -> Receiver<String> {
    let (tx, rx) = channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line of output that shows dtk has attached.
fn wait_for_line(lines: &Receiver<String>, test: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + ATTACH_TIMEOUT;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if test(&line) => return,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no output from dtk within {ATTACH_TIMEOUT:?}");
}

/// A process the test starts and reaps at once when it exits, in a thread, as a shell
/// would: dtk, which is not its parent, must learn its status without waitpid. Killed if
/// the test fails before it ends.
struct Reaped {
    pid: u32,
    status: Receiver<std::process::ExitStatus>,
    ended: bool,
}

fn reaped(mut command: Command) -> Reaped {
    let mut child = command.stdin(Stdio::null()).spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = channel();
    std::thread::spawn(move || tx.send(child.wait().unwrap()));
    Reaped {
        pid,
        status: rx,
        ended: false,
    }
}

impl Reaped {
    fn wait(&mut self) -> std::process::ExitStatus {
        let status = self.status.recv_timeout(ATTACH_TIMEOUT).unwrap();
        self.ended = true;
        status
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if !self.ended && self.status.try_recv().is_err() {
            // SAFETY: kill sends a signal to the test's own child, not yet reaped.
            unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
        }
    }
}

/// dtk, killed if the test fails while it runs.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `dtk ARGS -p PID` on a target that ends when `end` is called (once a line that
/// passes `attached` shows that dtk traces it); returns dtk's output and the status the
/// target's parent saw.
fn trace_to_its_end(
    args: &[&str],
    mut target: Reaped,
    attached: impl Fn(&str) -> bool,
    end: impl FnOnce(),
) -> (Output, std::process::ExitStatus) {
    let pid = target.pid.to_string();
    let mut dtk = Running(
        dtk(args)
            .args(["-p", &pid])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let lines = lines_of(&mut dtk.0);
    wait_for_line(&lines, attached);
    end();
    let seen = target.wait();
    let deadline = Instant::now() + ATTACH_TIMEOUT;
    let status = loop {
        if let Some(status) = dtk.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "dtk did not end with its target");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = Vec::new();
    dtk.0.stderr.take().unwrap().read_to_end(&mut err).unwrap();
    let output = Output {
        status,
        stdout: Vec::new(),
        stderr: err,
    };
    (output, seen)
}

#[test]
fn end_of_a_pid_target_is_reported_with_its_status() {
    if !kernel_available("end_of_a_pid_target_is_reported_with_its_status") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("end");
    let mut cases: Vec<(&str, Command)> = Vec::new();
    // opens: the shell opens /dev/null until told to exit 5.
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(format!(
        "while [ ! -e {0} ]; do : < /dev/null; sleep 0.05; done; exit 5",
        flag.display()
    ));
    cases.push(("opens", sh));
    // pyflow: a loop calling tick() until told to exit 6 (from a file: pyflow hides code
    // that has none, such as -c's).
    let program = dir.path().join("loop.py");
    std::fs::write(
        &program,
        format!(
            "import os, sys, time\ndef tick(): time.sleep(0.05)\nwhile not os.path.exists({:?}): tick()\nsys.exit(6)\n",
            flag.display().to_string()
        ),
    )
    .unwrap();
    let mut python = Command::new(PYTHON);
    python.arg(&program);
    cases.push(("pyflow", python));
    for (command, target) in cases {
        let _ = std::fs::remove_file(&flag);
        let target = reaped(target);
        let pid = target.pid;
        let (out, seen) = trace_to_its_end(
            &[command],
            target,
            |line| !line.contains("PATH") && !line.contains("FUNCTION"),
            || std::fs::write(&flag, "").unwrap(),
        );
        let code = seen.code().unwrap();
        assert_eq!(out.status.code(), Some(0), "{command}: {}", stderr(&out));
        let line = format!("dtk: pid {pid} exited (status {code})");
        assert!(stderr(&out).contains(&line), "{command}: {}", stderr(&out));
    }
}

#[test]
fn pid_target_killed_by_a_signal_is_reported() {
    if !kernel_available("pid_target_killed_by_a_signal_is_reported") {
        return;
    }
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg("while :; do : < /dev/null; sleep 0.05; done");
    let target = reaped(sh);
    let pid = target.pid;
    // syscalls -i 1 prints a table each second once it traces.
    let (out, seen) = trace_to_its_end(
        &["-o", "json", "syscalls", "-i", "1"],
        target,
        |line| line.starts_with('{'),
        // SAFETY: kill sends a signal to the test's own child.
        || unsafe {
            libc::kill(pid as i32, libc::SIGTERM);
        },
    );
    use std::os::unix::process::ExitStatusExt;
    let signal = seen.signal().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = format!("dtk: pid {pid} killed by signal {signal} (SIGTERM)");
    assert!(stderr(&out).contains(&line), "{}", stderr(&out));
}

/// Whether pid is gone, or a zombie: no longer running.
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn command_dies_when_dtk_is_killed() {
    if !kernel_available("command_dies_when_dtk_is_killed") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    for command in ["opens", "run"] {
        let _ = std::fs::remove_file(&pid_file);
        let script = format!(
            "echo $$ > {}.tmp; mv {0}.tmp {0}; exec sleep 600",
            pid_file.display()
        );
        let target = format!("sh -c {}", quoted(&script));
        let mut args = vec![command, "-c", &target];
        if command == "run" {
            args.extend(["-n", "syscall::nanosleep:entry /pid == $target/ {}"]);
        }
        let mut child = dtk(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        while !Path::new(&pid_file).exists() {
            assert!(
                Instant::now() < deadline,
                "{command}: the command never ran"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid: u32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(!is_dead(pid));
        child.kill().unwrap();
        child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !is_dead(pid) {
            assert!(
                Instant::now() < deadline,
                "{command}: pid {pid} outlived dtk"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
