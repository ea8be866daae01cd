//! Kernel tests of the Linux engine's plan and code generator: D programs resolved to probes,
//! compiled to BPF, attached, and their ring-buffer records decoded into firings, checked
//! against what the traced children really did (`cat` on files the test made, python3.11
//! running a script the test wrote, getppid called a known number of times).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use dtk::internals::bpf::cpus;
use dtk::internals::codegen::{self, CodegenError};
use dtk::internals::d::{compile, MacroArgs};
use dtk::internals::decode;
use dtk::internals::load::{self, Attached, LoadError};
use dtk::internals::plan::{self, Plan, PlanError, Site};
use dtk::internals::Options;
use dtk::internals::{Firing, ProbeKind};

use crate::util::kernel_available;

const PYTHON: &str = "/usr/bin/python3.11";

fn options() -> Options {
    Options {
        bufsize: 1 << 22,
        ..Options::default()
    }
}

fn plan_of(src: &str, options: &Options) -> Result<Plan, PlanError> {
    let program = compile("test.d", src, &MacroArgs::default())
        .unwrap_or_else(|d| panic!("{src}: {d}"))
        .program;
    plan::resolve(&program, None, options, None)
}

/// Builds and loads `plan`'s programs.
fn build_and_attach(
    plan: &Plan,
    options: &Options,
) -> Result<Attached, Box<dyn std::error::Error>> {
    let programs = codegen::build(plan, options).map_err(Box::<CodegenError>::new)?;
    Ok(load::attach(programs).map_err(Box::<LoadError>::new)?)
}

fn attach(plan: &Plan) -> Attached {
    build_and_attach(plan, &options()).unwrap_or_else(|e| {
        let mut chain = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            chain += &format!(": {s}");
            source = s.source();
        }
        panic!("attach failed: {chain}")
    })
}

/// Detaches every program, then returns every firing left in the ring buffer, in order.
fn drain(attached: &mut Attached, plan: &Plan) -> Vec<Firing> {
    attached.detach();
    assert!(attached.attachments().is_empty());
    let mut firings = Vec::new();
    while attached
        .ring_buffer()
        .poll(Some(Duration::from_millis(200)), |r| {
            firings.push(decode(r, plan).unwrap())
        })
        .unwrap()
        > 0
    {}
    firings
}

fn name_of(plan: &Plan, firing: &Firing) -> String {
    plan.probes[firing.probe as usize].info.desc.to_string()
}

/// What the dynamic loader opens before `main`: its cache, then each library `ldd` lists.
fn loader_opens(binary: &str) -> Vec<String> {
    let out = Command::new("ldd")
        .arg(binary)
        .env_clear()
        .output()
        .unwrap();
    let mut paths = vec!["/etc/ld.so.cache".to_string()];
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((_, rest)) = line.split_once("=> ") {
            paths.push(rest.split(" (").next().unwrap().to_string());
        }
    }
    paths
}

