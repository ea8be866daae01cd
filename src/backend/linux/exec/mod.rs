//! The user-space D executor of the Linux engine: it runs a probe's clauses over each firing
//! the kernel half decodes (or the engine synthesises, for BEGIN, END and tick), in event
//! order, and turns their actions into [`Event`]s.
//!
//! Everything D keeps between firings lives here: global, thread-local and associative
//! variables (`vars`), aggregations (`agg`), and the names of the cgroups zonename reads
//! (`process`, which also reads the process state the kernel carried in the firing). Expressions are evaluated over the checked AST (`eval`, `builtins`,
//! `subroutines`); actions are collected per clause and applied when the clause completes
//! (`actions`), so that a clause that faults leaves no output, as in DTrace, where the data
//! an enabling recorded before an error is discarded.

mod actions;
mod agg;
mod buckets;
mod builtins;
mod destructive;
mod eval;
mod format;
mod interned;
mod printf;
mod process;
mod records;
mod scratch;
mod speculation;
mod strings;
mod subroutines;
mod value;
mod vars;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;

use thiserror::Error;

use super::d::ast::{Clause, DType, Item, Program, VariableKind};
use super::d::typetable::TypeTable;
use super::firing::{Firing, ProbeInfo, ProbeKind, Zone, MAX_ARGS};
use super::options::Options;
use crate::backend::EventSink;
use crate::event::{AggEntry, AggFunc, DropKind, Event, Origin};
use crate::inspect::symbols::Symbolizer;
use actions::Pending;
use agg::Aggregations;
use interned::Interned;
use process::ProcessTable;
use speculation::{Buffers, Speculating};
use value::Capture;
use vars::Variables;

/// What the engine does after a firing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// exit() has run: the engine runs END and stops.
    Exit(i32),
}

/// Errors of the executor itself; D's run-time errors are events, not these.
#[derive(Debug, Error)]
pub enum ExecError {
    #[error("firing of probe #{probe}, but the plan has {known} probes")]
    UnknownProbe { probe: u32, known: usize },
    #[error("probe {probe} runs clause #{clause}, but the program has {known} clauses")]
    UnknownClause {
        probe: String,
        clause: usize,
        known: usize,
    },
    #[error("writing events")]
    Output(#[source] io::Error),
}

/// A D run-time error: it ends the clause, and is reported as DTrace's ERROR does.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Fault {
    InvalidAddress(u64),
    DivideByZero,
    /// An operation D does not allow on these operands (lltostr's base, `&` of a variable).
    IllegalOperation,
    /// An aggregating function's constant parameters cannot be used.
    BadParameters(String),
    /// The clause ends here and its data is dropped, with no error: speculate() on a
    /// buffer that is not active, or speculative data past `specsize`.
    Abandoned,
    /// alloca() asked for more than is left of `scratchsize`.
    NoScratch,
}

/// Where in a clause a fault happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Predicate,
    /// Statements are numbered from 1 in source order, as DTrace numbers actions.
    Action(usize),
}

impl Fault {
    fn message(&self, place: Place) -> String {
        let place = match place {
            Place::Predicate => "predicate".to_string(),
            Place::Action(n) => format!("action #{n}"),
        };
        match self {
            Fault::InvalidAddress(addr) => format!("invalid address (0x{addr:x}) in {place}"),
            Fault::DivideByZero => format!("divide-by-zero in {place}"),
            Fault::IllegalOperation => format!("illegal operation in {place}"),
            Fault::BadParameters(why) => format!("{why} in {place}"),
            Fault::Abandoned => format!("clause abandoned in {place}"),
            Fault::NoScratch => format!("out of scratch space in {place}"),
        }
    }
}

/// A fault and where it happened, for the ERROR probe.
struct Faulted {
    clause: usize,
    place: Place,
    fault: Fault,
}

