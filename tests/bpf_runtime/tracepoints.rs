//! Tracepoints with real events: the files a child `cat` opens, and a child's fork, exec,
//! exit and raw syscalls.

use super::*;

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
    let link = attach_tracepoint(&prog, "syscalls", "sys_enter_openat")
        .and_then(|l| l.enabled())
        .unwrap();
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
/// For one tracepoint: sends (tag, tgid, the u32 field at `field_off`) and, if `data_loc` is
/// given, up to 24 bytes of the `__data_loc` string at that offset.
fn sched_program(ring: &RingBuf, tag: i32, field_off: i16, data_loc: Option<i16>) -> Vec<Insn> {
    let mut asm = Asm::new();
    asm.mov64_reg(Reg::R6, Reg::R1)
        .st(Size::DW, Reg::R10, -48, tag)
        .call(Helper::GetCurrentPidTgid)
        .alu64(AluOp::Rsh, Reg::R0, Src::Imm(32))
        .stx(Size::DW, Reg::R10, -40, Reg::R0)
        .ldx(Size::W, Reg::R1, Reg::R6, field_off)
        .stx(Size::DW, Reg::R10, -32, Reg::R1);
    for slot in [-24, -16, -8] {
        asm.st(Size::DW, Reg::R10, slot, 0);
    }
    if let Some(loc) = data_loc {
        // A __data_loc field is a u32: offset of the bytes in the record (low 16 bits).
        asm.ldx(Size::W, Reg::R3, Reg::R6, loc)
            .alu64(AluOp::And, Reg::R3, Src::Imm(0xffff))
            .alu64(AluOp::Add, Reg::R3, Src::Reg(Reg::R6))
            .mov64_reg(Reg::R1, Reg::R10)
            .alu64(AluOp::Add, Reg::R1, Src::Imm(-24))
            .mov64_imm(Reg::R2, 24)
            .call(Helper::ProbeReadKernelStr);
    }
    asm.ld_map_fd(Reg::R1, ring.fd())
        .mov64_reg(Reg::R2, Reg::R10)
        .alu64(AluOp::Add, Reg::R2, Src::Imm(-48))
        .mov64_imm(Reg::R3, 48)
        .mov64_imm(Reg::R4, 0)
        .call(Helper::RingbufOutput)
        .mov64_imm(Reg::R0, 0)
        .exit();
    asm.finish().unwrap()
}

#[test]
fn sched_and_raw_syscall_tracepoints_see_a_child_fork_exec_and_exit() {
    if !kernel_available("sched_and_raw_syscall_tracepoints_see_a_child_fork_exec_and_exit") {
        return;
    }
    let mut ring = RingBuf::create(1 << 22, "dtk_test_sched").unwrap();
    let off = |cat: &str, name: &str, field: &str| {
        tracefs::read_format(cat, name)
            .unwrap()
            .field(field)
            .unwrap()
            .offset as i16
    };
    let points = [
        (
            "sched",
            "sched_process_fork",
            off("sched", "sched_process_fork", "child_pid"),
            None,
        ),
        (
            "sched",
            "sched_process_exec",
            off("sched", "sched_process_exec", "pid"),
            Some(off("sched", "sched_process_exec", "filename")),
        ),
        (
            "sched",
            "sched_process_exit",
            off("sched", "sched_process_exit", "pid"),
            None,
        ),
        (
            "raw_syscalls",
            "sys_enter",
            off("raw_syscalls", "sys_enter", "id"),
            None,
        ),
    ];
    let progs: Vec<Program> = points
        .iter()
        .enumerate()
        .map(|(tag, &(_, _, field, loc))| {
            load(
                ProgType::Tracepoint,
                &sched_program(&ring, tag as i32, field, loc),
            )
        })
        .collect();
    let links: Vec<_> = points
        .iter()
        .zip(&progs)
        .map(|(&(cat, name, _, _), prog)| {
            attach_tracepoint(prog, cat, name)
                .and_then(|l| l.enabled())
                .unwrap()
        })
        .collect();
    let child = Command::new("/bin/true").spawn().unwrap();
    let pid = u64::from(child.id());
    let status = child.wait_with_output().unwrap().status;
    drop(links);
    assert!(status.success());
    let me = u64::from(std::process::id());
    let (mut fork, mut exec, mut exit, mut syscalls) = (false, None, false, 0);
    ring.consume(|rec| match words(&rec[..24])[..] {
        [0, tgid, child] if tgid == me && child == pid => fork = true,
        [1, tgid, field] if tgid == pid && field == pid => {
            let name = &rec[24..];
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            exec = Some(String::from_utf8_lossy(&name[..end]).into_owned());
        }
        [2, tgid, field] if tgid == pid && field == pid => exit = true,
        [3, tgid, _] if tgid == pid => syscalls += 1,
        _ => {}
    });
    assert!(fork, "no fork of {pid} seen");
    assert_eq!(exec.as_deref(), Some("/bin/true"));
    assert!(exit, "no exit of {pid} seen");
    assert!(syscalls > 5, "{syscalls} syscalls of /bin/true seen");
}
