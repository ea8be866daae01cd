//! Where CPython 3.13+ keeps the current thread's PyThreadState: only in the thread-local
//! `_Py_tss_tstate`, which Debian's stripped builds do not name. Its place is read from the
//! code of the exported `PyThreadState_GetUnchecked`, which is one load of it (x86-64):
//!
//! - in an executable (local-exec TLS): `mov %fs:DISP32, %rax`: the variable is at a fixed
//!   offset from the thread pointer;
//! - in libpython (initial-exec TLS): `mov GOT(%rip), %rax; mov %fs:(%rax), %rax`: the offset
//!   is in a GOT slot that the dynamic loader fills in, read in the process.
//!
//! On x86-64 the thread pointer is the fs base, which the kernel keeps in the task
//! (`curthread->thread.fsbase`, see `inspect::task`), so a probe in any thread reads
//! `*(fsbase + offset)`: in D,
//! `*(uint64_t *)copyin(curthread->thread.fsbase + OFFSET, 8)` for the first form, and
//! `copyin(curthread->thread.fsbase + *(int64_t *)copyin(GOT, 8), 8)` for the second (GOT
//! relocated by the file's load bias).

use std::path::Path;

use thiserror::Error;

use crate::inspect::elf::{ElfError, ElfImage, Machine};

/// The exported function whose code reads `_Py_tss_tstate` (CPython ≥ 3.13).
pub const GET_UNCHECKED: &str = "PyThreadState_GetUnchecked";

/// How to reach `_Py_tss_tstate` from the thread pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadStateTls {
    /// At the thread pointer plus this (negative) offset.
    Fixed(i64),
    /// At the thread pointer plus the i64 stored at this address of the file (a GOT slot,
    /// before relocation by the load bias).
    Got(u64),
}

#[derive(Debug, Error)]
pub enum TlsError {
    #[error(transparent)]
    Elf(#[from] ElfError),
    #[error("{path}: reading the thread state through the fs base works on x86-64 only")]
    Machine { path: String },
    #[error(
        "{path}: {GET_UNCHECKED} is not the single TLS load dtk knows ({bytes}); \
         its thread state cannot be found"
    )]
    Unknown { path: String, bytes: String },
}

/// Where `_Py_tss_tstate` is for the CPython in `path` (the executable or libpython).
pub fn thread_state_tls(path: &Path) -> Result<ThreadStateTls, TlsError> {
    let image = ElfImage::open(path)?;
    let shown = || path.display().to_string();
    if image.machine() != Machine::X86_64 {
        return Err(TlsError::Machine { path: shown() });
    }
    let function = image.function(GET_UNCHECKED)?;
    let code = image
        .bytes_at(function.file_offset, 32)
        .ok_or_else(|| TlsError::Unknown {
            path: shown(),
            bytes: "past the end of the file".into(),
        })?;
    decode(code, function.address).ok_or_else(|| TlsError::Unknown {
        path: shown(),
        bytes: code[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
    })
}

/// Decodes the function's first instructions, at `address`.
fn decode(code: &[u8], address: u64) -> Option<ThreadStateTls> {
    const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];
    const FRAME: [u8; 4] = [0x55, 0x48, 0x89, 0xe5];
    let mut at = 0;
    for prefix in [ENDBR64, FRAME] {
        if code.get(at..at + 4) == Some(&prefix) {
            at += 4;
        }
    }
    let disp = |from: usize| -> Option<i32> {
        Some(i32::from_le_bytes(
            code.get(from..from + 4)?.try_into().ok()?,
        ))
    };
    let rest = code.get(at..)?;
    // mov %fs:disp32, %rax
    if rest.starts_with(&[0x64, 0x48, 0x8b, 0x04, 0x25]) {
        return Some(ThreadStateTls::Fixed(i64::from(disp(at + 5)?)));
    }
    // mov disp32(%rip), %rax; mov %fs:(%rax), %rax
    if rest.starts_with(&[0x48, 0x8b, 0x05]) && rest.get(7..11) == Some(&[0x64, 0x48, 0x8b, 0x00]) {
        let next = address + at as u64 + 7;
        return Some(ThreadStateTls::Got(
            next.wrapping_add_signed(i64::from(disp(at + 3)?)),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_exec_and_initial_exec_loads_decode() {
        let exec = [
            0xf3, 0x0f, 0x1e, 0xfa, 0x64, 0x48, 0x8b, 0x04, 0x25, 0xe0, 0xff, 0xff, 0xff, 0xc3,
        ];
        assert_eq!(decode(&exec, 0x1000), Some(ThreadStateTls::Fixed(-0x20)));
        let shared = [
            0x48, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00, 0x64, 0x48, 0x8b, 0x00, 0xc3,
        ];
        assert_eq!(
            decode(&shared, 0x1000),
            Some(ThreadStateTls::Got(0x1000 + 7 + 0x10))
        );
        assert_eq!(decode(&[0x31, 0xc0, 0xc3], 0), None);
        assert_eq!(decode(&[], 0), None);
    }

    #[test]
    fn a_python_without_the_function_is_an_error() {
        let err = thread_state_tls(Path::new("/usr/bin/python3.11")).unwrap_err();
        assert!(err.to_string().contains(GET_UNCHECKED), "{err}");
    }
}
