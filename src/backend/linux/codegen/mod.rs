//! Code generation for the Linux engine: a [`Plan`] becomes a [`ProgramSet`], one BPF
//! program per attach point of the plan and the maps they share, all writing records to one
//! ring buffer (see `record` for the layout). Nothing here makes a system call: programs
//! name their maps by index (`insn::MapRef`), and `load` creates the maps, puts in their
//! fds, loads and attaches.
//!
//! Every program first checks the run's gate (`bpf::gate`), so that `load` can arm and
//! disarm them all in one step.
//!
//! - `program`: the instructions of one program (record header, arguments, kernel clauses,
//!   filter, captured strings, output).
//! - `frame`: the BPF stack frame every program shares.
//! - `predicate`: kernel-side predicates as jumps.
//! - `aggregate`: kernel-side aggregations in per-CPU maps.
//! - `threadvars`: kernel thread variables and the shadow maps of kept pointers.
//! - `derived`: reads at addresses computed in the kernel.
//! - `usdt_arg`: loading a USDT argument.
//!
//! Minimum kernel: 5.8 (ring buffer, bpf_probe_read_user_str); uprobes with USDT semaphores
//! need 4.20, which 5.8 includes.

mod aggregate;
mod derived;
pub(crate) mod frame;
mod predicate;
mod process;
mod program;
mod threadvars;
pub(crate) mod usdt_arg;

use thiserror::Error;

use super::attach::perf::CpuClock;
use super::attach::uprobe::UprobeSpec;
use super::bpf::drops::DropSlots;
use super::bpf::insn::{AsmError, Insn, MapRef};
use super::bpf::maps::{MapSpec, MapTable, MapType};
use super::bpf::prog::ProgType;
use super::bpf::{follow, gate};
use super::d::ast::Expr;
use super::firing::ProbeKind;
use super::options::Options;
use super::plan::{ArgLoad, Follow, KernelClause, Plan, PlannedProbe, Site};
use super::record::{self, Layout};
pub use aggregate::{AggregationMaps, Counts};
use program::{ProbeIndex, ProgramSpec, SharedMaps};
pub use threadvars::ThreadVars;

/// Syscall numbers the raw_syscalls programs can map (x86_64 and aarch64 stay below 512).
const MAX_SYSCALL_NR: u32 = 1024;

/// Why the plan could not be turned into programs.
#[derive(Debug, Error)]
pub enum CodegenError {
    #[error("cannot assemble the program for {what}")]
    Asm {
        what: String,
        #[source]
        source: AsmError,
    },
    #[error("a record of {what} would take {size} bytes; lower strsize (at most 32767 bytes per record)")]
    RecordTooLarge { what: String, size: usize },
}

/// Where a program attaches.
#[derive(Clone, Debug)]
pub enum AttachPoint {
    Tracepoint {
        category: String,
        name: String,
    },
    /// cpu-clock sampling (profile-N and tick-N).
    CpuClock(CpuClock),
    Uprobe(UprobeSpec),
}

/// One program, ready to load once its maps exist.
#[derive(Debug)]
pub struct Program {
    /// The probe (or raw_syscalls tracepoint) it serves, for errors.
    pub what: String,
    pub kind: ProgType,
    /// Map references are indices into `ProgramSet::maps` (`insn::relocate`).
    pub insns: Vec<Insn>,
    pub attach: AttachPoint,
}

/// Everything a plan needs in the kernel: the maps to create, the programs that use them,
/// and the record layout of each probe, which the reader decodes with.
#[derive(Debug)]
pub struct ProgramSet {
    pub maps: Vec<MapSpec>,
    pub programs: Vec<Program>,
    /// One per `Plan::probes`.
    pub layouts: Vec<Layout>,
    /// The ring buffer (`MapType::RingBuf`).
    pub ring: MapRef,
    /// Records the ring buffer refused, in total and by probe.
    pub drops: DropSlots,
    pub gate: MapRef,
    pub aggregations: AggregationMaps,
    pub thread_vars: ThreadVars,
    /// Children of a followed tree the full followed set refused (`bpf::follow`).
    pub unfollowed: Option<DropSlots>,
    /// Uprobes that hold USDT semaphores and run no program (`Plan::holds`).
    pub holds: Vec<UprobeSpec>,
}