#[test]
fn opensnoop_captures_paths_at_entry_and_errno_at_return() {
    if !kernel_available("opensnoop_captures_paths_at_entry_and_errno_at_return") {
        return;
    }
    let src = "syscall::openat:entry { self->p = arg1; }
               syscall::openat:return /self->p/ {
                   printf(\"%s %d\\n\", copyinstr(self->p), errno); self->p = 0; }";
    let plan = plan_of(src, &options()).unwrap();
    assert_eq!(plan.probes.len(), 2);
    assert_eq!(
        plan.probes[0].captures.strings,
        [1],
        "the path, read at entry"
    );
    assert!(plan.probes[1].captures.strings.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = ["one.txt", "two.txt", "missing.txt"]
        .iter()
        .map(|n| dir.path().join(n))
        .collect();
    std::fs::write(&files[0], "1\n").unwrap();
    std::fs::write(&files[1], "2\n").unwrap();
    let mut attached = attach(&plan);
    let output = Command::new("/bin/cat")
        .args(&files)
        .env_clear()
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let exit_code = output.status.code();
    assert_eq!(output.stdout, b"1\n2\n");
    assert_eq!(exit_code, Some(1), "cat fails on the missing file");
    let firings = drain(&mut attached, &plan);
    drop(attached);
    // The child's pid is the one whose entries open our files.
    let ours = files[0].display().to_string();
    let pid = firings
        .iter()
        .find(|f| f.strings.first().is_some_and(|s| s.value == ours))
        .expect("cat's open of one.txt was seen")
        .pid;
    let child: Vec<&Firing> = firings.iter().filter(|f| f.pid == pid).collect();
    let entries: Vec<String> = child
        .iter()
        .filter(|f| plan.probes[f.probe as usize].info.kind == ProbeKind::SyscallEntry)
        .map(|f| {
            assert_eq!(f.comm, "cat");
            assert!(!f.strings[0].truncated);
            f.strings[0].value.to_str_lossy().into_owned()
        })
        .collect();
    let mut want = loader_opens("/bin/cat");
    want.extend(files.iter().map(|f| f.display().to_string()));
    assert_eq!(entries, want);
    let returns: Vec<(i64, i32)> = child
        .iter()
        .filter(|f| name_of(&plan, f) == "syscall::openat:return")
        .map(|f| (f.args[0] as i64, f.errno))
        .collect();
    println!("cat {pid}: opened {entries:?}; returns (ret, errno) {returns:?}");
    assert_eq!(returns.len(), want.len());
    let (last, rest) = returns.split_last().unwrap();
    assert_eq!(*last, (-i64::from(libc::ENOENT), libc::ENOENT));
    assert!(rest.iter().all(|&(ret, errno)| ret >= 0 && errno == 0));
}

/// A python3.11 child that runs `body` once the test writes a line to its stdin.
struct PythonChild {
    child: Child,
    stdin: Option<ChildStdin>,
    script: PathBuf,
    _dir: tempfile::TempDir,
}

impl PythonChild {
    fn start(body: &str) -> PythonChild {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("traced.py");
        std::fs::write(
            &script,
            format!("import sys, os\nprint('ready', flush=True)\nsys.stdin.readline()\n{body}"),
        )
        .unwrap();
        let mut child = Command::new(PYTHON)
            .arg(&script)
            .env_clear()
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut stdout: BufReader<ChildStdout> = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        PythonChild {
            child,
            stdin,
            script,
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn script(&self) -> &Path {
        &self.script
    }

    /// Lets the script run past its readline.
    fn go(&mut self) {
        let mut stdin = self.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
    }

    /// Whether it is still running; a finished script must have succeeded.
    fn running(&mut self) -> bool {
        match self.child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success());
                false
            }
            None => true,
        }
    }

    fn go_and_wait(&mut self) {
        self.go();
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for PythonChild {
    fn drop(&mut self) {
        // Only this test's own child, by its pid; it has normally exited already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_kernel_pid_predicate_passes_only_the_childs_getppid_calls() {
    if !kernel_available("a_kernel_pid_predicate_passes_only_the_childs_getppid_calls") {
        return;
    }
    const CALLS: usize = 37;
    let mut child = PythonChild::start(&format!("for _ in range({CALLS}):\n    os.getppid()\n"));
    let pid = child.pid();
    // One probe on its own tracepoint, and the same probe among the get* syscalls, which are
    // too many for their own tracepoints and go through raw_syscalls.
    let own = plan_of(
        &format!("syscall::getppid:entry /pid == {pid}/ {{}}"),
        &options(),
    )
    .unwrap();
    let raw = plan_of(
        &format!("syscall::get*:entry /pid == {pid}/ {{}}"),
        &options(),
    )
    .unwrap();
    assert!(own.probes[0].kernel_filter.is_some());
    assert!(matches!(own.probes[0].site, Site::Tracepoint { .. }));
    assert!(raw.probes.len() > 20);
    assert!(raw
        .probes
        .iter()
        .all(|p| matches!(p.site, Site::RawSyscall { .. })));
    let mut own_attached = attach(&own);
    let mut raw_attached = attach(&raw);
    for _ in 0..5 {
        // SAFETY: getppid has no preconditions; these calls must not be seen.
        unsafe { libc::getppid() };
    }
    child.go_and_wait();
    let own_firings = drain(&mut own_attached, &own);
    let raw_firings = drain(&mut raw_attached, &raw);
    drop((own_attached, raw_attached));
    println!(
        "getppid firings: {} on syscalls:sys_enter_getppid, {} of {} through raw_syscalls",
        own_firings.len(),
        raw_firings
            .iter()
            .filter(|f| name_of(&raw, f) == "syscall::getppid:entry")
            .count(),
        raw_firings.len()
    );
    assert_eq!(own_firings.len(), CALLS);
    assert!(own_firings
        .iter()
        .all(|f| f.pid == pid && f.comm == "python3.11"));
    assert!(raw_firings.iter().all(|f| f.pid == pid));
    let getppid = raw_firings
        .iter()
        .filter(|f| name_of(&raw, f) == "syscall::getppid:entry")
        .count();
    assert_eq!(getppid, CALLS);
}

#[test]
fn python_function_entry_and_return_decode_file_function_and_line() {
    if !kernel_available("python_function_entry_and_return_decode_file_function_and_line") {
        return;
    }
    let body = "def inner(x):\n    return x + 1\n\ndef outer():\n    return inner(1) + inner(2)\n\nouter()\n";
    let mut child = PythonChild::start(body);
    let pid = child.pid();
    // 3.11 fires function-entry only while the line probe's semaphore is raised: the clause
    // with a false predicate raises it, and its kernel filter drops every line firing.
    let src = format!(
        "python{pid}:::function-entry, python{pid}:::function-return {{
             printf(\"%s %s %d\\n\", copyinstr(arg0), copyinstr(arg1), arg2); }}
         python{pid}:::line /0/ {{}}"
    );
    let plan = plan_of(&src, &options()).unwrap();
    let names: Vec<String> = plan
        .probes
        .iter()
        .map(|p| p.info.desc.to_string())
        .collect();
    assert_eq!(
        names,
        [
            format!("python{pid}:python3.11::function-entry"),
            format!("python{pid}:python3.11::function-return"),
            format!("python{pid}:python3.11::line"),
        ]
    );
    assert_eq!(plan.probes[0].captures.strings, [0, 1]);
    let mut attached = attach(&plan);
    child.go_and_wait();
    let firings = drain(&mut attached, &plan);
    drop(attached);
    let script = child.script().display().to_string();
    let calls: Vec<(String, String, u64)> = firings
        .iter()
        .filter(|f| f.pid == pid && f.strings[0].value == script)
        .map(|f| {
            let name = &plan.probes[f.probe as usize].info.desc.name;
            (
                name.clone(),
                f.strings[1].value.to_str_lossy().into_owned(),
                f.args[2],
            )
        })
        .collect();
    println!("python {pid}: {calls:?}");
    let e = |f: &str, l| ("function-entry".to_string(), f.to_string(), l);
    let r = |f: &str, l| ("function-return".to_string(), f.to_string(), l);
    // Lines: 3 is the readline, the body starts at 4.
    assert_eq!(
        calls,
        [
            e("outer", 7),
            e("inner", 4),
            r("inner", 5),
            e("inner", 4),
            r("inner", 5),
            r("outer", 8),
            r("<module>", 10),
        ]
    );
    assert!(firings
        .iter()
        .all(|f| plan.probes[f.probe as usize].info.desc.name != "line"));
}

/// Spins on every CPU for `time` so that cpu-clock samples land on each.
fn spin_everywhere(time: Duration) {
    let n = cpus::online().unwrap().len();
    let threads: Vec<_> = (0..n)
        .map(|_| {
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut x = 0u64;
                while start.elapsed() < time {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
                x
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn profile_fires_on_every_cpu() {
    if !kernel_available("profile_fires_on_every_cpu") {
        return;
    }
    let plan = plan_of("profile:::profile-997 {}", &options()).unwrap();
    let mut attached = attach(&plan);
    spin_everywhere(Duration::from_millis(300));
    let firings = drain(&mut attached, &plan);
    drop(attached);
    let seen: BTreeSet<u32> = firings.iter().map(|f| f.cpu).collect();
    let online: BTreeSet<u32> = cpus::online().unwrap().into_iter().collect();
    println!("profile-997: {} firings on cpus {seen:?}", firings.len());
    assert_eq!(seen, online);
    assert!(firings.iter().all(|f| (f.args[0] != 0) != (f.args[1] != 0)));
    assert!(
        firings.iter().any(|f| f.args[1] != 0),
        "some samples in user mode"
    );
}

#[test]
fn proc_probes_see_a_childs_create_exec_and_exit() {
    if !kernel_available("proc_probes_see_a_childs_create_exec_and_exit") {
        return;
    }
    let plan = plan_of(
        "proc:::create, proc:::exec-success, proc:::exit {}",
        &options(),
    )
    .unwrap();
    let mut attached = attach(&plan);
    let mut true_child = Command::new("/bin/true").spawn().unwrap();
    let child = true_child.id();
    assert!(true_child.wait().unwrap().success());
    let firings = drain(&mut attached, &plan);
    drop(attached);
    // Other tests start children from this process too: look for this one by its pid.
    let created = firings.iter().any(|f| {
        name_of(&plan, f) == "proc:::create"
            && f.pid == std::process::id()
            && f.args[0] == u64::from(child)
    });
    assert!(created, "proc:::create in the test process names the child");
    let events: Vec<(String, String)> = firings
        .iter()
        .filter(|f| f.pid == child)
        .map(|f| (name_of(&plan, f), f.comm.to_str_lossy().into_owned()))
        .collect();
    println!("child {child}: {events:?}");
    assert_eq!(
        events,
        [
            ("proc:::exec-success".to_string(), "true".to_string()),
            ("proc:::exit".to_string(), "true".to_string()),
        ]
    );
}

#[test]
fn a_description_that_matches_nothing_is_an_error_unless_zdefs() {
    if !kernel_available("a_description_that_matches_nothing_is_an_error_unless_zdefs") {
        return;
    }
    let src = "syscall::no_such_call:entry {} syscall::read:entry {}";
    let err = plan_of(src, &options()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "probe description syscall::no_such_call:entry does not match any probe"
    );
    let zdefs = Options {
        zdefs: true,
        ..options()
    };
    let plan = plan_of(src, &zdefs).unwrap();
    let names: Vec<String> = plan
        .probes
        .iter()
        .map(|p| p.info.desc.to_string())
        .collect();
    assert_eq!(names, ["syscall::read:entry"]);
    assert_eq!(plan.probes[0].info.clauses, [1]);
}

#[test]
fn pid_provider_traces_a_library_function_and_its_return_value() {
    if !kernel_available("pid_provider_traces_a_library_function_and_its_return_value") {
        return;
    }
    const CALLS: usize = 23;
    let mut child = PythonChild::start(&format!("for _ in range({CALLS}):\n    os.getppid()\n"));
    let pid = child.pid();
    let src = format!("pid{pid}:libc.so.6:getppid:entry, pid{pid}:libc.so.6:getppid:return {{}}");
    let plan = plan_of(&src, &options()).unwrap();
    let names: Vec<String> = plan
        .probes
        .iter()
        .map(|p| p.info.desc.to_string())
        .collect();
    assert_eq!(
        names,
        [
            format!("pid{pid}:libc.so.6:getppid:entry"),
            format!("pid{pid}:libc.so.6:getppid:return"),
        ]
    );
    let in_executable = plan_of(
        &format!("pid{pid}:a.out:PyLong_FromLong:entry {{}}"),
        &options(),
    )
    .unwrap();
    assert_eq!(
        in_executable.probes[0].info.desc.to_string(),
        format!("pid{pid}:python3.11:PyLong_FromLong:entry")
    );
    // As in DTrace, the return probe is a uprobe on each of getppid's return instructions.
    let Site::Uprobe { sites } = &plan.probes[1].site else {
        panic!("getppid:return is not a uprobe: {:?}", plan.probes[1].site);
    };
    assert!(!sites.is_empty());
    for site in sites {
        assert!(!site.spec.retprobe);
        let code = std::fs::read(&site.spec.path).unwrap();
        assert_eq!(
            code[site.spec.offset as usize], 0xc3,
            "a ret at {:#x}",
            site.spec.offset
        );
    }
    let mut attached = attach(&plan);
    let dump = attached.dump();
    let programs = 1 + sites.len();
    assert_eq!(
        dump.matches("bpf_ringbuf_output").count(),
        programs,
        "{dump}"
    );
    assert!(!dump.contains("uretprobe"), "{dump}");
    child.go_and_wait();
    let firings = drain(&mut attached, &plan);
    drop(attached);
    let entries = firings.iter().filter(|f| f.probe == 0).count();
    let returns: Vec<u64> = firings
        .iter()
        .filter(|f| f.probe == 1)
        .map(|f| f.args[1])
        .collect();
    println!("pid provider: {entries} entries, returns {returns:?}");
    assert!(firings.iter().all(|f| f.pid == pid));
    assert_eq!(entries, CALLS);
    assert_eq!(returns, vec![u64::from(std::process::id()); CALLS]);
}

#[test]
fn kernel_aggregations_count_sum_min_max_without_records() {
    if !kernel_available("kernel_aggregations_count_sum_min_max_without_records") {
        return;
    }
    let body = "fd = os.open('/dev/null', os.O_WRONLY)\nfor n in (100, 7, 250):\n    os.write(fd, b'x' * n)\nfor _ in range(5):\n    os.getppid()\n";
    let mut child = PythonChild::start(body);
    let pid = child.pid();
    let src = format!(
        "syscall::write:entry /pid == {pid}/ {{
             @bytes = sum(arg2); @small = min(arg2); @big = max(arg2); @writes[execname] = count(); }}
         syscall::get*:entry /pid == {pid}/ {{ @calls[probefunc, probename] = count(); }}
         syscall::getppid:return /pid == {pid}/ {{ trace(arg0); }}"
    );
    let plan = plan_of(&src, &options()).unwrap();
    let names: Vec<&str> = plan
        .kernel_aggregations
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, ["big", "bytes", "calls", "small", "writes"]);
    for probe in &plan.probes {
        let user = probe.info.desc.name == "return";
        assert_eq!(probe.info.clauses.is_empty(), !user, "{}", probe.info.desc);
        assert_eq!(probe.kernel_clauses.is_empty(), user, "{}", probe.info.desc);
    }
    let mut attached = attach(&plan);
    child.go_and_wait();
    let firings = drain(&mut attached, &plan);
    let aggregations = attached.read_kernel_aggregations(&plan).unwrap();
    assert_eq!(attached.aggregation_drops().unwrap(), 0);
    drop(attached);
    let returns: Vec<u64> = firings
        .iter()
        .filter(|f| f.pid == pid)
        .map(|f| f.args[0])
        .collect();
    assert_eq!(
        returns,
        vec![u64::from(std::process::id()); 5],
        "only getppid:return emits"
    );
    let scalar = |name: &str| {
        let read = aggregations.iter().find(|r| r.name == name).unwrap();
        read.entries
            .iter()
            .map(|e| (e.keys.clone(), e.value.clone()))
            .collect::<Vec<_>>()
    };
    use dtk::internals::event::{AggValue::Scalar, Value};
    println!("kernel aggregations: {aggregations:?}");
    assert_eq!(scalar("bytes"), [(vec![], Scalar(357))]);
    assert_eq!(scalar("small"), [(vec![], Scalar(7))]);
    assert_eq!(scalar("big"), [(vec![], Scalar(250))]);
    assert_eq!(
        scalar("writes"),
        [(vec![Value::Str("python3.11".into())], Scalar(3))]
    );
    let getppid = vec![Value::Str("getppid".into()), Value::Str("entry".into())];
    assert!(scalar("calls").contains(&(getppid, Scalar(5))));
}

#[test]
fn a_provider_glob_finds_the_usdt_probes_of_running_processes() {
    if !kernel_available("a_provider_glob_finds_the_usdt_probes_of_running_processes") {
        return;
    }
    let child = PythonChild::start("");
    let pid = child.pid();
    let plan = plan_of("pyth*:::function-entry {}", &options()).unwrap();
    let listing = plan::list(&plan);
    let wanted = format!("python{pid}:python3.11::function-entry");
    let found = plan
        .probes
        .iter()
        .find(|p| p.info.desc.to_string() == wanted)
        .unwrap_or_else(|| panic!("{wanted} not in\n{listing}"));
    assert_eq!(found.info.kind, ProbeKind::Usdt);
    let Site::Uprobe { sites } = &found.site else {
        panic!("{wanted} is not a uprobe: {:?}", found.site);
    };
    assert!(sites.iter().all(|s| s.spec.pid == Some(pid as i32)));
    assert!(
        sites.iter().all(|s| s.spec.ref_ctr_offset.is_some()),
        "semaphore"
    );
    assert_eq!(sites[0].args.len(), 3, "filename, funcname, lineno");
    let provider = format!("python{pid}");
    let row = [provider.as_str(), "python3.11", "function-entry"];
    assert!(
        listing
            .lines()
            .any(|l| l.split_whitespace().skip(1).eq(row.iter().copied())),
        "{listing}"
    );
    println!("{listing}");
}

#[test]
fn a_string_that_fills_strsize_is_cut_and_marked_truncated() {
    if !kernel_available("a_string_that_fills_strsize_is_cut_and_marked_truncated") {
        return;
    }
    let options = Options {
        strsize: 16,
        ..options()
    };
    let plan = plan_of(
        "syscall::openat:entry /execname == \"cat\"/ { trace(copyinstr(arg1)); }",
        &options,
    )
    .unwrap();
    assert!(
        plan.probes[0].kernel_filter.is_some(),
        "execname is kernel-side"
    );
    let dir = tempfile::tempdir().unwrap();
    let long = dir.path().join("a-file-name-longer-than-sixteen-bytes.txt");
    std::fs::write(&long, "x").unwrap();
    let mut attached = build_and_attach(&plan, &options).unwrap();
    let child = Command::new("/bin/cat")
        .arg(&long)
        .env_clear()
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(child.wait_with_output().unwrap().status.success());
    let firings = drain(&mut attached, &plan);
    drop(attached);
    assert!(firings.iter().all(|f| f.comm == "cat"));
    let strings: Vec<(String, bool)> = firings
        .iter()
        .filter(|f| f.pid == pid)
        .map(|f| {
            (
                f.strings[0].value.to_str_lossy().into_owned(),
                f.strings[0].truncated,
            )
        })
        .collect();
    println!("cat {pid} with strsize=16: {strings:?}");
    let path = long.display().to_string();
    assert_eq!(strings.last(), Some(&(path[..15].to_string(), true)));
    let cache = "/etc/ld.so.cache";
    assert_eq!(strings.first(), Some(&(cache[..15].to_string(), true)));
}

#[test]
fn proc_exit_fires_once_per_process_not_per_thread() {
    if !kernel_available("proc_exit_fires_once_per_process_not_per_thread") {
        return;
    }
    let body = "import threading\nfor _ in range(3):\n    t = threading.Thread(target=os.getppid)\n    t.start()\n    t.join()\n";
    let mut child = PythonChild::start(body);
    let pid = child.pid();
    let plan = plan_of(&format!("proc:::exit /pid == {pid}/ {{}}"), &options()).unwrap();
    let Site::Tracepoint { guard, .. } = &plan.probes[0].site else {
        panic!("proc:::exit is a tracepoint");
    };
    if guard.is_none() {
        eprintln!("this kernel's sched_process_exit has no group_dead: exit fires per thread");
        return;
    }
    let mut attached = attach(&plan);
    child.go_and_wait();
    let firings = drain(&mut attached, &plan);
    let exits: Vec<(u32, u32)> = firings.iter().map(|f| (f.pid, f.tid)).collect();
    println!("proc:::exit of {pid} (3 threads started and joined): {exits:?}");
    // Once, for the process; in whichever thread was last to go (a joined thread may still
    // be on its way out when the main thread exits).
    assert_eq!(exits.len(), 1, "{exits:?}");
    assert_eq!(exits[0].0, pid);
}

#[test]
fn the_bundled_syscalls_script_counts_in_the_kernel_with_one_program() {
    if !kernel_available("the_bundled_syscalls_script_counts_in_the_kernel_with_one_program") {
        return;
    }
    let mut child = PythonChild::start("for _ in range(11):\n    os.getppid()\n");
    let pid = child.pid();
    let script =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/d-scripts/syscalls.d"))
            .unwrap()
            .replace(
                "inline int FILTER_PID = 0;",
                &format!("inline int FILTER_PID = {pid};"),
            )
            .replace("inline int BY_PROCESS = 0;", "inline int BY_PROCESS = 1;");
    let plan = plan_of(&script, &options()).unwrap();
    let kept: Vec<(&str, bool)> = plan
        .kernel_aggregations
        .iter()
        .map(|a| (a.name.as_str(), a.drained))
        .collect();
    assert_eq!(
        kept,
        [("calls", false)],
        "without -i, one map read at the end"
    );
    let every_second = script.replace("inline int INTERVAL = 0;", "inline int INTERVAL = 1;");
    let drained: Vec<(String, bool)> = plan_of(&every_second, &options())
        .unwrap()
        .kernel_aggregations
        .into_iter()
        .map(|a| (a.name, a.drained))
        .collect();
    assert_eq!(
        drained,
        [("calls".to_string(), true)],
        "-i truncates @calls every interval, and it stays in the kernel"
    );
    let mut attached = attach(&plan);
    assert_eq!(
        attached.attachments(),
        ["tracepoint raw_syscalls:sys_enter"]
    );
    let dump = attached.dump();
    assert!(
        dump.lines().count() < 400,
        "one shared clause, no dispatch:\n{dump}"
    );
    child.go_and_wait();
    let firings = drain(&mut attached, &plan);
    let aggregations = attached.read_kernel_aggregations(&plan).unwrap();
    assert!(firings.is_empty(), "nothing goes through the ring buffer");
    let entries = &aggregations[0].entries;
    use dtk::internals::event::{AggValue::Scalar, Value};
    let key = |call: &str| {
        vec![
            Value::Int(i64::from(pid)),
            Value::Str("python3.11".into()),
            Value::Str(call.into()),
        ]
    };
    let count = |call: &str| {
        entries
            .iter()
            .find(|e| e.keys == key(call))
            .map(|e| e.value.clone())
    };
    println!(
        "syscalls.d for {pid}: {} calls counted, getppid {:?}",
        entries.len(),
        count("getppid")
    );
    assert_eq!(count("getppid"), Some(Scalar(11)));
    assert!(entries
        .iter()
        .all(|e| e.keys[0] == Value::Int(i64::from(pid))));
}

/// Drained aggregations (trunc and clear at a tick) read again and again while a child
/// updates them: the reads add up to exactly what the child did, whatever the reads raced
/// with, in a per-probe array (`@calls`) and in a hash map (`@by_pid`) alike; min and max hold
/// the one value they saw; and once read, the kernel holds nothing.
#[test]
fn drained_aggregations_lose_no_count_to_reads_during_updates() {
    if !kernel_available("drained_aggregations_lose_no_count_to_reads_during_updates") {
        return;
    }
    const CALLS: i64 = 500_000;
    let mut child = PythonChild::start(&format!("for _ in range({CALLS}):\n    os.getppid()\n"));
    let pid = child.pid();
    let src = format!(
        "syscall::getppid:entry /pid == {pid}/ {{
             @calls[probefunc] = count(); @by_pid[pid] = count(); @low = min(pid); @high = max(pid);
         }}
         tick-1s {{ trunc(@calls); trunc(@by_pid); clear(@low); clear(@high); }}"
    );
    let plan = plan_of(&src, &options()).unwrap();
    assert!(
        plan.kernel_aggregations.len() == 4 && plan.kernel_aggregations.iter().all(|a| a.drained),
        "{:?}",
        plan.kernel_aggregations
    );
    let mut attached = attach(&plan);
    child.go();
    let mut sums = std::collections::BTreeMap::<String, i64>::new();
    let mut reads_with_counts = 0;
    let mut add = |attached: &mut Attached| {
        let mut counted = false;
        for read in attached.read_kernel_aggregations(&plan).unwrap() {
            assert!(read.increments);
            for entry in read.entries {
                let dtk::internals::event::AggValue::Scalar(v) = entry.value else {
                    panic!("{entry:?}")
                };
                match read.name.as_str() {
                    "low" | "high" => assert_eq!(v, i64::from(pid)),
                    "by_pid" => {
                        assert_eq!(
                            entry.keys,
                            [dtk::internals::event::Value::Int(i64::from(pid))]
                        );
                        *sums.entry(read.name.clone()).or_default() += v;
                    }
                    _ => {
                        counted = true;
                        *sums.entry(read.name.clone()).or_default() += v;
                    }
                }
            }
        }
        reads_with_counts += usize::from(counted);
    };
    while child.running() {
        add(&mut attached);
    }
    add(&mut attached);
    assert_eq!(
        sums,
        [("by_pid".to_string(), CALLS), ("calls".to_string(), CALLS)].into(),
        "{reads_with_counts} reads found counts"
    );
    println!("{reads_with_counts} reads found counts");
    assert!(
        reads_with_counts >= 2,
        "some reads ran while the child counted"
    );
    let after = attached.read_kernel_aggregations(&plan).unwrap();
    assert!(after.iter().all(|r| r.entries.is_empty()), "{after:?}");
}

#[test]
fn every_bundled_script_plans_and_loads() {
    if !kernel_available("every_bundled_script_plans_and_loads") {
        return;
    }
    let child = PythonChild::start("");
    let pid = child.pid();
    for name in ["opens", "pyflow", "syscalls"] {
        let path = format!("{}/d-scripts/{name}.d", env!("CARGO_MANIFEST_DIR"));
        let source = std::fs::read_to_string(path).unwrap();
        let macros = MacroArgs {
            target: Some(pid),
            ..MacroArgs::default()
        };
        let program = compile(name, &source, &macros).unwrap().program;
        let options = Options::resolve(&program, &[]).unwrap();
        let plan = plan::resolve(&program, Some(pid), &options, None).unwrap();
        let attached =
            build_and_attach(&plan, &options).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        println!(
            "{name}.d: {} probes, {:?}",
            plan.probes.len(),
            attached.attachments()
        );
        assert!(!attached.attachments().is_empty(), "{name}");
    }
    let opens = plan_of(
        &std::fs::read_to_string(format!("{}/d-scripts/opens.d", env!("CARGO_MANIFEST_DIR")))
            .unwrap(),
        &options(),
    )
    .unwrap();
    let openat2 = opens
        .probes
        .iter()
        .find(|p| p.info.desc.to_string() == "syscall::openat2:entry")
        .unwrap();
    assert_eq!(openat2.captures.strings, [1], "self->path = arg1");
    assert_eq!(
        openat2.captures.bytes,
        [(2, 8)],
        "copyin(arg2, sizeof (uint64_t))"
    );
    // -z, -n and -p (--no-follow: the pid alone, FOLLOW 0, so that progenyof folds away) are
    // decided in the kernel: the entry and return probes keep a kernel filter.
    let source =
        std::fs::read_to_string(format!("{}/d-scripts/opens.d", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .replace("FILTER_ZONE = \"\"", "FILTER_ZONE = \"global\"")
            .replace("FILTER_NAME = \"\"", "FILTER_NAME = \"cat\"")
            .replace("FILTER_PID = 0", "FILTER_PID = 42");
    let zoned = plan_of(&source, &options()).unwrap();
    assert_eq!(zoned.zones.len(), 1);
    for probe in zoned
        .probes
        .iter()
        .filter(|p| p.info.desc.provider == "syscall")
    {
        assert!(probe.kernel_filter.is_some(), "{}", probe.info.desc);
    }
}

#[test]
fn kernel_predicates_cast_like_d() {
    if !kernel_available("kernel_predicates_cast_like_d") {
        return;
    }
    let body = "fd = os.open('/dev/null', os.O_WRONLY)\nfor _ in range(3):\n    os.write(fd, b'x')\nfor _ in range(2):\n    try:\n        os.write(-1, b'x')\n    except OSError:\n        pass\n";
    let mut child = PythonChild::start(body);
    let pid = child.pid();
    // write(-1, …) returns -EBADF (-9): 0xf7 as an unsigned char, 0xfffffff7 as an
    // unsigned int, -9 as an int.
    let tests = [
        "(unsigned char)arg0 == 0xf7",
        "(unsigned int)arg0 == 4294967287",
        "(int)arg0 == -9 && !((int)arg0 >= 0)",
        "errno == EBADF",
    ];
    let plans: Vec<Plan> = tests
        .iter()
        .map(|t| {
            plan_of(
                &format!("syscall::write:return /pid == {pid} && {t}/ {{}}"),
                &options(),
            )
            .unwrap()
        })
        .collect();
    assert!(plans.iter().all(|p| p.probes[0].kernel_filter.is_some()));
    let mut attached: Vec<Attached> = plans.iter().map(attach).collect();
    child.go_and_wait();
    for ((test, plan), attached) in tests.iter().zip(&plans).zip(&mut attached) {
        let firings = drain(attached, plan);
        let returns: Vec<(i64, i32)> = firings
            .iter()
            .map(|f| (f.args[0] as i64, f.errno))
            .collect();
        println!("{test}: {returns:?}");
        assert_eq!(returns, [(-9, libc::EBADF); 2], "{test}");
    }
}

#[test]
fn raw_syscalls_apply_each_probes_own_filter() {
    if !kernel_available("raw_syscalls_apply_each_probes_own_filter") {
        return;
    }
    let mut child = PythonChild::start(
        "for _ in range(3):\n    os.getppid()\nfor _ in range(2):\n    os.getuid()\n",
    );
    let pid = child.pid();
    // getppid:entry has a clause without predicate, so it is not filtered; the other get*
    // probes keep only the child's calls.
    let src = format!("syscall::get*:entry /pid == {pid}/ {{}} syscall::getppid:entry {{}}");
    let plan = plan_of(&src, &options()).unwrap();
    let getppid = plan
        .probes
        .iter()
        .position(|p| p.info.desc.function == "getppid")
        .unwrap();
    assert!(plan.probes[getppid].kernel_filter.is_none());
    assert!(matches!(plan.probes[getppid].site, Site::RawSyscall { .. }));
    let mut attached = attach(&plan);
    let me = std::process::id();
    for _ in 0..4 {
        // SAFETY: getuid and getppid have no preconditions.
        unsafe { libc::getuid() };
    }
    for _ in 0..2 {
        // SAFETY: as above.
        unsafe { libc::getppid() };
    }
    child.go_and_wait();
    let firings = drain(&mut attached, &plan);
    let seen = |who: u32, call: &str| {
        firings
            .iter()
            .filter(|f| f.pid == who && plan.probes[f.probe as usize].info.desc.function == call)
            .count()
    };
    println!(
        "child getppid {} getuid {}; test process getppid {} getuid {}",
        seen(pid, "getppid"),
        seen(pid, "getuid"),
        seen(me, "getppid"),
        seen(me, "getuid")
    );
    assert_eq!((seen(pid, "getppid"), seen(pid, "getuid")), (3, 2));
    assert_eq!(seen(me, "getuid"), 0, "filtered in the kernel");
    assert!(seen(me, "getppid") >= 2, "getppid is not filtered");
    assert!(firings
        .iter()
        .all(|f| f.pid == pid || plan.probes[f.probe as usize].info.desc.function == "getppid"));
}
