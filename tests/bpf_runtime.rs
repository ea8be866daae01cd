//! Kernel tests of the eBPF runtime: maps, program load and the verifier log, the ring buffer
//! (flood, wraparound, discards), and real events from tracepoints, uprobes and cpu-clock.
//!
//! Each test builds its programs with the assembler, computes its own ground truth, and drops
//! every link and map before it returns. Tests run in parallel threads of one process, so
//! programs filter on the test's own thread id (or on a child's pid) wherever other activity
//! could interfere.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dtk::backend::linux::attach::elf::ElfImage;
use dtk::backend::linux::attach::tracepoint::{attach_tracepoint, tracepoint_format};
use dtk::backend::linux::attach::uprobe::{attach_uprobe, UprobeSpec};
use dtk::backend::linux::attach::{perf, AttachError};
use dtk::backend::linux::bpf::drops::DropCounter;
use dtk::backend::linux::bpf::insn::{AluOp, Asm, Cond, Helper, Insn, Reg, Size, Src};
use dtk::backend::linux::bpf::maps::{Map, MapError, MapType, Update};
use dtk::backend::linux::bpf::prog::{self, LoadError, ProgType, Program};
use dtk::backend::linux::bpf::ringbuf::RingBuf;

use crate::util::kernel_available;

fn load(kind: ProgType, insns: &[Insn]) -> Program {
    match prog::load(kind, insns, "GPL") {
        Ok(p) => p,
        Err(e) => panic!(
            "load failed: {e}\n{}",
            dtk::backend::linux::bpf::insn::disassemble(insns)
        ),
    }
}

fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// Emits `if (u32) bpf_get_current_pid_tgid() != tid goto skip` (clobbers R0–R5).
fn only_thread(asm: &mut Asm, tid: u32, skip: dtk::backend::linux::bpf::insn::Label) {
    asm.call(Helper::GetCurrentPidTgid)
        .mov32_reg(Reg::R0, Reg::R0)
        .jmp_if(Cond::Ne, Reg::R0, Src::Imm(tid as i32), skip);
}

/// A program that, for thread `tid` and arguments ≥ `UNOPENED_FD_BASE`, reserves `len` bytes, fills each u64 with the value of
/// `ctx + arg_off` (a syscall argument), and discards the record when that value is odd
/// (if `discard_odd`), submitting it otherwise. Failed reserves go to `drops`.
fn reserve_program(
    ring: &RingBuf,
    drops: &DropCounter,
    tid: u32,
    arg_off: i16,
    len: i32,
    discard_odd: bool,
) -> Vec<Insn> {
    let mut asm = Asm::new();
    let (out, lost, discard) = (asm.label(), asm.label(), asm.label());
    asm.mov64_reg(Reg::R6, Reg::R1);
    only_thread(&mut asm, tid, out);
    // Only the test's own close() calls: the close of the perf event fd when the link drops
    // would otherwise count too.
    asm.ldx(Size::DW, Reg::R7, Reg::R6, arg_off)
        .jmp_if(Cond::Lt, Reg::R7, Src::Imm(UNOPENED_FD_BASE as i32), out)
        .ld_map_fd(Reg::R1, ring.fd())
        .mov64_imm(Reg::R2, len)
        .mov64_imm(Reg::R3, 0)
        .call(Helper::RingbufReserve)
        .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), lost);
    for word in 0..(len / 8) as i16 {
        asm.stx(Size::DW, Reg::R0, word * 8, Reg::R7);
    }
    asm.mov64_reg(Reg::R1, Reg::R0).mov64_imm(Reg::R2, 0);
    if discard_odd {
        asm.mov64_reg(Reg::R8, Reg::R7)
            .alu64(AluOp::And, Reg::R8, Src::Imm(1))
            .jmp_if(Cond::Ne, Reg::R8, Src::Imm(0), discard);
    }
    asm.call(Helper::RingbufSubmit).jmp(out);
    if discard_odd {
        asm.bind(discard).call(Helper::RingbufDiscard).jmp(out);
    }
    asm.bind(lost);
    drops.emit_count(&mut asm, -4);
    asm.bind(out).mov64_imm(Reg::R0, 0).exit();
    asm.finish().unwrap()
}

