//! Attach points: tracepoints, uprobes (USDT probes are uprobes), perf events. Only what
//! attaches lives here; reading the system (tracefs, ELF files, USDT notes, process maps) is
//! `crate::inspect`, and the BPF code that reads USDT arguments is `codegen::usdt_arg`.
//!
//! Every attachment is a perf event with the program set on it: `perf_event_open` (created
//! disabled), then `PERF_EVENT_IOC_SET_BPF`; [`Link::enable`] sends `PERF_EVENT_IOC_ENABLE`
//! once every event of the run exists, and the programs' gate (`bpf::gate`) decides when they
//! start recording, all together. dtk uses this one path instead of
//! `BPF_LINK_CREATE` because it works for tracepoints (kernel ≥ 4.7), the uprobe PMU (≥ 4.17;
//! ref_ctr_offset ≥ 4.20) and cpu-clock sampling (≥ 4.9) alike, while perf-event links need
//! ≥ 5.15 and would add nothing dtk uses (no pinning: attachments live as long as dtk).
//! Closing the perf event fd detaches the program, so a [`Link`] detaches on drop, and the
//! kernel does the same if dtk dies.

pub(crate) mod perf;
pub(crate) mod tracepoint;
pub(crate) mod uprobe;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use super::bpf::prog::Program;
use super::bpf::sys::{self, PerfEventAttr, PerfIoctl, SysError};
use crate::inspect::tracefs::TracefsError;

/// Why an attachment failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("cannot attach to {what}")]
    Sys {
        what: String,
        #[source]
        source: SysError,
    },
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tracefs(#[from] TracefsError),
    #[error("{} does not hold a number: {text:?}", path.display())]
    BadNumber { path: PathBuf, text: String },
    #[error(
        "this kernel has no uprobe PMU (/sys/bus/event_source/devices/uprobe): uprobes and USDT \
         need kernel ≥ 4.17 built with CONFIG_UPROBE_EVENTS"
    )]
    NoUprobePmu {
        #[source]
        source: std::io::Error,
    },
    #[error("the path {} contains a NUL byte", path.display())]
    NulInPath { path: PathBuf },
    #[error(
        "cannot attach a uprobe at {}:{offset:#x}: another tracer left the probe `{existing}` \
         at the same place with a different reference counter; remove it with \
         `echo '-:{event}' >> /sys/kernel/tracing/uprobe_events`",
        path.display()
    )]
    UprobeConflict {
        path: PathBuf,
        offset: u64,
        existing: String,
        event: String,
        #[source]
        source: SysError,
    },
}

/// A program attached to one or more perf events (one per CPU for cpu-clock sampling).
/// Dropping it disables and closes the events, which detaches the program.
#[derive(Debug)]
pub struct Link {
    events: Vec<OwnedFd>,
    what: String,
}

impl Link {
    /// What is attached, e.g. `tracepoint syscalls:sys_enter_openat`.
    pub fn describe(&self) -> &str {
        &self.what
    }

    /// Turns the events on: from here the program runs when they fire.
    pub fn enable(&self) -> Result<(), AttachError> {
        for event in &self.events {
            sys::perf_ioctl(event.as_raw_fd(), PerfIoctl::Enable).map_err(|source| {
                AttachError::Sys {
                    what: self.what.clone(),
                    source,
                }
            })?;
        }
        Ok(())
    }

    /// Turns the events off: the program no longer runs, and a uprobe's breakpoints are
    /// taken out. A failure changes nothing: closing the events detaches anyway.
    pub fn disable(&self) {
        for event in &self.events {
            let _ = sys::perf_ioctl(event.as_raw_fd(), PerfIoctl::Disable);
        }
    }

    /// The perf event fds, which detach the program when the last copy closes.
    pub fn event_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.events.iter().map(AsRawFd::as_raw_fd)
    }

    /// [`Link::enable`], for a link used on its own.
    pub fn enabled(self) -> Result<Link, AttachError> {
        self.enable()?;
        Ok(self)
    }
}

impl Drop for Link {
    /// Stops delivery before the close.
    fn drop(&mut self) {
        self.disable();
    }
}

/// Opens a perf event, disabled, and sets `prog` on it; [`Link::enable`] turns it on.
///
/// # Safety
/// As for `sys::perf_event_open`: a pointer in `attr` (`config1`, the uprobe path) must point
/// to a NUL-terminated string that stays valid for the call.
unsafe fn attach_perf_event(
    prog: &Program,
    attr: &PerfEventAttr,
    pid: i32,
    cpu: i32,
    what: &str,
) -> Result<OwnedFd, AttachError> {
    // SAFETY: the caller upholds the contract on pointers in `attr` (see # Safety).
    let event = unsafe { open_perf_event(attr, pid, cpu, what) }?;
    sys::perf_ioctl(event.as_raw_fd(), PerfIoctl::SetBpf(prog.as_raw_fd())).map_err(|source| {
        AttachError::Sys {
            what: what.to_string(),
            source,
        }
    })?;
    Ok(event)
}

/// Opens a perf event, disabled, with no program.
///
/// # Safety
/// As for [`attach_perf_event`].
unsafe fn open_perf_event(
    attr: &PerfEventAttr,
    pid: i32,
    cpu: i32,
    what: &str,
) -> Result<OwnedFd, AttachError> {
    let mut attr = *attr;
    attr.flags |= sys::PERF_FLAG_BIT_DISABLED;
    // SAFETY: the caller upholds the contract on pointers in `attr` (see # Safety).
    unsafe { sys::perf_event_open(&attr, pid, cpu, -1, sys::PERF_FLAG_FD_CLOEXEC) }.map_err(
        |source| AttachError::Sys {
            what: what.to_string(),
            source,
        },
    )
}

/// Reads a sysfs/tracefs file that holds one decimal number.
fn read_number(path: PathBuf) -> Result<u64, AttachError> {
    let text = std::fs::read_to_string(&path).map_err(|source| AttachError::Io {
        path: path.clone(),
        source,
    })?;
    text.trim().parse().map_err(|_| AttachError::BadNumber {
        path,
        text: text.trim().to_string(),
    })
}
