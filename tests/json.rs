//! `-o json` of every command, line by line, against README.md's "JSON output" table: each
//! line parses, has its `type` and the fields documented for it, with values of the documented
//! kind; what was not measured is null; `ts_ns` is the monotonic clock and `walltime_ns` the
//! wall clock, both checked against the clocks the test reads around the run; and the values
//! are those of workloads whose numbers the test knows (aggregations computed here from the
//! same inputs).

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::util::kernel_available;

const PYTHON: &str = "/usr/bin/python3.11";

/// The kind of value a documented field holds.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Int,
    Str,
    Bool,
    Array,
    Object,
    Null,
    /// Null, or an integer.
    IntOrNull,
    StrOrNull,
}

impl Kind {
    fn accepts(self, v: &Value) -> bool {
        match self {
            Kind::Int => v.is_i64() || v.is_u64(),
            Kind::Str => v.is_string(),
            Kind::Bool => v.is_boolean(),
            Kind::Array => v.is_array(),
            Kind::Object => v.is_object(),
            Kind::Null => v.is_null(),
            Kind::IntOrNull => v.is_null() || Kind::Int.accepts(v),
            Kind::StrOrNull => v.is_null() || v.is_string(),
        }
    }
}

use Kind::*;

/// Asserts that `line` has type `kind` and exactly `fields`, each of its kind.
fn check(line: &Value, kind: &str, fields: &[(&str, Kind)]) {
    assert_eq!(line["type"], kind, "{line}");
    let object = line.as_object().unwrap();
    let mut names: Vec<&str> = object.keys().map(String::as_str).collect();
    let mut documented: Vec<&str> = fields.iter().map(|(n, _)| *n).chain(["type"]).collect();
    names.sort_unstable();
    documented.sort_unstable();
    assert_eq!(names, documented, "the fields of {line}");
    for (name, k) in fields {
        assert!(k.accepts(&line[name]), "{name} should be {k:?} in {line}");
    }
}

/// Runs `dtk --backend linux -o json ARGS`; returns its stdout as JSON lines (every line must
/// parse).
fn json_run(args: &[&str]) -> Vec<Value> {
    json_run_exiting(args, 0)
}

/// `json_run`, where dtk must exit with `status` (that of a -c command).
fn json_run_exiting(args: &[&str], status: i32) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_dtk"))
        .args(["--backend", "linux", "-o", "json"])
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("TERM")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(status),
        "dtk {args:?}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The monotonic clock (D's `timestamp`), in nanoseconds.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// The clocks read before and after a run, and a check that a time lies between them.
struct Clocks {
    monotonic: (u64, u64),
    wall: (u64, u64),
}

impl Clocks {
    fn around<T>(run: impl FnOnce() -> T) -> (Clocks, T) {
        let (m0, w0) = (monotonic_ns(), wall_ns());
        let out = run();
        let clocks = Clocks {
            monotonic: (m0, monotonic_ns()),
            wall: (w0, wall_ns()),
        };
        (clocks, out)
    }

    fn check_ts(&self, line: &Value) {
        let ts = line["ts_ns"].as_u64().unwrap();
        assert!(
            (self.monotonic.0..=self.monotonic.1).contains(&ts),
            "ts_ns is the monotonic clock: {line}"
        );
    }

    fn check_walltime(&self, line: &Value) {
        let ts = line["walltime_ns"].as_u64().unwrap();
        assert!(
            (self.wall.0..=self.wall.1).contains(&ts),
            "walltime_ns is the wall clock: {line}"
        );
    }
}

/// A script file in a fresh directory (kept alive by the returned guard).
fn script_file(name: &str, code: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, code).unwrap();
    let path = path.to_str().unwrap().to_string();
    (dir, path)
}

