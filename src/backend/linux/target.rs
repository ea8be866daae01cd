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
//! is killed when tracing ends before it exits, as dtrace -c does, and also when dtk itself
//! dies, even by SIGKILL: the child asks for that with PR_SET_PDEATHSIG before its exec.
//!
//! How a command dtk started ended comes from waitpid. A process that is not dtk's child is
//! reaped by its own parent, so its status comes from the pidfd (PIDFD_GET_INFO with
//! PIDFD_INFO_EXIT, Linux ≥ 6.15, which keeps it after the reap), or, on older kernels, from
//! /proc/PID/stat while the process is still a zombie.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use thiserror::Error;

use crate::event::TargetStatus;

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
    exit: Option<TargetStatus>,
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
        // SAFETY: getpid cannot fail.
        let dtk = unsafe { libc::getpid() };
        // SAFETY: the closure runs in the child between fork and exec and calls only prctl,
        // getppid and ptrace, which are async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                // Killed when the thread that started it ends: dtk starts commands on the
                // thread that runs the whole trace. The signal survives the exec (but not
                // that of a set-user-ID program).
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // dtk died before the prctl: nobody would kill the command.
                if libc::getppid() != dtk {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
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
        // SAFETY: for every ptrace call below, pid is our tracee, stopped; PEEKTEXT and
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
                self.exit = Some(TargetStatus::from_wait_status(status));
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

    /// How the command ended, once it has (reaping it), else None.
    pub fn try_exit(&mut self) -> Option<TargetStatus> {
        if self.exit.is_none() && !self.stopped {
            if let Ok(Some(status)) = self.child.try_wait() {
                use std::os::unix::process::ExitStatusExt;
                self.exit = Some(TargetStatus::from_wait_status(status.into_raw()));
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

    /// How the process ended, once it has exited: kept by the pidfd after its parent reaped
    /// it (Linux ≥ 6.15), or read from /proc while it is a zombie. Its parent may reap it
    /// between the two reads, so they are tried again for a short while; None when neither
    /// says (an older kernel, and a parent that reaped it at once).
    pub fn exit_status(&self) -> Option<TargetStatus> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(200);
        loop {
            if let Some(status) = self.pidfd_exit_code().or_else(|| self.zombie_exit_code()) {
                return Some(TargetStatus::from_wait_status(status));
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// The wait status the kernel kept with the pidfd, once the process has been reaped.
    fn pidfd_exit_code(&self) -> Option<i32> {
        let mut info = PidfdInfo {
            mask: PIDFD_INFO_EXIT,
            ..PidfdInfo::default()
        };
        // SAFETY: PIDFD_GET_INFO writes at most size_of::<PidfdInfo>() bytes (the size is in
        // the request number) into info, which we own.
        let rc = unsafe { libc::ioctl(self.pidfd.as_raw_fd(), PIDFD_GET_INFO, &mut info) };
        (rc == 0 && info.mask & PIDFD_INFO_EXIT != 0).then_some(info.exit_code)
    }

    /// A zombie's wait status, field 52 of /proc/PID/stat (Linux ≥ 3.5). Only a zombie is
    /// read: its pid cannot have been reused.
    fn zombie_exit_code(&self) -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        // The fields after comm, which may hold spaces and parentheses, start with the state
        // (field 3).
        let fields: Vec<&str> = stat
            .get(stat.rfind(')')? + 1..)?
            .split_whitespace()
            .collect();
        if fields.first() != Some(&"Z") {
            return None;
        }
        fields.get(52 - 3)?.parse().ok()
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

/// struct pidfd_info of <linux/pidfd.h>, as of its first version (64 bytes, Linux 6.13).
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ruid: u32,
    rgid: u32,
    euid: u32,
    egid: u32,
    suid: u32,
    sgid: u32,
    fsuid: u32,
    fsgid: u32,
    exit_code: i32,
}

const PIDFD_INFO_EXIT: u64 = 1 << 3;
/// _IOWR(PIDFS_IOCTL_MAGIC = 0xFF, 11, struct pidfd_info).
const PIDFD_GET_INFO: libc::Ioctl =
    (3 << 30 | (std::mem::size_of::<PidfdInfo>() << 16) | (0xFF << 8) | 11) as libc::Ioctl;

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
        assert_eq!(s.try_exit(), Some(TargetStatus::Exited(7)));
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
    fn watched_process_status_is_read_before_and_after_its_reap() {
        let mut child = Command::new("sh").args(["-c", "exit 5"]).spawn().unwrap();
        let w = Watched::new(child.id()).unwrap();
        assert!(wait_until(|| w.has_exited()));
        // A zombie until the wait below: /proc (or the pidfd) has the status.
        assert_eq!(w.exit_status(), Some(TargetStatus::Exited(5)));
        assert_eq!(child.wait().unwrap().code(), Some(5));
        // Reaped: only the pidfd keeps it.
        assert_eq!(w.exit_status(), Some(TargetStatus::Exited(5)));

        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let w = Watched::new(child.id()).unwrap();
        // SAFETY: our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap();
        assert!(w.has_exited());
        assert_eq!(w.exit_status(), Some(TargetStatus::Killed(libc::SIGTERM)));
    }

    #[test]
    fn command_dies_with_the_thread_that_started_it() {
        // The thread plays dtk: when it ends without killing the command (as a SIGKILL of
        // dtk would), the kernel kills the command.
        let pid = std::thread::spawn(|| {
            let mut s = Spawned::start(&["sleep".into(), "30".into()], false).unwrap();
            s.resume();
            let pid = s.pid();
            std::mem::forget(s);
            pid
        })
        .join()
        .unwrap();
        let mut status = 0;
        // SAFETY: our own child, with a valid status pointer.
        let rc = unsafe { libc::waitpid(pid as i32, &mut status, 0) };
        assert_eq!(rc, pid as i32);
        assert_eq!(
            TargetStatus::from_wait_status(status),
            TargetStatus::Killed(libc::SIGKILL)
        );
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
