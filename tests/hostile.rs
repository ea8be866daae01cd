//! Text that traced programs cannot forge: file names, process names and Python function
//! names chosen to attack the reader (a newline that forges an output line, ESC and OSC
//! sequences that recolour the terminal or set its title, bytes that are not UTF-8), traced
//! through opens, `syscalls -P`, pyflow and run. Text output must carry no raw control byte
//! and show each name as its visible escape; JSON must give back the exact bytes.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output};

use assert_cmd::cargo::cargo_bin;
use dtk::internals::base64;
use serde_json::{json, Value};

use crate::util::{kernel_available, Tmux};

const PYTHON: &str = "/usr/bin/python3.11";

/// Hostile file names, each with the form text output must show it in (README, "Names in
/// text output").
const NAMES: [(&[u8], &str); 5] = [
    (
        b"x\n  99999  fake  3  FAKE-LINE",
        "x\\n  99999  fake  3  FAKE-LINE",
    ),
    (b"\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
    (b"\x1b]0;owned title\x07", "\\x1b]0;owned title\\x07"),
    (b"bad\xff\xfe", "bad\\xff\\xfe"),
    (b"back\\slash\ttab", "back\\\\slash\\ttab"),
];

/// A process name (at most 15 bytes, the kernel's limit) with an OSC title sequence, a
/// newline and a byte that is not UTF-8, and its escaped form.
const COMM: (&[u8], &str) = (b"ev\x1b]0;T\x07\n\xff", "ev\\x1b]0;T\\x07\\n\\xff");

/// The dtk binary on the linux back end, with the variables that change its output removed.
fn dtk() -> Command {
    let mut cmd = Command::new(cargo_bin("dtk"));
    cmd.args(["--backend", "linux"])
        .env_remove("NO_COLOR")
        .env_remove("TERM");
    cmd
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A python3.11 program that names its thread `COMM` (prctl PR_SET_NAME) and then runs `body`.
fn workload(dir: &Path, body: &str) -> String {
    let script = dir.join("work.py");
    let code = format!(
        "import ctypes, os\n\
         ctypes.CDLL(None).prctl(15, ctypes.c_char_p(bytes.fromhex({:?})), 0, 0, 0)\n\
         {body}\n",
        hex(COMM.0)
    );
    std::fs::write(&script, code).unwrap();
    format!("{PYTHON} {}", script.display())
}

/// The hostile files, created in `dir`/names, and a workload that opens each of them: the
/// paths, the directory that holds them, and the workload's command.
fn files_and_opener(dir: &Path) -> (Vec<Vec<u8>>, String, String) {
    let names = dir.join("names");
    std::fs::create_dir(&names).unwrap();
    let mut paths = Vec::new();
    for (name, _) in NAMES {
        let path = [names.as_os_str().as_bytes(), b"/", name].concat();
        std::fs::write(OsStr::from_bytes(&path), "x").unwrap();
        paths.push(path);
    }
    let list: Vec<String> = paths
        .iter()
        .map(|p| format!("bytes.fromhex({:?})", hex(p)))
        .collect();
    let body = format!(
        "for p in [{}]:\n    os.close(os.open(p, os.O_RDONLY))",
        list.join(", ")
    );
    let command = workload(dir, &body);
    (paths, names.to_str().unwrap().to_string(), command)
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Checks that `out` is UTF-8 text in which no control character but the line ends appears:
/// nothing a terminal would act on, and no line a traced name could have forged.
fn assert_safe_text(out: &[u8], what: &str) -> String {
    let text = std::str::from_utf8(out)
        .unwrap_or_else(|e| panic!("{what}: output is not UTF-8 ({e}):\n{out:?}"));
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| c != '\n' && (c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)))
        .collect();
    assert!(bad.is_empty(), "{what}: raw controls {bad:?} in:\n{text}");
    text.to_string()
}

/// A traced string as JSON must carry it: a string when it is UTF-8, else its bytes.
fn json_of(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => json!(s),
        Err(_) => json!({ "bytes": base64(bytes) }),
    }
}