/// Builds a program for every kernel attach point of `plan`, with `options.bufsize` as the
/// ring buffer's size.
pub fn build(plan: &Plan, options: &Options) -> Result<ProgramSet, CodegenError> {
    let layouts = record::layouts(plan);
    let mut table = MapTable::default();
    let ring_size = options.bufsize.clamp(4096, 1 << 30).next_power_of_two();
    let ring = table.add(MapSpec::new(
        MapType::RingBuf,
        0,
        0,
        ring_size as u32,
        "dtk_events",
    ));
    let probes = u32::try_from(plan.probes.len()).unwrap_or(u32::MAX - 1);
    let drops = DropSlots::new(table.add(DropSlots::spec("dtk_drops", probes)), probes);
    let aggregations = AggregationMaps::plan(plan, &mut table);
    let thread_vars = ThreadVars::plan(plan, &mut table);
    let shadows = threadvars::shadow_maps(plan, &mut table);
    let gate = table.add(gate::spec("dtk_gate"));
    let followed = plan
        .follow
        .as_ref()
        .map(|f| table.add(follow::spec("dtk_followed", &f.seed)));
    let scratch = table.add(record_scratch(plan, &layouts)?);
    let shared = SharedMaps {
        aggregations,
        vars: thread_vars,
        shadows,
        scratch,
        ring,
        ring_size,
        drops,
        gate,
        followed,
        cpu: options.cpu,
    };
    let mut builder = Builder {
        plan,
        layouts: &layouts,
        maps: &shared,
        table: &mut table,
        programs: Vec::new(),
    };
    for (index, probe) in plan.probes.iter().enumerate() {
        builder.probe(index as u32, probe)?;
    }
    for entry in [true, false] {
        builder.raw_syscalls(entry)?;
    }
    let unfollowed = match (&plan.follow, followed) {
        (Some(f), Some(map)) => Some(builder.follow(f, map)?),
        _ => None,
    };
    let programs = builder.programs;
    Ok(ProgramSet {
        maps: table.into_specs(),
        programs,
        layouts,
        ring,
        drops: shared.drops,
        gate,
        aggregations: shared.aggregations,
        thread_vars: shared.vars,
        unfollowed,
        holds: plan.holds.iter().map(|h| h.spec.clone()).collect(),
    })
}

/// The programs built so far, and what they share.
struct Builder<'a> {
    plan: &'a Plan,
    layouts: &'a [Layout],
    maps: &'a SharedMaps,
    table: &'a mut MapTable,
    programs: Vec<Program>,
}

