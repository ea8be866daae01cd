//! The subcommands. Each chooses a bundled script and its parameters (or reads the user's
//! program), hands it to the selected back end, and presents the events it gets back.

mod contract;
mod generate;
mod list;
pub(crate) mod opens;
pub(crate) mod pyflow;
mod run;
pub(crate) mod syscalls;

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::backend::{self, Backend, EventSink, Job, RunEnd, Scope, Stop};
use crate::config::{CommandConfig, Config, ShowConfig};
use crate::event::{DropKind, Event, TargetStatus};
use crate::script::{Script, Tree};
use crate::target::Target;

/// Runs the configured command; returns dtk's exit status.
pub fn dispatch(config: Config) -> Result<u8> {
    match &config.command {
        CommandConfig::Pyflow(c) => pyflow::run(&config, c),
        CommandConfig::Opens(c) => opens::run(&config, c),
        CommandConfig::Syscalls(c) => syscalls::run(&config, c),
        CommandConfig::Run(c) => run::run(&config, c),
        CommandConfig::List => list::run(&config).map(|()| 0),
        CommandConfig::Show(show) => {
            let script = match show {
                ShowConfig::Pyflow(c) => pyflow::script(c)?,
                ShowConfig::Opens(c) => opens::script(c, Tree::shown(&c.target, c.follow))?,
                ShowConfig::Syscalls(c) => syscalls::script(c, Tree::shown(&c.target, c.follow))?,
            };
            let mut out = io::stdout().lock();
            out.write_all(script.text.as_bytes())?;
            out.flush()?;
            Ok(0)
        }
        CommandConfig::Generate { kind, dir } => generate::run(*kind, dir.as_deref()).map(|()| 0),
    }
}

/// A toolkit command's back end, opened for its target, and how the run covers the
/// target's process tree.
pub(crate) struct Tracer {
    backend: Box<dyn Backend>,
    pub tree: Tree,
}

impl Tracer {
    /// Opens the configured back end for a run on `target`, which follows the target's
    /// process tree when `follow` (not --no-follow). A pid target is checked first, so that a
    /// typo gives "no such process" rather than a back-end error.
    pub fn open(config: &Config, target: &Target, follow: bool) -> Result<Tracer> {
        if let Target::Pid(pid) = target {
            backend::check_pid(*pid)?;
        }
        let backend = backend::select(config.backend)?;
        let tree = match target {
            Target::None => Tree::One,
            _ if !follow => Tree::One,
            _ if backend.follows_trees() => Tree::ByBackend,
            _ => Tree::InScript,
        };
        Ok(Tracer { backend, tree })
    }

    /// The scope of a run with these USDT files (see [`Scope::usdt_files`]).
    pub fn scope(&self, usdt_files: Option<Vec<PathBuf>>) -> Scope {
        Scope {
            follow: self.tree == Tree::ByBackend,
            usdt_files,
        }
    }
}

/// Runs `script` on `tracer`'s back end, feeding `sink`. With a duration, the run stops by
/// itself after it, as after Ctrl-C.
fn trace(
    tracer: Tracer,
    script: Script,
    scope: Scope,
    target: &Target,
    duration: Option<Duration>,
    sink: &mut dyn EventSink,
) -> Result<RunEnd> {
    let stop = Stop::on_signals().context("installing the SIGINT/SIGTERM handlers")?;
    trace_until(tracer, script, scope, target, duration, stop, sink)
}

/// `trace`, also ended by whoever else holds `stop` (a live view's q key).
fn trace_until(
    mut tracer: Tracer,
    script: Script,
    scope: Scope,
    target: &Target,
    duration: Option<Duration>,
    stop: Stop,
    sink: &mut dyn EventSink,
) -> Result<RunEnd> {
    if let Some(duration) = duration {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(duration);
            stop.set();
        });
    }
    let job = Job {
        script,
        args: Vec::new(),
        target: target.clone(),
        options: Vec::new(),
        allow_empty: false,
        dump_bpf: false,
        scope,
    };
    Ok(tracer.backend.run(&job, &stop, sink)?)
}

