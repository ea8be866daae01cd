//! Which file of a running process holds a USDT probe, found through /proc/PID/maps.
//!
//! CPython's markers are in the executable on Debian, but in `libpython3.X.so` for shared
//! builds (Fedora, pyenv --enable-shared, most containers). The maps file lists both. Paths in
//! it are as the process sees them, which differs from dtk's view when the process runs in
//! another mount namespace (a container): the file is opened, and the uprobe attached, through
//! `/proc/PID/root/<path>`, which the kernel resolves in the process's own root.
//!
//! A file deleted or replaced since the process mapped it (a Python upgraded under a running
//! interpreter) shows as "PATH (deleted)"; PATH now names another file, or none. Its mapping is
//! still reachable as `/proc/PID/map_files/START-END`, a link to the very inode the process
//! runs (reading it needs CAP_SYS_ADMIN, which tracing needs anyway).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::usdt::{UsdtError, UsdtProbe, UsdtProbes};

/// Errors from reading a process's maps or finding a probe in them.
#[derive(Debug, thiserror::Error)]
pub enum ProcMapsError {
    #[error("no process with pid {pid}")]
    NoSuchProcess { pid: u32 },
    #[error("cannot read /proc/{pid}/maps: {why}")]
    Denied { pid: u32, why: String },
    #[error("cannot read /proc/{pid}/maps")]
    Read {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read line {line} of /proc/{pid}/maps: {text:?}")]
    Malformed { pid: u32, line: usize, text: String },
    #[error(
        "process {pid} maps no file with USDT probe {provider}:{name}; {}",
        searched_text(searched)
    )]
    NoSuchProbe {
        pid: u32,
        provider: String,
        name: String,
        /// Each file looked at, with the probes it has.
        searched: Vec<(PathBuf, Vec<String>)>,
    },
    #[error(transparent)]
    Usdt(#[from] UsdtError),
}

fn searched_text(searched: &[(PathBuf, Vec<String>)]) -> String {
    let with_probes: Vec<String> = searched
        .iter()
        .filter(|(_, names)| !names.is_empty())
        .map(|(path, names)| format!("{} has {}", path.display(), names.join(", ")))
        .collect();
    if with_probes.is_empty() {
        format!(
            "none of its {} mapped files has USDT probes",
            searched.len()
        )
    } else {
        with_probes.join("; ")
    }
}

/// One line of /proc/PID/maps that maps a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMapping {
    pub start: u64,
    pub end: u64,
    /// The file offset mapped at `start`.
    pub offset: u64,
    /// The path as the process sees it.
    pub path: String,
    /// The file was deleted or replaced after it was mapped.
    pub deleted: bool,
}

/// The file mappings of one process.
#[derive(Debug, Clone)]
pub struct ProcessMaps {
    pid: u32,
    mappings: Vec<FileMapping>,
}

impl ProcessMaps {
    /// Reads /proc/PID/maps.
    pub fn read(pid: u32) -> Result<Self, ProcMapsError> {
        let text =
            std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|source| match source
                .kind()
            {
                ErrorKind::NotFound => ProcMapsError::NoSuchProcess { pid },
                ErrorKind::PermissionDenied => ProcMapsError::Denied {
                    pid,
                    why: super::ptrace::why_denied(pid),
                },
                _ => ProcMapsError::Read { pid, source },
            })?;
        Self::parse(pid, &text)
    }

    /// Reads the text of a maps file; anonymous and special (`[heap]`) mappings are left out.
    pub fn parse(pid: u32, text: &str) -> Result<Self, ProcMapsError> {
        let mut mappings = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let malformed = || ProcMapsError::Malformed {
                pid,
                line: index + 1,
                text: line.to_string(),
            };
            if let Some(mapping) = parse_line(line).ok_or_else(malformed)? {
                mappings.push(mapping);
            }
        }
        Ok(Self { pid, mappings })
    }

    pub fn mappings(&self) -> &[FileMapping] {
        &self.mappings
    }

    /// Each mapped file once (its lowest mapping), in address order.
    pub fn files(&self) -> Vec<&FileMapping> {
        let mut files: Vec<&FileMapping> = Vec::new();
        for mapping in &self.mappings {
            let seen = files
                .iter()
                .any(|f| f.path == mapping.path && f.deleted == mapping.deleted);
            if !seen {
                files.push(mapping);
            }
        }
        files
    }

    /// The address at which file offset `file_offset` of `path` is mapped, if it is.
    pub fn address_of(&self, path: &str, file_offset: u64) -> Option<u64> {
        self.mappings.iter().find_map(|m| {
            let within = file_offset.checked_sub(m.offset)?;
            (m.path == path && within < m.end - m.start).then_some(m.start + within)
        })
    }

    /// `path` as dtk can open it: through the process's root directory.
    pub fn through_root(&self, path: &str) -> PathBuf {
        Path::new(&format!("/proc/{}/root", self.pid)).join(path.trim_start_matches('/'))
    }

    /// A path that names the file of `mapping` for dtk (to read, and to attach uprobes to):
    /// through the process's root, or through map_files when the file was deleted.
    pub fn openable_path(&self, mapping: &FileMapping) -> PathBuf {
        if mapping.deleted {
            PathBuf::from(format!(
                "/proc/{}/map_files/{:x}-{:x}",
                self.pid, mapping.start, mapping.end
            ))
        } else {
            self.through_root(&mapping.path)
        }
    }
}