impl Faulted {
    /// The firing of DTrace's ERROR probe for this fault: arg1 is the faulting enabling's
    /// epid, arg2 the action's number (0 for the predicate), arg3 the DIF offset (none
    /// here: -1), arg4 the fault type and arg5 the faulting address.
    fn error_firing(&self, probe: u32, faulted: &Firing) -> Firing {
        let (kind, addr) = match self.fault {
            Fault::InvalidAddress(addr) => (FAULT_BADADDR, addr),
            Fault::DivideByZero => (FAULT_DIVZERO, 0),
            Fault::NoScratch => (FAULT_NOSCRATCH, 0),
            Fault::IllegalOperation | Fault::BadParameters(_) | Fault::Abandoned => {
                (FAULT_ILLOP, 0)
            }
        };
        let action = match self.place {
            Place::Predicate => 0,
            Place::Action(n) => n as u64,
        };
        let mut args = [0; MAX_ARGS];
        args[1] = self.clause as u64 + 1;
        args[2] = action;
        args[3] = u64::MAX;
        args[4] = kind;
        args[5] = addr;
        Firing {
            probe,
            cpu: faulted.cpu,
            ts_ns: faulted.ts_ns,
            pid: faulted.pid,
            tid: faulted.tid,
            uid: faulted.uid,
            gid: faulted.gid,
            cgroup_id: faulted.cgroup_id,
            zones: faulted.zones,
            comm: faulted.comm.clone(),
            args,
            process: faulted.process.clone(),
            ..Firing::default()
        }
    }
}

/// DTrace's fault types (DTRACEFLT_*), as the ERROR probe's arg4 gives them.
const FAULT_BADADDR: u64 = 1;
const FAULT_ILLOP: u64 = 3;
const FAULT_DIVZERO: u64 = 4;
const FAULT_NOSCRATCH: u64 = 5;

/// One run of one clause over one firing.
struct Frame<'a> {
    firing: &'a Firing,
    probe: &'a ProbeInfo,
    /// Index of the clause in the program, for `epid`.
    clause: usize,
    origin: Origin,
    /// What the kernel read for arg0 … arg9.
    captures: &'a [Option<Arc<Capture>>],
    /// The number of the statement being run.
    action: usize,
    pending: Vec<Pending>,
    /// Set by speculate(): the clause's data goes to a speculative buffer.
    speculating: Option<Speculating>,
}

/// The executor's state between firings.
struct State {
    options: Options,
    vars: Variables,
    aggs: Aggregations,
    /// Each aggregation's function, from the checked program.
    agg_funcs: HashMap<String, AggFunc>,
    /// Aggregation names in the order the program first uses them: the order of the final
    /// print, as dtrace prints aggregations by their id.
    agg_order: Vec<String>,
    procs: ProcessTable,
    /// The zones the plan resolved, for `zonename == "NAME"` (see `firing::Zone`).
    zones: Vec<Zone>,
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC, measured once, for walltimestamp.
    wall_offset_ns: i64,
    drops: HashMap<DropKind, u64>,
    /// Aggregations printa printed while they had data: the final print leaves them out,
    /// as dtrace(1) leaves out those it marked DTRACE_AGD_PRINTED.
    printed: HashSet<String>,
    exit: Option<i32>,
    /// Names the frames of stack() and ustack().
    symbols: Symbolizer,
    speculations: Buffers,
    /// alloca()'s memory for the clause being run.
    scratch: scratch::Scratch,
    /// Where strtok(NULL, ...) resumes.
    strtok_rest: Option<Arc<[u8]>>,
    /// rand()'s generator state (never 0).
    rand_state: u64,
    /// The program's structs, unions and typedefs, for members and zero values.
    types: TypeTable,
    /// String literals and probe description fields, shared (see `interned`).
    interned: Interned,
}

impl State {
    fn drop(&mut self, kind: DropKind) {
        *self.drops.entry(kind).or_insert(0) += 1;
    }
}

/// Runs a checked D program over firings. It is `Send`, so the engine may run it on the
/// thread that reads the ring buffer.
pub struct Executor {
    clauses: Vec<Clause>,
    probes: Vec<ProbeInfo>,
    /// The ERROR probe's index in `probes`, found once.
    error_probe: Option<usize>,
    state: State,
}

/// The size dtrace(1) sizes an aggregation key's column by: an integer's bytes, else 0.
fn key_size(ty: &DType) -> u8 {
    match ty {
        DType::Int { bits, .. } => bits / 8,
        DType::Pointer(_) => 8,
        _ => 0,
    }
}

