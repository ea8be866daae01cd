//! The provider table: one entry per provider, and one file per provider that finds its
//! probes. An entry says how descriptions name the provider ([`Naming`]), how its probes are
//! found for a description (globs in any part; `dtk run -l` lists what this finds), and
//! which [`ProbeKind`]s it makes. Each probe it finds carries its [`Site`](super::Site):
//! where the kernel attaches (or that it fires in user space) and the arguments the kernel
//! captures there.
//!
//! Adding a provider is one new file and one entry in [`PROVIDERS`]; a new `ProbeKind` makes
//! the compiler point at [`ProbeKind::provider`] (which entry makes it), at
//! [`ProbeKind::sets_errno`] and at every other exhaustive match over kinds (the executor's,
//! the planner's); where it fires ([`ProbeKind::in_kernel`]) is read from its entry. The names descriptions may not use for USDT providers
//! ([`is_reserved`]) and which descriptions may name probes in a process's files
//! ([`in_process`]) come from the table.

mod common;
mod dtrace;
mod pid;
mod proc;
mod profile;
mod syscall;
mod usdt;

pub use common::{Cache, Query};
pub use syscall::finish_sites;

use super::glob::{is_glob, matches};
use super::{Candidate, PlanError};
use crate::backend::linux::d::ast;
use crate::backend::linux::firing::ProbeKind;
use common::pid_suffix;

/// One provider.
pub struct Provider {
    /// Its name in descriptions: the whole provider part (`syscall`), the part before the pid
    /// (`pid`), or, for USDT providers, a label (their names come from the probes).
    pub name: &'static str,
    pub naming: Naming,
    /// The kinds of probe it makes, and where each fires.
    pub kinds: &'static [(ProbeKind, Fires)],
}

/// Where a probe fires, which decides whether the kernel runs a program for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fires {
    /// In the kernel: a BPF program captures what the clauses need (the `Site`'s arguments
    /// and more) and may run clauses or filter there.
    InKernel,
    /// In user space: the engine fires it (nothing is attached).
    InUserSpace,
}

/// The probes a provider found for a description.
type Found = Result<Vec<Candidate>, PlanError>;

/// How descriptions name a provider, and how its probes are found for one.
pub enum Naming {
    /// By its name (globs allowed, `sys*`); `probes` gives every probe the description
    /// matches.
    Fixed {
        probes: fn(&ast::ProbeDesc, &mut Query) -> Found,
    },
    /// By its name followed by a process id (`pid123`); `probes` searches that process.
    WithPid {
        probes: fn(&ast::ProbeDesc, u32, &mut Query) -> Found,
    },
    /// By a name taken from the probes in a process's files, followed by the process id
    /// (`python123`: `of_process` gets `python` and 123), or by a glob (`python*`:
    /// `of_every_process` searches every running process). Names of the other providers are
    /// reserved: `syscall123` is not a USDT provider.
    Usdt {
        of_process: fn(&ast::ProbeDesc, &str, u32, &mut Query) -> Found,
        of_every_process: fn(&ast::ProbeDesc, &mut Query) -> Found,
    },
}

/// Every provider, in the order their probes are listed for one description.
pub const PROVIDERS: &[&Provider] = &[&DTRACE, &PROFILE, &PROC, &SYSCALL, &PID, &USDT];

/// BEGIN, END and ERROR, fired by the engine.
const DTRACE: Provider = Provider {
    name: "dtrace",
    naming: Naming::Fixed {
        probes: dtrace::probes,
    },
    kinds: &[
        (ProbeKind::Begin, Fires::InUserSpace),
        (ProbeKind::End, Fires::InUserSpace),
        (ProbeKind::Error, Fires::InUserSpace),
    ],
};

/// profile-N and tick-N, both in the kernel.
const PROFILE: Provider = Provider {
    name: "profile",
    naming: Naming::Fixed {
        probes: profile::probes,
    },
    kinds: &[
        (ProbeKind::Profile, Fires::InKernel),
        (ProbeKind::Tick, Fires::InKernel),
    ],
};

/// Process events on sched tracepoints.
const PROC: Provider = Provider {
    name: "proc",
    naming: Naming::Fixed {
        probes: proc::probes,
    },
    kinds: &[(ProbeKind::Proc, Fires::InKernel)],
};

/// System calls on their tracepoints (or raw_syscalls).
const SYSCALL: Provider = Provider {
    name: "syscall",
    naming: Naming::Fixed {
        probes: syscall::probes,
    },
    kinds: &[
        (ProbeKind::SyscallEntry, Fires::InKernel),
        (ProbeKind::SyscallReturn, Fires::InKernel),
    ],
};

