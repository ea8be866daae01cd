//! A fake kernel for unit tests, as aya's `sys/fake.rs`: while [`with_kernel`] runs, every
//! [`Syscall`] made on the thread goes to a closure instead of the kernel, so that what the
//! map, program and attach layers do with the kernel's answers (errors above all) is tested
//! without root or BPF.

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::fd::IntoRawFd;

use super::{BpfAttr, Syscall};

type Kernel = Box<dyn FnMut(&mut Syscall<'_>) -> io::Result<i64>>;

thread_local! {
    static KERNEL: RefCell<Option<Kernel>> = const { RefCell::new(None) };
}

/// Runs `body` with `kernel` answering every system call this thread makes through the
/// choke point.
pub(crate) fn with_kernel<R>(
    kernel: impl FnMut(&mut Syscall<'_>) -> io::Result<i64> + 'static,
    body: impl FnOnce() -> R,
) -> R {
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            KERNEL.with(|k| k.borrow_mut().take());
        }
    }
    KERNEL.with(|k| *k.borrow_mut() = Some(Box::new(kernel)));
    let _restore = Restore;
    body()
}

/// The fake's answer to `call`, when a fake kernel is in place.
pub(super) fn intercept(call: &mut Syscall<'_>) -> Option<io::Result<i64>> {
    KERNEL.with(|k| k.borrow_mut().as_mut().map(|kernel| kernel(call)))
}

/// A new fd for the fake to return as a map, program or perf event; closing it is harmless.
pub(crate) fn new_fd() -> io::Result<i64> {
    Ok(File::open("/dev/null")?.into_raw_fd().into())
}

