//! Why the kernel refuses to show a process's memory map. /proc/PID/maps passes the ptrace
//! access check (PTRACE_MODE_READ): the reader must have the target's uid, and either hold
//! every capability the target holds, or CAP_SYS_PTRACE over the target's user namespace.
//! Root fails it too for a process with capabilities root's own process lacks (a container's
//! init seen from inside, say), so "Permission denied" alone does not tell the user why.

/// Capability names, by bit number (linux/capability.h).
const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// What the status files of the target and of dtk say about the refusal.
pub fn why_denied(pid: u32) -> String {
    let status = |who: &str| std::fs::read_to_string(format!("/proc/{who}/status")).ok();
    let (Some(theirs), Some(ours)) = (status(&pid.to_string()), status("self")) else {
        return "permission denied".into();
    };
    explain(pid, &theirs, &ours)
}

fn field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
}

fn mask(status: &str, name: &str) -> u64 {
    field(status, name).map_or(0, |hex| u64::from_str_radix(hex, 16).unwrap_or(0))
}

/// The real uid, the first of the Uid: line.
fn uid(status: &str) -> Option<u32> {
    field(status, "Uid:")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn explain(pid: u32, theirs: &str, ours: &str) -> String {
    let (their_uid, our_uid) = (uid(theirs), uid(ours));
    if our_uid != Some(0) && their_uid != our_uid {
        return format!(
            "pid {pid} belongs to uid {} and dtk runs as uid {}: run dtk as root or as that user",
            their_uid.map_or("?".into(), |u| u.to_string()),
            our_uid.map_or("?".into(), |u| u.to_string()),
        );
    }
    let missing = mask(theirs, "CapPrm:") & !mask(ours, "CapEff:");
    if missing != 0 {
        let names: Vec<&str> = (0..CAPABILITIES.len())
            .filter(|bit| missing & (1 << bit) != 0)
            .map(|bit| CAPABILITIES[bit])
            .collect();
        return format!(
            "pid {pid} holds capabilities that dtk's process lacks ({}), and the kernel shows \
             the memory map of such a process only to a tracer with CAP_SYS_PTRACE over its \
             user namespace",
            names.join(", ")
        );
    }
    format!(
        "the kernel's ptrace access check refused it (pid {pid} may be in another user \
         namespace, not dumpable, or protected by Yama or a security module)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "Uid:\t0\t0\t0\t0\nCapPrm:\t000001fffeffffff\nCapEff:\t000001fffeffffff\n";
    const INIT: &str = "Uid:\t0\t0\t0\t0\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n";
    const NOBODY: &str = "Uid:\t65534\t65534\t65534\t65534\nCapPrm:\t0\nCapEff:\t0\n";

    #[test]
    fn the_reason_names_the_uid_or_the_capabilities() {
        assert_eq!(
            explain(1, INIT, NOBODY),
            "pid 1 belongs to uid 0 and dtk runs as uid 65534: run dtk as root or as that user"
        );
        assert!(explain(1, INIT, ROOT).contains("lacks (CAP_SYS_RESOURCE)"));
        assert!(explain(1, ROOT, ROOT).contains("ptrace access check"));
    }
}
