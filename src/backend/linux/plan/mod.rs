//! Probe matching: the program's probe descriptions (with globs in any part) resolved to
//! concrete probes, each with its attach point (`Site`), what its BPF program must capture
//! (`Captures`), when every clause's predicate can run in the kernel, the predicate the
//! kernel evaluates before it emits anything (`kernel_filter`), and the clauses that run
//! entirely in the kernel (`kernel_clauses`, aggregations kept in BPF maps).
//!
//! The passes, in order: `zone` (the cgroups `zonename` is compared with), `providers` (each
//! description against the provider table: `dtrace` BEGIN/END/ERROR, `profile`, `proc`,
//! `syscall`, `pidNNN` and USDT providers such as `python123` or `python*`), merging the
//! matches into one probe each, `providers::finish_sites` (syscall tracepoints or the
//! raw_syscalls pair), `threadvars` and `aggregate` (what the kernel keeps in maps), `filter`
//! and `captures`.
//!
//! A probe's `ProbeKind` (`firing.rs`) says what it is, for the executor and the code
//! generator alike; its `Site` says where the kernel attaches it and where its arguments
//! load from. The provider table says which provider makes each kind and where it fires.

mod aggregate;
mod captures;
mod derived;
pub(crate) mod filter;
mod follow;
pub(crate) mod glob;
pub(crate) mod providers;
pub(crate) mod regs;
mod semaphores;
mod threadvars;
mod walk;
mod zone;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use super::attach::uprobe::UprobeSpec;
use super::d::ast::{self, Expr};
use super::firing::{ProbeInfo, ProbeKind, Zone, MAX_ZONES};
use super::options::Options;
use crate::event::ProbeDesc;
use crate::inspect::cgroup::CgroupError;
use crate::inspect::elf::ElfError;
use crate::inspect::procmaps::ProcMapsError;
use crate::inspect::task::{self, MemberRead, TaskLayout};
use crate::inspect::tracefs::TracefsError;
use crate::inspect::usdt::arg::UsdtArg;
use crate::inspect::usdt::UsdtError;

pub use aggregate::MAX_KEY_SIZE;
pub use aggregate::{
    HeaderReads, KernelAggregation, KernelClause, KernelUpdate, KeyKind, Storage, ThreadAssign,
};
pub use captures::{Captures, ProcessRead};
pub use derived::{AddrExpr, AddrOp, DerivedRead, ShadowStore};
pub use follow::Follow;
pub use threadvars::MAX_KERNEL_VARS;
pub use walk::walk;

/// Every concrete probe the program uses, in the order their descriptions first match.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub probes: Vec<PlannedProbe>,
    /// Bytes of each captured string slot (the `strsize` option), which record layouts use.
    pub strsize: usize,
    /// Aggregations kept in BPF maps; `KernelUpdate::aggregation` indexes this.
    pub kernel_aggregations: Vec<KernelAggregation>,
    /// Thread variables kept in BPF maps; `ThreadAssign::var` indexes this.
    pub kernel_vars: Vec<String>,
    /// Thread variables whose pointers the kernel keeps too, to read through them again at
    /// a later probe (`captures::assign`); `AddrExpr::Shadow` indexes this.
    pub shadow_vars: Vec<String>,
    /// The zones the program compares `zonename` with; zone i is bit i of `Firing::zones`.
    pub zones: Vec<Zone>,
    /// The running kernel's task_struct layout, when some probe reads process state
    /// (`Captures::process`).
    pub task: Option<TaskLayout>,
    /// How to read each `curthread->…` path some probe reads (`Captures::thread_members`).
    pub thread_members: BTreeMap<Arc<str>, MemberRead>,
    /// The process tree the run follows (`Scope::follow`): every kernel program fires only in
    /// its processes. Set by the engine once the target is known.
    pub follow: Option<Follow>,
    /// USDT semaphores held raised by uprobes that never fire (`semaphores`).
    pub holds: Vec<SemaphoreHold>,
}

/// A uprobe that only holds a USDT semaphore raised: it is where no code runs, and carries the
/// semaphore as its `ref_ctr_offset`.
#[derive(Clone, Debug, PartialEq)]
pub struct SemaphoreHold {
    pub spec: UprobeSpec,
    /// What to tell the user, when the program did not ask for the probe itself.
    pub notice: Option<String>,
}

