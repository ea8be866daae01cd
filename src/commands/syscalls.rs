//! `dtk syscalls`: system call counts, errors and latency, per call and per process.
//!
//! Counting and summing happen in aggregations (kernel maps on the Linux engine), so the
//! events that reach this presenter are aggregation snapshots: at exit, and with `-i` at
//! the end of every interval and of the run (syscalls.d prints them and then a line
//! `interval WALLTIME`). `--live` (the `live` module) gets the running totals every second
//! instead.

mod live;

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::io;

use anyhow::Result;
use serde::Serialize;

use super::contract::{record, Keys, Line, Mismatch, ScriptContract};
use super::opens::errno_name;
use super::{exit_status, trace, Notices, Tracer};
use crate::aggregation_text;
use crate::backend::{self, EventSink, Job};
use crate::cli::SortBy;
use crate::config::{Config, Format, OutputConfig, SyscallsConfig};
use crate::event::{AggSnapshot, AggValue, ByteString, Event};
use crate::local_time::local_time;
use crate::output::{self, json, LineWriter};
use crate::script::{bundled, Param, Script, TargetMacro, Tree};
use crate::target::Target;

/// The script `dtk syscalls` runs for this configuration.
pub fn script(c: &SyscallsConfig, tree: Tree) -> Result<Script> {
    let pid = Param::pid_filter(&c.target, tree);
    let text = Param::text;
    let timed = c.latency || c.hist.is_some() || c.live;
    Ok(bundled("syscalls")
        .expect("syscalls.d is bundled")
        .instantiate(
            &[
                ("FILTER_PID", pid),
                ("FOLLOW", Param::follow(tree)),
                ("FILTER_NAME", text(&c.name)),
                ("FILTER_ZONE", text(&c.zone)),
                ("BY_PROCESS", Param::Int((c.by_process || c.live).into())),
                ("TIMED", Param::Int(timed.into())),
                ("ERRORS", Param::Int((c.errors || c.live).into())),
                ("HIST_CALL", text(&c.hist)),
                ("INTERVAL", Param::Int(c.interval.unwrap_or(0).into())),
                ("SNAPSHOT", Param::Int(c.live.into())),
            ],
            TargetMacro::Keep,
        )?)
}

pub fn run(config: &Config, c: &SyscallsConfig) -> Result<u8> {
    if let Some(call) = &c.hist {
        check_syscall(config, call)?;
    }
    let tracer = Tracer::open(config, &c.target, c.follow)?;
    let script = script(c, tracer.tree)?;
    if c.live {
        return live::run(config, c, tracer, script);
    }
    let mut presenter = SyscallsPresenter {
        out: output::stdout(config.output.line_flush),
        output: config.output,
        c,
        tally: Tally::new(c),
        hist: None,
        notices: Notices::default(),
    };
    let scope = tracer.scope(None);
    let end = trace(tracer, script, scope, &c.target, c.duration, &mut presenter)?;
    presenter.out.flush()?;
    Ok(exit_status(config, &c.target, &end))
}

/// Fails unless `call` names one system call the back end can trace: a misspelt `--hist`
/// would otherwise show an empty histogram.
fn check_syscall(config: &Config, call: &str) -> Result<()> {
    let no_such = || anyhow::anyhow!("--hist {call:?}: no such system call");
    if call.is_empty() || !call.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(no_such());
    }
    let job = Job {
        script: Script {
            name: "--hist".into(),
            text: format!("syscall::{call}:entry {{}}"),
        },
        args: Vec::new(),
        target: Target::None,
        options: Vec::new(),
        allow_empty: true,
        dump_bpf: false,
        scope: Default::default(),
    };
    let probes = backend::select(config.backend)?.list(&job)?;
    if probes.is_empty() {
        return Err(no_such());
    }
    Ok(())
}

/// (pid, comm, syscall); pid 0 and comm "" when not counting by process.
type RowKey = (i64, ByteString, String);

