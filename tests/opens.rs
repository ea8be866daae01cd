//! `dtk opens` on the linux back end, against ground truth the tests make themselves: a
//! python3.11 child that opens a known list of files (some missing) through open, openat,
//! openat2 and creat and writes down the fd or errno each call returned; cgroups the test
//! creates for `-z`; and strace watching the same workload.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::kernel_available;

const PYTHON: &str = "/usr/bin/python3.11";
/// How long a tracer may take to attach, on a loaded machine.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(30);

/// `dtk --backend linux opens -o json ARGS`, with a scrubbed environment.
fn dtk_opens(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dtk"));
    cmd.args(["--backend", "linux", "-o", "json", "opens"])
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("TERM");
    cmd
}

/// One reported open: (pid, zone, comm, fd or errno name, path).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Open {
    pid: u32,
    zone: String,
    comm: String,
    result: String,
    path: String,
}

fn open_of(v: &Value) -> Open {
    let result = match (&v["fd"], &v["errno"]) {
        (Value::Number(fd), _) => fd.to_string(),
        (_, Value::String(errno)) => errno.clone(),
        other => panic!("an open with neither fd nor errno: {other:?} in {v}"),
    };
    Open {
        pid: v["pid"].as_u64().unwrap() as u32,
        zone: v["zone"].as_str().unwrap().to_string(),
        comm: v["comm"].as_str().unwrap().to_string(),
        result,
        path: v["path"].as_str().unwrap().to_string(),
    }
}

/// The python3.11 workload: each call of `calls` (syscall, path, flags), made through
/// libc's syscall(2), with what it returned written to `truth` as `name path result`, where
/// result is the fd or the errno's name. fds are closed at once, so numbers repeat.
fn workload(calls: &[(&str, PathBuf, &str)], truth: &Path) -> String {
    let list: Vec<String> = calls
        .iter()
        .map(|(name, path, flags)| format!("({name:?}, {:?}, {flags})", path.display()))
        .collect();
    format!(
        r#"
import ctypes, errno, os, platform
libc = ctypes.CDLL(None, use_errno=True)
class OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]
NR = {{"x86_64": {{"open": 2, "creat": 85, "openat": 257, "openat2": 437}},
      "aarch64": {{"openat": 56, "openat2": 437}}}}[platform.machine()]
AT_FDCWD = -100
out = []
for name, path, flags in [{list}]:
    p = path.encode()
    if name == "open":
        r = libc.syscall(NR[name], p, flags, 0o644)
    elif name == "creat":
        r = libc.syscall(NR[name], p, 0o644)
    elif name == "openat":
        r = libc.syscall(NR[name], AT_FDCWD, p, flags, 0o644)
    else:
        how = OpenHow(flags, 0o644 if flags & os.O_CREAT else 0, 0)
        r = libc.syscall(NR[name], AT_FDCWD, p, ctypes.byref(how), ctypes.sizeof(how))
    if r >= 0:
        os.close(r)
        out.append(f"{{name}} {{path}} {{r}}")
    else:
        out.append(f"{{name}} {{path}} {{errno.errorcode[ctypes.get_errno()]}}")
with open({truth:?}, "w") as f:
    f.write("\n".join(out) + "\n")
"#,
        list = list.join(", "),
        truth = truth.display(),
    )
}