/// One concrete probe.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedProbe {
    pub info: ProbeInfo,
    pub site: Site,
    pub captures: Captures,
    /// When set, the kernel emits a firing only if one of these predicates is true (their OR).
    /// Each is a clause's predicate with probefunc/probename replaced by this probe's values.
    /// None: every firing is emitted (some clause has no predicate, or one the kernel cannot
    /// evaluate).
    pub kernel_filter: Option<Vec<Expr>>,
    /// Clauses that run entirely in the kernel at this probe (kernel-side aggregations); they
    /// are not in `info.clauses`, so the executor skips them.
    pub kernel_clauses: Vec<KernelClause>,
}

/// Where a probe's firings come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Site {
    /// BEGIN, END and ERROR: the engine fires them.
    UserSpace,
    /// tick-N: perf cpu-clock with this period on one CPU; its arguments are profile's.
    Tick {
        period: Duration,
        args: Vec<ArgLoad>,
    },
    /// profile-N: perf cpu-clock at `hz` on every online CPU; arg0 is the kernel's program
    /// counter and arg1 the user's, whichever was interrupted (the other is 0).
    Profile { hz: u64, args: Vec<ArgLoad> },
    /// A tracepoint of its own; `args[i]` loads argN from the record.
    Tracepoint {
        category: String,
        name: String,
        args: Vec<ArgLoad>,
        /// Offset of a one-byte field of the record that must be non-zero for the probe to
        /// fire (proc:::exit's `group_dead`).
        guard: Option<u16>,
    },
    /// One syscall seen through raw_syscalls:sys_enter (`entry`) or sys_exit, whose program
    /// maps the syscall number `nr` to this probe.
    RawSyscall {
        entry: bool,
        nr: u32,
        args: Vec<ArgLoad>,
        /// Offset of the syscall number (`id`) in the raw_syscalls record.
        id_offset: u16,
    },
    /// Uprobes; one program per site (USDT sites may differ in where their arguments live).
    Uprobe { sites: Vec<UprobeSite> },
}

/// One uprobe of a probe, and how argN loads there.
#[derive(Clone, Debug, PartialEq)]
pub struct UprobeSite {
    pub spec: UprobeSpec,
    pub args: Vec<ArgLoad>,
}

/// How the BPF program loads one argument.
#[derive(Clone, Debug, PartialEq)]
pub enum ArgLoad {
    /// A field of the tracepoint record.
    Field { offset: u16, size: u8, signed: bool },
    /// A 64-bit slot of `struct pt_regs` (function arguments and return values).
    Register { offset: u16 },
    /// A USDT argument, as its note describes it.
    Usdt(UsdtArg),
    /// The sampled program counter of a perf event when the CPU was in user mode (`user`) or
    /// in the kernel, else 0 (profile's arg1 and arg0).
    SampledPc { user: bool },
    /// A value known when planning.
    Constant(u64),
}

impl Site {
    /// The arguments this site provides (for uprobes, those of its first site; all sites of a
    /// probe provide the same argN).
    pub fn args(&self) -> &[ArgLoad] {
        match self {
            Site::Tracepoint { args, .. }
            | Site::RawSyscall { args, .. }
            | Site::Profile { args, .. }
            | Site::Tick { args, .. } => args,
            Site::Uprobe { sites } => sites.first().map_or(&[], |s| &s.args),
            Site::UserSpace => &[],
        }
    }
}

/// Why a program's probes could not be planned.
#[derive(Debug, Error)]
pub enum PlanError {
    #[error("probe description {desc} does not match any probe")]
    NoMatch { desc: String },
    #[error("probe description {desc}: {name:?} is not a rate (such as profile-997, tick-1s or profile-10ms)")]
    BadRate { desc: String, name: String },
    #[error("probe description {desc}: no process {pid}{}", if *.is_target { " (the target process)" } else { "" })]
    NoProcess {
        desc: String,
        pid: u32,
        is_target: bool,
    },
    #[error("cannot list the system's tracepoints")]
    Tracefs(#[source] Box<TracefsError>),
    #[error("probe description {desc}: cannot read the files of process {pid}")]
    ProcMaps {
        desc: String,
        pid: u32,
        #[source]
        source: Box<ProcMapsError>,
    },
    #[error("probe description {desc}")]
    Usdt {
        desc: String,
        #[source]
        source: UsdtError,
    },
    #[error("zone {name:?}")]
    Zone {
        name: String,
        #[source]
        source: CgroupError,
    },
    #[error("the program compares zonename with {count} zones; at most {MAX_ZONES} are supported")]
    TooManyZones { count: usize },
    #[error("{0}")]
    ProcessState(String),
    #[error("tracepoint {tracepoint} has no field {field}")]
    TracepointField {
        tracepoint: &'static str,
        field: &'static str,
    },
    #[error("probe description {desc}")]
    Elf {
        desc: String,
        #[source]
        source: ElfError,
    },
}

impl PlanError {
    fn tracefs(source: TracefsError) -> PlanError {
        PlanError::Tracefs(Box::new(source))
    }
}

/// A concrete probe found for one description, before merging.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    desc: ProbeDesc,
    kind: ProbeKind,
    site: Site,
}

