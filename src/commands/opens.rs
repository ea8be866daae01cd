//! `dtk opens`: files opened, with the fd or the error, scoped by process, name or zone.
//!
//! The kernel side (opens.d) filters by pid, execname, zone and failure; the regular
//! expressions (-N, --path) and the presentation are applied here.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use anyhow::Result;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use serde::Serialize;

use super::contract::{record, Line, Mismatch, ScriptContract};
use super::{exit_status, trace, Notices, Tracer};
use crate::backend::EventSink;
use crate::cli::CountBy;
use crate::config::{Config, Format, OpensConfig, OutputConfig};
use crate::event::{AggSnapshot, ByteString, DropKind, Event, Printf, ProbeDesc};
use crate::local_time::local_time;
use crate::output::{self, LineWriter};
use crate::script::{bundled, Param, Script, TargetMacro, Tree};

/// The script `dtk opens` runs for this configuration, covering the target's tree as `tree`
/// says.
pub fn script(c: &OpensConfig, tree: Tree) -> Result<Script> {
    let pid = Param::pid_filter(&c.target, tree);
    let text = Param::text;
    Ok(bundled("opens").expect("opens.d is bundled").instantiate(
        &[
            ("FILTER_PID", pid),
            ("FOLLOW", Param::follow(tree)),
            ("FILTER_NAME", text(&c.name)),
            ("FILTER_ZONE", text(&c.zone)),
            ("FAILED_ONLY", Param::Int(c.failed.into())),
            ("WANT_CWD", Param::Int(c.full.into())),
        ],
        TargetMacro::Keep,
    )?)
}

pub fn run(config: &Config, c: &OpensConfig) -> Result<u8> {
    let mut presenter =
        OpensPresenter::new(output::stdout(config.output.line_flush), config.output, c);
    let tracer = Tracer::open(config, &c.target, c.follow)?;
    let script = script(c, tracer.tree)?;
    let scope = tracer.scope(None);
    let end = trace(tracer, script, scope, &c.target, c.duration, &mut presenter)?;
    presenter.out.flush()?;
    Ok(exit_status(config, &c.target, &end))
}

/// One open, as opens.d reports it. The names are bytes as the process gave them.
#[derive(Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename = "open")]
pub struct OpenEvent {
    /// Nanoseconds on the monotonic clock (D's `timestamp`).
    pub ts_ns: u64,
    /// Nanoseconds since the epoch (D's `walltimestamp`).
    pub walltime_ns: u64,
    pub zone: ByteString,
    pub pid: u32,
    pub tid: u32,
    pub comm: ByteString,
    pub fd: Option<i64>,
    pub errno: Option<String>,
    pub flags: Vec<String>,
    pub path: ByteString,
    /// The directory a relative path is relative to: an fd, or AT_FDCWD.
    #[serde(skip)]
    pub dirfd: i64,
    /// The working directory when the call returned (empty when it could not be read).
    #[serde(skip)]
    pub cwd: ByteString,
    /// With `--full`: whether `path` is absolute (as given, or made so from the process's
    /// working directory). Absent without `--full`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<bool>,
}

record! {
    /// opens.d's line per open.
    pub struct OpenLine {
        timestamp: i64,
        walltimestamp: i64,
        zonename: ByteString,
        pid: i64,
        tid: i64,
        execname: ByteString,
        /// The fd, or -1 with errno set.
        result: i64,
        errno: i64,
        flags: i64,
        dirfd: i64,
        /// The working directory at the return, which a relative path with AT_FDCWD is
        /// relative to.
        cwd: ByteString,
        path: ByteString,
    }
}

record! {
    /// opens.d's BEGIN line, `tracing since TIMESTAMP`.
    pub struct SinceLine {
        timestamp: i64,
    }
}

/// What this presenter reads of opens.d.
pub(crate) const CONTRACT: ScriptContract = ScriptContract {
    scripts: &["opens"],
    lines: &[Line::of::<OpenLine>(""), Line::of::<SinceLine>(SINCE)],
    keys: &[],
};

/// The start of opens.d's BEGIN line.
const SINCE: &str = "tracing since ";

