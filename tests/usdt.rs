//! Kernel tests of USDT probes on /usr/bin/python3.11: arguments read in BPF (registers,
//! memory operands, strings), semaphores counted by the kernel through ref_ctr_offset, the
//! `line` semaphore that makes CPython 3.11 fire function__entry, and finding the probe file
//! of a process: in libpython, in another mount namespace, or replaced while it runs.
//!
//! Every test runs its own Python child, which waits for a line on stdin so that the probes
//! can be attached to that pid before the workload runs. Attaching to one pid keeps the tests
//! independent: the kernel installs the breakpoints, and raises the semaphores, only in the
//! processes a uprobe is registered for. Expected events are computed from the script text.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use dtk::internals::attach::uprobe::{attach_uprobe, UprobeSpec};
use dtk::internals::attach::Link;
use dtk::internals::bpf::insn::{AluOp, Asm, Cond, Helper, Reg, Size, Src};
use dtk::internals::bpf::prog::{self, ProgType, Program};
use dtk::internals::bpf::RingBuf;
use dtk::internals::codegen::usdt_arg::load_arg;
use dtk::internals::inspect::tracefs;
use dtk::internals::inspect::{find_probe_file, ProcessMaps};
use dtk::internals::inspect::{semaphore_holder, UsdtProbe, UsdtProbes};

use crate::util::kernel_available;

const PYTHON: &str = "/usr/bin/python3.11";

/// What the test programs send per event: tgid, tag (which probe), three integer arguments,
/// and the strings that arguments 0 and 1 point to when the probe has string arguments.
const RECORD: i32 = 32 + FILENAME_LEN + FUNCNAME_LEN;
const VALUES: i16 = 8;
const FILENAME: i16 = 32;
const FILENAME_LEN: i32 = 128;
const FUNCNAME: i16 = FILENAME + FILENAME_LEN as i16;
const FUNCNAME_LEN: i32 = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Event {
    tgid: u32,
    tag: u32,
    values: [u64; 3],
    filename: String,
    funcname: String,
}

fn decode(record: &[u8]) -> Event {
    let u32_at = |at: usize| u32::from_ne_bytes(record[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_ne_bytes(record[at..at + 8].try_into().unwrap());
    let text = |at: i16, len: i32| {
        let bytes = &record[at as usize..at as usize + len as usize];
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    };
    Event {
        tgid: u32_at(0),
        tag: u32_at(4),
        values: [u64_at(8), u64_at(16), u64_at(24)],
        filename: text(FILENAME, FILENAME_LEN),
        funcname: text(FUNCNAME, FUNCNAME_LEN),
    }
}

/// A program for `probe` that sends one record per hit: its integer arguments (up to three)
/// read with `load_arg`, and, when `strings`, the strings arguments 0 and 1 point to.
fn record_program(ring: &RingBuf, probe: &UsdtProbe, tag: u32, strings: bool) -> Program {
    let args = probe.args().unwrap();
    let mut asm = Asm::new();
    let out = asm.label();
    asm.mov64_reg(Reg::R6, Reg::R1)
        .ld_map_fd(Reg::R1, ring.fd())
        .mov64_imm(Reg::R2, RECORD)
        .mov64_imm(Reg::R3, 0)
        .call(Helper::RingbufReserve)
        .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), out)
        .mov64_reg(Reg::R8, Reg::R0)
        .call(Helper::GetCurrentPidTgid)
        .alu64(AluOp::Rsh, Reg::R0, Src::Imm(32))
        .stx(Size::W, Reg::R8, 0, Reg::R0)
        .st(Size::W, Reg::R8, 4, tag as i32);
    for (index, arg) in args.iter().take(3).enumerate() {
        load_arg(&mut asm, arg, Reg::R6, Reg::R7, -8);
        asm.stx(Size::DW, Reg::R8, VALUES + 8 * index as i16, Reg::R7);
        let string = match index {
            0 => Some((FILENAME, FILENAME_LEN)),
            1 => Some((FUNCNAME, FUNCNAME_LEN)),
            _ => None,
        };
        if let (true, Some((at, len))) = (strings, string) {
            asm.mov64_reg(Reg::R1, Reg::R8)
                .alu64(AluOp::Add, Reg::R1, Src::Imm(i32::from(at)))
                .mov64_imm(Reg::R2, len)
                .mov64_reg(Reg::R3, Reg::R7)
                .call(Helper::ProbeReadUserStr);
        }
    }
    asm.mov64_reg(Reg::R1, Reg::R8)
        .mov64_imm(Reg::R2, 0)
        .call(Helper::RingbufSubmit)
        .bind(out)
        .mov64_imm(Reg::R0, 0)
        .exit();
    let insns = asm.finish().unwrap();
    prog::load(ProgType::Kprobe, &insns, "GPL").unwrap_or_else(|e| {
        panic!(
            "load failed: {e}\n{}",
            dtk::internals::bpf::insn::disassemble(&insns)
        )
    })
}

