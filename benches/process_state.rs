//! What reading process state at the probe costs (as root: `cargo bench --bench
//! process_state`), side by side with what the executor paid before, reading /proc:
//!
//! 1. a Python loop of getppid calls, untraced, traced with a clause that prints `pid` (the
//!    record without the process block), with one that prints the same but reads `ppid`
//!    (the kernel reads the task at every call: the difference per call is the in-kernel
//!    cost per event, as the traced process feels it), and with one that prints `ppid`,
//!    `curpsinfo` members and `curthread->real_parent->tgid`; and the cost of `cwd` alike;
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
/// The same line, from a record that carries the working directory walked at the probe.
const CWD: &str = "syscall::getppid:entry /pid == $target/ { \
    printf(\"%d\\n\", pid + 0 * strlen(cwd)); }";
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
    let cwd = median(RUNS, || workload(Some(CWD)))?;
    row(
        "traced, printf pid, with cwd read",
        &cwd,
        Some(untraced.median),
    );
    let printed = median(RUNS, || workload(Some(PRINTED)))?;
    row(
        "traced, printf ppid, curpsinfo, curthread members",
        &printed,
        Some(untraced.median),
    );
    println!(
        "\nin-kernel process state per event: {:.0} ns; cwd: {:.0} ns",
        state.median - pid.median,
        cwd.median - pid.median
    );
    println!("\nIn the kernel (bpf_stats_enabled), ns per run of the program on getppid:");
    let stats = StatsEnabled::on()?;
    for (what, prog) in [
        ("printf pid", PID_ONLY),
        ("the process block read", PROCESS_STATE),
        ("cwd read", CWD),
    ] {
        let s = median(RUNS, || in_kernel(prog))?;
        println!("- {what}: {:.0} [{:.0}–{:.0}]", s.median, s.min, s.max);
    }
    drop(stats);
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
    Ok(run_workload(prog)?.0)
}

/// The kernel's own figure (kernel.bpf_stats_enabled): nanoseconds per run of dtk's program
/// on getppid, which the load of the machine does not blur.
fn in_kernel(prog: &str) -> Result<f64> {
    Ok(run_workload(Some(prog))?.1)
}

/// (ns per call as the loop sees it, ns per run of the busiest dtk program).
fn run_workload(prog: Option<&str>) -> Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("ns");
    let done = dir.path().join("done");
    // The loop writes its figure, then waits for the bench to read the program's counters.
    let code = format!(
        "import os, time\nt = time.perf_counter_ns()\nfor _ in range({CALLS}): os.getppid()\n\
         open({:?}, 'w').write(str((time.perf_counter_ns() - t) / {CALLS}))\n\
         while not os.path.exists({:?}): time.sleep(0.01)",
        out.display().to_string(),
        done.display().to_string()
    );
    let mut child = match prog {
        None => Command::new(PYTHON).args(["-c", &code]).spawn()?,
        Some(prog) => {
            let command = format!("{PYTHON} -c {}", shlex::try_quote(&code)?);
            Command::new(DTK)
                .args(["--backend", "linux", "run", "-n", prog, "-c", &command])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?
        }
    };
    while !out.exists() || std::fs::read_to_string(&out)?.is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let per_run = bpf_stats::busiest_dtk_program().unwrap_or(0.0);
    std::fs::write(&done, "")?;
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("workload failed: {status}").into());
    }
    Ok((std::fs::read_to_string(out)?.trim().parse()?, per_run))
}

/// The kernel's run-time statistics of loaded programs (kernel ≥ 5.1).
mod bpf_stats {
    const PROG_GET_NEXT_ID: i64 = 11;
    const PROG_GET_FD_BY_ID: i64 = 13;
    const OBJ_GET_INFO_BY_FD: i64 = 15;
    /// Offsets in struct bpf_prog_info (include/uapi/linux/bpf.h).
    const NAME: usize = 64;
    const RUN_TIME_NS: usize = 192;
    const RUN_CNT: usize = 200;

    fn bpf(cmd: i64, attr: &mut [u32]) -> i64 {
        // SAFETY: attr is a live buffer of the size passed, as bpf(2) reads and writes it.
        unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                attr.as_mut_ptr(),
                std::mem::size_of_val(attr),
            )
        }
    }

    /// Nanoseconds per run of the loaded program named "dtk" that ran most often.
    pub fn busiest_dtk_program() -> Option<f64> {
        let mut id = 0u32;
        let mut best: Option<(u64, u64)> = None;
        loop {
            let mut attr = [id, 0, 0, 0];
            if bpf(PROG_GET_NEXT_ID, &mut attr) != 0 {
                break;
            }
            id = attr[1];
            let mut attr = [id, 0, 0, 0];
            let fd = bpf(PROG_GET_FD_BY_ID, &mut attr);
            if fd < 0 {
                continue;
            }
            let mut info = [0u8; 256];
            let addr = info.as_mut_ptr() as u64;
            let mut attr = [
                fd as u32,
                info.len() as u32,
                addr as u32,
                (addr >> 32) as u32,
            ];
            let ok = bpf(OBJ_GET_INFO_BY_FD, &mut attr) == 0;
            // SAFETY: fd is the descriptor bpf(2) just opened for this process.
            unsafe { libc::close(fd as i32) };
            let word = |at: usize| u64::from_ne_bytes(info[at..at + 8].try_into().unwrap());
            if ok && info[NAME..NAME + 4] == *b"dtk\0" {
                let (time, count) = (word(RUN_TIME_NS), word(RUN_CNT));
                if best.is_none_or(|(_, c)| count > c) {
                    best = Some((time, count));
                }
            }
        }
        best.filter(|&(_, count)| count > 0)
            .map(|(time, count)| time as f64 / count as f64)
    }
}

/// Turns kernel.bpf_stats_enabled on while it lives, and back as it was.
struct StatsEnabled(String);

const STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl StatsEnabled {
    fn on() -> Result<StatsEnabled> {
        let was = std::fs::read_to_string(STATS_SYSCTL)?;
        std::fs::write(STATS_SYSCTL, "1")?;
        Ok(StatsEnabled(was))
    }
}

impl Drop for StatsEnabled {
    fn drop(&mut self) {
        let _ = std::fs::write(STATS_SYSCTL, self.0.trim());
    }
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