record! {
    /// The keys of syscalls.d's @calls and @time: pid 0 and execname "" without BY_PROCESS.
    struct CallKey {
        pid: i64,
        execname: ByteString,
        call: ByteString,
    }
}

record! {
    /// The keys of syscalls.d's @errnos.
    struct ErrnoKey {
        pid: i64,
        execname: ByteString,
        call: ByteString,
        errno: i64,
    }
}

record! {
    /// The key of syscalls.d's @hist.
    struct HistKey {
        call: ByteString,
    }
}

record! {
    /// syscalls.d's line after the aggregations of an interval (`interval WALLTIMESTAMP`)
    /// and of a --live snapshot (`snapshot WALLTIMESTAMP`).
    struct WallLine {
        walltimestamp: i64,
    }
}

/// The start of the line after an interval's aggregations.
const INTERVAL: &str = "interval ";

/// The start of the line after a --live snapshot's aggregations.
const SNAPSHOT: &str = "snapshot ";

/// What the presenters of `dtk syscalls` read of syscalls.d.
pub(crate) const CONTRACT: ScriptContract = ScriptContract {
    scripts: &["syscalls"],
    lines: &[
        Line::of::<WallLine>(INTERVAL),
        Line::of::<WallLine>(SNAPSHOT),
    ],
    keys: &[
        Keys::of::<CallKey>("calls"),
        Keys::of::<CallKey>("time"),
        Keys::of::<ErrnoKey>("errnos"),
        Keys::of::<HistKey>("hist"),
    ],
};

/// One row of the table. What was not measured is None (null in JSON): pid and comm without
/// -P, total_ns unless calls were timed (-L, --hist), errors and errnos without -e.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Row {
    pub pid: Option<i64>,
    /// The process's name as it set it: bytes, escaped in text and kept exactly in JSON.
    pub comm: Option<ByteString>,
    pub syscall: String,
    pub count: i64,
    pub total_ns: Option<i64>,
    pub errors: Option<i64>,
    /// Failed calls by errno name.
    pub errnos: Option<BTreeMap<String, i64>>,
}

impl Row {
    /// `ENOENT:30 EACCES:7`: the most frequent first.
    fn errno_summary(&self) -> String {
        let mut errnos: Vec<(&String, &i64)> = self.errnos.iter().flatten().collect();
        errnos.sort_by_key(|&(name, n)| (Reverse(*n), name));
        let parts: Vec<String> = errnos.iter().map(|(e, n)| format!("{e}:{n}")).collect();
        parts.join(" ")
    }
}

/// The rows that syscalls.d's aggregations (@calls, @time, @errnos) add up to.
#[derive(Debug)]
struct Tally {
    by_process: bool,
    timed: bool,
    errors: bool,
    rows: BTreeMap<RowKey, Row>,
}

impl Tally {
    /// Rows for `c`, which time calls with -L or --hist and count errors with -e.
    fn new(c: &SyscallsConfig) -> Tally {
        Tally::measuring(c.by_process, c.latency || c.hist.is_some(), c.errors)
    }

    fn measuring(by_process: bool, timed: bool, errors: bool) -> Tally {
        Tally {
            by_process,
            timed,
            errors,
            rows: BTreeMap::new(),
        }
    }

