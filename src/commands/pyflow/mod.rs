//! `dtk pyflow`: Python call flow, indented per thread, with per-line time deltas, and the
//! standard library and installed packages hidden unless asked for.
//!
//! pyflow.d (USDT markers) or pyflow-trampoline.d (3.12 to 3.14) reports every entry and
//! return, and where the interpreter's structures tell (3.9, 3.11 to 3.15, with a target)
//! which entries resume a generator and which returns are yields or exceptions (on 3.15 also
//! which entries only make a generator, which it leaves out); both report execs. `flow` works
//! out, per thread, which frames are shown, their depth (which counts only shown frames), the
//! deltas and the summary, and makes every CPython version read like sys.setprofile; `present`
//! prints them; `filter` says which files are library code; `source` tells generator
//! functions from the source where the structures cannot be read; `recursion` measures what
//! `-X perf` does to CPython 3.12's recursion.

mod filter;
mod flow;
mod present;
mod recursion;
mod source;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use super::contract::{record, Line, Mismatch, ScriptContract};
use super::{exit_status, trace, Tracer};
use crate::config::{Config, PyflowConfig};
use crate::event::{ByteString, Printf};
use crate::output::{self, text};
use crate::python::{self, Build, FlowSource, PythonError, Version};
use crate::script::{bundled, Param, Script, TargetMacro};
use crate::target::Target;

use present::FlowPresenter;

/// What `dtk pyflow` runs for a configuration, chosen without acting on any process: the
/// script for the target's CPython, the target (a command started for the trampoline path
/// gains `-X perf`), what to announce on stderr, and whether --activate must turn the
/// trampoline on first. `dtk show` prints this script; only `dtk pyflow` acts on it.
struct Choice {
    pub script: Script,
    pub target: Target,
    /// Without a target, the interpreter files to attach to for every process
    /// (`Scope::usdt_files`), so that Pythons started later are traced: the installed ones.
    pub usdt_files: Option<Vec<PathBuf>>,
    pub notices: Vec<String>,
    /// --activate, on a running CPython whose trampoline is off: turn it on before tracing.
    pub activate: Option<ToActivate>,
    /// dtk starts the command with -X perf: the perf map it leaves is dtk's to remove.
    pub owns_perf_map: bool,
    /// The script leaves out generator creations itself (pyflow.d on 3.15 with the frame
    /// reach known).
    pub creations_left_out: bool,
}

/// A running CPython (3.14 or later) whose perf trampoline --activate turns on.
struct ToActivate {
    pid: u32,
    /// Its version, for the notice.
    version: String,
}

/// What `dtk pyflow` runs, once the target is ready: the choice, and the trampoline dtk
/// turned on, if it did.
pub struct Prepared {
    pub script: Script,
    pub target: Target,
    pub usdt_files: Option<Vec<PathBuf>>,
    pub notices: Vec<String>,
    /// --activate turned the trampoline on in this process: turn it off at the end.
    pub activated: Option<Activation>,
    /// dtk starts the command with -X perf: it removes /tmp/perf-PID.map after the process
    /// exits.
    pub owns_perf_map: bool,
    /// The script leaves out generator creations itself.
    pub creations_left_out: bool,
}

/// CPython 3.14's perf trampoline, turned on by dtk in a running process; dropping this turns
/// it off again, so that the process is left as it was found.
pub struct Activation {
    pid: u32,
    /// -q: say nothing when turning it off.
    quiet: bool,
}

impl Drop for Activation {
    fn drop(&mut self) {
        if !Path::new(&format!("/proc/{}", self.pid)).exists() {
            return;
        }
        match python::remote_exec(self.pid, "import sys; sys.deactivate_stack_trampoline()") {
            Ok(()) => {
                // The perf map was not there before (the trampoline was off): remove it, so
                // that the process is left as it was found and no one takes the trampoline
                // for on.
                let _ = std::fs::remove_file(perf_map(self.pid));
                if self.quiet {
                    return;
                }
                eprintln!(
                    "dtk: turned the perf trampoline of pid {} off again (sys.remote_exec)",
                    self.pid
                );
            }
            Err(e) => eprintln!("dtk: warning: {e}"),
        }
    }
}

