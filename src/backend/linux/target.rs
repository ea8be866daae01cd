//! The traced process: a running one (`-p PID`), watched until it exits, or a command started
//! by dtk (`-c CMD`), held stopped right after its exec so that probes are attached before it
//! runs its first instruction, then let go.
//!
//! Holding the child uses ptrace only until the probes are attached: the child asks to be
//! traced and the kernel stops it when exec completes, before the dynamic loader runs, so
//! that syscall probes see every open it makes. When the program's probes live in shared
//! libraries (`pid$target::getppid:entry` in libc, USDT probes in libpython), dtk first lets
//! it run to its entry point (a breakpoint on AT_ENTRY, x86_64), where the loader has mapped
//! them. It detaches as soon as the probes are attached. Exit is watched with a pidfd (Linux ≥ 5.3),
//! which becomes readable when the process exits, whoever its parent is. A command dtk started
//! is killed when tracing ends before it exits, as dtrace -c does.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TargetError {
    #[error("cannot start {command:?}")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("{command:?} did not stop after exec (wait status {status:#x})")]
    NoExecStop { command: String, status: i32 },
    #[error("pid {pid}: no such process")]
    NoSuchProcess { pid: u32 },
    #[error("{command:?} exited before reaching its entry point")]
    ExitedEarly { command: String },
    #[error("holding {command:?} at its entry point: {call} failed")]
    Ptrace {
        command: String,
        call: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("watching pid {pid}")]
    Watch {
        pid: u32,
        #[source]
        source: io::Error,
    },
}

/// A command started by dtk, stopped after exec until [`Spawned::resume`].
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    stopped: bool,
    exit: Option<i32>,
}

impl Spawned {
    /// Starts `argv` and holds it: right after its exec, or, with `to_entry`, at its entry
    /// point, once the dynamic loader has mapped its libraries (which the loader's own opens
    /// then precede, unseen).
    pub fn start(argv: &[String], to_entry: bool) -> Result<Spawned, TargetError> {
        let command = argv.join(" ");
        let spawn_error = |source| TargetError::Spawn {
            command: command.clone(),
            source,
        };
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| spawn_error(io::Error::from(io::ErrorKind::InvalidInput)))?;
        let mut cmd = Command::new(program);
        cmd.args(args);
        // SAFETY: the closure runs in the child between fork and exec and calls only
        // ptrace(PTRACE_TRACEME), which is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(spawn_error)?;
        let mut status = 0;
        // SAFETY: waitpid on our own child, with a valid status pointer.
        let rc = unsafe { libc::waitpid(child.id() as i32, &mut status, 0) };
        if rc < 0 || !libc::WIFSTOPPED(status) || libc::WSTOPSIG(status) != libc::SIGTRAP {
            return Err(TargetError::NoExecStop { command, status });
        }
        let mut spawned = Spawned {
            child,
            stopped: true,
            exit: None,
        };
        if to_entry {
            spawned.run_to_entry(&command)?;
        }
        Ok(spawned)
    }

    /// Continues the held child to its entry point and holds it there: a one-byte int3 at
    /// AT_ENTRY, put back once hit, with the instruction pointer rewound onto it.
    #[cfg(target_arch = "x86_64")]
    fn run_to_entry(&mut self, command: &str) -> Result<(), TargetError> {
        let pid = self.child.id() as libc::pid_t;
        let fail = |call, source| TargetError::Ptrace {
            command: command.to_string(),
            call,
            source,
        };
        let entry = auxv_entry(pid).map_err(|e| fail("reading auxv", e))?;
        let addr = entry as *mut libc::c_void;
        // SAFETY (for every ptrace call below): pid is our tracee, stopped; PEEKTEXT and
        // POKETEXT address its memory, not ours; GETREGS/SETREGS use a struct we own.
        unsafe {
            *libc::__errno_location() = 0;
            let word = libc::ptrace(libc::PTRACE_PEEKTEXT, pid, addr, 0);
            if word == -1 && *libc::__errno_location() != 0 {
                return Err(fail("PTRACE_PEEKTEXT", io::Error::last_os_error()));
            }
            let trap = (word & !0xff) | 0xcc;
            if libc::ptrace(libc::PTRACE_POKETEXT, pid, addr, trap) != 0 {
                return Err(fail("PTRACE_POKETEXT", io::Error::last_os_error()));
            }
            if libc::ptrace(libc::PTRACE_CONT, pid, 0, 0) != 0 {
                return Err(fail("PTRACE_CONT", io::Error::last_os_error()));
            }
            let mut status = 0;
            if libc::waitpid(pid, &mut status, 0) < 0 {
                return Err(fail("waitpid", io::Error::last_os_error()));
            }
            if !libc::WIFSTOPPED(status) {
                self.stopped = false;
                self.exit = Some(libc::WEXITSTATUS(status));
                return Err(TargetError::ExitedEarly {
                    command: command.to_string(),
                });
            }
            if libc::ptrace(libc::PTRACE_POKETEXT, pid, addr, word) != 0 {
                return Err(fail("PTRACE_POKETEXT", io::Error::last_os_error()));
            }
            let mut regs: libc::user_regs_struct = std::mem::zeroed();
            if libc::ptrace(libc::PTRACE_GETREGS, pid, 0, &mut regs) != 0 {
                return Err(fail("PTRACE_GETREGS", io::Error::last_os_error()));
            }
            regs.rip = entry;
            if libc::ptrace(libc::PTRACE_SETREGS, pid, 0, &regs) != 0 {
                return Err(fail("PTRACE_SETREGS", io::Error::last_os_error()));
            }
        }
        Ok(())
    }

    /// Elsewhere the child is held right after exec: its executable is mapped, its shared
    /// libraries not yet.
    #[cfg(not(target_arch = "x86_64"))]
    fn run_to_entry(&mut self, _command: &str) -> Result<(), TargetError> {
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets the command run: detaches, which continues it without a signal.
    pub fn resume(&mut self) {
        if self.stopped {
            // SAFETY: the child is our tracee, stopped; detaching continues it.
            unsafe { libc::ptrace(libc::PTRACE_DETACH, self.child.id() as i32, 0, 0) };
            self.stopped = false;
        }
    }

    /// The exit status once the command has exited (reaping it), else None.
    pub fn try_exit(&mut self) -> Option<i32> {
        if self.exit.is_none() && !self.stopped {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(status.code().unwrap_or_else(|| {
                    use std::os::unix::process::ExitStatusExt;
                    128 + status.signal().unwrap_or(0)
                }));
            }
        }
        self.exit
    }
}