    /// Merges one aggregation snapshot into the rows.
    fn absorb(&mut self, snapshot: &AggSnapshot) -> Result<(), Mismatch> {
        let name = snapshot.name.as_str();
        for entry in &snapshot.entries {
            let (key, errno) = match name {
                "calls" | "time" => (CONTRACT.decode_keys::<CallKey>(name, &entry.keys)?, None),
                "errnos" => {
                    let k: ErrnoKey = CONTRACT.decode_keys(name, &entry.keys)?;
                    let key = CallKey {
                        pid: k.pid,
                        execname: k.execname,
                        call: k.call,
                    };
                    (key, Some(k.errno))
                }
                _ => continue,
            };
            let AggValue::Scalar(v) = entry.value else {
                continue;
            };
            let CallKey {
                pid,
                execname: comm,
                call,
            } = key;
            let call = call.to_str_lossy().into_owned();
            let row = self
                .rows
                .entry((pid, comm.clone(), call.clone()))
                .or_insert_with(|| Row {
                    pid: self.by_process.then_some(pid),
                    comm: self.by_process.then_some(comm),
                    syscall: call,
                    count: 0,
                    total_ns: self.timed.then_some(0),
                    errors: self.errors.then_some(0),
                    errnos: self.errors.then(BTreeMap::new),
                });
            match (name, errno) {
                ("calls", _) => row.count += v,
                ("time", _) => {
                    if let Some(total) = &mut row.total_ns {
                        *total += v;
                    }
                }
                ("errnos", Some(errno)) => {
                    if let (Some(errors), Some(errnos)) = (&mut row.errors, &mut row.errnos) {
                        *errors += v;
                        *errnos.entry(errno_name(errno)).or_default() += v;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The rows gathered so far, which start again from none.
    fn take(&mut self) -> Vec<Row> {
        std::mem::take(&mut self.rows).into_values().collect()
    }
}

struct SyscallsPresenter<'a, W: io::Write> {
    out: LineWriter<W>,
    output: OutputConfig,
    c: &'a SyscallsConfig,
    tally: Tally,
    hist: Option<AggSnapshot>,
    notices: Notices,
}

impl<W: io::Write> SyscallsPresenter<'_, W> {
    fn absorb(&mut self, snapshot: AggSnapshot) -> Result<(), Mismatch> {
        if snapshot.name == "hist" {
            self.hist = Some(snapshot);
            Ok(())
        } else {
            self.tally.absorb(&snapshot)
        }
    }

    fn sorted_rows(&mut self) -> Vec<Row> {
        let mut rows = self.tally.take();
        match self.c.sort {
            SortBy::Count => rows.sort_by_key(|r| Reverse(r.count)),
            SortBy::Time => rows.sort_by_key(|r| Reverse(r.total_ns)),
            SortBy::Errors => rows.sort_by_key(|r| Reverse(r.errors)),
            SortBy::Name => rows.sort_by(|a, b| a.syscall.cmp(&b.syscall)),
        }
        if let Some(top) = self.c.top {
            rows.truncate(top);
        }
        rows
    }

    /// Prints the table of what was gathered since the last one.
    fn table(&mut self, wall_ns: Option<i64>) -> io::Result<()> {
        let rows = self.sorted_rows();
        if self.output.format == Format::Json {
            return self.out.json(&serde_json::json!({
                "type": "table",
                "walltime_ns": wall_ns,
                "interval_s": self.c.interval,
                "rows": rows,
            }));
        }
        if let Some(ns) = wall_ns {
            self.out.line(&format!("--- {} ---", wall_date(ns)))?;
        }
        if self.output.header {
            let h = self.line(HEADER.map(String::from));
            self.out.line(&h)?;
        }
        for r in &rows {
            let line = self.line([
                r.pid.unwrap_or(0).to_string(),
                r.comm.as_ref().map(ToString::to_string).unwrap_or_default(),
                r.syscall.clone(),
                r.count.to_string(),
                (r.total_ns.unwrap_or(0) / 1000).to_string(),
                format!("{:.1}", average_us(r.total_ns.unwrap_or(0), r.count)),
                r.errors.unwrap_or(0).to_string(),
                r.errno_summary(),
            ]);
            self.out.line(&line)?;
        }
        Ok(())
    }

    /// The latency distribution of --hist: as dtrace prints a quantize in text; in JSON, one
    /// line per call, `{"type": "histogram", "syscall", "unit": "ns", "buckets": […]}`.
    fn histogram(&mut self, hist: &AggSnapshot) -> io::Result<()> {
        if self.output.format != Format::Json {
            return self.out.text(&aggregation_text::render(hist));
        }
        for entry in &hist.entries {
            let mut line = serde_json::Map::new();
            line.insert("type".into(), "histogram".into());
            let key: HistKey = CONTRACT.decode_keys("hist", &entry.keys)?;
            line.insert("syscall".into(), serde_json::json!(key.call));
            line.insert("unit".into(), "ns".into());
            line.extend(json::value_fields(&entry.value));
            self.out.json(&line)?;
        }
        Ok(())
    }

    /// The columns this configuration shows, from the cells of every column.
    fn line(&self, cells: [String; 8]) -> String {
        let [pid, comm, call, count, total, avg, errors, errnos] = cells;
        let mut s = String::new();
        if self.c.by_process {
            s.push_str(&format!("{pid:<7} {comm:<16} "));
        }
        s.push_str(&format!("{call:<20} {count:>10}"));
        if self.c.latency {
            s.push_str(&format!(" {total:>12} {avg:>10}"));
        }
        if self.c.errors {
            s.push_str(&format!(" {errors:>8}  {errnos}"));
        }
        s.trim_end().to_string()
    }
}

const HEADER: [&str; 8] = [
    "PID",
    "COMM",
    "SYSCALL",
    "COUNT",
    "TOTAL(us)",
    "AVG(us)",
    "ERRORS",
    "ERRNOS",
];

/// Mean time per call in microseconds (0 for no calls).
fn average_us(total_ns: i64, count: i64) -> f64 {
    if count > 0 {
        total_ns as f64 / count as f64 / 1e3
    } else {
        0.0
    }
}

/// YYYY-MM-DD HH:MM:SS in local time, from nanoseconds since the epoch.
fn wall_date(ns: i64) -> String {
    let t = local_time(ns.div_euclid(1_000_000_000)).unwrap_or_default();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

impl<W: io::Write> EventSink for SyscallsPresenter<'_, W> {
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn event(&mut self, event: Event) -> io::Result<()> {
        let Some(event) = self.notices.take(event) else {
            return Ok(());
        };
        match event {
            Event::Agg(snapshot) => Ok(self.absorb(snapshot)?),
            Event::FinalAggs(snapshots) => {
                for s in snapshots {
                    self.absorb(s)?;
                }
                Ok(())
            }
            Event::Printf(p) => match CONTRACT.prefix_of(&p.text)? {
                INTERVAL => {
                    let l: WallLine = CONTRACT.decode(&p.args)?;
                    self.table(Some(l.walltimestamp))
                }
                _ => Err(CONTRACT.unknown_line(&p.text).into()),
            },
            Event::Done => {
                if self.c.interval.is_none() || !self.tally.rows.is_empty() {
                    self.table(None)?;
                }
                if let Some(hist) = self.hist.take() {
                    self.histogram(&hist)?;
                }
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
    use crate::event::{AggEntry, AggFunc, Origin, Printf, Value};
    use crate::target::Target;

    fn config(by_process: bool) -> SyscallsConfig {
        SyscallsConfig {
            target: Target::None,
            follow: true,
            name: None,
            zone: None,
            by_process,
            latency: true,
            errors: true,
            top: None,
            sort: SortBy::Count,
            interval: None,
            duration: None,
            hist: None,
            live: false,
        }
    }

    /// An aggregation keyed by (pid, comm, call), and by errno too when one is given.
    fn agg(name: &str, func: AggFunc, rows: &[(i64, &str, &str, Option<i64>, i64)]) -> Event {
        Event::Agg(AggSnapshot {
            name: name.into(),
            func,
            key_sizes: Vec::new(),
            sort: crate::event::AggSort::default(),
            entries: rows
                .iter()
                .map(|&(pid, comm, call, errno, v)| {
                    let mut keys = vec![
                        Value::Int(pid),
                        Value::Str(comm.into()),
                        Value::Str(call.into()),
                    ];
                    keys.extend(errno.map(Value::Int));
                    AggEntry {
                        keys,
                        value: AggValue::Scalar(v),
                    }
                })
                .collect(),
        })
    }

    fn table(c: &SyscallsConfig, format: Format) -> String {
        let output = OutputConfig {
            color: false,
            format,
            header: true,
            line_flush: true,
        };
        let mut p = SyscallsPresenter {
            out: LineWriter::new(Vec::new(), true),
            output,
            c,
            tally: Tally::new(c),
            hist: None,
            notices: Notices::default(),
        };
        let calls = [
            (812, "nginx", "openat", None, 911),
            (812, "nginx", "epoll_wait", None, 4210),
        ];
        p.event(agg("calls", AggFunc::Count, &calls)).unwrap();
        let time = [
            (812, "nginx", "openat", None, 3_870_000),
            (812, "nginx", "epoll_wait", None, 4_901_233_000),
        ];
        p.event(agg("time", AggFunc::Sum, &time)).unwrap();
        let errnos = [
            (812, "nginx", "openat", Some(2), 30),
            (812, "nginx", "openat", Some(13), 7),
        ];
        p.event(agg("errnos", AggFunc::Count, &errnos)).unwrap();
        p.event(Event::Done).unwrap();
        String::from_utf8(p.out.into_inner().unwrap()).unwrap()
    }

    /// Keys unlike syscalls.d's (@errnos without its errno) and a printf line it does not
    /// print stop the run with an error that says what does not fit.
    #[test]
    fn keys_or_lines_unlike_syscalls_d_are_errors() {
        let c = config(true);
        let mut p = SyscallsPresenter {
            out: LineWriter::new(Vec::new(), true),
            output: OutputConfig {
                color: false,
                format: Format::Text,
                header: true,
                line_flush: true,
            },
            c: &c,
            tally: Tally::new(&c),
            hist: None,
            notices: Notices::default(),
        };
        let no_errno = [(812, "nginx", "openat", None, 30)];
        let err = p
            .event(agg("errnos", AggFunc::Count, &no_errno))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "dtk and its script disagree on the keys of syscalls.d's @errnos: 3 values, where \
             dtk reads 4 (pid, execname, call, errno)"
        );
        let line = Event::Printf(Printf {
            origin: Origin {
                probe: Default::default(),
                cpu: 0,
                ts_ns: 0,
            },
            text: "total 5\n".into(),
            traced: Vec::new(),
            args: vec![Value::Int(5)],
            printa: None,
        });
        let err = p.event(line).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dtk and its script disagree on a printf line of syscalls.d: dtk knows no line like \
             \"total 5\""
        );
    }

    #[test]
    fn rows_merge_counts_time_and_errors_sorted_by_count() {
        let out = table(&config(true), Format::Text);
        let rows: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows,
            [
                HEADER.to_vec(),
                vec![
                    "812",
                    "nginx",
                    "epoll_wait",
                    "4210",
                    "4901233",
                    "1164.2",
                    "0"
                ],
                vec![
                    "812",
                    "nginx",
                    "openat",
                    "911",
                    "3870",
                    "4.2",
                    "37",
                    "ENOENT:30",
                    "EACCES:7"
                ],
            ]
        );
    }

    #[test]
    fn json_is_one_object_per_table() {
        let out = table(&config(false), Format::Json);
        let v: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
        assert_eq!(v["rows"][0]["syscall"], "epoll_wait");
        assert_eq!(v["rows"][0]["pid"], serde_json::Value::Null);
        assert_eq!(v["rows"][1]["errors"], 37);
        assert_eq!(v["rows"][1]["errnos"]["EACCES"], 7);
        assert_eq!(v["type"], "table");
    }

    #[test]
    fn json_leaves_what_was_not_measured_null() {
        let c = SyscallsConfig {
            latency: false,
            errors: false,
            ..config(false)
        };
        let out = table(&c, Format::Json);
        let v: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
        for row in v["rows"].as_array().unwrap() {
            assert!(row["count"].as_i64().unwrap() > 0, "{row}");
            for unmeasured in ["total_ns", "errors", "errnos", "pid", "comm"] {
                assert_eq!(
                    row[unmeasured],
                    serde_json::Value::Null,
                    "{unmeasured}: {row}"
                );
            }
        }
    }
}
