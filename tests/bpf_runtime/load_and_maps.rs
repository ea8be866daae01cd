//! Program load (verifier log), maps, tracefs lookups and the access check.

use super::*;

#[test]
fn maps_update_lookup_iterate_delete() {
    if !kernel_available("maps_update_lookup_iterate_delete") {
        return;
    }
    let map = Map::create(MapType::Hash, 4, 8, 16, "dtk_test_hash").unwrap();
    for k in 1u32..=3 {
        let v = u64::from(k) * 100;
        map.update(&k.to_ne_bytes(), &v.to_ne_bytes(), Update::NoExist)
            .unwrap();
    }
    let v = map.lookup(&2u32.to_ne_bytes()).unwrap().unwrap();
    assert_eq!(u64::from_ne_bytes(v.try_into().unwrap()), 200);
    let mut keys: Vec<u32> = map
        .keys()
        .unwrap()
        .into_iter()
        .map(|k| u32::from_ne_bytes(k.try_into().unwrap()))
        .collect();
    keys.sort();
    assert_eq!(keys, [1, 2, 3]);
    assert!(map.delete(&2u32.to_ne_bytes()).unwrap());
    assert!(!map.delete(&2u32.to_ne_bytes()).unwrap());
    assert_eq!(map.lookup(&2u32.to_ne_bytes()).unwrap(), None);
    assert!(matches!(
        map.update(&[0; 3], &[0; 8], Update::Any),
        Err(MapError::WrongSize { what: "key", .. })
    ));
    assert!(map
        .update(&1u32.to_ne_bytes(), &[0; 8], Update::NoExist)
        .is_err());
}

#[test]
fn per_cpu_maps_hold_one_value_per_cpu() {
    if !kernel_available("per_cpu_maps_hold_one_value_per_cpu") {
        return;
    }
    let cpus = dtk::internals::bpf::cpus::possible().unwrap().len();
    for kind in [MapType::PerCpuArray, MapType::PerCpuHash] {
        let map = Map::create(kind, 4, 8, 4, "dtk_test_pcpu").unwrap();
        assert_eq!(map.per_cpu_value_size(), cpus * 8);
        let value: Vec<u8> = (1..=cpus as u64).flat_map(|n| n.to_ne_bytes()).collect();
        map.update(&0u32.to_ne_bytes(), &value, Update::Any)
            .unwrap();
        let want = (cpus * (cpus + 1) / 2) as u64;
        assert_eq!(map.sum_u64(&0u32.to_ne_bytes()).unwrap(), want);
        let slots = map.lookup_per_cpu(&0u32.to_ne_bytes()).unwrap().unwrap();
        assert_eq!(slots.len(), cpus);
        assert_eq!(slots[0], 1u64.to_ne_bytes());
    }
}

#[test]
fn a_rejected_program_carries_the_verifier_log() {
    if !kernel_available("a_rejected_program_carries_the_verifier_log") {
        return;
    }
    let mut asm = Asm::new();
    // R2 is never written: the verifier must refuse to read it.
    asm.mov64_reg(Reg::R0, Reg::R2).exit();
    let err = prog::load(ProgType::Tracepoint, &asm.finish().unwrap(), "GPL").unwrap_err();
    let LoadError::Rejected { source, log } = &err else {
        panic!("expected a verifier rejection, got {err:?}");
    };
    assert_eq!(source.errno(), Some(libc::EACCES));
    assert!(log.contains("R2 !read_ok"), "log: {log}");
    assert!(err.to_string().contains("bpf(BPF_PROG_LOAD)"));
    assert!(err.to_string().contains("R2 !read_ok"));
}

