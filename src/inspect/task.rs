//! Where the process state D reads lives in the running kernel's `task_struct` and the
//! structures it points to, taken from BTF once per run (see `btf`).
//!
//! Every offset is relative to the structure named in its comment. What each chain reads:
//!
//! - ppid: `task->real_parent->tgid` (what getppid(2) returns).
//! - uid/gid are the header's (`bpf_get_current_uid_gid`); euid/egid:
//!   `task->cred->euid.val`, `task->cred->egid.val`.
//! - pgid/sid: `task->signal->pids[PIDTYPE_PGID]->numbers[0].nr` (and `PIDTYPE_SID`), the
//!   ids in the initial pid namespace (kernel ≥ 4.19, where pgrp and session moved into
//!   `signal_struct`).
//! - nlwp: `task->signal->nr_threads`.
//! - psargs/argc/size/rssize: `task->mm->{arg_start, arg_end, start_stack, total_vm,
//!   rss_stat}`; argc is the first word of the initial stack, which `start_stack` points at.
//! - the working directory: `task->fs->pwd.{dentry, mnt}`, then `dentry->{d_parent, d_name}`
//!   and the `mount` around the `vfsmount` for crossing mount points.
//! - the TLS base (x86-64): `task->thread.fsbase`.

use std::sync::OnceLock;

use super::btf::{Btf, BtfError};

/// Offsets of the fields dtk reads, in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskLayout {
    /// task_struct.
    pub real_parent: u32,
    pub tgid: u32,
    pub cred: u32,
    pub signal: u32,
    pub mm: u32,
    pub fs: u32,
    /// `thread.fsbase`: present on x86-64 only.
    pub fsbase: Option<u32>,
    /// cred.
    pub euid: u32,
    pub egid: u32,
    /// signal_struct: `pids[PIDTYPE_PGID]` and `pids[PIDTYPE_SID]`, and `nr_threads`.
    pub pgid_pid: u32,
    pub sid_pid: u32,
    pub nr_threads: u32,
    /// struct pid: `numbers[0].nr`.
    pub pid_nr: u32,
    /// mm_struct.
    pub arg_start: u32,
    pub arg_end: u32,
    pub start_stack: u32,
    pub total_vm: u32,
    /// The page counts whose sum is the resident size: file, anonymous and shared memory
    /// pages (`rss_stat[MM_*PAGES]`, each a signed 64-bit count).
    pub rss: [u32; 3],
    /// fs_struct: `pwd.dentry`, `pwd.mnt`.
    pub pwd_dentry: u32,
    pub pwd_mnt: u32,
    /// dentry: `d_parent`, `d_name.name`.
    pub d_parent: u32,
    pub d_name: u32,
    /// mount: where its `vfsmount` is (`mnt`), `mnt_parent`, `mnt_mountpoint`; vfsmount:
    /// `mnt_root`.
    pub mount_mnt: u32,
    pub mnt_parent: u32,
    pub mnt_mountpoint: u32,
    pub mnt_root: u32,
}

/// The running kernel's BTF, read once per process, the first caller paying for it.
fn kernel_btf() -> Result<&'static Btf, String> {
    static BTF: OnceLock<Result<Btf, String>> = OnceLock::new();
    BTF.get_or_init(|| Btf::kernel("reading process state at the probe").map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// How to read `curthread->a->b.c`: from the task's address, read a pointer at each of
/// `offsets` but the last (`v = *(u64 *)(v + off)`), then `size` bytes at the last.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemberRead {
    pub offsets: Vec<u32>,
    pub size: u8,
    pub signed: bool,
}

