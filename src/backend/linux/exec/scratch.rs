//! alloca()'s scratch memory: `scratchsize` bytes for one clause, freed when the clause
//! ends, as in DTrace (a second clause of the same firing gets the same addresses). Pointers into it are plain integers at [`SCRATCH_BASE`], so
//! D's pointer arithmetic works on them; loads, stores, bcopy() and copyinto() at such an
//! address reach the buffer, and anything past what alloca() handed out faults.

use std::ops::Range;
use std::sync::Arc;

use super::value::Value;
use super::{Fault, State};
use crate::backend::linux::d::ast::DType;

/// Where scratch memory appears to the program: an address no user mapping has.
pub(super) const SCRATCH_BASE: u64 = 0xffff_e000_0000_0000;

/// Scratch memory of the clause being run.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    bytes: Vec<u8>,
}

impl Scratch {
    /// Frees everything: a new clause starts with empty scratch space.
    pub(super) fn clear(&mut self) {
        self.bytes.clear();
    }

    /// alloca(size): `size` zeroed bytes, 8-byte aligned, or `None` past `limit`.
    pub(super) fn alloc(&mut self, size: u64, limit: usize) -> Option<u64> {
        let start = self.bytes.len().next_multiple_of(8);
        let end = usize::try_from(size).ok()?.checked_add(start)?;
        if end > limit {
            return None;
        }
        self.bytes.resize(end, 0);
        Some(SCRATCH_BASE + start as u64)
    }

    /// The bytes `len` bytes at `addr` occupy, if all were handed out.
    fn range(&self, addr: u64, len: u64) -> Option<Range<usize>> {
        let start = usize::try_from(addr.checked_sub(SCRATCH_BASE)?).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        (end <= self.bytes.len()).then_some(start..end)
    }

    /// Whether `addr` points into scratch space (handed out or not).
    pub(super) fn holds(&self, addr: u64) -> bool {
        addr >= SCRATCH_BASE && addr - SCRATCH_BASE < 1 << 32
    }

    /// The memory from `addr` to the end of what was handed out, as a value members and
    /// elements are read from; `None` when `addr` is not in scratch space.
    pub(super) fn view(&self, addr: u64) -> Option<Value> {
        let range = self.range(addr, 0)?;
        Some(Value::Memory {
            addr,
            bytes: Arc::from(&self.bytes[range.start..]),
        })
    }

    /// The `len` bytes at `addr`, mutable; an invalid address past what was handed out.
    pub(super) fn slice_mut(&mut self, addr: u64, len: u64) -> Result<&mut [u8], Fault> {
        let range = self.range(addr, len).ok_or(Fault::InvalidAddress(addr))?;
        Ok(&mut self.bytes[range])
    }
}

impl State {
    /// alloca(size): a pointer to `size` fresh bytes of scratch memory.
    pub(super) fn alloca(&mut self, size: u64) -> Result<Value, Fault> {
        let limit = self.options.scratchsize;
        self.scratch
            .alloc(size, limit)
            .map(Value::Int)
            .ok_or(Fault::NoScratch)
    }

    /// Copies `bytes` to `dst`, which must be `bytes.len()` bytes of scratch memory.
    pub(super) fn copy_to_scratch(&mut self, bytes: &[u8], dst: u64) -> Result<(), Fault> {
        self.scratch
            .slice_mut(dst, bytes.len() as u64)?
            .copy_from_slice(bytes);
        Ok(())
    }

    /// A pointer into scratch space as the memory it points at; other values as they are.
    pub(super) fn deref_scratch(&self, v: Value) -> Value {
        match v {
            Value::Int(addr) if self.scratch.holds(addr) => {
                self.scratch.view(addr).unwrap_or(Value::Int(addr))
            }
            other => other,
        }
    }

    /// A string-typed pointer into scratch space as the string stored there (up to its NUL,
    /// at most strsize bytes); other values as they are.
    pub(super) fn scratch_string(&self, v: Value, ty: &DType) -> Value {
        match self.deref_scratch(v) {
            Value::Memory { bytes, .. } if ty.is_string_like() => {
                let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                Value::str(&bytes[..end.min(self.options.strsize)])
            }
            Value::Memory { addr, .. } => Value::Int(addr),
            other => other,
        }
    }

    /// The first `n` bytes of what `v` holds or points at: bcopy()'s source.
    pub(super) fn source_bytes(&self, v: &Value, n: usize) -> Result<Vec<u8>, Fault> {
        let fault = || Fault::InvalidAddress(v.int());
        let bytes: Vec<u8> = match self.deref_scratch(v.clone()) {
            // A string's storage is strsize bytes, NUL-padded.
            Value::Str(s) if n <= self.options.strsize + 1 => {
                let mut b = s.to_vec();
                b.resize(b.len().max(n), 0);
                b
            }
            Value::Memory { bytes, .. } => bytes.to_vec(),
            Value::User { capture, .. } => capture.bytes.as_deref().ok_or_else(fault)?.to_vec(),
            _ => return Err(fault()),
        };
        bytes.get(..n).map(<[u8]>::to_vec).ok_or_else(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_aligned_bounded_and_freed() {
        let mut s = Scratch::default();
        let a = s.alloc(3, 64).unwrap();
        let b = s.alloc(8, 64).unwrap();
        assert_eq!(a, SCRATCH_BASE);
        assert_eq!(b, SCRATCH_BASE + 8);
        assert!(s.slice_mut(b, 8).is_ok());
        assert!(
            s.slice_mut(b + 1, 8).is_err(),
            "a store past the top faults"
        );
        assert!(
            s.slice_mut(a - 1, 1).is_err(),
            "a store below the bottom faults"
        );
        assert_eq!(s.alloc(49, 64), None, "16 used + 49 is past scratchsize");
        assert!(s.alloc(48, 64).is_some());
        s.clear();
        assert!(s.slice_mut(a, 1).is_err(), "freed at the end of the firing");
        assert_eq!(s.alloc(0, 64), Some(SCRATCH_BASE));
    }
}