fn syscall_arg_offset(category: &str, name: &str, field: &str) -> i16 {
    let format = tracepoint_format(category, name).unwrap();
    format.field(field).unwrap().offset as i16
}

/// `close(fd)` on a descriptor that is certainly not open: a harmless syscall with an argument.
fn close_unopened(fd: u64) {
    // SAFETY: closing a descriptor number far above any open one only returns EBADF.
    unsafe { libc::close(fd as i32) };
}

const UNOPENED_FD_BASE: u64 = 900_000;

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
    let cpus = dtk::backend::linux::bpf::cpus::possible().unwrap().len();
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
    let err = tracepoint_format("syscalls", "sys_enter_no_such_call").unwrap_err();
    assert!(matches!(
        err,
        AttachError::NoSuchTracepoint {
            category_exists: true,
            ..
        }
    ));
    assert!(err
        .to_string()
        .contains("tracepoint syscalls:sys_enter_no_such_call does not exist"));
    let err = tracepoint_format("../..", "x").unwrap_err();
    assert!(matches!(
        err,
        AttachError::NoSuchTracepoint {
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
    let openat = tracepoint_format("syscalls", "sys_enter_openat").unwrap();
    let filename = openat.field("filename").unwrap();
    assert_eq!(
        (filename.size, filename.c_type.as_str()),
        (8, "const char *")
    );
    let exec = tracepoint_format("sched", "sched_process_exec").unwrap();
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
        let format = tracepoint_format(category, name).unwrap();
        assert!(format.id > 0 && format.fields.len() > 4, "{format:?}");
    }
}

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
fn openat_program(ring: &RingBuf, drops: &DropCounter) -> Vec<Insn> {
    let filename = syscall_arg_offset("syscalls", "sys_enter_openat", "filename");
    const REC: i16 = -272; // u64 tgid, then 256 bytes of path
    let mut asm = Asm::new();
    let out = asm.label();
    asm.mov64_reg(Reg::R6, Reg::R1)
        .call(Helper::GetCurrentPidTgid)
        .alu64(AluOp::Rsh, Reg::R0, Src::Imm(32))
        .stx(Size::DW, Reg::R10, REC, Reg::R0)
        .mov64_reg(Reg::R1, Reg::R10)
        .alu64(AluOp::Add, Reg::R1, Src::Imm(i32::from(REC) + 8))
        .mov64_imm(Reg::R2, 256)
        .ldx(Size::DW, Reg::R3, Reg::R6, filename)
        .call(Helper::ProbeReadUserStr)
        .ld_map_fd(Reg::R1, ring.fd())
        .mov64_reg(Reg::R2, Reg::R10)
        .alu64(AluOp::Add, Reg::R2, Src::Imm(REC.into()))
        .mov64_imm(Reg::R3, 264)
        .mov64_imm(Reg::R4, 0)
        .call(Helper::RingbufOutput)
        .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), out);
    drops.emit_count(&mut asm, -276);
    asm.bind(out).mov64_imm(Reg::R0, 0).exit();
    asm.finish().unwrap()
}

fn tgid_and_text(rec: &[u8]) -> (u32, String) {
    let tgid = u64::from_ne_bytes(rec[..8].try_into().unwrap()) as u32;
    let text = &rec[8..];
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    (tgid, String::from_utf8_lossy(&text[..end]).into_owned())
}

/// What the dynamic loader opens before `main`: its cache, then each needed library by the
/// path `ldd` resolves (the test's ground truth for the loader's part).
fn loader_opens(binary: &str) -> Vec<String> {
    let out = Command::new("ldd")
        .arg(binary)
        .env_clear()
        .output()
        .unwrap();
    let mut paths = vec!["/etc/ld.so.cache".to_string()];
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((_, rest)) = line.split_once("=> ") {
            paths.push(rest.split(" (").next().unwrap().to_string());
        }
    }
    paths
}

