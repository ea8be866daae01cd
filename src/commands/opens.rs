//! `dtk opens`: files opened, with the fd or the error, scoped by process, name or zone.
//!
//! The kernel side (opens.d) filters by pid, execname, zone and failure; the regular
//! expressions (-N, --path) and the presentation are applied here.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use anyhow::Result;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use serde::Serialize;

use super::{trace, Notices};
use crate::backend::EventSink;
use crate::cli::CountBy;
use crate::config::{Config, Format, OpensConfig, OutputConfig};
use crate::event::{ByteString, Event, Printf};
use crate::output::{self, LineWriter};
use crate::script::{bundled, Param, Script, TargetMacro};

/// The script `dtk opens` runs for this configuration.
pub fn script(c: &OpensConfig) -> Result<Script> {
    let pid = Param::pid_filter(&c.target);
    let text = Param::text;
    Ok(bundled("opens").expect("opens.d is bundled").instantiate(
        &[
            ("FILTER_PID", pid),
            ("FILTER_NAME", text(&c.name)),
            ("FILTER_ZONE", text(&c.zone)),
            ("FAILED_ONLY", Param::Int(c.failed.into())),
        ],
        TargetMacro::Keep,
    )?)
}

pub fn run(config: &Config, c: &OpensConfig) -> Result<()> {
    let mut presenter =
        OpensPresenter::new(output::stdout(config.output.line_flush), config.output, c);
    trace(config, script(c)?, &c.target, c.duration, &mut presenter)?;
    presenter.out.flush()?;
    Ok(())
}

/// One open, as opens.d reports it. The names are bytes as the process gave them.
#[derive(Debug, PartialEq, Serialize)]
pub struct OpenEvent {
    pub ts_ns: u64,
    pub zone: ByteString,
    pub pid: u32,
    pub tid: u32,
    pub comm: ByteString,
    pub fd: Option<i64>,
    pub errno: Option<String>,
    pub flags: Vec<String>,
    pub path: ByteString,
}

impl OpenEvent {
    /// Reads the printf arguments of opens.d:
    /// walltimestamp zonename pid tid execname result errno flags path.
    pub fn from_printf(p: &Printf) -> Option<OpenEvent> {
        let [ts, zone, pid, tid, comm, result, errno, flags, path] = p.args.as_slice() else {
            return None;
        };
        let result = result.as_i64()?;
        let errno = errno.as_i64()?;
        Some(OpenEvent {
            ts_ns: ts.as_i64()? as u64,
            zone: zone.as_text()?.clone(),
            pid: u32::try_from(pid.as_i64()?).ok()?,
            tid: u32::try_from(tid.as_i64()?).ok()?,
            comm: comm.as_text()?.clone(),
            fd: (result >= 0).then_some(result),
            errno: (result < 0).then(|| errno_name(errno)),
            flags: open_flag_names(flags.as_i64()?),
            path: path.as_text()?.clone(),
        })
    }
}

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
    first_ts: Option<u64>,
    header_done: bool,
    counts: HashMap<ByteString, u64>,
    notices: Notices,
}

impl<'a, W: io::Write> OpensPresenter<'a, W> {
    fn new(out: LineWriter<W>, output: OutputConfig, c: &'a OpensConfig) -> Self {
        OpensPresenter {
            out,
            output,
            c,
            first_ts: None,
            header_done: false,
            counts: HashMap::new(),
            notices: Notices::default(),
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

    fn resolve_path(&self, e: &mut OpenEvent) {
        if self.c.full && !e.path.starts_with(b"/") {
            if let Ok(cwd) = std::fs::read_link(format!("/proc/{}/cwd", e.pid)) {
                let full = Path::new(&cwd).join(OsStr::from_bytes(&e.path));
                e.path = full.into_os_string().into_vec().into();
            }
        }
    }

    fn open(&mut self, mut e: OpenEvent) -> io::Result<()> {
        if !self.keep(&e) {
            return Ok(());
        }
        self.resolve_path(&mut e);
        let first = *self.first_ts.get_or_insert(e.ts_ns);
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
                let header = self.columns("TIME", "ZONE", "PID", "COMM", "FD", "PATH");
                self.out.line(&header)?;
            }
        }
        let time = if self.c.timestamp {
            wall_clock(e.ts_ns)
        } else {
            format!("{:.6}", (e.ts_ns.saturating_sub(first)) as f64 / 1e9)
        };
        let fd = match (&e.fd, &e.errno) {
            (Some(fd), _) => fd.to_string(),
            (None, Some(errno)) => errno.clone(),
            (None, None) => "?".into(),
        };
        let mut path = e.path.to_string();
        if self.c.flags {
            path = format!("{}  {}", e.flags.join("|"), path);
        }
        let (zone, comm) = (e.zone.to_string(), e.comm.to_string());
        let line = self.columns(&time, &zone, &e.pid.to_string(), &comm, &fd, &path);
        self.out.line(&line)
    }

    fn columns(
        &self,
        time: &str,
        zone: &str,
        pid: &str,
        comm: &str,
        fd: &str,
        path: &str,
    ) -> String {
        let mut line = String::new();
        if self.c.timestamp || self.c.elapsed {
            let label = if time == "TIME" && !self.c.timestamp {
                "TIME(s)"
            } else {
                time
            };
            line.push_str(&format!("{label:<15} "));
        }
        if self.c.show_zone {
            line.push_str(&format!("{zone:<12} "));
        }
        line.push_str(&format!("{pid:>7}  {comm:<16} {fd:>7}  {path}"));
        line
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
                    .json(&serde_json::json!({ what: key, "count": count }))?;
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

/// HH:MM:SS.micro in local time, from nanoseconds since the epoch.
fn wall_clock(ns: u64) -> String {
    let tm = output::local_time(ns as i64);
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        (ns % 1_000_000_000) / 1000
    )
}

impl<W: io::Write> EventSink for OpensPresenter<'_, W> {
    fn event(&mut self, event: Event) -> io::Result<()> {
        let Some(event) = self.notices.take(event) else {
            return Ok(());
        };
        match event {
            Event::Printf(p) => match OpenEvent::from_printf(&p) {
                Some(e) => self.open(e),
                None => self.out.text(&p.display()),
            },
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
    use crate::event::{Origin, ProbeDesc, Value};
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
                Value::Int(1_700_000_000_000_000_000),
                Value::Str("global".into()),
                Value::Int(812),
                Value::Int(813),
                Value::Str("nginx".into()),
                Value::Int(result),
                Value::Int(errno),
                Value::Int(flags),
                Value::Str(path.into()),
            ],
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

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(13), "EACCES");
        assert_eq!(errno_name(99999), "E99999");
    }
}
