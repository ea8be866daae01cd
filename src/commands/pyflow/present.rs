//! pyflow's presenter: the shown events as text lines (indented per thread, coloured on a
//! terminal) or JSON lines, and the --summary table at the end of the run.
//!
//! A text line is `DELTA(us) [PID] [TID]  -> function  file:line`: the columns before the
//! arrow have fixed widths, so arrows line up at every depth whatever the length of the paths,
//! and the location comes last, where a long path cannot push anything.

use std::borrow::Cow;
use std::io;
use std::path::Path;

use owo_colors::OwoColorize;

use super::flow::{Flow, FnKey, Shown, Totals};
use super::{FlowRecord, Following, Kind, PyEvent};
use crate::backend::EventSink;
use crate::commands::Notices;
use crate::config::{Format, OutputConfig, PyflowConfig};
use crate::event::{AggSnapshot, Event};
use crate::output::{text, LineWriter};
use crate::target::Target;

/// Colours that deep levels cycle through.
const DEPTH_COLOURS: [owo_colors::AnsiColors; 4] = [
    owo_colors::AnsiColors::Green,
    owo_colors::AnsiColors::Cyan,
    owo_colors::AnsiColors::Yellow,
    owo_colors::AnsiColors::Magenta,
];

pub struct FlowPresenter<'a, W: io::Write> {
    pub out: LineWriter<W>,
    output: OutputConfig,
    c: &'a PyflowConfig,
    flow: Flow<'a>,
    first_ns: Option<u64>,
    /// The processes whose first event was seen (`following` lines).
    announced: std::collections::HashSet<u32>,
    /// Lines carry the PID without a target, and when the target's process tree is followed
    /// (any process may fork). They always carry the TID: any Python program may start a
    /// thread. The columns are decided before the first line, so that the header is printed
    /// once and every line of the stream has the same columns.
    show_pid: bool,
    /// Print on stderr each process picked up besides the target (not with -q).
    announce: bool,
    header_done: bool,
    notices: Notices,
}

impl<'a, W: io::Write> FlowPresenter<'a, W> {
    pub fn new(out: LineWriter<W>, output: OutputConfig, c: &'a PyflowConfig, quiet: bool) -> Self {
        FlowPresenter {
            out,
            output,
            c,
            flow: Flow::new(&c.filter, c.summary),
            first_ns: None,
            announced: Default::default(),
            show_pid: c.target == Target::None || c.follow,
            announce: !quiet,
            header_done: false,
            notices: Notices::default(),
        }
    }

    /// The script leaves out generator creations and marks resumes itself (see `Flow`).
    pub fn creations_left_out(mut self, yes: bool) -> Self {
        if yes {
            self.flow.creations_left_out();
        }
        self
    }

    /// The first event of a process: announced, unless it is the target, which the user
    /// named (a -p pid, or with -c the first process to run Python).
    fn following(&mut self, p: Following) {
        let first = self.announced.is_empty();
        if !self.announced.insert(p.pid) {
            return;
        }
        let target = match self.c.target {
            Target::Pid(pid) => pid == p.pid,
            Target::Command(_) => first,
            Target::None => false,
        };
        if self.announced.contains(&p.ppid) {
            self.flow.fork(p.ppid, p.pid);
        }
        if self.announce && !target {
            let name = text::escape(&p.execname);
            let parent = if p.ppid > 0 {
                format!(" (child of {})", p.ppid)
            } else {
                String::new()
            };
            eprintln!("dtk: following {name} pid {}{parent}", p.pid);
        }
    }

    fn python_event(&mut self, e: PyEvent) -> io::Result<()> {
        self.first_ns.get_or_insert(e.ts_ns);
        for shown in self.flow.event(e) {
            self.print(&shown)?;
        }
        Ok(())
    }

