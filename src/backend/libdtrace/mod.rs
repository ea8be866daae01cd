//! The libdtrace back end: dtk as a native DTrace consumer of the system's libdtrace
//! (illumos, FreeBSD, macOS, Oracle Linux), built only when build.rs found dtrace.h
//! (`cfg(dtk_libdtrace)`).
//!
//! One run: open → options → grab/create the target → (Oracle) init → compile with `$1`…
//! → handlers → exec → go → continue the target → dtrace_work until exit(), the target's
//! exit or a stop request → stop → final aggregation snapshot → Done. libdtrace formats
//! printf output; everything else is decoded by dtk into the event model.

mod aggregate;
mod consumer;
mod ffi;
mod handle;
mod memstream;
mod platform;
mod record;
mod symbols;

use std::ffi::c_uint;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use thiserror::Error;

use self::consumer::{Consumer, Failure};
use self::handle::{Handle, Process, Program, WorkStatus};
use super::{Backend, BackendError, EventSink, Job, RunEnd, Stop};
use crate::event::{Event, ProbeDesc, TargetExit};
use crate::target::Target;

/// Errors of this back end's calls into libdtrace.
#[derive(Debug, Error)]
pub enum LibdtraceError {
    #[error("cannot open libdtrace: {msg}")]
    Open { msg: String },
    #[error("{call}: {msg}")]
    Call { call: &'static str, msg: String },
    #[error("option {name}: {msg}")]
    Option { name: String, msg: String },
    #[error("cannot start `{command}`: {msg}")]
    Create { command: String, msg: String },
    #[error("cannot grab pid {pid}: {msg}")]
    Grab { pid: u32, msg: String },
    #[error("{text:?} contains a NUL byte")]
    Nul { text: String },
    #[error("a libdtrace callback panicked; the run was stopped")]
    Panic,
    #[error("the probe description matched no probes (use -Z to allow this)")]
    NoProbes,
    #[error("this process has already traced once; this libdtrace allows one run per process")]
    OneRunPerProcess,
}

/// dtrace(1)'s defaults, which libdtrace's own (much smaller) do not match; the script's
/// pragmas and the job's options come after them.
const DEFAULT_OPTIONS: [(&str, &str); 2] = [("bufsize", "4m"), ("aggsize", "4m")];

/// libdtrace keeps compiler state in globals (the parser's current context among them), so
/// two handles must not be used at once, even from different threads: every use of the
/// library holds this lock.
static LIBRARY: Mutex<()> = Mutex::new(());

fn lock_library() -> MutexGuard<'static, ()> {
    // A panic while holding the lock leaves nothing half-done that the next run relies
    // on: each run opens its own handle.
    LIBRARY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The back end; each run opens its own handle.
#[derive(Debug, Default)]
pub struct LibdtraceBackend;

impl LibdtraceBackend {
    /// Checks that libdtrace can be opened here (it needs privileges and, on Linux, the
    /// kernel's tracing support).
    pub fn open() -> Result<LibdtraceBackend, BackendError> {
        platform::prepare().map_err(|e| BackendError::Unavailable {
            backend: "libdtrace",
            why: format!("mounting debugfs on /sys/kernel/debug: {e}"),
            hint: "run as root, or mount it: mount -t debugfs debugfs /sys/kernel/debug".into(),
        })?;
        let _library = lock_library();
        Handle::open().map_err(|e| BackendError::Unavailable {
            backend: "libdtrace",
            why: e.to_string(),
            hint: "run as root, or use --backend linux".into(),
        })?;
        Ok(LibdtraceBackend)
    }
}

impl Backend for LibdtraceBackend {
    /// The probes the job's descriptions match, from libdtrace's own probe list (as
    /// `dtrace -l` gives it), without enabling anything.
    fn list(&mut self, job: &Job) -> Result<Vec<Arc<ProbeDesc>>, BackendError> {
        let _library = lock_library();
        let Compiled {
            mut handle,
            program,
            ..
        } = compile(job)?;
        Ok(handle
            .probes_of(&program)
            .into_iter()
            .map(|[provider, module, function, name]| {
                Arc::new(ProbeDesc {
                    provider,
                    module,
                    function,
                    name,
                })
            })
            .collect())
    }

