//! What the checker knows about D's predefined names: the types of the builtin variables and
//! the members of `curpsinfo`.

use crate::backend::linux::d::ast::{Builtin, DType};

fn record_ptr(name: &str) -> DType {
    DType::Pointer(Box::new(DType::Record {
        union: false,
        name: name.to_string(),
    }))
}

pub fn builtin_type(b: Builtin) -> DType {
    use Builtin::*;
    let int = |bits, signed| DType::Int { bits, signed };
    match b {
        Pid | Tid | Ppid => int(32, true),
        Uid | Gid => int(32, false),
        Execname | Zonename | Cwd | Probeprov | Probemod | Probefunc | Probename => DType::String,
        Cpu | Epid | Id => int(32, false),
        Timestamp | Vtimestamp | Walltimestamp => int(64, false),
        Arg(_) | Caller | Ucaller => int(64, false),
        Args => DType::LONG,
        Errno => int(32, true),
        Stackdepth | Ustackdepth => int(32, false),
        Curthread => record_ptr("thread"),
        Curpsinfo => record_ptr("psinfo_t"),
    }
}

/// Members of `psinfo_t`, as `curpsinfo->` offers them.
pub fn psinfo_member(name: &str) -> Option<DType> {
    let int = |bits, signed| DType::Int { bits, signed };
    Some(match name {
        "pr_psargs" | "pr_fname" | "pr_dmodel" => DType::String,
        "pr_pid" | "pr_ppid" | "pr_pgid" | "pr_sid" | "pr_projid" | "pr_taskid" | "pr_zoneid"
        | "pr_contract" => int(32, true),
        "pr_uid" | "pr_euid" | "pr_gid" | "pr_egid" => int(32, false),
        "pr_nlwp" | "pr_argc" => int(32, true),
        "pr_addr" | "pr_argv" | "pr_envp" | "pr_size" | "pr_rssize" | "pr_start" => int(64, false),
        _ => return None,
    })
}