#[test]
fn tracepoint_sees_exactly_the_paths_cat_opens() {
    if !kernel_available("tracepoint_sees_exactly_the_paths_cat_opens") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = ["one.txt", "two.txt", "missing.txt"]
        .iter()
        .map(|n| dir.path().join(n))
        .collect();
    std::fs::write(&files[0], "1\n").unwrap();
    std::fs::write(&files[1], "2\n").unwrap();
    let mut ring = RingBuf::create(1 << 20, "dtk_test_opens").unwrap();
    let drops = DropCounter::create("dtk_test_drops").unwrap();
    let prog = load(ProgType::Tracepoint, &openat_program(&ring, &drops));
    let link = attach_tracepoint(&prog, "syscalls", "sys_enter_openat").unwrap();
    let child = Command::new("/bin/cat")
        .args(&files)
        .env_clear()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    drop(link);
    assert_eq!(output.stdout, b"1\n2\n");
    let mut opened = Vec::new();
    ring.consume(|rec| {
        let (tgid, path) = tgid_and_text(rec);
        if tgid == pid {
            opened.push(path);
        }
    });
    let mut want = loader_opens("/bin/cat");
    want.extend(files.iter().map(|f| f.display().to_string()));
    assert_eq!(opened, want);
    assert_eq!(drops.total().unwrap(), 0);
}

/// The C library this test process has mapped (the same file `cat` maps).
fn libc_path() -> PathBuf {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let path = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libc.so.6"))
        .expect("this test process maps libc.so.6");
    PathBuf::from(path)
}

fn libc_function(name: &str) -> UprobeSpec {
    let path = libc_path();
    let image = ElfImage::open(&path).unwrap();
    UprobeSpec {
        offset: image.function(name).unwrap().file_offset,
        path,
        ref_ctr_offset: None,
        pid: None,
        retprobe: false,
    }
}

/// Offset of the return-value register in `struct pt_regs`.
const RETURN_REG: i16 = if cfg!(target_arch = "aarch64") { 0 } else { 80 };

/// A uprobe program that sends (tag, return register) for process `tgid` (any if 0).
fn tagged_program(ring: &RingBuf, tgid: u32, tag: i32) -> Vec<Insn> {
    let mut asm = Asm::new();
    let out = asm.label();
    asm.mov64_reg(Reg::R6, Reg::R1);
    if tgid != 0 {
        asm.call(Helper::GetCurrentPidTgid)
            .alu64(AluOp::Rsh, Reg::R0, Src::Imm(32))
            .jmp_if(Cond::Ne, Reg::R0, Src::Imm(tgid as i32), out);
    }
    asm.call(Helper::GetCurrentPidTgid)
        .alu64(AluOp::Rsh, Reg::R0, Src::Imm(32))
        .stx(Size::DW, Reg::R10, -24, Reg::R0)
        .st(Size::DW, Reg::R10, -16, tag)
        .ldx(Size::DW, Reg::R1, Reg::R6, RETURN_REG)
        .stx(Size::DW, Reg::R10, -8, Reg::R1)
        .ld_map_fd(Reg::R1, ring.fd())
        .mov64_reg(Reg::R2, Reg::R10)
        .alu64(AluOp::Add, Reg::R2, Src::Imm(-24))
        .mov64_imm(Reg::R3, 24)
        .mov64_imm(Reg::R4, 0)
        .call(Helper::RingbufOutput)
        .bind(out)
        .mov64_imm(Reg::R0, 0)
        .exit();
    asm.finish().unwrap()
}

fn words(rec: &[u8]) -> Vec<u64> {
    rec.chunks(8)
        .map(|w| u64::from_ne_bytes(w.try_into().unwrap()))
        .collect()
}