impl Executor {
    /// `probes[i]` describes the probe whose firings have `probe == i`.
    pub fn new(program: Program, probes: Vec<ProbeInfo>, options: Options) -> Executor {
        let aggregations = program
            .variables
            .iter()
            .filter(|v| v.kind == VariableKind::Aggregation);
        let agg_funcs = aggregations
            .clone()
            .map(|v| (v.name.clone(), v.func.unwrap_or(AggFunc::Count)))
            .collect();
        let key_sizes = aggregations
            .clone()
            .map(|v| (v.name.clone(), v.keys.iter().map(key_size).collect()))
            .collect();
        let agg_order = aggregations.map(|v| v.name.clone()).collect();
        let mut aggs = Aggregations::with_key_sizes(key_sizes);
        aggs.sort = options.aggsort;
        aggs.sort_pos = options.aggsortpos;
        let types = program.types.clone();
        let clauses = program
            .items
            .into_iter()
            .filter_map(|item| match item {
                Item::Clause(c) => Some(c),
                _ => None,
            })
            .collect();
        let error_probe = probes.iter().position(|p| p.kind == ProbeKind::Error);
        Executor {
            clauses,
            probes,
            error_probe,
            state: State {
                vars: Variables::new(options.dynvarsize, options.strsize),
                speculations: Buffers::new(options.nspec),
                options,
                aggs,
                agg_funcs,
                agg_order,
                procs: ProcessTable::default(),
                zones: Vec::new(),
                wall_offset_ns: wall_clock_offset(),
                drops: HashMap::new(),
                printed: HashSet::new(),
                exit: None,
                symbols: Symbolizer::default(),
                scratch: Default::default(),
                strtok_rest: None,
                rand_state: (wall_clock_offset() as u64) | 1,
                types,
                interned: Interned::default(),
            },
        }
    }

    /// Gives `zonename == "NAME"` its Linux meaning for the zones the plan resolved, in the
    /// order of the firings' membership bits. Without them it compares names.
    pub fn with_zones(mut self, zones: Vec<Zone>) -> Executor {
        self.state.zones = zones;
        self
    }

    /// Runs the probe's clauses, in order, over one firing; emits events into `sink`.
    /// Returns `Flow::Exit(status)` once exit() has run.
    pub fn fire(&mut self, firing: &Firing, sink: &mut dyn EventSink) -> Result<Flow, ExecError> {
        let faults = self.run(firing, sink)?;
        let error_probe = self.error_probe;
        let faulted_kind = self.probes.get(firing.probe as usize).map(|p| &p.kind);
        // A fault in an ERROR clause does not fire ERROR again, as in DTrace.
        if let (Some(error), false) = (error_probe, faulted_kind == Some(&ProbeKind::Error)) {
            for fault in faults {
                self.run(&fault.error_firing(error as u32, firing), sink)?;
            }
        }
        Ok(match self.state.exit {
            Some(status) => Flow::Exit(status),
            None => Flow::Continue,
        })
    }

    /// The status exit() was given, once it has run.
    pub fn exit_status(&self) -> Option<i32> {
        self.state.exit
    }

