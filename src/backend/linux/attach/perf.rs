//! Perf software events for `profile-N` and `tick-N`: cpu-clock sampling, running a
//! `ProgType::PerfEvent` program on each sample (kernel ≥ 4.9). profile-N samples at a
//! frequency on every online CPU; tick-N at a period on one CPU, so that each tick fires
//! once, in the context of whatever that CPU was running.

use super::{attach_perf_event, AttachError, Link};
use crate::backend::linux::bpf::cpus;
use crate::backend::linux::bpf::prog::Program;
use crate::backend::linux::bpf::sys::{
    PerfEventAttr, PERF_COUNT_SW_CPU_CLOCK, PERF_FLAG_BIT_FREQ, PERF_TYPE_SOFTWARE,
};

/// How a cpu-clock event samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuClock {
    /// `hz` times a second on every online CPU (profile-N).
    EveryCpu { hz: u64 },
    /// Every `period_ns` nanoseconds on one CPU (tick-N): `cpu`, or the first online CPU.
    OneCpu { period_ns: u64, cpu: Option<u32> },
}

/// Runs `prog` as `clock` says, for every process.
pub fn attach_cpu_clock(prog: &Program, clock: CpuClock) -> Result<Link, AttachError> {
    let online = cpus::online().map_err(|source| AttachError::Io {
        path: "/sys/devices/system/cpu/online".into(),
        source,
    })?;
    let mut attr = PerfEventAttr::new(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK);
    let (cpus, what) = match clock {
        CpuClock::EveryCpu { hz } => {
            attr.flags |= PERF_FLAG_BIT_FREQ;
            attr.sample_period_or_freq = hz;
            (online, format!("profile-{hz}hz"))
        }
        CpuClock::OneCpu { period_ns, cpu } => {
            // cpu-clock counts nanoseconds, so the sample period is the tick's.
            attr.sample_period_or_freq = period_ns.max(1);
            let cpu = cpu.or_else(|| online.first().copied()).unwrap_or(0);
            (vec![cpu], format!("tick-{period_ns}ns"))
        }
    };
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
