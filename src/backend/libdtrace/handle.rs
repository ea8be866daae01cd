//! The safe wrapper around one libdtrace handle: open, options, processes, compilation,
//! exec, go, work, stop, aggregation snapshots, and close in `Drop`.
//!
//! libdtrace is not thread-safe: a [`Handle`] is neither `Send` nor `Sync` (it holds a raw
//! pointer), so it lives on the thread that opened it.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::ptr::{self, NonNull};

use super::ffi;
use super::platform;
use super::LibdtraceError;

/// An open libdtrace handle, closed on drop together with the processes it holds.
pub struct Handle {
    raw: NonNull<ffi::dtrace_hdl_t>,
    processes: Vec<NonNull<ffi::dtrace_proc>>,
}

/// A compiled program, owned by the handle that compiled it.
pub struct Program(NonNull<ffi::dtrace_prog_t>);

/// A process grabbed or created through the handle.
#[derive(Clone, Copy)]
pub struct Process(NonNull<ffi::dtrace_proc>);

/// What one call of dtrace_work found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkStatus {
    Okay,
    /// Tracing has stopped (exit(), or dtrace_stop) and the buffers are drained.
    Done,
}

/// The callbacks of dtrace_work, with the pointer they receive.
pub struct WorkCallbacks {
    pub probe: ffi::dtrace_consume_probe_f,
    pub record: ffi::dtrace_consume_rec_f,
    pub arg: *mut c_void,
}

/// The handlers libdtrace calls outside the record stream.
pub struct Handlers {
    pub error: ffi::dtrace_handle_err_f,
    pub drop: ffi::dtrace_handle_drop_f,
    pub process: ffi::dtrace_handle_proc_f,
    pub arg: *mut c_void,
}

impl Handle {
    pub fn open() -> Result<Handle, LibdtraceError> {
        let mut err: c_int = 0;
        // SAFETY: dtrace_open takes plain integers and an out-pointer to a live c_int.
        let raw = unsafe { ffi::dtrace_open(ffi::DTRACE_VERSION as c_int, 0, &mut err) };
        match NonNull::new(raw) {
            Some(raw) => Ok(Handle {
                raw,
                processes: Vec::new(),
            }),
            None => Err(LibdtraceError::Open {
                // SAFETY: dtrace_errmsg accepts a NULL handle and returns a static string.
                msg: unsafe { c_text(ffi::dtrace_errmsg(ptr::null_mut(), err)) },
            }),
        }
    }

    pub fn raw(&self) -> *mut ffi::dtrace_hdl_t {
        self.raw.as_ptr()
    }

    /// The message for the handle's last error.
    pub fn last_error(&self) -> String {
        // SAFETY: the handle is open.
        unsafe { last_error(self.raw()) }
    }

    fn call(&self, call: &'static str, rc: c_int) -> Result<(), LibdtraceError> {
        if rc == -1 {
            return Err(LibdtraceError::Call {
                call,
                msg: self.last_error(),
            });
        }
        Ok(())
    }

    /// Sets a `-x` option; a bare name is a toggle.
    pub fn setopt(&mut self, name: &str, value: Option<&str>) -> Result<(), LibdtraceError> {
        let c_name = c_arg(name)?;
        let c_value = value.map(c_arg).transpose()?;
        let value_ptr = c_value.as_ref().map_or(ptr::null(), |v| v.as_ptr());
        // SAFETY: both strings outlive the call; a NULL value means "set" for toggles.
        let rc = unsafe { ffi::dtrace_setopt(self.raw(), c_name.as_ptr(), value_ptr) };
        if rc == -1 {
            return Err(LibdtraceError::Option {
                name: name.to_owned(),
                msg: self.last_error(),
            });
        }
        Ok(())
    }

    /// Creates `argv` stopped at its first instruction (`-c`).
    pub fn create_process(&mut self, argv: &[String]) -> Result<Process, LibdtraceError> {
        let create_error = |msg: String| LibdtraceError::Create {
            command: argv.join(" "),
            msg,
        };
        let Some(file) = argv.first() else {
            return Err(create_error("empty command".into()));
        };
        let file = c_arg(file)?;
        let args = argv
            .iter()
            .map(|a| c_arg(a))
            .collect::<Result<Vec<_>, _>>()?;
        let mut arg_ptrs: Vec<*mut c_char> = args.iter().map(|a| a.as_ptr().cast_mut()).collect();
        arg_ptrs.push(ptr::null_mut());
        // SAFETY: file and the NULL-terminated argv outlive the call, which copies them.
        let proc =
            unsafe { ffi::dtrace_proc_create(self.raw(), file.as_ptr(), arg_ptrs.as_ptr(), 0) };
        match NonNull::new(proc) {
            Some(p) => Ok(self.keep(p)),
            None => Err(create_error(self.last_error())),
        }
    }