/// Writes `text` into the verifier log of a `BPF_PROG_LOAD`'s attributes, as the kernel
/// does, when the call asked for a log. Returns whether it did.
pub(crate) fn write_log(attr: &mut BpfAttr, text: &str) -> bool {
    // SAFETY: the attributes of a BPF_PROG_LOAD were built with `BpfAttr::prog_load`.
    let load = unsafe { attr.prog_load };
    if load.log_size == 0 || load.log_buf == 0 {
        return false;
    }
    let n = text.len().min(load.log_size as usize - 1);
    // SAFETY: `log_buf` points to `log_size` writable bytes (`prog::load_with_log`), and at
    // most `log_size` are written: the text and a NUL.
    unsafe {
        let buf = load.log_buf as *mut u8;
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf, n);
        *buf.add(n) = 0;
    }
    true
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::super::{BpfCmd, PerfIoctl, SysError};
    use super::*;
    use crate::backend::linux::attach::perf::{attach_cpu_clock, CpuClock};
    use crate::backend::linux::attach::AttachError;
    use crate::backend::linux::bpf::insn::{Asm, Reg};
    use crate::backend::linux::bpf::maps::{Map, MapError, MapType, Update};
    use crate::backend::linux::bpf::prog::{self, LoadError, ProgType};

    fn errno(e: i32) -> io::Result<i64> {
        Err(io::Error::from_raw_os_error(e))
    }

    fn sys_error(e: &MapError) -> &SysError {
        match e {
            MapError::Sys(sys) => sys,
            other => panic!("not a system call error: {other:?}"),
        }
    }

    fn program() -> Vec<crate::backend::linux::bpf::insn::Insn> {
        let mut asm = Asm::new();
        asm.mov64_imm(Reg::R0, 0).exit();
        asm.finish().unwrap()
    }

    #[test]
    fn a_refused_map_names_the_call_and_the_errno() {
        let err = with_kernel(
            |_| errno(libc::EPERM),
            || Map::create(MapType::Hash, 8, 8, 16, "dtk_test").unwrap_err(),
        );
        let sys = sys_error(&err);
        assert_eq!(sys.call, "bpf(BPF_MAP_CREATE)");
        assert_eq!(sys.errno(), Some(libc::EPERM));
    }

    #[test]
    fn map_element_calls_report_their_own_command() {
        let calls = Rc::new(RefCell::new(Vec::new()));
        let seen = Rc::clone(&calls);
        let kernel = move |call: &mut Syscall<'_>| {
            let Syscall::Bpf { cmd, .. } = call else {
                return errno(libc::ENOSYS);
            };
            seen.borrow_mut().push(*cmd);
            match cmd {
                BpfCmd::MapCreate => new_fd(),
                BpfCmd::MapUpdateElem => errno(libc::E2BIG),
                BpfCmd::MapLookupElem => errno(libc::ENOENT),
                _ => errno(libc::EINVAL),
            }
        };
        let (update, lookup) = with_kernel(kernel, || {
            let map = Map::create(MapType::Array, 4, 8, 4, "dtk_test").unwrap();
            let key = 1u32.to_ne_bytes();
            let update = map.update(&key, &7u64.to_ne_bytes(), Update::Any);
            (update.unwrap_err(), map.lookup(&key))
        });
        let sys = sys_error(&update);
        assert_eq!(sys.call, "bpf(BPF_MAP_UPDATE_ELEM)");
        assert_eq!(sys.errno(), Some(libc::E2BIG));
        assert!(
            matches!(lookup, Ok(None)),
            "a missing key is not an error: {lookup:?}"
        );
        assert_eq!(
            *calls.borrow(),
            [
                BpfCmd::MapCreate,
                BpfCmd::MapUpdateElem,
                BpfCmd::MapLookupElem
            ]
        );
    }

    #[test]
    fn a_rejected_program_carries_the_verifier_log() {
        let kernel = |call: &mut Syscall<'_>| match call {
            Syscall::Bpf {
                cmd: BpfCmd::ProgLoad,
                attr,
            } => {
                write_log(attr, "0: (b7) r0 = 0\nR0 !read_ok\n");
                errno(libc::EACCES)
            }
            _ => errno(libc::ENOSYS),
        };
        let err = with_kernel(kernel, || {
            prog::load(ProgType::Tracepoint, &program(), "GPL").unwrap_err()
        });
        let LoadError::Rejected { source, log } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(source.call, "bpf(BPF_PROG_LOAD)");
        assert_eq!(source.errno(), Some(libc::EACCES));
        assert_eq!(log, "0: (b7) r0 = 0\nR0 !read_ok\n");
        assert!(err.to_string().contains("R0 !read_ok"), "{err}");
    }

    /// A fake kernel that loads every program and answers perf calls with `perf`.
    fn loading(
        mut perf: impl FnMut(&mut Syscall<'_>) -> io::Result<i64> + 'static,
    ) -> impl FnMut(&mut Syscall<'_>) -> io::Result<i64> + 'static {
        move |call| match call {
            Syscall::Bpf {
                cmd: BpfCmd::ProgLoad,
                ..
            } => new_fd(),
            Syscall::Bpf { .. } => errno(libc::ENOSYS),
            _ => perf(call),
        }
    }

    #[test]
    fn a_refused_perf_event_names_the_attach_point() {
        let err = with_kernel(loading(|_| errno(libc::EACCES)), || {
            let prog = prog::load(ProgType::PerfEvent, &program(), "GPL").unwrap();
            attach_cpu_clock(&prog, CpuClock::EveryCpu { hz: 99 }).unwrap_err()
        });
        let AttachError::Sys { what, source } = &err else {
            panic!("{err:?}");
        };
        assert!(what.starts_with("profile-99hz on cpu "), "{what}");
        assert!(
            source
                .call
                .starts_with("perf_event_open(type 1, config 0x0, pid -1, cpu "),
            "{}",
            source.call
        );
        assert_eq!(source.errno(), Some(libc::EACCES));
    }

    #[test]
    fn events_are_opened_disabled_and_a_refused_program_fails_the_attach() {
        let disabled = Rc::new(RefCell::new(Vec::new()));
        let seen = Rc::clone(&disabled);
        let perf = move |call: &mut Syscall<'_>| match call {
            Syscall::PerfEventOpen { attr, .. } => {
                seen.borrow_mut()
                    .push(attr.flags & super::super::PERF_FLAG_BIT_DISABLED != 0);
                new_fd()
            }
            Syscall::PerfIoctl {
                op: PerfIoctl::SetBpf(_),
                ..
            } => errno(libc::EINVAL),
            _ => Ok(0),
        };
        let err = with_kernel(loading(perf), || {
            let prog = prog::load(ProgType::PerfEvent, &program(), "GPL").unwrap();
            attach_cpu_clock(&prog, CpuClock::EveryCpu { hz: 99 }).unwrap_err()
        });
        let AttachError::Sys { source, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(source.call, "ioctl(PERF_EVENT_IOC_SET_BPF)");
        assert_eq!(source.errno(), Some(libc::EINVAL));
        assert_eq!(
            *disabled.borrow(),
            [true],
            "the first event, opened disabled"
        );
    }
}