/// One printf line of opens.d.
#[derive(Debug)]
enum OpensLine {
    Open(OpenEvent),
    Since(u64),
}

impl OpensLine {
    fn decode(p: &Printf) -> Result<OpensLine, Mismatch> {
        if CONTRACT.prefix_of(&p.text)? == SINCE {
            let l: SinceLine = CONTRACT.decode(&p.args)?;
            return Ok(OpensLine::Since(l.timestamp as u64));
        }
        OpenEvent::from_printf(p).map(OpensLine::Open)
    }
}

impl OpenEvent {
    /// Reads opens.d's line per open ([`OpenLine`]).
    pub fn from_printf(p: &Printf) -> Result<OpenEvent, Mismatch> {
        let l: OpenLine = CONTRACT.decode(&p.args)?;
        Ok(OpenEvent {
            ts_ns: l.timestamp as u64,
            walltime_ns: l.walltimestamp as u64,
            zone: l.zonename,
            pid: CONTRACT.id("pid", l.pid)?,
            tid: CONTRACT.id("tid", l.tid)?,
            comm: l.execname,
            fd: (l.result >= 0).then_some(l.result),
            errno: (l.result < 0).then(|| errno_name(l.errno)),
            flags: open_flag_names(l.flags),
            dirfd: l.dirfd,
            cwd: l.cwd,
            path: l.path,
            resolved: None,
        })
    }
}

/// openat's dirfd for the working directory.
const AT_FDCWD: i64 = libc::AT_FDCWD as i64;

/// What the notices call lost opens.
const OPENS_LOST: &str = "opens lost (ring buffer full)";

/// What the notices call opens that a stop cut off: recorded, but still unread when the time
/// a stop may take ran out.
const OPENS_UNSHOWN: &str = "opens recorded before the stop not shown (dtk was behind)";

/// ENOENT for 2; the number itself when it has no name here.
pub fn errno_name(errno: i64) -> String {
    match i32::try_from(errno) {
        Ok(e) if e > 0 && Errno::from_raw(e) != Errno::UnknownErrno => {
            format!("{:?}", Errno::from_raw(e))
        }
        _ => format!("E{errno}"),
    }
}

/// O_RDONLY|O_CLOEXEC… as names: the access mode first, then every other flag that is set.
pub fn open_flag_names(flags: i64) -> Vec<String> {
    let flags = flags as libc::c_int;
    let mode = match flags & libc::O_ACCMODE {
        libc::O_RDONLY => "O_RDONLY",
        libc::O_WRONLY => "O_WRONLY",
        _ => "O_RDWR",
    };
    let rest = OFlag::from_bits_truncate(flags & !libc::O_ACCMODE);
    std::iter::once(mode.to_string())
        .chain(rest.iter_names().map(|(name, _)| name.to_string()))
        .collect()
}

struct OpensPresenter<'a, W: io::Write> {
    out: LineWriter<W>,
    output: OutputConfig,
    c: &'a OpensConfig,
    /// When tracing started (opens.d's BEGIN), on the monotonic clock; else the first open.
    start_ns: Option<u64>,
    header_done: bool,
    counts: HashMap<ByteString, u64>,
    notices: Notices,
    /// Whether the ring buffer lost records: then returns without a recorded entry
    /// (@unmatched) are lost opens too.
    records_lost: bool,
}

impl<'a, W: io::Write> OpensPresenter<'a, W> {
    fn new(out: LineWriter<W>, output: OutputConfig, c: &'a OpensConfig) -> Self {
        OpensPresenter {
            out,
            output,
            c,
            start_ns: None,
            header_done: false,
            counts: HashMap::new(),
            notices: Notices::default(),
            records_lost: false,
        }
    }

    fn keep(&self, e: &OpenEvent) -> bool {
        self.c
            .name_regex
            .as_ref()
            .is_none_or(|r| r.is_match(&e.comm.to_str_lossy()))
            && self
                .c
                .path
                .as_ref()
                .is_none_or(|r| r.is_match(&e.path.to_str_lossy()))
            && (!self.c.failed || e.fd.is_none())
    }