/// A directory with two files, and the calls the workload makes there: every syscall, on
/// files that exist, are created, or are missing.
struct Files {
    dir: tempfile::TempDir,
    calls: Vec<(&'static str, PathBuf, &'static str)>,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        std::fs::write(at("present-a"), "a").unwrap();
        std::fs::write(at("present-b"), "b").unwrap();
        let mut calls = vec![
            ("openat", at("present-a"), "os.O_RDONLY | os.O_CLOEXEC"),
            ("openat", at("missing-a"), "os.O_RDONLY"),
            ("openat2", at("present-b"), "os.O_RDONLY"),
            ("openat2", at("missing-b"), "os.O_RDONLY"),
            ("openat", at("created-a"), "os.O_WRONLY | os.O_CREAT"),
            ("openat", at("no-dir/missing-c"), "os.O_WRONLY | os.O_CREAT"),
        ];
        if cfg!(target_arch = "x86_64") {
            calls.extend([
                ("open", at("present-b"), "os.O_RDWR"),
                ("open", at("missing-d"), "os.O_RDONLY"),
                ("creat", at("created-b"), "0"),
                ("creat", at("no-dir/missing-e"), "0"),
            ]);
        }
        Files { dir, calls }
    }

    fn truth_path(&self) -> PathBuf {
        self.dir.path().join("truth")
    }

    /// The `-c` command that runs the workload.
    fn command(&self) -> String {
        let script = self.dir.path().join("workload.py");
        std::fs::write(&script, workload(&self.calls, &self.truth_path())).unwrap();
        format!("{PYTHON} {}", script.display())
    }

    /// What each call returned, as the workload wrote it: (path, fd or errno name).
    fn truth(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(self.truth_path())
            .unwrap()
            .lines()
            .map(|l| {
                let mut parts = l.split(' ');
                let (_, path, result) = (parts.next(), parts.next(), parts.next());
                (path.unwrap().to_string(), result.unwrap().to_string())
            })
            .collect()
    }

    /// The opens of `out` of the paths the workload's calls name (python's own opens of
    /// this directory, its script and the truth file are not among them).
    fn reported(&self, out: &str) -> Vec<(String, String)> {
        let paths: HashSet<&Path> = self.calls.iter().map(|(_, p, _)| p.as_path()).collect();
        json_lines(out)
            .iter()
            .map(open_of)
            .filter(|o| paths.contains(Path::new(&o.path)))
            .map(|o| (o.path, o.result))
            .collect()
    }
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Runs `dtk opens -c WORKLOAD EXTRA…` over a fresh workload; returns its files and stdout.
fn opens_of_workload(name: &str, extra: &[&str]) -> Option<(Files, String, Vec<Value>)> {
    if !kernel_available(name) {
        return None;
    }
    let files = Files::new();
    let command = files.command();
    let out = dtk_opens(&["-c", &command]).args(extra).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name}: dtk failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let values = json_lines(&stdout);
    Some((files, stdout, values))
}

#[test]
fn opens_reports_every_call_with_its_fd_or_errno() {
    let Some((files, out, values)) =
        opens_of_workload("opens_reports_every_call_with_its_fd_or_errno", &[])
    else {
        return;
    };
    let truth = files.truth();
    assert_eq!(truth.len(), files.calls.len());
    assert!(truth.iter().any(|(_, r)| r == "ENOENT"));
    assert!(truth.iter().any(|(_, r)| r.parse::<i32>().is_ok()));
    assert_eq!(files.reported(&out), truth, "dtk opens:\n{out}");
    // The flags as passed: creat(2) is O_WRONLY|O_CREAT|O_TRUNC, openat2's come from open_how.
    let flags_of = |path: &Path| -> Vec<String> {
        let v = values
            .iter()
            .find(|v| v["path"] == path.to_str().unwrap())
            .unwrap();
        serde_json::from_value(v["flags"].clone()).unwrap()
    };
    let at = |n: &str| files.dir.path().join(n);
    assert_eq!(flags_of(&at("present-a")), ["O_RDONLY", "O_CLOEXEC"]);
    assert_eq!(flags_of(&at("created-a")), ["O_WRONLY", "O_CREAT"]);
    if cfg!(target_arch = "x86_64") {
        assert_eq!(
            flags_of(&at("created-b")),
            ["O_WRONLY", "O_CREAT", "O_TRUNC"]
        );
    }
}

#[test]
fn opens_x_reports_only_failures() {
    let Some((files, out, values)) = opens_of_workload("opens_x_reports_only_failures", &["-x"])
    else {
        return;
    };
    let failed: Vec<_> = files
        .truth()
        .into_iter()
        .filter(|(_, r)| r.parse::<i32>().is_err())
        .collect();
    assert!(!failed.is_empty());
    assert_eq!(files.reported(&out), failed, "dtk opens -x:\n{out}");
    assert!(values.iter().all(|v| v["fd"].is_null()), "{out}");
}

