//! The running kernel's types, from its BTF (/sys/kernel/btf/vmlinux, kernel ≥ 5.4 built
//! with CONFIG_DEBUG_INFO_BTF).
//!
//! dtk reads process state at the probe by following `task_struct` pointers with
//! `bpf_probe_read_kernel`; the offsets of those fields differ from one kernel build to the
//! next, so they are taken from the kernel's own type information, never written down here.
//! This is what libbpf's CO-RE relocations do, done once at startup instead of by a compiler.
//!
//! The reader is small on purpose: it indexes where each type record starts (one pass over
//! the type section, a few milliseconds for vmlinux) and answers the few questions the engine
//! asks: a struct by name, a member's byte offset (through anonymous structs and unions), the
//! type a pointer or array leads to, a size, and an enumerator's value.

use std::path::Path;

use thiserror::Error;

/// Where the kernel publishes its BTF.
pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;

/// BTF kinds (include/uapi/linux/btf.h).
mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const FWD: u32 = 7;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub const FLOAT: u32 = 16;
    pub const DECL_TAG: u32 = 17;
    pub const TYPE_TAG: u32 = 18;
    pub const ENUM64: u32 = 19;
}

/// Why BTF could not be read or did not answer.
#[derive(Debug, Error)]
pub enum BtfError {
    #[error(
        "{what} needs the kernel's BTF type information, but {path} cannot be read ({source}); \
         it needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (5.4 or later)"
    )]
    Unavailable {
        what: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the kernel's BTF is malformed: {0}")]
    Malformed(String),
    #[error("the kernel's BTF has no {0}")]
    Missing(String),
}

/// A type id: an index into the type section, counted from 1 (0 is void).
pub type TypeId = u32;

/// A member found by name: where it starts in its outermost struct, and its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub offset: u32,
    pub ty: TypeId,
}

/// The bytes of a BTF blob: mapped from the kernel's file where it allows (Linux ≥ 6.16
/// lets /sys/kernel/btf/vmlinux be mapped: no copy of its megabytes), else read.
enum Bytes {
    Owned(Vec<u8>),
    Mapped { addr: *mut libc::c_void, len: usize },
}

// SAFETY: a Mapped region is a private read-only mapping that nothing writes and that is
// unmapped only on drop, so sharing or sending it between threads is as safe as a &[u8].
unsafe impl Send for Bytes {}
// SAFETY: as for Send.
unsafe impl Sync for Bytes {}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            // SAFETY: addr..addr+len is mapped readable for as long as self lives.
            Bytes::Mapped { addr, len } => unsafe {
                std::slice::from_raw_parts(*addr as *const u8, *len)
            },
        }
    }
}

impl Drop for Bytes {
    fn drop(&mut self) {
        if let Bytes::Mapped { addr, len } = *self {
            // SAFETY: the region was mapped by `map` and is not used after this.
            unsafe { libc::munmap(addr, len) };
        }
    }
}

impl Bytes {
    /// The file mapped read-only, or None when it cannot be (older kernels refuse mmap of
    /// sysfs BTF).
    fn map(file: &std::fs::File) -> Option<Bytes> {
        use std::os::fd::AsRawFd;
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if len == 0 {
            return None;
        }
        // SAFETY: a fresh private read-only mapping of an open file; the result is checked.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        (addr != libc::MAP_FAILED).then_some(Bytes::Mapped { addr, len })
    }
}

/// The parsed BTF of one object (vmlinux).
pub struct Btf {
    data: Bytes,
    /// Start of the type section and of the string section in `data`.
    strings: (usize, usize),
    /// Byte offset of each type record, by id; `records[0]` stands for void.
    records: Vec<usize>,
}

/// The fixed part of a type record.
struct Record {
    name_off: u32,
    kind: u32,
    vlen: usize,
    kind_flag: bool,
    /// `size` or `type`, by kind.
    size_or_type: u32,
    /// Start of the kind's own data.
    extra: usize,
}

impl Btf {
    /// The running kernel's BTF; `what` names the feature that needs it, for the error.
    pub fn kernel(what: &str) -> Result<Btf, BtfError> {
        Btf::read(Path::new(VMLINUX), what)
    }

