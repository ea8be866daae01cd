//! Reading the system: ELF files and their USDT notes, a process's memory map, tracefs and
//! the cgroup tree. Both back ends and the plan use these facts, so this is a leaf module: it
//! loads no BPF and imports nothing from `backend`.
//!
//! - `elf`: symbols → addresses → file offsets, and raw sections.
//! - `usdt`: the USDT probes of an ELF file and their argument specs.
//! - `returns`: the return instructions of a function, where that can be known.
//! - `procmaps`: which mapped file of a process holds a probe (with `ptrace`, why the kernel
//!   refuses to show a map).
//! - `tracefs`: finding tracefs, tracepoint ids and record formats.
//! - `cgroup`: the cgroup v2 hierarchy, which stands in for zones.
//! - `kallsyms`: kernel symbols' addresses, for D's backquoted names.
//! - `symbols`: stack frames as names, from /proc/kallsyms and the ELF symbols of the files
//!   a process maps.

pub(crate) mod btf;
pub(crate) mod cgroup;
pub(crate) mod elf;
pub(crate) mod kallsyms;
pub(crate) mod procmaps;
mod ptrace;
pub(crate) mod returns;
pub(crate) mod symbols;
pub(crate) mod task;
pub(crate) mod tracefs;
pub(crate) mod usdt;