impl Builder<'_> {
    /// The attach point of a probe that has one of its own.
    fn probe(&mut self, index: u32, probe: &PlannedProbe) -> Result<(), CodegenError> {
        let what = probe.info.desc.to_string();
        let filter = probe.kernel_filter.as_deref();
        let parts = |args, guard| Parts {
            index: ProbeIndex::Fixed(index),
            args,
            guard,
            filter,
            kernel_clauses: Some((index, probe.kernel_clauses.as_slice()))
                .filter(|(_, clauses)| !clauses.is_empty())
                .into_iter()
                .collect(),
        };
        // A probe with nothing to emit or update needs no program, unless attaching has an
        // effect of its own (a USDT semaphore raised while a uprobe is attached, where the
        // plan could not hold it elsewhere: `plan::semaphores`).
        let idle = never_emits(probe) && probe.kernel_clauses.is_empty();
        match &probe.site {
            Site::UserSpace | Site::RawSyscall { .. } => {}
            Site::Tracepoint { .. } | Site::Profile { .. } | Site::Tick { .. } if idle => {}
            Site::Tracepoint {
                category,
                name,
                args,
                guard,
            } => {
                let attach = AttachPoint::Tracepoint {
                    category: category.clone(),
                    name: name.clone(),
                };
                let parts = parts(args, *guard);
                self.add(index, &what, parts, ProgType::Tracepoint, attach)?;
            }
            Site::Profile { hz, args } => {
                let attach = AttachPoint::CpuClock(CpuClock::EveryCpu { hz: *hz });
                self.add(index, &what, parts(args, None), ProgType::PerfEvent, attach)?;
            }
            Site::Tick { period, args } => {
                let period_ns = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
                // Under `-x cpu`, ticks fire on that CPU, the only one traced.
                let cpu = self.maps.cpu;
                let attach = AttachPoint::CpuClock(CpuClock::OneCpu { period_ns, cpu });
                self.add(index, &what, parts(args, None), ProgType::PerfEvent, attach)?;
            }
            Site::Uprobe { sites } => {
                for site in sites {
                    let attach = AttachPoint::Uprobe(site.spec.clone());
                    let parts = parts(&site.args, None);
                    self.add(index, &what, parts, ProgType::Kprobe, attach)?;
                }
            }
        }
        Ok(())
    }

    /// The two programs that keep the followed set `map` (`bpf::follow`); returns the counter
    /// of children the full set refused.
    fn follow(&mut self, f: &Follow, map: MapRef) -> Result<DropSlots, CodegenError> {
        let full = DropSlots::new(self.table.add(DropSlots::spec("dtk_unfollowed", 0)), 0);
        let asm_error = |what: &str| {
            let what = what.to_string();
            move |source| CodegenError::Asm { what, source }
        };
        let fork = "sched:sched_process_fork (following)";
        let exit = "sched:sched_process_exit (following)";
        let programs = [
            (
                fork,
                "sched_process_fork",
                follow::fork_program(map, full, f.child_pid).map_err(asm_error(fork))?,
            ),
            (
                exit,
                "sched_process_exit",
                follow::exit_program(map, f.group_dead).map_err(asm_error(exit))?,
            ),
        ];
        for (what, name, insns) in programs {
            self.programs.push(Program {
                what: what.to_string(),
                kind: ProgType::Tracepoint,
                insns,
                attach: AttachPoint::Tracepoint {
                    category: "sched".into(),
                    name: name.into(),
                },
            });
        }
        Ok(full)
    }

    /// Assembles the program for the record of probe `index`.
    fn add(
        &mut self,
        index: u32,
        what: &str,
        parts: Parts<'_>,
        kind: ProgType,
        attach: AttachPoint,
    ) -> Result<(), CodegenError> {
        let probe = &self.plan.probes[index as usize];
        let spec = ProgramSpec {
            index: parts.index,
            args: parts.args,
            guard: parts.guard,
            layout: &self.layouts[index as usize],
            derived: &probe.captures.derived,
            shadow_stores: &probe.captures.shadow_stores,
            filter: parts.filter,
            kernel_clauses: parts.kernel_clauses,
            maps: self.maps,
            zones: &self.plan.zones,
            in_followed_set: probe.info.kind != ProbeKind::Tick,
            task: self.plan.task.as_ref(),
            thread_members: probe
                .captures
                .thread_members
                .iter()
                .filter_map(|path| self.plan.thread_members.get(path))
                .collect(),
        };
        let insns = program::build(&spec).map_err(|source| CodegenError::Asm {
            what: what.to_string(),
            source,
        })?;
        self.programs.push(Program {
            what: what.to_string(),
            kind,
            insns,
            attach,
        });
        Ok(())
    }

    /// One program on raw_syscalls:sys_enter (or sys_exit) for every probe planned there.
    fn raw_syscalls(&mut self, entry: bool) -> Result<(), CodegenError> {
        let plan = self.plan;
        let probes: Vec<(u32, &PlannedProbe, u32, u16)> = plan
            .probes
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p.site {
                Site::RawSyscall {
                    entry: e,
                    nr,
                    id_offset,
                    ..
                } if e == entry => Some((i as u32, p, nr, id_offset)),
                _ => None,
            })
            .collect();
        let Some(&(first_index, first, _, id_offset)) = probes.first() else {
            return Ok(());
        };
        let emits = probes.iter().any(|(_, p, _, _)| !never_emits(p));
        if !emits
            && probes
                .iter()
                .all(|(_, p, _, _)| p.kernel_clauses.is_empty())
        {
            return Ok(());
        }
        let mut numbers = MapSpec::new(MapType::Array, 4, 4, MAX_SYSCALL_NR, "dtk_sysnr");
        numbers.entries = probes
            .iter()
            .filter(|&&(_, _, nr, _)| nr < MAX_SYSCALL_NR)
            .map(|&(index, _, nr, _)| (nr.to_ne_bytes().into(), (index + 1).to_ne_bytes().into()))
            .collect();
        let numbers = self.table.add(numbers);
        let filters: Vec<(u32, &[Expr])> = probes
            .iter()
            .filter_map(|(i, p, _, _)| p.kernel_filter.as_deref().map(|f| (*i, f)))
            .collect();
        let tracepoint = if entry { "sys_enter" } else { "sys_exit" };
        let what = format!("raw_syscalls:{tracepoint}");
        let args = first.site.args().to_vec();
        let parts = Parts {
            index: ProbeIndex::BySyscall {
                id_offset,
                numbers,
                slots: MAX_SYSCALL_NR,
                filters,
                emits,
                probes: probes.len(),
            },
            args: &args,
            guard: None,
            filter: None,
            kernel_clauses: probes
                .iter()
                .filter(|(_, p, _, _)| !p.kernel_clauses.is_empty())
                .map(|(i, p, _, _)| (*i, p.kernel_clauses.as_slice()))
                .collect(),
        };
        let attach = AttachPoint::Tracepoint {
            category: "raw_syscalls".into(),
            name: tracepoint.into(),
        };
        self.add(first_index, &what, parts, ProgType::Tracepoint, attach)
    }
}