#[test]
fn json_pyflow_lines_have_the_documented_fields() {
    if !kernel_available("json_pyflow_lines_have_the_documented_fields") {
        return;
    }
    let (_dir, script) = script_file(
        "calls.py",
        "def f():\n    pass\n\nfor _ in range(3):\n    f()\n",
    );
    let command = format!("{PYTHON} {script}");
    let (clocks, lines) = Clocks::around(|| json_run(&["pyflow", "--summary", "-c", &command]));
    let flow: Vec<&Value> = lines.iter().filter(|l| l["type"] == "flow").collect();
    for line in &flow {
        check(
            line,
            "flow",
            &[
                ("ts_ns", Int),
                ("delta_us", Int),
                ("pid", Int),
                ("tid", Int),
                ("kind", Str),
                ("depth", Int),
                ("file", Str),
                ("line", Int),
                ("function", Str),
            ],
        );
        clocks.check_ts(line);
    }
    let calls_of_f = flow
        .iter()
        .filter(|l| l["function"] == "f" && l["kind"] == "entry")
        .count();
    assert_eq!(calls_of_f, 3);
    let summary: Vec<&Value> = lines.iter().filter(|l| l["type"] == "summary").collect();
    assert_eq!(flow.len() + summary.len(), lines.len(), "{lines:#?}");
    for line in &summary {
        check(
            line,
            "summary",
            &[
                ("function", Str),
                ("file", Str),
                ("line", Int),
                ("calls", Int),
                ("incl_us", Int),
                ("excl_us", Int),
            ],
        );
    }
    let f = summary.iter().find(|l| l["function"] == "f").unwrap();
    assert_eq!((&f["calls"], &f["line"]), (&json!(3), &json!(1)));
}

const OPEN_FIELDS: [(&str, Kind); 10] = [
    ("ts_ns", Int),
    ("walltime_ns", Int),
    ("zone", Str),
    ("pid", Int),
    ("tid", Int),
    ("comm", Str),
    ("fd", IntOrNull),
    ("errno", StrOrNull),
    ("flags", Array),
    ("path", Str),
];

#[test]
fn json_opens_lines_have_the_documented_fields() {
    if !kernel_available("json_opens_lines_have_the_documented_fields") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let present = dir.path().join("present");
    std::fs::write(&present, "").unwrap();
    let missing = dir.path().join("missing");
    let command = format!("cat {} {}", present.display(), missing.display());
    // cat fails on the missing file, and dtk exits with its status.
    let status = Command::new("cat")
        .args([&present, &missing])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .code()
        .unwrap();
    let run = |args: &[&str]| json_run_exiting(args, status);
    let (clocks, lines) = Clocks::around(|| run(&["opens", "-c", &command]));
    for line in &lines {
        check(line, "open", &OPEN_FIELDS);
        clocks.check_ts(line);
        clocks.check_walltime(line);
    }
    let of = |path: &std::path::Path| {
        lines
            .iter()
            .find(|l| l["path"] == path.to_str().unwrap())
            .unwrap_or_else(|| panic!("no open of {}: {lines:#?}", path.display()))
    };
    assert_eq!(
        (&of(&present)["errno"], &of(&present)["flags"]),
        (&Value::Null, &json!(["O_RDONLY"]))
    );
    assert_eq!(
        (&of(&missing)["fd"], &of(&missing)["errno"]),
        (&Value::Null, &json!("ENOENT"))
    );

    // --full adds `resolved`; absolute paths need no resolving.
    let mut full_fields = OPEN_FIELDS.to_vec();
    full_fields.push(("resolved", Bool));
    for line in run(&["opens", "--full", "-c", &command]) {
        check(&line, "open", &full_fields);
        assert_eq!(line["resolved"], true, "{line}");
    }

    let counts = run(&["opens", "--count", "path", "-c", &command]);
    for line in &counts {
        check(line, "count", &[("path", Str), ("count", Int)]);
    }
    let present_count = counts
        .iter()
        .find(|l| l["path"] == present.to_str().unwrap())
        .unwrap();
    assert_eq!(present_count["count"], 1);
    for line in run(&["opens", "--count", "process", "-c", &command]) {
        check(&line, "count", &[("process", Str), ("count", Int)]);
    }
}

/// 200 getppid calls, then 50 failed opens (ENOTDIR).
const KNOWN_CALLS: &str = "import os
for _ in range(200):
    os.getppid()
for _ in range(50):
    try:
        os.open('/etc/hostname', os.O_RDONLY | os.O_DIRECTORY)
    except NotADirectoryError:
        pass
";

