//! Loading a [`ProgramSet`] into the kernel: create its maps, put their fds in the programs
//! (`insn::relocate`), load the programs and attach them, then hold it all in an
//! [`Attached`], which reads the ring buffer and the kernel maps back into typed snapshots.
//! Dropping it detaches everything.
//!
//! Going live and stopping are each one step, for all programs together: every program
//! first checks the run's gate (`bpf::gate`), closed while the perf events are created and
//! enabled one by one, and opened once they all are; [`Attached::disarm`] closes it again, so
//! that the reader can drain what was recorded before the stop and nothing after it. An entry
//! probe is thus never live without its return probe.
//!
//! Kernel aggregations are read here (see `codegen::aggregate` for how they are kept): an
//! aggregation that is drained has two generations of maps, and a read starts the other
//! generation for all of them at once, then reads and empties the one that ended.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use thiserror::Error;

use super::attach::perf::attach_cpu_clock;
use super::attach::tracepoint::attach_tracepoint;
use super::attach::uprobe::{attach_uprobe, hold_semaphore};
use super::attach::{AttachError, Link};
use super::bpf::disasm::disassemble;
use super::bpf::drops::DropCounter;
use super::bpf::gate;
use super::bpf::insn::{relocate, Insn, MapRef, RelocateError};
use super::bpf::maps::{Map, MapError, MapSpec, MapType, Update};
use super::bpf::prog::{self, LoadError as ProgLoadError};
use super::bpf::ringbuf::RingBuf;
use super::codegen::{AttachPoint, Counts, ProgramSet};
use super::plan::{KernelAggregation, KeyKind, Plan, Storage};
use crate::event::{AggEntry, AggFunc, AggValue, Value};

