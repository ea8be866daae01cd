//! Benchmarks of the eBPF runtime (run as root: `cargo bench --bench bpf_runtime`):
//!
//! 1. start to attached for one tracepoint program, in process (maps + load + attach) and as
//!    a whole process (spawn → "attached" on stdout), beside `bpftrace` doing the same when it
//!    is installed;
//! 2. events per second through the ring buffer to user space, with the lost count.
//!
//! The whole-process case re-runs this binary with `DTK_BENCH_ATTACH_ONCE=1`, which attaches
//! the program, prints "attached" and exits, so that both tools are timed the same way.

use std::error::Error;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dtk::internals::attach::tracepoint::attach_tracepoint;
use dtk::internals::attach::Link;
use dtk::internals::bpf::access;
use dtk::internals::bpf::insn::{AluOp, Asm, Cond, Helper, Insn, Reg, Size, Src};
use dtk::internals::bpf::prog::{self, ProgType, Program};
use dtk::internals::bpf::DropCounter;
use dtk::internals::bpf::RingBuf;
use dtk::internals::inspect::tracefs;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const RUNS: usize = 20;
const CHILD_ENV: &str = "DTK_BENCH_ATTACH_ONCE";

fn main() -> Result<()> {
    if std::env::var(CHILD_ENV).as_deref() == Ok("1") {
        return attach_once();
    }
    access::check()?;
    println!("# eBPF runtime benchmarks ({RUNS} runs each, median [min–max])");
    in_process_attach()?;
    whole_process_attach()?;
    untraced_syscall_rate();
    for record in [64, 512] {
        ring_buffer_throughput(record)?;
        ring_buffer_drain(record)?;
    }
    Ok(())
}

/// Everything one tracepoint program needs, attached; dropping it detaches and frees all.
struct Attached {
    _link: Link,
    _prog: Program,
    _ring: RingBuf,
    _drops: DropCounter,
}

/// The `opens`-like program: (tgid, filename) for every openat, into a ring buffer.
fn attach_openat() -> Result<Attached> {
    let ring = RingBuf::create(1 << 20, "dtk_bench")?;
    let drops = DropCounter::create("dtk_bench_drops")?;
    let filename = tracefs::read_format("syscalls", "sys_enter_openat")?
        .field("filename")
        .ok_or("sys_enter_openat has no filename field")?
        .offset as i16;
    let mut asm = Asm::new();
    let out = asm.label();
    asm.mov64_reg(Reg::R6, Reg::R1)
        .call(Helper::GetCurrentPidTgid)
        .stx(Size::DW, Reg::R10, -272, Reg::R0)
        .mov64_reg(Reg::R1, Reg::R10)
        .alu64(AluOp::Add, Reg::R1, Src::Imm(-264))
        .mov64_imm(Reg::R2, 256)
        .ldx(Size::DW, Reg::R3, Reg::R6, filename)
        .call(Helper::ProbeReadUserStr)
        .ld_map_fd(Reg::R1, ring.fd())
        .mov64_reg(Reg::R2, Reg::R10)
        .alu64(AluOp::Add, Reg::R2, Src::Imm(-272))
        .mov64_imm(Reg::R3, 264)
        .mov64_imm(Reg::R4, 0)
        .call(Helper::RingbufOutput)
        .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), out);
    drops.emit_count(&mut asm, -276);
    asm.bind(out).mov64_imm(Reg::R0, 0).exit();
    let prog = prog::load(ProgType::Tracepoint, &asm.finish()?, "GPL")?;
    let link = attach_tracepoint(&prog, "syscalls", "sys_enter_openat")?;
    Ok(Attached {
        _link: link,
        _prog: prog,
        _ring: ring,
        _drops: drops,
    })
}

fn attach_once() -> Result<()> {
    let _attached = attach_openat()?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "attached")?;
    stdout.flush()?;
    Ok(())
}

fn in_process_attach() -> Result<()> {
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let attached = attach_openat()?;
        times.push(start.elapsed());
        drop(attached);
    }
    println!(
        "start-to-attached, in process (maps + load + attach): {}",
        summary(&mut times)
    );
    Ok(())
}