    pub fn read(path: &Path, what: &str) -> Result<Btf, BtfError> {
        let unavailable = |source| BtfError::Unavailable {
            what: what.to_string(),
            path: path.display().to_string(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(unavailable)?;
        let data = match Bytes::map(&file) {
            Some(mapped) => mapped,
            None => {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut file, &mut data).map_err(unavailable)?;
                Bytes::Owned(data)
            }
        };
        Btf::index(data)
    }

    pub fn parse(data: Vec<u8>) -> Result<Btf, BtfError> {
        Btf::index(Bytes::Owned(data))
    }

    fn index(data: Bytes) -> Result<Btf, BtfError> {
        let bad = |m: &str| BtfError::Malformed(m.to_string());
        let u32_at = |at: usize| -> Result<u32, BtfError> {
            let b = data
                .get(at..at + 4)
                .ok_or_else(|| bad("truncated header"))?;
            Ok(u32::from_ne_bytes(b.try_into().expect("4 bytes")))
        };
        let magic = data.get(0..2).ok_or_else(|| bad("empty"))?;
        if u16::from_ne_bytes([magic[0], magic[1]]) != MAGIC {
            return Err(bad("bad magic (or a foreign byte order)"));
        }
        let hdr_len = u32_at(4)? as usize;
        let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
        let (str_off, str_len) = (u32_at(16)? as usize, u32_at(20)? as usize);
        let types = hdr_len + type_off;
        let strings = hdr_len + str_off;
        if types + type_len > data.len() || strings + str_len > data.len() {
            return Err(bad("sections run past the end"));
        }
        let mut btf = Btf {
            data,
            strings: (strings, strings + str_len),
            records: vec![0],
        };
        let mut at = types;
        while at < types + type_len {
            btf.records.push(at);
            let r = btf.record_at(at)?;
            at = r.extra + extra_len(&r)?;
        }
        Ok(btf)
    }

    fn u32(&self, at: usize) -> Result<u32, BtfError> {
        let b = self
            .data
            .get(at..at + 4)
            .ok_or_else(|| BtfError::Malformed(format!("a type record runs past {at}")))?;
        Ok(u32::from_ne_bytes(b.try_into().expect("4 bytes")))
    }

    fn record_at(&self, at: usize) -> Result<Record, BtfError> {
        let info = self.u32(at + 4)?;
        Ok(Record {
            name_off: self.u32(at)?,
            kind: (info >> 24) & 0x1f,
            vlen: (info & 0xffff) as usize,
            kind_flag: info >> 31 == 1,
            size_or_type: self.u32(at + 8)?,
            extra: at + 12,
        })
    }

    fn record(&self, id: TypeId) -> Result<Record, BtfError> {
        match self.records.get(id as usize) {
            Some(&at) if id != 0 => self.record_at(at),
            _ => Err(BtfError::Malformed(format!("no type {id}"))),
        }
    }

    fn name(&self, off: u32) -> &[u8] {
        let start = self.strings.0 + off as usize;
        let rest = self.data.get(start..self.strings.1).unwrap_or(&[]);
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    }

    /// How many types there are (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.records.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The struct (or union) named `name`, skipping forward declarations.
    pub fn struct_named(&self, name: &str) -> Result<TypeId, BtfError> {
        self.named(name, &[kind::STRUCT, kind::UNION])
            .ok_or_else(|| BtfError::Missing(format!("struct {name}")))
    }

    fn named(&self, name: &str, kinds: &[u32]) -> Option<TypeId> {
        (1..self.records.len() as TypeId).find(|&id| {
            self.record(id)
                .is_ok_and(|r| kinds.contains(&r.kind) && self.name(r.name_off) == name.as_bytes())
        })
    }

    /// `id` with typedefs and qualifiers stripped.
    pub fn resolve(&self, mut id: TypeId) -> Result<TypeId, BtfError> {
        for _ in 0..32 {
            let r = self.record(id)?;
            match r.kind {
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                    id = r.size_or_type
                }
                _ => return Ok(id),
            }
        }
        Err(BtfError::Malformed(format!("type {id} loops")))
    }

    /// The byte size of `id`.
    pub fn size_of(&self, id: TypeId) -> Result<u32, BtfError> {
        let id = self.resolve(id)?;
        let r = self.record(id)?;
        match r.kind {
            kind::INT | kind::STRUCT | kind::UNION | kind::ENUM | kind::ENUM64 | kind::FLOAT => {
                Ok(r.size_or_type)
            }
            kind::PTR => Ok(8),
            kind::ARRAY => {
                let (elem, count) = self.array(id)?;
                Ok(self.size_of(elem)? * count)
            }
            _ => Err(BtfError::Malformed(format!("type {id} has no size"))),
        }
    }

    /// The type a pointer `id` points to (qualifiers stripped).
    pub fn pointee(&self, id: TypeId) -> Result<TypeId, BtfError> {
        let id = self.resolve(id)?;
        let r = self.record(id)?;
        if r.kind != kind::PTR {
            return Err(BtfError::Malformed(format!("type {id} is not a pointer")));
        }
        self.resolve(r.size_or_type)
    }