    /// Grabs a running process (`-p`).
    pub fn grab_process(&mut self, pid: u32) -> Result<Process, LibdtraceError> {
        let raw_pid = ffi::pid_t::try_from(pid).map_err(|_| LibdtraceError::Grab {
            pid,
            msg: "not a valid pid".into(),
        })?;
        // SAFETY: the handle is open; libdtrace checks the pid.
        let proc = unsafe { ffi::dtrace_proc_grab_pid(self.raw(), raw_pid, 0) };
        match NonNull::new(proc) {
            Some(p) => Ok(self.keep(p)),
            None => Err(LibdtraceError::Grab {
                pid,
                msg: self.last_error(),
            }),
        }
    }

    fn keep(&mut self, p: NonNull<ffi::dtrace_proc>) -> Process {
        self.processes.push(p);
        Process(p)
    }

    /// The pid of a process held by this handle.
    pub fn pid(&self, process: Process) -> u32 {
        // SAFETY: the process is held by this open handle until it is dropped.
        let pid = unsafe { ffi::dtrace_proc_getpid(self.raw(), process.0.as_ptr()) };
        pid.unsigned_abs()
    }

    /// Lets a created or grabbed process run.
    pub fn continue_process(&mut self, process: Process) {
        // SAFETY: the process is held by this open handle.
        unsafe { ffi::dtrace_proc_continue(self.raw(), process.0.as_ptr()) }
    }

    /// Platform-specific initialisation after options and processes (Oracle's dtrace_init).
    pub fn init(&mut self) -> Result<(), LibdtraceError> {
        // SAFETY: the handle is open.
        let rc = unsafe { platform::init(self.raw()) };
        self.call("dtrace_init", rc)
    }

    /// Compiles D source; `args` are `$1`…. Returns the rendered diagnostics on failure.
    pub fn compile(
        &mut self,
        text: &str,
        cflags: c_uint,
        args: &[String],
    ) -> Result<Program, String> {
        let source =
            CString::new(text).map_err(|_| "the D program contains a NUL byte".to_owned())?;
        let mut argv = vec![CString::new("dtk").unwrap_or_default()];
        for a in args {
            argv.push(
                CString::new(a.as_str())
                    .map_err(|_| format!("argument {a:?} contains a NUL byte"))?,
            );
        }
        let arg_ptrs: Vec<*mut c_char> = argv.iter().map(|a| a.as_ptr().cast_mut()).collect();
        let argc = c_int::try_from(arg_ptrs.len()).map_err(|_| "too many arguments".to_owned())?;
        // SAFETY: source and argv outlive the call; libdtrace copies what it keeps.
        let prog = unsafe {
            ffi::dtrace_program_strcompile(
                self.raw(),
                source.as_ptr(),
                ffi::dtrace_probespec_DTRACE_PROBESPEC_NAME,
                cflags,
                argc,
                arg_ptrs.as_ptr(),
            )
        };
        NonNull::new(prog)
            .map(Program)
            .ok_or_else(|| self.last_error())
    }

    /// The probes the program's clauses match, as `dtrace -l` lists them: each statement's
    /// probe description, through dtrace_probe_iter. A probe matched twice is listed once.
    pub fn probes_of(&mut self, program: &Program) -> Vec<[String; 4]> {
        let mut found: Vec<[String; 4]> = Vec::new();
        let data: *mut Vec<[String; 4]> = &mut found;
        // SAFETY: the program was compiled by this handle; `data` points at `found`, which
        // outlives the call, and the callbacks only push to it.
        unsafe {
            ffi::dtrace_stmt_iter(
                self.raw(),
                program.0.as_ptr(),
                Some(each_statement),
                data.cast(),
            )
        };
        let mut seen = std::collections::HashSet::new();
        found.retain(|names| seen.insert(names.clone()));
        found
    }

    /// Enables the program's probes; returns how many probes it matched.
    pub fn exec(&mut self, program: &Program) -> Result<u32, LibdtraceError> {
        let mut info = ffi::dtrace_proginfo_t::default();
        // SAFETY: the program was compiled by this handle; info is a live out-parameter.
        let rc = unsafe { ffi::dtrace_program_exec(self.raw(), program.0.as_ptr(), &mut info) };
        self.call("dtrace_program_exec", rc)?;
        Ok(info.dpi_matches)
    }

    pub fn set_handlers(&mut self, handlers: &Handlers) -> Result<(), LibdtraceError> {
        // SAFETY: the handlers are extern "C" functions that catch panics; `arg` stays valid
        // for as long as the handle may call them (the caller guarantees it outlives work()).
        unsafe {
            self.call(
                "dtrace_handle_err",
                ffi::dtrace_handle_err(self.raw(), handlers.error, handlers.arg),
            )?;
            self.call(
                "dtrace_handle_drop",
                ffi::dtrace_handle_drop(self.raw(), handlers.drop, handlers.arg),
            )?;
            self.call(
                "dtrace_handle_proc",
                ffi::dtrace_handle_proc(self.raw(), handlers.process, handlers.arg),
            )?;
        }
        Ok(())
    }

    pub fn go(&mut self, cflags: c_uint) -> Result<(), LibdtraceError> {
        // SAFETY: the handle is open and a program has been executed.
        let rc = unsafe { platform::go(self.raw(), cflags) };
        self.call("dtrace_go", rc)
    }

