//! The ring buffer: a flood's exact lost count, wraparound, discards; detach on drop.

use super::*;

#[test]
fn ring_buffer_flood_reports_its_lost_count_exactly() {
    if !kernel_available("ring_buffer_flood_reports_its_lost_count_exactly") {
        return;
    }
    let mut ring = RingBuf::create(16 * 1024, "dtk_test_flood").unwrap();
    let drops = DropCounter::create("dtk_test_drops").unwrap();
    let fd_off = syscall_arg_offset("syscalls", "sys_enter_close", "fd");
    let insns = reserve_program(&ring, &drops, gettid(), fd_off, 1000, false);
    let prog = load(ProgType::Tracepoint, &insns);
    let link = attach_tracepoint(&prog, "syscalls", "sys_enter_close")
        .and_then(|l| l.enabled())
        .unwrap();
    const CALLS: u64 = 200;
    for i in 0..CALLS {
        close_unopened(UNOPENED_FD_BASE + i);
    }
    drop(link);
    let mut seen = Vec::new();
    ring.consume(|rec| seen.push(u64::from_ne_bytes(rec[..8].try_into().unwrap())));
    let lost = drops.total().unwrap();
    // 16 KiB holds 16 records of 1,008 bytes; the rest must be counted as lost, not vanish.
    assert_eq!(seen.len(), 16);
    assert_eq!(lost, CALLS - seen.len() as u64);
    let first: Vec<u64> = (0..16).map(|i| UNOPENED_FD_BASE + i).collect();
    assert_eq!(seen, first, "the records kept are the first ones, in order");
}

/// For thread `tid` and close() arguments ≥ `UNOPENED_FD_BASE`: a 256-byte record of the
/// argument, sent with `bpf_ringbuf_output` from the stack; failed outputs go to `drops`.
fn output_program(ring: &RingBuf, drops: &DropCounter, tid: u32, arg_off: i16) -> Vec<Insn> {
    let mut asm = Asm::new();
    let out = asm.label();
    asm.mov64_reg(Reg::R6, Reg::R1);
    only_thread(&mut asm, tid, out);
    asm.ldx(Size::DW, Reg::R7, Reg::R6, arg_off).jmp_if(
        Cond::Lt,
        Reg::R7,
        Src::Imm(UNOPENED_FD_BASE as i32),
        out,
    );
    for word in 1..=32 {
        asm.stx(Size::DW, Reg::R10, -8 * word, Reg::R7);
    }
    asm.ld_map_fd(Reg::R1, ring.fd())
        .mov64_reg(Reg::R2, Reg::R10)
        .alu64(AluOp::Add, Reg::R2, Src::Imm(-256))
        .mov64_imm(Reg::R3, 256)
        .mov64_imm(Reg::R4, 0)
        .call(Helper::RingbufOutput)
        .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), out);
    drops.emit_count(&mut asm, -260);
    asm.bind(out).mov64_imm(Reg::R0, 0).exit();
    asm.finish().unwrap()
}

#[test]
fn a_flood_read_live_accounts_for_every_event() {
    if !kernel_available("a_flood_read_live_accounts_for_every_event") {
        return;
    }
    // 8 KiB holds 31 records: far too few for the reader to keep pace, so most outputs fail
    // (about 19,000 of 20,000 here) and the sum checks the failure count, not just delivery.
    let mut ring = RingBuf::create(8192, "dtk_test_live").unwrap();
    let drops = DropCounter::create("dtk_test_drops").unwrap();
    let fd_off = syscall_arg_offset("syscalls", "sys_enter_close", "fd");
    const CALLS: u64 = 20_000;
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let finished = std::sync::Arc::clone(&done);
    let producer = std::thread::spawn(move || {
        tid_tx.send(gettid()).unwrap();
        go_rx.recv().unwrap();
        for i in 0..CALLS {
            close_unopened(UNOPENED_FD_BASE + i);
        }
        finished.store(true, std::sync::atomic::Ordering::Release);
    });
    let prog = load(
        ProgType::Tracepoint,
        &output_program(&ring, &drops, tid_rx.recv().unwrap(), fd_off),
    );
    let link = attach_tracepoint(&prog, "syscalls", "sys_enter_close")
        .and_then(|l| l.enabled())
        .unwrap();
    go_tx.send(()).unwrap();
    let mut seen = Vec::new();
    let mut record = |rec: &[u8]| {
        let w = words(rec);
        assert!(w.iter().all(|&x| x == w[0]) && w.len() == 32, "torn record");
        seen.push(w[0]);
    };
    while !done.load(std::sync::atomic::Ordering::Acquire) {
        ring.poll(Some(Duration::from_millis(5)), &mut record)
            .unwrap();
    }
    ring.consume(&mut record);
    producer.join().unwrap();
    drop(link);
    let lost = drops.total().unwrap();
    assert_eq!(
        seen.len() as u64 + lost,
        CALLS,
        "{} seen, {lost} lost",
        seen.len()
    );
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "records out of order");
}