    /// An array's element type and length.
    pub fn array(&self, id: TypeId) -> Result<(TypeId, u32), BtfError> {
        let id = self.resolve(id)?;
        let r = self.record(id)?;
        if r.kind != kind::ARRAY {
            return Err(BtfError::Malformed(format!("type {id} is not an array")));
        }
        Ok((self.u32(r.extra)?, self.u32(r.extra + 8)?))
    }

    /// The size and signedness of a scalar type (integer, enum or pointer); None for structs,
    /// unions, arrays and the rest.
    pub fn scalar(&self, id: TypeId) -> Result<Option<(u32, bool)>, BtfError> {
        let id = self.resolve(id)?;
        let r = self.record(id)?;
        Ok(match r.kind {
            kind::INT => Some((r.size_or_type, (self.u32(r.extra)? >> 24) & 1 == 1)),
            kind::ENUM | kind::ENUM64 => Some((r.size_or_type, r.kind_flag)),
            kind::PTR => Some((8, false)),
            _ => None,
        })
    }

    /// Whether `id` (resolved) is a pointer.
    pub fn is_pointer(&self, id: TypeId) -> bool {
        self.resolve(id)
            .and_then(|id| self.record(id))
            .is_ok_and(|r| r.kind == kind::PTR)
    }

    /// Whether `id` (resolved) is an array.
    pub fn is_array(&self, id: TypeId) -> bool {
        self.resolve(id)
            .and_then(|id| self.record(id))
            .is_ok_and(|r| r.kind == kind::ARRAY)
    }

    /// The member `name` of struct or union `id`, looked for in its anonymous members too,
    /// with its byte offset from the start of `id`. Bitfields are refused: they are not
    /// byte-addressable.
    pub fn member(&self, id: TypeId, name: &str) -> Result<Member, BtfError> {
        self.find_member(id, name)?.ok_or_else(|| {
            let owner = self
                .record(id)
                .map(|r| String::from_utf8_lossy(self.name(r.name_off)).into_owned())
                .unwrap_or_default();
            BtfError::Missing(format!("member {name} in struct {owner}"))
        })
    }

    fn find_member(&self, id: TypeId, name: &str) -> Result<Option<Member>, BtfError> {
        let id = self.resolve(id)?;
        let r = self.record(id)?;
        if r.kind != kind::STRUCT && r.kind != kind::UNION {
            return Err(BtfError::Malformed(format!("type {id} is not a struct")));
        }
        for i in 0..r.vlen {
            let at = r.extra + 12 * i;
            let (name_off, ty, raw) = (self.u32(at)?, self.u32(at + 4)?, self.u32(at + 8)?);
            let (bits, size) = if r.kind_flag {
                (raw & 0xff_ffff, raw >> 24)
            } else {
                (raw, 0)
            };
            let member_name = self.name(name_off);
            if member_name == name.as_bytes() {
                if size != 0 || bits % 8 != 0 {
                    return Err(BtfError::Missing(format!("byte-aligned member {name}")));
                }
                return Ok(Some(Member {
                    offset: bits / 8,
                    ty,
                }));
            }
            if member_name.is_empty() && bits % 8 == 0 {
                if let Some(inner) = self.find_member(ty, name)? {
                    return Ok(Some(Member {
                        offset: bits / 8 + inner.offset,
                        ty: inner.ty,
                    }));
                }
            }
        }
        Ok(None)
    }

    /// The offset and type of a dotted path of members within struct `root`
    /// (`"thread.fsbase"`); no pointer is followed.
    pub fn path(&self, root: &str, path: &str) -> Result<Member, BtfError> {
        let mut at = Member {
            offset: 0,
            ty: self.struct_named(root)?,
        };
        for name in path.split('.') {
            let m = self.member(at.ty, name)?;
            at = Member {
                offset: at.offset + m.offset,
                ty: m.ty,
            };
        }
        Ok(at)
    }

    /// The value of enumerator `name` (of any enum).
    pub fn enumerator(&self, name: &str) -> Result<i64, BtfError> {
        for id in 1..self.records.len() as TypeId {
            let r = self.record(id)?;
            let width = match r.kind {
                kind::ENUM => 8,
                kind::ENUM64 => 12,
                _ => continue,
            };
            for i in 0..r.vlen {
                let at = r.extra + width * i;
                if self.name(self.u32(at)?) == name.as_bytes() {
                    let lo = self.u32(at + 4)?;
                    return Ok(if r.kind == kind::ENUM {
                        i64::from(lo as i32)
                    } else {
                        (i64::from(self.u32(at + 8)?) << 32) | i64::from(lo)
                    });
                }
            }
        }
        Err(BtfError::Missing(format!("enumerator {name}")))
    }
}

