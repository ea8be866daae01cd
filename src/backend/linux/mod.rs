//! dtk's own engine for stock Linux with no DTrace installed: a D front end (`d`), eBPF
//! programs loaded through the bpf() syscall (`bpf`), attach points (`attach`).

pub mod attach;
pub mod bpf;
pub mod d;