impl Drop for Spawned {
    /// A command dtk started does not outlive the run, as with dtrace -c: if it has not
    /// exited when tracing ends (exit(), Ctrl-C, an error), it is killed and reaped.
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The program's entry point, from the AT_ENTRY entry of /proc/PID/auxv.
#[cfg(target_arch = "x86_64")]
fn auxv_entry(pid: libc::pid_t) -> io::Result<u64> {
    let auxv = std::fs::read(format!("/proc/{pid}/auxv"))?;
    auxv.chunks_exact(16)
        .map(|pair| {
            let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8]));
            (word(&pair[..8]), word(&pair[8..]))
        })
        .find(|&(key, _)| key == libc::AT_ENTRY)
        .map(|(_, value)| value)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no AT_ENTRY in auxv"))
}

/// Watches a process that dtk did not start.
#[derive(Debug)]
pub struct Watched {
    pid: u32,
    pidfd: OwnedFd,
}

impl Watched {
    pub fn new(pid: u32) -> Result<Watched, TargetError> {
        let pidfd = pidfd_open(pid).map_err(|err| match err.raw_os_error() {
            Some(libc::ESRCH) => TargetError::NoSuchProcess { pid },
            _ => TargetError::Watch { pid, source: err },
        })?;
        Ok(Watched { pid, pidfd })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process has exited.
    pub fn has_exited(&self) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
        rc > 0 && pfd.revents & libc::POLLIN != 0
    }
}

/// A pidfd for `pid` (Linux ≥ 5.3): readable once the process has exited, whoever its
/// parent is, so that an event loop can wait for the exit with its other fds.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait_until(mut f: impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn spawned_command_is_held_after_exec_then_runs_to_its_exit() {
        let mut s = Spawned::start(&["sh".into(), "-c".into(), "exit 7".into()], false).unwrap();
        // Held: its image is the shell already, and it has not exited.
        let exe = std::fs::read_link(format!("/proc/{}/exe", s.pid())).unwrap();
        assert!(exe.to_string_lossy().contains("sh"), "{exe:?}");
        assert_eq!(s.try_exit(), None);
        s.resume();
        assert!(wait_until(|| s.try_exit().is_some()));
        assert_eq!(s.try_exit(), Some(7));
    }

    #[test]
    fn spawned_command_is_held_with_its_libraries_mapped() {
        let s = Spawned::start(&["sleep".into(), "0".into()], true).unwrap();
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", s.pid())).unwrap();
        if cfg!(target_arch = "x86_64") {
            assert!(maps.contains("libc.so"), "{maps}");
        }
    }

    #[test]
    fn command_that_cannot_start_is_an_error() {
        let err = Spawned::start(&["/nonexistent/prog".into()], false).unwrap_err();
        assert!(err.to_string().contains("cannot start"), "{err}");
    }

    #[test]
    fn running_command_is_killed_when_tracing_ends() {
        let mut s = Spawned::start(&["sleep".into(), "30".into()], false).unwrap();
        s.resume();
        let pid = s.pid();
        drop(s);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn held_command_is_killed_when_never_resumed() {
        let s = Spawned::start(&["sleep".into(), "30".into()], false).unwrap();
        let pid = s.pid();
        drop(s);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn watched_process_exit_is_seen() {
        let mut child = Command::new("sleep").arg("0.2").spawn().unwrap();
        let w = Watched::new(child.id()).unwrap();
        assert!(!w.has_exited());
        child.wait().unwrap();
        assert!(w.has_exited());
        assert!(matches!(
            Watched::new(4_194_321),
            Err(TargetError::NoSuchProcess { .. })
        ));
    }
}
