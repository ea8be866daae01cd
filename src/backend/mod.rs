//! Back ends: the trait both engines implement, what they are asked to run, and the
//! selection between them.
//!
//! A back end compiles a D program, attaches its probes, and turns what the probes produce
//! into [`Event`]s for a sink. It never formats output for a person.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use thiserror::Error;

use crate::event::{Event, ProbeDesc, TargetExit};
use crate::script::Script;
use crate::target::Target;

#[cfg(dtk_libdtrace)]
pub(crate) mod libdtrace;
pub(crate) mod linux;

/// Which back end the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// libdtrace where it was built in and usable, otherwise linux.
    Auto,
    Libdtrace,
    Linux,
}

/// Everything a back end needs for one run.
#[derive(Clone, Debug)]
pub struct Job {
    pub script: Script,
    /// `$1`, `$2`, … for the D program.
    pub args: Vec<String>,
    pub target: Target,
    /// `-x name[=value]` options, applied after the script's own pragmas.
    pub options: Vec<(String, Option<String>)>,
    /// `-Z`: a probe description that matches nothing is not an error.
    pub allow_empty: bool,
    /// `--dump-bpf`: print the generated BPF programs on stderr before tracing.
    pub dump_bpf: bool,
    /// Which processes the run traces beyond what its probe descriptions name.
    pub scope: Scope,
}

/// The processes a toolkit command traces: `dtk run` keeps dtrace's meaning (the default),
/// the toolkit commands follow their target's process tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// The target's whole process tree rather than the one process: its children by fork,
    /// vfork and clone, their children, across exec. Only for a back end that
    /// [`Backend::follows_trees`]; the toolkit scripts say `pid == FILTER_PID`, which the
    /// command then sets to 0 (every process), leaving the tree to the back end.
    pub follow: bool,
    /// USDT providers named by a glob (`python*`) attach to the files that hold them, once
    /// per file, for every process that maps it now or later, rather than once per running
    /// process: these files (pyflow's installed interpreters), and the files running
    /// processes map.
    pub usdt_files: Option<Vec<PathBuf>>,
}

/// How a run ended: what decides dtk's exit status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunEnd {
    /// The status the program gave to exit(), when it called it.
    pub exit: Option<i32>,
    /// The target's end, when tracing ended because the target exited.
    pub target: Option<TargetExit>,
    /// The pid of the command the back end started for -c: it has exited, or was killed and
    /// reaped, when the run returns.
    pub started: Option<u32>,
}

/// Receives the events of a run. An error (a closed pipe, say) ends the run.
pub trait EventSink {
    fn event(&mut self, event: Event) -> io::Result<()>;

    /// A flush point: the back end has delivered what it read, and will wait for more. A
    /// sink that buffers its output writes it out here, so that on a terminal each event
    /// shows within the back end's delivery interval rather than when the buffer fills.
    /// Back ends call it after every batch they deliver and after a tick.
    fn flush(&mut self) -> io::Result<()>;
}

/// A tracing engine.
pub trait Backend {
    /// Compiles and runs `job` until the program exits, the target exits, or `stop` is set;
    /// then takes the final aggregation snapshot, sends [`Event::Done`] and returns how the
    /// run ended.
    fn run(
        &mut self,
        job: &Job,
        stop: &Stop,
        sink: &mut dyn EventSink,
    ) -> Result<RunEnd, BackendError>;

    /// The probes that the job's probe descriptions match (`dtk run -l`), without tracing.
    fn list(&mut self, job: &Job) -> Result<Vec<Arc<ProbeDesc>>, BackendError>;

    /// Whether it follows a target's process tree itself ([`Scope`]). A back end that does
    /// not is given a script that follows the tree in D (`progenyof`).
    fn follows_trees(&self) -> bool {
        false
    }
}

/// Errors common to both back ends.
#[derive(Debug, Error)]
pub enum BackendError {
    #[error("the {backend} back end is not available: {why}\n  hint: {hint}")]
    Unavailable {
        backend: &'static str,
        why: String,
        hint: String,
    },
    /// libdtrace did not compile the program; the text is its message.
    #[error("{0}")]
    Compile(String),
    #[error("pid {0}: no such process")]
    NoSuchProcess(u32),
    #[error("writing output")]
    Output(#[from] io::Error),
    /// The Linux engine failed: which layer, with its causes.
    #[error(transparent)]
    Linux(#[from] linux::EngineError),
    #[cfg(dtk_libdtrace)]
    #[error(transparent)]
    Libdtrace(#[from] libdtrace::LibdtraceError),
}

/// Opens the back end the user chose.
pub fn select(choice: BackendChoice) -> Result<Box<dyn Backend>, BackendError> {
    match choice {
        BackendChoice::Libdtrace => open_libdtrace(),
        BackendChoice::Linux => Ok(Box::new(linux::LinuxEngine::open()?)),
        BackendChoice::Auto => match open_libdtrace() {
            Ok(backend) => Ok(backend),
            Err(_) => Ok(Box::new(linux::LinuxEngine::open()?)),
        },
    }
}

/// The libdtrace back end (DESIGN.md: an FFI consumer with bindings made by bindgen from
/// the system's dtrace.h), when build.rs found one.
#[cfg(dtk_libdtrace)]
fn open_libdtrace() -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(libdtrace::LibdtraceBackend::open()?))
}

/// Without a dtrace.h at build time, the libdtrace back end is not part of this dtk.
#[cfg(not(dtk_libdtrace))]
fn open_libdtrace() -> Result<Box<dyn Backend>, BackendError> {
    Err(BackendError::Unavailable {
        backend: "libdtrace",
        why: "this dtk was built without it (it links the system's libdtrace through dtrace.h)"
            .into(),
        hint: "use --backend linux (or auto), which runs the same scripts through eBPF".into(),
    })
}

/// Checks that a process exists before a run is started for it.
pub fn check_pid(pid: u32) -> Result<(), BackendError> {
    let Ok(raw) = i32::try_from(pid) else {
        return Err(BackendError::NoSuchProcess(pid));
    };
    // SAFETY: kill with signal 0 sends nothing; it only checks that the pid exists.
    let rc = unsafe { libc::kill(raw, 0) };
    if rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) {
        Ok(())
    } else {
        Err(BackendError::NoSuchProcess(pid))
    }
}

/// Set when the user asks the run to stop (SIGINT or SIGTERM). Back ends poll it between
/// reads; a second signal ends the process at once.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A flag set by SIGINT and SIGTERM.
    pub fn on_signals() -> io::Result<Stop> {
        let stop = Stop::default();
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // The conditional handler runs first: once the flag is set, the next signal
            // exits with 130 without waiting for the back end.
            signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop.0))?;
            signal_hook::flag::register(signal, Arc::clone(&stop.0))?;
        }
        Ok(stop)
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_pid_is_reported() {
        // pid_max is at most 2^22, so this pid cannot exist.
        let err = check_pid(4_194_304 + 17).unwrap_err();
        assert_eq!(err.to_string(), "pid 4194321: no such process");
        check_pid(std::process::id()).unwrap();
    }

    #[cfg(not(dtk_libdtrace))]
    #[test]
    fn libdtrace_choice_explains_itself_when_not_built() {
        let err = select(BackendChoice::Libdtrace).err().unwrap().to_string();
        assert!(err.contains("built without it"), "{err}");
        assert!(err.contains("hint: "), "{err}");
    }
}