#[test]
fn a_long_verifier_log_is_read_whole() {
    if !kernel_available("a_long_verifier_log_is_read_whole") {
        return;
    }
    // 20,000 instructions of log, then an error at the end: more than the first 64 KiB buffer.
    let mut asm = Asm::new();
    asm.mov64_imm(Reg::R0, 0);
    for _ in 0..20_000 {
        asm.alu64(AluOp::Add, Reg::R0, Src::Imm(1));
    }
    asm.mov64_reg(Reg::R0, Reg::R3).exit();
    let err = prog::load(ProgType::Tracepoint, &asm.finish().unwrap(), "GPL").unwrap_err();
    let LoadError::Rejected { log, .. } = &err else {
        panic!("expected a verifier rejection, got {err:?}");
    };
    assert!(log.len() > 64 * 1024, "log is {} bytes", log.len());
    assert!(log.contains("R3 !read_ok"));
}

#[test]
fn a_missing_tracepoint_is_named() {
    if !kernel_available("a_missing_tracepoint_is_named") {
        return;
    }
    let err = tracefs::read_format("syscalls", "sys_enter_no_such_call").unwrap_err();
    assert!(matches!(
        err,
        TracefsError::NoSuchTracepoint {
            category_exists: true,
            ..
        }
    ));
    assert!(err
        .to_string()
        .contains("tracepoint syscalls:sys_enter_no_such_call does not exist"));
    let err = tracefs::read_format("../..", "x").unwrap_err();
    assert!(matches!(
        err,
        TracefsError::NoSuchTracepoint {
            category_exists: false,
            ..
        }
    ));
}

#[test]
fn tracepoint_formats_give_field_layouts() {
    if !kernel_available("tracepoint_formats_give_field_layouts") {
        return;
    }
    let openat = tracefs::read_format("syscalls", "sys_enter_openat").unwrap();
    let filename = openat.field("filename").unwrap();
    assert_eq!(
        (filename.size, filename.c_type.as_str()),
        (8, "const char *")
    );
    let exec = tracefs::read_format("sched", "sched_process_exec").unwrap();
    assert!(exec
        .field("filename")
        .unwrap()
        .c_type
        .starts_with("__data_loc"));
    let common_pid = exec.field("common_pid").unwrap();
    assert!(common_pid.signed && common_pid.is_common());
    for (category, name) in [
        ("raw_syscalls", "sys_enter"),
        ("sched", "sched_process_exit"),
        ("sched", "sched_process_fork"),
    ] {
        let format = tracefs::read_format(category, name).unwrap();
        assert!(format.id > 0 && format.fields.len() > 4, "{format:?}");
    }
}
#[test]
fn the_access_check_passes_where_kernel_tests_run() {
    if !kernel_available("the_access_check_passes_where_kernel_tests_run") {
        return;
    }
    dtk::internals::bpf::access::check().unwrap();
}

const UNMOUNTED_ENV: &str = "DTK_TEST_TRACEFS_UNMOUNTED";

/// Runs `tracefs_is_mounted_when_missing_inner` in this test binary, inside a private mount
/// namespace where tracefs and debugfs are unmounted, so the host's mounts are untouched.
#[test]
fn tracefs_is_mounted_when_missing() {
    if !kernel_available("tracefs_is_mounted_when_missing") {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let script = "umount /sys/kernel/tracing 2>/dev/null; umount /sys/kernel/debug 2>/dev/null; \
                  exec \"$0\" --exact bpf_runtime::load_and_maps::tracefs_is_mounted_when_missing_inner \
                  --include-ignored --test-threads 1";
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .arg(&exe)
        .env(UNMOUNTED_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "run by tracefs_is_mounted_when_missing in a private mount namespace"]
fn tracefs_is_mounted_when_missing_inner() {
    if std::env::var(UNMOUNTED_ENV).as_deref() != Ok("1") {
        eprintln!("skipped: runs only inside tracefs_is_mounted_when_missing");
        return;
    }
    for dir in [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ] {
        assert!(!Path::new(dir).exists(), "{dir} is still there");
    }
    let root = dtk::internals::inspect::tracefs::root().unwrap();
    assert_eq!(root, Path::new("/sys/kernel/tracing"));
    let format = tracefs::read_format("syscalls", "sys_enter_openat").unwrap();
    assert!(format.field("filename").is_some());
}
