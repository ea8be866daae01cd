//! The process tree a following run traces (`Scope::follow`): the target and its descendants
//! when tracing starts, and where the two sched tracepoints that keep the set in the kernel
//! (`bpf::follow`) hold the fields its programs read.
//!
//! The descendants of a running target are read from /proc once, here, before anything is
//! attached; from then on the kernel adds each child as it is forked.
//!
//! Uprobes put on the target (`pid$target`, `python$target`) are put on their file for every
//! process instead ([`Plan::follow_tree`]): a child runs the same code, through the same file,
//! and the kernel keeps only the tree's firings. A USDT semaphore is then raised in every
//! process that maps the file, so the other processes' markers fire too (a uprobe trap per
//! call while tracing lasts), into a program that drops them.

use std::collections::BTreeSet;

use super::{Plan, PlanError, Site};
use crate::inspect::tracefs;

impl Plan {
    /// Makes the run follow the tree of process `root`: every kernel program fires only in
    /// the tree, and uprobes put on `root` are put on their files for every process.
    pub fn follow_tree(&mut self, root: u32) -> Result<(), PlanError> {
        self.follow = Some(Follow::of(root)?);
        for probe in &mut self.probes {
            if let Site::Uprobe { sites } = &mut probe.site {
                for site in sites {
                    if site.spec.pid == i32::try_from(root).ok() {
                        site.spec.pid = None;
                    }
                }
            }
        }
        Ok(())
    }
}

/// What the code generator needs to follow a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Follow {
    /// The tgids followed from the start: the target, then its descendants.
    pub seed: Vec<u32>,
    /// Offset of `child_pid` in sched_process_fork's record.
    pub child_pid: u16,
    /// Offset of `group_dead` in sched_process_exit's record, on kernels that have it.
    pub group_dead: Option<u16>,
}

impl Follow {
    /// Following the tree of process `root`.
    fn of(root: u32) -> Result<Follow, PlanError> {
        let fork =
            tracefs::read_format("sched", "sched_process_fork").map_err(PlanError::tracefs)?;
        let exit =
            tracefs::read_format("sched", "sched_process_exit").map_err(PlanError::tracefs)?;
        let child_pid = fork
            .field("child_pid")
            .ok_or(PlanError::TracepointField {
                tracepoint: "sched:sched_process_fork",
                field: "child_pid",
            })?
            .offset as u16;
        Ok(Follow {
            seed: tree_of(root),
            child_pid,
            group_dead: exit.field("group_dead").map(|f| f.offset as u16),
        })
    }
}

/// `root` and every process below it now, from each thread's `children` in /proc (Linux ≥
/// 3.5 with CONFIG_PROC_CHILDREN; without it, `root` alone). A process that exits while it is
/// read is passed over.
fn tree_of(root: u32) -> Vec<u32> {
    let mut tree = vec![root];
    let mut seen = BTreeSet::from([root]);
    let mut next = 0;
    while let Some(&pid) = tree.get(next) {
        next += 1;
        for child in children(pid) {
            if seen.insert(child) {
                tree.push(child);
            }
        }
    }
    tree
}

/// The children of every thread of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    threads
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_tree_is_read_from_its_root_down() {
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .spawn()
            .unwrap();
        let root = sh.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let tree = loop {
            let tree = tree_of(root);
            if tree.len() == 3 || std::time::Instant::now() > deadline {
                break tree;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let sleeps = children(root);
        for pid in &sleeps {
            // SAFETY: kill sends a signal to the sleeps this test started.
            unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
        }
        sh.wait().unwrap();
        assert_eq!(tree[0], root);
        assert_eq!(sleeps.len(), 2, "{tree:?}");
        assert_eq!(&tree[1..], &sleeps[..]);
    }
}
