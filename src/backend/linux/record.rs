//! The record a probe's BPF program submits to the ring buffer: its layout, which `codegen`
//! writes to and works out once per probe ([`layouts`]), and its decoding into a [`Firing`],
//! which the engine reads with.
//!
//! All fields are in the machine's byte order:
//!
//! | offset | field |
//! |---|---|
//! | 0 | u32 probe index in the plan |
//! | 4 | u32 cpu |
//! | 8 | u64 timestamp (bpf_ktime_get_ns) |
//! | 16 | u32 pid (tgid), u32 tid |
//! | 24 | u32 uid, u32 gid |
//! | 32 | u64 cgroup id |
//! | 40 | char comm[16] |
//! | 56 | u64 zone membership: bit i set when the thread is in `Plan::zones[i]` or below |
//! | 64 | u64 arg0 … arg9 |
//! | 144 | the process block (`process`), when the probe's clauses read process state, then the working directory's (`cwd`) when they read `cwd`, then a slot per `curthread->…` member they read |
//! | … | one slot per captured string, then one per captured byte range, then one per derived read |
//!
//! A slot is an i64 (what the read helper returned: the length read including the NUL for
//! strings, 0 for bytes, or a negative error) followed by the data, padded to 8 bytes. A
//! string that fills its `strsize` slot was cut there and is marked truncated. A derived
//! read's slot has the computed address between the two, and its data area is also the
//! scratch space where the program keeps the intermediate values of the address.

use std::sync::Arc;

use thiserror::Error;

use crate::backend::linux::firing::{
    CapturedBytes, CapturedString, Firing, MemoryRead, ProbeKind, ProcessState, ReadData, MAX_ARGS,
};
use crate::backend::linux::plan::{Captures, Plan, PlannedProbe, ProcessRead};
use crate::event::ByteString;

pub const PROBE: i16 = 0;
pub const CPU: i16 = 4;
pub const TIMESTAMP: i16 = 8;
pub const PID: i16 = 16;
pub const TID: i16 = 20;
pub const UID: i16 = 24;
pub const GID: i16 = 28;
pub const CGROUP: i16 = 32;
pub const COMM: i16 = 40;
pub const COMM_LEN: usize = 16;
pub const ZONES: i16 = 56;
pub const ARGS: i16 = 64;
pub const HEADER: usize = ARGS as usize + 8 * MAX_ARGS;

/// The process state read at the probe from the current `task_struct` (see
/// `inspect::task`), at `Layout::process` in the record. Offsets are within the block.
pub mod process {
    pub const PPID: usize = 0;
    pub const PGID: usize = 4;
    pub const SID: usize = 8;
    pub const EUID: usize = 12;
    pub const EGID: usize = 16;
    pub const NLWP: usize = 20;
    pub const ARGC: usize = 24;
    /// u32: bytes of `PSARGS` read (0 when the read failed).
    pub const PSARGS_LEN: usize = 28;
    /// u64: the task_struct's address, D's `curthread`.
    pub const TASK: usize = 32;
    /// u64: mm->total_vm, in pages.
    pub const TOTAL_VM: usize = 40;
    /// u64 × 3: the resident page counts (file, anonymous, shmem).
    pub const RSS: usize = 48;
    /// u64 × 2: where the program keeps pointers between reads.
    pub const SCRATCH: usize = 72;
    /// u32 × `ANCESTORS`: the tgids of the parent, its parent, …, up to the first of 0 or
    /// 1 (init, or a task with no parent).
    pub const ANCESTORS: usize = 88;
    pub const MAX_ANCESTORS: usize = 32;
    /// The command line's first bytes, NUL-separated as in memory.
    pub const PSARGS: usize = ANCESTORS + 4 * MAX_ANCESTORS;
    pub const PSARGS_SIZE: usize = 80;
    pub const SIZE: usize = PSARGS + PSARGS_SIZE;
}

