//! Decoding of one action's record into a [`Value`], with addresses symbolised by libdtrace
//! (kernel symbols for stack() and sym(), the target's symbols for ustack() and usym()).

use std::ffi::{c_char, c_int};

use super::ffi;
use super::handle::c_text;
use super::record::{decode, words, RecordShape};
use crate::event::Value;

/// Room for one symbolised frame, `module`function+0x1234`.
const FRAME_LEN: usize = 512;

/// The value a data-recording action stored, or None for actions that are not data (exit,
/// printa, system, …).
///
/// # Safety
/// `h` is an open handle; `bytes` are the record's bytes.
pub unsafe fn decode_action(
    h: *mut ffi::dtrace_hdl_t,
    rec: &ffi::dtrace_recdesc_t,
    bytes: &[u8],
) -> Option<Value> {
    let shape = RecordShape {
        size: bytes.len(),
        alignment: usize::from(rec.dtrd_alignment),
        flags: 0,
    };
    match u32::from(rec.dtrd_action) {
        ffi::DTRACEACT_DIFEXPR => Some(decode(
            RecordShape {
                flags: rec.dtrd_arg,
                ..shape
            },
            bytes,
            true,
        )),
        ffi::DTRACEACT_PRINTF => Some(decode(shape, bytes, false)),
        ffi::DTRACEACT_TRACEMEM => Some(Value::Bytes(bytes.to_vec())),
        ffi::DTRACEACT_STACK => {
            // SAFETY: the caller passes an open handle.
            Some(unsafe { kernel_stack(h, &words(bytes)) })
        }
        ffi::DTRACEACT_USTACK | ffi::DTRACEACT_JSTACK => {
            let frames = (rec.dtrd_arg & u64::from(u32::MAX)) as usize;
            // SAFETY: the caller passes an open handle.
            Some(unsafe { user_stack(h, &words(bytes), frames) })
        }
        ffi::DTRACEACT_SYM | ffi::DTRACEACT_MOD => {
            let addr = *words(bytes).first()?;
            // SAFETY: the caller passes an open handle.
            let name = unsafe { kernel_symbol(h, addr) };
            Some(Value::Str(module_only(name, rec.dtrd_action).into()))
        }
        ffi::DTRACEACT_USYM | ffi::DTRACEACT_UADDR | ffi::DTRACEACT_UMOD => {
            let w = words(bytes);
            let (&pid, &addr) = (w.first()?, w.get(1)?);
            // SAFETY: the caller passes an open handle.
            let name = unsafe { user_symbol(h, pid, addr) };
            Some(Value::Str(module_only(name, rec.dtrd_action).into()))
        }
        _ => None,
    }
}

/// mod() and umod() show only the module of `module`function+off`.
fn module_only(name: String, action: ffi::dtrace_actkind_t) -> String {
    let module_action = matches!(u32::from(action), ffi::DTRACEACT_MOD | ffi::DTRACEACT_UMOD);
    match name.split_once('`') {
        Some((module, _)) if module_action => module.to_owned(),
        _ => name,
    }
}

/// stack() data: kernel program counters, symbolised.
///
/// # Safety
/// `h` is an open handle.
unsafe fn kernel_stack(h: *mut ffi::dtrace_hdl_t, pcs: &[u64]) -> Value {
    Value::Stack(
        pcs.iter()
            .take_while(|&&pc| pc != 0)
            // SAFETY: the caller passes an open handle.
            .map(|&pc| unsafe { kernel_symbol(h, pc) })
            .collect(),
    )
}

/// ustack() data: the pid, then the frames.
///
/// # Safety
/// `h` is an open handle.
unsafe fn user_stack(h: *mut ffi::dtrace_hdl_t, words: &[u64], frames: usize) -> Value {
    let Some((&pid, pcs)) = words.split_first() else {
        return Value::Stack(Vec::new());
    };
    Value::Stack(
        pcs.iter()
            .take(frames)
            .take_while(|&&pc| pc != 0)
            // SAFETY: the caller passes an open handle.
            .map(|&pc| unsafe { user_symbol(h, pid, pc) })
            .collect(),
    )
}

/// A kernel address as `module`function+offset`.
///
/// # Safety
/// `h` is an open handle.
unsafe fn kernel_symbol(h: *mut ffi::dtrace_hdl_t, addr: u64) -> String {
    let mut buf = [0 as c_char; FRAME_LEN];
    // SAFETY: `h` is open (the caller's promise); buf is writable for FRAME_LEN bytes and
    // libdtrace NUL-terminates within it.
    unsafe {
        ffi::dtrace_addr2str(h, addr, buf.as_mut_ptr(), FRAME_LEN as c_int);
        c_text(buf.as_ptr())
    }
}

/// A user address of process `pid` as `module`function+offset`.
///
/// # Safety
/// `h` is an open handle.
unsafe fn user_symbol(h: *mut ffi::dtrace_hdl_t, pid: u64, addr: u64) -> String {
    let mut buf = [0 as c_char; FRAME_LEN];
    // The word holds the pid in its low half (Oracle stores the thread id above it).
    let pid = (pid & u64::from(u32::MAX)) as u32 as ffi::pid_t;
    // SAFETY: as in kernel_symbol; libdtrace falls back to the hex address when it cannot
    // find a symbol.
    unsafe {
        ffi::dtrace_uaddr2str(h, pid, addr, buf.as_mut_ptr(), FRAME_LEN as c_int);
        c_text(buf.as_ptr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mod_keeps_only_the_module() {
        let name = "vmlinux`do_sys_open+0x12".to_owned();
        assert_eq!(
            module_only(name.clone(), ffi::DTRACEACT_MOD as _),
            "vmlinux"
        );
        assert_eq!(module_only(name.clone(), ffi::DTRACEACT_SYM as _), name);
    }
}