#[test]
fn uprobe_and_uretprobe_on_a_libc_symbol_fire_in_this_process() {
    if !kernel_available("uprobe_and_uretprobe_on_a_libc_symbol_fire_in_this_process") {
        return;
    }
    let pid = std::process::id();
    let mut ring = RingBuf::create(1 << 16, "dtk_test_uprobe").unwrap();
    let entry = load(ProgType::Kprobe, &tagged_program(&ring, pid, 1));
    let exit = load(ProgType::Kprobe, &tagged_program(&ring, pid, 2));
    let mut spec = libc_function("getpid");
    spec.pid = Some(pid as i32);
    let entry_link = attach_uprobe(&entry, &spec).unwrap();
    spec.retprobe = true;
    let exit_link = attach_uprobe(&exit, &spec).unwrap();
    const CALLS: usize = 25;
    for _ in 0..CALLS {
        // SAFETY: getpid has no preconditions.
        assert_eq!(unsafe { libc::getpid() } as u32, pid);
    }
    drop((entry_link, exit_link));
    let mut entries = 0;
    let mut returns = Vec::new();
    ring.consume(|rec| match words(rec)[..] {
        [_, 1, _] => entries += 1,
        [_, 2, value] => returns.push(value),
        _ => panic!("unexpected record {rec:?}"),
    });
    // Other test threads may call getpid too (std::process::id does); ours are a lower bound.
    assert!(entries >= CALLS, "{entries} entries");
    assert_eq!(returns.len(), entries);
    assert!(returns.iter().all(|&v| v == u64::from(pid)), "{returns:?}");
}

#[test]
fn uprobe_on_a_libc_symbol_fires_in_a_child_cat() {
    if !kernel_available("uprobe_on_a_libc_symbol_fires_in_a_child_cat") {
        return;
    }
    let mut ring = RingBuf::create(1 << 20, "dtk_test_uprobe").unwrap();
    let prog = load(ProgType::Kprobe, &tagged_program(&ring, 0, 1));
    let link = attach_uprobe(&prog, &libc_function("malloc")).unwrap();
    let child = Command::new("/bin/cat")
        .arg("/proc/self/stat")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let status = child.wait_with_output().unwrap().status;
    drop(link);
    assert!(status.success());
    let mut hits = 0;
    ring.consume(|rec| hits += usize::from(words(rec)[0] == u64::from(pid)));
    assert!(hits >= 1, "malloc never seen in cat (pid {pid})");
}

/// Adds a tracefs uprobe the way another tracer would, enables it, and removes it on drop.
struct ForeignProbe {
    tracefs: PathBuf,
    group: String,
}

impl ForeignProbe {
    fn add(file: &Path, offset: u64, ref_ctr: u64) -> ForeignProbe {
        let tracefs = dtk::backend::linux::attach::tracefs::root()
            .unwrap()
            .to_path_buf();
        let group = format!("dtk_test_{}", std::process::id());
        let line = format!(
            "p:{group}/stale {}:{offset:#x}({ref_ctr:#x})\n",
            file.display()
        );
        append(&tracefs.join("uprobe_events"), &line);
        let probe = ForeignProbe { tracefs, group };
        std::fs::write(probe.enable_path(), "1").unwrap();
        probe
    }

    fn enable_path(&self) -> PathBuf {
        self.tracefs
            .join("events")
            .join(&self.group)
            .join("stale/enable")
    }
}

impl Drop for ForeignProbe {
    fn drop(&mut self) {
        let _ = std::fs::write(self.enable_path(), "0");
        append(
            &self.tracefs.join("uprobe_events"),
            &format!("-:{}/stale\n", self.group),
        );
    }
}

fn append(path: &Path, line: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(line.as_bytes()).unwrap();
}

