//! `dtk run`: any D script or one-liner, through the same consumer as the bundled commands.
//! Output follows dtrace(1): printf text as formatted, trace() records after their probe,
//! aggregations in dtrace's layout.

use std::fs;
use std::io;
use std::sync::Arc;

use anyhow::{Context, Result};

use super::Notices;
use crate::aggregation_text;
use crate::backend::{self, EventSink, Job, Stop};
use crate::config::{Config, Format, ProgramSource, RunConfig};
use crate::cpp;
use crate::event::{Event, Origin, Printf, ProbeDesc, TraceFormat, Value};
use crate::output::{self, json, text, LineWriter};
use crate::script::Script;
use crate::target::Target;

/// Returns the status the program gave exit(), as dtrace(1) exits with it, else 0 (also when
/// a -c command ends the run: its status is reported, not returned, as by dtrace(1)).
pub fn run(config: &Config, c: &RunConfig) -> Result<u8> {
    let mut script = match &c.source {
        ProgramSource::File(path) => Script {
            name: path.display().to_string(),
            text: fs::read_to_string(path)
                .with_context(|| format!("reading the D script {}", path.display()))?,
        },
        ProgramSource::Inline(text) => Script {
            name: "-n".into(),
            text: text.clone(),
        },
    };
    if let Some(options) = &c.cpp {
        script.text = cpp::preprocess(&script.name, &script.text, options)?;
    }
    if let Target::Pid(pid) = c.target {
        backend::check_pid(pid)?;
    }
    let job = Job {
        script,
        args: c.args.clone(),
        target: c.target.clone(),
        options: c.options.clone(),
        allow_empty: c.zdefs,
        dump_bpf: c.dump_bpf,
        scope: Default::default(),
    };
    let mut backend = backend::select(config.backend)?;
    if c.list {
        return list(config, backend.list(&job)?).map(|()| 0);
    }
    if c.compile_only {
        // -e: compiling the program and matching its probes is all dtrace(1) does too.
        backend.list(&job)?;
        return Ok(0);
    }
    let stop = Stop::on_signals().context("installing the SIGINT/SIGTERM handlers")?;
    let mut presenter = RunPresenter {
        out: output::stdout(config.output.line_flush),
        notices: Notices::dtrace_wording(c.options.iter().any(|(name, _)| name == "droptags")),
        quiet: config.quiet,
        json: config.output.format == Format::Json,
        header: config.output.header,
        probe_columns: c.probe_columns,
        in_firing: false,
    };
    let end = backend.run(&job, &stop, &mut presenter)?;
    presenter.out.flush()?;
    // The low 8 bits, as exit(2) keeps them: exit(-1) is 255.
    Ok(end.exit.map_or(0, |status| status as u8))
}