/// Resolves a path of members below `curthread` as D writes it, each step `->name` or
/// `.name` (`->real_parent->tgid`, `->thread.fsbase`), against the running kernel's
/// task_struct. The member read must be a scalar: an integer, an enum or a pointer.
pub fn member_read(path: &str) -> Result<MemberRead, String> {
    let btf = kernel_btf()?;
    let fail = |e: BtfError| format!("curthread{path}: {e}");
    let mut ty = btf.struct_named("task_struct").map_err(fail)?;
    let mut offsets = Vec::new();
    let mut at = 0u32;
    for (i, (arrow, name)) in steps(path).into_iter().enumerate() {
        if arrow && i > 0 {
            if !btf.is_pointer(ty) {
                return Err(format!(
                    "curthread{path}: `->{name}` follows a member that is not a pointer"
                ));
            }
            offsets.push(at);
            at = 0;
            ty = btf.pointee(ty).map_err(fail)?;
        } else if !arrow && btf.is_pointer(ty) {
            return Err(format!(
                "curthread{path}: `.{name}` follows a pointer; use `->{name}`"
            ));
        }
        let member = btf.member(ty, name).map_err(fail)?;
        at += member.offset;
        ty = member.ty;
    }
    offsets.push(at);
    match btf.scalar(ty).map_err(fail)? {
        Some((size, signed)) if size <= 8 => Ok(MemberRead {
            offsets,
            size: size as u8,
            signed,
        }),
        _ => Err(format!(
            "curthread{path} is not an integer or a pointer; read one of its members"
        )),
    }
}

/// `->a.b->c` as (arrow, name) steps.
fn steps(path: &str) -> Vec<(bool, &str)> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        let (arrow, tail) = match rest.strip_prefix("->") {
            Some(tail) => (true, tail),
            None => (false, rest.strip_prefix('.').unwrap_or(rest)),
        };
        let end = tail.find(['-', '.']).unwrap_or(tail.len());
        out.push((arrow, &tail[..end]));
        rest = &tail[end..];
    }
    out
}

impl TaskLayout {
    /// The running kernel's layout, read once per process (the first caller pays for parsing
    /// BTF). `what` names the feature that asked, for the error.
    pub fn kernel(what: &str) -> Result<&'static TaskLayout, String> {
        static LAYOUT: OnceLock<Result<TaskLayout, String>> = OnceLock::new();
        LAYOUT
            .get_or_init(|| {
                kernel_btf().and_then(|btf| TaskLayout::from_btf(btf).map_err(|e| e.to_string()))
            })
            .as_ref()
            .map_err(|e| format!("{what}: {e}"))
    }

    pub fn from_btf(btf: &Btf) -> Result<TaskLayout, BtfError> {
        let task = |path: &str| btf.path("task_struct", path).map(|m| m.offset);
        let of = |ty: &str, path: &str| btf.path(ty, path).map(|m| m.offset);
        let pids = btf.path("signal_struct", "pids")?;
        let pid_slot = |name: &str| -> Result<u32, BtfError> {
            let index = u32::try_from(btf.enumerator(name)?)
                .map_err(|_| BtfError::Malformed(format!("{name} is negative")))?;
            Ok(pids.offset + 8 * index)
        };
        let numbers = btf.path("pid", "numbers")?;
        let (upid, _) = btf.array(numbers.ty)?;
        let pid_nr = numbers.offset + btf.member(upid, "nr")?.offset;
        let mount = btf.struct_named("mount")?;
        Ok(TaskLayout {
            real_parent: task("real_parent")?,
            tgid: task("tgid")?,
            cred: task("cred")?,
            signal: task("signal")?,
            mm: task("mm")?,
            fs: task("fs")?,
            fsbase: task("thread.fsbase").ok(),
            euid: of("cred", "euid")?,
            egid: of("cred", "egid")?,
            pgid_pid: pid_slot("PIDTYPE_PGID")?,
            sid_pid: pid_slot("PIDTYPE_SID")?,
            nr_threads: of("signal_struct", "nr_threads")?,
            pid_nr,
            arg_start: of("mm_struct", "arg_start")?,
            arg_end: of("mm_struct", "arg_end")?,
            start_stack: of("mm_struct", "start_stack")?,
            total_vm: of("mm_struct", "total_vm")?,
            rss: rss_counters(btf)?,
            pwd_dentry: of("fs_struct", "pwd.dentry")?,
            pwd_mnt: of("fs_struct", "pwd.mnt")?,
            d_parent: of("dentry", "d_parent")?,
            d_name: of("dentry", "d_name.name")?,
            mount_mnt: btf.member(mount, "mnt")?.offset,
            mnt_parent: btf.member(mount, "mnt_parent")?.offset,
            mnt_mountpoint: btf.member(mount, "mnt_mountpoint")?.offset,
            mnt_root: of("vfsmount", "mnt_root")?,
        })
    }
}

