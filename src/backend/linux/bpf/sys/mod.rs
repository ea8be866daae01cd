//! The one choke point for the `bpf()` and `perf_event_open()` system calls.
//!
//! Every other module of the engine reaches the kernel through [`bpf`], [`perf_event_open`]
//! and [`perf_ioctl`], which all issue one [`Syscall`] through one function. That keeps
//! errors uniform (each names the command and carries the errno), keeps all the `unsafe`
//! syscall plumbing in one short file, and lets unit tests put a fake kernel in its place
//! (`fake`, as aya's `sys/fake.rs`), so that map, load and attach errors are tested without
//! root.
//!
//! [`bpf`], [`bpf_fd`] and [`perf_event_open`] are `unsafe fn`s: their attributes carry raw
//! pointers that the kernel reads from and writes through (a lookup writes a whole value, a
//! load writes the verifier log), and only the caller knows those buffers are large enough.
//! The safe wrappers in `maps`, `prog` and `attach` size the buffers and keep them alive.
//!
//! The attribute layouts below mirror `union bpf_attr` and `struct perf_event_attr` from the
//! kernel's UAPI headers. Only the fields dtk uses are named; the rest are zero, which the
//! kernel accepts because it checks that unused trailing bytes are zero.

use std::fmt;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

#[cfg(test)]
pub(crate) mod fake;

/// The `bpf()` commands dtk issues (`enum bpf_cmd`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum BpfCmd {
    MapCreate = 0,
    MapLookupElem = 1,
    MapUpdateElem = 2,
    MapDeleteElem = 3,
    MapGetNextKey = 4,
    ProgLoad = 5,
}

impl fmt::Display for BpfCmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            BpfCmd::MapCreate => "BPF_MAP_CREATE",
            BpfCmd::MapLookupElem => "BPF_MAP_LOOKUP_ELEM",
            BpfCmd::MapUpdateElem => "BPF_MAP_UPDATE_ELEM",
            BpfCmd::MapDeleteElem => "BPF_MAP_DELETE_ELEM",
            BpfCmd::MapGetNextKey => "BPF_MAP_GET_NEXT_KEY",
            BpfCmd::ProgLoad => "BPF_PROG_LOAD",
        };
        f.write_str(name)
    }
}

/// A failed system call: which call (and command), and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("{call} failed: {source}")]
pub struct SysError {
    /// The call, e.g. `bpf(BPF_MAP_CREATE)` or `perf_event_open(uprobe)`.
    pub call: String,
    #[source]
    pub source: io::Error,
}

impl SysError {
    /// The raw errno, for callers that react to a specific one (ENOSPC, EINVAL, EPERM...).
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }

    fn last(call: String) -> SysError {
        SysError {
            call,
            source: io::Error::last_os_error(),
        }
    }
}

/// One system call through the choke point, with its arguments.
#[derive(Debug)]
pub enum Syscall<'a> {
    Bpf {
        cmd: BpfCmd,
        attr: &'a mut BpfAttr,
    },
    PerfEventOpen {
        attr: &'a PerfEventAttr,
        pid: i32,
        cpu: i32,
        group_fd: i32,
        flags: u64,
    },
    PerfIoctl {
        fd: RawFd,
        op: PerfIoctl,
    },
}

impl Syscall<'_> {
    /// The call as errors name it, e.g. `bpf(BPF_MAP_CREATE)`.
    fn describe(&self) -> String {
        match self {
            Syscall::Bpf { cmd, .. } => format!("bpf({cmd})"),
            Syscall::PerfEventOpen { attr, pid, cpu, .. } => format!(
                "perf_event_open(type {}, config {:#x}, pid {pid}, cpu {cpu})",
                attr.type_, attr.config
            ),
            Syscall::PerfIoctl { op, .. } => format!("ioctl({})", op.name()),
        }
    }
}

/// Issues `call`: the one place a `bpf()`, `perf_event_open()` or perf `ioctl()` reaches the
/// kernel (or, in unit tests, the fake that stands in for it). Returns the non-negative
/// result.
///
/// # Safety
/// Every pointer inside the call's attributes must be valid for it (see [`bpf`] and
/// [`perf_event_open`]).
unsafe fn syscall(mut call: Syscall<'_>) -> Result<i64, SysError> {
    #[cfg(test)]
    if let Some(result) = fake::intercept(&mut call) {
        return result.map_err(|source| SysError {
            call: call.describe(),
            source,
        });
    }
    let ret = match &mut call {
        // SAFETY: `attr` is a live, properly sized `union bpf_attr`; the caller guarantees
        // the pointers inside it.
        Syscall::Bpf { cmd, attr } => unsafe {
            libc::syscall(
                libc::SYS_bpf,
                *cmd as u32 as libc::c_long,
                &mut **attr as *mut BpfAttr,
                std::mem::size_of::<BpfAttr>() as libc::c_long,
            )
        },
        Syscall::PerfEventOpen {
            attr,
            pid,
            cpu,
            group_fd,
            flags,
        } => {
            // SAFETY: `attr` is a complete `perf_event_attr` whose `size` field matches its
            // layout; the caller guarantees any pointer inside it.
            unsafe {
                libc::syscall(
                    libc::SYS_perf_event_open,
                    *attr as *const PerfEventAttr,
                    *pid as libc::c_long,
                    *cpu as libc::c_long,
                    *group_fd as libc::c_long,
                    *flags as libc::c_long,
                )
            }
        }
        Syscall::PerfIoctl { fd, op } => {
            let (request, arg) = op.request();
            // SAFETY: these perf ioctls take an integer argument (never a pointer), so no
            // memory is touched; a wrong fd only yields an error.
            i64::from(unsafe { libc::ioctl(*fd, request as _, arg) })
        }
    };
    if ret < 0 {
        return Err(SysError::last(call.describe()));
    }
    Ok(ret)
}

