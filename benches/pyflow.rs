//! Benchmarks of `dtk pyflow` against bpftrace doing the same, side by side in one run (as
//! root: `cargo bench --bench pyflow`), on Debian's /usr/bin/python3.11 (USDT):
//!
//! 1. overhead per Python call: fib(20) (21,891 calls, 43,782 events: within the ring buffer,
//!    so nothing is dropped) timed from inside the program (its CPU time), untraced, under
//!    `dtk pyflow -c`, and under a bpftrace script that prints the same fields from the same probes (with the
//!    `line` probe enabled too, as 3.11 needs for entries) and reads the same interpreter
//!    structures to tell resumes, yields and unwinds apart;
//! 2. what turning CPython 3.11's function-entry on costs by itself: the `line` semaphore
//!    held by dtk (a uprobe that never fires), against bpftrace's `line` probe attached at its
//!    sites (a trap on every line);
//! 3. events per second to a pipe without loss: fib(22) (57,313 calls, 114,626 events)
//!    through `dtk run` of d-scripts/pyflow.d with pyflow's parameters for this python3.11
//!    and a ring buffer large enough to hold them all, and through the bpftrace script; the
//!    rate is lines over the time from the first line to the last, read from the tracer's
//!    stdout by this program, and the lines missing are counted.
//!
//! Results are medians of RUNS runs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use dtk::internals::script::{bundled, Param, TargetMacro};
use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "common/stats.rs"]
mod stats;

use stats::{median, Result, Stats};

const RUNS: usize = 9;
const DTK: &str = env!("CARGO_BIN_EXE_dtk");
const PYTHON: &str = "/usr/bin/python3.11";

/// pyflow.d's clauses, in bpftrace: the same probes, the same fields, the same reads of
/// CPython 3.11's structures (TSTATE_CURRENT: the address of the running thread's state).
const BPFTRACE_FLOW: &str = r#"
usdt:/usr/bin/python3.11:python:function__entry {
    $f = *(uint64 *)uptr(*(uint64 *)uptr(*(uint64 *)uptr(TSTATE_CURRENT) + 56) + 8);
    $i = *(uint16 *)uptr(*(uint64 *)uptr($f + 56));
    $op = $i & 0xff;
    $r = (($op == 151 || $op == 150) && ($i >> 8) != 0) || $op == 86;
    printf("%d %d %d %s %s %d %s\n", nsecs, pid, tid, $r ? "y>" : "->", str(arg0), arg2,
        str(arg1));
}
usdt:/usr/bin/python3.11:python:function__return {
    $t = *(uint64 *)uptr(TSTATE_CURRENT);
    $f = *(uint64 *)uptr(*(uint64 *)uptr($t + 56) + 8);
    $u = *(uint64 *)uptr($t + 96) != 0;
    $y = !$u && *(uint8 *)uptr($f + 69) == 1 && *(int8 *)uptr($f - 5) < 0;
    printf("%d %d %d %s %s %d %s\n", nsecs, pid, tid, $u ? "<!" : ($y ? "<y" : "<-"),
        str(arg0), arg2, str(arg1));
}
usdt:/usr/bin/python3.11:python:line /0/ { }
"#;