#[test]
fn a_uprobe_refused_for_a_stale_foreign_probe_names_it() {
    if !kernel_available("a_uprobe_refused_for_a_stale_foreign_probe_names_it") {
        return;
    }
    // A private copy of a binary, so that no other tracer or test is disturbed.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("true");
    std::fs::copy("/bin/true", &file).unwrap();
    let foreign = ForeignProbe::add(&file, 0x1000, 0x2000);
    let prog = load(
        ProgType::Kprobe,
        &tagged_program(&RingBuf::create(4096, "x").unwrap(), 0, 1),
    );
    let spec = UprobeSpec {
        path: file.clone(),
        offset: 0x1000,
        ref_ctr_offset: Some(0x2008),
        pid: None,
        retprobe: false,
    };
    let err = attach_uprobe(&prog, &spec).unwrap_err();
    drop(foreign);
    let AttachError::UprobeConflict { event, .. } = &err else {
        panic!("expected a named conflict, got {err:?}");
    };
    assert_eq!(event, &format!("dtk_test_{}/stale", std::process::id()));
    assert!(err.to_string().contains("another tracer left the probe"));
    let events = std::fs::read_to_string(
        dtk::backend::linux::attach::tracefs::root()
            .unwrap()
            .join("uprobe_events"),
    )
    .unwrap();
    assert!(!events.contains("dtk_test_"), "left behind: {events}");
}

#[test]
fn cpu_clock_samples_every_cpu_at_the_asked_frequency() {
    if !kernel_available("cpu_clock_samples_every_cpu_at_the_asked_frequency") {
        return;
    }
    let counts = Map::create(MapType::PerCpuArray, 4, 8, 1, "dtk_test_prof").unwrap();
    let mut asm = Asm::new();
    let out = asm.label();
    asm.st(Size::W, Reg::R10, -4, 0)
        .ld_map_fd(Reg::R1, counts.fd())
        .mov64_reg(Reg::R2, Reg::R10)
        .alu64(AluOp::Add, Reg::R2, Src::Imm(-4))
        .call(Helper::MapLookupElem)
        .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), out)
        .ldx(Size::DW, Reg::R1, Reg::R0, 0)
        .alu64(AluOp::Add, Reg::R1, Src::Imm(1))
        .stx(Size::DW, Reg::R0, 0, Reg::R1)
        .bind(out)
        .mov64_imm(Reg::R0, 0)
        .exit();
    let prog = load(ProgType::PerfEvent, &asm.finish().unwrap());
    const HZ: u64 = 200;
    let start = std::time::Instant::now();
    let link = perf::attach_cpu_clock(&prog, HZ).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    drop(link);
    let elapsed = start.elapsed().as_secs_f64();
    let key = 0u32.to_ne_bytes();
    let cpus = dtk::backend::linux::bpf::cpus::online().unwrap().len() as f64;
    let want = HZ as f64 * elapsed * cpus;
    let got = counts.sum_u64(&key).unwrap() as f64;
    assert!(
        got > want * 0.5 && got < want * 1.5,
        "{got} samples, expected about {want}"
    );
    let per_cpu = counts.lookup_per_cpu(&key).unwrap().unwrap();
    assert!(
        per_cpu.iter().take(cpus as usize).all(|v| v != &[0; 8]),
        "a CPU had no samples"
    );
}

/// The cgroup v2 id of this process, as `bpf_get_current_cgroup_id` reports it: the inode of
/// its cgroup directory in a cgroup2 mount, or 1 for the root cgroup. None when it cannot be
/// computed here (cgroup2 not mounted and not in the root).
fn own_cgroup_id() -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        right
            .starts_with("cgroup2 ")
            .then(|| left.split_whitespace().nth(4).map(str::to_string))?
    });
    match mount {
        Some(mount) => Some(std::fs::metadata(format!("{mount}{path}")).ok()?.ino()),
        None => (path == "/").then_some(1),
    }
}