/// Parses `start-end perms offset dev inode [path]`; None for a mapping that is not a file.
/// The path may contain spaces, so it is everything after the fifth field.
fn parse_line(line: &str) -> Option<Option<FileMapping>> {
    let mut rest = line;
    let mut field = || {
        rest = rest.trim_start();
        let end = rest.find(' ').unwrap_or(rest.len());
        let (head, tail) = rest.split_at(end);
        rest = tail;
        head
    };
    let (range, _perms, offset, _device, inode) = (field(), field(), field(), field(), field());
    let (start, end) = range.split_once('-')?;
    let start = u64::from_str_radix(start, 16).ok()?;
    let end = u64::from_str_radix(end, 16).ok()?;
    let offset = u64::from_str_radix(offset, 16).ok()?;
    let inode: u64 = inode.parse().ok()?;
    if end < start {
        return None;
    }
    let path = rest.trim_start();
    if inode == 0 || !path.starts_with('/') {
        return Some(None);
    }
    let (path, deleted) = match path.strip_suffix(" (deleted)") {
        Some(path) => (path, true),
        None => (path, false),
    };
    Some(Some(FileMapping {
        start,
        end,
        offset,
        path: path.to_string(),
        deleted,
    }))
}

/// A file of a process that holds a USDT probe, with the probe's sites in it.
#[derive(Debug, Clone)]
pub struct ProbeFile {
    /// The path as the process sees it (for messages and /proc/PID/maps lookups).
    pub path_in_process: String,
    /// The file was deleted or replaced after the process mapped it.
    pub deleted: bool,
    /// The path to open and to attach to (see [`ProcessMaps::openable_path`]).
    pub path: PathBuf,
    /// The probe's sites, read from `path` (so their uprobe specs use it too).
    pub sites: Vec<UsdtProbe>,
}

/// Finds the file mapped by process `pid` that has USDT probe `provider:name`: the
/// executable first, then `libpython*` (where CPython's markers are in shared builds), then
/// the other mapped files in address order.
pub fn find_probe_file(pid: u32, provider: &str, name: &str) -> Result<ProbeFile, ProcMapsError> {
    let maps = ProcessMaps::read(pid)?;
    let mut searched = Vec::new();
    for mapping in search_order(&maps) {
        let path = maps.openable_path(mapping);
        // Files that are not ELF (locale archives, caches) or vanished cannot hold probes.
        let Ok(probes) = UsdtProbes::open(&path) else {
            continue;
        };
        if let Ok(sites) = probes.find(provider, name) {
            return Ok(ProbeFile {
                path_in_process: mapping.path.clone(),
                deleted: mapping.deleted,
                sites: sites.into_iter().cloned().collect(),
                path,
            });
        }
        searched.push((PathBuf::from(&mapping.path), probes.names()));
    }
    Err(ProcMapsError::NoSuchProbe {
        pid,
        provider: provider.to_string(),
        name: name.to_string(),
        searched,
    })
}

