//! Finding (and if needed mounting) tracefs, and reading a tracepoint's id and format file:
//! the plan reads formats to lay out records, attach reads ids to open perf events.
//!
//! tracefs normally lives at /sys/kernel/tracing (kernel ≥ 4.1); older setups only expose it
//! as /sys/kernel/debug/tracing inside debugfs. dtk tries both, and mounts tracefs (then
//! debugfs) when neither is there, which happens in minimal VMs and containers.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Why tracefs, or a tracepoint in it, could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "tracefs is not mounted and could not be mounted at /sys/kernel/tracing or under debugfs"
    )]
    NoTracefs {
        #[source]
        source: io::Error,
    },
    #[error(
        "tracefs is mounted at {} but this process cannot read it: run dtk as root, or give it \
         CAP_DAC_READ_SEARCH as well as CAP_BPF and CAP_PERFMON",
        path.display()
    )]
    TracefsUnreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("tracepoint {category}:{name} does not exist{}", hint(.category_exists))]
    NoSuchTracepoint {
        category: String,
        name: String,
        category_exists: bool,
    },
    #[error("{} line {line}: cannot parse tracepoint field {text:?}", path.display())]
    Format {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("{} does not hold a number: {text:?}", path.display())]
    BadNumber { path: PathBuf, text: String },
}

fn hint(category_exists: &bool) -> &'static str {
    if *category_exists {
        " (its category exists; see available_events in tracefs for the names)"
    } else {
        " (no such category; see available_events in tracefs)"
    }
}

const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS: &str = "/sys/kernel/debug";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// The tracefs root, mounting it the first time if needed.
pub fn root() -> Result<&'static Path, TracefsError> {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    if let Some(root) = ROOT.get() {
        return Ok(root);
    }
    let found = find_or_mount()?;
    Ok(ROOT.get_or_init(|| found))
}

fn is_tracefs(dir: &str) -> bool {
    Path::new(dir).join("events").is_dir()
}

fn find_or_mount() -> Result<PathBuf, TracefsError> {
    for dir in [TRACEFS, DEBUGFS_TRACING] {
        match std::fs::metadata(Path::new(dir).join("events")) {
            Ok(meta) if meta.is_dir() => return Ok(PathBuf::from(dir)),
            // Mounted, but readable by root only (its usual mode, 0700): mounting it again
            // would not help, and "not mounted" would mislead.
            Err(source) if source.kind() == io::ErrorKind::PermissionDenied => {
                return Err(TracefsError::TracefsUnreadable {
                    path: PathBuf::from(dir),
                    source,
                })
            }
            _ => {}
        }
    }
    mount_one().map_err(|source| TracefsError::NoTracefs { source })
}

fn mount_one() -> io::Result<PathBuf> {
    let tracefs = mount("tracefs", TRACEFS);
    if tracefs.is_ok() && is_tracefs(TRACEFS) {
        return Ok(PathBuf::from(TRACEFS));
    }
    // Kernels without a separate tracefs mount point expose it inside debugfs, which
    // automounts tracefs at debug/tracing.
    mount("debugfs", DEBUGFS)?;
    if is_tracefs(DEBUGFS_TRACING) {
        return Ok(PathBuf::from(DEBUGFS_TRACING));
    }
    Err(tracefs.err().unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "no events directory after mounting",
        )
    }))
}

