//! Attach points: tracepoints, uprobes, USDT, perf events.

pub mod elf;
