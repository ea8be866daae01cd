//! The boundary between the kernel half of the Linux engine and its executor: what the plan
//! tells the executor about each probe and each zone, and one decoded firing of a probe.
//!
//! The code generator decides what a probe's BPF program captures (only what the clauses
//! need) and decodes each ring-buffer record into a [`Firing`]; the engine synthesises
//! firings for the probes that live in user space (BEGIN, END, ERROR, tick-N). The executor
//! runs the probe's clauses over the firing.

use std::sync::Arc;

use crate::backend::linux::d::ast::{string_test, BinaryOp, Builtin, Expr, ExprKind};
use crate::event::{ByteString, ProbeDesc};

/// What a probe is; decides how its arguments and `errno` read. Each kind belongs to one
/// provider of the table in `plan::providers`, which says where it fires (`in_kernel`) and
/// whether it has an errno (`sets_errno`); the plan's `Site` says where it is attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    Begin,
    End,
    /// DTrace's ERROR probe: arg1 = epid, arg2 = clause index, arg4 = fault, arg5 = address.
    Error,
    /// tick-N: a perf cpu-clock sample on one CPU.
    Tick,
    /// profile-N: a perf cpu-clock sample on every CPU.
    Profile,
    /// syscall::NAME:entry — args are the system call's arguments.
    SyscallEntry,
    /// syscall::NAME:return — arg0 = arg1 = the raw return value; errno is set from it.
    SyscallReturn,
    /// proc:::exec-success, proc:::exit, proc:::create, … (sched tracepoints).
    Proc,
    /// A USDT probe (python$target:::function-entry …): args are the probe's arguments.
    Usdt,
    /// pid$target::func:entry (args = the function's first six integer arguments) and
    /// pid$target::func:return (arg1 = the return value).
    Uprobe,
}

/// What the executor knows about one probe of the plan. `Firing::probe` indexes the plan's
/// list of these.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeInfo {
    pub desc: Arc<ProbeDesc>,
    pub kind: ProbeKind,
    /// The clauses that run when this probe fires, as indices into the program's clauses in
    /// source order (`Item::Clause` items only, counted from 0), ascending.
    pub clauses: Vec<usize>,
}

/// Number of `argN` values a firing carries (arg0 … arg9).
pub const MAX_ARGS: usize = 10;

/// One firing of a probe, decoded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Firing {
    /// Index into the plan's probes.
    pub probe: u32,
    pub cpu: u32,
    /// CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns), D's `timestamp`.
    pub ts_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    pub gid: u32,
    /// cgroup v2 id of the thread (its cgroup directory's inode number); 0 when unknown.
    pub cgroup_id: u64,
    /// Bit i is set when the thread is in the cgroup of the plan's zone i or below it (see
    /// `Zone`).
    pub zones: u64,
    /// The thread's command name, D's `execname`: bytes, as the thread set them.
    pub comm: ByteString,
    /// arg0 … arg9 as the probe gives them; zero where not captured.
    pub args: [u64; MAX_ARGS],
    /// Strings read in the kernel at the probe from the user pointer in `args[i]`, for the
    /// arguments the program reads with copyinstr (directly or through a variable assigned
    /// from the argument). `truncated` is set when the string was cut at strsize.
    pub strings: Vec<CapturedString>,
    /// Memory read in the kernel at the probe from the user pointer in `args[i]`, for the
    /// arguments the program reads with copyin(argN, size).
    pub bytes: Vec<CapturedBytes>,
    /// Memory read in the kernel at addresses the program computed (a pointer read through
    /// another, `copyinstr(*(uint64_t *)copyin(arg1 + 8, 8))`); only the reads that succeeded.
    pub reads: Vec<MemoryRead>,
    /// The kernel and user stacks at the probe, innermost frame first, where the program
    /// reads them (`Captures::kernel_stack`, `user_stack`).
    pub kernel_stack: Vec<u64>,
    pub user_stack: Vec<u64>,
    /// For syscall returns: the error number when the call failed, else 0.
    pub errno: i32,
    /// The process state read at the probe, when the probe's clauses read it.
    pub process: Option<Box<ProcessState>>,
    /// `curthread->…` members read at the probe, by path (`thread_member_path`); None where
    /// a link could not be read.
    pub thread_members: Vec<(Arc<str>, Option<u64>)>,
    /// D's `cwd`, read at the probe when the clauses read it; None when the walk up the
    /// directory tree could not be made or did not reach the root.
    pub cwd: Option<ByteString>,
}