/// D's `cwd`, read at the probe by walking up from the task's working directory
/// (`task->fs->pwd`) through `d_parent`, crossing mount points, at `Layout::cwd`. Offsets are
/// within the block.
pub mod cwd {
    /// u64: `UNKNOWN`, `COMPLETE` (the walk reached the root) or `CUT`.
    pub const STATUS: usize = 0;
    pub const UNKNOWN: u64 = 0;
    pub const COMPLETE: u64 = 1;
    pub const CUT: u64 = 2;
    /// u64 words the program keeps pointers in: the task, the dentry and the mount reached,
    /// and two temporaries.
    pub const TASK: usize = 8;
    pub const DENTRY: usize = 16;
    pub const MOUNT: usize = 24;
    pub const TMP: usize = 32;
    pub const TMP2: usize = 40;
    /// One slot per level, from the working directory up: an i64 (what
    /// bpf_probe_read_kernel_str returned; 0 for a level that crossed a mount point, which
    /// names nothing) and the name.
    pub const NAMES: usize = 48;
    pub const LEVELS: usize = 16;
    pub const NAME_SIZE: usize = 64;
    pub const SLOT: usize = 8 + NAME_SIZE;
    pub const SIZE: usize = NAMES + LEVELS * SLOT;
}

/// Offset of argN in the record.
pub fn arg_offset(n: u8) -> i16 {
    ARGS + 8 * i16::from(n)
}

/// Where each captured string and byte range lives in a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Offset of the process block (`process`), when the probe reads process state.
    pub process: Option<usize>,
    /// The block is filled whole, not only its task and parent (`ProcessRead::Full`).
    pub process_full: bool,
    /// Offset of the working directory's block (`cwd`), when the probe reads `cwd`.
    pub cwd: Option<usize>,
    /// One slot per `Captures::thread_members`: an i64 status (0, or the failed read's
    /// error), then the value, which is also where the pointers on the way are kept.
    pub thread_members: Vec<usize>,
    /// (argN, slot offset).
    pub strings: Vec<(u8, usize)>,
    /// (argN, size, slot offset).
    pub bytes: Vec<(u8, u32, usize)>,
    /// One per `Captures::derived`, in that order.
    pub derived: Vec<DerivedSlot>,
    pub strsize: usize,
    /// Total record size.
    pub size: usize,
    /// Scratch space after the record (not sent) for the values the probe keeps for later
    /// probes (`Captures::shadow_stores`).
    pub store_scratch: DerivedSlot,
    /// The record and its scratch space: what the program's slot must hold.
    pub room: usize,
    /// Slots of the kernel and user stacks (`Captures::kernel_stack`, `user_stack`): the
    /// byte count bpf_get_stack returned, then up to `KERNEL_FRAMES` / `USER_FRAMES`
    /// addresses.
    pub kernel_stack: Option<usize>,
    pub user_stack: Option<usize>,
}

/// The deepest stacks recorded: dtrace's default `stackframes` is 20 and `ustackframes` 100.
pub const KERNEL_FRAMES: usize = 64;
pub const USER_FRAMES: usize = 100;

impl Layout {
    pub fn new(captures: &Captures, strsize: usize) -> Layout {
        let reads_process = captures.process != ProcessRead::None;
        let process = reads_process.then_some(HEADER);
        let mut at = HEADER + if reads_process { process::SIZE } else { 0 };
        let cwd = captures.cwd.then_some(at);
        at += if captures.cwd { cwd::SIZE } else { 0 };
        let mut slot = |data: usize| {
            let here = at;
            at += 8 + data.next_multiple_of(8);
            here
        };
        let thread_members = captures.thread_members.iter().map(|_| slot(8)).collect();
        let strings = captures
            .strings
            .iter()
            .map(|&n| (n, slot(strsize)))
            .collect();
        let bytes = captures
            .bytes
            .iter()
            .map(|&(n, size)| (n, size, slot(size as usize)))
            .collect();
        let derived = captures
            .derived
            .iter()
            .map(|read| {
                let size = read.size.map_or(strsize, |n| n as usize);
                let scratch = 8 * read.addr.depth();
                let at = slot(8 + size.max(scratch));
                DerivedSlot {
                    at,
                    size,
                    string: read.size.is_none(),
                }
            })
            .collect();
        let kernel_stack = captures.kernel_stack.then(|| slot(8 * KERNEL_FRAMES));
        let user_stack = captures.user_stack.then(|| slot(8 * USER_FRAMES));
        let depth = captures
            .shadow_stores
            .iter()
            .map(|store| store.value.depth())
            .max()
            .unwrap_or(0);
        let store_scratch = DerivedSlot {
            at,
            size: 0,
            string: false,
        };
        Layout {
            process,
            process_full: captures.process == ProcessRead::Full,
            cwd,
            thread_members,
            strings,
            bytes,
            derived,
            strsize,
            size: at,
            store_scratch,
            room: store_scratch.data() + 8 * depth,
            kernel_stack,
            user_stack,
        }
    }
}

