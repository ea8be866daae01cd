//! Benchmarks of the whole Linux engine against bpftrace, side by side in one run (as root:
//! `cargo bench --bench engine`):
//!
//! 1. startup to attached: spawn → the first line BEGIN prints (both tools run BEGIN only
//!    after every probe is attached), for one syscall tracepoint counted by process;
//! 2. overhead on `dd if=/dev/zero of=/dev/null bs=1 count=1000000` (about two million system
//!    calls): untraced, an empty BPF program on the same tracepoint, then system calls counted
//!    by call (`dtk syscalls`, and bpftrace keyed by syscall id) and by process (`dtk run`
//!    with the D one-liner, the bundled `dtk syscalls -P`, and bpftrace doing the same count);
//! 3. peak resident memory of each tracer during that run (ru_maxrss from wait4).
//!
//! Results are medians of RUNS runs, with the ratios that BENCHMARKS.md records.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dtk::internals::attach::tracepoint::attach_tracepoint;
use dtk::internals::bpf::access;
use dtk::internals::bpf::insn::{Asm, Reg};
use dtk::internals::bpf::prog::{self, ProgType};

#[path = "common/stats.rs"]
mod stats;

use stats::{median, Result, Stats};

const RUNS: usize = 7;
const DTK: &str = env!("CARGO_BIN_EXE_dtk");
const DD: [&str; 5] = [
    "dd",
    "if=/dev/zero",
    "of=/dev/null",
    "bs=1",
    "count=1000000",
];

/// Count every system call by call, as `dtk syscalls` does without -P.
const BPFTRACE_BY_CALL: &str = "tracepoint:raw_syscalls:sys_enter { @[args->id] = count(); } \
                                BEGIN { printf(\"attached\\n\"); }";
/// Count every system call by process, and say when attached.
const DTK_COUNT: &str = "syscall:::entry { @[pid, execname, probefunc] = count(); } \
                         BEGIN { printf(\"attached\\n\"); }";
const BPFTRACE_COUNT: &str =
    "tracepoint:raw_syscalls:sys_enter { @[pid, comm, args->id] = count(); } \
                              BEGIN { printf(\"attached\\n\"); }";
/// One tracepoint, for startup.
const DTK_START: &str = "syscall::openat:entry { @[pid, execname] = count(); } \
                         BEGIN { printf(\"attached\\n\"); exit(0); }";
const BPFTRACE_START: &str = "tracepoint:syscalls:sys_enter_openat { @[pid, comm] = count(); } \
                              BEGIN { printf(\"attached\\n\"); exit(); }";

fn main() -> Result<()> {
    access::check()?;
    let bpftrace = Command::new("bpftrace").arg("--version").output().is_ok();
    println!("# Linux engine vs bpftrace ({RUNS} runs each, median [min–max])\n");

    println!("## Startup to attached (spawn → BEGIN's first line)");
    let dtk = median(RUNS, || startup(dtk_cmd(&["run", "-n", DTK_START])))?;
    report("dtk run", &dtk, "ms");
    if bpftrace {
        let bt = median(RUNS, || startup(bpftrace_cmd(BPFTRACE_START)))?;
        report("bpftrace", &bt, "ms");
        println!("ratio bpftrace / dtk: {:.1}x", bt.median / dtk.median);
    }

    println!("\n## Overhead on `{}`", DD.join(" "));
    let plain = median(RUNS, || Ok(dd_time(None)?.0))?;
    report("untraced", &plain, "s");
    let empty = median(RUNS, dd_with_empty_program)?;
    report("empty BPF program on raw_syscalls:sys_enter", &empty, "s");
    let mut cases = vec![
        ("dtk syscalls", dtk_cmd(&["syscalls"])),
        ("dtk run -P", dtk_cmd(&["run", "-n", DTK_COUNT])),
        ("dtk syscalls -P", dtk_cmd(&["syscalls", "-P"])),
    ];
    if bpftrace {
        cases.insert(1, ("bpftrace", bpftrace_cmd(BPFTRACE_BY_CALL)));
        cases.push(("bpftrace -P", bpftrace_cmd(BPFTRACE_COUNT)));
    }
    let mut rss = Vec::new();
    let mut lines = Vec::new();
    for (name, cmd) in &mut cases {
        let stats = median(RUNS, || {
            let (t, kb) = dd_time(Some(cmd))?;
            rss.push((*name, kb));
            Ok(t)
        })?;
        report(name, &stats, "s");
        lines.push((*name, stats.median));
    }
    println!("\noverhead (traced / untraced − 1), and against the empty program:");
    for (name, t) in &lines {
        println!(
            "  {name:<18} +{:.1}% vs untraced, +{:.1}% vs empty program",
            (t / plain.median - 1.0) * 100.0,
            (t / empty.median - 1.0) * 100.0
        );
    }
    println!("\n## Peak resident memory of the tracer during the dd run (max over runs)");
    for (name, _) in &cases {
        if let Some(kb) = rss
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, kb)| *kb)
            .max()
        {
            println!("  {name:<18} {:.1} MB", kb as f64 / 1024.0);
        }
    }
    Ok(())
}