/// A program that does nothing: attaching it is what matters (it raises a semaphore).
fn empty_program() -> Program {
    let mut asm = Asm::new();
    asm.mov64_imm(Reg::R0, 0).exit();
    prog::load(ProgType::Kprobe, &asm.finish().unwrap(), "GPL").unwrap()
}

/// Attaches `prog` at every site of a probe, for `pid` only, with the semaphore.
fn attach(prog: &Program, sites: &[UsdtProbe], pid: u32) -> Vec<Link> {
    sites
        .iter()
        .map(|site| {
            attach_uprobe(prog, &UprobeSpec::usdt(site, Some(pid as i32)))
                .and_then(|l| l.enabled())
                .unwrap()
        })
        .collect()
}

/// The sites of python3.11's probe `name`. There is one per probe in Debian's build, which
/// is what lets each test build one program, from the first site's argument specs.
fn python_probe(name: &str) -> Vec<UsdtProbe> {
    probe_in(Path::new(PYTHON), name)
}

/// The sites of probe `name` in the python3.11 at `path`.
fn probe_in(path: &Path, name: &str) -> Vec<UsdtProbe> {
    let probes = UsdtProbes::open(path).unwrap();
    let sites: Vec<UsdtProbe> = probes
        .find("python", name)
        .unwrap()
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(sites.len(), 1, "python:{name} sites");
    sites
}

/// A Python process running a script that first waits for a line on stdin.
struct PythonChild {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    script: PathBuf,
    _dir: tempfile::TempDir,
}

/// A copy of python3.11 of the test's own, for the tests that count on its semaphores: a
/// tracer attached to /usr/bin/python3.11 for every process (a following `dtk pyflow`, which
/// other tests run at the same time) raises them in every process that runs that file, and
/// not in a copy, which is another file.
struct PrivatePython {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl PrivatePython {
    fn new() -> PrivatePython {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("python3.11");
        std::fs::copy(PYTHON, &path).unwrap();
        PrivatePython { _dir: dir, path }
    }

    fn probe(&self, name: &str) -> Vec<UsdtProbe> {
        probe_in(&self.path, name)
    }

    /// Starts the copy on a script, as `PythonChild::start` does.
    fn start(&self, body: &str) -> PythonChild {
        PythonChild::start_with("", body, |script| {
            let mut command = Command::new(&self.path);
            command.arg(script).env("PYTHONHOME", "/usr");
            command
        })
    }
}

/// `python3.11 SCRIPT`.
fn python_command(script: &Path) -> Command {
    let mut command = Command::new(PYTHON);
    command.arg(script);
    command
}

/// The lines every test script starts with: say it is ready, then wait until the probes are
/// attached. Attaching only once it is ready leaves the interpreter's own start-up untraced.
const WAIT_FOR_GO: &str = "import sys\nprint('ready', flush=True)\nsys.stdin.readline()\n";

impl PythonChild {
    fn start(body: &str) -> PythonChild {
        Self::start_with("", body, python_command)
    }

    /// Starts `make_command(script)` with the script written to a fresh temporary directory:
    /// `setup`, then the wait for the go-ahead, then `body`.
    fn start_with(
        setup: &str,
        body: &str,
        make_command: impl FnOnce(&Path) -> Command,
    ) -> PythonChild {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("traced.py");
        std::fs::write(&script, format!("{setup}{WAIT_FOR_GO}{body}")).unwrap();
        let mut child = crate::util::spawn_fresh_executable(
            make_command(&script)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .env("PYTHONDONTWRITEBYTECODE", "1"),
        );
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut child = PythonChild {
            child,
            stdin,
            stdout,
            script,
            _dir: dir,
        };
        assert_eq!(child.read_stdout_line(), "ready");
        child
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets the script run past its first line, and waits for it to finish.
    fn go_and_wait(&mut self) {
        let mut stdin = self.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
        drop(stdin);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "python exited with {status}");
    }