fn main() -> Result<()> {
    let bpftrace = Command::new("bpftrace").arg("--version").output().is_ok();
    let dir = tempfile::tempdir()?;
    let timing = dir.path().join("t");
    let fib = |n: u32| -> String {
        format!("{PYTHON} {} {} {n}", workload().display(), timing.display())
    };
    let read_time = || -> Result<f64> { Ok(std::fs::read_to_string(&timing)?.trim().parse()?) };
    let calls = |n: u32| fib_calls(n);
    // pyflow.d as `dtk pyflow` runs it on this interpreter, and bpftrace's copy.
    let layout = dtk::internals::Build::read(Path::new(PYTHON))?
        .and_then(|build| build.marker_layout(None))
        .ok_or("python3.11's _PyRuntime was not found")?;
    let params: Vec<(&str, Param)> = layout
        .params()
        .into_iter()
        .map(|(name, value)| (name, Param::Int(value as i64)))
        .collect();
    let script = dir.path().join("pyflow.d");
    let text = bundled("pyflow")
        .ok_or("pyflow.d is bundled")?
        .instantiate(&params, TargetMacro::Keep)?
        .text;
    std::fs::write(&script, text)?;
    let bpftrace_flow =
        BPFTRACE_FLOW.replace("TSTATE_CURRENT", &format!("{:#x}", layout.tstate_current));
    println!("# pyflow vs bpftrace on python3.11 ({RUNS} runs each, median [min–max])\n");

    println!("## Overhead per call: fib(20), {} calls", calls(20));
    let untraced = median(RUNS, || {
        run_quiet(Command::new("sh").args(["-c", &fib(20)]))?;
        read_time()
    })?;
    report("untraced", &untraced, "ms");
    let dtk = median(RUNS, || {
        run_quiet(Command::new(DTK).args(["pyflow", "-c", &fib(20)]))?;
        read_time()
    })?;
    report("dtk pyflow -c", &dtk, "ms");
    let per_call = |t: f64| (t - untraced.median) / calls(20) as f64 * 1e6;
    println!("  dtk: {:.2} µs per call", per_call(dtk.median));
    if bpftrace {
        let bt = median(RUNS, || {
            run_quiet(Command::new("bpftrace").args(["-e", &bpftrace_flow, "-c", &fib(20)]))?;
            read_time()
        })?;
        report("bpftrace", &bt, "ms");
        println!("  bpftrace: {:.2} µs per call", per_call(bt.median));
        println!(
            "  ratio (bpftrace overhead / dtk overhead): {:.2}",
            per_call(bt.median) / per_call(dtk.median)
        );
    }

    // What turning 3.11's function-entry on costs by itself: dtk holds the `line` semaphore
    // with a uprobe that never fires; bpftrace attaches the `line` probe at its sites, which
    // trap on every line.
    println!(
        "\n## The line semaphore alone: fib(20), {} calls",
        calls(20)
    );
    const LINE_ONLY: &str = "python$target:::line /0/ { }";
    let held = median(RUNS, || {
        run_quiet(Command::new(DTK).args(["run", "-n", LINE_ONLY, "-c", &fib(20)]))?;
        read_time()
    })?;
    report("dtk run (held)", &held, "ms");
    println!("  dtk: {:.2} µs per call", per_call(held.median));
    if bpftrace {
        let line = "usdt:/usr/bin/python3.11:python:line /0/ { }";
        let bt = median(RUNS, || {
            run_quiet(Command::new("bpftrace").args(["-e", line, "-c", &fib(20)]))?;
            read_time()
        })?;
        report("bpftrace (attached at line's sites)", &bt, "ms");
        println!("  bpftrace: {:.2} µs per call", per_call(bt.median));
    }

    let events = 2 * calls(22);
    println!("\n## Events per second to a pipe: fib(22), {events} events");
    let mut dtk_cmd = Command::new(DTK);
    dtk_cmd
        .args(["run", "-x", "bufsize=256m", "-c", &fib(22)])
        .arg(&script);
    let (rate, lost) = median_rate(&mut dtk_cmd, events)?;
    report("dtk run pyflow.d (events/s)", &rate, "k");
    println!("  lines missing (median): {lost}");
    if bpftrace {
        let mut bt = Command::new("bpftrace");
        bt.args(["-B", "line", "-e", &bpftrace_flow, "-c", &fib(22)]);
        let (rate, lost) = median_rate(&mut bt, events)?;
        report("bpftrace (events/s)", &rate, "k");
        println!("  lines missing (median): {lost}");
    }
    Ok(())
}

fn workload() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/pyflow/fib.py")
}

/// Calls fib(n) makes, counting itself.
fn fib_calls(n: u32) -> u64 {
    if n < 2 {
        1
    } else {
        1 + fib_calls(n - 1) + fib_calls(n - 2)
    }
}

fn run_quiet(cmd: &mut Command) -> Result<()> {
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status()?;
    if !status.success() {
        return Err(format!("{cmd:?} failed: {status}").into());
    }
    Ok(())
}

/// Lines of the form "TS PID TID -> …" or "<- …" per second, from the first to the last,
/// and how many of `events` did not arrive.
fn rate(cmd: &mut Command, events: u64) -> Result<(f64, u64)> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let reader = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let (mut first, mut last, mut lines) = (None, Instant::now(), 0u64);
    for line in reader.lines() {
        let line = line?;
        if line.contains(" -> ") || line.contains(" <- ") {
            first.get_or_insert_with(Instant::now);
            last = Instant::now();
            lines += 1;
        }
    }
    child.wait()?;
    let first = first.ok_or("no events")?;
    let secs = last.duration_since(first).as_secs_f64().max(1e-9);
    Ok((lines as f64 / secs, events.saturating_sub(lines)))
}

fn median_rate(cmd: &mut Command, events: u64) -> Result<(Stats, u64)> {
    let mut lost = Vec::new();
    let stats = median(RUNS, || {
        let (r, l) = rate(cmd, events)?;
        lost.push(l);
        Ok(r)
    })?;
    lost.sort();
    Ok((stats, lost[lost.len() / 2]))
}

fn report(name: &str, s: &Stats, unit: &str) {
    let k = match unit {
        "ms" => 1000.0,
        "k" => 0.001,
        _ => 1.0,
    };
    println!(
        "  {name:<32} {:.1} {unit} [{:.1}–{:.1}]",
        s.median * k,
        s.min * k,
        s.max * k
    );
}
