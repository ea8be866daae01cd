//! Loading eBPF programs with `BPF_PROG_LOAD`, and the verifier log when the kernel says no.
//!
//! A load is first tried without a log, which is the fast path. If the kernel rejects the
//! program, it is loaded again with the verifier log on, and the log buffer grows on ENOSPC
//! until the whole log fits (up to the kernel's own cap), so the error carries the full story.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::insn::Insn;
use super::sys::{self, BpfAttr, BpfCmd, ProgLoadAttr, SysError};

/// The program types dtk loads (`enum bpf_prog_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgType {
    /// `BPF_PROG_TYPE_KPROBE`: kprobes and uprobes; the context is `struct pt_regs`.
    Kprobe,
    /// `BPF_PROG_TYPE_TRACEPOINT`: the context is the tracepoint's raw record, laid out as its
    /// tracefs format file says (kernel ≥ 4.7).
    Tracepoint,
    /// `BPF_PROG_TYPE_PERF_EVENT`: perf samples such as cpu-clock (kernel ≥ 4.9).
    PerfEvent,
}

impl ProgType {
    fn id(self) -> u32 {
        match self {
            ProgType::Kprobe => 2,
            ProgType::Tracepoint => 5,
            ProgType::PerfEvent => 7,
        }
    }
}

/// The log buffer starts at 64 KiB and grows up to 16 MiB (`u32::MAX >> 8`), the largest size
/// every kernel accepts (before 5.2 the cap was `UINT_MAX >> 8`; later kernels allow more).
const LOG_START: usize = 64 * 1024;
const LOG_MAX: usize = (u32::MAX >> 8) as usize;

/// Why a program did not load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the license {license:?} contains a NUL byte")]
    License { license: String },
    #[error("the program has {count} instructions; the kernel takes at most 1,000,000")]
    TooLong { count: usize },
    /// The kernel rejected the program; `log` is the verifier's explanation (may be empty
    /// when the failure came before the verifier ran, e.g. EPERM).
    #[error("{source}{}", verifier_tail(log))]
    Rejected {
        #[source]
        source: SysError,
        log: String,
    },
}

/// The last lines of a verifier log, which is where the verifier says what went wrong.
fn verifier_tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(8)..];
    format!(
        "\nverifier log (last {} lines):\n{}",
        tail.len(),
        tail.join("\n")
    )
}

/// A loaded program. Dropping it closes the fd; the kernel frees the program once nothing
/// (no attachment) refers to it any more.
#[derive(Debug)]
pub struct Program {
    fd: OwnedFd,
}

impl AsFd for Program {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Program {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Loads `insns` as a program of type `kind` under `license` (helpers such as
/// `bpf_probe_read_user` need a GPL-compatible one).
pub fn load(kind: ProgType, insns: &[Insn], license: &str) -> Result<Program, LoadError> {
    const MAX_INSNS: usize = 1_000_000;
    if insns.len() > MAX_INSNS {
        return Err(LoadError::TooLong { count: insns.len() });
    }
    let license_c = CString::new(license).map_err(|_| LoadError::License {
        license: license.to_string(),
    })?;
    match load_with_log(kind, insns, &license_c, &mut []) {
        Ok(fd) => Ok(Program { fd }),
        Err(first) => Err(explain(kind, insns, &license_c, first)),
    }
}

/// Loads again with the verifier log on, growing the buffer on ENOSPC, and returns the
/// rejection with the log. If the retry unexpectedly succeeds, the program is dropped and the
/// first error is reported, since the caller got no program.
fn explain(kind: ProgType, insns: &[Insn], license: &CString, first: SysError) -> LoadError {
    let mut size = LOG_START;
    loop {
        let mut log = vec![0u8; size];
        match load_with_log(kind, insns, license, &mut log) {
            Err(e) if e.errno() == Some(libc::ENOSPC) && size < LOG_MAX => {
                size = (size * 4).min(LOG_MAX);
            }
            Err(source) => {
                return LoadError::Rejected {
                    source,
                    log: log_text(&log),
                }
            }
            Ok(_) => {
                return LoadError::Rejected {
                    source: first,
                    log: String::new(),
                }
            }
        }
    }
}

fn log_text(log: &[u8]) -> String {
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    String::from_utf8_lossy(&log[..end]).into_owned()
}

fn load_with_log(
    kind: ProgType,
    insns: &[Insn],
    license: &CString,
    log: &mut [u8],
) -> Result<OwnedFd, SysError> {
    let mut attr = BpfAttr::prog_load(ProgLoadAttr {
        prog_type: kind.id(),
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: u32::from(!log.is_empty()),
        log_size: log.len() as u32,
        log_buf: if log.is_empty() {
            0
        } else {
            log.as_mut_ptr() as u64
        },
        prog_name: *b"dtk\0\0\0\0\0\0\0\0\0\0\0\0\0",
        ..ProgLoadAttr::default()
    });
    // SAFETY: `insns` and `license` are read for `insn_cnt` instructions and up to the NUL;
    // the log (if any) is written for at most `log_size` = `log.len()` bytes; all outlive the
    // call.
    unsafe { sys::bpf_fd(BpfCmd::ProgLoad, &mut attr) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_shows_the_end_of_the_log() {
        let log = (1..=20).map(|i| format!("line {i}\n")).collect::<String>();
        let text = verifier_tail(&log);
        assert!(text.contains("last 8 lines"));
        assert!(text.contains("line 20") && text.contains("line 13"));
        assert!(!text.contains("line 12\n"));
        assert_eq!(verifier_tail("\n  \n"), "");
    }

    #[test]
    fn a_license_with_nul_is_refused_before_the_kernel() {
        let err = load(ProgType::Tracepoint, &[], "GPL\0x").unwrap_err();
        assert!(matches!(err, LoadError::License { .. }));
    }
}