fn json_lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8(out.to_vec())
        .expect("JSON output is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn opens_shows_hostile_names_escaped_and_gives_their_bytes_in_json() {
    if !kernel_available("opens_shows_hostile_names_escaped_and_gives_their_bytes_in_json") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (paths, dir_text, command) = files_and_opener(dir.path());

    let out = run(dtk().args(["opens", "-c", &command]), "dtk opens");
    let text = assert_safe_text(&out.stdout, "opens");
    for (_, shown) in NAMES {
        let want = format!("{dir_text}/{shown}");
        let line = text
            .lines()
            .find(|l| l.ends_with(&want))
            .unwrap_or_else(|| panic!("no line ends with {want:?}:\n{text}"));
        assert!(line.contains(COMM.1), "comm not shown escaped: {line:?}");
    }
    // The forged line does not exist: its text only appears inside the real line.
    for line in text.lines().filter(|l| l.contains("FAKE-LINE")) {
        assert!(line.contains(&dir_text), "a forged line: {line:?}");
    }

    let out = run(
        dtk().args(["-o", "json", "opens", "-c", &command]),
        "dtk -o json opens",
    );
    let events = json_lines(&out.stdout);
    for path in &paths {
        let want = json_of(path);
        let e = events
            .iter()
            .find(|e| e["path"] == want)
            .unwrap_or_else(|| panic!("no open of {want} in {events:#?}"));
        assert_eq!(e["comm"], json_of(COMM.0), "{e}");
        assert!(e["fd"].is_u64(), "{e}");
    }
}

/// On a real terminal (tmux), with colour on: the escapes are what the screen shows, and
/// the names changed neither the window title nor the colours of the text after them.
#[test]
fn opens_on_a_terminal_shows_escapes_and_leaves_the_title_alone() {
    if !kernel_available("opens_on_a_terminal_shows_escapes_and_leaves_the_title_alone") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, dir_text, command) = files_and_opener(dir.path());
    let tmux = Tmux::start(&format!(
        "{} --backend linux opens -c '{command}'; echo dtk exited $?; sleep 60",
        cargo_bin("dtk").display()
    ));
    let title = tmux.title();
    let screen = tmux.wait_for("dtk's exit", |s| s.contains("dtk exited"));
    assert!(screen.contains("dtk exited 0"), "{screen}");
    for (_, shown) in NAMES {
        let want = format!("{dir_text}/{shown}");
        assert!(
            screen.lines().any(|l| l.trim_end().ends_with(&want)),
            "{want:?} is not on the screen:\n{screen}"
        );
    }
    assert!(screen.contains(COMM.1), "{screen}");
    for line in screen.lines().filter(|l| l.contains("FAKE-LINE")) {
        assert!(line.contains(&dir_text), "a forged line: {line:?}");
    }
    assert_eq!(tmux.title(), title, "a traced name set the window title");
}

#[test]
fn syscalls_by_process_shows_a_hostile_comm_escaped_and_exact_in_json() {
    if !kernel_available("syscalls_by_process_shows_a_hostile_comm_escaped_and_exact_in_json") {
        return;
    }
    const CALLS: u64 = 300;
    let dir = tempfile::tempdir().unwrap();
    let command = workload(
        dir.path(),
        &format!("for _ in range({CALLS}):\n    os.getppid()"),
    );

    let out = run(
        dtk().args(["syscalls", "-P", "-c", &command]),
        "dtk syscalls -P",
    );
    let text = assert_safe_text(&out.stdout, "syscalls -P");
    let line = text
        .lines()
        .find(|l| l.contains(COMM.1) && l.contains("getppid"))
        .unwrap_or_else(|| panic!("no getppid row of {:?}:\n{text}", COMM.1));
    let count: u64 = line
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"));
    assert!(count >= CALLS, "{line:?}");

    let out = run(
        dtk().args(["-o", "json", "syscalls", "-P", "-c", &command]),
        "dtk -o json syscalls -P",
    );
    let tables = json_lines(&out.stdout);
    let rows: Vec<&Value> = tables
        .iter()
        .flat_map(|t| t["rows"].as_array().unwrap())
        .collect();
    let row = rows
        .iter()
        .find(|r| r["syscall"] == "getppid" && r["comm"] == json_of(COMM.0))
        .unwrap_or_else(|| panic!("no getppid row of the hostile comm in {rows:#?}"));
    assert!(row["count"].as_u64().unwrap() >= CALLS, "{row}");
}