/// The exit status of a toolkit command (pyflow, opens, syscalls), as strace and time give
/// it: with -c, the command's own, or 128 + the signal that killed it (which is reported);
/// 0 otherwise. The end of a -p target is reported too, unless -q.
fn exit_status(config: &Config, target: &Target, end: &RunEnd) -> u8 {
    let Some(exit) = end.target else {
        return 0;
    };
    match (target, exit.status) {
        // An exit status is 0 to 255.
        (Target::Command(_), Some(TargetStatus::Exited(code))) => code as u8,
        (Target::Command(_), Some(TargetStatus::Killed(signal))) => {
            eprintln!("dtk: {exit}");
            128u8.saturating_add(signal as u8)
        }
        _ => {
            if !config.quiet {
                eprintln!("dtk: {exit}");
            }
            0
        }
    }
}

/// Drop and error notices on stderr: counts are accumulated and printed at most once a
/// second, and whatever is left when the run ends.
#[derive(Debug, Default)]
pub struct Notices {
    /// What was lost, and how many since the last print.
    pending: Vec<(Lost, u64)>,
    last: Option<Instant>,
    /// `run` words drops as dtrace(1) does; `Some(true)` with their `[DTRACEDROP_*]` tags
    /// (`-x droptags`).
    dtrace_drops: Option<bool>,
}

/// A kind of loss that notices count.
#[derive(Debug, PartialEq)]
enum Lost {
    /// In a command's own terms: "events dropped (buffer full)", "opens lost (ring buffer
    /// full)".
    Named(String),
    /// In dtrace(1)'s words, with the tag or without.
    Dtrace(DropKind, bool),
}

impl Notices {
    /// Notices that word drops as dtrace(1) does, with their tags under `-x droptags`.
    pub fn dtrace_wording(droptags: bool) -> Notices {
        Notices {
            pending: Vec::new(),
            last: None,
            dtrace_drops: Some(droptags),
        }
    }

    pub fn drop(&mut self, kind: DropKind, count: u64) {
        match self.dtrace_drops {
            Some(tags) if kind.dtrace_words(count).is_some() => {
                self.count(Lost::Dtrace(kind, tags), count)
            }
            _ => self.lost(&kind.to_string(), count),
        }
    }

    /// Counts `count` more of `what` lost, in a command's own terms.
    pub fn lost(&mut self, what: &str, count: u64) {
        self.count(Lost::Named(what.to_string()), count);
    }

    /// How many of `what` are counted and not yet printed.
    #[cfg(test)]
    pub fn lost_count(&self, what: &str) -> u64 {
        self.pending
            .iter()
            .filter(|(w, _)| *w == Lost::Named(what.to_string()))
            .map(|(_, n)| n)
            .sum()
    }

    fn count(&mut self, what: Lost, count: u64) {
        match self.pending.iter_mut().find(|(w, _)| *w == what) {
            Some((_, n)) => *n += count,
            None => self.pending.push((what, count)),
        }
        if self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.flush();
        }
    }

    /// Reports drops and run-time errors (the run goes on, as in dtrace(1)), and hands back
    /// every other event to the presenter.
    pub fn take(&mut self, event: Event) -> Option<Event> {
        match event {
            Event::Drop { kind, count, .. } => self.drop(kind, count),
            Event::Error {
                probe: Some(p),
                msg,
            } => eprintln!("dtk: error on {p}: {msg}"),
            Event::Error { probe: None, msg } => eprintln!("dtk: error: {msg}"),
            other => return Some(other),
        }
        None
    }

    /// Prints what is pending.
    pub fn flush(&mut self) {
        for (what, count) in self.pending.drain(..) {
            match what {
                Lost::Named(what) => eprintln!("dtk: {count} {what}"),
                Lost::Dtrace(kind, tags) => {
                    if let Some((tag, words)) = kind.dtrace_words(count) {
                        let tag = if tags {
                            format!("[{tag}] ")
                        } else {
                            String::new()
                        };
                        eprintln!("dtk: {tag}{words}");
                    }
                }
            }
        }
        self.last = Some(Instant::now());
    }
}

impl Drop for Notices {
    fn drop(&mut self) {
        self.flush();
    }
}
