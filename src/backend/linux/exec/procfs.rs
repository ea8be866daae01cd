//! What D reads about processes that the firing does not carry: `ppid`, `curpsinfo` and
//! `progenyof()` from /proc, and `zonename`, which on Linux is the name of the thread's
//! cgroup v2 directory.
//!
//! Reads are cached for the run: per (pid, execname) for psinfo, so that a process that
//! execs is read again; per cgroup id for zone names, the cgroup tree being walked again
//! only when an id is not yet known (a cgroup created after the last walk). A process that
//! has already exited reads as zeros and empty strings.

use std::collections::{HashMap, HashSet};
use std::fs;

use crate::inspect::cgroup;

/// How much of the arguments illumos keeps in `pr_psargs` (PRARGSZ) and of the name in
/// `pr_fname` (PRFNSZ), less their NUL.
const PSARGS_LEN: usize = 79;
const FNAME_LEN: usize = 15;
/// Longest parent chain followed.
const MAX_ANCESTORS: usize = 4096;

/// The members of `curpsinfo` this engine fills from /proc.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Psinfo {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    pub sid: u32,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub nlwp: u32,
    pub argc: u32,
    /// Bytes, as the process named itself and as its arguments are.
    pub fname: Vec<u8>,
    pub psargs: Vec<u8>,
    /// Virtual and resident size in kilobytes, as illumos reports them.
    pub size_kb: u64,
    pub rssize_kb: u64,
}

/// Caches of /proc and cgroup lookups.
#[derive(Debug, Default)]
pub struct ProcessTable {
    psinfo: HashMap<(u32, Vec<u8>), Psinfo>,
    zones: CgroupNames,
}

impl ProcessTable {
    /// `curpsinfo` of `pid`, whose thread is named `comm` at the probe.
    pub fn psinfo(&mut self, pid: u32, comm: &[u8]) -> &Psinfo {
        self.psinfo
            .entry((pid, comm.to_vec()))
            .or_insert_with(|| read_psinfo(pid, comm))
    }

    /// `progenyof(ancestor)`: whether `pid` is `ancestor` or one of its descendants.
    pub fn progeny_of(&mut self, pid: u32, comm: &[u8], ancestor: u32) -> bool {
        let mut current = pid;
        for _ in 0..MAX_ANCESTORS {
            if current == ancestor {
                return true;
            }
            if current <= 1 {
                return false;
            }
            current = if current == pid {
                self.psinfo(pid, comm).ppid
            } else {
                read_stat(current).map_or(0, |s| s.ppid)
            };
        }
        false
    }

    /// `zonename`: the name of the cgroup whose directory has inode `cgroup_id`.
    pub fn zone_name(&mut self, cgroup_id: u64) -> Vec<u8> {
        self.zones.name(cgroup_id)
    }
}

/// Fields of /proc/PID/stat.
struct Stat {
    ppid: u32,
    pgid: u32,
    sid: u32,
    nlwp: u32,
    vsize: u64,
    rss_pages: u64,
}

fn read_stat(pid: u32) -> Option<Stat> {
    // The command name need not be UTF-8; the numbers after it are.
    let text = fs::read(format!("/proc/{pid}/stat")).ok()?;
    let text = String::from_utf8_lossy(&text);
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some(Stat {
        ppid: field(1)? as u32,
        pgid: field(2)? as u32,
        sid: field(3)? as u32,
        nlwp: field(17).unwrap_or(0) as u32,
        vsize: field(20).unwrap_or(0),
        rss_pages: field(21).unwrap_or(0),
    })
}

/// Real and effective ids from a `Uid:` or `Gid:` line of /proc/PID/status.
fn ids(status: &str, label: &str) -> (u32, u32) {
    let line = status.lines().find(|l| l.starts_with(label));
    let mut numbers = line
        .into_iter()
        .flat_map(|l| l[label.len()..].split_whitespace())
        .map(|n| n.parse().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

fn cut(s: &[u8], max: usize) -> Vec<u8> {
    s[..s.len().min(max)].to_vec()
}

fn read_psinfo(pid: u32, comm: &[u8]) -> Psinfo {
    let mut info = Psinfo {
        pid,
        fname: cut(comm, FNAME_LEN),
        ..Psinfo::default()
    };
    if let Some(stat) = read_stat(pid) {
        info.ppid = stat.ppid;
        info.pgid = stat.pgid;
        info.sid = stat.sid;
        info.nlwp = stat.nlwp;
        info.size_kb = stat.vsize / 1024;
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64;
        info.rssize_kb = stat.rss_pages * page / 1024;
    }
    if let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) {
        (info.uid, info.euid) = ids(&status, "Uid:");
        (info.gid, info.egid) = ids(&status, "Gid:");
    }
    if let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) {
        let args: Vec<&[u8]> = cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .collect();
        info.argc = args.len() as u32;
        info.psargs = cut(&args.join(&b' '), PSARGS_LEN);
    }
    // Kernel threads have no command line; illumos shows their name.
    if info.psargs.is_empty() {
        info.psargs = info.fname.clone();
    }
    info
}

/// Cgroup ids (directory inodes) to names.
#[derive(Debug, Default)]
struct CgroupNames {
    names: HashMap<u64, Vec<u8>>,
    /// Ids a walk did not find, so that each costs one walk only.
    missing: HashSet<u64>,
}

impl CgroupNames {
    fn name(&mut self, id: u64) -> Vec<u8> {
        if id == 0 {
            return cgroup::GLOBAL.as_bytes().to_vec();
        }
        if !self.names.contains_key(&id) && !self.missing.contains(&id) {
            self.names.extend(cgroup::names());
            if !self.names.contains_key(&id) {
                self.missing.insert(id);
            }
        }
        self.names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| cgroup::GLOBAL.as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn own_process_reads_like_ps() {
        let pid = std::process::id();
        let mut table = ProcessTable::default();
        let info = table.psinfo(pid, b"tests").clone();
        // SAFETY: getppid and getuid have no preconditions.
        let (ppid, uid) = unsafe { (libc::getppid(), libc::getuid()) };
        assert_eq!(info.ppid, ppid as u32);
        assert_eq!(info.uid, uid);
        assert!(info.argc >= 1);
        assert!(info.psargs.len() <= PSARGS_LEN);
        assert!(table.progeny_of(pid, b"tests", ppid as u32));
        assert!(table.progeny_of(pid, b"tests", pid));
        assert!(!table.progeny_of(ppid as u32, b"x", pid));
    }

    #[test]
    fn exited_process_reads_as_zero() {
        let mut table = ProcessTable::default();
        let info = table.psinfo(4_194_304 + 9, b"gone");
        assert_eq!(info.ppid, 0);
        assert_eq!(info.psargs, b"gone");
    }

    #[test]
    fn zone_of_own_cgroup() {
        let Some(root) = cgroup::mount() else {
            return;
        };
        let dir = cgroup::own_cgroup(&root);
        let expected = if dir == root {
            cgroup::GLOBAL.as_bytes()
        } else {
            dir.file_name().unwrap().as_bytes()
        };
        let id = fs::metadata(&dir).unwrap().ino();
        let mut table = ProcessTable::default();
        assert_eq!(table.zone_name(id), expected);
        assert_eq!(table.zone_name(0), cgroup::GLOBAL.as_bytes());
    }
}