/// Why a program set could not be loaded and attached.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("cannot create the BPF map {name}")]
    Map {
        name: String,
        #[source]
        source: MapError,
    },
    #[error("the program for {what} names a map that was not made")]
    Relocate {
        what: String,
        #[source]
        source: RelocateError,
    },
    #[error("the kernel refused the program for {what}")]
    Load {
        what: String,
        #[source]
        source: ProgLoadError,
    },
    #[error(transparent)]
    Attach(#[from] AttachError),
    #[error("cannot arm the programs")]
    Gate(#[source] MapError),
    #[error("map {index} is named twice, or is not in the program set")]
    NoMap { index: u32 },
}

/// One loaded and attached program. Fields drop in order: the link first, so the program is
/// detached before it is closed.
#[derive(Debug)]
struct AttachedProgram {
    link: Link,
    insns: Vec<Insn>,
    _program: prog::Program,
}

/// One kernel aggregation as read back, the CPUs combined.
#[derive(Debug)]
pub struct KernelAggregationSnapshot {
    pub name: String,
    pub func: AggFunc,
    pub entries: Vec<AggEntry>,
    /// What was counted since the last read (a drained aggregation), to add to the entries
    /// the executor holds; else the totals since the start, which replace them.
    pub increments: bool,
}

/// Where one kernel aggregation counts (`codegen::Counts`, created).
#[derive(Debug)]
enum Counted {
    Total(Map),
    Drained([Map; 2]),
}

/// The generation the drained aggregations count in (`codegen::Generation`, created).
#[derive(Debug)]
struct Generation {
    live: Map,
    flags: [Map; 2],
    current: u32,
}

impl Generation {
    /// Starts the other generation. Returns the one that ends, which no program updates
    /// once this returns.
    fn switch(&mut self) -> Result<usize, MapError> {
        let ended = self.current;
        self.live.set_inner(0, &self.flags[1 - ended as usize])?;
        self.current = 1 - ended;
        Ok(ended as usize)
    }
}

/// Everything a program set attached. Dropping it detaches every program and frees every
/// map.
#[derive(Debug)]
pub struct Attached {
    programs: Vec<AttachedProgram>,
    /// Uprobes that only hold USDT semaphores raised (`Plan::holds`).
    holds: Vec<Link>,
    ring: RingBuf,
    drops: DropCounter,
    gate: Map,
    aggregations: Vec<(KernelAggregation, Counted)>,
    generation: Option<Generation>,
    aggregation_drops: DropCounter,
    thread_var_drops: DropCounter,
    /// Children of a followed tree that the full followed set refused.
    unfollowed: Option<DropCounter>,
    /// The maps only programs use (thread variables, shadows, record scratch, syscall
    /// numbers), kept open as long as they are.
    _others: Vec<Map>,
}

/// Creates the maps of `set`, loads its programs and attaches them, all disabled; then
/// enables them and opens the gate.
pub fn attach(set: ProgramSet) -> Result<Attached, LoadError> {
    let (mut maps, ring) = create_maps(&set.maps)?;
    let ring = ring.ok_or(LoadError::NoMap { index: set.ring.0 })?;
    let fds: Vec<i32> = maps
        .iter()
        .map(|m| m.as_ref().map_or(ring.fd(), Map::fd))
        .collect();
    let mut take = |map: MapRef| {
        maps.get_mut(map.0 as usize)
            .and_then(Option::take)
            .ok_or(LoadError::NoMap { index: map.0 })
    };
    let drops = DropCounter::from_map(set.drops, take(set.drops.map())?);
    let gate = take(set.gate)?;
    let aggregations = set
        .aggregations
        .maps
        .iter()
        .map(|(aggregation, counts)| {
            let counted = match *counts {
                Counts::Total(map) => Counted::Total(take(map)?),
                Counts::Drained([a, b]) => Counted::Drained([take(a)?, take(b)?]),
            };
            Ok((aggregation.clone(), counted))
        })
        .collect::<Result<_, LoadError>>()?;
    let generation = match set.aggregations.generation {
        Some(g) => Some(Generation {
            live: take(g.live)?,
            flags: [take(g.flags[0])?, take(g.flags[1])?],
            current: 0,
        }),
        None => None,
    };
    let agg_drops = set.aggregations.drops;
    let aggregation_drops = DropCounter::from_map(agg_drops, take(agg_drops.map())?);
    let var_drops = set.thread_vars.drops;
    let thread_var_drops = DropCounter::from_map(var_drops, take(var_drops.map())?);
    let unfollowed = match set.unfollowed {
        Some(slots) => Some(DropCounter::from_map(slots, take(slots.map())?)),
        None => None,
    };
    let mut attached = Attached {
        programs: Vec::new(),
        holds: Vec::new(),
        ring,
        drops,
        gate,
        aggregations,
        generation,
        aggregation_drops,
        thread_var_drops,
        unfollowed,
        _others: maps.into_iter().flatten().collect(),
    };
    for program in set.programs {
        let mut insns = program.insns;
        let what = program.what;
        relocate(&mut insns, &fds).map_err(|source| LoadError::Relocate {
            what: what.clone(),
            source,
        })?;
        let loaded = prog::load(program.kind, &insns, "GPL")
            .map_err(|source| LoadError::Load { what, source })?;
        let link = match &program.attach {
            AttachPoint::Tracepoint { category, name } => {
                attach_tracepoint(&loaded, category, name)?
            }
            AttachPoint::CpuClock(clock) => attach_cpu_clock(&loaded, *clock)?,
            AttachPoint::Uprobe(spec) => attach_uprobe(&loaded, spec)?,
        };
        attached.programs.push(AttachedProgram {
            link,
            insns,
            _program: loaded,
        });
    }
    for spec in &set.holds {
        attached.holds.push(hold_semaphore(spec)?);
    }
    let programs = attached.programs.iter().map(|p| &p.link);
    for link in programs.chain(&attached.holds) {
        link.enable()?;
    }
    gate::open(&attached.gate).map_err(LoadError::Gate)?;
    Ok(attached)
}

/// Creates every map of `specs`, in order, with its entries; the ring buffer's slot is None
/// and the ring buffer is returned beside them.
fn create_maps(specs: &[MapSpec]) -> Result<(Vec<Option<Map>>, Option<RingBuf>), LoadError> {
    let mut maps: Vec<Option<Map>> = Vec::with_capacity(specs.len());
    let mut ring = None;
    for spec in specs {
        let failed = |source| LoadError::Map {
            name: spec.name.clone(),
            source,
        };
        let map = match (spec.kind, spec.inner) {
            (MapType::RingBuf, _) => {
                ring = Some(RingBuf::create(spec.max_entries, &spec.name).map_err(failed)?);
                maps.push(None);
                continue;
            }
            (MapType::ArrayOfMaps, Some(inner)) => {
                let inner = maps
                    .get(inner.0 as usize)
                    .and_then(Option::as_ref)
                    .ok_or(LoadError::NoMap { index: inner.0 })?;
                Map::create_array_of_maps(inner, spec.max_entries, &spec.name)
            }
            (kind, _) => Map::create(
                kind,
                spec.key_size,
                spec.value_size,
                spec.max_entries,
                &spec.name,
            ),
        }
        .map_err(failed)?;
        for (key, value) in &spec.entries {
            map.update(key, value, Update::Any).map_err(failed)?;
        }
        maps.push(Some(map));
    }
    Ok((maps, ring))
}

impl Attached {
    /// The ring buffer every program writes to; decode its records with `record::Decoder`.
    pub fn ring_buffer(&mut self) -> &mut RingBuf {
        &mut self.ring
    }

    /// Records lost because the ring buffer was full (report as `DropKind::Buffer`).
    pub fn dropped(&self) -> Result<u64, MapError> {
        self.drops.total()
    }

    /// Records lost because the ring buffer was full, by the index of the probe that fired.
    pub fn dropped_by_probe(&self) -> Result<Vec<u64>, MapError> {
        self.drops.by_probe()
    }

    /// Kernel aggregation updates lost because a map was full (report as
    /// `DropKind::Aggregation`).
    pub fn aggregation_drops(&self) -> Result<u64, MapError> {
        self.aggregation_drops.total()
    }

    /// Kernel thread variables not set because their map was full (report as
    /// `DropKind::Dynamic`).
    pub fn thread_var_drops(&self) -> Result<u64, MapError> {
        self.thread_var_drops.total()
    }

    /// Processes of a followed tree that were not followed because the followed set was full
    /// (report as `DropKind::Unfollowed`); 0 when the run follows no tree.
    pub fn unfollowed(&self) -> Result<u64, MapError> {
        self.unfollowed.as_ref().map_or(Ok(0), DropCounter::total)
    }

    /// The aggregations kept in the kernel (`Plan::kernel_aggregations`), each with its
    /// entries, the CPUs combined; the executor merges them into what it prints. Drained
    /// aggregations start a new generation together, and give what was counted in the one
    /// that ended, which is left empty.
    pub fn read_kernel_aggregations(
        &mut self,
        plan: &Plan,
    ) -> Result<Vec<KernelAggregationSnapshot>, MapError> {
        let ended = match &mut self.generation {
            Some(generation) => generation.switch()?,
            None => 0,
        };
        self.aggregations
            .iter()
            .map(|(aggregation, counted)| {
                let (slots, increments) = match counted {
                    Counted::Total(map) => (slots(aggregation, map, plan)?, false),
                    Counted::Drained(maps) => {
                        let slots = slots(aggregation, &maps[ended], plan)?;
                        empty(&maps[ended], aggregation.storage, &slots)?;
                        (slots, true)
                    }
                };
                Ok(KernelAggregationSnapshot {
                    name: aggregation.name.clone(),
                    func: aggregation.func,
                    entries: slots.into_iter().filter_map(|(_, entry)| entry).collect(),
                    increments,
                })
            })
            .collect()
    }

    /// Stops every program at once: from here on none records or counts anything, and what
    /// they wrote before can still be read.
    pub fn disarm(&self) -> Result<(), MapError> {
        gate::close(&self.gate)
    }

    /// Detaches and unloads every program, keeping the ring buffer and the maps: what the
    /// programs wrote can still be read, and nothing more arrives.
    pub fn detach(&mut self) {
        self.programs.clear();
        self.holds.clear();
    }

    /// Detaches everything without making the caller wait for the kernel to unregister the
    /// uprobes.
    ///
    /// The last close of a uprobe's perf event waits for RCU grace periods under a global
    /// mutex, about 100 ms per uprobe on a 6.x kernel, one after the other: three for pyflow,
    /// hundreds for `pid$target:::entry`. So a process forked for it (twice, so that it is
    /// nobody's zombie) keeps copies of the perf event fds, waits until dtk has closed its
    /// own, and then closes them as it exits, while dtk goes on to exit. The programs are
    /// disarmed (the gate) and the events disabled first, so that nothing more is recorded;
    /// the uprobes' breakpoints, and the USDT semaphores they raise, stay in the traced
    /// processes until that process is done, a grace period per uprobe later. Where the fork
    /// fails, the events are closed here.
    pub fn release(self) {
        let links = || self.programs.iter().map(|p| &p.link).chain(&self.holds);
        for link in links() {
            link.disable();
        }
        let keep: Vec<RawFd> = links().flat_map(Link::event_fds).collect();
        let last_close = close_after(keep);
        drop(self);
        // The closer sees the end of the pipe, and closes the last copies.
        drop(last_close);
    }

    /// What each program is attached to.
    pub fn attachments(&self) -> Vec<&str> {
        self.programs.iter().map(|p| p.link.describe()).collect()
    }

    /// The disassembly of every program, each under a comment naming its attach point
    /// (`dtk run --dump-bpf`).
    pub fn dump(&self) -> String {
        self.programs
            .iter()
            .map(|p| format!("; {}\n{}", p.link.describe(), disassemble(&p.insns)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Starts a grandchild process that holds copies of the fds in `keep` and closes them as
/// it exits, once the returned pipe end (and every other copy of it) is closed: the caller
/// closes its own copies of `keep` first, so that the slow last close falls to the
/// grandchild. The children call only async-signal-safe functions (fork, setsid,
/// close_range, read, _exit) on memory prepared before the fork, as a child of a
/// multithreaded process must. None (nothing started) when `keep` is empty or a pipe or fork
/// fails.
fn close_after(mut keep: Vec<RawFd>) -> Option<OwnedFd> {
    if keep.is_empty() {
        return None;
    }
    let mut pipe = [0; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    // SAFETY: both are new fds that nothing else owns.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
    keep.push(read_end.as_raw_fd());
    keep.sort_unstable();
    // SAFETY: see the function's doc: the children use only async-signal-safe calls, on
    // `keep` and `pipe` (allocated before the fork), and end with _exit; the parent only
    // waits for the first child, which exits at once.
    unsafe {
        let child = libc::fork();
        if child == 0 {
            if libc::fork() == 0 {
                // Out of the terminal's process group: a second Ctrl-C is not for it.
                libc::setsid();
                // Every other fd goes, among them the pipes a reader waits on to see dtk end.
                let mut from = 0u32;
                for &fd in &keep {
                    if fd as u32 > from {
                        libc::syscall(libc::SYS_close_range, from, fd as u32 - 1, 0);
                    }
                    from = fd as u32 + 1;
                }
                libc::syscall(libc::SYS_close_range, from, u32::MAX, 0);
                // Nothing is ever written: read returns at the end of the pipe.
                let mut byte = 0u8;
                while libc::read(pipe[0], (&mut byte as *mut u8).cast(), 1) < 0
                    && *libc::__errno_location() == libc::EINTR
                {}
            }
            libc::_exit(0);
        }
        if child < 0 {
            return None;
        }
        libc::waitpid(child, std::ptr::null_mut(), 0);
    }
    drop(read_end);
    Some(write_end)
}

/// Every key of one aggregation's map, with its entry when some CPU updated it.
type Slots = Vec<(Vec<u8>, Option<AggEntry>)>;

fn slots(aggregation: &KernelAggregation, map: &Map, plan: &Plan) -> Result<Slots, MapError> {
    let mut slots = Vec::new();
    for key in map.keys()? {
        let Some(per_cpu) = map.lookup_per_cpu(&key)? else {
            continue;
        };
        let entry = combined(aggregation.func, &per_cpu).map(|value| AggEntry {
            keys: key_values(aggregation, &key, plan),
            value: AggValue::Scalar(value),
        });
        slots.push((key, entry));
    }
    Ok(slots)
}

/// Empties a map no program updates any more: deletes every key of a hash map, and zeroes
/// the array slots that were updated (array slots cannot be deleted).
fn empty(map: &Map, storage: Storage, slots: &Slots) -> Result<(), MapError> {
    let zero = vec![0u8; map.per_cpu_value_size()];
    for (key, entry) in slots {
        match storage {
            Storage::Hash => {
                map.delete(key)?;
            }
            Storage::ByProbe { .. } if entry.is_some() => map.update(key, &zero, Update::Any)?,
            Storage::ByProbe { .. } => {}
        }
    }
    Ok(())
}

fn word(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_ne_bytes(b)
}

/// The CPUs' slots combined; None when no CPU updated the key.
fn combined(func: AggFunc, per_cpu: &[Vec<u8>]) -> Option<i64> {
    let used: Vec<(u64, i64)> = per_cpu
        .iter()
        .filter(|slot| slot.len() >= 16)
        .map(|slot| (word(slot, 0), word(slot, 8) as i64))
        .filter(|&(updates, _)| updates > 0)
        .collect();
    let values = used.iter().map(|&(_, v)| v);
    match func {
        AggFunc::Count => (!used.is_empty()).then(|| used.iter().map(|&(n, _)| n as i64).sum()),
        AggFunc::Sum => (!used.is_empty()).then(|| values.sum()),
        AggFunc::Min => values.min(),
        _ => values.max(),
    }
}

/// The D values of a map key (for `Storage::ByProbe`, the array index).
fn key_values(aggregation: &KernelAggregation, key: &[u8], plan: &Plan) -> Vec<Value> {
    let mut at = 0;
    let mut values = Vec::new();
    for kind in &aggregation.keys {
        let probe = || {
            let index = match aggregation.storage {
                Storage::Hash => word(key, at) as usize,
                Storage::ByProbe { .. } => {
                    let mut b = [0u8; 4];
                    b.copy_from_slice(&key[..4]);
                    u32::from_ne_bytes(b) as usize
                }
            };
            plan.probes.get(index).map(|p| &p.info.desc)
        };
        values.push(match kind {
            KeyKind::Int { signed: true } => Value::Int(word(key, at) as i64),
            KeyKind::Int { signed: false } => Value::UInt(word(key, at)),
            KeyKind::Execname => {
                let comm = &key[at..at + 16];
                let end = comm.iter().position(|&b| b == 0).unwrap_or(16);
                Value::Str(comm[..end].into())
            }
            KeyKind::ProbeFunc => Value::Str(
                probe()
                    .map(|d| d.function.clone())
                    .unwrap_or_default()
                    .into(),
            ),
            KeyKind::ProbeName => {
                Value::Str(probe().map(|d| d.name.clone()).unwrap_or_default().into())
            }
            KeyKind::Str(s) => Value::Str(s.as_str().into()),
            KeyKind::Const {
                value,
                signed: true,
            } => Value::Int(*value as i64),
            KeyKind::Const { value, .. } => Value::UInt(*value),
        });
        at += kind.size();
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(updates: u64, value: i64) -> Vec<u8> {
        [updates.to_ne_bytes(), value.to_ne_bytes()].concat()
    }

    #[test]
    fn cpus_combine_and_untouched_slots_are_ignored() {
        let slots = vec![slot(2, 5), slot(0, 0), slot(3, -4)];
        assert_eq!(combined(AggFunc::Count, &slots), Some(5));
        assert_eq!(combined(AggFunc::Sum, &slots), Some(1));
        assert_eq!(combined(AggFunc::Min, &slots), Some(-4));
        assert_eq!(combined(AggFunc::Max, &slots), Some(5));
        assert_eq!(combined(AggFunc::Min, &[slot(0, 0)]), None);
    }
}
