//! Kernel tests of the eBPF runtime: maps, program load and the verifier log, the ring buffer
//! (flood, wraparound, discards), and real events from tracepoints, uprobes and cpu-clock.
//!
//! Each test builds its programs with the assembler, computes its own ground truth, and drops
//! every link and map before it returns. Tests run in parallel threads of one process, so
//! programs filter on the test's own thread id (or on a child's pid) wherever other activity
//! could interfere. This file holds the program builders the test modules share.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dtk::internals::attach::tracepoint::attach_tracepoint;
use dtk::internals::attach::uprobe::{attach_uprobe, UprobeSpec};
use dtk::internals::attach::{perf, AttachError};
use dtk::internals::bpf::insn::{AluOp, Asm, Cond, Helper, Insn, Reg, Size, Src};
use dtk::internals::bpf::prog::{self, LoadError, ProgType, Program};
use dtk::internals::bpf::DropCounter;
use dtk::internals::bpf::RingBuf;
use dtk::internals::bpf::{Map, MapError, MapType, Update};
use dtk::internals::inspect::tracefs::{self, TracefsError};
use dtk::internals::inspect::ElfImage;

use crate::util::kernel_available;

mod load_and_maps;
mod process_context;
mod resources;
mod ring_buffer;
mod tracepoints;
mod uprobes;

fn load(kind: ProgType, insns: &[Insn]) -> Program {
    match prog::load(kind, insns, "GPL") {
        Ok(p) => p,
        Err(e) => panic!(
            "load failed: {e}\n{}",
            dtk::internals::bpf::insn::disassemble(insns)
        ),
    }
}

fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// Emits `if (u32) bpf_get_current_pid_tgid() != tid goto skip` (clobbers R0–R5).
fn only_thread(asm: &mut Asm, tid: u32, skip: dtk::internals::bpf::insn::Label) {
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
    let format = tracefs::read_format(category, name).unwrap();
    format.field(field).unwrap().offset as i16
}

/// `close(fd)` on a descriptor that is certainly not open: a harmless syscall with an argument.
fn close_unopened(fd: u64) {
    // SAFETY: closing a descriptor number far above any open one only returns EBADF.
    unsafe { libc::close(fd as i32) };
}

const UNOPENED_FD_BASE: u64 = 900_000;

/// A record as native-endian u64 words.
fn words(rec: &[u8]) -> Vec<u64> {
    rec.chunks(8)
        .map(|w| u64::from_ne_bytes(w.try_into().unwrap()))
        .collect()
}