/// `BPF_MAP_CREATE` attributes (the first fields of `union bpf_attr`).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct MapCreateAttr {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub inner_map_fd: u32,
    pub numa_node: u32,
    /// `BPF_OBJ_NAME_LEN` bytes, NUL-padded; the kernel shows it in `bpftool map`.
    pub map_name: [u8; 16],
}

/// `BPF_MAP_*_ELEM` and `BPF_MAP_GET_NEXT_KEY` attributes. `value_or_next_key` is the
/// value pointer for lookup/update and the next-key pointer for `GET_NEXT_KEY`.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct MapElemAttr {
    pub map_fd: u32,
    pub _pad: u32,
    pub key: u64,
    pub value_or_next_key: u64,
    pub flags: u64,
}

/// `BPF_PROG_LOAD` attributes, up to `prog_name`.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct ProgLoadAttr {
    pub prog_type: u32,
    pub insn_cnt: u32,
    pub insns: u64,
    pub license: u64,
    pub log_level: u32,
    pub log_size: u32,
    pub log_buf: u64,
    pub kern_version: u32,
    pub prog_flags: u32,
    pub prog_name: [u8; 16],
}

/// `union bpf_attr`, sized like the kernel's so that every trailing byte the kernel may read
/// is present and zero. Build one with the constructors; the kernel reads it, dtk never does.
#[repr(C)]
pub union BpfAttr {
    map_create: MapCreateAttr,
    map_elem: MapElemAttr,
    prog_load: ProgLoadAttr,
    bytes: [u64; 18],
}

impl std::fmt::Debug for BpfAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BpfAttr { .. }")
    }
}

impl BpfAttr {
    fn zeroed() -> BpfAttr {
        BpfAttr { bytes: [0; 18] }
    }

    pub fn map_create(attr: MapCreateAttr) -> BpfAttr {
        let mut all = BpfAttr::zeroed();
        all.map_create = attr;
        all
    }

    pub fn map_elem(attr: MapElemAttr) -> BpfAttr {
        let mut all = BpfAttr::zeroed();
        all.map_elem = attr;
        all
    }

    pub fn prog_load(attr: ProgLoadAttr) -> BpfAttr {
        let mut all = BpfAttr::zeroed();
        all.prog_load = attr;
        all
    }
}

/// Issues `bpf(cmd, attr)`. Returns the non-negative result (an fd for the create and load
/// commands, 0 otherwise).
///
/// # Safety
/// Every pointer inside `attr` must be valid for the call: readable for what the kernel reads
/// and writable for as many bytes as it writes (a map's key or value size, `log_size`).
pub unsafe fn bpf(cmd: BpfCmd, attr: &mut BpfAttr) -> Result<i64, SysError> {
    // SAFETY: the caller guarantees the pointers inside `attr` (see # Safety).
    unsafe { syscall(Syscall::Bpf { cmd, attr }) }
}