#[test]
fn opens_path_keeps_matching_paths_only() {
    let Some((files, out, values)) = opens_of_workload(
        "opens_path_keeps_matching_paths_only",
        &["--path", "/present-"],
    ) else {
        return;
    };
    let matching: Vec<_> = files
        .truth()
        .into_iter()
        .filter(|(p, _)| p.contains("/present-"))
        .collect();
    assert!(matching.len() >= 2);
    assert_eq!(files.reported(&out), matching, "dtk opens --path:\n{out}");
    assert!(
        values
            .iter()
            .all(|v| v["path"].as_str().unwrap().contains("/present-")),
        "{out}"
    );
}

/// A running `dtk opens`, its JSON lines collected as they come.
struct Tracer {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<Value>,
}

impl Tracer {
    fn start(args: &[&str]) -> Tracer {
        Tracer::spawn(dtk_opens(args))
    }

    /// `start`, for a command whose other settings (stderr) the caller chose.
    fn spawn(mut cmd: Command) -> Tracer {
        let mut child = cmd
            .args(["-d", "120"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Tracer {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Runs `poke` until an open it makes shows up (the tracer is attached); fails after
    /// ATTACH_TIMEOUT.
    fn wait_until_attached(&mut self, mut poke: impl FnMut() -> u32) {
        let start = Instant::now();
        while start.elapsed() < ATTACH_TIMEOUT {
            let pid = poke();
            let deadline = Instant::now() + Duration::from_millis(500);
            while let Ok(line) = self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                let v: Value = serde_json::from_str(&line).unwrap();
                let from_poke = v["pid"] == pid;
                self.seen.push(v);
                if from_poke {
                    return;
                }
            }
        }
        panic!("dtk opens did not report a probe open within {ATTACH_TIMEOUT:?}");
    }

    /// Waits for an open that `test` accepts, and returns it; fails after ATTACH_TIMEOUT.
    fn wait_for(&mut self, test: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let v: Value = serde_json::from_str(&line).unwrap();
            self.seen.push(v.clone());
            if test(&v) {
                return v;
            }
        }
        panic!("no such open within {ATTACH_TIMEOUT:?}: {:#?}", self.seen);
    }

    /// Stops tracing with Ctrl-C and returns every open reported.
    fn stop(mut self) -> Vec<Open> {
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child's.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().unwrap();
        assert!(status.success(), "dtk opens: {status:?}");
        self.seen.extend(
            self.lines
                .iter()
                .map(|l| serde_json::from_str::<Value>(&l).unwrap()),
        );
        self.seen.iter().map(open_of).collect()
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `argv` to completion; returns its pid.
fn run(argv: &[&str]) -> u32 {
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn opens_n_selects_processes_by_exact_name() {
    if !kernel_available("opens_n_selects_processes_by_exact_name") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input");
    std::fs::write(&file, "").unwrap();
    let input = format!("if={}", file.display());
    let dd = || run(&["dd", &input, "of=/dev/null", "status=none"]);
    let mut tracer = Tracer::start(&["-n", "dd"]);
    tracer.wait_until_attached(dd);
    let cat = run(&["cat", file.to_str().unwrap()]);
    let dd_pid = dd();
    // Shown while tracing goes on: a stop shows what was recorded before it only within its
    // time budget, which a busy machine can exceed.
    let path = file.to_str().unwrap().to_owned();
    tracer.wait_for(|v| v["pid"] == dd_pid && v["path"] == path.as_str());
    let opens = tracer.stop();
    assert!(opens.iter().all(|o| o.comm == "dd"), "{opens:#?}");
    assert!(!opens.iter().any(|o| o.pid == cat), "{opens:#?}");
    assert!(
        opens
            .iter()
            .any(|o| o.pid == dd_pid && o.path == file.to_str().unwrap()),
        "dd {dd_pid} opening {}: {opens:#?}",
        file.display()
    );
}

/// A cgroup the test made under the cgroup2 mount, removed (with its child) on drop.
struct TestCgroup {
    dir: PathBuf,
    child: PathBuf,
}

impl TestCgroup {
    fn create(name: &str) -> TestCgroup {
        let root = cgroup2_mount();
        let dir = root.join(format!("{name}-{}", std::process::id()));
        let child = dir.join("inner");
        std::fs::create_dir_all(&child).unwrap();
        TestCgroup { dir, child }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // The processes the test put there have exited and been reaped, so both are empty.
        let _ = std::fs::remove_dir(&self.child);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Where cgroup2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid systems).
fn cgroup2_mount() -> PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            right
                .starts_with("cgroup2 ")
                .then(|| PathBuf::from(left.split(' ').nth(4).unwrap()))
        })
        .expect("a cgroup2 mount")
}

/// Runs `argv` inside `cgroup`: a shell moves itself there, then execs it. Returns its pid.
fn run_in(cgroup: &Path, argv: &str) -> u32 {
    let procs = cgroup.join("cgroup.procs");
    run(&[
        "sh",
        "-c",
        &format!("echo $$ > {} && exec {argv}", procs.display()),
    ])
}

#[test]
fn opens_z_selects_a_cgroup_and_its_descendants() {
    if !kernel_available("opens_z_selects_a_cgroup_and_its_descendants") {
        return;
    }
    let cgroup = TestCgroup::create("dtk-opens-z");
    let name = cgroup
        .dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    for n in ["inside", "below", "outside"] {
        std::fs::write(file(n), n).unwrap();
    }
    let mut tracer = Tracer::start(&["-z", &name]);
    tracer.wait_until_attached(|| run_in(&cgroup.dir, &format!("cat {}", file("missing"))));
    let inside = run_in(&cgroup.dir, &format!("cat {}", file("inside")));
    let below = run_in(&cgroup.child, &format!("cat {}", file("below")));
    let outside = run(&["cat", &file("outside")]);
    // Shown while tracing goes on (see opens_n_selects_processes_by_exact_name): a last open
    // inside, after the one outside, so that the one outside would have been shown by then.
    let last = run_in(&cgroup.dir, &format!("cat {}", file("last")));
    let last_path = file("last");
    tracer.wait_for(|v| v["pid"] == last && v["path"] == last_path.as_str());
    let opens = tracer.stop();
    let has = |pid: u32, path: &str| opens.iter().any(|o| o.pid == pid && o.path == path);
    assert!(has(inside, &file("inside")), "{opens:#?}");
    assert!(has(below, &file("below")), "{opens:#?}");
    assert!(!opens.iter().any(|o| o.pid == outside), "{opens:#?}");
    // Only the processes the test put in the cgroup are in it.
    let ours: HashSet<u32> = opens.iter().map(|o| o.pid).collect();
    assert!(ours.contains(&inside) && ours.contains(&below));
    assert!(
        opens.iter().all(|o| o.comm == "cat" || o.comm == "sh"),
        "{opens:#?}"
    );
}

#[test]
fn opens_z_accepts_a_cgroup_path_and_names_the_zone() {
    if !kernel_available("opens_z_accepts_a_cgroup_path_and_names_the_zone") {
        return;
    }
    let cgroup = TestCgroup::create("dtk-opens-zpath");
    let root = cgroup2_mount();
    let relative = format!("/{}", cgroup.dir.strip_prefix(&root).unwrap().display());
    let mut tracer = Tracer::start(&["-z", &relative]);
    tracer.wait_until_attached(|| run_in(&cgroup.child, "cat /nonexistent/dtk-opens-zpath"));
    let child = run_in(&cgroup.child, "cat /etc/hostname");
    // Shown while tracing goes on (see opens_n_selects_processes_by_exact_name).
    tracer.wait_for(|v| v["pid"] == child && v["path"] == "/etc/hostname");
    let opens = tracer.stop();
    let of_child: Vec<&Open> = opens.iter().filter(|o| o.pid == child).collect();
    assert!(
        of_child.iter().any(|o| o.path == "/etc/hostname"),
        "{opens:#?}"
    );
    // zonename is the name of the process's own cgroup, the one below the zone.
    assert!(of_child.iter().all(|o| o.zone == "inner"), "{of_child:#?}");
    drop(cgroup);
    let missing = dtk_opens(&["-z", "dtk-no-such-cgroup", "-d", "1"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("zone \"dtk-no-such-cgroup\": no cgroup"),
        "{stderr}"
    );
}

/// The root cgroup holds every process, whether it is named `/` or by its path under the
/// mount: both select a process in a test cgroup and one outside it.
#[test]
fn opens_z_root_cgroup_selects_everything() {
    if !kernel_available("opens_z_root_cgroup_selects_everything") {
        return;
    }
    let cgroup = TestCgroup::create("dtk-opens-zroot");
    let mount = cgroup2_mount();
    for zone in ["/", mount.to_str().unwrap()] {
        let mut tracer = Tracer::start(&["-z", zone]);
        tracer.wait_until_attached(|| run(&["cat", "/nonexistent/dtk-opens-zroot"]));
        let outside = run(&["cat", "/etc/hostname"]);
        let inside = run_in(&cgroup.child, "cat /etc/hostname");
        // Each open must be shown while tracing goes on: a stop shows what was recorded before
        // it only within its time budget, and a busy machine (every open is traced here) can
        // leave some of that unshown.
        for pid in [outside, inside] {
            tracer.wait_for(|v| v["pid"] == pid && v["path"] == "/etc/hostname");
        }
        tracer.stop();
    }
}

/// strace following forks, logging the open calls with whole paths to `log`.
fn strace_argv(log: &Path) -> Vec<&str> {
    vec![
        "strace",
        "-f",
        "-qq",
        "-s",
        "4096",
        "-e",
        "trace=open,openat,openat2,creat",
        "-o",
        log.to_str().unwrap(),
    ]
}

/// strace's `PID name(args) = result` lines for the open calls, as (pid, path, fd or errno).
fn strace_opens(log: &str) -> Vec<(u32, String, String)> {
    let line = regex::Regex::new(
        r#"^(\d+)\s+(?:open|openat|openat2|creat)\([^"]*"((?:[^"\\]|\\.)*)".*\) = (-?\d+)(?: (E[A-Z0-9]+))?"#,
    )
    .unwrap();
    log.lines()
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

#[test]
fn opens_agrees_with_strace() {
    if !kernel_available("opens_agrees_with_strace") {
        return;
    }
    let files = Files::new();
    let workload = files.command();
    let log = files.dir.path().join("strace.log");
    let mut tracer = Tracer::start(&["-n", "python3.11"]);
    tracer.wait_until_attached(|| {
        run(&[
            PYTHON,
            "-c",
            "import os\ntry: os.open('/nonexistent/dtk-opens-strace', 0)\nexcept OSError: pass",
        ])
    });
    let mut argv = strace_argv(&log);
    argv.extend(workload.split(' '));
    run(&argv);
    let opens = tracer.stop();
    let straced = strace_opens(&std::fs::read_to_string(&log).unwrap());
    let pids: HashSet<u32> = straced.iter().map(|(pid, _, _)| *pid).collect();
    assert_eq!(pids.len(), 1, "one python process: {straced:#?}");
    // Everything python opened, the loader's and the interpreter's own opens included.
    assert!(straced.len() > files.calls.len(), "{straced:#?}");
    let reported: Vec<(u32, String, String)> = opens
        .into_iter()
        .filter(|o| pids.contains(&o.pid))
        .map(|o| (o.pid, o.path, o.result))
        .collect();
    assert_eq!(reported, straced);
}

/// A path in a page the process had not touched when the call started (cat's libc opens
/// /usr/lib/locale/locale-archive through such a string) is read again at the return, as
/// DTrace reads it: every open `cat` makes is reported, with no "invalid address". Ground
/// truth: strace on a separate run of the same command (strace itself faults the strings
/// in, so it cannot share the run).
#[test]
fn paths_unreadable_at_entry_are_read_at_return() {
    if !kernel_available("paths_unreadable_at_entry_are_read_at_return") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("strace.log");
    let mut argv = strace_argv(&log);
    argv.extend(["cat", "/etc/hostname"]);
    run(&argv);
    let want: Vec<(String, String)> = strace_opens(&std::fs::read_to_string(&log).unwrap())
        .into_iter()
        .map(|(_, path, result)| (path, result))
        .collect();
    assert!(
        want.iter().any(|(path, _)| path == "/etc/hostname"),
        "{want:?}"
    );
    let out = dtk_opens(&["-c", "cat /etc/hostname"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("invalid address"), "{stderr}");
    let have: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("path").is_some())
        .map(|v| {
            let o = open_of(&v);
            (o.path, o.result)
        })
        .collect();
    assert_eq!(have, want);
}

/// `dtk opens ARGS` in text, with a scrubbed environment.
fn dtk_opens_text(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dtk"));
    cmd.args(["--backend", "linux", "opens"])
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("TERM");
    cmd
}

/// Every optional column has a header, and -T and -e together show both times: the header
/// names each column, and the line of a known open has a cell under each.
#[test]
fn opens_columns_each_have_a_header() {
    if !kernel_available("opens_columns_each_have_a_header") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("column-probe");
    std::fs::write(&file, "").unwrap();
    let command = format!("cat {}", file.display());
    let out = dtk_opens_text(&["-T", "-e", "--flags", "-Z", "-c", &command])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "TIME",
            "ELAPSED(s)",
            "ZONE",
            "PID",
            "COMM",
            "FD",
            "FLAGS",
            "PATH"
        ]
    );
    let line = lines
        .find(|l| l.ends_with(file.to_str().unwrap()))
        .unwrap_or_else(|| panic!("no open of {}:\n{stdout}", file.display()));
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells.len(), header.len(), "{line}");
    assert!(
        regex::Regex::new(r"^\d\d:\d\d:\d\d\.\d{6}$")
            .unwrap()
            .is_match(cells[0]),
        "{line}"
    );
    assert!(cells[1].parse::<f64>().is_ok(), "{line}");
    assert_eq!(
        &cells[4..],
        ["cat", "3", "O_RDONLY", file.to_str().unwrap()]
    );
}

/// -e counts from the start of tracing, not from the first open shown: a command that
/// sleeps a second before the one open that --path keeps shows it a second or more after the
/// start, and no later than the run lasted.
#[test]
fn opens_elapsed_counts_from_the_start_of_tracing() {
    if !kernel_available("opens_elapsed_counts_from_the_start_of_tracing") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("after-a-second");
    std::fs::write(&file, "").unwrap();
    let command = format!("sh -c 'sleep 1; exec cat {}'", file.display());
    let started = Instant::now();
    let out = dtk_opens_text(&[
        "-e",
        "--no-header",
        "--path",
        "after-a-second",
        "-c",
        &command,
    ])
    .output()
    .unwrap();
    let run = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    let [line] = lines.as_slice() else {
        panic!("one open of the file:\n{stdout}");
    };
    let elapsed: f64 = line.split_whitespace().next().unwrap().parse().unwrap();
    assert!((1.0..run).contains(&elapsed), "{elapsed} s, run {run} s");
}

/// --full resolves a relative path against the working directory read at the probe, so a
/// `cat` that has exited by the time its line is shown still has its path resolved.
#[test]
fn opens_full_resolves_relative_paths_of_processes_already_gone() {
    if !kernel_available("opens_full_resolves_relative_paths_of_processes_already_gone") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("relative-probe"), "").unwrap();
    let command = format!(
        "sh -c 'cd {} && exec cat ./relative-probe'",
        dir.path().display()
    );
    let out = dtk_opens(&["--full", "--path", "relative-probe", "-c", &command])
        .output()
        .unwrap();
    let lines = json_lines(&String::from_utf8_lossy(&out.stdout));
    let [open] = lines.as_slice() else {
        panic!("one open: {lines:?}");
    };
    let absolute = dir.path().join("relative-probe");
    assert_eq!(open["resolved"], true, "{open}");
    assert_eq!(open["path"], absolute.to_str().unwrap(), "{open}");
    let text = dtk_opens_text(&["--full", "--path", "relative-probe", "-c", &command])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    let last = text.lines().last().unwrap();
    assert!(last.ends_with(absolute.to_str().unwrap()), "{text}");
}

/// When the ring buffer overflows, dtk says how many opens were lost, in opens: with dtk
/// stopped (SIGSTOP) while a shell opens /dev/null 20,000 times, far more records arrive
/// than the buffer holds. Ground truth: strace's count of the shell's opens, which must equal
/// the opens shown plus the opens said to be lost.
#[test]
fn opens_says_how_many_opens_were_lost() {
    if !kernel_available("opens_says_how_many_opens_were_lost") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A name of its own (comm is the name it is run by), so that -n selects only this test's
    // shells.
    let name = format!("dtklost{}", std::process::id() % 100_000);
    let shell = dir.path().join(&name);
    std::os::unix::fs::symlink("/bin/sh", &shell).unwrap();
    let shell = shell.to_str().unwrap();
    let stderr_path = dir.path().join("stderr");
    let mut cmd = dtk_opens(&["-n", &name]);
    cmd.stderr(std::fs::File::create(&stderr_path).unwrap());
    let mut tracer = Tracer::spawn(cmd);
    tracer.wait_until_attached(|| run(&[shell, "-c", ": </dev/null"]));
    let dtk = tracer.child.id() as i32;
    // SAFETY: kill has no memory-safety preconditions; the pid is our own child's.
    unsafe { libc::kill(dtk, libc::SIGSTOP) };
    let log = dir.path().join("strace.log");
    let mut argv = strace_argv(&log);
    let script = "i=0; while [ $i -lt 20000 ]; do : </dev/null; i=$((i+1)); done";
    argv.extend([shell, "-c", script]);
    let workload = run(&argv);
    // SAFETY: as above.
    unsafe { libc::kill(dtk, libc::SIGCONT) };
    let opens = tracer.stop();
    let straced = strace_opens(&std::fs::read_to_string(&log).unwrap());
    let pids: HashSet<u32> = straced.iter().map(|(pid, _, _)| *pid).collect();
    assert_eq!(pids.len(), 1, "one shell");
    let shown = opens.iter().filter(|o| pids.contains(&o.pid)).count();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    let count = |what: &str| -> usize {
        regex::Regex::new(&format!(r"(?m)^dtk: (\d+) {}$", regex::escape(what)))
            .unwrap()
            .captures_iter(&stderr)
            .map(|c| c[1].parse::<usize>().unwrap())
            .sum()
    };
    let lost = count("opens lost (ring buffer full)");
    // A stop shows what was recorded before it for a bounded time, and counts the rest.
    let unshown = count("opens recorded before the stop not shown (dtk was behind)");
    assert!(lost > 0, "the buffer overflowed: {stderr}");
    assert!(shown > 0, "what the buffer held is shown");
    assert_eq!(
        shown + lost + unshown,
        straced.len(),
        "strace ran pid {workload}; dtk showed {shown}, lost {lost} and left {unshown} \
         unshown\n{stderr}"
    );
}

/// --full resolves a path relative to openat's directory fd against that directory, not the
/// working directory. The process waits (on its stdin) until dtk has reported the open, so
/// that it is there to ask.
#[test]
fn opens_full_resolves_paths_relative_to_a_directory_fd() {
    if !kernel_available("opens_full_resolves_paths_relative_to_a_directory_fd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dtk-dirfd-inside"), "").unwrap();
    let mut tracer = Tracer::start(&["--full", "--path", "dtk-dirfd", "-n", "python3.11"]);
    tracer.wait_until_attached(|| {
        run(&[
            PYTHON,
            "-c",
            "import os\ntry: os.open('/nonexistent/dtk-dirfd-poke', 0)\nexcept OSError: pass",
        ])
    });
    let script = format!(
        "import os, sys\nd = os.open({:?}, os.O_RDONLY | os.O_DIRECTORY)\nos.close(os.open('dtk-dirfd-inside', os.O_RDONLY, dir_fd=d))\nsys.stdin.read()",
        dir.path().display().to_string()
    );
    let mut child = Command::new(PYTHON)
        .args(["-c", &script])
        .current_dir("/")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let open = tracer.wait_for(|v| v["pid"] == pid && v["errno"].is_null());
    drop(child.stdin.take());
    child.wait().unwrap();
    tracer.stop();
    let inside = dir.path().join("dtk-dirfd-inside");
    assert_eq!(open["path"], inside.to_str().unwrap(), "{open}");
    assert_eq!(open["resolved"], true, "{open}");
}
