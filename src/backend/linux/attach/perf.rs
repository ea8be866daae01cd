//! Perf software events for `profile-N`: cpu-clock sampling at a frequency, one event per
//! online CPU, running a `ProgType::PerfEvent` program on each sample (kernel ≥ 4.9).

use super::{attach_perf_event, AttachError, Link};
use crate::backend::linux::bpf::cpus;
use crate::backend::linux::bpf::prog::Program;
use crate::backend::linux::bpf::sys::{
    PerfEventAttr, PERF_COUNT_SW_CPU_CLOCK, PERF_FLAG_BIT_FREQ, PERF_TYPE_SOFTWARE,
};

/// Runs `prog` `hz` times a second on every online CPU, for every process.
pub fn attach_cpu_clock(prog: &Program, hz: u64) -> Result<Link, AttachError> {
    let cpus = cpus::online().map_err(|source| AttachError::Io {
        path: "/sys/devices/system/cpu/online".into(),
        source,
    })?;
    let mut attr = PerfEventAttr::new(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK);
    attr.flags |= PERF_FLAG_BIT_FREQ;
    attr.sample_period_or_freq = hz;
    let what = format!("profile-{hz}hz");
    let events = cpus
        .iter()
        .map(|&cpu| {
            let what = format!("{what} on cpu {cpu}");
            // SAFETY: a software event's attribute carries no pointer.
            unsafe { attach_perf_event(prog, &attr, -1, cpu as i32, &what) }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Link { events, what })
}
