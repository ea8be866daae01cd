//! The cgroup v2 hierarchy, which stands in for illumos zones on Linux: where it is mounted
//! (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid systems, as /proc/self/mountinfo
//! says), every cgroup in it with its id (a cgroup directory's inode number is the id that
//! `bpf_get_current_cgroup_id` returns), and finding one cgroup by name or by path.
//!
//! The plan resolves the zones a program names here, once, before anything is attached; the
//! executor walks the tree to name the cgroups that `zonename` prints.
//!
//! A cgroup's level is its depth below the mount point. That is its level in the kernel when
//! the mount shows the whole hierarchy, as it does for a tracer outside any cgroup namespace.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

/// The root cgroup's name, like illumos's global zone.
pub const GLOBAL: &str = "global";

/// Deepest cgroup nesting walked.
const MAX_DEPTH: usize = 64;

/// One cgroup of the v2 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    /// Its directory under the mount point.
    pub dir: PathBuf,
    /// The directory's inode number: the kernel's cgroup id.
    pub id: u64,
    /// Depth below the root cgroup (the root is level 0).
    pub level: u32,
}

/// Why a cgroup could not be found.
#[derive(Debug, Error)]
pub enum CgroupError {
    #[error(
        "no cgroup v2 hierarchy is mounted (/proc/self/mountinfo lists no cgroup2 file system)"
    )]
    NotMounted,
    #[error("no cgroup {spec:?} under {}", root.display())]
    NotFound { spec: String, root: PathBuf },
    #[error("several cgroups are named {name:?} ({}); give one as a path", paths.join(", "))]
    Ambiguous { name: String, paths: Vec<String> },
    #[error("cannot read {}", dir.display())]
    Read {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The cgroup `spec` names: `global` or `/` for the root; a path (anything with a `/`),
/// relative to the mount point as /proc/PID/cgroup shows it (`/system.slice/cron.service`)
/// or absolute under the mount point (`/sys/fs/cgroup/unified/system.slice`); or the name of
/// exactly one cgroup anywhere in the tree.
pub fn find(spec: &str) -> Result<Cgroup, CgroupError> {
    let root = mount().ok_or(CgroupError::NotMounted)?;
    if spec == GLOBAL || spec == "/" {
        return at(&root, &root, spec);
    }
    if spec.contains('/') {
        let relative = Path::new(spec)
            .strip_prefix(&root)
            .unwrap_or_else(|_| Path::new(spec.trim_start_matches('/')));
        let plain = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(CgroupError::NotFound {
                spec: spec.to_string(),
                root,
            });
        }
        return at(&root, &root.join(relative), spec);
    }
    let mut named = Vec::new();
    each_cgroup(&root, &mut |dir, _| {
        if dir.file_name().is_some_and(|n| n == spec) {
            named.push(dir.to_path_buf());
        }
    });
    named.sort();
    match named.as_slice() {
        [] => Err(CgroupError::NotFound {
            spec: spec.to_string(),
            root,
        }),
        [dir] => at(&root, dir, spec),
        _ => Err(CgroupError::Ambiguous {
            name: spec.to_string(),
            paths: named
                .iter()
                .map(|d| format!("/{}", d.strip_prefix(&root).unwrap_or(d).display()))
                .collect(),
        }),
    }
}

/// The cgroup whose directory is `dir`, under the mount point `root`.
fn at(root: &Path, dir: &Path, spec: &str) -> Result<Cgroup, CgroupError> {
    let meta = fs::metadata(dir).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => CgroupError::NotFound {
            spec: spec.to_string(),
            root: root.to_path_buf(),
        },
        _ => CgroupError::Read {
            dir: dir.to_path_buf(),
            source,
        },
    })?;
    if !meta.is_dir() {
        return Err(CgroupError::NotFound {
            spec: spec.to_string(),
            root: root.to_path_buf(),
        });
    }
    let level = dir.strip_prefix(root).map_or(0, |r| r.components().count());
    Ok(Cgroup {
        dir: dir.to_path_buf(),
        id: meta.ino(),
        level: level as u32,
    })
}

/// Every cgroup's id and name (bytes, as the directory is named), the root's name being
/// `global`.
pub fn names() -> Vec<(u64, Vec<u8>)> {
    let Some(root) = mount() else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Ok(meta) = fs::metadata(&root) {
        names.push((meta.ino(), GLOBAL.as_bytes().to_vec()));
    }
    each_cgroup(&root, &mut |dir, id| {
        if let Some(name) = dir.file_name() {
            names.push((id, name.as_bytes().to_vec()));
        }
    });
    names
}

/// Calls `visit` with the directory and id of every cgroup below `dir`.
fn each_cgroup(dir: &Path, visit: &mut impl FnMut(&Path, u64)) {
    walk(dir, 0, visit);
}

fn walk(dir: &Path, depth: usize, visit: &mut impl FnMut(&Path, u64)) {
    if depth >= MAX_DEPTH {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        if let Ok(meta) = entry.metadata() {
            visit(&path, meta.ino());
        }
        walk(&path, depth + 1, visit);
    }
}

/// Where the cgroup v2 hierarchy is mounted, from /proc/self/mountinfo.
pub fn mount() -> Option<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        left.split_whitespace()
            .nth(4)
            .map(|p| PathBuf::from(unescape(p)))
    })
}

/// mountinfo writes spaces and other special bytes in paths as `\ooo`.
fn unescape(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This process's cgroup directory under `root`, from /proc/self/cgroup (for tests).
#[cfg(test)]
pub fn own_cgroup(root: &Path) -> PathBuf {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let path = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/")
        .trim_start_matches('/');
    root.join(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_own_cgroup_by_path() {
        let Some(root) = mount() else {
            return;
        };
        let global = find(GLOBAL).unwrap();
        assert_eq!((global.dir.as_path(), global.level), (root.as_path(), 0));
        assert_eq!(find("/").unwrap(), global);
        let own = own_cgroup(&root);
        let relative = format!("/{}", own.strip_prefix(&root).unwrap().display());
        let by_relative = find(&relative).unwrap();
        assert_eq!(by_relative.id, fs::metadata(&own).unwrap().ino());
        assert_eq!(find(own.to_str().unwrap()).unwrap(), by_relative);
    }

    #[test]
    fn missing_and_escaping_paths_are_not_found() {
        if mount().is_none() {
            return;
        }
        for spec in ["no-such-cgroup-dtk", "/no/such/cgroup", "/../etc"] {
            assert!(
                matches!(find(spec), Err(CgroupError::NotFound { .. })),
                "{spec}"
            );
        }
    }

    #[test]
    fn names_include_the_root_as_global() {
        let Some(root) = mount() else {
            return;
        };
        let id = fs::metadata(&root).unwrap().ino();
        assert!(names().contains(&(id, GLOBAL.as_bytes().to_vec())));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
