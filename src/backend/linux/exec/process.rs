//! What D reads about processes besides the firing's header: the state the kernel read from
//! the current task at the probe (`Firing::process`: ppid, `curpsinfo`, `progenyof()`,
//! `curthread`), dtk's own for the probes that fire in dtk (BEGIN, END, ERROR, tick-N), and
//! `zonename`, which on Linux is the name of the thread's cgroup v2 directory.
//!
//! Nothing here reads /proc: the process may be gone by the time its record is processed.
//! Zone names are cached per cgroup id, the cgroup tree being walked again only when an id is
//! not yet known (a cgroup created after the last walk).

use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;

use crate::backend::linux::firing::ProcessState;
use crate::inspect::cgroup;

/// How much of the arguments illumos keeps in `pr_psargs` (PRARGSZ) and of the name in
/// `pr_fname` (PRFNSZ), less their NUL.
pub const PSARGS_LEN: usize = 79;
pub const FNAME_LEN: usize = 15;

/// Zone names of cgroups seen so far.
#[derive(Debug, Default)]
pub struct ProcessTable {
    zones: CgroupNames,
}

impl ProcessTable {
    /// `zonename`: the name of the cgroup whose directory has inode `cgroup_id`.
    pub fn zone_name(&mut self, cgroup_id: u64) -> Vec<u8> {
        self.zones.name(cgroup_id)
    }
}

/// `progenyof(ancestor)` for the process `pid` whose state was read at the probe: whether it
/// is `ancestor` or below it.
pub fn progeny_of(pid: u32, state: &ProcessState, ancestor: u32) -> bool {
    pid == ancestor || state.ancestors.contains(&ancestor)
}

impl ProcessState {
    /// dtk's own state, for the probes that fire in dtk. Its sizes and thread count are not
    /// known without /proc and read as 0; its ancestors stop at its parent.
    pub fn own() -> ProcessState {
        // SAFETY: these calls take no pointers and cannot fail for the calling process.
        let (ppid, pgid, sid, euid, egid) = unsafe {
            (
                libc::getppid(),
                libc::getpgid(0),
                libc::getsid(0),
                libc::geteuid(),
                libc::getegid(),
            )
        };
        let args: Vec<Vec<u8>> = std::env::args_os().map(|a| a.as_bytes().to_vec()).collect();
        ProcessState {
            ppid: ppid as u32,
            pgid: pgid as u32,
            sid: sid as u32,
            euid,
            egid,
            argc: args.len() as u32,
            ancestors: vec![ppid as u32],
            psargs: cut(&args.join(&b' '), PSARGS_LEN).as_slice().into(),
            ..ProcessState::default()
        }
    }
}

/// At most `max` bytes of `s`.
pub fn cut(s: &[u8], max: usize) -> Vec<u8> {
    s[..s.len().min(max)].to_vec()
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
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn own_state_is_the_callers() {
        let own = ProcessState::own();
        // SAFETY: getppid and geteuid have no preconditions.
        let (ppid, euid) = unsafe { (libc::getppid(), libc::geteuid()) };
        assert_eq!((own.ppid, own.euid), (ppid as u32, euid));
        assert!(own.argc >= 1 && own.psargs.len() <= PSARGS_LEN);
        let pid = std::process::id();
        assert!(progeny_of(pid, &own, pid));
        assert!(progeny_of(pid, &own, ppid as u32));
        assert!(!progeny_of(pid, &own, pid + 1));
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
