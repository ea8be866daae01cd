//! Which providers a description can match, and the concrete probes of each: the static
//! providers (dtrace, syscall, proc, profile) by name, and the per-process ones (`pidNNN`,
//! USDT `python123` or `python*`) by their provider part.

use super::glob::{is_glob, matches};
use super::{describe, pid, syscall, timer, usdt, Candidate, PlanError, Site};
use crate::backend::linux::d::ast;
use crate::backend::linux::firing::ProbeKind;
use crate::event::ProbeDesc;
use crate::inspect::tracefs::{self, Field};

/// What planning reads once and reuses across descriptions.
#[derive(Default)]
pub struct Cache {
    /// Names of the syscalls with tracepoints, from tracefs.
    syscalls: Option<Vec<String>>,
    /// USDT probes of every process (for glob providers), read on first use.
    pub usdt_scan: Option<Vec<usdt::ProcessProbes>>,
}

impl Cache {
    pub fn syscalls(&mut self) -> Result<&[String], PlanError> {
        if self.syscalls.is_none() {
            self.syscalls = Some(syscall::list()?);
        }
        Ok(self.syscalls.as_deref().unwrap_or_default())
    }
}

/// The proc provider's probes and their sched tracepoints.
const PROC_PROBES: &[(&str, &str)] = &[
    ("exec-success", "sched_process_exec"),
    ("exit", "sched_process_exit"),
    ("create", "sched_process_fork"),
];

/// Every concrete probe `desc` matches.
pub fn resolve_desc(
    desc: &ast::ProbeDesc,
    target: Option<u32>,
    cache: &mut Cache,
) -> Result<Vec<Candidate>, PlanError> {
    let mut found = Vec::new();
    let static_part = |provider: &str| {
        matches(&desc.provider, provider)
            && matches(&desc.module, "")
            && matches(&desc.function, "")
    };
    if static_part("dtrace") {
        found.extend(dtrace_probes(desc));
    }
    if static_part("profile") {
        found.extend(profile_probe(desc)?);
    }
    if static_part("proc") {
        found.extend(proc_probes(desc)?);
    }
    if matches(&desc.provider, "syscall") && matches(&desc.module, "") {
        found.extend(syscall::probes(desc, cache)?);
    }
    if let Some(pid) = pid_suffix(&desc.provider, "pid") {
        found.extend(pid::probes(desc, pid, target)?);
    } else if let Some((base, pid)) = usdt_provider_with_pid(&desc.provider) {
        found.extend(usdt::probes_of_process(desc, base, pid, target)?);
    } else if !desc.provider.is_empty() && is_glob(&desc.provider) && desc.provider != "*" {
        found.extend(usdt::probes_of_all_processes(desc, cache)?);
    }
    Ok(found)
}

/// `pid123` with prefix `pid` → 123.
fn pid_suffix(provider: &str, prefix: &str) -> Option<u32> {
    let digits = provider.strip_prefix(prefix)?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// `python123` → ("python", 123), for any provider but the static ones and `pid`.
fn usdt_provider_with_pid(provider: &str) -> Option<(&str, u32)> {
    let split = provider
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .len();
    let (base, _) = provider.split_at(split);
    if base.is_empty() || is_glob(base) || ["pid", "syscall", "proc", "profile"].contains(&base) {
        return None;
    }
    pid_suffix(provider, base).map(|pid| (base, pid))
}

fn concrete(provider: &str, module: &str, function: &str, name: &str) -> ProbeDesc {
    ProbeDesc {
        provider: provider.into(),
        module: module.into(),
        function: function.into(),
        name: name.into(),
    }
}

fn dtrace_probes(desc: &ast::ProbeDesc) -> Vec<Candidate> {
    [
        ("BEGIN", ProbeKind::Begin),
        ("END", ProbeKind::End),
        ("ERROR", ProbeKind::Error),
    ]
    .into_iter()
    .filter(|(name, _)| matches(&desc.name, name))
    .map(|(name, kind)| Candidate {
        desc: concrete("dtrace", "", "", name),
        kind,
        site: Site::UserSpace,
    })
    .collect()
}

/// `profile-N` and `tick-N` (no globs: their names are made, not listed).
fn profile_probe(desc: &ast::ProbeDesc) -> Result<Option<Candidate>, PlanError> {
    let name = desc.name.as_str();
    let (rate, tick) = match (name.strip_prefix("profile-"), name.strip_prefix("tick-")) {
        (Some(rate), _) => (rate, false),
        (_, Some(rate)) => (rate, true),
        _ => return Ok(None),
    };
    let period = timer::parse_rate(rate).ok_or_else(|| PlanError::BadRate {
        desc: describe(desc),
        name: name.to_string(),
    })?;
    let (kind, site) = if tick {
        (ProbeKind::Tick, Site::Tick { period })
    } else {
        let hz = (1_000_000_000 / period.as_nanos().max(1)).max(1) as u64;
        let args = vec![
            super::ArgLoad::SampledPc { user: false },
            super::ArgLoad::SampledPc { user: true },
        ];
        (ProbeKind::Profile, Site::Profile { hz, args })
    };
    Ok(Some(Candidate {
        desc: concrete("profile", "", "", name),
        kind,
        site,
    }))
}

fn proc_probes(desc: &ast::ProbeDesc) -> Result<Vec<Candidate>, PlanError> {
    let mut found = Vec::new();
    for (name, tracepoint) in PROC_PROBES {
        if !matches(&desc.name, name) {
            continue;
        }
        let format = tracefs::read_format("sched", tracepoint).map_err(PlanError::tracefs)?;
        // proc:::create's arg0 is the new process's pid (DTrace passes its psinfo).
        let args = match *name {
            "create" => format
                .field("child_pid")
                .map(field_load)
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
        // sched_process_exit fires for every thread; proc:::exit once per process, when
        // the last thread exits, which kernels that have the field say with group_dead.
        let guard = match *name {
            "exit" => format.field("group_dead").map(|f| f.offset as u16),
            _ => None,
        };
        found.push(Candidate {
            desc: concrete("proc", "", "", name),
            kind: ProbeKind::Proc,
            site: Site::Tracepoint {
                category: "sched".into(),
                name: (*tracepoint).into(),
                args,
                guard,
            },
        });
    }
    Ok(found)
}

/// How to load a tracepoint field as an argument.
pub fn field_load(field: &Field) -> super::ArgLoad {
    super::ArgLoad::Field {
        offset: field.offset as u16,
        size: field.size.clamp(1, 8) as u8,
        signed: field.signed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_with_a_pid() {
        assert_eq!(pid_suffix("pid42", "pid"), Some(42));
        assert_eq!(pid_suffix("pid", "pid"), None);
        assert_eq!(usdt_provider_with_pid("python123"), Some(("python", 123)));
        assert_eq!(usdt_provider_with_pid("pid123"), None);
        assert_eq!(usdt_provider_with_pid("python"), None);
        assert_eq!(usdt_provider_with_pid("py*123"), None);
    }
}
