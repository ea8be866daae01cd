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
use crate::event::{Event, Printf, ProbeDesc, Value};
use crate::output::{self, json, text, LineWriter};
use crate::script::Script;
use crate::target::Target;

/// Returns the status the program gave exit(), as dtrace(1) exits with it, else 0 (also when
/// a -c command ends the run: its status is reported, not returned, as by dtrace(1)).
pub fn run(config: &Config, c: &RunConfig) -> Result<u8> {
    let script = match &c.source {
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
    let stop = Stop::on_signals().context("installing the SIGINT/SIGTERM handlers")?;
    let mut presenter = RunPresenter {
        out: output::stdout(config.output.line_flush),
        notices: Notices::default(),
        quiet: config.quiet,
        json: config.output.format == Format::Json,
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
            Event::Record(r) => {
                let values: Vec<String> = r.values.iter().map(format_value).collect();
                self.out.line(&format!(
                    "{:>3} {:>32}  {}",
                    r.origin.cpu,
                    format!(
                        "{}:{}",
                        text::escape(r.origin.probe.function.as_bytes()),
                        text::escape(r.origin.probe.name.as_bytes())
                    ),
                    values.join(" ")
                ))
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