/// Issues a `bpf()` command whose result is a new file descriptor, and takes ownership of it.
///
/// # Safety
/// As for [`bpf`].
pub unsafe fn bpf_fd(cmd: BpfCmd, attr: &mut BpfAttr) -> Result<OwnedFd, SysError> {
    // SAFETY: the caller upholds `bpf`'s contract.
    let fd = unsafe { bpf(cmd, attr)? };
    // SAFETY: MAP_CREATE and PROG_LOAD return a fresh descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `perf_event_attr.type` values dtk uses. Dynamic PMUs (uprobe) read theirs from sysfs.
pub const PERF_TYPE_SOFTWARE: u32 = 1;
pub const PERF_TYPE_TRACEPOINT: u32 = 2;
/// `PERF_COUNT_SW_CPU_CLOCK`, the software event behind `profile-N`.
pub const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;
/// `perf_event_attr` flag bits.
pub const PERF_FLAG_BIT_DISABLED: u64 = 1 << 0;
pub const PERF_FLAG_BIT_FREQ: u64 = 1 << 10;
/// `perf_event_open` flags argument.
pub const PERF_FLAG_FD_CLOEXEC: u64 = 1 << 3;

/// `struct perf_event_attr` at `PERF_ATTR_SIZE_VER8` (136 bytes).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct PerfEventAttr {
    pub type_: u32,
    pub size: u32,
    pub config: u64,
    /// `sample_period`, or `sample_freq` when `PERF_FLAG_BIT_FREQ` is set.
    pub sample_period_or_freq: u64,
    pub sample_type: u64,
    pub read_format: u64,
    /// The bit field (`disabled`, `inherit`, ..., `freq`, ...).
    pub flags: u64,
    pub wakeup_events: u32,
    pub bp_type: u32,
    /// `config1`: for the uprobe PMU, a pointer to the NUL-terminated path.
    pub config1: u64,
    /// `config2`: for the uprobe PMU, the probe's file offset.
    pub config2: u64,
    pub branch_sample_type: u64,
    pub sample_regs_user: u64,
    pub sample_stack_user: u32,
    pub clockid: i32,
    pub sample_regs_intr: u64,
    pub aux_watermark: u32,
    pub sample_max_stack: u16,
    pub _reserved_2: u16,
    pub aux_sample_size: u32,
    pub _reserved_3: u32,
    pub sig_data: u64,
    pub config3: u64,
}

impl PerfEventAttr {
    /// An attribute of the given PMU type and config, with `size` filled in.
    pub fn new(type_: u32, config: u64) -> PerfEventAttr {
        PerfEventAttr {
            type_,
            size: std::mem::size_of::<PerfEventAttr>() as u32,
            config,
            ..PerfEventAttr::default()
        }
    }
}

/// Opens a perf event; the error names the PMU type, config, pid and cpu.
///
/// # Safety
/// A pointer in `attr` (`config1`, the uprobe PMU's path) must point to a NUL-terminated string
/// that stays valid for the call.
pub unsafe fn perf_event_open(
    attr: &PerfEventAttr,
    pid: i32,
    cpu: i32,
    group_fd: i32,
    flags: u64,
) -> Result<OwnedFd, SysError> {
    let call = Syscall::PerfEventOpen {
        attr,
        pid,
        cpu,
        group_fd,
        flags,
    };
    // SAFETY: the caller guarantees any pointer inside `attr` (see # Safety).
    let ret = unsafe { syscall(call)? };
    // SAFETY: perf_event_open returned a fresh descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// The perf event ioctls used to run a BPF program on an event. The encoding (`_IO`/`_IOW`
/// with type `'$'`) is the generic one shared by x86_64 and aarch64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PerfIoctl {
    Enable,
    Disable,
    /// `PERF_EVENT_IOC_SET_BPF` with the program's fd (kernel ≥ 4.1 for tracepoints).
    SetBpf(RawFd),
}

impl PerfIoctl {
    fn name(self) -> &'static str {
        match self {
            PerfIoctl::Enable => "PERF_EVENT_IOC_ENABLE",
            PerfIoctl::Disable => "PERF_EVENT_IOC_DISABLE",
            PerfIoctl::SetBpf(_) => "PERF_EVENT_IOC_SET_BPF",
        }
    }

    /// The ioctl request and its integer argument.
    fn request(self) -> (libc::c_ulong, libc::c_ulong) {
        const IOC_ENABLE: libc::c_ulong = 0x2400;
        const IOC_DISABLE: libc::c_ulong = 0x2401;
        const IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
        match self {
            PerfIoctl::Enable => (IOC_ENABLE, 0),
            PerfIoctl::Disable => (IOC_DISABLE, 0),
            PerfIoctl::SetBpf(prog) => (IOC_SET_BPF, prog as libc::c_ulong),
        }
    }
}

/// Issues a perf event ioctl on `fd`.
pub fn perf_ioctl(fd: RawFd, op: PerfIoctl) -> Result<(), SysError> {
    // SAFETY: a perf ioctl's argument is an integer, never a pointer.
    unsafe { syscall(Syscall::PerfIoctl { fd, op }) }.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_layouts_match_the_kernel_abi() {
        assert_eq!(std::mem::size_of::<PerfEventAttr>(), 136);
        assert_eq!(std::mem::size_of::<BpfAttr>(), 144);
        assert_eq!(std::mem::size_of::<MapCreateAttr>(), 44);
        assert_eq!(std::mem::size_of::<ProgLoadAttr>(), 64);
        assert_eq!(std::mem::offset_of!(PerfEventAttr, config1), 56);
        assert_eq!(std::mem::offset_of!(PerfEventAttr, config3), 128);
    }

    #[test]
    fn errors_name_the_command_and_errno() {
        let err = SysError {
            call: format!("bpf({})", BpfCmd::ProgLoad),
            source: io::Error::from_raw_os_error(libc::EPERM),
        };
        assert_eq!(err.errno(), Some(libc::EPERM));
        assert!(err.to_string().starts_with("bpf(BPF_PROG_LOAD) failed: "));
    }
}
