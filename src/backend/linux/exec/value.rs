//! Run-time values of the executor. The integer rules they follow are `d::arith`'s.
//!
//! D reads user memory at the probe; here the kernel did that read and the firing carries what
//! it found. A value that came from `argN` (or `args[N]`) of such a firing is a [`Value::User`]
//! that keeps the captured string and bytes, so that `copyinstr(self->path)` at a return probe
//! works on what was read at the entry probe. Assignments and casts keep the capture;
//! arithmetic makes a plain integer, as a pointer moved by arithmetic no longer points at what
//! was read.

use std::sync::Arc;

use crate::backend::linux::d::arith::{is_signed, normalize};
use crate::backend::linux::d::ast::DType;
use crate::event;

use super::Fault;

/// What the kernel read at a user address when the probe fired.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Capture {
    /// The string copyinstr would read (already cut at strsize by the kernel).
    pub string: Option<Arc<[u8]>>,
    /// The bytes copyin would read; empty when the read faulted.
    pub bytes: Option<Arc<[u8]>>,
    /// The kernel cut the string at strsize.
    pub truncated: bool,
}

/// Named stack frames, as dtrace prints them (`module`function+0xoffset`).
pub type Frames = Arc<[Arc<str>]>;

/// One value computed by a D expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An integer or pointer, in the canonical 64-bit form of its type: sign-extended for
    /// signed types, zero-extended for unsigned ones.
    Int(u64),
    /// A D string: bytes, as in DTrace (a traced name need not be UTF-8).
    Str(Arc<[u8]>),
    /// A user address with what the kernel read there.
    User { addr: u64, capture: Arc<Capture> },
    /// The scratch buffer `copyin` returns: the bytes read from `addr`.
    Memory { addr: u64, bytes: Arc<[u8]> },
    /// The value of `stack()` or `ustack()`: its frames, named, innermost first.
    Stack(Frames),
}

impl Value {
    pub fn str(s: impl AsRef<[u8]>) -> Value {
        Value::Str(Arc::from(s.as_ref()))
    }

    /// The integer value (the address of a pointer); 0 for strings and stacks.
    pub fn int(&self) -> u64 {
        match self {
            Value::Int(v) => *v,
            Value::User { addr, .. } | Value::Memory { addr, .. } => *addr,
            Value::Str(_) | Value::Stack(_) => 0,
        }
    }

    /// D's truth: a non-zero integer or pointer, or a non-empty string.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Stack(frames) => !frames.is_empty(),
            other => other.int() != 0,
        }
    }

    /// The zero value of a type: what an unset variable reads as. For a string that is
    /// DTrace's NULL pointer, which compares as "" and prints as "", but faults where
    /// trace() reads the string ([`Value::string`]).
    pub fn zero(_ty: &DType) -> Value {
        Value::Int(0)
    }

    /// The value as the string operand of `ty`: a NULL string (an unset string variable)
    /// is an invalid address, as DTrace's load from address 0 is.
    pub fn string(self, ty: &DType) -> Result<Value, Fault> {
        match self {
            Value::Int(addr) if *ty == DType::String => Err(Fault::InvalidAddress(addr)),
            v => Ok(v),
        }
    }

    /// Converts to `ty` as an assignment or cast does: integers are cut to the type's width;
    /// a user pointer keeps its capture whatever integer type it is cast to.
    pub fn convert(self, ty: &DType) -> Value {
        match (self, ty) {
            (Value::Int(v), _) => Value::Int(normalize(v, ty)),
            (Value::User { addr, capture }, DType::Int { .. }) => Value::User {
                addr: normalize(addr, ty),
                capture,
            },
            (v, _) => v,
        }
    }

    /// The value as the event model carries it, signed or not according to `ty`.
    pub fn to_event(&self, ty: &DType) -> event::Value {
        match self {
            Value::Str(s) => event::Value::Str(event::ByteString::from(&s[..])),
            // A string subroutine's NULL (strstr, strchr or strtok finding nothing).
            Value::Int(0) if *ty == DType::String => event::Value::Str(Default::default()),
            Value::Stack(frames) => {
                event::Value::Stack(frames.iter().map(|f| f.to_string()).collect())
            }
            Value::Memory { bytes, .. } if !ty.is_scalar() => event::Value::Bytes(bytes.to_vec()),
            other if is_signed(ty) => event::Value::Int(normalize(other.int(), ty) as i64),
            other => event::Value::UInt(normalize(other.int(), ty)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_keep_a_capture_and_cut_integers() {
        let capture = Arc::new(Capture {
            string: Some(Arc::from(&b"/etc/passwd"[..])),
            bytes: None,
            truncated: false,
        });
        let user = Value::User {
            addr: 0x7fff_0000_1000,
            capture: Arc::clone(&capture),
        };
        match user.convert(&DType::ULONG) {
            Value::User { addr, capture: c } => {
                assert_eq!(addr, 0x7fff_0000_1000);
                assert_eq!(c, capture);
            }
            other => panic!("lost the capture: {other:?}"),
        }
        assert_eq!(Value::Int(300).convert(&DType::CHAR), Value::Int(44));
    }
}
