//! dtk's integration tests: one binary, one module per area.
//!
//! Kernel tests (attach, see events, detach) need root and a kernel with BPF. They skip with a
//! note when that is missing, and fail instead when `DTK_REQUIRE_KERNEL=1` (CI sets it).

mod alloc;
mod bpf_runtime;
mod cli;
mod codegen;
mod d_frontend;
mod destructive;
mod exec;
mod follow;
mod hostile;
mod json;
#[cfg(dtk_libdtrace)]
mod libdtrace;
mod lifetime;
mod live;
mod opens;
mod process_state;
mod pyflow;
mod run_linux;
mod semantics;
mod speculation;
mod syscalls;
mod usdt;
mod util;