/// The path below `curthread` of a member expression rooted at it (`->real_parent->tgid`
/// for `curthread->real_parent->tgid`), which names what the kernel reads for it.
pub fn thread_member_path(e: &Expr) -> Option<String> {
    let ExprKind::Member {
        base,
        member,
        arrow,
    } = &e.kind
    else {
        return None;
    };
    let op = if *arrow { "->" } else { "." };
    let prefix = match &base.kind {
        ExprKind::Builtin(Builtin::Curthread) => String::new(),
        _ => thread_member_path(base)?,
    };
    Some(format!("{prefix}{op}{member}"))
}

/// What the kernel read from the current task at the probe (`record::process`). A link
/// that could not be read (a kernel thread has no `mm`) leaves its fields 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessState {
    pub ppid: u32,
    pub pgid: u32,
    pub sid: u32,
    pub euid: u32,
    pub egid: u32,
    pub nlwp: u32,
    pub argc: u32,
    /// The task_struct's address: D's `curthread`.
    pub task: u64,
    /// Virtual and resident size, in pages.
    pub size_pages: u64,
    pub rss_pages: u64,
    /// The parent's tgid, its parent's, … (bounded; see `record::process::MAX_ANCESTORS`).
    pub ancestors: Vec<u32>,
    /// The first bytes of the command line, its arguments separated by spaces.
    pub psargs: ByteString,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedString {
    pub arg: u8,
    pub value: ByteString,
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedBytes {
    pub arg: u8,
    /// What was read; empty when the read faulted.
    pub value: Vec<u8>,
}

/// What the kernel read at a computed address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryRead {
    pub addr: u64,
    pub data: ReadData,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadData {
    /// copyinstr: the string, and whether it was cut at strsize.
    String { value: ByteString, truncated: bool },
    /// copyin: the bytes (shared with the values copyin gives).
    Bytes(std::sync::Arc<[u8]>),
}

/// A zone the program compares `zonename` with. On Linux `zonename` is the name of the
/// thread's cgroup, and `zonename == "NAME"` (or `!=`) holds when the thread is in the cgroup
/// NAME resolves to *or in any cgroup below it*, so that `-z NAME` selects a cgroup with its
/// descendants. NAME may be a cgroup's name or path (see `cgroup::find`); the plan resolves
/// it once, before tracing. The kernel sets the firing's membership bits; the executor reads
/// them, so both decide the same way. Other uses of `zonename` (printing it, comparing a
/// variable that holds it) see the cgroup's name alone, as illumos's zonename is a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    /// As the program wrote it.
    pub name: String,
    /// The cgroup's id (its directory's inode number).
    pub cgroup_id: u64,
    /// Its depth below the root cgroup; the root (level 0) holds every thread.
    pub level: u32,
}

/// Zones one program can compare with: one membership bit each in a firing.
pub const MAX_ZONES: usize = 64;

/// The zone name of `zonename == "NAME"`, `"NAME" != zonename` and the like.
pub fn zone_compared<'e>(op: BinaryOp, lhs: &'e Expr, rhs: &'e Expr) -> Option<&'e str> {
    string_test(Builtin::Zonename, op, lhs, rhs)
}

/// Whether `firing`'s thread is in the zone `name` (its cgroup or below); None when the plan
/// did not resolve `name`.
pub fn in_zone(zones: &[Zone], name: &str, firing: &Firing) -> Option<bool> {
    let i = zones.iter().position(|z| z.name == name)?;
    Some(zones[i].level == 0 || firing.zones & (1 << i) != 0)
}