/// Bytes of kind-specific data after a record's fixed part.
fn extra_len(r: &Record) -> Result<usize, BtfError> {
    Ok(match r.kind {
        kind::INT | kind::VAR | kind::DECL_TAG => 4,
        kind::PTR
        | kind::FWD
        | kind::TYPEDEF
        | kind::VOLATILE
        | kind::CONST
        | kind::RESTRICT
        | kind::FUNC
        | kind::FLOAT
        | kind::TYPE_TAG => 0,
        kind::ARRAY => 12,
        kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => 12 * r.vlen,
        kind::ENUM | kind::FUNC_PROTO => 8 * r.vlen,
        other => return Err(BtfError::Malformed(format!("unknown kind {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny BTF blob: `struct s { int a; union { long b; }; int c[4]; }` and
    /// `enum e { X = 3 }`, written as the kernel lays it out.
    fn blob() -> Vec<u8> {
        let strings = b"\0s\0a\0b\0c\0int\0long\0e\0X\0";
        let off = |name: &[u8]| {
            strings
                .windows(name.len() + 2)
                .position(|w| w[0] == 0 && &w[1..=name.len()] == name && w[name.len() + 1] == 0)
                .unwrap() as u32
                + 1
        };
        let info = |kind: u32, vlen: u32| (kind << 24) | vlen;
        let mut t: Vec<u32> = Vec::new();
        // 1: int
        t.extend([off(b"int"), info(kind::INT, 0), 4, 32]);
        // 2: long
        t.extend([off(b"long"), info(kind::INT, 0), 8, 64]);
        // 3: anonymous union { long b; }
        t.extend([0, info(kind::UNION, 1), 8, off(b"b"), 2, 0]);
        // 4: int[4] (index type int)
        t.extend([0, info(kind::ARRAY, 0), 0, 1, 1, 4]);
        // 5: struct s
        t.extend([off(b"s"), info(kind::STRUCT, 3), 32]);
        t.extend([off(b"a"), 1, 0, 0, 3, 64, off(b"c"), 4, 128]);
        // 6: enum e { X = 3 }
        t.extend([off(b"e"), info(kind::ENUM, 1), 4, off(b"X"), 3]);
        // 7: pointer to struct s
        t.extend([0, info(kind::PTR, 0), 5]);
        let types: Vec<u8> = t.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let mut data = Vec::new();
        data.extend(MAGIC.to_ne_bytes());
        data.extend([1u8, 0]);
        for v in [24u32, 0, types.len() as u32, types.len() as u32] {
            data.extend(v.to_ne_bytes());
        }
        data.extend((strings.len() as u32).to_ne_bytes());
        data.extend(types);
        data.extend(strings);
        data
    }

    #[test]
    fn reads_members_through_anonymous_unions() {
        let btf = Btf::parse(blob()).unwrap();
        assert_eq!(btf.len(), 7);
        let s = btf.struct_named("s").unwrap();
        assert_eq!(btf.member(s, "a").unwrap(), Member { offset: 0, ty: 1 });
        assert_eq!(btf.member(s, "b").unwrap(), Member { offset: 8, ty: 2 });
        assert_eq!(btf.path("s", "c").unwrap().offset, 16);
        assert_eq!(btf.array(4).unwrap(), (1, 4));
        assert_eq!(btf.size_of(s).unwrap(), 32);
        assert_eq!(btf.size_of(4).unwrap(), 16);
        assert_eq!(btf.pointee(7).unwrap(), s);
        assert_eq!(btf.enumerator("X").unwrap(), 3);
        assert_eq!(btf.scalar(1).unwrap(), Some((4, false)));
        assert_eq!(btf.scalar(7).unwrap(), Some((8, false)));
        assert_eq!(btf.scalar(s).unwrap(), None);
        assert!(btf.is_pointer(7) && !btf.is_pointer(s));
        assert!(matches!(btf.member(s, "zz"), Err(BtfError::Missing(_))));
        assert!(matches!(btf.enumerator("Y"), Err(BtfError::Missing(_))));
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(Btf::parse(Vec::new()).is_err());
        assert!(Btf::parse(vec![0; 24]).is_err());
        let mut cut = blob();
        cut.truncate(40);
        assert!(Btf::parse(cut).is_err());
    }

    #[test]
    fn missing_file_names_what_needs_it() {
        let err = Btf::read(Path::new("/nonexistent/vmlinux"), "ppid")
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(text.contains("ppid needs") && text.contains("CONFIG_DEBUG_INFO_BTF"));
    }
}