    fn relative<'f>(&self, file: &'f str) -> &'f str {
        self.c
            .cwd
            .as_deref()
            .and_then(|cwd| Path::new(file).strip_prefix(cwd).ok())
            .and_then(|p| p.to_str())
            .unwrap_or(file)
    }

    fn print(&mut self, shown: &Shown) -> io::Result<()> {
        let e = &shown.event;
        let delta_ns = if self.c.elapsed {
            e.ts_ns.saturating_sub(self.first_ns.unwrap_or(e.ts_ns))
        } else {
            shown.delta_ns
        };
        let file = self.relative(&e.file).to_string();
        if self.output.format == Format::Json {
            return self.out.json(&serde_json::json!({
                "type": "flow",
                "ts_ns": e.ts_ns,
                "delta_us": delta_ns / 1000,
                "pid": e.pid,
                "tid": e.tid,
                "kind": e.kind,
                "depth": shown.depth,
                "file": file,
                "line": known_line(e.line),
                "function": e.function,
            }));
        }
        self.header()?;
        let prefix = self.prefix(
            &(delta_ns / 1000).to_string(),
            &e.pid.to_string(),
            &e.tid.to_string(),
        );
        if e.kind == Kind::Exec {
            // The marker of a new program's flow: its name, where the function would be.
            let program = text::escape(e.file.as_bytes());
            let line = format!("{prefix}=> exec {program}");
            if self.output.color {
                return self.out.line(&line.bold().to_string());
            }
            return self.out.line(&line);
        }
        // Traced names are escaped before any colour is added (output::text).
        let location = located(&text::escape(file.as_bytes()), e.line);
        let function = text::escape(e.function.as_bytes());
        let arrow = if e.kind.enters() { "->" } else { "<-" };
        // A return by an exception is marked `<- f !` (OUTPUT.md); a generator's yield and
        // resume `<- f (yield)` and `-> f (resume)`.
        let mark = match e.kind {
            Kind::Entry | Kind::Return => "",
            Kind::Unwind => " !",
            Kind::Yield => " (yield)",
            Kind::Resume => " (resume)",
            Kind::Exec => "",
        };
        let indent = "  ".repeat(shown.depth);
        let line = if self.output.color {
            let colour = DEPTH_COLOURS[shown.depth % DEPTH_COLOURS.len()];
            let (arrow, mark) = match e.kind {
                Kind::Entry => (arrow.green().to_string(), String::new()),
                Kind::Return => (arrow.blue().to_string(), String::new()),
                Kind::Unwind => (arrow.red().to_string(), mark.red().to_string()),
                Kind::Resume => (arrow.green().to_string(), mark.cyan().to_string()),
                Kind::Yield | Kind::Exec => (arrow.blue().to_string(), mark.cyan().to_string()),
            };
            format!(
                "{prefix}{indent}{arrow} {}{mark}  {}",
                function.color(colour),
                location.dimmed()
            )
        } else {
            format!("{prefix}{indent}{arrow} {function}{mark}  {location}")
        };
        self.out.line(&line)
    }

    fn header(&mut self) -> io::Result<()> {
        if self.header_done {
            return Ok(());
        }
        self.header_done = true;
        if !self.output.header {
            return Ok(());
        }
        let delta = if self.c.elapsed {
            "TIME(us)"
        } else {
            "DELTA(us)"
        };
        let head = self.prefix(delta, "PID", "TID");
        self.out.line(&format!("{head}FUNCTION  FILE:LINE"))
    }

    fn prefix(&self, delta: &str, pid: &str, tid: &str) -> String {
        let mut s = format!("{delta:>11}  ");
        if self.show_pid {
            s.push_str(&format!("{pid:>7}  "));
        }
        s.push_str(&format!("{tid:>7}  "));
        s
    }

    fn finish(&mut self) -> io::Result<()> {
        for shown in self.flow.finish() {
            self.print(&shown)?;
        }
        if self.c.summary {
            self.summary()?;
        }
        Ok(())
    }

    fn summary(&mut self) -> io::Result<()> {
        let mut rows: Vec<(FnKey, Totals)> =
            self.flow.totals().map(|(k, t)| (k.clone(), *t)).collect();
        rows.sort_by(|a, b| b.1.excl_ns.cmp(&a.1.excl_ns).then_with(|| a.0.cmp(&b.0)));
        rows.truncate(self.c.top);
        if self.output.format == Format::Json {
            for (k, t) in &rows {
                self.out.json(&serde_json::json!({
                    "type": "summary",
                    "function": k.function, "file": self.relative(&k.file), "line": known_line(k.def_line),
                    "calls": t.calls, "incl_us": t.incl_ns / 1000, "excl_us": t.excl_ns / 1000,
                }))?;
            }
            return Ok(());
        }
        let located: Vec<(Cow<'_, str>, String, &Totals)> = rows
            .iter()
            .map(|(k, t)| {
                let file = text::escape(self.relative(&k.file).as_bytes());
                let location = located(&file, k.def_line);
                (text::escape(k.function.as_bytes()), location, t)
            })
            .collect();
        // Printed once, at the end: the columns are as wide as the longest name and location.
        let fw = located.iter().map(|r| r.0.len()).max().unwrap_or(0).max(8);
        let lw = located.iter().map(|r| r.1.len()).max().unwrap_or(0).max(9);
        // The summary's header is printed even with --no-header, which drops the flow's: the
        // table cannot be read without it, and scripts read the summary as JSON.
        self.out.line(&format!(
            "\n{:<fw$}  {:<lw$}  {:>8}  {:>10}  {:>10}",
            "FUNCTION", "FILE:LINE", "CALLS", "INCL(us)", "EXCL(us)"
        ))?;
        for (function, location, t) in located {
            self.out.line(&format!(
                "{function:<fw$}  {location:<lw$}  {:>8}  {:>10}  {:>10}",
                t.calls,
                t.incl_ns / 1000,
                t.excl_ns / 1000
            ))?;
        }
        Ok(())
    }
}

