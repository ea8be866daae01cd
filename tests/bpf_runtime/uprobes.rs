//! Uprobes and uretprobes on libc symbols, and the error for a stale foreign probe.

use super::*;

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

/// A uprobe program that sends (tgid, tag, return register), for thread `tid` only if given.
fn tagged_program(ring: &RingBuf, tid: Option<u32>, tag: i32) -> Vec<Insn> {
    let mut asm = Asm::new();
    let out = asm.label();
    asm.mov64_reg(Reg::R6, Reg::R1);
    if let Some(tid) = tid {
        only_thread(&mut asm, tid, out);
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

#[test]
fn uprobe_and_uretprobe_on_a_libc_symbol_fire_in_this_process() {
    if !kernel_available("uprobe_and_uretprobe_on_a_libc_symbol_fire_in_this_process") {
        return;
    }
    let pid = std::process::id();
    let mut ring = RingBuf::create(1 << 16, "dtk_test_uprobe").unwrap();
    let entry = load(ProgType::Kprobe, &tagged_program(&ring, Some(gettid()), 1));
    let exit = load(ProgType::Kprobe, &tagged_program(&ring, Some(gettid()), 2));
    let mut spec = libc_function("getpid");
    spec.pid = Some(pid as i32);
    let entry_link = attach_uprobe(&entry, &spec)
        .and_then(|l| l.enabled())
        .unwrap();
    spec.retprobe = true;
    let exit_link = attach_uprobe(&exit, &spec)
        .and_then(|l| l.enabled())
        .unwrap();
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
    // Only this thread's calls count: other test threads call getpid too (std::process::id).
    assert_eq!(entries, CALLS);
    assert_eq!(returns.len(), CALLS);
    assert!(returns.iter().all(|&v| v == u64::from(pid)), "{returns:?}");
}

#[test]
fn uprobe_for_one_pid_sees_each_write_of_a_child_cat() {
    use std::io::{BufRead, BufReader, Write};
    if !kernel_available("uprobe_for_one_pid_sees_each_write_of_a_child_cat") {
        return;
    }
    let mut child = Command::new("/bin/cat")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut ring = RingBuf::create(1 << 16, "dtk_test_uprobe").unwrap();
    let prog = load(ProgType::Kprobe, &tagged_program(&ring, None, 1));
    let mut spec = libc_function("write");
    spec.pid = Some(pid as i32);
    let link = attach_uprobe(&prog, &spec)
        .and_then(|l| l.enabled())
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // One line at a time, each echoed before the next is sent: cat makes one write() per line.
    const LINES: usize = 5;
    for n in 0..LINES {
        // One write_all of the whole line: writeln! would write it in pieces.
        stdin.write_all(format!("line {n}\n").as_bytes()).unwrap();
        let mut echo = String::new();
        stdout.read_line(&mut echo).unwrap();
        assert_eq!(echo, format!("line {n}\n"));
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    drop(link);
    let mut tgids = Vec::new();
    ring.consume(|rec| tgids.push(words(rec)[0]));
    assert_eq!(tgids, vec![u64::from(pid); LINES]);
}

/// Adds a tracefs uprobe the way another tracer would, enables it, and removes it on drop.
struct ForeignProbe {
    tracefs: PathBuf,
    group: String,
}

impl ForeignProbe {
    fn add(file: &Path, offset: u64, ref_ctr: u64) -> ForeignProbe {
        let tracefs = dtk::internals::inspect::tracefs::root()
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
        &tagged_program(&RingBuf::create(4096, "x").unwrap(), None, 1),
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
        dtk::internals::inspect::tracefs::root()
            .unwrap()
            .join("uprobe_events"),
    )
    .unwrap();
    assert!(!events.contains("dtk_test_"), "left behind: {events}");
}