/// Whether the kernel filter of `probe` lets nothing through (all its clauses run in the
/// kernel, or none of their predicates can hold).
fn never_emits(probe: &PlannedProbe) -> bool {
    probe
        .kernel_filter
        .as_deref()
        .is_some_and(<[Expr]>::is_empty)
}

/// What a program does, apart from the maps it writes.
struct Parts<'a> {
    index: ProbeIndex<'a>,
    args: &'a [ArgLoad],
    guard: Option<u16>,
    filter: Option<&'a [Expr]>,
    kernel_clauses: Vec<(u32, &'a [KernelClause])>,
}

/// The per-CPU slot every program builds its record in, as large as the largest record.
/// Programs cannot interrupt one another on a CPU (the kernel skips a tracing program that
/// would nest in another), so one slot per CPU is enough.
fn record_scratch(plan: &Plan, layouts: &[Layout]) -> Result<MapSpec, CodegenError> {
    let largest = plan
        .probes
        .iter()
        .zip(layouts)
        .map(|(p, layout)| (p, layout.room))
        .max_by_key(|&(_, size)| size);
    if let Some((probe, size)) = largest.filter(|&(_, size)| size > i16::MAX as usize) {
        return Err(CodegenError::RecordTooLarge {
            what: probe.info.desc.to_string(),
            size,
        });
    }
    let size = largest.map_or(record::HEADER, |(_, size)| size);
    Ok(MapSpec::new(
        MapType::PerCpuArray,
        4,
        size as u32,
        1,
        "dtk_record",
    ))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::sync::Arc;

    use super::*;
    use crate::backend::linux::bpf::insn::relocate;
    use crate::backend::linux::bpf::sys::fake::with_kernel;
    use crate::backend::linux::firing::ProbeInfo;
    use crate::backend::linux::load::{self, LoadError};
    use crate::backend::linux::plan::Captures;
    use crate::event::ProbeDesc;

    /// `profile-99 { }` with its record sent to user space, planned by hand (planning reads
    /// the system).
    fn profile_plan() -> Plan {
        Plan {
            probes: vec![PlannedProbe {
                info: ProbeInfo {
                    desc: Arc::new(ProbeDesc {
                        provider: "profile".into(),
                        module: String::new(),
                        function: String::new(),
                        name: "profile-99".into(),
                    }),
                    kind: ProbeKind::Profile,
                    clauses: vec![0],
                },
                site: Site::Profile {
                    hz: 99,
                    args: vec![ArgLoad::SampledPc { user: false }],
                },
                captures: Captures {
                    strings: vec![0],
                    ..Captures::default()
                },
                kernel_filter: None,
                kernel_clauses: Vec::new(),
            }],
            strsize: 64,
            kernel_aggregations: Vec::new(),
            kernel_vars: Vec::new(),
            shadow_vars: Vec::new(),
            zones: Vec::new(),
            task: None,
            thread_members: Default::default(),
            follow: None,
            holds: Vec::new(),
        }
    }

    #[test]
    fn building_makes_no_system_call_and_names_only_maps_it_asks_for() {
        let calls = Rc::new(Cell::new(0));
        let counted = Rc::clone(&calls);
        let plan = profile_plan();
        let set = with_kernel(
            move |_| {
                counted.set(counted.get() + 1);
                Err(std::io::Error::from_raw_os_error(libc::ENOSYS))
            },
            || build(&plan, &Options::default()).unwrap(),
        );
        assert_eq!(calls.get(), 0);
        assert_eq!(set.programs.len(), 1);
        assert_eq!(set.layouts, record::layouts(&plan));
        let names: Vec<&str> = set.maps.iter().map(|m| m.name.as_str()).collect();
        for name in ["dtk_events", "dtk_drops", "dtk_gate", "dtk_record"] {
            assert!(names.contains(&name), "{name} in {names:?}");
        }
        let scratch = set.maps.iter().find(|m| m.name == "dtk_record").unwrap();
        assert_eq!(scratch.value_size as usize, set.layouts[0].room);
        let fds: Vec<i32> = (100..100 + set.maps.len() as i32).collect();
        let mut insns = set.programs[0].insns.clone();
        relocate(&mut insns, &fds).unwrap();
        assert_eq!(relocate(&mut insns, &fds[..1]).map_err(|e| e.count), Err(1));
    }

    /// How many times `insns` call `helper`.
    fn calls_of(insns: &[Insn], helper: crate::backend::linux::bpf::insn::Helper) -> usize {
        insns
            .iter()
            .filter(|i| i.code == 0x85 && i.imm == helper.id())
            .count()
    }

    #[test]
    fn a_following_plan_checks_the_followed_set_and_keeps_it_at_fork_and_exit() {
        use crate::backend::linux::bpf::insn::Helper;
        let alone = build(&profile_plan(), &Options::default()).unwrap();
        let plan = Plan {
            follow: Some(Follow {
                seed: vec![42, 43],
                child_pid: 20,
                group_dead: Some(32),
            }),
            ..profile_plan()
        };
        let set = build(&plan, &Options::default()).unwrap();
        let followed = set.maps.iter().find(|m| m.name == "dtk_followed").unwrap();
        let seeded: Vec<Vec<u8>> = followed.entries.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(seeded, [42u32.to_ne_bytes(), 43u32.to_ne_bytes()]);
        assert!(set.unfollowed.is_some());
        // The probe's program looks the process up once more than it does alone.
        let probe = &set.programs[0].insns;
        assert_eq!(
            calls_of(probe, Helper::GetCurrentPidTgid),
            calls_of(&alone.programs[0].insns, Helper::GetCurrentPidTgid) + 1
        );
        let keepers: Vec<(&str, &Vec<Insn>)> = set.programs[1..]
            .iter()
            .map(|p| match &p.attach {
                AttachPoint::Tracepoint { category, name } if category == "sched" => {
                    (name.as_str(), &p.insns)
                }
                other => panic!("{other:?}"),
            })
            .collect();
        let names: Vec<&str> = keepers.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["sched_process_fork", "sched_process_exit"]);
        assert_eq!(calls_of(keepers[0].1, Helper::MapUpdateElem), 1);
        // A thread's own entry, and the process's when its group is dead.
        assert_eq!(calls_of(keepers[1].1, Helper::MapDeleteElem), 2);
        assert!(alone.unfollowed.is_none());
        assert_eq!(alone.programs.len(), 1);
    }

    #[test]
    fn a_map_the_kernel_refuses_fails_the_load_before_any_program() {
        let plan = profile_plan();
        let set = build(&plan, &Options::default()).unwrap();
        let err = with_kernel(
            |call| match call {
                crate::backend::linux::bpf::sys::Syscall::Bpf {
                    cmd: crate::backend::linux::bpf::sys::BpfCmd::ProgLoad,
                    ..
                } => panic!("a program was loaded"),
                _ => Err(std::io::Error::from_raw_os_error(libc::EPERM)),
            },
            || load::attach(set).unwrap_err(),
        );
        let LoadError::Map { name, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(name, "dtk_events");
    }
}
