//! What reading process state at the probe costs (as root: `cargo bench --bench
//! process_state`), side by side with what the executor paid before, reading /proc:
//!
//! 1. a Python loop of getppid calls, untraced, traced with a clause that prints `pid` (the
//!    record without the process block), with one that prints the same but reads `ppid`
//!    (the kernel reads the task at every call: the difference per call is the in-kernel
//!    cost per event, as the traced process feels it), and with one that prints `ppid`,
//!    `curpsinfo` members and `curthread->real_parent->tgid`;
//! 2. the /proc reads the executor made for each new process before (stat, status and
//!    cmdline), timed in this process.
//!
//! Results are medians of RUNS runs.

use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "common/stats.rs"]
mod stats;

use stats::{median, Result, Stats};

const RUNS: usize = 5;
const CALLS: u32 = 200_000;
const DTK: &str = env!("CARGO_BIN_EXE_dtk");
const PYTHON: &str = "/usr/bin/python3.11";

const PID_ONLY: &str = "syscall::getppid:entry /pid == $target/ { printf(\"%d\\n\", pid); }";
/// The same line, from a record that carries the process block: what changes is the reads in
/// the kernel and the larger record, not the work of formatting it.
const PROCESS_STATE: &str = "syscall::getppid:entry /pid == $target/ { \
    printf(\"%d\\n\", pid + 0 * (ppid + curpsinfo->pr_pgid)); }";
/// Every member, formatted.
const PRINTED: &str = "syscall::getppid:entry /pid == $target/ { \
    printf(\"%d %d %d %d %s %d\\n\", pid, ppid, curpsinfo->pr_pgid, curpsinfo->pr_euid, \
    curpsinfo->pr_psargs, curthread->real_parent->tgid); }";

fn main() -> Result<()> {
    println!("# Process state at the probe ({RUNS} runs each, median [min–max])");
    println!("| | ns per getppid call | vs untraced |");
    println!("|---|---|---|");
    let untraced = median(RUNS, || workload(None))?;
    row("untraced", &untraced, None);
    let pid = median(RUNS, || workload(Some(PID_ONLY)))?;
    row("traced, printf pid", &pid, Some(untraced.median));
    let state = median(RUNS, || workload(Some(PROCESS_STATE)))?;
    row(
        "traced, printf pid, with the process block read",
        &state,
        Some(untraced.median),
    );
    let printed = median(RUNS, || workload(Some(PRINTED)))?;
    row(
        "traced, printf ppid, curpsinfo, curthread members",
        &printed,
        Some(untraced.median),
    );
    println!(
        "\nin-kernel process state per event: {:.0} ns",
        state.median - pid.median
    );
    let procfs = median(RUNS, proc_reads)?;
    println!(
        "before: /proc reads per new process: {:.1} µs [{:.1}–{:.1}]",
        procfs.median / 1000.0,
        procfs.min / 1000.0,
        procfs.max / 1000.0
    );
    Ok(())
}

fn row(what: &str, s: &Stats, base: Option<f64>) {
    let vs = base.map_or(String::new(), |b| format!("+{:.0} ns", s.median - b));
    println!(
        "| {what} | {:.0} [{:.0}–{:.0}] | {vs} |",
        s.median, s.min, s.max
    );
}

/// Nanoseconds per getppid call in a Python loop, as the loop measures itself, traced by
/// `dtk run -n prog -c …` or not.
fn workload(prog: Option<&str>) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("ns");
    let code = format!(
        "import os, time\nt = time.perf_counter_ns()\nfor _ in range({CALLS}): os.getppid()\n\
         open({:?}, 'w').write(str((time.perf_counter_ns() - t) / {CALLS}))",
        out.display().to_string()
    );
    let status = match prog {
        None => Command::new(PYTHON).args(["-c", &code]).status()?,
        Some(prog) => {
            let command = format!("{PYTHON} -c {}", shlex::try_quote(&code)?);
            Command::new(DTK)
                .args(["--backend", "linux", "run", "-n", prog, "-c", &command])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?
        }
    };
    if !status.success() {
        return Err(format!("workload failed: {status}").into());
    }
    Ok(std::fs::read_to_string(out)?.trim().parse()?)
}

/// Nanoseconds for the three /proc reads the executor made for each new (pid, execname)
/// before process state was read at the probe.
fn proc_reads() -> Result<f64> {
    const N: u32 = 2000;
    let pid = std::process::id();
    let start = Instant::now();
    for _ in 0..N {
        for file in ["stat", "status", "cmdline"] {
            std::hint::black_box(std::fs::read(format!("/proc/{pid}/{file}"))?);
        }
    }
    Ok(start.elapsed().as_nanos() as f64 / f64::from(N))
}
