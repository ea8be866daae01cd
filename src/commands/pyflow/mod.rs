//! `dtk pyflow`: Python call flow, indented per thread, with per-line time deltas, and the
//! standard library and installed packages hidden unless asked for.
//!
//! pyflow.d reports every entry and return; `flow` works out, per thread, which frames are
//! shown, their depth (which counts only shown frames), the deltas and the summary, and makes
//! every CPython version read like sys.setprofile; `present` prints them; `filter` says which
//! files are library code; `source` tells generator functions from the source.

mod filter;
mod flow;
mod present;
mod source;

use anyhow::Result;
use serde::Serialize;

use super::trace;
use crate::backend::Target;
use crate::config::{Config, PyflowConfig};
use crate::event::Printf;
use crate::output;
use crate::script::{bundled, Script, TargetMacro};

use present::FlowPresenter;

/// The script `dtk pyflow` runs for this configuration.
pub fn script(c: &PyflowConfig) -> Result<Script> {
    let target = match c.target {
        Target::Pid(pid) => TargetMacro::Pid(pid),
        Target::Command(_) => TargetMacro::Keep,
        Target::None => TargetMacro::Any,
    };
    Ok(bundled("pyflow")
        .expect("pyflow.d is bundled")
        .instantiate(&[], target)?)
}

pub fn run(config: &Config, c: &PyflowConfig) -> Result<()> {
    let mut presenter =
        FlowPresenter::new(output::stdout(config.output.line_flush), config.output, c);
    trace(config, script(c)?, &c.target, None, &mut presenter)?;
    presenter.out.flush()?;
    Ok(())
}

/// Entry or return, as pyflow.d reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Entry,
    Return,
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
