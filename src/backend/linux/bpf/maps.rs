//! BPF maps other than the ring buffer: hash, per-CPU hash, array, per-CPU array and array
//! of maps.
//!
//! Keys and values are byte slices, because their layouts come from D programs at run time.
//! A [`Map`] owns its fd; dropping it releases the map once no loaded program uses it.
//! Per-CPU maps exchange one value slot per possible CPU, each rounded up to 8 bytes, as the
//! kernel requires.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::cpus;
use super::insn::MapRef;
use super::sys::{self, BpfAttr, BpfCmd, MapCreateAttr, MapElemAttr, SysError};

/// The map types dtk creates (`enum bpf_map_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapType {
    /// `BPF_MAP_TYPE_HASH` (kernel ≥ 3.19).
    Hash,
    /// `BPF_MAP_TYPE_ARRAY` (kernel ≥ 3.19).
    Array,
    /// `BPF_MAP_TYPE_PERCPU_HASH` (kernel ≥ 4.6).
    PerCpuHash,
    /// `BPF_MAP_TYPE_PERCPU_ARRAY` (kernel ≥ 4.6): scratch space and counters without atomics.
    PerCpuArray,
    /// `BPF_MAP_TYPE_RINGBUF` (kernel ≥ 5.8); see `ringbuf`.
    RingBuf,
    /// `BPF_MAP_TYPE_ARRAY_OF_MAPS` (kernel ≥ 4.12): each slot holds another map, which
    /// programs look up and then use. Replacing a slot from user space returns only once no
    /// program that may have looked up the old map is still running (kernel ≥ 5.0).
    ArrayOfMaps,
}

impl MapType {
    pub(super) fn id(self) -> u32 {
        match self {
            MapType::Hash => 1,
            MapType::Array => 2,
            MapType::PerCpuHash => 5,
            MapType::PerCpuArray => 6,
            MapType::RingBuf => 27,
            MapType::ArrayOfMaps => 12,
        }
    }

    pub fn is_per_cpu(self) -> bool {
        matches!(self, MapType::PerCpuHash | MapType::PerCpuArray)
    }
}

/// A map to create: what a code generator asks for, before any system call (see
/// `insn::MapRef`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapSpec {
    /// Up to 15 bytes are kept; the kernel shows it in `bpftool map`.
    pub name: String,
    pub kind: MapType,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    /// For an array of maps: the map whose shape its slots take.
    pub inner: Option<MapRef>,
    /// (key, value) entries written once the map exists.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl MapSpec {
    pub fn new(
        kind: MapType,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        name: &str,
    ) -> MapSpec {
        MapSpec {
            name: name.to_string(),
            kind,
            key_size,
            value_size,
            max_entries,
            inner: None,
            entries: Vec::new(),
        }
    }
}

/// The maps a run's programs share, each named by its index ([`MapRef`]).
#[derive(Debug, Default)]
pub struct MapTable(Vec<MapSpec>);

impl MapTable {
    pub fn add(&mut self, spec: MapSpec) -> MapRef {
        self.0.push(spec);
        MapRef(self.0.len() as u32 - 1)
    }

    pub fn into_specs(self) -> Vec<MapSpec> {
        self.0
    }
}

