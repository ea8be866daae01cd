//! Tracepoints by `category:name` (syscalls:sys_enter_*, raw_syscalls, sched:...), attached
//! as `PERF_TYPE_TRACEPOINT` perf events whose config is the tracefs id (kernel ≥ 4.7 for
//! `BPF_PROG_TYPE_TRACEPOINT`).

use super::{attach_perf_event, AttachError, Link};
use crate::backend::linux::bpf::prog::Program;
use crate::backend::linux::bpf::sys::{PerfEventAttr, PERF_TYPE_TRACEPOINT};
use crate::inspect::tracefs;

/// Attaches `prog` (a `ProgType::Tracepoint` program) to `category:name`, for every process.
///
/// One perf event on CPU 0 with pid −1 is enough: the kernel runs a tracepoint's BPF program
/// on whichever CPU hits the tracepoint, before it looks at the event's own CPU filter.
pub fn attach_tracepoint(prog: &Program, category: &str, name: &str) -> Result<Link, AttachError> {
    let id = tracefs::tracepoint_id(category, name)?;
    let what = format!("tracepoint {category}:{name}");
    let attr = PerfEventAttr::new(PERF_TYPE_TRACEPOINT, id);
    // SAFETY: a tracepoint event's attribute carries no pointer.
    let event = unsafe { attach_perf_event(prog, &attr, -1, 0, &what)? };
    Ok(Link {
        events: vec![event],
        what,
    })
}
