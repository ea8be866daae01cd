//! Whether this process may use BPF at all, checked before anything is loaded, so that the
//! user reads "missing CAP_BPF" instead of a bare EPERM from deep inside a load.
//!
//! Tracing programs need CAP_BPF and CAP_PERFMON (kernel ≥ 5.8), or CAP_SYS_ADMIN, which
//! covers both and is the only option on older kernels.

use std::fmt;

use super::maps::{self, MapType};

/// The capabilities that matter for tracing with BPF (bit numbers from `linux/capability.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    SysAdmin = 21,
    Perfmon = 38,
    Bpf = 39,
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Capability::SysAdmin => "CAP_SYS_ADMIN",
            Capability::Perfmon => "CAP_PERFMON",
            Capability::Bpf => "CAP_BPF",
        })
    }
}

/// Why BPF tracing cannot be used here.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(
        "tracing needs {} (or CAP_SYS_ADMIN); this process lacks them: run dtk as root, \
         or grant them with `setcap cap_bpf,cap_perfmon,cap_dac_read_search+ep` (tracefs, \
         which dtk reads too, is readable by root only)",
        list(missing)
    )]
    MissingCapability { missing: Vec<Capability> },
    #[error("BPF is not available on this kernel: {reason}")]
    BpfUnavailable {
        reason: String,
        #[source]
        source: Option<super::sys::SysError>,
    },
    #[error("cannot read this process's capabilities from /proc/self/status")]
    Status(#[source] std::io::Error),
}

fn list(caps: &[Capability]) -> String {
    caps.iter()
        .map(Capability::to_string)
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Checks capabilities, then asks the kernel for a tiny map to prove bpf() works.
pub fn check() -> Result<(), AccessError> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(AccessError::Status)?;
    let missing = missing_capabilities(effective_capabilities(&status));
    if !missing.is_empty() {
        return Err(AccessError::MissingCapability { missing });
    }
    probe_bpf()
}

/// The `CapEff` mask from the text of /proc/self/status (0 if absent or garbled).
fn effective_capabilities(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0)
}

fn missing_capabilities(effective: u64) -> Vec<Capability> {
    let has = |cap: Capability| effective & (1u64 << cap as u32) != 0;
    if has(Capability::SysAdmin) {
        return Vec::new();
    }
    [Capability::Bpf, Capability::Perfmon]
        .into_iter()
        .filter(|&cap| !has(cap))
        .collect()
}

fn probe_bpf() -> Result<(), AccessError> {
    match maps::create_fd(MapType::Array, 4, 4, 1, "dtk_probe") {
        Ok(_) => Ok(()),
        Err(e) => {
            let reason = match e.errno() {
                Some(libc::ENOSYS) => "the bpf() system call is not built in (CONFIG_BPF_SYSCALL)",
                Some(libc::EPERM) => {
                    "the kernel refused bpf() despite the capabilities \
                     (kernel lockdown, a seccomp filter, or a container runtime)"
                }
                _ => "the kernel refused to create a test map",
            };
            Err(AccessError::BpfUnavailable {
                reason: reason.to_string(),
                source: Some(e),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_come_from_cap_eff() {
        let status = "Name:\tdtk\nCapInh:\t0\nCapEff:\t000001ffffffffff\n";
        assert_eq!(effective_capabilities(status), 0x1ff_ffff_ffff);
        assert_eq!(effective_capabilities("Name: x\n"), 0);
    }

    #[test]
    fn sys_admin_covers_bpf_and_perfmon() {
        assert!(missing_capabilities(1 << 21).is_empty());
        assert_eq!(
            missing_capabilities(1 << 39),
            [Capability::Perfmon],
            "CAP_BPF alone is not enough to attach"
        );
        let err = AccessError::MissingCapability {
            missing: missing_capabilities(0),
        };
        assert!(err.to_string().contains("CAP_BPF and CAP_PERFMON"));
    }
}