    /// With `--full`, a relative path made absolute from the directory it is relative to
    /// (the process's working directory, or the directory fd of openat), when the process is
    /// still there to ask; else left as given and marked unresolved.
    fn resolve_path(&self, e: &mut OpenEvent) {
        if !self.c.full {
            return;
        }
        if e.path.starts_with(b"/") {
            e.resolved = Some(true);
            return;
        }
        // The working directory was read at the probe; a directory fd's path only exists
        // in /proc while the process does.
        let dir = match e.dirfd {
            AT_FDCWD => (!e.cwd.is_empty()).then(|| PathBuf::from(OsStr::from_bytes(&e.cwd))),
            fd => std::fs::read_link(format!("/proc/{}/fd/{fd}", e.pid)).ok(),
        };
        // A removed directory reads as "/old/dir (deleted)", which is no path to join.
        match dir.filter(|d| !d.as_os_str().as_bytes().ends_with(b" (deleted)")) {
            Some(dir) => {
                // Components drop the "." of "./x"; ".." stays, as symlinks may lie under it.
                let full: PathBuf = dir.join(OsStr::from_bytes(&e.path)).components().collect();
                e.path = full.into_os_string().into_vec().into();
                e.resolved = Some(true);
            }
            None => e.resolved = Some(false),
        }
    }

    fn open(&mut self, mut e: OpenEvent) -> io::Result<()> {
        if !self.keep(&e) {
            return Ok(());
        }
        self.resolve_path(&mut e);
        let start = *self.start_ns.get_or_insert(e.ts_ns);
        if let Some(by) = self.c.count {
            let key = match by {
                CountBy::Path => e.path,
                CountBy::Process => [format!("{} ", e.pid).as_bytes(), &e.comm].concat().into(),
            };
            *self.counts.entry(key).or_default() += 1;
            return Ok(());
        }
        if self.output.format == Format::Json {
            return self.out.json(&e);
        }
        if !self.header_done {
            self.header_done = true;
            if self.output.header {
                let header = self.columns(Columns {
                    wall: "TIME",
                    elapsed: "ELAPSED(s)",
                    zone: "ZONE",
                    pid: "PID",
                    comm: "COMM",
                    fd: "FD",
                    flags: "FLAGS",
                    path: "PATH",
                });
                self.out.line(&header)?;
            }
        }
        let fd = match (&e.fd, &e.errno) {
            (Some(fd), _) => fd.to_string(),
            (None, Some(errno)) => errno.clone(),
            (None, None) => "?".into(),
        };
        let path = match e.resolved {
            Some(false) => format!("{} (unresolved)", e.path),
            _ => e.path.to_string(),
        };
        let (zone, comm) = (e.zone.to_string(), e.comm.to_string());
        let line = self.columns(Columns {
            wall: &wall_clock(e.walltime_ns),
            elapsed: &format!("{:.6}", e.ts_ns.saturating_sub(start) as f64 / 1e9),
            zone: &zone,
            pid: &e.pid.to_string(),
            comm: &comm,
            fd: &fd,
            flags: &e.flags.join("|"),
            path: &path,
        });
        self.out.line(&line)
    }

    /// The line of `cells` that this configuration shows.
    fn columns(&self, cells: Columns<'_>) -> String {
        let mut line = String::new();
        if self.c.timestamp {
            line.push_str(&format!("{:<15} ", cells.wall));
        }
        if self.c.elapsed {
            line.push_str(&format!("{:>12} ", cells.elapsed));
        }
        if self.c.show_zone {
            line.push_str(&format!("{:<12} ", cells.zone));
        }
        line.push_str(&format!(
            "{:>7}  {:<16} {:>7}  ",
            cells.pid, cells.comm, cells.fd
        ));
        if self.c.flags {
            line.push_str(&format!("{:<24} ", cells.flags));
        }
        line.push_str(cells.path);
        line
    }

