//! D's builtin variables, read from the firing (with the process state the kernel read at
//! the probe) and the probe's description.
//!
//! Some builtins have nothing to read on this engine, and read as 0: `stackdepth`,
//! `ustackdepth`, `caller` and `ucaller` (the kernel half captures no stacks). `curthread`
//! is the task_struct's address, read at the probe. `id` is the probe's number in the plan, counted
//! from 1, and `epid` the clause's number in the program, counted from 1: both identify the
//! probe and the enabling, as their DTrace counterparts do.

use super::process::{cut, FNAME_LEN, PSARGS_LEN};
use super::value::Value;
use super::{Frame, State};
use crate::backend::linux::d::ast::{Builtin, DType};
use crate::backend::linux::firing::ProcessState;

/// The page size, which the kernel's page counts are in.
fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64
}

impl State {
    pub(super) fn builtin(&mut self, b: Builtin, ty: &DType, f: &Frame<'_>) -> Value {
        let firing = f.firing;
        let desc = &f.probe.desc;
        let int = |v: u64| Value::Int(v).convert(ty);
        match b {
            Builtin::Pid => int(u64::from(firing.pid)),
            Builtin::Tid => int(u64::from(firing.tid)),
            Builtin::Ppid => int(u64::from(firing.process.as_ref().map_or(0, |p| p.ppid))),
            Builtin::Curthread => int(firing.process.as_ref().map_or(0, |p| p.task)),
            Builtin::Uid => int(u64::from(firing.uid)),
            Builtin::Gid => int(u64::from(firing.gid)),
            Builtin::Execname => Value::str(&firing.comm),
            Builtin::Cwd => Value::str(firing.cwd.as_deref().unwrap_or_default()),
            Builtin::Zonename => Value::str(self.procs.zone_name(firing.cgroup_id)),
            Builtin::Cpu => int(u64::from(firing.cpu)),
            Builtin::Timestamp | Builtin::Vtimestamp => int(firing.ts_ns),
            Builtin::Walltimestamp => int(firing.ts_ns.wrapping_add_signed(self.wall_offset_ns)),
            Builtin::Probeprov => self.interned.value(desc.provider.as_bytes()),
            Builtin::Probemod => self.interned.value(desc.module.as_bytes()),
            Builtin::Probefunc => self.interned.value(desc.function.as_bytes()),
            Builtin::Probename => self.interned.value(desc.name.as_bytes()),
            Builtin::Arg(n) => self.arg(usize::from(n), f).convert(ty),
            Builtin::Errno => int(firing.errno as i64 as u64),
            Builtin::Id => int(u64::from(firing.probe) + 1),
            Builtin::Epid => int(f.clause as u64 + 1),
            Builtin::Args | Builtin::Curpsinfo => Value::Int(0),
            Builtin::Stackdepth => int(firing.kernel_stack.len() as u64),
            Builtin::Ustackdepth => int(firing.user_stack.len() as u64),
            // The frame that called the probed function: the second of the stack.
            Builtin::Caller => int(firing.kernel_stack.get(1).copied().unwrap_or(0)),
            Builtin::Ucaller => int(firing.user_stack.get(1).copied().unwrap_or(0)),
        }
    }

    /// `argN`: the raw argument, carrying what the kernel read at it when it did. For a
    /// syscall return, arg0 is the raw return value the firing already holds.
    pub(super) fn arg(&self, n: usize, f: &Frame<'_>) -> Value {
        let addr = f.firing.args.get(n).copied().unwrap_or(0);
        match f.captures.get(n) {
            Some(Some(capture)) => Value::User {
                addr,
                capture: capture.clone(),
            },
            _ => Value::Int(addr),
        }
    }

    /// `curpsinfo->member`, from what the kernel read at the probe. Members with no Linux
    /// counterpart (project, task, contract and zone ids, and kernel addresses) read as 0.
    pub(super) fn psinfo_member(&mut self, member: &str, ty: &DType, f: &Frame<'_>) -> Value {
        let firing = f.firing;
        let none = ProcessState::default();
        let info = firing.process.as_deref().unwrap_or(&none);
        let n = |v: u32| Value::Int(u64::from(v)).convert(ty);
        let kb = |pages: u64| Value::Int(pages * page_size() / 1024);
        match member {
            // Kernel threads have no command line; illumos shows their name.
            "pr_psargs" if info.psargs.is_empty() => Value::str(cut(&firing.comm, FNAME_LEN)),
            "pr_psargs" => Value::str(&info.psargs[..info.psargs.len().min(PSARGS_LEN)]),
            "pr_fname" => Value::str(cut(&firing.comm, FNAME_LEN)),
            "pr_dmodel" => Value::str(if cfg!(target_pointer_width = "64") {
                "LP64"
            } else {
                "ILP32"
            }),
            "pr_pid" => n(firing.pid),
            "pr_ppid" => n(info.ppid),
            "pr_pgid" => n(info.pgid),
            "pr_sid" => n(info.sid),
            "pr_uid" => n(firing.uid),
            "pr_euid" => n(info.euid),
            "pr_gid" => n(firing.gid),
            "pr_egid" => n(info.egid),
            "pr_nlwp" => n(info.nlwp),
            "pr_argc" => n(info.argc),
            "pr_size" => kb(info.size_pages),
            "pr_rssize" => kb(info.rss_pages),
            _ => Value::Int(0),
        }
    }
}