    /// The next line the script printed.
    fn read_stdout_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_string()
    }
}

impl Drop for PythonChild {
    fn drop(&mut self) {
        // Only this test's own child, by its pid; it has normally exited already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every record in the ring buffer from process `pid`, in order.
fn drain(ring: &mut RingBuf, pid: u32) -> Vec<Event> {
    let mut events = Vec::new();
    while ring
        .poll(Some(Duration::from_millis(200)), |r| events.push(decode(r)))
        .unwrap()
        > 0
    {}
    events.retain(|e| e.tgid == pid);
    events
}

/// The 1-based number of the line of `script` whose text (trimmed) is `line`.
fn line_of(script: &str, line: &str) -> u64 {
    let index = script.lines().position(|l| l.trim() == line);
    index.map(|i| i as u64 + 1).expect("line is in the script")
}

const CALLS: &str = "\
def leaf(n):
    return n * 2


def middle(n):
    doubled = leaf(n)
    return doubled + 1


for i in range(3):
    middle(i)
";

/// The (function, line) of each return of CALLS's functions, from the script's text: the
/// line of the `return` statement, in call order.
fn expected_returns_of_calls() -> Vec<(String, u64)> {
    let text = format!("{WAIT_FOR_GO}{CALLS}");
    let leaf = ("leaf".to_string(), line_of(&text, "return n * 2"));
    let middle = ("middle".to_string(), line_of(&text, "return doubled + 1"));
    (0..3)
        .flat_map(|_| [leaf.clone(), middle.clone()])
        .collect()
}

const RETURN_TAG: u32 = 1;
const ENTRY_TAG: u32 = 2;

/// (function, line) for the events of the script's own functions.
fn script_calls(events: &[Event], script: &Path, tag: u32) -> Vec<(String, u64)> {
    events
        .iter()
        .filter(|e| e.tag == tag && e.filename == script.to_str().unwrap())
        .filter(|e| e.funcname != "<module>")
        .map(|e| (e.funcname.clone(), e.values[2]))
        .collect()
}

/// How many times the script's module code returned: once, for a script that ran to its end.
fn module_returns(events: &[Event], script: &Path) -> usize {
    let script = script.to_str().unwrap();
    events
        .iter()
        .filter(|e| e.tag == RETURN_TAG && e.filename == script && e.funcname == "<module>")
        .count()
}

#[test]
fn function_return_gives_filename_function_and_line() {
    if !kernel_available("function_return_gives_filename_function_and_line") {
        return;
    }
    let expected = expected_returns_of_calls();
    let mut python = PythonChild::start(CALLS);
    let mut ring = RingBuf::create(1 << 18, "usdt_ret").unwrap();
    let sites = python_probe("function__return");
    let prog = record_program(&ring, &sites[0], RETURN_TAG, true);
    let links = attach(&prog, &sites, python.pid());
    python.go_and_wait();
    drop(links);

    let events = drain(&mut ring, python.pid());
    assert_eq!(script_calls(&events, &python.script, RETURN_TAG), expected);
    assert_eq!(module_returns(&events, &python.script), 1, "{events:?}");
}

#[test]
fn python_3_11_fires_function_entry_only_while_line_is_enabled() {
    if !kernel_available("python_3_11_fires_function_entry_only_while_line_is_enabled") {
        return;
    }
    let text = format!("{WAIT_FOR_GO}{CALLS}");
    let leaf_def = line_of(&text, "def leaf(n):");
    let middle_def = line_of(&text, "def middle(n):");
    let python = PrivatePython::new();
    let entry_sites = python.probe("function__entry");
    let line_sites = python.probe("line");

    // Entry alone: CPython 3.11 never reaches the marker (PYTHON.md, upstream #98894).
    let mut alone = python.start(CALLS);
    let mut ring = RingBuf::create(1 << 18, "usdt_entry").unwrap();
    let entry_prog = record_program(&ring, &entry_sites[0], ENTRY_TAG, true);
    let links = attach(&entry_prog, &entry_sites, alone.pid());
    alone.go_and_wait();
    drop(links);
    let events = drain(&mut ring, alone.pid());
    assert_eq!(script_calls(&events, &alone.script, ENTRY_TAG), vec![]);

    // Entry with `line` attached too: entries fire, each with the def line.
    let mut with_line = python.start(CALLS);
    let line_prog = empty_program();
    let mut links = attach(&line_prog, &line_sites, with_line.pid());
    links.extend(attach(&entry_prog, &entry_sites, with_line.pid()));
    with_line.go_and_wait();
    drop(links);
    let events = drain(&mut ring, with_line.pid());
    let expected: Vec<(String, u64)> = (0..3)
        .flat_map(|_| {
            [
                ("middle".to_string(), middle_def),
                ("leaf".to_string(), leaf_def),
            ]
        })
        .collect();
    assert_eq!(
        script_calls(&events, &with_line.script, ENTRY_TAG),
        expected
    );
}

#[test]
fn gc_start_reads_a_stack_memory_argument() {
    if !kernel_available("gc_start_reads_a_stack_memory_argument") {
        return;
    }
    let sites = python_probe("gc__start");
    // The spec is a memory operand on x86_64 (`-4@112(%rsp)` in Debian's build): this test
    // is the kernel check of load_arg's bpf_probe_read_user path.
    let generations = [2u64, 0, 1, 2];
    let calls: String = generations
        .iter()
        .map(|g| format!("gc.collect({g})\n"))
        .collect();
    // Automatic collections would add events, so they are off before tracing starts;
    // gc.collect() still works while disabled. os._exit skips the collections of shutdown.
    let setup = "import gc, os\ngc.disable()\n";
    let body = format!("{calls}os._exit(0)\n");
    let mut python = PythonChild::start_with(setup, &body, python_command);
    let mut ring = RingBuf::create(1 << 16, "usdt_gc").unwrap();
    let prog = record_program(&ring, &sites[0], 3, false);
    let links = attach(&prog, &sites, python.pid());
    python.go_and_wait();
    drop(links);
    let seen: Vec<u64> = drain(&mut ring, python.pid())
        .iter()
        .map(|e| e.values[0])
        .collect();
    assert_eq!(seen, generations);
}

/// Reads the u16 at `address` in process `pid`.
fn read_semaphore(pid: u32, address: u64) -> u16 {
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut bytes = [0u8; 2];
    mem.read_exact_at(&mut bytes, address).unwrap();
    u16::from_ne_bytes(bytes)
}

#[test]
fn semaphore_is_raised_while_attached_and_restored_after() {
    if !kernel_available("semaphore_is_raised_while_attached_and_restored_after") {
        return;
    }
    let private = PrivatePython::new();
    let sites = private.probe("function__entry");
    let semaphore = sites[0].semaphore.expect("function__entry has a semaphore");
    let mut python = private.start("pass\n");
    let maps = ProcessMaps::read(python.pid()).unwrap();
    let address = maps
        .address_of(private.path.to_str().unwrap(), semaphore.file_offset)
        .expect("the semaphore's page is mapped");
    assert_eq!(address, semaphore.address, "python3.11 is not PIE here");

    let before = read_semaphore(python.pid(), address);
    let prog = empty_program();
    let links = attach(&prog, &sites, python.pid());
    let during = read_semaphore(python.pid(), address);
    drop(links);
    let after = read_semaphore(python.pid(), address);
    assert_eq!((before, during, after), (0, 1, 0));

    let events = std::fs::read_to_string(tracefs::root().unwrap().join("uprobe_events")).unwrap();
    let offset = format!("{:#018x}", sites[0].file_offset);
    let ours: Vec<&str> = events
        .lines()
        .filter(|l| l.contains("python3.11") && l.contains(&offset))
        .collect();
    assert!(ours.is_empty(), "left in uprobe_events: {ours:?}");
    python.go_and_wait();
}

#[test]
fn probe_file_of_a_process_in_another_mount_namespace() {
    if !kernel_available("probe_file_of_a_process_in_another_mount_namespace") {
        return;
    }
    // The child gets a private mount namespace with a tmpfs over an empty directory of ours,
    // and runs a copy of python3.11 from it: that file exists only in its namespace.
    let hidden = tempfile::tempdir().unwrap();
    let hidden_dir = hidden.path().to_str().unwrap().to_string();
    let mut python = PythonChild::start_with("", "print('ok')\n", |script| {
        let shell = format!(
            "mount -t tmpfs dtk-test '{hidden_dir}' && cp {PYTHON} '{hidden_dir}/python3.11' \
             && PYTHONHOME=/usr exec '{hidden_dir}/python3.11' '{}'",
            script.display()
        );
        let mut command = Command::new("unshare");
        command.args(["--mount", "--propagation", "private", "sh", "-c", &shell]);
        command
    });
    let in_process = format!("{hidden_dir}/python3.11");
    assert!(
        !Path::new(&in_process).exists(),
        "the copy must not be visible here"
    );

    let found = find_probe_file(python.pid(), "python", "function__return").unwrap();
    assert_eq!(found.path_in_process, in_process);
    assert_eq!(
        found.path,
        PathBuf::from(format!("/proc/{}/root{in_process}", python.pid()))
    );

    let mut ring = RingBuf::create(1 << 18, "usdt_ns").unwrap();
    let prog = record_program(&ring, &found.sites[0], RETURN_TAG, true);
    let links = attach(&prog, &found.sites, python.pid());
    python.go_and_wait();
    drop(links);
    assert_eq!(python.read_stdout_line(), "ok");
    let events = drain(&mut ring, python.pid());
    assert_eq!(module_returns(&events, &python.script), 1, "{events:?}");
}

#[test]
fn probe_file_of_a_python_replaced_while_running() {
    if !kernel_available("probe_file_of_a_python_replaced_while_running") {
        return;
    }
    // A copy of python3.11 is started, then replaced by another file at the same path, as an
    // upgrade does: the probes must be found, and attached, in the file the process runs.
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join("python3.11");
    std::fs::copy(PYTHON, &copy).unwrap();
    let mut python = PythonChild::start_with("", "print('ok')\n", |script| {
        let mut command = Command::new(&copy);
        command.arg(script).env("PYTHONHOME", "/usr");
        command
    });
    std::fs::remove_file(&copy).unwrap();
    std::fs::write(&copy, b"not the interpreter").unwrap();

    let found = find_probe_file(python.pid(), "python", "function__return").unwrap();
    assert_eq!(found.path_in_process, copy.to_str().unwrap());
    assert!(found.deleted);
    let map_files = format!("/proc/{}/map_files/", python.pid());
    assert!(found.path.starts_with(&map_files), "{:?}", found.path);

    let mut ring = RingBuf::create(1 << 18, "usdt_replaced").unwrap();
    let prog = record_program(&ring, &found.sites[0], RETURN_TAG, true);
    let links = attach(&prog, &found.sites, python.pid());
    python.go_and_wait();
    drop(links);
    assert_eq!(python.read_stdout_line(), "ok");
    let events = drain(&mut ring, python.pid());
    assert_eq!(module_returns(&events, &python.script), 1, "{events:?}");
}

/// A pyenv CPython 3.11 (built --enable-shared, without USDT markers) from the machine image.
fn pyenv_python_3_11() -> Option<PathBuf> {
    let versions = std::fs::read_dir("/root/.pyenv/versions").ok()?;
    versions
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("3.11."))
        .map(|entry| entry.path().join("bin/python3.11"))
        .find(|path| path.exists())
}

#[test]
fn probes_in_libpython_when_the_executable_has_none() {
    if !kernel_available("probes_in_libpython_when_the_executable_has_none") {
        return;
    }
    let Some(host) = pyenv_python_3_11() else {
        eprintln!("probes_in_libpython_when_the_executable_has_none: skipped: no pyenv 3.11");
        return;
    };
    // The layout of Fedora and other shared builds: an executable without markers, running
    // the interpreter from libpython3.11.so. Debian's libpython (with markers) is preloaded in
    // place of pyenv's own, which has the same soname.
    let libpython = "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0";
    let mut python = PythonChild::start_with("", CALLS, |script| {
        let mut command = Command::new(&host);
        command
            .arg(script)
            .env("LD_PRELOAD", libpython)
            .env("PYTHONHOME", "/usr");
        command
    });
    let found = find_probe_file(python.pid(), "python", "function__return").unwrap();
    assert_eq!(found.path_in_process, libpython);
    let site = &found.sites[0];
    let semaphore = site.semaphore.expect("libpython's probes have semaphores");
    assert_ne!(semaphore.address, semaphore.file_offset);

    let maps = ProcessMaps::read(python.pid()).unwrap();
    let address = maps
        .address_of(libpython, semaphore.file_offset)
        .expect("the semaphore's page is mapped");
    let mut ring = RingBuf::create(1 << 18, "usdt_libpython").unwrap();
    let prog = record_program(&ring, site, RETURN_TAG, true);
    let links = attach(&prog, &found.sites, python.pid());
    assert_eq!(read_semaphore(python.pid(), address), 1);
    python.go_and_wait();
    drop(links);

    let events = drain(&mut ring, python.pid());
    assert_eq!(
        script_calls(&events, &python.script, RETURN_TAG),
        expected_returns_of_calls()
    );
}

/// Waits up to `limit` for `test` of the u16 at `address` in `pid`, and returns its last value.
fn wait_for_semaphore(pid: u32, address: u64, limit: Duration, test: impl Fn(u16) -> bool) -> u16 {
    let start = std::time::Instant::now();
    loop {
        let value = read_semaphore(pid, address);
        if test(value) || start.elapsed() > limit {
            return value;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The byte at `offset` of the file at `path`, and the byte the process shows there.
fn file_and_memory_byte(pid: u32, path: &str, offset: u64) -> (u8, u8) {
    let address = ProcessMaps::read(pid)
        .unwrap()
        .address_of(path, offset)
        .expect("the offset is mapped");
    let mut file = [0u8];
    std::fs::File::open(path)
        .unwrap()
        .read_exact_at(&mut file, offset)
        .unwrap();
    let mut memory = [0u8];
    std::fs::File::open(format!("/proc/{pid}/mem"))
        .unwrap()
        .read_exact_at(&mut memory, address)
        .unwrap();
    (file[0], memory[0])
}

#[test]
fn an_idle_line_probe_holds_its_semaphore_without_a_breakpoint_until_dtk_is_killed() {
    if !kernel_available(
        "an_idle_line_probe_holds_its_semaphore_without_a_breakpoint_until_dtk_is_killed",
    ) {
        return;
    }
    const INT3: u8 = 0xcc;
    let tracefs_events =
        || std::fs::read_to_string(tracefs::root().unwrap().join("uprobe_events")).unwrap();
    let events_before = tracefs_events();
    let line = python_probe("line");
    let semaphore = line[0].semaphore.expect("line has a semaphore");
    let holder = semaphore_holder(Path::new(PYTHON), semaphore.file_offset)
        .unwrap()
        .expect("python3.11 has padding between functions");
    let mut python = PythonChild::start("pass\n");
    let pid = python.pid();
    assert_eq!(read_semaphore(pid, semaphore.address), 0);
    let mut dtk = Command::new(env!("CARGO_BIN_EXE_dtk"))
        .args(["--backend", "linux", "run", "-p", &pid.to_string(), "-n"])
        .arg("python$target:::line /0/ { }")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let held = wait_for_semaphore(pid, semaphore.address, Duration::from_secs(30), |v| v > 0);
    assert_eq!(held, 1, "dtk raised the line semaphore");
    // The breakpoint is at the holder, and at none of line's sites.
    let (file, memory) = file_and_memory_byte(pid, PYTHON, holder);
    assert_ne!(file, INT3);
    assert_eq!(memory, INT3, "the holder at {holder:#x} has the breakpoint");
    for site in &line {
        let (file, memory) = file_and_memory_byte(pid, PYTHON, site.file_offset);
        assert_eq!(
            memory, file,
            "no breakpoint at line's site {:#x}",
            site.file_offset
        );
    }
    // SIGKILL: dtk cannot clean up; the kernel lowers the semaphore as the uprobe goes.
    dtk.kill().unwrap();
    dtk.wait().unwrap();
    let after = wait_for_semaphore(pid, semaphore.address, Duration::from_secs(30), |v| v == 0);
    assert_eq!(after, 0, "the kernel restored the semaphore after SIGKILL");
    let (file, memory) = file_and_memory_byte(pid, PYTHON, holder);
    assert_eq!(memory, file, "the holder's breakpoint is gone");
    assert_eq!(tracefs_events(), events_before);
    python.go_and_wait();
}
