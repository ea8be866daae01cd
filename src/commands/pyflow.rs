//! `dtk pyflow`: Python call flow, indented per thread, with per-line time deltas, and the
//! standard library and installed packages hidden unless asked for.
//!
//! pyflow.d reports every entry and return; which frames are shown, the depth (which counts
//! only shown frames), the deltas and the summary are worked out here, per thread.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use anyhow::Result;
use owo_colors::OwoColorize;
use serde::Serialize;

use super::{trace, Notices};
use crate::backend::{EventSink, Target};
use crate::config::{Config, Format, FrameFilter, OutputConfig, PyflowConfig};
use crate::event::{Event, Printf};
use crate::output::{self, LineWriter};
use crate::python::{self, Build, FlowSource, PythonError, Version};
use crate::script::{bundled, Param, Script, TargetMacro};

/// What `dtk pyflow` runs for a configuration: the script for the target's CPython, the
/// target (a command started for the trampoline path gains `-X perf`), and what dtk turns on
/// in the target, to announce on stderr.
pub struct Prepared {
    pub script: Script,
    pub target: Target,
    pub notice: Option<String>,
    /// --activate turned the trampoline on in this process: turn it off at the end.
    pub activated: Option<Activation>,
}

/// CPython 3.14's perf trampoline, turned on by dtk in a running process; dropping this turns
/// it off again, so that the process is left as it was found.
pub struct Activation {
    pid: u32,
}

impl Drop for Activation {
    fn drop(&mut self) {
        if !Path::new(&format!("/proc/{}", self.pid)).exists() {
            return;
        }
        match python::remote_exec(self.pid, "import sys; sys.deactivate_stack_trampoline()") {
            Ok(()) => eprintln!(
                "dtk: turned the perf trampoline of pid {} off again (sys.remote_exec)",
                self.pid
            ),
            Err(e) => eprintln!("dtk: warning: {e}"),
        }
    }
}

/// The script `dtk pyflow` runs for this configuration.
pub fn script(c: &PyflowConfig) -> Result<Script> {
    Ok(prepare(c)?.script)
}

/// Chooses the call source for the target's interpreter (../shared/DESIGN.md, "CPython
/// support"): the USDT markers where the build has them, else the perf trampoline on 3.12 to
/// 3.14. With no target, every process with markers is traced.
pub fn prepare(c: &PyflowConfig) -> Result<Prepared> {
    let markers = |target: TargetMacro| -> Result<Script> {
        Ok(bundled("pyflow")
            .expect("pyflow.d is bundled")
            .instantiate(&[], target)?)
    };
    let (build, target_macro, command_index) = match &c.target {
        Target::None => {
            return Ok(Prepared {
                script: markers(TargetMacro::Any)?,
                target: Target::None,
                notice: None,
                activated: None,
            })
        }
        Target::Pid(pid) => (Build::of_process(*pid)?, TargetMacro::Pid(*pid), None),
        Target::Command(argv) => {
            let (build, index) = Build::of_command(argv)?;
            (build, TargetMacro::Keep, Some(index))
        }
    };
    let no_probes = || PythonError::NoProbes {
        path: build.shown.clone(),
        version: build.version_text(),
    };
    let layout = match build.flow_source().ok_or_else(no_probes)? {
        FlowSource::Markers => {
            return Ok(Prepared {
                script: markers(target_macro)?,
                target: c.target.clone(),
                notice: None,
                activated: None,
            })
        }
        FlowSource::Trampoline(layout) => layout,
    };
    let params: Vec<(&str, Param)> = layout
        .params()
        .into_iter()
        .map(|(name, value)| (name, Param::Int(value as i64)))
        .collect();
    let script = bundled("pyflow-trampoline")
        .expect("pyflow-trampoline.d is bundled")
        .instantiate(&params, target_macro)?;
    let version = build.version_text();
    let remote_exec_works = build.version
        >= Some(Version {
            major: 3,
            minor: 14,
        });
    let mut activated = None;
    let (target, notice) = match (&c.target, command_index) {
        (Target::Command(argv), Some(index)) => {
            let mut argv = argv.clone();
            argv.insert(index + 1, "-X".into());
            argv.insert(index + 2, "perf".into());
            let notice = format!(
                "dtk: starting CPython {version} with -X perf: it has no function probes, so \
                 calls are followed through the perf trampoline"
            );
            (Target::Command(argv), Some(notice))
        }
        (Target::Pid(pid), _) if trampoline_active(*pid) => (Target::Pid(*pid), None),
        (Target::Pid(pid), _) if c.activate && remote_exec_works => {
            python::remote_exec(*pid, "import sys; sys.activate_stack_trampoline('perf')")?;
            activated = Some(Activation { pid: *pid });
            let notice = format!(
                "dtk: turning the perf trampoline of pid {pid} (CPython {version}) on with \
                 sys.remote_exec (--activate); it runs before the process's next bytecode, and \
                 dtk turns it off when tracing ends"
            );
            (Target::Pid(*pid), Some(notice))
        }
        (Target::Pid(pid), _) => {
            return Err(PythonError::TrampolineInactive {
                path: build.shown.clone(),
                version,
                pid: *pid,
                activate: if remote_exec_works {
                    ", or pass --activate to turn it on in the running process"
                } else {
                    ""
                },
            }
            .into());
        }
        (target, _) => (target.clone(), None),
    };
    Ok(Prepared {
        script,
        target,
        notice,
        activated,
    })
}