fn mount(fstype: &str, target: &str) -> io::Result<()> {
    let source = CString::new("nodev")?;
    let fstype_c = CString::new(fstype)?;
    let target_c = CString::new(target)?;
    // SAFETY: all three strings are NUL-terminated and live across the call; no data
    // argument is passed.
    let ret = unsafe {
        libc::mount(
            source.as_ptr(),
            target_c.as_ptr(),
            fstype_c.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The directory of tracepoint `category:name`, after checking both are plain identifiers
/// (so that a user-supplied name cannot walk out of tracefs).
pub fn event_dir(category: &str, name: &str) -> Result<PathBuf, TracefsError> {
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let events = root()?.join("events");
    let not_found = |category_exists| TracefsError::NoSuchTracepoint {
        category: category.to_string(),
        name: name.to_string(),
        category_exists,
    };
    if !plain(category) || !events.join(category).is_dir() {
        return Err(not_found(false));
    }
    let dir = events.join(category).join(name);
    if !plain(name) || !dir.is_dir() {
        return Err(not_found(true));
    }
    Ok(dir)
}

/// The tracepoint's id, which is the perf `config` for `PERF_TYPE_TRACEPOINT`.
pub fn tracepoint_id(category: &str, name: &str) -> Result<u64, TracefsError> {
    let path = event_dir(category, name)?.join("id");
    let text = read(&path)?;
    text.trim().parse().map_err(|_| TracefsError::BadNumber {
        path,
        text: text.trim().to_string(),
    })
}

fn read(path: &Path) -> Result<String, TracefsError> {
    std::fs::read_to_string(path).map_err(|source| TracefsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// One field of a tracepoint record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// The C declaration without the name, e.g. `const char *` or `char[16]`.
    pub c_type: String,
    pub offset: usize,
    pub size: usize,
    pub signed: bool,
}

impl Field {
    /// `common_*` fields are the header every record shares.
    pub fn is_common(&self) -> bool {
        self.name.starts_with("common_")
    }
}

/// A tracepoint's record layout, from its tracefs `format` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracepointFormat {
    pub category: String,
    pub name: String,
    pub id: u64,
    pub fields: Vec<Field>,
}

impl TracepointFormat {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Reads and parses `events/<category>/<name>/format`.
pub fn read_format(category: &str, name: &str) -> Result<TracepointFormat, TracefsError> {
    let path = event_dir(category, name)?.join("format");
    let text = read(&path)?;
    let (id, fields) =
        parse_format(&text).map_err(|(line, text)| TracefsError::Format { path, line, text })?;
    Ok(TracepointFormat {
        category: category.to_string(),
        name: name.to_string(),
        id,
        fields,
    })
}

/// Parses a format file. On failure, returns the 1-based line and its text.
fn parse_format(text: &str) -> Result<(u64, Vec<Field>), (usize, String)> {
    let mut id = 0;
    let mut fields = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("ID:") {
            id = rest.trim().parse().map_err(|_| (n + 1, line.to_string()))?;
        } else if line.starts_with("field:") {
            fields.push(parse_field(line).ok_or_else(|| (n + 1, line.to_string()))?);
        }
    }
    Ok((id, fields))
}

/// Parses `field:const char * filename;\toffset:24;\tsize:8;\tsigned:0;`.
fn parse_field(line: &str) -> Option<Field> {
    let mut decl = None;
    let (mut offset, mut size, mut signed) = (None, None, None);
    for part in line.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once(':')?;
        match key {
            "field" => decl = Some(value.trim()),
            "offset" => offset = value.parse().ok(),
            "size" => size = value.parse().ok(),
            "signed" => signed = Some(value == "1"),
            _ => {}
        }
    }
    let (c_type, name) = split_declaration(decl?)?;
    Some(Field {
        name,
        c_type,
        offset: offset?,
        size: size?,
        signed: signed?,
    })
}

/// Splits `const char * filename` into (`const char *`, `filename`) and `char comm[16]` into
/// (`char[16]`, `comm`).
fn split_declaration(decl: &str) -> Option<(String, String)> {
    let (declarator, array) = match decl.find('[') {
        Some(at) if decl.ends_with(']') => (&decl[..at], &decl[at..]),
        _ => (decl, ""),
    };
    let start = declarator
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let name = &declarator[start..];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let base = declarator[..start].trim_end();
    if base.is_empty() {
        return None;
    }
    Some((format!("{base}{array}"), name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENAT: &str = "name: sys_enter_openat
ID: 782
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;
\tfield:char comm[16];\toffset:32;\tsize:16;\tsigned:0;
\tfield:__data_loc char[] name;\toffset:48;\tsize:4;\tsigned:0;

print fmt: \"dfd: 0x%08lx\", ((unsigned long)(REC->dfd))
";

    #[test]
    fn a_format_file_gives_offsets_sizes_and_signedness() {
        let (id, fields) = parse_format(OPENAT).unwrap();
        assert_eq!(id, 782);
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "common_type",
                "common_pid",
                "__syscall_nr",
                "filename",
                "comm",
                "name"
            ]
        );
        assert!(fields[1].signed);
        assert_eq!(fields[3].c_type, "const char *");
        assert_eq!((fields[3].offset, fields[3].size), (24, 8));
        assert_eq!(fields[4].c_type, "char[16]");
        assert_eq!(fields[5].c_type, "__data_loc char[]");
        assert!(fields[0].is_common() && !fields[2].is_common());
    }

    #[test]
    fn a_garbled_field_names_its_line() {
        let text = "ID: 1\n\tfield:int;\toffset:0;\tsize:4;\tsigned:1;\n";
        assert_eq!(parse_format(text).unwrap_err().0, 2);
        let text = "ID: 1\n\tfield:int x;\toffset:zero;\tsize:4;\tsigned:1;\n";
        assert_eq!(parse_format(text).unwrap_err().0, 2);
    }
}