/// Resolves every probe description of `program`. `target` is the -p/-c process, already
/// substituted for `$target` by the front end; it only sharpens error messages.
/// `usdt_files`: where USDT providers named by a glob are found (`Scope::usdt_files`).
pub fn resolve(
    program: &ast::Program,
    target: Option<u32>,
    options: &Options,
    usdt_files: Option<&[PathBuf]>,
) -> Result<Plan, PlanError> {
    let clauses = program.clauses();
    let zones = zone::resolve(&clauses)?;
    let mut candidates: Vec<(Candidate, usize)> = Vec::new();
    let mut cache = providers::Cache::default();
    let mut query = providers::Query {
        target,
        usdt_files,
        cache: &mut cache,
    };
    for (index, clause) in clauses.iter().enumerate() {
        for desc in &clause.probes {
            let found = providers::resolve_desc(desc, &mut query)?;
            if found.is_empty() && !options.zdefs {
                return Err(PlanError::NoMatch {
                    desc: describe(desc),
                });
            }
            candidates.extend(found.into_iter().map(|c| (c, index)));
        }
    }
    let mut probes = merge(candidates);
    providers::finish_sites(&mut probes)?;
    let (kernel_aggregations, kernel_vars) = threadvars::resolve(&mut probes, &clauses);
    for probe in &mut probes {
        let chosen: Vec<&ast::Clause> = probe.info.clauses.iter().map(|&i| clauses[i]).collect();
        probe.kernel_filter = filter::kernel_filter(&chosen, &probe.info);
    }
    let shadow_vars = captures::assign(&mut probes, &clauses);
    let holds = semaphores::resolve(&mut probes)?;
    let task = if probes
        .iter()
        .any(|p| p.captures.process != ProcessRead::None || p.captures.cwd)
    {
        let what = "reading ppid, curpsinfo, curthread, progenyof() or cwd at the probe";
        Some(
            TaskLayout::kernel(what)
                .map_err(PlanError::ProcessState)?
                .clone(),
        )
    } else {
        None
    };
    let mut thread_members = BTreeMap::new();
    for path in probes.iter().flat_map(|p| &p.captures.thread_members) {
        if !thread_members.contains_key(path) {
            let read = task::member_read(path).map_err(PlanError::ProcessState)?;
            thread_members.insert(path.clone(), read);
        }
    }
    Ok(Plan {
        probes,
        strsize: options.strsize,
        kernel_aggregations,
        kernel_vars,
        shadow_vars,
        zones,
        task,
        thread_members,
        follow: None,
        holds,
    })
}

/// `provider:module:function:name` as written.
fn describe(desc: &ast::ProbeDesc) -> String {
    format!(
        "{}:{}:{}:{}",
        desc.provider, desc.module, desc.function, desc.name
    )
}

/// One planned probe per concrete probe, with the clauses of every description that matched
/// it, in first-match order.
fn merge(candidates: Vec<(Candidate, usize)>) -> Vec<PlannedProbe> {
    let mut probes: Vec<PlannedProbe> = Vec::new();
    let mut index: HashMap<ProbeDesc, usize> = HashMap::new();
    for (candidate, clause) in candidates {
        let at = *index.entry(candidate.desc.clone()).or_insert_with(|| {
            probes.push(PlannedProbe {
                info: ProbeInfo {
                    desc: Arc::new(candidate.desc.clone()),
                    kind: candidate.kind.clone(),
                    clauses: Vec::new(),
                },
                site: candidate.site.clone(),
                captures: Captures::default(),
                kernel_filter: None,
                kernel_clauses: Vec::new(),
            });
            probes.len() - 1
        });
        let clauses = &mut probes[at].info.clauses;
        if let Err(pos) = clauses.binary_search(&clause) {
            clauses.insert(pos, clause);
        }
    }
    probes
}

/// `dtrace -l`-style lines for the plan's probes, as `dtk run -l` prints them: a header,
/// then ID PROVIDER MODULE FUNCTION NAME per probe (IDs are the plan's probe indices, from 1).
pub fn list(plan: &Plan) -> String {
    let mut out = ProbeDesc::listing_header() + "\n";
    for (id, probe) in (1..).zip(&plan.probes) {
        out += &probe.info.desc.listing_line(id);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;
