//! The destructive actions, which change the traced system: `system()` runs a shell command
//! and `raise()` signals the thread that fired the probe. Both run in the consumer when their
//! clause's data is output, as dtrace(1) runs system(); a signal therefore reaches the thread
//! a little after the probe rather than on its return to user mode. The engine refuses a
//! program that uses them unless `destructive` is set (`-w`).

use std::io;
use std::process::{Command, Stdio};

/// Runs `command` with `sh -c`, as system(3) does, and returns what it wrote to stdout, so
/// that its output takes its place among the events; its stderr is dtk's.
pub(super) fn system(command: &str) -> io::Result<Vec<u8>> {
    let output = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    Ok(output.stdout)
}

/// Sends `signal` to thread `tid` of process `pid`. A thread that has exited since the probe
/// fired cannot be signalled any more, and nothing is lost by that.
pub(super) fn raise(pid: u32, tid: u32, signal: i32) {
    // SAFETY: tgkill takes plain integers and touches no memory of ours.
    unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            libc::c_long::from(pid as i32),
            libc::c_long::from(tid as i32),
            libc::c_long::from(signal),
        );
    }
}
