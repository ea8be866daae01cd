//! Uprobes and uretprobes through the perf "uprobe" PMU (kernel ≥ 4.17), at a file offset in
//! an executable or shared library, optionally for one pid, optionally with a USDT semaphore
//! as `ref_ctr_offset` (kernel ≥ 4.20) so that the kernel raises it while attached.
//!
//! PMU probes do not appear in `uprobe_events` and vanish when their fd closes, so nothing is
//! left behind after dtk exits. The PMU's type and its config bit layout are read from
//! /sys/bus/event_source/devices/uprobe.
//!
//! The kernel refuses (EINVAL) a second uprobe at the same file and offset with a different
//! reference counter. The usual culprit is a probe another tracer created in tracefs and left
//! enabled, so on EINVAL dtk looks for it in `uprobe_events` and names it.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{attach_perf_event, open_perf_event, read_number, AttachError, Link};
use crate::backend::linux::bpf::prog::Program;
use crate::backend::linux::bpf::sys::PerfEventAttr;
use crate::inspect::tracefs;
use crate::inspect::usdt::UsdtProbe;

const PMU: &str = "/sys/bus/event_source/devices/uprobe";

/// Where to put a uprobe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UprobeSpec {
    /// The ELF file (executable or shared library) the probe is in.
    pub path: PathBuf,
    /// File offset of the instruction (not a virtual address; see `inspect::elf`).
    pub offset: u64,
    /// File offset of a USDT semaphore (a u16) that the kernel raises while attached.
    pub ref_ctr_offset: Option<u64>,
    /// Only this process; None for every process that maps the file.
    pub pid: Option<i32>,
    /// A uretprobe, which fires on return from the function at `offset`.
    pub retprobe: bool,
}

impl UprobeSpec {
    /// Where to attach a USDT probe site: in the file it was read from, with its semaphore
    /// counted by the kernel, for `pid` only or for every process that maps the file.
    pub fn usdt(probe: &UsdtProbe, pid: Option<i32>) -> UprobeSpec {
        UprobeSpec {
            path: probe.path().to_path_buf(),
            offset: probe.file_offset,
            ref_ctr_offset: probe.semaphore.map(|s| s.file_offset),
            pid,
            retprobe: false,
        }
    }
}

/// Attaches `prog` (a `ProgType::Kprobe` program; its context is `pt_regs`) at `spec`.
pub fn attach_uprobe(prog: &Program, spec: &UprobeSpec) -> Result<Link, AttachError> {
    let what = describe(spec);
    let path =
        CString::new(spec.path.as_os_str().as_bytes()).map_err(|_| AttachError::NulInPath {
            path: spec.path.clone(),
        })?;
    let mut attr = PerfEventAttr::new(pmu_type()?, config(spec)?);
    attr.config1 = path.as_ptr() as u64;
    attr.config2 = spec.offset;
    // pid −1 needs a CPU; as with tracepoints, the program runs on whichever CPU hits it.
    let (pid, cpu) = match spec.pid {
        Some(pid) => (pid, -1),
        None => (-1, 0),
    };
    // SAFETY: config1 points into `path`, a CString that lives until the end of this function.
    match unsafe { attach_perf_event(prog, &attr, pid, cpu, &what) } {
        Ok(event) => Ok(Link {
            events: vec![event],
            what,
        }),
        Err(AttachError::Sys { source, what }) if source.errno() == Some(libc::EINVAL) => {
            Err(explain_einval(spec, source, what))
        }
        Err(e) => Err(e),
    }
}

/// Opens a uprobe at `spec` with no program, disabled: enabled, it only holds its semaphore
/// (`ref_ctr_offset`) raised, in the processes it is for, until it closes.
pub fn hold_semaphore(spec: &UprobeSpec) -> Result<Link, AttachError> {
    let what = format!("semaphore holder {}", describe(spec));
    let path =
        CString::new(spec.path.as_os_str().as_bytes()).map_err(|_| AttachError::NulInPath {
            path: spec.path.clone(),
        })?;
    let mut attr = PerfEventAttr::new(pmu_type()?, config(spec)?);
    attr.config1 = path.as_ptr() as u64;
    attr.config2 = spec.offset;
    let (pid, cpu) = spec.pid.map_or((-1, 0), |pid| (pid, -1));
    // SAFETY: config1 points into `path`, a CString that lives until the end of this function.
    match unsafe { open_perf_event(&attr, pid, cpu, &what) } {
        Ok(event) => Ok(Link {
            events: vec![event],
            what,
        }),
        Err(AttachError::Sys { source, what }) if source.errno() == Some(libc::EINVAL) => {
            Err(explain_einval(spec, source, what))
        }
        Err(e) => Err(e),
    }
}

fn describe(spec: &UprobeSpec) -> String {
    let kind = if spec.retprobe { "uretprobe" } else { "uprobe" };
    let mut what = format!("{kind} {}:{:#x}", spec.path.display(), spec.offset);
    if let Some(r) = spec.ref_ctr_offset {
        what += &format!(" (semaphore at {r:#x})");
    }
    if let Some(pid) = spec.pid {
        what += &format!(" in pid {pid}");
    }
    what
}

/// The uprobe PMU's perf type, a number the kernel assigns at boot.
fn pmu_type() -> Result<u32, AttachError> {
    let value = read_number(Path::new(PMU).join("type")).map_err(|e| match e {
        AttachError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            AttachError::NoUprobePmu { source }
        }
        other => other,
    })?;
    u32::try_from(value).map_err(|_| AttachError::BadNumber {
        path: Path::new(PMU).join("type"),
        text: value.to_string(),
    })
}

