//! The eBPF runtime: the bpf()/perf_event_open() choke point (`sys`, with a fake kernel for
//! unit tests), the instruction builder and disassembler (`insn`, `disasm`), maps, map specs
//! and the ring buffer reader (`maps`, `ringbuf`, `drops` for what the ring buffer refused,
//! `gate` to arm and disarm a run's programs together, `follow` for the process tree a run
//! follows), program load with the verifier log
//! (`prog`), and the privilege check (`access`). No libbpf and no compiler: programs are
//! built with `insn::Asm` at run time, naming their maps by `insn::MapRef` until loaded.
//!
//! Minimum kernel: 5.8 (ring buffer, CAP_BPF/CAP_PERFMON, bpf_probe_read_user).

pub(crate) mod access;
pub(crate) mod cpus;
pub(crate) mod disasm;
pub(crate) mod drops;
pub(crate) mod follow;
pub(crate) mod gate;
pub(crate) mod insn;
pub(crate) mod maps;
pub(crate) mod prog;
pub(crate) mod ringbuf;
pub(crate) mod sys;