    /// A lost record: at a return probe, one open of a traced process that is not shown.
    /// (A lost entry shows up as a return without one, which opens.d counts in @unmatched.)
    /// Records a stop left unshown count the same way: those of return probes are opens.
    fn lost(&mut self, kind: DropKind, count: u64, probe: Option<&ProbeDesc>) {
        match probe {
            Some(p) if kind == DropKind::Buffer && p.provider == "syscall" => {
                self.records_lost = true;
                if p.name == "return" {
                    self.notices.lost(OPENS_LOST, count);
                }
            }
            Some(p) if kind == DropKind::Unshown && p.provider == "syscall" => {
                if p.name == "return" {
                    self.notices.lost(OPENS_UNSHOWN, count);
                }
            }
            _ => self.notices.drop(kind, count),
        }
    }

    /// The end of the run's aggregations: opens.d's @unmatched.
    fn unmatched(&mut self, snapshots: &[AggSnapshot]) {
        let unmatched: i64 = snapshots
            .iter()
            .filter(|s| s.name == "unmatched")
            .flat_map(|s| &s.entries)
            .filter_map(|e| e.value.scalar())
            .sum();
        if self.records_lost && unmatched > 0 {
            self.notices.lost(OPENS_LOST, unmatched as u64);
        }
    }

    fn print_counts(&mut self) -> io::Result<()> {
        let Some(by) = self.c.count else {
            return Ok(());
        };
        let mut rows: Vec<_> = self.counts.drain().collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let what = match by {
            CountBy::Path => "path",
            CountBy::Process => "process",
        };
        if self.output.format == Format::Json {
            for (key, count) in rows {
                self.out
                    .json(&serde_json::json!({ "type": "count", what: key, "count": count }))?;
            }
            return Ok(());
        }
        if self.output.header {
            self.out
                .line(&format!("{:>8}  {}", "COUNT", what.to_uppercase()))?;
        }
        for (key, count) in rows {
            self.out.line(&format!("{count:>8}  {key}"))?;
        }
        Ok(())
    }
}

/// The cells of one line (or of the header), before the configuration picks its columns.
struct Columns<'a> {
    wall: &'a str,
    elapsed: &'a str,
    zone: &'a str,
    pid: &'a str,
    comm: &'a str,
    fd: &'a str,
    flags: &'a str,
    path: &'a str,
}

/// HH:MM:SS.micro in local time, from nanoseconds since the epoch.
fn wall_clock(ns: u64) -> String {
    let t = local_time((ns as i64).div_euclid(1_000_000_000)).unwrap_or_default();
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        t.hour,
        t.minute,
        t.second,
        (ns % 1_000_000_000) / 1000
    )
}