impl<W: io::Write> EventSink for FlowPresenter<'_, W> {
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn event(&mut self, event: Event) -> io::Result<()> {
        let Some(event) = self.notices.take(event) else {
            return Ok(());
        };
        match event {
            Event::Printf(p) => match FlowRecord::decode(&p)? {
                FlowRecord::Following(f) => {
                    self.following(f);
                    Ok(())
                }
                FlowRecord::Event(e) => self.python_event(e),
            },
            Event::FinalAggs(aggs) => {
                too_deep_notice(&aggs);
                Ok(())
            }
            Event::Done => {
                self.finish()?;
                for module in self.flow.unmatched_modules() {
                    eprintln!(
                        "dtk: warning: --module {module} matched nothing: no traced call was in \
                         a package or module of that name"
                    );
                }
                self.notices.flush();
                self.out.flush()
            }
            _ => Ok(()),
        }
    }
}

/// A line number, or None where CPython gave none and the source did not tell (3.15 enters
/// generated code such as `__annotate__` at line -1).
fn known_line(line: i64) -> Option<i64> {
    (line >= 0).then_some(line)
}

/// `file:line`, or the file alone where the line is not known.
fn located(file: &str, line: i64) -> String {
    match known_line(line) {
        Some(line) => format!("{file}:{line}"),
        None => file.to_string(),
    }
}