/// Whether CPython's perf trampoline is on in `pid`: it then writes the perf map
/// /tmp/perf-PID.map (PID as the process's own namespace numbers it), seen through the
/// process's root.
fn trampoline_active(pid: u32) -> bool {
    let ns_pid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .and_then(|ids| ids.split_whitespace().last().map(str::to_string))
        })
        .unwrap_or_else(|| pid.to_string());
    Path::new(&format!("/proc/{pid}/root/tmp/perf-{ns_pid}.map")).exists()
}

pub fn run(config: &Config, c: &PyflowConfig) -> Result<()> {
    let prepared = prepare(c)?;
    if let Some(notice) = &prepared.notice {
        eprintln!("{notice}");
    }
    let mut presenter =
        FlowPresenter::new(output::stdout(config.output.line_flush), config.output, c);
    // Dropped after tracing ends, however it ends: the trampoline goes off again.
    let _activated = prepared.activated;
    trace(
        config,
        prepared.script,
        &prepared.target,
        None,
        &mut presenter,
    )?;
    presenter.out.flush()?;
    Ok(())
}

/// Entry or return, as pyflow.d reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Entry,
    Return,
    /// A return by an exception (the trampoline path tells them apart).
    Unwind,
}

/// One Python event.
#[derive(Clone, Debug, PartialEq)]
pub struct PyEvent {
    pub ts_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub kind: Kind,
    pub file: String,
    pub line: i64,
    pub function: String,
}

impl PyEvent {
    /// Reads the printf arguments of pyflow.d: timestamp pid tid file line function (the
    /// direction is in the format text).
    pub fn from_printf(p: &Printf) -> Option<PyEvent> {
        let [ts, pid, tid, file, line, function] = p.args.as_slice() else {
            return None;
        };
        let kind = if p.text.contains(" -> ") {
            Kind::Entry
        } else if p.text.contains(" <- ") {
            Kind::Return
        } else if p.text.contains(" <! ") {
            Kind::Unwind
        } else {
            return None;
        };
        Some(PyEvent {
            ts_ns: ts.as_i64()? as u64,
            pid: u32::try_from(pid.as_i64()?).ok()?,
            tid: u32::try_from(tid.as_i64()?).ok()?,
            kind,
            file: file.as_str()?.to_string(),
            line: line.as_i64()?,
            function: function.as_str()?.to_string(),
        })
    }
}

impl FrameFilter {
    /// Whether a frame from `file` is shown.
    pub fn shows(&self, file: &str) -> bool {
        if self.exclude.iter().any(|r| r.is_match(file)) {
            return false;
        }
        if !self.include.is_empty() {
            return self.include.iter().any(|r| r.is_match(file));
        }
        if self.all || self.modules.iter().any(|m| in_module(file, m)) {
            return true;
        }
        !is_library(file)
    }
}

/// Frames of the standard library, installed packages, and frozen or builtin modules.
pub fn is_library(file: &str) -> bool {
    file.starts_with('<')
        || file.contains("/site-packages/")
        || file.contains("/dist-packages/")
        || is_stdlib(file)
}