/// The mapped files in the order worth searching: executable, libpython, the rest.
fn search_order(maps: &ProcessMaps) -> Vec<&FileMapping> {
    let files = maps.files();
    // The executable is normally the lowest file mapping: the kernel maps it, PIE or not,
    // below the mmap area where ld.so and the libraries go. A program started as
    // `ld.so PROGRAM` has ld.so first instead, and is then found among the rest.
    let (pythons, others): (Vec<&FileMapping>, Vec<&FileMapping>) = files
        .iter()
        .skip(1)
        .partition(|mapping| file_name(&mapping.path).starts_with("libpython"));
    files
        .first()
        .into_iter()
        .copied()
        .chain(pythons)
        .chain(others)
        .collect()
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
00400000-0041f000 r--p 00000000 08:01 131 /usr/bin/python3.11
0041f000-006d2000 r-xp 0001f000 08:01 131 /usr/bin/python3.11
00a84000-00a85000 rw-p 00683000 08:01 131 /usr/bin/python3.11
01d6e000-01e9f000 rw-p 00000000 00:00 0                                  [heap]
7f0000000000-7f0000100000 r--p 00000000 08:01 77 /usr/lib/locale/locale-archive
7f0000200000-7f0000300000 r-xp 00028000 08:01 88 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000400000-7f0000500000 r-xp 00103000 08:01 99 /opt/py/lib/libpython3.11.so.1.0
7f0000600000-7f0000601000 r--p 00000000 08:01 12 /tmp/my dir/lib x.so (deleted)
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
";

    #[test]
    fn parses_file_mappings_and_skips_the_rest() {
        let maps = ProcessMaps::parse(42, MAPS).unwrap();
        assert_eq!(maps.mappings().len(), 7);
        assert_eq!(
            maps.mappings()[2],
            FileMapping {
                start: 0xa8_4000,
                end: 0xa8_5000,
                offset: 0x68_3000,
                path: "/usr/bin/python3.11".into(),
                deleted: false,
            }
        );
        let last = &maps.mappings()[6];
        assert_eq!(last.path, "/tmp/my dir/lib x.so");
        assert!(last.deleted);
    }

    fn paths(mappings: Vec<&FileMapping>) -> Vec<&str> {
        mappings.into_iter().map(|m| m.path.as_str()).collect()
    }

    #[test]
    fn files_are_listed_once_and_searched_executable_then_libpython_first() {
        let maps = ProcessMaps::parse(42, MAPS).unwrap();
        assert_eq!(
            paths(maps.files()),
            vec![
                "/usr/bin/python3.11",
                "/usr/lib/locale/locale-archive",
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
                "/opt/py/lib/libpython3.11.so.1.0",
                "/tmp/my dir/lib x.so",
            ]
        );
        assert_eq!(maps.files()[0].start, 0x40_0000, "a file's lowest mapping");
        assert_eq!(
            paths(search_order(&maps)),
            vec![
                "/usr/bin/python3.11",
                "/opt/py/lib/libpython3.11.so.1.0",
                "/usr/lib/locale/locale-archive",
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
                "/tmp/my dir/lib x.so",
            ]
        );
    }

    #[test]
    fn file_offsets_map_to_addresses() {
        let maps = ProcessMaps::parse(42, MAPS).unwrap();
        // function__entry's semaphore: file offset 0x683260 → 0xa84260 (PYTHON.md).
        assert_eq!(
            maps.address_of("/usr/bin/python3.11", 0x68_3260),
            Some(0xa8_4260)
        );
        assert_eq!(
            maps.address_of("/opt/py/lib/libpython3.11.so.1.0", 0x10_3010),
            Some(0x7f00_0040_0010)
        );
        assert_eq!(maps.address_of("/usr/bin/python3.11", 0x70_0000), None);
    }

    #[test]
    fn paths_go_through_the_process_root_or_map_files_when_deleted() {
        let maps = ProcessMaps::parse(42, MAPS).unwrap();
        let files = maps.files();
        assert_eq!(
            maps.openable_path(files[0]),
            PathBuf::from("/proc/42/root/usr/bin/python3.11")
        );
        assert_eq!(
            maps.openable_path(files[4]),
            PathBuf::from("/proc/42/map_files/7f0000600000-7f0000601000")
        );
    }

    #[test]
    fn malformed_lines_are_errors() {
        for bad in [
            "zz-10 r--p 0 08:01 1 /x",
            "10-20 r--p",
            "20-10 r--p 0 08:01 1 /x",
        ] {
            let err = ProcessMaps::parse(7, bad).unwrap_err();
            assert!(
                matches!(err, ProcMapsError::Malformed { line: 1, .. }),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn missing_pid_is_named() {
        // Pids are below /proc/sys/kernel/pid_max ≤ 2^22, so this one cannot exist.
        let err = ProcessMaps::read(u32::MAX - 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("no process with pid {}", u32::MAX - 1)
        );
        let err = find_probe_file(u32::MAX - 1, "python", "line").unwrap_err();
        assert!(
            matches!(err, ProcMapsError::NoSuchProcess { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn own_process_has_no_python_probes() {
        let err = find_probe_file(std::process::id(), "python", "function__entry").unwrap_err();
        let ProcMapsError::NoSuchProbe { searched, .. } = &err else {
            panic!("expected NoSuchProbe, got {err:?}");
        };
        let exe = std::env::current_exe().unwrap();
        assert_eq!(searched[0].0, exe, "the executable is searched first");
        assert!(err.to_string().contains("python:function__entry"), "{err}");
    }
}