#[test]
fn ring_buffer_wraps_around_and_skips_discarded_records() {
    if !kernel_available("ring_buffer_wraps_around_and_skips_discarded_records") {
        return;
    }
    let mut ring = RingBuf::create(4096, "dtk_test_wrap").unwrap();
    let drops = DropCounter::create("dtk_test_drops").unwrap();
    let fd_off = syscall_arg_offset("syscalls", "sys_enter_close", "fd");
    // 40-byte records take 48 bytes with the header: 4096 is no multiple of 48, so records
    // straddle the end of the data area as it wraps, many times over.
    let insns = reserve_program(&ring, &drops, gettid(), fd_off, 40, true);
    let prog = load(ProgType::Tracepoint, &insns);
    let link = attach_tracepoint(&prog, "syscalls", "sys_enter_close")
        .and_then(|l| l.enabled())
        .unwrap();
    let mut seen = Vec::new();
    let mut next = UNOPENED_FD_BASE;
    for _batch in 0..60 {
        for _ in 0..50 {
            close_unopened(next);
            next += 1;
        }
        ring.poll(Some(Duration::from_secs(1)), |rec| {
            let words: Vec<u64> = rec
                .chunks(8)
                .map(|w| u64::from_ne_bytes(w.try_into().unwrap()))
                .collect();
            assert!(
                words.iter().all(|&w| w == words[0]),
                "torn record {words:?}"
            );
            assert_eq!(rec.len(), 40);
            seen.push(words[0]);
        })
        .unwrap();
    }
    drop(link);
    let want: Vec<u64> = (UNOPENED_FD_BASE..next).filter(|fd| fd % 2 == 0).collect();
    assert_eq!(seen, want);
    assert_eq!(ring.discarded(), (next - UNOPENED_FD_BASE) / 2);
    assert_eq!(drops.total().unwrap(), 0);
}

/// A program for `sys_enter_openat` that sends (tgid, filename) for every process.
#[test]
fn a_dropped_link_no_longer_runs_its_program() {
    if !kernel_available("a_dropped_link_no_longer_runs_its_program") {
        return;
    }
    let ring = RingBuf::create(4096, "dtk_test_detach").unwrap();
    let drops = DropCounter::create("dtk_test_drops").unwrap();
    let fd_off = syscall_arg_offset("syscalls", "sys_enter_close", "fd");
    // Records of 4,000 bytes into a 4 KiB ring: the first fits, every later one is counted
    // as lost, so the drop counter counts the program's runs.
    let insns = reserve_program(&ring, &drops, gettid(), fd_off, 4000, false);
    let prog = load(ProgType::Tracepoint, &insns);
    let link = attach_tracepoint(&prog, "syscalls", "sys_enter_close")
        .and_then(|l| l.enabled())
        .unwrap();
    assert_eq!(link.describe(), "tracepoint syscalls:sys_enter_close");
    for i in 0..10 {
        close_unopened(UNOPENED_FD_BASE + i);
    }
    drop(link);
    for i in 0..10 {
        close_unopened(UNOPENED_FD_BASE + i);
    }
    assert_eq!(drops.total().unwrap(), 9);
}

/// CPU time this thread has used, from getrusage(RUSAGE_THREAD).
fn thread_cpu_time() -> Duration {
    // SAFETY: rusage is plain data; getrusage fills it and cannot fail for RUSAGE_THREAD.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

extern "C" fn ignore_signal(_: libc::c_int) {}

#[test]
fn the_reader_sleeps_until_a_record_or_a_signal_arrives() {
    if !kernel_available("the_reader_sleeps_until_a_record_or_a_signal_arrives") {
        return;
    }
    let mut ring = RingBuf::create(4096, "dtk_test_wait").unwrap();
    let drops = DropCounter::create("dtk_test_drops").unwrap();
    // An empty ring: the wait times out, having slept rather than spun.
    let (wall, cpu) = (std::time::Instant::now(), thread_cpu_time());
    assert_eq!(
        ring.poll(Some(Duration::from_millis(300)), |_| {}).unwrap(),
        0
    );
    assert!(wall.elapsed() >= Duration::from_millis(300));
    assert!(
        thread_cpu_time() - cpu < Duration::from_millis(30),
        "the wait spun"
    );

    // A record from another thread wakes a wait with no timeout.
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        tid_tx.send(gettid()).unwrap();
        go_rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        close_unopened(UNOPENED_FD_BASE + 2);
    });
    let fd_off = syscall_arg_offset("syscalls", "sys_enter_close", "fd");
    let tid = tid_rx.recv().unwrap();
    let prog = load(
        ProgType::Tracepoint,
        &reserve_program(&ring, &drops, tid, fd_off, 8, false),
    );
    let link = attach_tracepoint(&prog, "syscalls", "sys_enter_close")
        .and_then(|l| l.enabled())
        .unwrap();
    go_tx.send(()).unwrap();
    let mut seen = Vec::new();
    let delivered = ring.poll(None, |rec| seen.push(words(rec)[0])).unwrap();
    writer.join().unwrap();
    drop(link);
    assert_eq!((delivered, seen), (1, vec![UNOPENED_FD_BASE + 2]));

    // A signal (Ctrl-C in dtk) ends a wait with no timeout, with nothing delivered.
    // SAFETY: the handler does nothing, so it is async-signal-safe; SA_RESTART is not set, but
    // epoll_wait is never restarted anyway.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore_signal as extern "C" fn(libc::c_int) as usize;
        libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut());
    }
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() } as usize;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = std::sync::Arc::clone(&done);
    // Signals repeat until the wait has ended, so one sent before the wait began cannot
    // leave it blocked forever.
    let signaller = std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(50));
            // SAFETY: `me` is the polling thread, alive until this thread is joined.
            unsafe { libc::pthread_kill(me as libc::pthread_t, libc::SIGUSR1) };
        }
    });
    let result = ring.poll(None, |_| {});
    done.store(true, std::sync::atomic::Ordering::Release);
    signaller.join().unwrap();
    assert_eq!(result.unwrap(), 0);
}
