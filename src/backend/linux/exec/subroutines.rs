//! D's subroutines: copyin and copyinstr over what the kernel captured at the probe, the
//! string functions (`strings`), progenyof, and stack()/ustack(), whose frames this engine
//! does not capture (they yield an empty stack).

use std::sync::Arc;

use super::eval::string_of;
use super::process;
use super::strings;
use super::value::Value;
use super::{Fault, Frame, State};
use crate::backend::linux::d::ast::{DType, Expr, Function};
use crate::backend::linux::firing::{Firing, ReadData};
use crate::event::DropKind;

impl State {
    pub(super) fn subroutine(
        &mut self,
        func: Function,
        args: &[Expr],
        ty: &DType,
        f: &mut Frame<'_>,
    ) -> Result<Value, Fault> {
        let mut values = Vec::with_capacity(args.len());
        for arg in args {
            values.push(self.eval(arg, f)?);
        }
        let first = values.first().cloned().unwrap_or(Value::Int(0));
        let text = |i: usize| values.get(i).map_or(&b""[..], string_of);
        let int = |i: usize| values.get(i).map(|v| v.int() as i64);
        let strsize = self.options.strsize;
        Ok(match func {
            Function::Copyin => copyin(&first, int(1).unwrap_or(0), f.firing)?,
            Function::Copyinstr => {
                let s = self.copyinstr(&first, int(1), f.firing)?;
                Value::str(s)
            }
            Function::Strlen => Value::Int(text(0).len() as u64),
            Function::Strjoin => {
                let joined = [text(0), text(1)].concat();
                Value::str(self.cut(&joined))
            }
            Function::Substr => Value::str(strings::substr(
                text(0),
                int(1).unwrap_or(0),
                int(2),
                strsize,
            )),
            Function::Strstr => Value::str(strings::strstr(text(0), text(1))),
            Function::Index => Value::Int(strings::index(text(0), text(1), int(2)) as u64),
            Function::Rindex => Value::Int(strings::rindex(text(0), text(1), int(2)) as u64),
            Function::Basename => Value::str(strings::basename(text(0))),
            Function::Dirname => Value::str(strings::dirname(text(0))),
            Function::Lltostr => {
                let s = strings::lltostr(int(0).unwrap_or(0), int(1))
                    .map_err(|_| Fault::IllegalOperation)?;
                Value::str(s)
            }
            Function::Tolower => Value::str(text(0).to_ascii_lowercase()),
            Function::Toupper => Value::str(text(0).to_ascii_uppercase()),
            Function::Progenyof => {
                let ancestor = int(0).unwrap_or(0) as u32;
                let yes = f
                    .firing
                    .process
                    .as_ref()
                    .is_some_and(|state| process::progeny_of(f.firing.pid, state, ancestor));
                Value::Int(u64::from(yes))
            }
            Function::Stack | Function::Ustack => Value::Stack,
            _ => Value::zero(ty),
        })
    }

    /// copyinstr(addr[, maxlen]): the string the kernel read at `addr` at the probe: the
    /// capture an argument carries, or a read at an address the program computed.
    fn copyinstr<'v>(
        &mut self,
        addr: &'v Value,
        max: Option<i64>,
        firing: &'v Firing,
    ) -> Result<&'v [u8], Fault> {
        // A read made at this probe through a pointer kept from an earlier one (a path saved
        // at entry, read at return) is fresher than the capture the pointer carries.
        let fresh = firing.reads.iter().find_map(|r| match &r.data {
            ReadData::String { value, truncated } if r.addr == addr.int() => {
                Some((value.as_bytes(), *truncated))
            }
            _ => None,
        });
        let (s, truncated) = match (fresh, addr) {
            (Some(read), _) => read,
            (None, Value::User { capture, .. }) if capture.string.is_some() => (
                capture.string.as_deref().unwrap_or_default(),
                capture.truncated,
            ),
            _ => return Err(Fault::InvalidAddress(addr.int())),
        };
        if truncated {
            self.drop(DropKind::TruncatedString);
        }
        let s = match max {
            Some(n) if n >= 0 && (n as usize) < s.len() => &s[..n as usize],
            _ => s,
        };
        Ok(self.cut(s))
    }
}

/// copyin(addr, size): the first `size` bytes the kernel read at `addr` at the probe: the
/// capture an argument carries, or a read at an address the program computed.
fn copyin(addr: &Value, size: i64, firing: &Firing) -> Result<Value, Fault> {
    let fault = || Fault::InvalidAddress(addr.int());
    let size = usize::try_from(size).map_err(|_| fault())?;
    let fresh = firing.reads.iter().find_map(|r| match &r.data {
        ReadData::Bytes(bytes) if r.addr == addr.int() && size <= bytes.len() => Some(bytes),
        _ => None,
    });
    let bytes = match fresh {
        // The whole read, shared.
        Some(bytes) if bytes.len() == size => Arc::clone(bytes),
        Some(bytes) => Arc::from(&bytes[..size]),
        None => {
            let captured = match addr {
                Value::User { capture, .. } => capture.bytes.as_deref().and_then(|b| b.get(..size)),
                _ => None,
            };
            Arc::from(captured.ok_or_else(fault)?)
        }
    };
    Ok(Value::Memory {
        addr: addr.int(),
        bytes,
    })
}