/// Spawns `cmd` and times until a stdout line equal to `marker`; then lets it finish.
fn time_to_marker(cmd: &mut Command, marker: &str) -> Result<Duration> {
    let start = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut seen = None;
    // Read to the end, so that the tool's exit output (bpftrace prints its maps) finds a
    // reader and the exit status stays meaningful.
    for line in BufReader::new(stdout).lines() {
        if seen.is_none() && line?.trim() == marker {
            seen = Some(start.elapsed());
        }
    }
    let status = child.wait()?;
    match seen {
        Some(t) if status.success() => Ok(t),
        _ => Err(format!("{cmd:?} exited with {status} before printing {marker:?}").into()),
    }
}

fn whole_process_attach() -> Result<()> {
    let me = std::env::current_exe()?;
    let mut dtk = Vec::new();
    let mut bpftrace = Vec::new();
    let have_bpftrace = Command::new("bpftrace").arg("--version").output().is_ok();
    // Alternate the two tools so that both see the same machine state.
    for _ in 0..RUNS {
        dtk.push(time_to_marker(
            Command::new(&me).env(CHILD_ENV, "1"),
            "attached",
        )?);
        if have_bpftrace {
            bpftrace.push(time_to_marker(
                Command::new("bpftrace").args([
                    "-B",
                    "line",
                    "-e",
                    "tracepoint:syscalls:sys_enter_openat { @[pid, str(args->filename)] = count(); } \
                     BEGIN { printf(\"attached\\n\"); exit(); }",
                ]),
                "attached",
            )?);
        }
    }
    let dtk_median = median(&mut dtk);
    println!(
        "start-to-attached, whole process, dtk runtime: {}",
        summary(&mut dtk)
    );
    if have_bpftrace {
        let bt_median = median(&mut bpftrace);
        println!(
            "start-to-attached, whole process, bpftrace:    {}",
            summary(&mut bpftrace)
        );
        println!(
            "bpftrace / dtk (medians): {:.1}x",
            bt_median.as_secs_f64() / dtk_median.as_secs_f64()
        );
    } else {
        println!("bpftrace: not installed, no comparison");
    }
    Ok(())
}

/// A program on sys_enter_getppid for one thread: reserve `len` bytes, write the timestamp,
/// submit; count failed reserves.
fn flood_program(ring: &RingBuf, drops: &DropCounter, tid: u32, len: i32) -> Result<Vec<Insn>> {
    let mut asm = Asm::new();
    let (out, lost) = (asm.label(), asm.label());
    asm.call(Helper::GetCurrentPidTgid)
        .mov32_reg(Reg::R0, Reg::R0)
        .jmp_if(Cond::Ne, Reg::R0, Src::Imm(tid as i32), out)
        .ld_map_fd(Reg::R1, ring.fd())
        .mov64_imm(Reg::R2, len)
        .mov64_imm(Reg::R3, 0)
        .call(Helper::RingbufReserve)
        .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), lost)
        .mov64_reg(Reg::R6, Reg::R0)
        .call(Helper::KtimeGetNs)
        .stx(Size::DW, Reg::R6, 0, Reg::R0)
        .mov64_reg(Reg::R1, Reg::R6)
        .mov64_imm(Reg::R2, 0)
        .call(Helper::RingbufSubmit)
        .jmp(out)
        .bind(lost);
    drops.emit_count(&mut asm, -4);
    asm.bind(out).mov64_imm(Reg::R0, 0).exit();
    Ok(asm.finish()?)
}