/// `dtk run -l`: one line per probe, numbered, as `dtrace -l` lists them.
fn list(config: &Config, probes: Vec<Arc<ProbeDesc>>) -> Result<()> {
    let mut out = output::stdout(config.output.line_flush);
    if config.output.format == Format::Json {
        for (id, p) in (1..).zip(&probes) {
            out.json(&serde_json::json!({
                "type": "probe", "id": id, "provider": p.provider, "module": p.module,
                "function": p.function, "name": p.name,
            }))?;
        }
    } else {
        if config.output.header {
            out.line(&ProbeDesc::listing_header())?;
        }
        for (id, p) in (1..).zip(&probes) {
            out.line(&p.listing_line(id))?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Prints events as dtrace(1) does, or as JSON lines.
struct RunPresenter<W: io::Write> {
    out: LineWriter<W>,
    notices: Notices,
    quiet: bool,
    json: bool,
    /// The `CPU ID FUNCTION:NAME` heading is still to print (before the first firing's line).
    header: bool,
    /// Per-firing lines show the CPU and ID columns.
    probe_columns: bool,
    /// Between FiringStart and FiringEnd: trace() values take dtrace's padded columns.
    in_firing: bool,
}

impl<W: io::Write> RunPresenter<W> {
    /// The JSON line of an event that prints something; false for the others.
    fn json_event(&mut self, event: &Event) -> io::Result<bool> {
        let line = match event {
            Event::Printf(p) => printf_json(p),
            Event::Record(r) => {
                let mut fields = json::origin_fields(&r.origin);
                fields.insert("values".into(), serde_json::json!(r.values));
                typed("trace", fields)
            }
            Event::Agg(snapshot) => json::aggregation(snapshot, false),
            Event::FinalAggs(snapshots) => {
                for s in snapshots.iter().filter(|s| !s.entries.is_empty()) {
                    self.out.json(&json::aggregation(s, true))?;
                }
                return Ok(true);
            }
            // Every JSON line carries its probe already.
            Event::FiringStart { .. } | Event::FiringEnd => return Ok(true),
            _ => return Ok(false),
        };
        self.out.json(&line)?;
        Ok(true)
    }
}

/// `{"type": kind, …fields}`.
fn typed(kind: &str, fields: serde_json::Map<String, serde_json::Value>) -> serde_json::Value {
    let mut line = serde_json::Map::new();
    line.insert("type".into(), kind.into());
    line.extend(fields);
    serde_json::Value::Object(line)
}

/// A printf line (`text` and its `args`), or a formatted printa row (`text`, the
/// `aggregations` named, the row's `keys` and each aggregation's value in `values`).
fn printf_json(p: &Printf) -> serde_json::Value {
    let mut fields = json::origin_fields(&p.origin);
    fields.insert("text".into(), serde_json::json!(p.text));
    let Some(row) = &p.printa else {
        fields.insert("args".into(), serde_json::json!(p.args));
        return typed("printf", fields);
    };
    let values: Vec<serde_json::Value> = row
        .values
        .iter()
        .map(|v| serde_json::Value::Object(json::value_fields(v)))
        .collect();
    fields.insert("aggregations".into(), serde_json::json!(row.aggregations));
    fields.insert("keys".into(), serde_json::json!(row.keys));
    fields.insert("values".into(), values.into());
    typed("printa", fields)
}

impl<W: io::Write> EventSink for RunPresenter<W> {
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn event(&mut self, event: Event) -> io::Result<()> {
        let Some(event) = self.notices.take(event) else {
            return Ok(());
        };
        if self.json && self.json_event(&event)? {
            return Ok(());
        }
        match event {
            Event::Printf(p) => self.out.text(&p.display()),
            Event::FiringStart { origin, probe_id } => {
                self.in_firing = true;
                self.firing_start(&origin, probe_id)
            }
            Event::FiringEnd => {
                self.in_firing = false;
                self.out.text("\n")
            }
            Event::Record(r) => {
                let text: String = (0..r.values.len())
                    .map(|i| trace_text(&r.values[i], r.formats.get(i), self.in_firing))
                    .collect();
                self.out.text(&text)
            }
            Event::Agg(snapshot) => self.out.text(&aggregation_text::render(&snapshot)),
            Event::FinalAggs(snapshots) => {
                self.out.text(&aggregation_text::render_final(&snapshots))
            }
            Event::TargetExited(exit) => {
                if !self.quiet {
                    eprintln!("dtk: {exit}");
                }
                Ok(())
            }
            Event::Done => {
                self.notices.flush();
                self.out.flush()
            }
            Event::Drop { .. } | Event::Error { .. } => Ok(()),
        }
    }
}

impl<W: io::Write> RunPresenter<W> {
    /// The heading before the first firing, then the firing's probe, as dtrace(1) prints them
    /// (`%3d %6d %32s `, or only `%32s ` without the CPU and ID columns).
    fn firing_start(&mut self, origin: &Origin, probe_id: u32) -> io::Result<()> {
        let name = format!(
            "{}:{}",
            text::escape(origin.probe.function.as_bytes()),
            text::escape(origin.probe.name.as_bytes())
        );
        let mut out = String::new();
        if std::mem::take(&mut self.header) {
            out = match self.probe_columns {
                true => format!("{:>3} {:>6} {:>32}\n", "CPU", "ID", "FUNCTION:NAME"),
                false => format!("{:>32}\n", "FUNCTION:NAME"),
            };
        }
        if self.probe_columns {
            out.push_str(&format!("{:>3} {:>6} ", origin.cpu, probe_id));
        }
        out.push_str(&format!("{name:>32} "));
        self.out.text(&out)
    }
}

/// One value of a trace() record as dtrace(1) prints it: after a probe's line, integers
/// right-aligned in a width that depends on their size and strings left-aligned in 33
/// columns; in a quiet program, the bare value. The program's own strings are shown as
/// written, the traced system's escaped.
fn trace_text(v: &Value, format: Option<&TraceFormat>, padded: bool) -> String {
    let shown = match (v, format) {
        (Value::Str(s), Some(TraceFormat::ProgramText)) => s.to_str_lossy().into_owned(),
        _ => format_value(v),
    };
    if !padded {
        return shown;
    }
    let size = match format {
        Some(TraceFormat::Int(size)) => *size,
        _ => 8,
    };
    match (v, size) {
        (Value::Int(_) | Value::UInt(_), 1) => format!(" {shown:>3}"),
        (Value::Int(_) | Value::UInt(_), 2) => format!(" {shown:>5}"),
        (Value::Int(_) | Value::UInt(_), 4) => format!(" {shown:>10}"),
        (Value::Int(_), _) => format!(" {shown:>19}"),
        (Value::UInt(_), _) => format!(" {shown:>20}"),
        (Value::Str(_), _) => format!("  {shown:<33}"),
        _ => format!("\n{shown}\n"),
    }
}

/// A traced value as trace() shows it, strings and symbols escaped (output::text).
fn format_value(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Str(s) => s.to_string(),
        // As dtrace prints a stack: from the next line, one indented frame a line.
        Value::Stack(frames) => {
            frames
                .iter()
                .map(|f| format!("\n{:14}{}", "", text::escape(f.as_bytes())))
                .collect::<String>()
                + "\n"
        }
        Value::Bytes(b) => b
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}