    pub fn stop(&mut self) -> Result<(), LibdtraceError> {
        // SAFETY: the handle is open.
        let rc = unsafe { ffi::dtrace_stop(self.raw()) };
        self.call("dtrace_stop", rc)
    }

    /// Waits for data as the platform does, then consumes what is there, writing formatted
    /// output (printf) to `out`.
    pub fn work(
        &mut self,
        out: *mut ffi::FILE,
        callbacks: &WorkCallbacks,
    ) -> Result<WorkStatus, LibdtraceError> {
        platform::pause(self.raw());
        // SAFETY: `out` is an open stream; the callbacks catch panics and `arg` is valid for
        // the duration of the call.
        let status = unsafe {
            ffi::dtrace_work(
                self.raw(),
                out,
                callbacks.probe,
                callbacks.record,
                callbacks.arg,
            )
        };
        match status {
            ffi::dtrace_workstatus_t_DTRACE_WORKSTATUS_DONE => Ok(WorkStatus::Done),
            ffi::dtrace_workstatus_t_DTRACE_WORKSTATUS_OKAY => Ok(WorkStatus::Okay),
            // A signal (Ctrl-C sets the stop flag) interrupted the wait: the caller looks at
            // the flag and calls again, as dtrace(1) does.
            // SAFETY: the handle is open.
            _ if unsafe { ffi::dtrace_errno(self.raw()) } == libc::EINTR => Ok(WorkStatus::Okay),
            _ => Err(LibdtraceError::Call {
                call: "dtrace_work",
                msg: self.last_error(),
            }),
        }
    }

    /// Takes a snapshot of the aggregation buffers.
    pub fn snapshot(&mut self) -> Result<(), LibdtraceError> {
        // SAFETY: the handle is open.
        let rc = unsafe { ffi::dtrace_aggregate_snap(self.raw()) };
        self.call("dtrace_aggregate_snap", rc)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        for p in self.processes.drain(..) {
            // SAFETY: each process was grabbed or created by this handle and is released once.
            unsafe { ffi::dtrace_proc_release(self.raw.as_ptr(), p.as_ptr()) };
        }
        // SAFETY: the handle is open and nothing uses it after this.
        unsafe { ffi::dtrace_close(self.raw.as_ptr()) };
    }
}

fn c_arg(s: &str) -> Result<CString, LibdtraceError> {
    CString::new(s).map_err(|_| LibdtraceError::Nul { text: s.to_owned() })
}

/// The message for the last error on `h`.
///
/// # Safety
/// `h` is an open handle.
pub unsafe fn last_error(h: *mut ffi::dtrace_hdl_t) -> String {
    // SAFETY: the caller passes an open handle; its error message is a C string or NULL.
    unsafe { c_text(ffi::dtrace_errmsg(h, ffi::dtrace_errno(h))) }
}

/// Copies a C string from libdtrace (NULL gives "").
///
/// # Safety
/// `p` is NULL or a NUL-terminated string.
pub unsafe fn c_text(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: `p` is not NULL, so (the caller's promise) a NUL-terminated string.
    unsafe { CStr::from_ptr(p) }
        .to_string_lossy()
        .trim_end()
        .to_owned()
}

/// dtrace_stmt_iter's callback: lists the probes the statement's description matches.
///
/// # Safety
/// libdtrace calls it with a statement of a live program and the `data` of `probes_of`.
unsafe extern "C" fn each_statement(
    dtp: *mut ffi::dtrace_hdl_t,
    _program: *mut ffi::dtrace_prog_t,
    statement: *mut ffi::dtrace_stmtdesc_t,
    data: *mut c_void,
) -> c_int {
    let listed = std::panic::catch_unwind(|| {
        // SAFETY: the statement and its ECB description are libdtrace's, valid during the
        // call; a description that matches nothing makes dtrace_probe_iter return -1, which
        // lists nothing for it.
        unsafe {
            let description = &(*(*statement).dtsd_ecbdesc).dted_probe;
            ffi::dtrace_probe_iter(dtp, description, Some(each_probe), data);
        }
    });
    if listed.is_ok() {
        0
    } else {
        -1
    }
}

/// dtrace_probe_iter's callback: records one probe's names.
///
/// # Safety
/// libdtrace calls it with a live probe description and the `data` of `probes_of`.
unsafe extern "C" fn each_probe(
    _dtp: *mut ffi::dtrace_hdl_t,
    probe: *const ffi::dtrace_probedesc_t,
    data: *mut c_void,
) -> c_int {
    let pushed = std::panic::catch_unwind(|| {
        // SAFETY: `data` is `probes_of`'s vector, borrowed by nothing else during the
        // iteration; `probe` is valid during the call.
        unsafe {
            let found = &mut *data.cast::<Vec<[String; 4]>>();
            found.push(platform::probe_names(&*probe));
        }
    });
    if pushed.is_ok() {
        0
    } else {
        -1
    }
}