fn dtk_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(DTK);
    cmd.args(["--backend", "linux", "-q"]).args(args);
    cmd
}

fn bpftrace_cmd(prog: &str) -> Command {
    let mut cmd = Command::new("bpftrace");
    cmd.args(["-B", "line", "-e", prog]);
    cmd
}

/// Seconds from spawn to the first line on stdout; then the tracer is ended.
fn startup(mut cmd: Command) -> Result<f64> {
    let start = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    wait_for_line(&mut child)?;
    let t = start.elapsed().as_secs_f64();
    stop(&mut child)?;
    Ok(t)
}

/// Reads stdout up to the line "attached" (bpftrace first says "Attaching N probes...").
fn wait_for_line(child: &mut Child) -> Result<()> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    for _ in 0..5 {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        if line.trim() == "attached" {
            // Drain the rest, so that the tracer's final output never blocks on the pipe.
            std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
            return Ok(());
        }
    }
    Err(format!("tracer printed {line:?} instead of \"attached\"").into())
}

/// SIGINT, then reap; returns the tracer's peak RSS in KiB. A tracer that has not exited
/// after a second is sent SIGINT again (bpftrace 0.17 sometimes misses the first), and
/// SIGKILL after ten.
fn stop(child: &mut Child) -> Result<i64> {
    let pid = child.id() as i32;
    let start = Instant::now();
    let mut signalled = 0;
    loop {
        let elapsed = start.elapsed();
        let due = match signalled {
            0 => Some(libc::SIGINT),
            1 if elapsed > Duration::from_secs(1) => Some(libc::SIGINT),
            2 if elapsed > Duration::from_secs(10) => Some(libc::SIGKILL),
            _ => None,
        };
        if let Some(signal) = due {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid, signal) };
            signalled += 1;
        }
        let mut status = 0;
        // SAFETY: reaping our own child into a zeroed rusage we own.
        let (rc, usage) = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            let rc = libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage);
            (rc, usage)
        };
        match rc {
            0 => std::thread::sleep(Duration::from_millis(10)),
            rc if rc < 0 => return Err(std::io::Error::last_os_error().into()),
            _ => return Ok(usage.ru_maxrss),
        }
    }
}

/// Runs dd (with a tracer attached first, when given) and returns dd's wall time and the
/// tracer's peak RSS.
fn dd_time(tracer: Option<&mut Command>) -> Result<(f64, i64)> {
    let mut child = match tracer {
        Some(cmd) => {
            let needs_line = cmd.get_program() == "bpftrace" || cmd.get_args().any(|a| a == "run");
            let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
            if needs_line {
                wait_for_line(&mut child)?;
            } else {
                // dtk syscalls prints nothing until it ends; its startup is milliseconds.
                std::thread::sleep(Duration::from_millis(500));
            }
            Some(child)
        }
        None => None,
    };
    let start = Instant::now();
    let status = Command::new(DD[0])
        .args(&DD[1..])
        .stderr(Stdio::null())
        .status()?;
    let t = start.elapsed().as_secs_f64();
    if !status.success() {
        return Err("dd failed".into());
    }
    let rss = match child.as_mut() {
        Some(c) => stop(c)?,
        None => 0,
    };
    Ok((t, rss))
}

/// dd with a program that does nothing attached to raw_syscalls:sys_enter: the floor cost of
/// running any BPF program on every system call.
fn dd_with_empty_program() -> Result<f64> {
    let mut asm = Asm::new();
    asm.mov64_imm(Reg::R0, 0).exit();
    let program = prog::load(ProgType::Tracepoint, &asm.finish()?, "GPL")?;
    let _link = attach_tracepoint(&program, "raw_syscalls", "sys_enter")?;
    Ok(dd_time(None)?.0)
}

fn report(name: &str, s: &Stats, unit: &str) {
    let k = if unit == "ms" { 1000.0 } else { 1.0 };
    println!(
        "  {name:<46} {:.3} {unit} [{:.3}–{:.3}]",
        s.median * k,
        s.min * k,
        s.max * k
    );
}