/// Offsets in mm_struct of the file, anonymous and shmem page counts. Since 6.2 `rss_stat`
/// is an array of `percpu_counter` whose `count` is the total; before, a `mm_rss_stat` whose
/// `count` is an array of `atomic_long_t`.
fn rss_counters(btf: &Btf) -> Result<[u32; 3], BtfError> {
    let stat = btf.path("mm_struct", "rss_stat")?;
    let index = |name: &str| -> Result<u32, BtfError> {
        u32::try_from(btf.enumerator(name)?)
            .map_err(|_| BtfError::Malformed(format!("{name} is negative")))
    };
    let mut at = [0; 3];
    for (slot, name) in at
        .iter_mut()
        .zip(["MM_FILEPAGES", "MM_ANONPAGES", "MM_SHMEMPAGES"])
    {
        let i = index(name)?;
        *slot = if btf.is_array(stat.ty) {
            let (counter, _) = btf.array(stat.ty)?;
            stat.offset + i * btf.size_of(counter)? + btf.member(counter, "count")?.offset
        } else {
            let count = btf.member(stat.ty, "count")?;
            let (elem, _) = btf.array(count.ty)?;
            stat.offset + count.offset + i * btf.size_of(elem)?
        };
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Parsing the running kernel's BTF and finding every field: what startup pays once when
    /// a script reads process state. Not a timing assert: the figure is printed for the
    /// benchmarks, the bound only catches a reader gone quadratic.
    #[test]
    fn running_kernel_has_every_field() {
        if !std::path::Path::new(super::super::btf::VMLINUX).exists() {
            assert!(
                std::env::var_os("DTK_REQUIRE_KERNEL").is_none(),
                "no kernel BTF"
            );
            return;
        }
        let start = Instant::now();
        let btf = Btf::kernel("test").unwrap();
        let parsed = start.elapsed();
        let layout = TaskLayout::from_btf(&btf).unwrap();
        eprintln!(
            "BTF: {} types parsed in {parsed:?}, task layout in {:?}",
            btf.len(),
            start.elapsed()
        );
        assert!(start.elapsed().as_secs() < 5);
        // Facts every kernel's layout keeps: distinct fields inside their structs.
        let task_size = btf
            .size_of(btf.struct_named("task_struct").unwrap())
            .unwrap();
        for field in [layout.real_parent, layout.tgid, layout.cred, layout.mm] {
            assert!(field < task_size);
        }
        assert_ne!(layout.real_parent, layout.tgid);
        assert_eq!(layout.egid, layout.euid + 4, "euid, egid adjacent");
        assert_eq!(
            layout.sid_pid,
            layout.pgid_pid + 8,
            "PIDTYPE_SID follows PGID"
        );
        assert!(layout.rss[0] != layout.rss[1] && layout.rss[1] != layout.rss[2]);
        if cfg!(target_arch = "x86_64") {
            assert!(layout.fsbase.is_some());
        }
        let parent_tgid = member_read("->real_parent->tgid").unwrap();
        assert_eq!(parent_tgid.offsets, [layout.real_parent, layout.tgid]);
        assert_eq!((parent_tgid.size, parent_tgid.signed), (4, true));
        if let Some(fsbase) = layout.fsbase {
            assert_eq!(member_read("->thread.fsbase").unwrap().offsets, [fsbase]);
        }
        assert!(member_read("->real_parent").unwrap().size == 8);
        assert!(member_read("->nonesuch").unwrap_err().contains("nonesuch"));
        assert!(member_read("->thread")
            .unwrap_err()
            .contains("not an integer"));
        assert!(member_read("->tgid->x")
            .unwrap_err()
            .contains("not a pointer"));
    }

    #[test]
    fn member_paths_split_into_steps() {
        assert_eq!(
            steps("->real_parent->tgid"),
            [(true, "real_parent"), (true, "tgid")]
        );
        assert_eq!(
            steps("->thread.fsbase"),
            [(true, "thread"), (false, "fsbase")]
        );
    }
}