/// The one table of `dtk -o json syscalls ARGS -c WORKLOAD`, checked against the documented
/// fields, with each row's fields checked as measured (`Int`, `Object`, …) or not (`Null`).
fn syscalls_table(args: &[&str], workload: &str, row_kinds: [Kind; 7]) -> Vec<Value> {
    let mut argv = vec!["syscalls"];
    argv.extend(args);
    argv.extend(["-c", workload]);
    let (clocks, lines) = Clocks::around(|| json_run(&argv));
    let tables: Vec<&Value> = lines.iter().filter(|l| l["type"] == "table").collect();
    let [table] = tables.as_slice() else {
        panic!("one table: {lines:#?}");
    };
    check(
        table,
        "table",
        &[
            ("walltime_ns", IntOrNull),
            ("interval_s", IntOrNull),
            ("rows", Array),
        ],
    );
    if !table["walltime_ns"].is_null() {
        clocks.check_walltime(table);
    }
    let names = [
        "pid", "comm", "syscall", "count", "total_ns", "errors", "errnos",
    ];
    let rows = table["rows"].as_array().unwrap().clone();
    for row in &rows {
        let fields: Vec<(&str, Kind)> = names.into_iter().zip(row_kinds).collect();
        let mut row = row.clone();
        row["type"] = json!("row");
        check(&row, "row", &fields);
    }
    rows
}

fn syscall_row<'a>(rows: &'a [Value], call: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["syscall"] == call)
        .unwrap_or_else(|| panic!("no {call} row in {rows:#?}"))
}

#[test]
fn json_syscalls_leaves_what_it_did_not_measure_null() {
    if !kernel_available("json_syscalls_leaves_what_it_did_not_measure_null") {
        return;
    }
    let (_dir, script) = script_file("calls.py", KNOWN_CALLS);
    let workload = format!("{PYTHON} {script}");
    let plain = syscalls_table(&[], &workload, [Null, Null, Str, Int, Null, Null, Null]);
    assert_eq!(syscall_row(&plain, "getppid")["count"], 200);

    let timed = syscalls_table(&["-L"], &workload, [Null, Null, Str, Int, Int, Null, Null]);
    assert!(syscall_row(&timed, "getppid")["total_ns"].as_i64().unwrap() > 0);

    let errors = syscalls_table(
        &["-e"],
        &workload,
        [Null, Null, Str, Int, Null, Int, Object],
    );
    let openat = syscall_row(&errors, "openat");
    assert_eq!(openat["errnos"]["ENOTDIR"], 50, "{openat}");
    assert_eq!(syscall_row(&errors, "getppid")["errors"], 0);

    let by_process = syscalls_table(&["-P"], &workload, [Int, Str, Str, Int, Null, Null, Null]);
    assert_eq!(syscall_row(&by_process, "getppid")["comm"], "python3.11");
}

#[test]
fn json_syscalls_hist_is_json_with_every_call_in_its_buckets() {
    if !kernel_available("json_syscalls_hist_is_json_with_every_call_in_its_buckets") {
        return;
    }
    let (_dir, script) = script_file("calls.py", KNOWN_CALLS);
    let workload = format!("{PYTHON} {script}");
    let lines = json_run(&["syscalls", "--hist", "getppid", "-c", &workload]);
    let hists: Vec<&Value> = lines.iter().filter(|l| l["type"] == "histogram").collect();
    let [hist] = hists.as_slice() else {
        panic!("one histogram: {lines:#?}");
    };
    check(
        hist,
        "histogram",
        &[("syscall", Str), ("unit", Str), ("buckets", Array)],
    );
    assert_eq!(
        (&hist["syscall"], &hist["unit"]),
        (&json!("getppid"), &json!("ns"))
    );
    let mut calls = 0;
    for bucket in hist["buckets"].as_array().unwrap() {
        let (min, max, count) = (
            bucket["min"].as_i64().unwrap(),
            bucket["max"].as_i64().unwrap(),
            bucket["count"].as_i64().unwrap(),
        );
        // A quantize bucket above zero holds [2^k, 2^(k+1)).
        assert!(
            min > 0 && min.count_ones() == 1 && max == 2 * min - 1,
            "{bucket}"
        );
        calls += count;
    }
    assert_eq!(calls, 200, "every getppid call is in a bucket: {hist}");
    // --hist times calls, so the table has their total time.
    let table = lines.iter().find(|l| l["type"] == "table").unwrap();
    let row = syscall_row(table["rows"].as_array().unwrap(), "getppid");
    assert!(row["total_ns"].as_i64().unwrap() > 0, "{row}");
    assert_eq!(row["errors"], Value::Null);
}

#[test]
fn json_syscalls_intervals_carry_the_wall_clock() {
    if !kernel_available("json_syscalls_intervals_carry_the_wall_clock") {
        return;
    }
    let workload = "sleep 1.5";
    let (clocks, lines) = Clocks::around(|| json_run(&["syscalls", "-i", "1", "-c", workload]));
    assert!(!lines.is_empty());
    for table in &lines {
        check(
            table,
            "table",
            &[
                ("walltime_ns", IntOrNull),
                ("interval_s", Int),
                ("rows", Array),
            ],
        );
        assert_eq!(table["interval_s"], 1);
    }
    clocks.check_walltime(&lines[0]);
}