#[test]
fn the_helpers_the_code_generator_uses_return_what_the_process_sees() {
    if !kernel_available("the_helpers_the_code_generator_uses_return_what_the_process_sees") {
        return;
    }
    let mut ring = RingBuf::create(4096, "dtk_test_helpers").unwrap();
    let name_off = syscall_arg_offset("syscalls", "sys_enter_newuname", "name");
    let tid = gettid();
    let mut asm = Asm::new();
    let out = asm.label();
    // Record at r10-64: pid_tgid, uid_gid, cgroup id, cpu, ktime, 8 user bytes, comm[16].
    asm.mov64_reg(Reg::R6, Reg::R1)
        .call(Helper::GetCurrentPidTgid)
        .stx(Size::DW, Reg::R10, -64, Reg::R0)
        .mov32_reg(Reg::R0, Reg::R0)
        .jmp_if(Cond::Ne, Reg::R0, Src::Imm(tid as i32), out);
    for (helper, slot) in [
        (Helper::GetCurrentUidGid, -56),
        (Helper::GetCurrentCgroupId, -48),
        (Helper::GetSmpProcessorId, -40),
        (Helper::KtimeGetNs, -32),
    ] {
        asm.call(helper).stx(Size::DW, Reg::R10, slot, Reg::R0);
    }
    asm.mov64_reg(Reg::R1, Reg::R10)
        .alu64(AluOp::Add, Reg::R1, Src::Imm(-24))
        .mov64_imm(Reg::R2, 8)
        .ldx(Size::DW, Reg::R3, Reg::R6, name_off)
        .call(Helper::ProbeReadUser)
        .mov64_reg(Reg::R1, Reg::R10)
        .alu64(AluOp::Add, Reg::R1, Src::Imm(-16))
        .mov64_imm(Reg::R2, 16)
        .call(Helper::GetCurrentComm)
        .ld_map_fd(Reg::R1, ring.fd())
        .mov64_reg(Reg::R2, Reg::R10)
        .alu64(AluOp::Add, Reg::R2, Src::Imm(-64))
        .mov64_imm(Reg::R3, 64)
        .mov64_imm(Reg::R4, 0)
        .call(Helper::RingbufOutput)
        .bind(out)
        .mov64_imm(Reg::R0, 0)
        .exit();
    let prog = load(ProgType::Tracepoint, &asm.finish().unwrap());
    let link = attach_tracepoint(&prog, "syscalls", "sys_enter_newuname").unwrap();
    // SAFETY: utsname is plain bytes; zeroed is a valid value.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    for (dst, src) in uts.sysname.iter_mut().zip(b"dtkmark\0") {
        *dst = *src as libc::c_char;
    }
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: both calls write only into the valid, owned structures passed to them.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
        libc::uname(&mut uts);
    }
    drop(link);
    let before_ns = now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64;
    let mut records = Vec::new();
    ring.consume(|rec| records.push(rec.to_vec()));
    assert_eq!(records.len(), 1);
    let w = words(&records[0][..48]);
    // SAFETY: these getters have no preconditions.
    let (pid, uid, gid) = unsafe { (libc::getpid(), libc::getuid(), libc::getgid()) };
    assert_eq!(w[0], u64::from(pid as u32) << 32 | u64::from(tid));
    assert_eq!(w[1], u64::from(gid) << 32 | u64::from(uid));
    if let Some(cgroup) = own_cgroup_id() {
        assert_eq!(w[2], cgroup);
    }
    let cpus = dtk::backend::linux::bpf::cpus::possible().unwrap();
    assert!(cpus.contains(&(w[3] as u32)), "cpu {}", w[3]);
    assert!(
        w[4] >= before_ns && w[4] - before_ns < 1_000_000_000,
        "ktime {}",
        w[4]
    );
    assert_eq!(&records[0][40..48], b"dtkmark\0");
    let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap();
    let got = &records[0][48..];
    let end = got.iter().position(|&b| b == 0).unwrap_or(16);
    assert_eq!(String::from_utf8_lossy(&got[..end]), comm.trim_end());
}
