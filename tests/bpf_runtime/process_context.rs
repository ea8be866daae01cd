//! What programs read about the running process (helper results) and cpu-clock samples.

use super::*;

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
    // The window is timed from attached to detaching, so a slow attach on a busy machine does
    // not count as time without samples.
    let link = perf::attach_cpu_clock(&prog, perf::CpuClock::EveryCpu { hz: HZ })
        .and_then(|l| l.enabled())
        .unwrap();
    let start = std::time::Instant::now();
    // cpu-clock does not tick on an idle CPU (NO_HZ), so keep every CPU busy: one spinning
    // thread pinned to each.
    let online = dtk::internals::bpf::cpus::online().unwrap();
    let spinners: Vec<_> = online
        .iter()
        .map(|&cpu| {
            std::thread::spawn(move || {
                // SAFETY: a zeroed cpu_set_t is empty; CPU_SET and sched_setaffinity only
                // touch the set we own and this thread's affinity.
                unsafe {
                    let mut set: libc::cpu_set_t = std::mem::zeroed();
                    libc::CPU_SET(cpu as usize, &mut set);
                    libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set);
                }
                while start.elapsed() < Duration::from_millis(500) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    spinners.into_iter().for_each(|t| t.join().unwrap());
    let elapsed = start.elapsed().as_secs_f64();
    drop(link);
    let key = 0u32.to_ne_bytes();
    let cpus = dtk::internals::bpf::cpus::online().unwrap().len() as f64;
    let want = HZ as f64 * elapsed * cpus;
    let got = counts.sum_u64(&key).unwrap() as f64;
    // The upper bound checks the frequency; the lower one is loose because a vCPU that the
    // host does not run gets fewer timer ticks (seen here: half the samples under load).
    assert!(
        got > want * 0.25 && got < want * 1.5,
        "{got} samples, expected about {want}; per CPU: {:?}",
        counts.lookup_per_cpu(&key).unwrap()
    );
    let per_cpu = counts.lookup_per_cpu(&key).unwrap().unwrap();
    assert!(
        per_cpu.iter().take(cpus as usize).all(|v| v != &[0; 8]),
        "a CPU had no samples: {per_cpu:?}"
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
    let link = attach_tracepoint(&prog, "syscalls", "sys_enter_newuname")
        .and_then(|l| l.enabled())
        .unwrap();
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
    let cpus = dtk::internals::bpf::cpus::possible().unwrap();
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
