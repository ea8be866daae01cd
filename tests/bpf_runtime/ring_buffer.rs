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
    let link = attach_tracepoint(&prog, "syscalls", "sys_enter_close").unwrap();
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
    let link = attach_tracepoint(&prog, "syscalls", "sys_enter_close").unwrap();
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
    let link = attach_tracepoint(&prog, "syscalls", "sys_enter_close").unwrap();
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