/// Why a map operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error(transparent)]
    Sys(#[from] SysError),
    #[error("{what} is {got} bytes; this map's are {want}")]
    WrongSize {
        what: &'static str,
        got: usize,
        want: usize,
    },
    #[error("cannot read the CPU list")]
    Cpus(#[source] std::io::Error),
    #[error("ring buffer size {size} must be a power of two and a multiple of the page size")]
    RingBufSize { size: u32 },
    #[error("cannot map the ring buffer into memory")]
    Mmap(#[source] std::io::Error),
    #[error("epoll on the ring buffer failed")]
    Epoll(#[source] std::io::Error),
}

/// The `flags` of `BPF_MAP_UPDATE_ELEM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// `BPF_ANY`: create or replace.
    Any = 0,
    /// `BPF_NOEXIST`: create only.
    NoExist = 1,
    /// `BPF_EXIST`: replace only.
    Exist = 2,
}

/// A hash or array map, possibly per-CPU.
#[derive(Debug)]
pub struct Map {
    fd: OwnedFd,
    kind: MapType,
    key_size: usize,
    value_size: usize,
    max_entries: u32,
    /// Possible CPUs for per-CPU maps, 1 otherwise.
    slots: usize,
}

impl Map {
    /// Creates a map. `name` (up to 15 bytes are kept) shows in `bpftool map`.
    pub fn create(
        kind: MapType,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        name: &str,
    ) -> Result<Map, MapError> {
        let slots = if kind.is_per_cpu() {
            cpus::possible().map_err(MapError::Cpus)?.len()
        } else {
            1
        };
        let fd = create_fd(kind, key_size, value_size, max_entries, name)?;
        Ok(Map {
            fd,
            kind,
            key_size: key_size as usize,
            value_size: value_size as usize,
            max_entries,
            slots,
        })
    }

    /// Creates an array of `max_entries` maps shaped like `inner`; a slot's value is the fd
    /// of the map to put there (`Map::set_inner`), and empty until one is put.
    pub fn create_array_of_maps(
        inner: &Map,
        max_entries: u32,
        name: &str,
    ) -> Result<Map, MapError> {
        let kind = MapType::ArrayOfMaps;
        let mut attr = create_attr(kind, 4, 4, max_entries, name);
        attr.inner_map_fd = inner.fd() as u32;
        // SAFETY: MAP_CREATE's attributes hold no pointers; the inner fd is open.
        let fd = unsafe { sys::bpf_fd(BpfCmd::MapCreate, &mut BpfAttr::map_create(attr))? };
        Ok(Map {
            fd,
            kind,
            key_size: 4,
            value_size: 4,
            max_entries,
            slots: 1,
        })
    }

    /// Puts `inner` in slot `index` of an array of maps. Once this returns, no program runs
    /// that may still use the map the slot held before (the kernel waits for them).
    pub fn set_inner(&self, index: u32, inner: &Map) -> Result<(), MapError> {
        let fd = inner.fd() as u32;
        self.update(&index.to_ne_bytes(), &fd.to_ne_bytes(), Update::Any)
    }

    /// The fd to put in a program with `Asm::ld_map_fd`.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Size of one CPU's value slot in a per-CPU buffer.
    fn slot_size(&self) -> usize {
        if self.kind.is_per_cpu() {
            self.value_size.next_multiple_of(8)
        } else {
            self.value_size
        }
    }

    /// Sets `key` to `value`. For a per-CPU map, `value` holds one slot per possible CPU
    /// (see [`Map::per_cpu_value_size`]).
    pub fn update(&self, key: &[u8], value: &[u8], flags: Update) -> Result<(), MapError> {
        self.check("key", key.len(), self.key_size)?;
        self.check("value", value.len(), self.slot_size() * self.slots)?;
        let mut attr = BpfAttr::map_elem(MapElemAttr {
            map_fd: self.fd() as u32,
            key: key.as_ptr() as u64,
            value_or_next_key: value.as_ptr() as u64,
            flags: flags as u64,
            ..MapElemAttr::default()
        });
        // SAFETY: key and value were checked against the map's sizes above and outlive the
        // call; the kernel only reads them.
        unsafe { sys::bpf(BpfCmd::MapUpdateElem, &mut attr)? };
        Ok(())
    }

    /// The value at `key` (all CPUs' slots for a per-CPU map), or None if there is none.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        self.check("key", key.len(), self.key_size)?;
        let mut value = vec![0u8; self.slot_size() * self.slots];
        let mut attr = BpfAttr::map_elem(MapElemAttr {
            map_fd: self.fd() as u32,
            key: key.as_ptr() as u64,
            value_or_next_key: value.as_mut_ptr() as u64,
            ..MapElemAttr::default()
        });
        // SAFETY: the key was checked; `value` holds a whole (per-CPU) value, which is what
        // the kernel writes.
        match unsafe { sys::bpf(BpfCmd::MapLookupElem, &mut attr) } {
            Ok(_) => Ok(Some(value)),
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The value at `key` of a per-CPU map, split into one value per possible CPU.
    pub fn lookup_per_cpu(&self, key: &[u8]) -> Result<Option<Vec<Vec<u8>>>, MapError> {
        let slot = self.slot_size();
        let value_size = self.value_size;
        Ok(self.lookup(key)?.map(|all| {
            all.chunks(slot)
                .map(|chunk| chunk[..value_size].to_vec())
                .collect()
        }))
    }

    /// Sum over all CPUs of a u64 counter at `key` (native byte order); 0 if absent. This is
    /// how a program's per-CPU drop counters are read.
    pub fn sum_u64(&self, key: &[u8]) -> Result<u64, MapError> {
        let per_cpu = self.lookup_per_cpu(key)?.unwrap_or_default();
        Ok(per_cpu
            .iter()
            .filter_map(|v| v.get(..8))
            .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
            .fold(0u64, u64::wrapping_add))
    }

    /// Bytes of the buffer `update` takes for a per-CPU map: one 8-aligned slot per CPU.
    pub fn per_cpu_value_size(&self) -> usize {
        self.slot_size() * self.slots
    }

    /// Deletes `key`. Returns whether it was there. Arrays cannot delete (EINVAL).
    pub fn delete(&self, key: &[u8]) -> Result<bool, MapError> {
        self.check("key", key.len(), self.key_size)?;
        let mut attr = BpfAttr::map_elem(MapElemAttr {
            map_fd: self.fd() as u32,
            key: key.as_ptr() as u64,
            ..MapElemAttr::default()
        });
        // SAFETY: the key was checked against the key size and outlives the call.
        match unsafe { sys::bpf(BpfCmd::MapDeleteElem, &mut attr) } {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The key after `key` (the first key when `key` is None), or None at the end.
    pub fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        if let Some(k) = key {
            self.check("key", k.len(), self.key_size)?;
        }
        let mut next = vec![0u8; self.key_size];
        let mut attr = BpfAttr::map_elem(MapElemAttr {
            map_fd: self.fd() as u32,
            key: key.map_or(0, |k| k.as_ptr() as u64),
            value_or_next_key: next.as_mut_ptr() as u64,
            ..MapElemAttr::default()
        });
        // SAFETY: the key (if any) was checked; `next` has room for one key.
        match unsafe { sys::bpf(BpfCmd::MapGetNextKey, &mut attr) } {
            Ok(_) => Ok(Some(next)),
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every key, walked with `BPF_MAP_GET_NEXT_KEY`. A hash map that changes during the walk
    /// may restart from the beginning (kernel behaviour when the current key is deleted), so
    /// the walk stops after `max_entries` keys.
    pub fn keys(&self) -> Result<Vec<Vec<u8>>, MapError> {
        let mut keys = Vec::new();
        let mut current = self.next_key(None)?;
        while let Some(key) = current {
            if keys.len() >= self.max_entries as usize {
                break;
            }
            current = self.next_key(Some(&key))?;
            keys.push(key);
        }
        Ok(keys)
    }

    fn check(&self, what: &'static str, got: usize, want: usize) -> Result<(), MapError> {
        if got == want {
            Ok(())
        } else {
            Err(MapError::WrongSize { what, got, want })
        }
    }
}

impl AsFd for Map {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `BPF_MAP_CREATE` for any map type; the ring buffer uses it too.
/// `BPF_F_NO_PREALLOC`, from include/uapi/linux/bpf.h.
const BPF_F_NO_PREALLOC: u32 = 1;

pub(super) fn create_fd(
    kind: MapType,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    name: &str,
) -> Result<OwnedFd, SysError> {
    let attr = create_attr(kind, key_size, value_size, max_entries, name);
    // SAFETY: MAP_CREATE's attributes hold no pointers.
    unsafe { sys::bpf_fd(BpfCmd::MapCreate, &mut BpfAttr::map_create(attr)) }
}

/// The attributes of `BPF_MAP_CREATE`, with `name` cut to what the kernel keeps.
fn create_attr(
    kind: MapType,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    name: &str,
) -> MapCreateAttr {
    let mut map_name = [0u8; 16];
    let keep: Vec<u8> = name
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
        .take(15)
        .collect();
    map_name[..keep.len()].copy_from_slice(&keep);
    // Hash maps allocate their elements when keys arrive instead of all at creation:
    // preallocating 16k per-CPU elements costs about 13 ms, most of dtk's startup.
    // Non-preallocated hash maps in perf_event (profile-N) programs need Linux ≥ 6.1.
    let map_flags = match kind {
        MapType::Hash | MapType::PerCpuHash => BPF_F_NO_PREALLOC,
        _ => 0,
    };
    MapCreateAttr {
        map_type: kind.id(),
        key_size,
        value_size,
        max_entries,
        map_flags,
        map_name,
        ..MapCreateAttr::default()
    }
}
