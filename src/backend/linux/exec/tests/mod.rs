//! Executor tests: real D source compiled by the front end, firings built by hand, and the
//! events the executor emits. No kernel is needed.

mod actions;
mod aggregations;
mod corpus;
mod functions;
mod scratch;
mod scripts;
mod semantics;
mod speculation;
mod subroutines;
mod types;
mod variables;

use std::sync::Arc;

use super::{Executor, Flow};
use crate::backend::linux::d::{self, ast};
use crate::backend::linux::firing::{CapturedBytes, CapturedString, Firing, ProbeInfo, ProbeKind};
use crate::backend::linux::options::Options;
use crate::backend::EventSink;
use crate::event::{AggSnapshot, DropKind, Event, ProbeDesc};

#[derive(Default)]
struct Events(Vec<Event>);

impl EventSink for Events {
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn event(&mut self, event: Event) -> std::io::Result<()> {
        self.0.push(event);
        Ok(())
    }
}

/// An executor over a program and the probes it is given, and the events it emitted.
struct Harness {
    exec: Executor,
    events: Events,
}

/// Whether a clause's description names `probe`: each part empty, equal, or a prefix
/// followed by `*` (the globs the test programs use).
fn matches(pattern: &ast::ProbeDesc, probe: &ProbeDesc) -> bool {
    let part = |p: &str, v: &str| match p.strip_suffix('*') {
        Some(prefix) => v.starts_with(prefix),
        None => p.is_empty() || p == v,
    };
    part(&pattern.provider, &probe.provider)
        && part(&pattern.module, &probe.module)
        && part(&pattern.function, &probe.function)
        && part(&pattern.name, &probe.name)
}

fn desc(text: &str) -> ProbeDesc {
    let parts: Vec<&str> = text.split(':').collect();
    let mut full = vec![""; 4 - parts.len().min(4)];
    full.extend(parts);
    ProbeDesc {
        provider: full[0].into(),
        module: full[1].into(),
        function: full[2].into(),
        name: full[3].into(),
    }
}

impl Harness {
    /// Compiles `source`; `probes[i]` is probe number i.
    fn new(source: &str, probes: &[(&str, ProbeKind)]) -> Harness {
        Harness::with_macros(source, &d::MacroArgs::default(), probes)
    }

    fn with_macros(source: &str, macros: &d::MacroArgs, probes: &[(&str, ProbeKind)]) -> Harness {
        let compiled = d::compile("test.d", source, macros).unwrap_or_else(|e| panic!("{e}"));
        let program = compiled.program;
        let options = Options::resolve(&program, &[]).unwrap();
        let clauses = program.clauses();
        let infos = probes
            .iter()
            .map(|(text, kind)| {
                let d = desc(text);
                let clauses = (0..clauses.len())
                    .filter(|&i| clauses[i].probes.iter().any(|p| matches(p, &d)))
                    .collect();
                ProbeInfo {
                    desc: Arc::new(d),
                    kind: kind.clone(),
                    clauses,
                }
            })
            .collect();
        Harness {
            exec: Executor::new(program, infos, options),
            events: Events::default(),
        }
    }

    fn fire(&mut self, firing: &Firing) -> Flow {
        self.exec.fire(firing, &mut self.events).unwrap()
    }

    /// Takes the events emitted so far, but the markers of each firing's output
    /// (FiringStart, FiringEnd).
    fn take(&mut self) -> Vec<Event> {
        self.take_all()
            .into_iter()
            .filter(|e| !matches!(e, Event::FiringStart { .. } | Event::FiringEnd))
            .collect()
    }

    /// Takes every event emitted so far.
    fn take_all(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events.0)
    }

    /// Takes the texts of the printf events emitted so far.
    fn printed(&mut self) -> Vec<String> {
        self.take()
            .into_iter()
            .filter_map(|e| match e {
                Event::Printf(p) => Some(p.text.to_str_lossy().into_owned()),
                _ => None,
            })
            .collect()
    }

    /// The final snapshots, by aggregation.
    fn finals(&mut self) -> Vec<AggSnapshot> {
        let mut events = Events::default();
        self.exec.final_snapshots(&mut events).unwrap();
        events
            .0
            .into_iter()
            .flat_map(|e| match e {
                Event::FinalAggs(s) => s,
                _ => Vec::new(),
            })
            .collect()
    }

    fn drops(&mut self, kind: DropKind) -> u64 {
        self.exec
            .take_drops()
            .into_iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }
}

/// A firing of probe `probe` by thread `tid` of process 100 (`cat`).
fn firing(probe: u32, tid: u32) -> Firing {
    Firing {
        probe,
        cpu: 1,
        ts_ns: 1_000_000,
        pid: 100,
        tid,
        uid: 1000,
        gid: 1000,
        comm: "cat".into(),
        ..Firing::default()
    }
}

fn with_args(mut f: Firing, args: &[u64]) -> Firing {
    f.args[..args.len()].copy_from_slice(args);
    f
}

fn with_string(mut f: Firing, arg: u8, value: &str) -> Firing {
    f.strings.push(CapturedString {
        arg,
        value: value.into(),
        truncated: false,
    });
    f
}

fn with_bytes(mut f: Firing, arg: u8, value: &[u8]) -> Firing {
    f.bytes.push(CapturedBytes {
        arg,
        value: value.to_vec(),
    });
    f
}

/// The error messages among `events`.
fn errors(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Error { msg, .. } => Some(msg.clone()),
            _ => None,
        })
        .collect()
}

/// Runs a BEGIN-only program and returns what its printf calls printed.
fn begin(source: &str) -> Vec<String> {
    let mut h = Harness::new(source, &[("BEGIN", ProbeKind::Begin)]);
    h.fire(&firing(0, 0));
    h.printed()
}