/// Where a derived read lives: status at `at`, the address at `at + 8`, the data (and the
/// scratch space) from `at + 16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DerivedSlot {
    pub at: usize,
    /// Bytes read: strsize for a string.
    pub size: usize,
    pub string: bool,
}

impl DerivedSlot {
    pub fn addr(&self) -> usize {
        self.at + 8
    }

    pub fn data(&self) -> usize {
        self.at + 16
    }
}

/// Why a record could not be decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("a record of {len} bytes is shorter than the {want} its layout needs")]
    TooShort { len: usize, want: usize },
    #[error("a record names probe {index}, but the plan has {count} probes")]
    NoSuchProbe { index: u32, count: usize },
}

fn u32_at(r: &[u8], at: i16) -> u32 {
    let at = at as usize;
    u32::from_ne_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]])
}

fn u64_at(r: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&r[at..at + 8]);
    u64::from_ne_bytes(b)
}

/// The bytes up to the first NUL: a string as the traced program wrote it, UTF-8 or not.
fn c_string(bytes: &[u8]) -> ByteString {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    bytes[..end].into()
}

/// The index of the probe that wrote `record`, read from its header alone.
pub fn probe_of(record: &[u8]) -> Option<u32> {
    let at = PROBE as usize;
    Some(u32::from_ne_bytes(record.get(at..at + 4)?.try_into().ok()?))
}

/// The layout of each probe's record, in `Plan::probes` order.
pub fn layouts(plan: &Plan) -> Vec<Layout> {
    plan.probes
        .iter()
        .map(|p| Layout::new(&p.captures, plan.strsize))
        .collect()
}

/// Decodes one ring-buffer record of `plan`'s programs.
pub fn decode(record: &[u8], plan: &Plan) -> Result<Firing, DecodeError> {
    Decoder::new(plan, layouts(plan)).decode(record)
}

/// Decodes the records of `plan`'s programs, with the layouts their programs were built
/// with (`ProgramSet::layouts`).
pub struct Decoder<'a> {
    plan: &'a Plan,
    layouts: Vec<Layout>,
}