/// pyflow-trampoline.d counts in @too_deep the calls nested deeper than it follows (its
/// MAX_DEPTH: see `python::Layout::max_depth`). Nothing is lost silently.
fn too_deep_notice(aggs: &[AggSnapshot]) {
    let calls: i64 = aggs
        .iter()
        .filter(|a| a.name == "too_deep")
        .flat_map(|a| &a.entries)
        .filter_map(|e| e.value.scalar())
        .sum();
    if calls > 0 {
        eprintln!(
            "dtk: {calls} calls nested deeper than pyflow follows were not shown (100,000 \
             frames where dtk finds the evaluator's return instructions, else 64: the \
             kernel's limit on nested uretprobes)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FrameFilter;
    use crate::event::{Origin, Printf, ProbeDesc, Value};
    use std::sync::Arc;

    fn config(filter: FrameFilter, summary: bool) -> PyflowConfig {
        PyflowConfig {
            target: Target::Pid(100),
            follow: false,
            filter,
            elapsed: false,
            summary,
            top: 10,
            activate: false,
            cwd: Some("/home/u/proj".into()),
        }
    }

    fn output(format: Format) -> OutputConfig {
        OutputConfig {
            color: false,
            format,
            header: true,
            line_flush: true,
        }
    }

    /// (µs, tid, kind as the scripts print it ("->", "<-", "<!", "<y", "y>"), file, line,
    /// function)
    type Step<'a> = (u64, u32, &'a str, &'a str, i64, &'a str);

    fn printf((us, tid, arrow, file, line, function): Step) -> Event {
        Event::Printf(Printf {
            origin: Origin {
                probe: Arc::new(ProbeDesc::default()),
                cpu: 0,
                ts_ns: us * 1000,
            },
            text: format!("{} 100 {tid} {arrow} {file} {line} {function}\n", us * 1000).into(),
            traced: Vec::new(),
            args: vec![
                Value::Int((us * 1000) as i64),
                Value::Int(100),
                Value::Int(tid.into()),
                Value::Str(arrow.into()),
                Value::Str(file.into()),
                Value::Int(line),
                Value::Str(function.into()),
            ],
            printa: None,
        })
    }

    fn run(c: &PyflowConfig, format: Format, steps: &[Step]) -> String {
        let mut p = FlowPresenter::new(LineWriter::new(Vec::new(), true), output(format), c, false);
        for &step in steps {
            EventSink::event(&mut p, printf(step)).unwrap();
        }
        EventSink::event(&mut p, Event::Done).unwrap();
        String::from_utf8(p.out.into_inner().unwrap()).unwrap()
    }

    fn flow(c: &PyflowConfig, steps: &[Step]) -> String {
        run(c, Format::Text, steps)
    }

    /// The (arrow, function, line) of each JSON line.
    fn calls(steps: &[Step]) -> Vec<(String, String, i64)> {
        run(&config(FrameFilter::default(), false), Format::Json, steps)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let arrow = if v["kind"] == "entry" { "->" } else { "<-" };
                let function = v["function"].as_str().unwrap().to_string();
                (arrow.to_string(), function, v["line"].as_i64().unwrap())
            })
            .collect()
    }

    /// A line that is not what the scripts print (the line number as a string, or a kind
    /// the scripts never print) stops the run with an error that says so, not raw text.
    #[test]
    fn a_line_unlike_the_scripts_is_an_error() {
        let c = config(FrameFilter::default(), false);
        let mut p = FlowPresenter::new(
            LineWriter::new(Vec::new(), true),
            output(Format::Text),
            &c,
            false,
        );
        let Event::Printf(mut line) = printf((10, 1, "->", APP, 1, "main")) else {
            unreachable!()
        };
        line.args[5] = Value::Str("1".into());
        let err = EventSink::event(&mut p, Event::Printf(line.clone())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dtk and its script disagree on a printf line of pyflow.d or pyflow-trampoline.d: \
             value 6 (line) is a string, where dtk reads an integer"
        );
        line.args[5] = Value::Int(1);
        line.args[3] = Value::Str("=>".into());
        let err = EventSink::event(&mut p, Event::Printf(line)).unwrap_err();
        assert!(
            err.to_string().ends_with("\"=>\" is not a kind of event"),
            "{err}"
        );
        EventSink::event(&mut p, Event::Done).unwrap();
        assert_eq!(p.out.into_inner().unwrap(), b"");
    }

    const APP: &str = "/home/u/proj/app.py";
    const JSON: &str = "/usr/lib/python3.11/json/__init__.py";
    const LONG: &str = "/home/u/proj/a/much/longer/path/to/module.py";

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
        let expected = "  DELTA(us)      TID  FUNCTION  FILE:LINE\n\
                        \x20         0        1  -> main  app.py:1\n\
                        \x20        10        1    -> hook  app.py:9\n\
                        \x20        10        1    <- hook  app.py:10\n\
                        \x20        20        1  <- main  app.py:5\n";
        assert_eq!(out, expected);
        let all = FrameFilter {
            all: true,
            ..FrameFilter::default()
        };
        let out = flow(&config(all, false), &steps);
        assert!(out.contains("  -> loads  "), "{out}");
        assert!(out.contains("      -> hook  "), "{out}");
    }

    #[test]
    fn arrows_line_up_whatever_the_length_of_the_path() {
        let steps = [
            (10, 1, "->", APP, 1, "main"),
            (12, 1, "->", LONG, 3, "deep"),
            (14, 1, "<-", LONG, 4, "deep"),
            (16, 1, "<-", APP, 2, "main"),
        ];
        let out = flow(&config(FrameFilter::default(), false), &steps);
        let arrows: Vec<usize> = out
            .lines()
            .skip(1)
            .map(|l| l.find(['-', '<']).unwrap())
            .collect();
        assert_eq!(arrows, [22, 24, 24, 22], "{out}");
        assert!(
            out.contains("-> deep  a/much/longer/path/to/module.py:3\n"),
            "{out}"
        );
    }

    /// The TID column is there from the first line, and the header is printed once: a
    /// thread that starts mid-stream changes neither.
    #[test]
    fn threads_have_their_own_depth_and_a_tid_column_from_the_start() {
        let steps = [
            (10, 1, "->", APP, 1, "main"),
            (12, 2, "->", APP, 20, "worker"),
            (15, 1, "<-", APP, 3, "main"),
            (19, 2, "<-", APP, 22, "worker"),
        ];
        let out = flow(&config(FrameFilter::default(), false), &steps);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            [
                "  DELTA(us)      TID  FUNCTION  FILE:LINE",
                "          0        1  -> main  app.py:1",
                "          0        2  -> worker  app.py:20",
                "          5        1  <- main  app.py:3",
                "          7        2  <- worker  app.py:22",
            ]
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

    /// Time in hidden (library) frames is the exclusive time of the shown function that
    /// called them; a shown callback inside the library is still its own.
    #[test]
    fn summary_gives_hidden_time_to_the_shown_caller() {
        let steps = [
            (0, 1, "->", APP, 1, "main"),
            (100, 1, "->", JSON, 299, "loads"),
            (200, 1, "->", APP, 9, "hook"),
            (250, 1, "<-", APP, 10, "hook"),
            (700, 1, "<-", JSON, 346, "loads"),
            (1000, 1, "<-", APP, 3, "main"),
        ];
        let out = flow(&config(FrameFilter::default(), true), &steps);
        let rows: Vec<Vec<&str>> = out
            .lines()
            .skip_while(|l| !l.starts_with("FUNCTION"))
            .skip(1)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows[0], ["main", "app.py:1", "1", "1000", "950"], "{out}");
        assert_eq!(rows[1], ["hook", "app.py:9", "1", "50", "50"], "{out}");
        assert_eq!(rows.len(), 2, "{out}");
    }

    /// A followed tree may fork at any moment, so its lines carry the PID from the first
    /// line on, and the header is printed once.
    #[test]
    fn a_followed_tree_has_a_pid_column_from_the_start() {
        let mut c = config(FrameFilter::default(), false);
        c.follow = true;
        let out = flow(
            &c,
            &[(0, 1, "->", APP, 1, "main"), (5, 1, "<-", APP, 2, "main")],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["DELTA(us)", "PID", "TID", "FUNCTION", "FILE:LINE"],
            "{out}"
        );
        assert_eq!(out.matches("DELTA(us)").count(), 1, "{out}");
        assert_eq!(lines[1].split_whitespace().nth(1), Some("100"), "{out}");
    }

    /// --no-header drops the flow's header, not the summary's.
    #[test]
    fn no_header_keeps_the_summary_header() {
        let c = config(FrameFilter::default(), true);
        let mut o = output(Format::Text);
        o.header = false;
        let mut p = FlowPresenter::new(LineWriter::new(Vec::new(), true), o, &c, false);
        for step in [(0, 1, "->", APP, 1, "main"), (5, 1, "<-", APP, 2, "main")] {
            EventSink::event(&mut p, printf(step)).unwrap();
        }
        EventSink::event(&mut p, Event::Done).unwrap();
        let out = String::from_utf8(p.out.into_inner().unwrap()).unwrap();
        assert!(!out.contains("DELTA(us)"), "{out}");
        assert!(out.contains("\nFUNCTION  FILE:LINE"), "{out}");
    }

    /// CPython 3.15 enters generated code (`__annotate__`) at line -1, and no statement of
    /// the file defines it: it is shown at the line it returns at, or, when it never returns,
    /// with no line rather than -1, in text and in JSON.
    #[test]
    fn a_line_cpython_does_not_give_is_learnt_at_the_return_or_left_out() {
        let returned = [
            (0, 1, "->", APP, -1, "__annotate__"),
            (5, 1, "<-", APP, 2, "__annotate__"),
        ];
        let out = flow(&config(FrameFilter::default(), false), &returned);
        assert!(out.contains("-> __annotate__  app.py:2\n"), "{out}");
        let unreturned = [(0, 1, "->", APP, -1, "__annotate__")];
        let out = flow(&config(FrameFilter::default(), false), &unreturned);
        assert!(out.contains("-> __annotate__  app.py\n"), "{out}");
        let json = run(
            &config(FrameFilter::default(), false),
            Format::Json,
            &unreturned,
        );
        let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
        assert_eq!(first["line"], serde_json::Value::Null, "{json}");
    }

    /// CPython 3.15's events for `sum(square(x) for x in range(2))` (measured with `dtk run`):
    /// the generator expression is made at no line and resumed at its line, every time.
    #[test]
    fn every_resume_of_a_3_15_generator_expression_is_shown() {
        let steps = [
            (0, 1, "->", APP, 3, "main"),
            (1, 1, "->", APP, -1, "<genexpr>"),
            (2, 1, "->", APP, 4, "<genexpr>"),
            (3, 1, "->", APP, 1, "square"),
            (4, 1, "<-", APP, 2, "square"),
            (5, 1, "<-", APP, 4, "<genexpr>"),
            (6, 1, "->", APP, 4, "<genexpr>"),
            (7, 1, "->", APP, 1, "square"),
            (8, 1, "<-", APP, 2, "square"),
            (9, 1, "<-", APP, 4, "<genexpr>"),
            (10, 1, "->", APP, 4, "<genexpr>"),
            (11, 1, "<-", APP, 4, "<genexpr>"),
            (12, 1, "<-", APP, 4, "main"),
        ];
        let seen: Vec<String> = run(&config(FrameFilter::default(), false), Format::Json, &steps)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                format!("{} {} {}", v["depth"], v["kind"], v["function"])
            })
            .collect();
        let expected = [
            "0 \"entry\" \"main\"",
            "1 \"entry\" \"<genexpr>\"",
            "2 \"entry\" \"square\"",
            "2 \"return\" \"square\"",
            "1 \"return\" \"<genexpr>\"",
            "1 \"entry\" \"<genexpr>\"",
            "2 \"entry\" \"square\"",
            "2 \"return\" \"square\"",
            "1 \"return\" \"<genexpr>\"",
            "1 \"entry\" \"<genexpr>\"",
            "1 \"return\" \"<genexpr>\"",
            "0 \"return\" \"main\"",
        ];
        assert_eq!(seen, expected);
    }

    /// An exec of a followed process ends its flow and starts a new one at depth 0, after a
    /// marker line; an exec of a process the flow never saw is not shown.
    #[test]
    fn an_exec_starts_a_new_flow_at_depth_0() {
        let steps = [
            (0, 1, "x>", "python3.11", 0, ""),
            (10, 1, "->", APP, 1, "main"),
            (12, 1, "->", APP, 5, "replace"),
            (20, 1, "x>", "python3.11", 0, ""),
            (30, 1, "->", APP, 1, "<module>"),
            (31, 1, "<-", APP, 3, "<module>"),
        ];
        let out = flow(&config(FrameFilter::default(), false), &steps);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            [
                "  DELTA(us)      TID  FUNCTION  FILE:LINE",
                "          0        1  -> main  app.py:1",
                "          2        1    -> replace  app.py:5",
                "          8        1  => exec python3.11",
                "         10        1  -> <module>  app.py:1",
                "          1        1  <- <module>  app.py:3",
            ]
        );
    }

    /// CPython 3.11 and 3.9: a resume enters at the line it yielded at; `<module>` at 0.
    #[test]
    fn resumes_show_the_def_line_and_add_to_one_summary_row() {
        let steps = [
            (0, 1, "->", APP, 0, "<module>"),
            (10, 1, "->", APP, 1, "ticks"),
            (20, 1, "<-", APP, 3, "ticks"),
            (30, 1, "->", APP, 3, "ticks"),
            (40, 1, "<-", APP, 2, "ticks"),
            (50, 1, "<-", APP, 9, "<module>"),
        ];
        let lines: Vec<(String, String, i64)> = calls(&steps);
        let entry_lines: Vec<i64> = lines.iter().filter(|c| c.0 == "->").map(|c| c.2).collect();
        assert_eq!(entry_lines, [1, 1, 1]);
        let out = flow(&config(FrameFilter::default(), true), &steps);
        let ticks: Vec<&str> = out.lines().filter(|l| l.starts_with("ticks ")).collect();
        assert_eq!(ticks.len(), 1, "{out}");
        assert_eq!(ticks[0].split_whitespace().nth(2), Some("2"), "{out}");
    }

    /// 3.11 and the trampoline path tell yields and resumes apart: they are marked, a resume
    /// shows the def line, and --summary counts the calls, not the resumes.
    #[test]
    fn yields_and_resumes_are_marked_and_resumes_are_no_calls() {
        let steps = [
            (0, 1, "->", APP, 1, "main"),
            (10, 1, "->", APP, 4, "ticks"),
            (20, 1, "<y", APP, 5, "ticks"),
            (30, 1, "y>", APP, 5, "ticks"),
            (40, 1, "<y", APP, 6, "ticks"),
            (50, 1, "y>", APP, 6, "ticks"),
            (60, 1, "<!", APP, 6, "ticks"),
            (70, 1, "<-", APP, 2, "main"),
        ];
        let out = flow(&config(FrameFilter::default(), false), &steps);
        let lines: Vec<&str> = out
            .lines()
            .skip(1)
            .map(|l| l.split_once("  1  ").unwrap().1)
            .collect();
        assert_eq!(
            lines,
            [
                "-> main  app.py:1",
                "  -> ticks  app.py:4",
                "  <- ticks (yield)  app.py:5",
                "  -> ticks (resume)  app.py:4",
                "  <- ticks (yield)  app.py:6",
                "  -> ticks (resume)  app.py:4",
                "  <- ticks !  app.py:6",
                "<- main  app.py:2",
            ]
        );
        let json = run(&config(FrameFilter::default(), false), Format::Json, &steps);
        let kinds: Vec<String> = json
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"].to_string())
            .collect();
        assert_eq!(
            kinds,
            [
                "\"entry\"",
                "\"entry\"",
                "\"yield\"",
                "\"resume\"",
                "\"yield\"",
                "\"resume\"",
                "\"unwind\"",
                "\"return\""
            ]
        );
        let out = flow(&config(FrameFilter::default(), true), &steps);
        let ticks: Vec<&str> = out.lines().filter(|l| l.starts_with("ticks ")).collect();
        assert_eq!(ticks.len(), 1, "{out}");
        assert_eq!(
            ticks[0].split_whitespace().nth(2),
            Some("1"),
            "one call: {out}"
        );
    }

    /// Before 3.15, a generator whose first statement is `yield from` itself enters twice at
    /// the same line: two resumes, both shown.
    #[test]
    fn a_generator_resuming_itself_at_once_is_not_a_creation_before_3_15() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("walk.py");
        std::fs::write(
            &file,
            "def walk(n):\n    yield from walk(n - 1) if n else [n]\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let steps = [
            (1, 1, "->", f, 1, "walk"),
            (2, 1, "->", f, 1, "walk"),
            (3, 1, "<-", f, 2, "walk"),
            (4, 1, "<-", f, 2, "walk"),
        ];
        let seen: Vec<(String, String, i64)> = calls(&steps);
        assert_eq!(seen.len(), 4, "{seen:?}");
    }

    /// What CPython 3.15.2 fires for examples like tests/pyflow/generators.py (measured with
    /// `dtk run`): each call of a generator function enters once more and never returns.
    #[test]
    fn generator_creations_of_3_15_are_not_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gens.py");
        std::fs::write(
            &file,
            "def gen(n):\n    for i in range(n):\n        yield i\n\n\n\
             def helper():\n    return 1\n\n\n\
             def consume(it):\n    return sum(it)\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let steps = [
            (
                0,
                1,
                "->",
                "<frozen importlib._bootstrap>",
                -1,
                "ModuleSpec",
            ),
            (
                1,
                1,
                "<-",
                "<frozen importlib._bootstrap>",
                380,
                "ModuleSpec",
            ),
            (1, 1, "->", f, 10, "main"),
            // g = gen(1); helper(); for x in g: ...
            (2, 1, "->", f, 1, "gen"),
            (3, 1, "->", f, 6, "helper"),
            (4, 1, "<-", f, 7, "helper"),
            (5, 1, "->", f, 1, "gen"),
            (6, 1, "<-", f, 3, "gen"),
            (7, 1, "->", f, 3, "gen"),
            (8, 1, "<-", f, 2, "gen"),
            // consume(gen(2))
            (9, 1, "->", f, 1, "gen"),
            (10, 1, "->", f, 10, "consume"),
            (11, 1, "->", f, 1, "gen"),
            (12, 1, "<-", f, 3, "gen"),
            (13, 1, "->", f, 3, "gen"),
            (14, 1, "<-", f, 2, "gen"),
            (15, 1, "<-", f, 11, "consume"),
            // list(x for x in y)
            (16, 1, "->", f, -1, "<genexpr>"),
            (17, 1, "->", f, 20, "<genexpr>"),
            (18, 1, "<-", f, 20, "<genexpr>"),
            // h = gen(1), never started
            (19, 1, "->", f, 1, "gen"),
            (20, 1, "<-", f, 22, "main"),
        ];
        let seen: Vec<String> = calls(&steps)
            .into_iter()
            .map(|(arrow, function, line)| format!("{arrow} {function}:{line}"))
            .collect();
        let expected = [
            "-> main:10",
            "-> helper:6",
            "<- helper:7",
            "-> gen:1",
            "<- gen:3",
            "-> gen:1",
            "<- gen:2",
            "-> consume:10",
            "-> gen:1",
            "<- gen:3",
            "-> gen:1",
            "<- gen:2",
            "<- consume:11",
            "-> <genexpr>:20",
            "<- <genexpr>:20",
            "<- main:22",
        ];
        assert_eq!(seen, expected);
    }
}