/// `config`: the retprobe flag and the ref_ctr_offset, at the bits the PMU's format files
/// name (`config:0` and `config:32-63` on every kernel so far).
fn config(spec: &UprobeSpec) -> Result<u64, AttachError> {
    let mut config = 0;
    if spec.retprobe {
        config |= 1 << format_shift("retprobe")?;
    }
    if let Some(r) = spec.ref_ctr_offset {
        config |= r << format_shift("ref_ctr_offset")?;
    }
    Ok(config)
}

fn format_shift(field: &str) -> Result<u32, AttachError> {
    let path = Path::new(PMU).join("format").join(field);
    let text = std::fs::read_to_string(&path).map_err(|source| AttachError::Io {
        path: path.clone(),
        source,
    })?;
    parse_format_shift(&text).ok_or(AttachError::BadNumber {
        path,
        text: text.trim().to_string(),
    })
}

/// `config:32-63` → 32; `config:0` → 0.
fn parse_format_shift(text: &str) -> Option<u32> {
    let bits = text.trim().strip_prefix("config:")?;
    let low = bits.split('-').next()?;
    low.parse().ok().filter(|&b: &u32| b < 64)
}

/// On EINVAL, name a tracefs probe at the same file and offset if there is one.
fn explain_einval(
    spec: &UprobeSpec,
    source: crate::backend::linux::bpf::sys::SysError,
    what: String,
) -> AttachError {
    let clash = tracefs::root()
        .ok()
        .and_then(|root| std::fs::read_to_string(root.join("uprobe_events")).ok())
        .and_then(|events| find_probe_at(&events, &spec.path, spec.offset));
    match clash {
        Some((existing, event)) => AttachError::UprobeConflict {
            path: spec.path.clone(),
            offset: spec.offset,
            existing,
            event,
            source,
        },
        None => AttachError::Sys { what, source },
    }
}

/// Finds the line of `uprobe_events` for `path` (same inode) at `offset`; returns the line and
/// its `group/event` name.
fn find_probe_at(events: &str, path: &Path, offset: u64) -> Option<(String, String)> {
    let wanted = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    events.lines().find_map(|line| {
        let probe = parse_probe_line(line)?;
        let same_file = probe.path == path
            || wanted.is_some()
                && std::fs::metadata(&probe.path)
                    .ok()
                    .map(|m| (m.dev(), m.ino()))
                    == wanted;
        (same_file && probe.offset == offset).then(|| (line.to_string(), probe.event))
    })
}

struct ProbeLine {
    event: String,
    path: PathBuf,
    offset: u64,
}

/// Parses `p:uprobes/p_python_0x283b98 /usr/bin/python3.11:0x0000000000283b98(0x683260) ...`.
fn parse_probe_line(line: &str) -> Option<ProbeLine> {
    let mut words = line.split_whitespace();
    let (_, event) = words.next()?.split_once(':')?;
    let (path, place) = words.next()?.rsplit_once(':')?;
    let offset_hex = place.split('(').next()?.strip_prefix("0x")?;
    Some(ProbeLine {
        event: event.to_string(),
        path: PathBuf::from(path),
        offset: u64::from_str_radix(offset_hex, 16).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::usdt::UsdtProbes;

    #[test]
    fn pmu_format_bits_parse() {
        assert_eq!(parse_format_shift("config:32-63\n"), Some(32));
        assert_eq!(parse_format_shift("config:0\n"), Some(0));
        assert_eq!(parse_format_shift("config1:0-63"), None);
        assert_eq!(parse_format_shift("config:99"), None);
    }

    #[test]
    fn a_stale_probe_is_found_by_path_and_offset() {
        let events = "p:uprobes/p_other_0x10 /no/such/bin:0x0000000000000010\n\
                      p:uprobes/p_python3_0x283b98 /no/such/python3.11:0x0000000000283b98(0x683260) arg1=%ax\n";
        let (line, event) =
            find_probe_at(events, Path::new("/no/such/python3.11"), 0x283b98).unwrap();
        assert_eq!(event, "uprobes/p_python3_0x283b98");
        assert!(line.contains("(0x683260)"));
        assert!(find_probe_at(events, Path::new("/no/such/python3.11"), 0x10).is_none());
        assert!(find_probe_at("garbage\n", Path::new("/x"), 0).is_none());
    }

    #[test]
    fn the_description_says_what_and_where() {
        let spec = UprobeSpec {
            path: "/usr/bin/python3.11".into(),
            offset: 0x283b98,
            ref_ctr_offset: Some(0x683260),
            pid: Some(42),
            retprobe: true,
        };
        assert_eq!(
            describe(&spec),
            "uretprobe /usr/bin/python3.11:0x283b98 (semaphore at 0x683260) in pid 42"
        );
    }

    #[test]
    fn uprobe_spec_carries_the_semaphore_offset() {
        let python = Path::new("/usr/bin/python3.11");
        let probes = UsdtProbes::open(python).unwrap();
        let entry = probes.find("python", "function__entry").unwrap()[0];
        let spec = UprobeSpec::usdt(entry, Some(42));
        assert_eq!(spec.path, python);
        assert_eq!(spec.offset, entry.file_offset);
        assert_eq!(spec.ref_ctr_offset, entry.semaphore.map(|s| s.file_offset));
        assert!(spec.ref_ctr_offset.is_some());
        assert_eq!(spec.pid, Some(42));
        assert!(!spec.retprobe);
    }
}