#[test]
fn pyflow_shows_a_hostile_function_name_escaped_and_exact_in_json() {
    if !kernel_available("pyflow_shows_a_hostile_function_name_escaped_and_exact_in_json") {
        return;
    }
    const CALLS: usize = 3;
    let name = "evil\n\x1b[2J\u{202e}name";
    let shown = "evil\\n\\x1b[2J\\u{202e}name";
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("names.py");
    std::fs::write(
        &script,
        format!(
            "import types\n\
             def plain():\n    return 1\n\
             name = bytes.fromhex({:?}).decode()\n\
             evil = types.FunctionType(plain.__code__.replace(co_name=name), {{}})\n\
             for _ in range({CALLS}):\n    evil()\n",
            hex(name.as_bytes())
        ),
    )
    .unwrap();
    let command = format!("{PYTHON} {}", script.display());

    let out = run(dtk().args(["pyflow", "-c", &command]), "dtk pyflow");
    let text = assert_safe_text(&out.stdout, "pyflow");
    let entries = text
        .lines()
        .filter(|l| l.contains(&format!("-> {shown}")))
        .count();
    assert_eq!(entries, CALLS, "{text}");
    assert!(!text.lines().any(|l| l.starts_with("name")), "{text}");

    let out = run(
        dtk().args(["-o", "json", "pyflow", "-c", &command]),
        "dtk -o json pyflow",
    );
    let events = json_lines(&out.stdout);
    let kinds: Vec<&str> = events
        .iter()
        .filter(|e| e["function"] == name)
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["entry", "return"].repeat(CALLS), "{events:#?}");
}

#[test]
fn run_escapes_traced_strings_in_text_and_keeps_their_bytes_in_json() {
    if !kernel_available("run_escapes_traced_strings_in_text_and_keeps_their_bytes_in_json") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (paths, dir_text, command) = files_and_opener(dir.path());
    let program = format!(
        "syscall::openat:entry /pid == $target && dirname(copyinstr(arg1)) == \"{dir_text}\"/ \
         {{ printf(\"open %s|\\n\", copyinstr(arg1)); trace(execname); @[copyinstr(arg1)] = count(); }}"
    );
    let out = run(
        dtk().args(["run", "-c", &command, "-n", &program]),
        "dtk run",
    );
    let text = assert_safe_text(&out.stdout, "run");
    // printf's own `\n` still ends each line; the traced newline does not. Each firing's
    // output follows its probe's `CPU ID FUNCTION:NAME` columns, as in dtrace(1).
    let opens: Vec<&str> = text
        .lines()
        .filter_map(|l| l.find(":entry open ").map(|at| &l[at + ":entry ".len()..]))
        .collect();
    assert_eq!(opens.len(), paths.len(), "{text}");
    for (_, shown) in NAMES {
        let path = format!("{dir_text}/{shown}");
        assert!(opens.contains(&format!("open {path}|").as_str()), "{text}");
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&path) && l.trim_end().ends_with('1')),
            "no aggregation row of {path:?}:\n{text}"
        );
    }
    assert!(
        text.contains(COMM.1),
        "trace(execname) not escaped:\n{text}"
    );
    assert!(!text
        .lines()
        .any(|l| l.contains("FAKE-LINE") && !l.contains(&dir_text)));

    let out = run(
        dtk().args(["-o", "json", "run", "-c", &command, "-n", &program]),
        "dtk -o json run",
    );
    let lines = json_lines(&out.stdout);
    let of_type = |t: &'static str| lines.iter().filter(move |l| l["type"] == t);
    for path in &paths {
        let printf = of_type("printf")
            .find(|l| l["args"][0] == json_of(path))
            .unwrap_or_else(|| panic!("no printf of {} in {lines:#?}", json_of(path)));
        let formatted = [&b"open "[..], path, b"|\n"].concat();
        assert_eq!(printf["text"], json_of(&formatted), "{printf}");
    }
    let traces: Vec<&Value> = of_type("trace").collect();
    assert_eq!(traces.len(), paths.len(), "{lines:#?}");
    for t in traces {
        assert_eq!(t["values"], json!([json_of(COMM.0)]), "{t}");
    }
    let keys: Vec<&Value> = of_type("aggregation")
        .flat_map(|a| a["entries"].as_array().unwrap())
        .map(|e| &e["keys"][0])
        .collect();
    for path in &paths {
        assert!(
            keys.contains(&&json_of(path)),
            "{} not a key: {keys:?}",
            json_of(path)
        );
    }
}