    fn run(
        &mut self,
        job: &Job,
        stop: &Stop,
        sink: &mut dyn EventSink,
    ) -> Result<RunEnd, BackendError> {
        if job.dump_bpf {
            return Err(BackendError::Unavailable {
                backend: "libdtrace",
                why: "--dump-bpf shows the programs dtk's own engine generates".into(),
                hint: "use --backend linux, or dtrace(1)'s own options to see DIF".into(),
            });
        }
        let _library = lock_library();
        if !platform::can_go() {
            return Err(LibdtraceError::OneRunPerProcess.into());
        }
        let Compiled {
            mut handle,
            target,
            program,
            cflags,
        } = compile(job)?;
        let mut consumer = Box::new(Consumer::new(sink, handle.raw())?);
        consumer.target = target.map(|p| handle.pid(p));
        // Callbacks reach the consumer only through this pointer, and only during calls
        // into the handle below; the box outlives them all.
        let this: *mut Consumer<'_> = &mut *consumer;
        // The handlers come before exec: the error handler compiles and enables libdtrace's
        // default ERROR clause, which must be part of the program that exec enables.
        handle.set_handlers(&Consumer::handlers(this))?;
        if handle.exec(&program)? == 0 && !job.allow_empty {
            return Err(LibdtraceError::NoProbes.into());
        }
        handle.go(cflags)?;
        if let Some(p) = target {
            handle.continue_process(p);
        }
        let result = work_until_done(&mut handle, this, stop);
        // SAFETY: no call into the handle is under way, so no callback holds the consumer.
        let consumer = unsafe { &mut *this };
        result?;
        finish(&mut handle, consumer)?;
        Ok(RunEnd {
            started: consumer
                .target
                .filter(|_| matches!(job.target, Target::Command(_))),
            exit: consumer.exit_status,
            target: consumer
                .target
                .filter(|_| consumer.target_exited)
                .map(|pid| TargetExit { pid, status: None }),
        })
    }
}

/// A job's program compiled by a fresh handle, with its options set and its -p/-c process
/// grabbed or created (libdtrace wants the process before compiling, for `$target`).
struct Compiled {
    handle: Handle,
    target: Option<Process>,
    program: Program,
    cflags: c_uint,
}

fn compile(job: &Job) -> Result<Compiled, BackendError> {
    let mut handle = Handle::open()?;
    for (name, value) in DEFAULT_OPTIONS {
        handle.setopt(name, Some(value))?;
    }
    for (name, value) in &job.options {
        handle.setopt(name, value.as_deref())?;
    }
    let target = match &job.target {
        Target::None => None,
        Target::Pid(pid) => Some(handle.grab_process(*pid)?),
        Target::Command(argv) => Some(handle.create_process(argv)?),
    };
    handle.init()?;
    let cflags: c_uint = if job.allow_empty {
        ffi::DTRACE_C_ZDEFS
    } else {
        0
    };
    let program = handle
        .compile(&platform::with_prelude(&job.script.text), cflags, &job.args)
        .map_err(BackendError::Compile)?;
    Ok(Compiled {
        handle,
        target,
        program,
        cflags,
    })
}

/// Runs dtrace_work until tracing is over.
fn work_until_done(
    handle: &mut Handle,
    this: *mut Consumer<'_>,
    stop: &Stop,
) -> Result<(), BackendError> {
    let callbacks = Consumer::callbacks(this);
    let mut stopping = false;
    loop {
        // SAFETY: between calls into the handle no callback runs, so this is the only
        // reference to the consumer.
        let consumer = unsafe { &mut *this };
        if !stopping && (stop.is_set() || consumer.target_exited) {
            handle.stop()?;
            stopping = true;
        }
        let stream = consumer.stream();
        let status = handle.work(stream, &callbacks)?;
        // SAFETY: as above; dtrace_work has returned.
        let consumer = unsafe { &mut *this };
        // What this dtrace_work delivered reaches the terminal before the next sleep.
        consumer.flush();
        check(consumer)?;
        if status == WorkStatus::Done || stopping {
            return Ok(());
        }
    }
}

/// The final snapshot of every aggregation, then Done.
fn finish(handle: &mut Handle, consumer: &mut Consumer<'_>) -> Result<(), BackendError> {
    handle.snapshot()?;
    // SAFETY: the handle is open and no walk is under way.
    let snapshots = unsafe { aggregate::collect(handle.raw(), None)? };
    consumer.emit(Event::FinalAggs(snapshots));
    consumer.emit(Event::Done);
    check(consumer)
}

fn check(consumer: &mut Consumer<'_>) -> Result<(), BackendError> {
    match consumer.failure.take() {
        None => Ok(()),
        Some(Failure::Sink(e)) => Err(BackendError::Output(e)),
        Some(Failure::Libdtrace(e)) => Err(e.into()),
        Some(Failure::Panic) => Err(LibdtraceError::Panic.into()),
    }
}