    /// Runs the firing's clauses; returns the faults they hit.
    fn run(
        &mut self,
        firing: &Firing,
        sink: &mut dyn EventSink,
    ) -> Result<Vec<Faulted>, ExecError> {
        let Executor {
            clauses,
            probes,
            state,
            ..
        } = self;
        let probe = probes
            .get(firing.probe as usize)
            .ok_or(ExecError::UnknownProbe {
                probe: firing.probe,
                known: probes.len(),
            })?;
        state.vars.begin_firing();
        let captures = captures_of(firing);
        let mut faults = Vec::new();
        for &index in &probe.clauses {
            // exit() ends tracing: dtrace runs no clause after it but END's.
            if state.exit.is_some() && probe.kind != ProbeKind::End {
                break;
            }
            let clause = clauses.get(index).ok_or_else(|| ExecError::UnknownClause {
                probe: probe.desc.to_string(),
                clause: index,
                known: clauses.len(),
            })?;
            let mut frame = Frame {
                firing,
                probe,
                clause: index,
                origin: Origin {
                    probe: Arc::clone(&probe.desc),
                    cpu: firing.cpu,
                    ts_ns: firing.ts_ns,
                },
                captures: &captures,
                action: 0,
                pending: Vec::new(),
                speculating: None,
            };
            match state.run_clause(clause, &mut frame) {
                Ok(()) => match frame.speculating {
                    Some(s) => state.keep_speculative(s, frame.pending),
                    None => state.commit(frame.pending, probe.kind == ProbeKind::End, sink)?,
                },
                Err((Fault::Abandoned, _)) => {}
                Err((fault, place)) => {
                    sink.event(Event::Error {
                        probe: Some(Arc::clone(&probe.desc)),
                        msg: fault.message(place),
                    })
                    .map_err(ExecError::Output)?;
                    faults.push(Faulted {
                        clause: index,
                        place,
                        fault,
                    });
                }
            }
        }
        Ok(faults)
    }

    /// At the end of the run (after END): one snapshot per aggregation that has data and
    /// that no printa() printed.
    pub fn final_snapshots(&mut self, sink: &mut dyn EventSink) -> io::Result<()> {
        let with_data = self.state.aggs.names_with_data();
        let ordered = self
            .state
            .agg_order
            .iter()
            .filter(|n| with_data.contains(n));
        let others = with_data
            .iter()
            .filter(|n| !self.state.agg_order.contains(n));
        let snapshots = ordered
            .chain(others)
            .filter(|name| !self.state.printed.contains(*name))
            .filter_map(|name| self.state.aggs.snapshot(name))
            .collect();
        sink.event(Event::FinalAggs(snapshots))
    }

    /// Entries of an aggregation kept in the kernel, merged in before printing: they
    /// replace that aggregation's entries.
    pub fn set_kernel_aggregation(&mut self, name: &str, func: AggFunc, entries: Vec<AggEntry>) {
        self.state.aggs.replace(name, func, entries);
    }

    /// What the kernel counted since it was last read, for an aggregation it drains: added
    /// to that aggregation's entries, on which clear and trunc then act as on any other.
    pub fn add_kernel_aggregation(&mut self, name: &str, func: AggFunc, entries: Vec<AggEntry>) {
        self.state.aggs.add(name, func, entries);
    }

    /// Drop counts the executor produced since the last call.
    pub fn take_drops(&mut self) -> Vec<(DropKind, u64)> {
        let mut drops: Vec<(DropKind, u64)> = self.state.drops.drain().collect();
        drops.sort_by_key(|(kind, _)| *kind as u8);
        drops
    }
}

const _: fn() = || {
    fn send<T: Send>() {}
    send::<Executor>();
};

/// What the kernel read at each argument's address, by argument number.
/// A firing that carries no strings or bytes (most do not) costs no allocation.
fn captures_of(firing: &Firing) -> Vec<Option<Arc<Capture>>> {
    if firing.strings.is_empty() && firing.bytes.is_empty() {
        return Vec::new();
    }
    let mut captures: Vec<Option<Capture>> = vec![None; firing.args.len()];
    for s in &firing.strings {
        if let Some(slot) = captures.get_mut(usize::from(s.arg)) {
            let c = slot.get_or_insert_with(Capture::default);
            c.string = Some(Arc::from(s.value.as_bytes()));
            c.truncated = s.truncated;
        }
    }
    for b in &firing.bytes {
        if let Some(slot) = captures.get_mut(usize::from(b.arg)) {
            slot.get_or_insert_with(Capture::default).bytes = Some(Arc::from(b.value.as_slice()));
        }
    }
    captures.into_iter().map(|c| c.map(Arc::new)).collect()
}

/// CLOCK_REALTIME − CLOCK_MONOTONIC in nanoseconds: walltimestamp is the firing's
/// monotonic time plus this.
fn wall_clock_offset() -> i64 {
    let read = |clock| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    };
    read(libc::CLOCK_REALTIME) - read(libc::CLOCK_MONOTONIC)
}