/// The script `dtk pyflow` runs for this configuration. It only reads the target: with
/// --activate, the trampoline is not turned on.
pub fn script(c: &PyflowConfig) -> Result<Script> {
    Ok(choose(c)?.script)
}

/// Chooses, then makes the target ready: with --activate on a CPython whose trampoline is
/// off, turns it on (sys.remote_exec) until the returned `Activation` is dropped.
pub fn prepare(c: &PyflowConfig) -> Result<Prepared> {
    let Choice {
        script,
        target,
        usdt_files,
        mut notices,
        activate,
        owns_perf_map,
        creations_left_out,
    } = choose(c)?;
    let activated = match activate {
        None => None,
        Some(ToActivate { pid, version }) => {
            python::remote_exec(pid, "import sys; sys.activate_stack_trampoline('perf')")?;
            notices.push(format!(
                "dtk: turning the perf trampoline of pid {pid} (CPython {version}) on with \
                 sys.remote_exec (--activate); it runs before the process's next bytecode, and \
                 dtk turns it off when tracing ends"
            ));
            Some(Activation { pid, quiet: false })
        }
    };
    Ok(Prepared {
        script,
        target,
        usdt_files,
        notices,
        activated,
        owns_perf_map,
        creations_left_out,
    })
}

/// Chooses the call source for the target's interpreter (../shared/DESIGN.md, "CPython
/// support"): the USDT markers where the build has them, else the perf trampoline on 3.12 to
/// 3.14. With no target, every process with markers is traced, and every Python started
/// later from an installed interpreter. The target's children are the back end's to follow
/// (`Scope::follow`). Reads the target; never acts on it.
fn choose(c: &PyflowConfig) -> Result<Choice> {
    let markers = |target: TargetMacro| -> Result<Script> {
        Ok(bundled("pyflow")
            .expect("pyflow.d is bundled")
            .instantiate(&[], target)?)
    };
    let mut notices = Vec::new();
    let (build, target_macro, command_index, target) = match &c.target {
        Target::None => {
            return Ok(Choice {
                script: markers(TargetMacro::Any)?,
                target: Target::None,
                usdt_files: Some(python::installed_with_markers()),
                notices: Vec::new(),
                activate: None,
                owns_perf_map: false,
                creations_left_out: false,
            })
        }
        Target::Pid(pid) => {
            let build = Build::of_process(*pid)?;
            if c.activate {
                check_activate(*pid, &build)?;
            }
            (build, TargetMacro::Pid(*pid), None, c.target.clone())
        }
        Target::Command(argv) => {
            let launch = Build::of_command(argv)?;
            let mut argv = argv.clone();
            if let Some(interpreter) = &launch.interpreter {
                notices.push(format!(
                    "dtk: {} is a pyenv shim (a shell script): running the interpreter it \
                     selects here, {} (`pyenv which`)",
                    argv[launch.index],
                    interpreter.display()
                ));
                argv[launch.index] = interpreter.display().to_string();
            }
            let target = Target::Command(argv);
            (launch.build, TargetMacro::Keep, Some(launch.index), target)
        }
    };
    let no_probes = || PythonError::NoProbes {
        path: build.shown.clone(),
        version: build.version_text(),
    };
    let layout = match build.flow_source().ok_or_else(no_probes)? {
        FlowSource::Markers => {
            let pid = match target {
                Target::Pid(pid) => Some(pid),
                _ => None,
            };
            let layout = build.marker_layout(pid);
            let creations_left_out = layout.is_some_and(|l| l.reach.is_some());
            let params: Vec<(&str, Param)> = layout
                .map(|layout| layout.params())
                .unwrap_or_default()
                .into_iter()
                .map(|(name, value)| (name, Param::Int(value as i64)))
                .collect();
            return Ok(Choice {
                script: bundled("pyflow")
                    .expect("pyflow.d is bundled")
                    .instantiate(&params, target_macro)?,
                target,
                usdt_files: None,
                notices,
                activate: None,
                owns_perf_map: false,
                creations_left_out,
            });
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
    let mut activate = None;
    let (target, notice) = match (&target, command_index) {
        (Target::Command(argv), Some(index)) => {
            let mut argv = argv.clone();
            argv.insert(index + 1, "-X".into());
            argv.insert(index + 2, "perf".into());
            let notice = format!(
                "dtk: starting CPython {version} with -X perf: it has no function probes, so \
                 calls are followed through the perf trampoline"
            );
            notices.push(notice);
            if build.version.is_some_and(|v| v.minor == 12) {
                let interpreter = &argv[index];
                notices.extend(recursion::perf_notice(Path::new(interpreter)));
            }
            (Target::Command(argv), None)
        }
        (Target::Pid(pid), _) if trampoline_active(*pid) => (Target::Pid(*pid), None),
        (Target::Pid(pid), _) if c.activate && remote_exec_works => {
            activate = Some(ToActivate {
                pid: *pid,
                version: version.clone(),
            });
            (Target::Pid(*pid), None)
        }
        (Target::Pid(pid), _) => {
            return Err(PythonError::TrampolineInactive {
                path: build.shown.clone(),
                version,
                pid: *pid,
                // --activate before 3.14 was refused by check_activate.
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
    notices.extend(notice);
    if build.version
        == Some(Version {
            major: 3,
            minor: 13,
        })
    {
        notices.push(INLINED_INIT_3_13.to_string());
    }
    let owns_perf_map = matches!(target, Target::Command(_));
    Ok(Choice {
        script,
        target,
        usdt_files: None,
        notices,
        activate,
        owns_perf_map,
        creations_left_out: false,
    })
}

/// CPython 3.13's specialised class call (CALL_ALLOC_AND_ENTER_INIT, once a call site has run
/// a few times) runs `__init__` inside the caller's evaluator, not through the perf
/// trampoline, so no probe fires for it; 3.14 goes through the trampoline again. The frame
/// chain cannot stand in: nothing fires while such an `__init__` runs unless it calls
/// something, and its return is never seen.
const INLINED_INIT_3_13: &str = "dtk: CPython 3.13 runs a class's __init__ without the perf \
     trampoline once the class call is specialised (after its first few calls): those \
     __init__ calls are not shown, and what they call is shown one level up";

/// Refuses --activate where it cannot work: it needs sys.remote_exec (CPython 3.14).
fn check_activate(pid: u32, build: &Build) -> Result<(), PythonError> {
    let since = Version {
        major: 3,
        minor: 14,
    };
    if build.version >= Some(since) {
        return Ok(());
    }
    Err(PythonError::CannotActivate {
        pid,
        version: build.version_text(),
        why: if build.markers {
            "; it has function probes, which pyflow follows without --activate"
        } else {
            "; start it with -X perf (or PYTHONPERFSUPPORT=1) instead"
        },
    })
}

/// Whether CPython's perf trampoline is on in `pid`: it then writes its perf map.
fn trampoline_active(pid: u32) -> bool {
    Path::new(&perf_map(pid)).exists()
}

/// The perf map CPython's trampoline writes, /tmp/perf-PID.map (PID as the process's own
/// namespace numbers it), seen through the process's root.
fn perf_map(pid: u32) -> String {
    let ns_pid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .and_then(|ids| ids.split_whitespace().last().map(str::to_string))
        })
        .unwrap_or_else(|| pid.to_string());
    format!("/proc/{pid}/root/tmp/perf-{ns_pid}.map")
}

pub fn run(config: &Config, c: &PyflowConfig) -> Result<u8> {
    let tracer = Tracer::open(config, &c.target, c.follow)?;
    let mut prepared = prepare(c)?;
    if !config.quiet {
        for notice in &prepared.notices {
            eprintln!("{notice}");
        }
    }
    if let Some(activated) = &mut prepared.activated {
        activated.quiet = config.quiet;
    }
    let mut presenter = FlowPresenter::new(
        output::stdout(config.output.line_flush),
        config.output,
        c,
        config.quiet,
    )
    .creations_left_out(prepared.creations_left_out);
    // Dropped after tracing ends, however it ends: the trampoline goes off again.
    let _activated = prepared.activated;
    let scope = tracer.scope(prepared.usdt_files);
    let end = trace(
        tracer,
        prepared.script,
        scope,
        &prepared.target,
        None,
        &mut presenter,
    )?;
    if let (true, Some(pid)) = (prepared.owns_perf_map, end.started) {
        // The process dtk started with -X perf is gone (it exited, or was killed when tracing
        // ended), in dtk's own mount namespace: its perf map is left over, and nothing else
        // will read it.
        let _ = std::fs::remove_file(format!("/tmp/perf-{pid}.map"));
    }
    presenter.out.flush()?;
    Ok(exit_status(config, &prepared.target, &end))
}

/// Entry or return, as the pyflow scripts report them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Entry,
    Return,
    /// A return by an exception (the trampoline path tells them apart).
    Unwind,
    /// A generator's or coroutine's return by yield or await (the trampoline path).
    Yield,
    /// Its entry resuming after one (the trampoline path).
    Resume,
    /// The process replaced its program (exec): a new flow begins, at depth 0. The event's
    /// file is the new program's name.
    Exec,
}

impl Kind {
    /// Whether the event enters a function (a call or a resume).
    pub fn enters(self) -> bool {
        matches!(self, Kind::Entry | Kind::Resume)
    }
}

/// A file or function name from CPython. CPython hands its markers the UTF-8 of a `str`
/// (PyUnicode_AsUTF8), which is always valid, so nothing is lost in making it a `String`; it
/// may still hold any control character (`code.replace(co_name="a\nb")`), which text output
/// escapes.
fn python_text(s: &ByteString) -> String {
    s.to_str_lossy().into_owned()
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

record! {
    /// The pyflow scripts' line per event: timestamp pid tid kind file line function.
    pub struct FlowLine {
        timestamp: i64,
        pid: i64,
        tid: i64,
        /// ->, <-, <!, <y, y> or x> (an exec).
        kind: ByteString,
        file: ByteString,
        line: i64,
        function: ByteString,
    }
}

record! {
    /// The pyflow scripts' line at the first event of each process.
    pub struct FollowingLine {
        pid: i64,
        ppid: i64,
        execname: ByteString,
    }
}

/// The start of the pyflow scripts' line at the first event of each process.
const FOLLOWING: &str = "following ";

/// What the pyflow presenter reads of the pyflow scripts.
pub(crate) const CONTRACT: ScriptContract = ScriptContract {
    scripts: &["pyflow", "pyflow-trampoline"],
    lines: &[
        Line::of::<FlowLine>(""),
        Line::of::<FollowingLine>(FOLLOWING),
    ],
    keys: &[],
};

/// A process seen for the first time.
#[derive(Clone, Debug, PartialEq)]
pub struct Following {
    pub pid: u32,
    pub ppid: u32,
    pub execname: ByteString,
}

/// One printf line of the pyflow scripts.
#[derive(Clone, Debug, PartialEq)]
pub enum FlowRecord {
    Following(Following),
    Event(PyEvent),
}

impl FlowRecord {
    pub fn decode(p: &Printf) -> Result<FlowRecord, Mismatch> {
        if CONTRACT.prefix_of(&p.text)? == FOLLOWING {
            let l: FollowingLine = CONTRACT.decode(&p.args)?;
            return Ok(FlowRecord::Following(Following {
                pid: CONTRACT.id("pid", l.pid)?,
                ppid: CONTRACT.id("ppid", l.ppid)?,
                execname: l.execname,
            }));
        }
        PyEvent::from_printf(p).map(FlowRecord::Event)
    }
}

impl PyEvent {
    /// Reads the pyflow scripts' line per event ([`FlowLine`]).
    pub fn from_printf(p: &Printf) -> Result<PyEvent, Mismatch> {
        let l: FlowLine = CONTRACT.decode(&p.args)?;
        let kind = match l.kind.to_str().unwrap_or_default() {
            "->" => Kind::Entry,
            "<-" => Kind::Return,
            "<!" => Kind::Unwind,
            "<y" => Kind::Yield,
            "y>" => Kind::Resume,
            "x>" => Kind::Exec,
            _ => {
                let kind = text::escape(&l.kind);
                return Err(CONTRACT.mismatch(format!("\"{kind}\" is not a kind of event")));
            }
        };
        Ok(PyEvent {
            ts_ns: l.timestamp as u64,
            pid: CONTRACT.id("pid", l.pid)?,
            tid: CONTRACT.id("tid", l.tid)?,
            kind,
            file: python_text(&l.file),
            line: l.line,
            function: python_text(&l.function),
        })
    }
}