impl<'a> Decoder<'a> {
    pub fn new(plan: &'a Plan, layouts: Vec<Layout>) -> Decoder<'a> {
        Decoder { plan, layouts }
    }

    /// Decodes one ring-buffer record.
    pub fn decode(&self, record: &[u8]) -> Result<Firing, DecodeError> {
        decode_with(record, self.plan, &self.layouts)
    }
}

fn decode_with(record: &[u8], plan: &Plan, layouts: &[Layout]) -> Result<Firing, DecodeError> {
    let short = |want| DecodeError::TooShort {
        len: record.len(),
        want,
    };
    if record.len() < HEADER {
        return Err(short(HEADER));
    }
    let index = u32_at(record, PROBE);
    let (probe, layout) = plan
        .probes
        .get(index as usize)
        .zip(layouts.get(index as usize))
        .ok_or(DecodeError::NoSuchProbe {
            index,
            count: plan.probes.len(),
        })?;
    if record.len() < layout.size {
        return Err(short(layout.size));
    }
    let mut args = [0u64; MAX_ARGS];
    for (n, arg) in args.iter_mut().enumerate() {
        *arg = u64_at(record, arg_offset(n as u8) as usize);
    }
    let comm = &record[COMM as usize..COMM as usize + COMM_LEN];
    Ok(Firing {
        probe: index,
        cpu: u32_at(record, CPU),
        ts_ns: u64_at(record, TIMESTAMP as usize),
        pid: u32_at(record, PID),
        tid: u32_at(record, TID),
        uid: u32_at(record, UID),
        gid: u32_at(record, GID),
        cgroup_id: u64_at(record, CGROUP as usize),
        zones: u64_at(record, ZONES as usize),
        comm: c_string(comm),
        args,
        strings: strings(record, layout),
        bytes: bytes(record, layout),
        reads: reads(record, layout),
        kernel_stack: stack(record, layout.kernel_stack),
        user_stack: stack(record, layout.user_stack),
        errno: errno(&probe.info.kind, args[0]),
        process: layout.process.map(|at| Box::new(process_state(record, at))),
        thread_members: thread_members(record, layout, probe, plan),
        cwd: layout.cwd.and_then(|at| working_directory(record, at)),
    })
}

/// The strings read at the probe. A read that faulted (the page was not resident, say: BPF
/// cannot fault it in) gives no capture, so that copyinstr of that pointer is an "invalid
/// address" error, as in DTrace, rather than an empty string.
fn strings(record: &[u8], layout: &Layout) -> Vec<CapturedString> {
    layout
        .strings
        .iter()
        .filter_map(|&(arg, at)| {
            let read = u64_at(record, at) as i64;
            let data = &record[at + 8..at + 8 + layout.strsize];
            (read > 0).then(|| CapturedString {
                arg,
                value: c_string(data),
                truncated: read >= layout.strsize as i64,
            })
        })
        .collect()
}

fn bytes(record: &[u8], layout: &Layout) -> Vec<CapturedBytes> {
    layout
        .bytes
        .iter()
        .map(|&(arg, size, at)| {
            let ok = u64_at(record, at) == 0;
            CapturedBytes {
                arg,
                value: if ok {
                    record[at + 8..at + 8 + size as usize].to_vec()
                } else {
                    Vec::new()
                },
            }
        })
        .collect()
}

/// The derived reads that succeeded; a failed one (a link of its address could not be read,
/// or the read itself faulted) is left out, so that reading there is an invalid address.
fn reads(record: &[u8], layout: &Layout) -> Vec<MemoryRead> {
    layout
        .derived
        .iter()
        .filter_map(|slot| {
            let read = u64_at(record, slot.at) as i64;
            let data = &record[slot.data()..slot.data() + slot.size];
            let data = if slot.string {
                (read > 0).then(|| ReadData::String {
                    value: c_string(data),
                    truncated: read >= slot.size as i64,
                })?
            } else {
                (read == 0).then(|| ReadData::Bytes(data.into()))?
            };
            Some(MemoryRead {
                addr: u64_at(record, slot.addr()),
                data,
            })
        })
        .collect()
}

/// The `curthread->…` members read at the probe, cut and extended to their kernel type.
fn thread_members(
    record: &[u8],
    layout: &Layout,
    probe: &PlannedProbe,
    plan: &Plan,
) -> Vec<(Arc<str>, Option<u64>)> {
    probe
        .captures
        .thread_members
        .iter()
        .zip(&layout.thread_members)
        .map(|(path, &at)| {
            let ok = u64_at(record, at) == 0;
            let value = plan.thread_members.get(path).filter(|_| ok).map(|read| {
                let raw = u64_at(record, at + 8);
                let bits = 8 * u32::from(read.size);
                if bits >= 64 {
                    raw
                } else if read.signed {
                    ((raw << (64 - bits)) as i64 >> (64 - bits)) as u64
                } else {
                    raw & ((1 << bits) - 1)
                }
            });
            (path.clone(), value)
        })
        .collect()
}

/// The working directory from its block at `at`: the names from the root down. None when
/// the walk did not reach the root, or a name was cut.
fn working_directory(record: &[u8], at: usize) -> Option<ByteString> {
    use cwd::*;
    if u64_at(record, at + STATUS) != COMPLETE {
        return None;
    }
    let mut path = Vec::new();
    for level in (0..LEVELS).rev() {
        let slot = at + NAMES + level * SLOT;
        let read = u64_at(record, slot) as i64;
        if read <= 1 {
            continue;
        }
        if read as usize >= NAME_SIZE {
            return None;
        }
        path.push(b'/');
        path.extend_from_slice(&record[slot + 8..slot + 8 + read as usize - 1]);
    }
    if path.is_empty() {
        path.push(b'/');
    }
    Some(path.as_slice().into())
}

/// The process block at `at`.
fn process_state(record: &[u8], at: usize) -> ProcessState {
    use process::*;
    let word = |off: usize| u32::from_ne_bytes(record[at + off..at + off + 4].try_into().unwrap());
    let long = |off: usize| u64_at(record, at + off);
    // The walk stops after a tgid of 0 or 1; what follows is an older record's.
    let mut ancestors = Vec::new();
    for tgid in (0..MAX_ANCESTORS).map(|i| word(ANCESTORS + 4 * i)) {
        if tgid != 0 {
            ancestors.push(tgid);
        }
        if tgid <= 1 {
            break;
        }
    }
    let len = (word(PSARGS_LEN) as usize).min(PSARGS_SIZE);
    let args = &record[at + PSARGS..at + PSARGS + len];
    let psargs: Vec<u8> = args
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .collect::<Vec<_>>()
        .join(&b' ');
    ProcessState {
        ppid: word(PPID),
        pgid: word(PGID),
        sid: word(SID),
        euid: word(EUID),
        egid: word(EGID),
        nlwp: word(NLWP),
        argc: word(ARGC),
        task: long(TASK),
        size_pages: long(TOTAL_VM),
        rss_pages: (0..3).map(|i| long(RSS + 8 * i) as i64).sum::<i64>().max(0) as u64,
        ancestors,
        psargs: psargs.as_slice().into(),
    }
}

/// The addresses of a recorded stack, innermost first; none when it was not recorded or
/// the kernel could not walk it.
fn stack(record: &[u8], slot: Option<usize>) -> Vec<u64> {
    let Some(at) = slot else {
        return Vec::new();
    };
    let bytes = (u64_at(record, at) as i64).clamp(0, (record.len() - at - 8) as i64) as usize;
    (0..bytes / 8)
        .map(|i| u64_at(record, at + 8 + 8 * i))
        .collect()
}

/// A syscall return's errno: −ret for a return value in [−4095, −1], as the kernel encodes
/// errors; 0 otherwise and for other probes.
fn errno(kind: &ProbeKind, arg0: u64) -> i32 {
    let ret = arg0 as i64;
    if kind.sets_errno() && (-4095..0).contains(&ret) {
        -ret as i32
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::linux::firing::ProbeInfo;
    use crate::backend::linux::plan::{PlannedProbe, Site};
    use crate::event::ProbeDesc;

    fn plan(kind: ProbeKind, captures: Captures) -> Plan {
        Plan {
            probes: vec![PlannedProbe {
                info: ProbeInfo {
                    desc: Arc::new(ProbeDesc {
                        provider: "syscall".into(),
                        module: String::new(),
                        function: "openat".into(),
                        name: "return".into(),
                    }),
                    kind,
                    clauses: vec![0],
                },
                site: Site::UserSpace,
                captures,
                kernel_filter: None,
                kernel_clauses: Vec::new(),
            }],
            strsize: 8,
            kernel_aggregations: Vec::new(),
            kernel_vars: Vec::new(),
            shadow_vars: Vec::new(),
            zones: Vec::new(),
            task: None,
            thread_members: Default::default(),
            follow: None,
            holds: Vec::new(),
        }
    }

    #[test]
    fn a_record_decodes_to_its_firing() {
        let captures = Captures {
            strings: vec![1, 2],
            bytes: vec![(0, 3)],
            ..Captures::default()
        };
        let plan = plan(ProbeKind::SyscallReturn, captures);
        let layout = Layout::new(&plan.probes[0].captures, 8);
        assert_eq!(layout.size, HEADER + 16 + 16 + 16);
        let mut r = vec![0u8; layout.size];
        r[4..8].copy_from_slice(&1u32.to_ne_bytes());
        r[16..20].copy_from_slice(&42u32.to_ne_bytes());
        r[40..43].copy_from_slice(b"cat");
        r[56..64].copy_from_slice(&5u64.to_ne_bytes());
        r[64..72].copy_from_slice(&(-2i64).to_ne_bytes());
        let (s1, s2, b) = (layout.strings[0].1, layout.strings[1].1, layout.bytes[0].2);
        r[s1..s1 + 8].copy_from_slice(&3i64.to_ne_bytes());
        r[s1 + 8..s1 + 11].copy_from_slice(b"ab\0");
        r[s2..s2 + 8].copy_from_slice(&8i64.to_ne_bytes());
        r[s2 + 8..s2 + 16].copy_from_slice(b"1234567\0");
        r[b + 8..b + 11].copy_from_slice(b"xyz");
        let f = decode(&r, &plan).unwrap();
        assert_eq!((f.cpu, f.pid), (1, 42));
        assert_eq!(f.comm, "cat");
        assert_eq!((f.zones, f.errno), (5, 2));
        assert_eq!(f.strings[0].value, "ab");
        assert!(!f.strings[0].truncated);
        assert_eq!(f.strings[1].value, "1234567");
        assert!(f.strings[1].truncated);
        assert_eq!(f.bytes[0].value, b"xyz");
    }

    #[test]
    fn derived_reads_decode_with_their_address_and_failures_are_left_out() {
        use crate::backend::linux::plan::{AddrExpr, DerivedRead};
        let load = AddrExpr::Load {
            addr: Box::new(AddrExpr::Arg(1)),
            bytes: 8,
            signed: false,
        };
        let captures = Captures {
            derived: vec![
                DerivedRead {
                    addr: load.clone(),
                    size: None,
                },
                DerivedRead {
                    addr: load,
                    size: Some(4),
                },
            ],
            ..Captures::default()
        };
        let plan = plan(ProbeKind::Uprobe, captures);
        let layout = Layout::new(&plan.probes[0].captures, 8);
        let (s, b) = (layout.derived[0], layout.derived[1]);
        assert!(s.string && !b.string);
        assert_eq!(b.data() - b.at, 16, "status, address, then data");
        let mut r = vec![0u8; layout.size];
        r[s.at..s.at + 8].copy_from_slice(&3i64.to_ne_bytes());
        r[s.addr()..s.addr() + 8].copy_from_slice(&0x1000u64.to_ne_bytes());
        r[s.data()..s.data() + 3].copy_from_slice(b"hi\0");
        r[b.at..b.at + 8].copy_from_slice(&(-14i64).to_ne_bytes());
        let f = decode(&r, &plan).unwrap();
        assert_eq!(
            f.reads,
            [MemoryRead {
                addr: 0x1000,
                data: ReadData::String {
                    value: "hi".into(),
                    truncated: false
                }
            }]
        );
    }

    #[test]
    fn short_records_and_unknown_probes_are_errors() {
        let plan = plan(ProbeKind::SyscallEntry, Captures::default());
        assert!(matches!(
            decode(&[0; 10], &plan),
            Err(DecodeError::TooShort { .. })
        ));
        let mut r = vec![0u8; HEADER];
        r[0] = 5;
        assert_eq!(
            decode(&r, &plan),
            Err(DecodeError::NoSuchProbe { index: 5, count: 1 })
        );
    }
}