fn ring_buffer_throughput(record: i32) -> Result<()> {
    const CALLS: u64 = 2_000_000;
    let mut ring = RingBuf::create(8 << 20, "dtk_bench_flood")?;
    let drops = DropCounter::create("dtk_bench_drops")?;
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let done = Arc::new(AtomicBool::new(false));
    let producer_done = Arc::clone(&done);
    let producer = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        let _ = tid_tx.send(unsafe { libc::gettid() } as u32);
        let _ = go_rx.recv();
        for _ in 0..CALLS {
            // SAFETY: getppid has no preconditions.
            unsafe { libc::getppid() };
        }
        producer_done.store(true, Ordering::Release);
    });
    let tid = tid_rx.recv()?;
    let prog = prog::load(
        ProgType::Tracepoint,
        &flood_program(&ring, &drops, tid, record)?,
        "GPL",
    )?;
    let link = attach_tracepoint(&prog, "syscalls", "sys_enter_getppid")?;
    let start = Instant::now();
    go_tx.send(())?;
    let mut delivered = 0u64;
    let mut bytes = 0u64;
    loop {
        let finished = done.load(Ordering::Acquire);
        ring.poll(Some(Duration::from_millis(10)), |rec| {
            delivered += 1;
            bytes += rec.len() as u64;
        })?;
        if finished {
            delivered += ring.consume(|rec| bytes += rec.len() as u64) as u64;
            break;
        }
    }
    let elapsed = start.elapsed();
    drop(link);
    producer.join().map_err(|_| "producer thread panicked")?;
    let lost = drops.total()?;
    println!(
        "ring buffer, {record}-byte records: {delivered} delivered + {lost} lost = {} of {CALLS} \
         in {:.3} s: {:.2} M events/s to user space ({:.0} MB/s)",
        delivered + lost,
        elapsed.as_secs_f64(),
        delivered as f64 / elapsed.as_secs_f64() / 1e6,
        bytes as f64 / elapsed.as_secs_f64() / 1e6,
    );
    Ok(())
}

/// The producer's ceiling: getppid calls per second with nothing attached.
fn untraced_syscall_rate() {
    const CALLS: u32 = 2_000_000;
    let start = Instant::now();
    for _ in 0..CALLS {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::getppid() };
    }
    let rate = f64::from(CALLS) / start.elapsed().as_secs_f64() / 1e6;
    println!("getppid with nothing attached: {rate:.2} M calls/s (one thread)");
}

/// The reader alone: fill the ring buffer with no reader running, then time draining it.
fn ring_buffer_drain(record: i32) -> Result<()> {
    let mut ring = RingBuf::create(8 << 20, "dtk_bench_drain")?;
    let drops = DropCounter::create("dtk_bench_drops")?;
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as u32;
    let prog = prog::load(
        ProgType::Tracepoint,
        &flood_program(&ring, &drops, tid, record)?,
        "GPL",
    )?;
    let link = attach_tracepoint(&prog, "syscalls", "sys_enter_getppid")?;
    let fits = ring.size() as u64 / (record as u64 + 8).next_multiple_of(8);
    let calls = fits + 1000;
    for _ in 0..calls {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::getppid() };
    }
    drop(link);
    let start = Instant::now();
    let (mut bytes, mut newest) = (0u64, 0u64);
    // Decode the timestamp of each record, so that the data is really read.
    let delivered = ring.consume(|rec| {
        bytes += rec.len() as u64;
        let stamp = rec.get(..8).and_then(|b| b.try_into().ok());
        newest = newest.max(stamp.map_or(0, u64::from_ne_bytes));
    }) as u64;
    let elapsed = start.elapsed();
    if newest == 0 {
        return Err("drained records carry no timestamp".into());
    }
    let lost = drops.total()?;
    println!(
        "ring buffer drain, {record}-byte records: {delivered} read + {lost} lost = {} of {calls} \
         in {:.2} ms: {:.1} M events/s ({:.0} MB/s)",
        delivered + lost,
        elapsed.as_secs_f64() * 1e3,
        delivered as f64 / elapsed.as_secs_f64() / 1e6,
        bytes as f64 / elapsed.as_secs_f64() / 1e6,
    );
    Ok(())
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn summary(times: &mut [Duration]) -> String {
    let med = median(times);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "{:.2} ms [{:.2}–{:.2}]",
        ms(med),
        ms(times[0]),
        ms(times[times.len() - 1])
    )
}