impl<W: io::Write> EventSink for OpensPresenter<'_, W> {
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn event(&mut self, event: Event) -> io::Result<()> {
        if let Event::Drop { kind, count, probe } = &event {
            self.lost(*kind, *count, probe.as_deref());
            return Ok(());
        }
        let Some(event) = self.notices.take(event) else {
            return Ok(());
        };
        match event {
            Event::Printf(p) => match OpensLine::decode(&p)? {
                OpensLine::Open(e) => self.open(e),
                OpensLine::Since(start) => {
                    self.start_ns = Some(start);
                    Ok(())
                }
            },
            Event::FinalAggs(snapshots) => {
                self.unmatched(&snapshots);
                Ok(())
            }
            Event::Done => {
                self.print_counts()?;
                self.notices.flush();
                self.out.flush()
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Origin, Value};
    use std::sync::Arc;

    fn printf(result: i64, errno: i64, flags: i64, path: &str) -> Printf {
        Printf {
            origin: Origin {
                probe: Arc::new(ProbeDesc::default()),
                cpu: 0,
                ts_ns: 0,
            },
            text: ByteString::default(),
            traced: Vec::new(),
            args: vec![
                Value::Int(5_000_000_000),
                Value::Int(1_700_000_000_000_000_000),
                Value::Str("global".into()),
                Value::Int(812),
                Value::Int(813),
                Value::Str("nginx".into()),
                Value::Int(result),
                Value::Int(errno),
                Value::Int(flags),
                Value::Int(AT_FDCWD),
                Value::Str(
                    std::env::current_dir()
                        .unwrap()
                        .as_os_str()
                        .as_bytes()
                        .into(),
                ),
                Value::Str(path.into()),
            ],
            printa: None,
        }
    }

    #[test]
    fn success_and_failure_are_decoded() {
        let ok = OpenEvent::from_printf(&printf(11, 0, 0o2000000, "/var/www/index.html")).unwrap();
        assert_eq!(ok.fd, Some(11));
        assert_eq!(ok.errno, None);
        assert_eq!(ok.flags, ["O_RDONLY", "O_CLOEXEC"]);
        let failed = OpenEvent::from_printf(&printf(-1, 2, 0o1101, "x")).unwrap();
        assert_eq!(failed.fd, None);
        assert_eq!(failed.errno.as_deref(), Some("ENOENT"));
        assert_eq!(failed.flags, ["O_WRONLY", "O_CREAT", "O_TRUNC"]);
    }

    fn config(full: bool) -> OpensConfig {
        OpensConfig {
            target: crate::target::Target::None,
            follow: true,
            name: None,
            name_regex: None,
            zone: None,
            show_zone: false,
            path: None,
            failed: false,
            flags: true,
            timestamp: false,
            elapsed: true,
            full,
            count: None,
            duration: None,
        }
    }

    /// What the presenter prints for `events`, in `format`.
    fn present(c: &OpensConfig, format: Format, events: Vec<Event>) -> String {
        let output = OutputConfig {
            color: false,
            format,
            header: true,
            line_flush: true,
        };
        let mut p = OpensPresenter::new(LineWriter::new(Vec::new(), true), output, c);
        for e in events.into_iter().chain([Event::Done]) {
            p.event(e).unwrap();
        }
        String::from_utf8(p.out.into_inner().unwrap()).unwrap()
    }

    /// A line with an argument missing, or a BEGIN line with one too many, stops the run with
    /// an error that names what does not fit, and prints nothing of it.
    #[test]
    fn a_line_unlike_opens_d_is_an_error() {
        let c = config(false);
        let output = OutputConfig {
            color: false,
            format: Format::Text,
            header: false,
            line_flush: true,
        };
        let mut p = OpensPresenter::new(LineWriter::new(Vec::new(), true), output, &c);
        let mut short = printf(3, 0, 0, "/etc/hosts");
        short.args.pop();
        let err = p.event(Event::Printf(short)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dtk and its script disagree on a printf line of opens.d: 11 values, where dtk reads \
             12 (timestamp, walltimestamp, zonename, pid, tid, execname, result, errno, \
             flags, dirfd, cwd, path)"
        );
        let Event::Printf(mut begin) = since(5) else {
            unreachable!()
        };
        begin.args.push(Value::Int(6));
        let err = p.event(Event::Printf(begin)).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("2 values, where dtk reads 1 (timestamp)"),
            "{err}"
        );
        p.event(Event::Done).unwrap();
        assert_eq!(p.out.into_inner().unwrap(), b"");
    }

    /// An opens.d line for `pid` at `ts_ns`.
    fn open_at(pid: i64, ts_ns: i64, path: &str) -> Event {
        let mut p = printf(3, 0, 0, path);
        p.args[0] = Value::Int(ts_ns);
        p.args[3] = Value::Int(pid);
        Event::Printf(p)
    }

    fn since(ts_ns: i64) -> Event {
        let mut p = printf(0, 0, 0, "");
        p.text = format!("tracing since {ts_ns}\n").into();
        p.args = vec![Value::Int(ts_ns)];
        Event::Printf(p)
    }

    /// A pid that no process has: a child that has been reaped.
    fn gone_pid() -> i64 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        i64::from(pid)
    }

    #[test]
    fn every_column_has_a_header_and_elapsed_counts_from_the_start() {
        let out = present(
            &config(false),
            Format::Text,
            vec![
                since(1_000_000_000),
                open_at(812, 3_500_000_000, "/etc/hosts"),
            ],
        );
        let lines: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines,
            [
                vec!["ELAPSED(s)", "PID", "COMM", "FD", "FLAGS", "PATH"],
                vec!["2.500000", "812", "nginx", "3", "O_RDONLY", "/etc/hosts"],
            ]
        );
    }

    #[test]
    fn full_resolves_from_the_working_directory_read_at_the_probe() {
        // The process is gone when its line is shown: its working directory came with it.
        let gone = gone_pid();
        let cwd = PathBuf::from("/srv/app");
        let unknown = |pid, ts, path| {
            let mut open = open_at(pid, ts, path);
            if let Event::Printf(p) = &mut open {
                p.args[10] = Value::Str(ByteString::default());
            }
            open
        };
        let at = |pid, ts, path| {
            let mut open = open_at(pid, ts, path);
            if let Event::Printf(p) = &mut open {
                p.args[10] = Value::Str(cwd.as_os_str().as_bytes().into());
            }
            open
        };
        let events = || vec![unknown(gone, 1, "./x"), at(gone, 2, "y")];
        let text = present(&config(true), Format::Text, events());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].ends_with("  ./x (unresolved)"), "{text}");
        assert!(
            lines[2].ends_with(&format!("  {}", cwd.join("y").display())),
            "{text}"
        );
        let json = present(&config(true), Format::Json, events());
        let opens: Vec<serde_json::Value> = json
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            (&opens[0]["path"], &opens[0]["resolved"]),
            (&"./x".into(), &false.into())
        );
        assert_eq!(opens[1]["resolved"], true);
        let without = present(&config(false), Format::Json, events());
        assert!(!without.contains("resolved"), "{without}");
    }

    #[test]
    fn full_resolves_a_path_relative_to_a_directory_fd() {
        let dir = std::fs::File::open("/usr/share").unwrap();
        let mut open = open_at(i64::from(std::process::id()), 1, "doc");
        if let Event::Printf(p) = &mut open {
            p.args[9] = Value::Int(i64::from(std::os::fd::AsRawFd::as_raw_fd(&dir)));
        }
        let json = present(&config(true), Format::Json, vec![open]);
        let v: serde_json::Value = serde_json::from_str(json.trim_end()).unwrap();
        assert_eq!(
            (&v["path"], &v["resolved"]),
            (&"/usr/share/doc".into(), &true.into())
        );
    }

    fn probe(name: &str) -> Option<Arc<ProbeDesc>> {
        Some(Arc::new(ProbeDesc {
            provider: "syscall".into(),
            module: String::new(),
            function: "openat".into(),
            name: name.into(),
        }))
    }

    fn unmatched(n: i64) -> Event {
        Event::FinalAggs(vec![AggSnapshot {
            name: "unmatched".into(),
            func: crate::event::AggFunc::Count,
            entries: vec![crate::event::AggEntry {
                keys: Vec::new(),
                value: crate::event::AggValue::Scalar(n),
            }],
            key_sizes: Vec::new(),
            sort: crate::event::AggSort::default(),
        }])
    }

    /// Lost opens: the lost returns, and the returns whose entry was lost; the lost entries
    /// themselves are not opens.
    fn lost_opens(events: Vec<Event>) -> u64 {
        let c = config(false);
        let output = OutputConfig {
            color: false,
            format: Format::Json,
            header: true,
            line_flush: true,
        };
        let mut p = OpensPresenter::new(LineWriter::new(Vec::new(), true), output, &c);
        for e in events {
            p.event(e).unwrap();
        }
        p.notices.lost_count(OPENS_LOST)
    }

    #[test]
    fn lost_records_are_told_in_opens() {
        let drop = |count, name| Event::Drop {
            kind: DropKind::Buffer,
            count,
            probe: probe(name),
        };
        // The first notice prints at once; what follows within a second waits.
        let mut events = vec![drop(1, "return"), drop(40, "return"), drop(30, "entry")];
        events.push(unmatched(5));
        assert_eq!(lost_opens(events), 45);
        assert_eq!(
            lost_opens(vec![unmatched(2)]),
            0,
            "nothing lost: opens begun before"
        );
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(13), "EACCES");
        assert_eq!(errno_name(99999), "E99999");
    }
}