/// `/usr/lib/python3.11/json/decoder.py`, `/root/.pyenv/versions/3.12.1/lib/python3.12/x.py`.
fn is_stdlib(file: &str) -> bool {
    file.split('/').collect::<Vec<_>>().windows(2).any(|w| {
        (w[0] == "lib" || w[0] == "lib64")
            && w[1]
                .strip_prefix("python")
                .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// Whether `file` belongs to the package or module `name` (`requests`, `app.db`).
fn in_module(file: &str, name: &str) -> bool {
    let rel = name.replace('.', "/");
    file.contains(&format!("/{rel}/")) || file.ends_with(&format!("/{rel}.py"))
}

/// A frame on a thread's stack.
#[derive(Debug)]
struct Frame {
    function: String,
    file: String,
    def_line: i64,
    shown: bool,
    entered_ns: u64,
    /// Time spent in callees, for exclusive time.
    children_ns: u64,
}

/// The state of one thread's flow.
#[derive(Debug, Default)]
struct Flow {
    stack: Vec<Frame>,
    /// Shown frames on the stack: the indentation depth.
    depth: usize,
    last_ns: Option<u64>,
}

/// Calls and times of one function, for --summary.
#[derive(Debug, Default)]
struct Totals {
    calls: u64,
    incl_ns: u64,
    excl_ns: u64,
}

/// Colours that deep levels cycle through.
const DEPTH_COLOURS: [owo_colors::AnsiColors; 4] = [
    owo_colors::AnsiColors::Green,
    owo_colors::AnsiColors::Cyan,
    owo_colors::AnsiColors::Yellow,
    owo_colors::AnsiColors::Magenta,
];

struct FlowPresenter<'a, W: io::Write> {
    out: LineWriter<W>,
    output: OutputConfig,
    c: &'a PyflowConfig,
    flows: HashMap<u32, Flow>,
    first_ns: Option<u64>,
    show_pid: bool,
    show_tid: bool,
    header_done: bool,
    totals: HashMap<(String, String, i64), Totals>,
    notices: Notices,
}

impl<'a, W: io::Write> FlowPresenter<'a, W> {
    fn new(out: LineWriter<W>, output: OutputConfig, c: &'a PyflowConfig) -> Self {
        FlowPresenter {
            out,
            output,
            c,
            flows: HashMap::new(),
            first_ns: None,
            show_pid: c.target == Target::None,
            show_tid: false,
            header_done: false,
            totals: HashMap::new(),
            notices: Notices::default(),
        }
    }

    fn python_event(&mut self, e: PyEvent) -> io::Result<()> {
        let first = *self.first_ns.get_or_insert(e.ts_ns);
        if !self.show_tid && !self.flows.contains_key(&e.tid) && !self.flows.is_empty() {
            // A second thread: from now on lines carry the TID, under a new header.
            self.show_tid = true;
            self.header_done = false;
        }
        let flow = self.flows.entry(e.tid).or_default();
        let (shown, depth) = match e.kind {
            Kind::Entry => {
                let shown = self.c.filter.shows(&e.file);
                let depth = flow.depth;
                flow.depth += usize::from(shown);
                flow.stack.push(Frame {
                    function: e.function.clone(),
                    file: e.file.clone(),
                    def_line: e.line,
                    shown,
                    entered_ns: e.ts_ns,
                    children_ns: 0,
                });
                (shown, depth)
            }
            Kind::Return | Kind::Unwind => match flow.stack.pop() {
                Some(frame) => {
                    flow.depth -= usize::from(frame.shown);
                    let incl = e.ts_ns.saturating_sub(frame.entered_ns);
                    if let Some(parent) = flow.stack.last_mut() {
                        parent.children_ns += incl;
                    }
                    if self.c.summary {
                        let t = self
                            .totals
                            .entry((frame.function, frame.file, frame.def_line))
                            .or_default();
                        t.calls += 1;
                        t.incl_ns += incl;
                        t.excl_ns += incl.saturating_sub(frame.children_ns);
                    }
                    (frame.shown, flow.depth)
                }
                // A return from a call that began before tracing did.
                None => (self.c.filter.shows(&e.file), 0),
            },
        };
        if !shown {
            return Ok(());
        }
        let delta_ns = if self.c.elapsed {
            e.ts_ns.saturating_sub(first)
        } else {
            flow.last_ns.map_or(0, |last| e.ts_ns.saturating_sub(last))
        };
        flow.last_ns = Some(e.ts_ns);
        self.print(&e, depth, delta_ns)
    }

    fn relative<'f>(&self, file: &'f str) -> &'f str {
        self.c
            .cwd
            .as_deref()
            .and_then(|cwd| Path::new(file).strip_prefix(cwd).ok())
            .and_then(|p| p.to_str())
            .unwrap_or(file)
    }

    fn print(&mut self, e: &PyEvent, depth: usize, delta_ns: u64) -> io::Result<()> {
        let file = self.relative(&e.file).to_string();
        if self.output.format == Format::Json {
            return self.out.json(&serde_json::json!({
                "ts_ns": e.ts_ns,
                "delta_us": delta_ns / 1000,
                "pid": e.pid,
                "tid": e.tid,
                "kind": e.kind,
                "depth": depth,
                "file": file,
                "line": e.line,
                "function": e.function,
            }));
        }
        if !self.header_done {
            self.header_done = true;
            if self.output.header {
                let head = self.prefix(
                    if self.c.elapsed {
                        "TIME(us)"
                    } else {
                        "DELTA(us)"
                    },
                    "PID",
                    "TID",
                );
                self.out
                    .line(&format!("{head}{:<22}FUNCTION", "FILE:LINE"))?;
            }
        }
        let prefix = self.prefix(
            &(delta_ns / 1000).to_string(),
            &e.pid.to_string(),
            &e.tid.to_string(),
        );
        let location = format!("{file}:{}", e.line);
        let arrow = match e.kind {
            Kind::Entry => "->",
            Kind::Return | Kind::Unwind => "<-",
        };
        // A return by an exception is marked `<- f !` (OUTPUT.md).
        let mark = if e.kind == Kind::Unwind { " !" } else { "" };
        let indent = "  ".repeat(depth);
        let line = if self.output.color {
            let colour = DEPTH_COLOURS[depth % DEPTH_COLOURS.len()];
            let arrow = match e.kind {
                Kind::Entry => arrow.green().to_string(),
                Kind::Return => arrow.blue().to_string(),
                Kind::Unwind => arrow.red().to_string(),
            };
            format!(
                "{prefix}{} {indent}{arrow} {}{}",
                format!("{location:<21}").dimmed(),
                e.function.color(colour),
                mark.red()
            )
        } else {
            format!(
                "{prefix}{location:<21} {indent}{arrow} {}{mark}",
                e.function
            )
        };
        self.out.line(&line)
    }

    fn prefix(&self, delta: &str, pid: &str, tid: &str) -> String {
        let mut s = format!("{delta:>11}  ");
        if self.show_pid {
            s.push_str(&format!("{pid:>7} "));
        }
        if self.show_tid {
            s.push_str(&format!("{tid:>7} "));
        }
        s
    }

    fn summary(&mut self) -> io::Result<()> {
        if !self.c.summary {
            return Ok(());
        }
        let mut rows: Vec<_> = self
            .totals
            .drain()
            .filter(|((_, file, _), _)| self.c.filter.shows(file))
            .collect();
        rows.sort_by(|a, b| b.1.excl_ns.cmp(&a.1.excl_ns).then_with(|| a.0.cmp(&b.0)));
        rows.truncate(self.c.top);
        if self.output.format == Format::Text && self.output.header {
            self.out.line(&format!(
                "\n{:<21} {:<18} {:>6} {:>10} {:>10}",
                "FUNCTION", "FILE:LINE", "CALLS", "INCL(us)", "EXCL(us)"
            ))?;
        }
        for ((function, file, line), t) in rows {
            let file = self.relative(&file).to_string();
            if self.output.format == Format::Json {
                self.out.json(&serde_json::json!({
                    "function": function, "file": file, "line": line, "calls": t.calls,
                    "incl_us": t.incl_ns / 1000, "excl_us": t.excl_ns / 1000,
                }))?;
                continue;
            }
            self.out.line(&format!(
                "{function:<21} {:<18} {:>6} {:>10} {:>10}",
                format!("{file}:{line}"),
                t.calls,
                t.incl_ns / 1000,
                t.excl_ns / 1000
            ))?;
        }
        Ok(())
    }
}

