//! The proc provider: `proc:::exec-success`, `exit` and `create`, each on a sched tracepoint.
//! The kernel captures proc:::create's arg0 (the new process's pid; DTrace passes its psinfo)
//! and tests proc:::exit's guard field.

use super::common::{concrete, field_load, no_module_or_function, Query};
use crate::backend::linux::d::ast;
use crate::backend::linux::firing::ProbeKind;
use crate::backend::linux::plan::glob::matches;
use crate::backend::linux::plan::{Candidate, PlanError, Site};
use crate::inspect::tracefs;

/// The probes and their sched tracepoints.
const PROBES: &[(&str, &str)] = &[
    ("exec-success", "sched_process_exec"),
    ("exit", "sched_process_exit"),
    ("create", "sched_process_fork"),
];

/// The proc probes `desc` matches.
pub fn probes(desc: &ast::ProbeDesc, _: &mut Query) -> Result<Vec<Candidate>, PlanError> {
    let mut found = Vec::new();
    if !no_module_or_function(desc) {
        return Ok(found);
    }
    for (name, tracepoint) in PROBES {
        if !matches(&desc.name, name) {
            continue;
        }
        let format = tracefs::read_format("sched", tracepoint).map_err(PlanError::tracefs)?;
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