/// Function entry and return in one process, on uprobes.
const PID: Provider = Provider {
    name: "pid",
    naming: Naming::WithPid {
        probes: pid::probes,
    },
    kinds: &[(ProbeKind::Uprobe, Fires::InKernel)],
};

/// Any USDT provider (python and others), on uprobes at the notes' sites.
const USDT: Provider = Provider {
    name: "usdt",
    naming: Naming::Usdt {
        of_process: usdt::probes_of_process,
        of_every_process: usdt::probes_of_all_processes,
    },
    kinds: &[(ProbeKind::Usdt, Fires::InKernel)],
};

impl ProbeKind {
    /// The provider that makes probes of this kind.
    pub(crate) fn provider(&self) -> &'static Provider {
        match self {
            ProbeKind::Begin | ProbeKind::End | ProbeKind::Error => &DTRACE,
            ProbeKind::Tick | ProbeKind::Profile => &PROFILE,
            ProbeKind::Proc => &PROC,
            ProbeKind::SyscallEntry | ProbeKind::SyscallReturn => &SYSCALL,
            ProbeKind::Uprobe => &PID,
            ProbeKind::Usdt => &USDT,
        }
    }

    /// Whether probes of this kind fire in the kernel (a BPF program runs there), as the
    /// table says, rather than being fired by the engine in user space.
    pub fn in_kernel(&self) -> bool {
        let entry = self.provider().kinds.iter().find(|(kind, _)| kind == self);
        // A kind that `provider` maps to an entry whose `kinds` forgot it would fire in user
        // space without a word: every test that plans such a probe stops here instead.
        debug_assert!(
            entry.is_some(),
            "{self:?} is missing from the kinds of the {} provider",
            self.provider().name
        );
        entry.is_some_and(|(_, fires)| *fires == Fires::InKernel)
    }
}

impl ProbeKind {
    /// Whether a firing of this kind has an `errno`: a syscall return's, from its return
    /// value (see `Firing::errno`); every other kind's is 0.
    pub fn sets_errno(&self) -> bool {
        match self {
            ProbeKind::SyscallReturn => true,
            ProbeKind::Begin
            | ProbeKind::End
            | ProbeKind::Error
            | ProbeKind::Tick
            | ProbeKind::Profile
            | ProbeKind::SyscallEntry
            | ProbeKind::Proc
            | ProbeKind::Usdt
            | ProbeKind::Uprobe => false,
        }
    }
}

/// Every concrete probe `desc` matches, provider by provider in table order. An empty part
/// matches anything, as in D; USDT processes are searched only when the provider part names
/// them (a pid suffix or a non-empty glob), since scanning every process's files for
/// `:::entry` would be slow and surprising.
pub fn resolve_desc(desc: &ast::ProbeDesc, query: &mut Query) -> Result<Vec<Candidate>, PlanError> {
    let mut found = Vec::new();
    for provider in PROVIDERS {
        match provider.naming {
            Naming::Fixed { probes } => {
                if matches(&desc.provider, provider.name) {
                    found.extend(probes(desc, query)?);
                }
            }
            Naming::WithPid { probes } => {
                if let Some(pid) = pid_suffix(&desc.provider, provider.name) {
                    found.extend(probes(desc, pid, query)?);
                }
            }
            Naming::Usdt {
                of_process,
                of_every_process,
            } => {
                if let Some((base, pid)) = usdt_provider_with_pid(&desc.provider) {
                    found.extend(of_process(desc, base, pid, query)?);
                } else if !desc.provider.is_empty()
                    && is_glob(&desc.provider)
                    && desc.provider != "*"
                {
                    found.extend(of_every_process(desc, query)?);
                }
            }
        }
    }
    Ok(found)
}

/// Whether `name` is the name of a provider of the table, which USDT providers cannot have.
pub fn is_reserved(name: &str) -> bool {
    PROVIDERS.iter().any(|p| match p.naming {
        Naming::Fixed { .. } | Naming::WithPid { .. } => p.name == name,
        Naming::Usdt { .. } => false,
    })
}

/// Whether a description with this provider part may name probes in a process's files (pid,
/// USDT): any provider part but the empty one and the names of providers without a pid.
pub fn in_process(provider: &str) -> bool {
    !provider.is_empty()
        && !PROVIDERS.iter().any(|p| match p.naming {
            Naming::Fixed { .. } => p.name == provider,
            Naming::WithPid { .. } | Naming::Usdt { .. } => false,
        })
}

/// `python123` → ("python", 123), for any provider but the table's named ones.
fn usdt_provider_with_pid(provider: &str) -> Option<(&str, u32)> {
    let split = provider
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .len();
    let (base, _) = provider.split_at(split);
    if base.is_empty() || is_glob(base) || is_reserved(base) {
        return None;
    }
    pid_suffix(provider, base).map(|pid| (base, pid))
}

#[cfg(test)]
mod tests;