/// The values `dtk run` aggregates below, and what each aggregating function makes of them,
/// computed here.
const VALUES: [i64; 8] = [0, 1, 7, 100, 999, 1000, 5000, 123_456];
const OFFSET: i64 = 1_000_000;

/// The D program: every lseek of the workload whose offset is OFFSET + v aggregates v.
const PROGRAM: &str = "syscall::lseek:entry /pid == $target && (int64_t)arg1 >= 1000000/
{
	this->v = (int64_t)arg1 - 1000000;
	printf(\"v=%d\\n\", this->v);
	trace(this->v);
	@count = count(); @sum = sum(this->v); @min = min(this->v); @max = max(this->v);
	@avg = avg(this->v); @sd = stddev(this->v); @q = quantize(this->v);
	@lq = lquantize(this->v, 0, 1000, 100); @llq = llquantize(this->v, 10, 0, 4, 10);
	@parity[this->v % 2] = count();
}
END
{
	printa(\"%d %@d\\n\", @parity);
	printa(@count);
}";

/// (min, max) of the quantize bucket of v.
fn quantize_bucket(v: i64) -> (i64, i64) {
    match v {
        0 => (0, 0),
        v => {
            let low = 1i64 << (63 - v.leading_zeros());
            (low, 2 * low - 1)
        }
    }
}

fn lquantize_bucket(v: i64) -> (i64, i64) {
    match v {
        v if v < 0 => (i64::MIN, -1),
        v if v >= 1000 => (1000, i64::MAX),
        v => (v / 100 * 100, v / 100 * 100 + 99),
    }
}

/// llquantize(v, 10, 0, 4, 10): below 1 one bucket; in [10^k, 10^(k+1)) buckets of 10^k (of 1
/// for k = 0); from 10^5 up one bucket.
fn llquantize_bucket(v: i64) -> (i64, i64) {
    if v < 1 {
        return (i64::MIN, 0);
    }
    if v >= 100_000 {
        return (100_000, i64::MAX);
    }
    let step = 10i64.pow(v.ilog10());
    (v / step * step, v / step * step + step - 1)
}

/// The buckets of `values` under `bucket`, as JSON, ascending.
fn buckets(bucket: fn(i64) -> (i64, i64)) -> Value {
    let mut counts = std::collections::BTreeMap::new();
    for v in VALUES {
        *counts.entry(bucket(v)).or_insert(0) += 1;
    }
    counts
        .into_iter()
        .map(|((min, max), count)| json!({"min": min, "max": max, "count": count}))
        .collect()
}

#[test]
fn json_run_prints_every_action_and_aggregation_as_json() {
    if !kernel_available("json_run_prints_every_action_and_aggregation_as_json") {
        return;
    }
    let seeks: Vec<String> = VALUES.iter().map(|v| (v + OFFSET).to_string()).collect();
    let (_dir, script) = script_file(
        "seeks.py",
        &format!(
            "import os\nfd = os.open('/dev/null', os.O_RDONLY)\nfor v in [{}]:\n    os.lseek(fd, v, 0)\n",
            seeks.join(", ")
        ),
    );
    let workload = format!("{PYTHON} {script}");
    let (clocks, lines) = Clocks::around(|| json_run(&["run", "-n", PROGRAM, "-c", &workload]));
    let of = |kind: &str| -> Vec<&Value> { lines.iter().filter(|l| l["type"] == kind).collect() };
    let origin = [("probe", Object), ("cpu", Int), ("ts_ns", Int)];

    let printfs = of("printf");
    let mut fields = origin.to_vec();
    fields.extend([("text", Str), ("args", Array)]);
    for line in &printfs {
        check(line, "printf", &fields);
        clocks.check_ts(line);
        let v = line["args"][0].as_i64().unwrap();
        assert_eq!(line["text"], format!("v={v}\n"));
        assert_eq!(line["probe"]["function"], "lseek");
    }
    let printed: Vec<i64> = printfs
        .iter()
        .map(|l| l["args"][0].as_i64().unwrap())
        .collect();
    assert_eq!(printed, VALUES);

    let mut fields = origin.to_vec();
    fields.push(("values", Array));
    let traces = of("trace");
    for line in &traces {
        check(line, "trace", &fields);
        clocks.check_ts(line);
    }
    let traced: Vec<Value> = traces.iter().map(|l| l["values"][0].clone()).collect();
    assert_eq!(traced, VALUES.map(|v| json!(v)));

    // printa with a format: one line per key, with the key and the value apart.
    let mut fields = origin.to_vec();
    fields.extend([
        ("text", Str),
        ("aggregations", Array),
        ("keys", Array),
        ("values", Array),
    ]);
    let rows = of("printa");
    for line in &rows {
        check(line, "printa", &fields);
        assert_eq!(line["aggregations"], json!(["parity"]));
        let (key, count) = (&line["keys"][0], &line["values"][0]["value"]);
        let expected = VALUES.iter().filter(|v| json!(*v % 2) == *key).count();
        assert_eq!(count, &json!(expected), "{line}");
        assert_eq!(line["text"], format!("{key} {count}\n"));
    }
    assert_eq!(rows.len(), 2);

    let aggregations = of("aggregation");
    assert_eq!(
        printfs.len() + traces.len() + rows.len() + aggregations.len(),
        lines.len(),
        "every line has a documented type"
    );
    let agg = |name: &str| -> &Value {
        let found: Vec<&&Value> = aggregations.iter().filter(|a| a["name"] == name).collect();
        let [one] = found.as_slice() else {
            panic!("one aggregation {name}: {aggregations:#?}");
        };
        check(
            one,
            "aggregation",
            &[
                ("name", Str),
                ("function", Str),
                ("final", Bool),
                ("entries", Array),
            ],
        );
        let entries = one["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{one}");
        assert_eq!(entries[0]["keys"], json!([]));
        &one["entries"][0]
    };
    let n = VALUES.len() as i64;
    let total: i64 = VALUES.iter().sum();
    let mean = total / n;
    let mean_of_squares = VALUES.iter().map(|v| (v * v) as i128).sum::<i128>() / n as i128;
    let stddev = ((mean_of_squares - (mean * mean) as i128) as f64).sqrt() as i64;
    assert_eq!(agg("count"), &json!({"keys": [], "value": n}));
    assert_eq!(agg("sum"), &json!({"keys": [], "value": total}));
    assert_eq!(agg("min"), &json!({"keys": [], "value": 0}));
    assert_eq!(agg("max"), &json!({"keys": [], "value": 123_456}));
    assert_eq!(
        agg("avg"),
        &json!({"keys": [], "value": mean, "count": n, "total": total})
    );
    assert_eq!(
        agg("sd"),
        &json!({"keys": [], "value": stddev, "count": n, "total": total})
    );
    assert_eq!(
        agg("q"),
        &json!({"keys": [], "buckets": buckets(quantize_bucket)})
    );
    assert_eq!(
        agg("lq"),
        &json!({"keys": [], "base": 0, "limit": 1000, "step": 100, "buckets": buckets(lquantize_bucket)})
    );
    assert_eq!(
        agg("llq"),
        &json!({"keys": [], "factor": 10, "low": 0, "high": 4, "nsteps": 10, "buckets": buckets(llquantize_bucket)})
    );
    // printa(@count) in END prints it once, not final; the rest print at the end.
    for a in &aggregations {
        assert_eq!(a["final"], a["name"] != "count", "{a}");
    }
    let functions: Vec<&str> = aggregations
        .iter()
        .map(|a| a["function"].as_str().unwrap())
        .collect();
    for f in [
        "count",
        "sum",
        "min",
        "max",
        "avg",
        "stddev",
        "quantize",
        "lquantize",
        "llquantize",
    ] {
        assert!(functions.contains(&f), "{f} in {functions:?}");
    }
}

#[test]
fn json_list_and_run_l_lines_have_the_documented_fields() {
    let scripts = json_run(&["list"]);
    assert!(!scripts.is_empty());
    for line in &scripts {
        check(line, "script", &[("name", Str), ("description", Str)]);
    }
    if !kernel_available("json_list_and_run_l_lines_have_the_documented_fields") {
        return;
    }
    let probes = json_run(&["run", "-l", "-n", "syscall::getppid:"]);
    let fields = [
        ("id", Int),
        ("provider", Str),
        ("module", Str),
        ("function", Str),
        ("name", Str),
    ];
    for line in &probes {
        check(line, "probe", &fields);
    }
    let names: Vec<&Value> = probes.iter().map(|p| &p["name"]).collect();
    assert_eq!(names, [&json!("entry"), &json!("return")]);
}