impl<W: io::Write> EventSink for FlowPresenter<'_, W> {
    fn event(&mut self, event: Event) -> io::Result<()> {
        let Some(event) = self.notices.take(event) else {
            return Ok(());
        };
        match event {
            Event::Printf(p) => match PyEvent::from_printf(&p) {
                Some(e) => self.python_event(e),
                None => self.out.text(&p.text),
            },
            Event::Done => {
                self.summary()?;
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

    fn config(filter: FrameFilter, summary: bool) -> PyflowConfig {
        PyflowConfig {
            target: Target::Pid(100),
            filter,
            elapsed: false,
            summary,
            top: 10,
            activate: false,
            cwd: Some("/home/u/proj".into()),
        }
    }

    fn output() -> OutputConfig {
        OutputConfig {
            color: false,
            format: Format::Text,
            header: true,
            line_flush: true,
        }
    }

    /// (µs, tid, "->" or "<-", file, line, function)
    type Step<'a> = (u64, u32, &'a str, &'a str, i64, &'a str);

    fn printf((us, tid, arrow, file, line, function): Step) -> Event {
        Event::Printf(Printf {
            origin: Origin {
                probe: Arc::new(ProbeDesc::default()),
                cpu: 0,
                ts_ns: us * 1000,
            },
            text: format!("{} 100 {tid} {arrow} {file} {line} {function}\n", us * 1000),
            args: vec![
                Value::Int((us * 1000) as i64),
                Value::Int(100),
                Value::Int(tid.into()),
                Value::Str(file.into()),
                Value::Int(line),
                Value::Str(function.into()),
            ],
        })
    }

    fn flow(c: &PyflowConfig, steps: &[Step]) -> String {
        let mut p = FlowPresenter::new(LineWriter::new(Vec::new(), true), output(), c);
        for &step in steps {
            EventSink::event(&mut p, printf(step)).unwrap();
        }
        EventSink::event(&mut p, Event::Done).unwrap();
        String::from_utf8(p.out.into_inner().unwrap()).unwrap()
    }

    const APP: &str = "/home/u/proj/app.py";
    const JSON: &str = "/usr/lib/python3.11/json/__init__.py";

    #[test]
    fn library_frames_are_hidden_and_do_not_count_toward_depth() {
        let steps = [
            (10, 1, "->", APP, 1, "main"),
            (15, 1, "->", JSON, 299, "loads"),
            (20, 1, "->", APP, 9, "hook"),
            (30, 1, "<-", APP, 10, "hook"),
            (35, 1, "<-", JSON, 346, "loads"),
            (50, 1, "<-", APP, 5, "main"),
        ];
        let out = flow(&config(FrameFilter::default(), false), &steps);
        let expected = "  DELTA(us)  FILE:LINE             FUNCTION\n\
                        \x20         0  app.py:1              -> main\n\
                        \x20        10  app.py:9                -> hook\n\
                        \x20        10  app.py:10               <- hook\n\
                        \x20        20  app.py:5              <- main\n";
        assert_eq!(out, expected);
        let all = FrameFilter {
            all: true,
            ..FrameFilter::default()
        };
        let out = flow(&config(all, false), &steps);
        assert!(out.contains("-> loads\n"), "{out}");
        assert!(out.contains("      -> hook\n"), "{out}");
    }

    #[test]
    fn threads_have_their_own_depth_and_a_tid_column() {
        let steps = [
            (10, 1, "->", APP, 1, "main"),
            (12, 2, "->", APP, 20, "worker"),
            (15, 1, "<-", APP, 3, "main"),
            (19, 2, "<-", APP, 22, "worker"),
        ];
        let out = flow(&config(FrameFilter::default(), false), &steps);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[2],
            "  DELTA(us)      TID FILE:LINE             FUNCTION"
        );
        assert_eq!(
            lines[3],
            "          0        2 app.py:20             -> worker"
        );
        assert_eq!(
            lines[5],
            "          7        2 app.py:22             <- worker"
        );
    }

    #[test]
    fn summary_gives_inclusive_and_exclusive_time() {
        let steps = [
            (0, 1, "->", APP, 1, "main"),
            (100, 1, "->", APP, 8, "load"),
            (400, 1, "<-", APP, 9, "load"),
            (1000, 1, "<-", APP, 3, "main"),
        ];
        let out = flow(&config(FrameFilter::default(), true), &steps);
        let rows: Vec<Vec<&str>> = out
            .lines()
            .skip_while(|l| !l.starts_with("FUNCTION"))
            .skip(1)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows[0], ["main", "app.py:1", "1", "1000", "700"]);
        assert_eq!(rows[1], ["load", "app.py:8", "1", "300", "300"]);
    }

    #[test]
    fn library_frames_are_recognised() {
        for lib in [
            "/usr/lib/python3.11/json/decoder.py",
            "/root/.pyenv/versions/3.12.1/lib/python3.12/os.py",
            "/usr/lib/python3/dist-packages/apt/cache.py",
            "/home/u/.venv/lib/python3.11/site-packages/requests/api.py",
            "<frozen importlib._bootstrap>",
        ] {
            assert!(is_library(lib), "{lib}");
        }
        for user in ["/home/u/app.py", "app/db.py", "/srv/python3/app.py"] {
            assert!(!is_library(user), "{user}");
        }
    }

    #[test]
    fn module_option_follows_a_package() {
        let f = FrameFilter {
            modules: vec!["requests".into()],
            ..FrameFilter::default()
        };
        assert!(f.shows("/x/site-packages/requests/api.py"));
        assert!(!f.shows("/x/site-packages/urllib3/poolmanager.py"));
    }
}
