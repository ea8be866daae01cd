//! Decoding of trace records: the bytes one action stored, described by its
//! `dtrace_recdesc_t`, into the event model's [`Value`]s.
//!
//! Everything here works on byte slices that the caller cut from libdtrace's buffers, so a
//! malformed description yields [`Value::Bytes`] or nothing, never a read out of bounds.

use crate::event::Value;

/// What the compiler said about a traced value (libdtrace's DT_NF_* flags, which it stores
/// in `dtrd_arg` of trace() records; not in the public header).
const NF_SIGNED: u64 = 0x01;
const NF_REF: u64 = 0x04;

/// The shape of one record, taken from its description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordShape {
    pub size: usize,
    pub alignment: usize,
    /// The DT_NF_* flags for trace(), 0 elsewhere.
    pub flags: u64,
}

impl RecordShape {
    /// Whether the value is a string: by-reference data with byte alignment, or (printf and
    /// aggregation keys, which carry no flags) byte-aligned data longer than one byte.
    fn is_string(&self) -> bool {
        self.alignment == 1 && (self.flags & NF_REF != 0 || self.size > 1)
    }

    fn is_integer(&self) -> bool {
        self.flags & NF_REF == 0
            && matches!(self.size, 1 | 2 | 4 | 8)
            && self.alignment == self.size
    }
}

/// The value stored in `bytes` (exactly the record's bytes). Integers without a sign flag
/// are unsigned only when the compiler said so (trace() of an unsigned type); printf
/// arguments and aggregation keys come without flags and are read as signed, as
/// D's `%d` reads them.
pub fn decode(shape: RecordShape, bytes: &[u8], unsigned_known: bool) -> Value {
    if shape.is_integer() {
        let value = read_int(bytes, shape.size, true);
        if unsigned_known && shape.flags & NF_SIGNED == 0 {
            return Value::UInt(read_int(bytes, shape.size, false) as u64);
        }
        return Value::Int(value);
    }
    if shape.is_string() {
        return Value::Str(c_string(bytes).into());
    }
    Value::Bytes(bytes.to_vec())
}

/// An integer of 1, 2, 4 or 8 bytes in native byte order, sign- or zero-extended.
pub fn read_int(bytes: &[u8], size: usize, signed: bool) -> i64 {
    let mut raw = [0u8; 8];
    let Some(src) = bytes.get(..size) else {
        return 0;
    };
    match size {
        1 => {
            if signed {
                return i64::from(src[0] as i8);
            }
            i64::from(src[0])
        }
        2 => {
            let v = [src[0], src[1]];
            if signed {
                return i64::from(i16::from_ne_bytes(v));
            }
            i64::from(u16::from_ne_bytes(v))
        }
        4 => {
            let v = [src[0], src[1], src[2], src[3]];
            if signed {
                return i64::from(i32::from_ne_bytes(v));
            }
            i64::from(u32::from_ne_bytes(v))
        }
        8 => {
            raw.copy_from_slice(src);
            i64::from_ne_bytes(raw)
        }
        _ => 0,
    }
}

/// The 64-bit words of `bytes`, in native byte order (stacks and aggregation data).
pub fn words(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|w| u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]))
        .collect()
}

/// The NUL-terminated string at the start of `bytes` (all of it when there is no NUL), as
/// the traced program wrote it: UTF-8 or not.
pub fn c_string(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(size: usize, alignment: usize, flags: u64) -> RecordShape {
        RecordShape {
            size,
            alignment,
            flags,
        }
    }

    #[test]
    fn integers_of_every_size_are_sign_extended() {
        assert_eq!(decode(shape(1, 1, 0), &[0xff], false), Value::Int(-1));
        assert_eq!(
            decode(shape(2, 2, 0), &(-2i16).to_ne_bytes(), false),
            Value::Int(-2)
        );
        assert_eq!(
            decode(shape(4, 4, 0), &(-3i32).to_ne_bytes(), false),
            Value::Int(-3)
        );
        assert_eq!(
            decode(shape(8, 8, 0), &i64::MIN.to_ne_bytes(), false),
            Value::Int(i64::MIN)
        );
    }

    #[test]
    fn trace_of_an_unsigned_type_stays_unsigned() {
        assert_eq!(
            decode(shape(4, 4, 0), &u32::MAX.to_ne_bytes(), true),
            Value::UInt(u64::from(u32::MAX))
        );
        assert_eq!(
            decode(shape(8, 8, 0), &u64::MAX.to_ne_bytes(), true),
            Value::UInt(u64::MAX)
        );
        assert_eq!(
            decode(shape(4, 4, NF_SIGNED), &(-5i32).to_ne_bytes(), true),
            Value::Int(-5)
        );
    }

    #[test]
    fn strings_stop_at_the_nul() {
        let mut bytes = b"cat\0junk".to_vec();
        bytes.resize(257, 0);
        assert_eq!(
            decode(shape(257, 1, 0), &bytes, false),
            Value::Str("cat".into())
        );
        assert_eq!(
            decode(shape(257, 1, NF_REF), &bytes, true),
            Value::Str("cat".into())
        );
    }

    #[test]
    fn other_data_is_raw_bytes() {
        let bytes = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        assert_eq!(
            decode(shape(12, 4, NF_REF), &bytes, true),
            Value::Bytes(bytes.to_vec())
        );
    }

    #[test]
    fn short_input_reads_as_zero() {
        assert_eq!(read_int(&[1, 2], 4, true), 0);
        assert_eq!(words(&[0; 12]), vec![0]);
    }
}
