//! Resource discipline: after a full cycle (maps, ring buffer, programs, tracepoint, uprobe
//! and cpu-clock links), and after failed loads and attaches, this process holds no more file
//! descriptors or mappings than before. Counting needs a process with no other test threads,
//! so the outer test runs the inner one alone in a child process.

use super::*;

const ALONE_ENV: &str = "DTK_TEST_RESOURCES_ALONE";

#[test]
fn nothing_is_left_open_after_drop_or_error() {
    if !kernel_available("nothing_is_left_open_after_drop_or_error") {
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "bpf_runtime::resources::nothing_is_left_open_after_drop_or_error_inner",
            "--include-ignored",
            "--test-threads",
            "1",
        ])
        .env(ALONE_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Open fds, and mappings of BPF objects (the ring buffer's pages).
fn held() -> (usize, usize) {
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    (fds, maps.lines().filter(|l| l.contains("bpf")).count())
}

/// Everything at once; returns what it made so that the caller decides when it drops.
fn attach_everything(scratch: &Path) -> Vec<Box<dyn std::any::Any>> {
    let ring = RingBuf::create(1 << 16, "dtk_test_res").unwrap();
    let drops = DropCounter::create("dtk_test_res").unwrap();
    let map = Map::create(MapType::Hash, 8, 8, 64, "dtk_test_res").unwrap();
    let fd_off = syscall_arg_offset("syscalls", "sys_enter_close", "fd");
    let insns = reserve_program(&ring, &drops, gettid(), fd_off, 8, false);
    let tp_prog = load(ProgType::Tracepoint, &insns);
    let tp = attach_tracepoint(&tp_prog, "syscalls", "sys_enter_close")
        .and_then(|l| l.enabled())
        .unwrap();
    let mut asm = Asm::new();
    asm.mov64_imm(Reg::R0, 0).exit();
    let empty = asm.finish().unwrap();
    let up_prog = load(ProgType::Kprobe, &empty);
    // A private copy, so that no process ever runs into this probe.
    let path = scratch.join("true");
    std::fs::copy("/bin/true", &path).unwrap();
    let spec = UprobeSpec {
        offset: 0x1000,
        path,
        ref_ctr_offset: None,
        pid: None,
        retprobe: true,
    };
    let up = attach_uprobe(&up_prog, &spec)
        .and_then(|l| l.enabled())
        .unwrap();
    let perf_prog = load(ProgType::PerfEvent, &empty);
    let clock = perf::attach_cpu_clock(&perf_prog, perf::CpuClock::EveryCpu { hz: 49 })
        .and_then(|l| l.enabled())
        .unwrap();
    vec![
        Box::new(tp),
        Box::new(up),
        Box::new(clock),
        Box::new(tp_prog),
        Box::new(up_prog),
        Box::new(perf_prog),
        Box::new(ring),
        Box::new(drops),
        Box::new(map),
    ]
}

/// Failures on the way: a rejected program, a missing tracepoint, a uprobe on a missing file.
fn fail_everywhere() {
    let mut asm = Asm::new();
    asm.mov64_reg(Reg::R0, Reg::R5).exit();
    assert!(prog::load(ProgType::Tracepoint, &asm.finish().unwrap(), "GPL").is_err());
    let mut asm = Asm::new();
    asm.mov64_imm(Reg::R0, 0).exit();
    let prog = load(ProgType::Kprobe, &asm.finish().unwrap());
    assert!(attach_tracepoint(&prog, "syscalls", "sys_enter_nothing").is_err());
    let spec = UprobeSpec {
        path: "/no/such/binary".into(),
        offset: 0x1000,
        ref_ctr_offset: None,
        pid: None,
        retprobe: false,
    };
    assert!(attach_uprobe(&prog, &spec).is_err());
    assert!(RingBuf::create(12288, "dtk_test_res").is_err());
}

#[test]
#[ignore = "run alone in a child process by nothing_is_left_open_after_drop_or_error"]
fn nothing_is_left_open_after_drop_or_error_inner() {
    if std::env::var(ALONE_ENV).as_deref() != Ok("1") {
        eprintln!("skipped: runs only inside nothing_is_left_open_after_drop_or_error");
        return;
    }
    // tracefs lookups cache their root once; do that before counting.
    tracefs::read_format("syscalls", "sys_enter_close").unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let before = held();
    let everything = attach_everything(scratch.path());
    let during = held();
    assert!(
        during.0 >= before.0 + 9 && during.1 > before.1,
        "{before:?} {during:?}"
    );
    drop(everything);
    assert_eq!(held(), before, "after drop");
    fail_everywhere();
    assert_eq!(held(), before, "after failures");
}
