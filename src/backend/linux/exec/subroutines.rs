//! D's subroutines: copyin and copyinstr over what the kernel captured at the probe, the
//! string functions (`strings`; strtok keeps where `strtok(NULL, ...)` resumes), rand, the
//! byte-order functions, progenyof, speculation() (`speculation`), stack()/ustack() over the
//! frames the kernel captured, and the symbols of addresses (func, mod, ufunc, uaddr, umod).

use std::sync::Arc;

use super::eval::string_of;
use super::process;
use super::strings;
use super::value::Value;
use super::{Fault, Frame, State};
use crate::backend::linux::d::ast::{DType, Expr, Function};
use crate::backend::linux::firing::{Firing, ReadData};
use crate::event::DropKind;
use crate::inspect::symbols::Symbol;

impl State {
    pub(super) fn subroutine(
        &mut self,
        func: Function,
        args: &[Expr],
        ty: &DType,
        f: &mut Frame<'_>,
    ) -> Result<Value, Fault> {
        if let Function::Copyin | Function::Copyinstr = func {
            return self.copy_subroutine(func, args, f);
        }
        let mut values = Vec::with_capacity(args.len());
        for arg in args {
            values.push(self.eval(arg, f)?);
        }
        let first = values.first().cloned().unwrap_or(Value::Int(0));
        let text = |i: usize| values.get(i).map_or(&b""[..], string_of);
        let int = |i: usize| values.get(i).map(|v| v.int() as i64);
        let strsize = self.options.strsize;
        Ok(match func {
            Function::Copyin | Function::Copyinstr => unreachable!("copy_subroutine runs them"),
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
            Function::Strstr => strings::strstr(text(0), text(1)).map_or(Value::Int(0), Value::str),
            Function::Cleanpath => Value::str(strings::cleanpath(text(0))),
            Function::Getmajor => Value::Int(u64::from(first.int() as u32 >> 20)),
            Function::Getminor => Value::Int(first.int() & 0xf_ffff),
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
            Function::Stack => {
                let depth = self.frames(int(0), self.options.stackframes);
                self.stack(&f.firing.kernel_stack, depth, None)
            }
            Function::Ustack => {
                let depth = self.frames(int(0), self.options.ustackframes);
                self.stack(&f.firing.user_stack, depth, Some(f.firing.pid))
            }
            Function::Func | Function::Mod => {
                let addr = first.int();
                let symbol = self.symbols.kernel_symbol(addr);
                Value::str(symbol_text(func, symbol.as_ref(), addr))
            }
            Function::Ufunc | Function::Uaddr | Function::Umod => {
                let addr = first.int();
                let symbol = self.symbols.user_symbol(f.firing.pid, addr);
                Value::str(symbol_text(func, symbol.as_ref(), addr))
            }
            Function::Speculation => Value::Int(self.speculation()),
            Function::Strchr | Function::Strrchr => {
                let c = int(1).unwrap_or(0) as u8;
                strings::strchr(text(0), c, func == Function::Strrchr)
                    .map_or(Value::Int(0), Value::str)
            }
            Function::Strtok => self.strtok(&values)?,
            Function::Rand => Value::Int(self.rand() as i32 as i64 as u64),
            Function::Htons | Function::Ntohs => {
                Value::Int(u64::from((first.int() as u16).swap_bytes()))
            }
            Function::Htonl | Function::Ntohl => {
                Value::Int(u64::from((first.int() as u32).swap_bytes()))
            }
            Function::Htonll | Function::Ntohll => Value::Int(first.int().swap_bytes()),
            Function::Alloca => self.alloca(first.int())?,
            Function::Bcopy => {
                let n =
                    usize::try_from(int(2).unwrap_or(0)).map_err(|_| Fault::IllegalOperation)?;
                let bytes = self.source_bytes(&first, n)?;
                self.copy_to_scratch(&bytes, values.get(1).map_or(0, Value::int))?;
                Value::Int(0)
            }
            Function::Copyinto => {
                let copied = copyin(&first, int(1).unwrap_or(0), f.firing)?;
                let Value::Memory { bytes, .. } = copied else {
                    return Err(Fault::InvalidAddress(first.int()));
                };
                self.copy_to_scratch(&bytes, values.get(2).map_or(0, Value::int))?;
                Value::Int(0)
            }
            _ => Value::zero(ty),
        })
        .map(|v| self.cut_value(v))
    }

    /// strtok(s, delims): the first token of `s`; strtok(NULL, delims) the next token of the
    /// string the last strtok() was given. NULL (0) when there is none; a NULL delimiter
    /// string, or NULL before any string, is an invalid address, as in DTrace.
    fn strtok(&mut self, values: &[Value]) -> Result<Value, Fault> {
        let is_null = |v: Option<&Value>| matches!(v, Some(Value::Int(0)) | None);
        if is_null(values.get(1)) {
            return Err(Fault::InvalidAddress(0));
        }
        let delims = values.get(1).map_or(&b""[..], string_of);
        let source: std::sync::Arc<[u8]> = if is_null(values.first()) {
            self.strtok_rest.clone().ok_or(Fault::InvalidAddress(0))?
        } else {
            values.first().map_or(&b""[..], string_of).into()
        };
        let (token, rest) = strings::strtok(&source, delims);
        let token = token.map(Value::str);
        self.strtok_rest = Some(rest.into());
        Ok(token.unwrap_or(Value::Int(0)))
    }

    /// rand(): a pseudo-random integer (xorshift64*, seeded from the clock at start).
    fn rand(&mut self) -> u64 {
        let mut x = self.rand_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rand_state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32
    }

    /// How many frames a stack shows: the count asked for, or `default`, and no more than
    /// `maxframes`, as dtrace silently reduces it.
    fn frames(&self, asked: Option<i64>, default: usize) -> usize {
        asked
            .map_or(default, |n| n.max(0) as usize)
            .min(self.options.maxframes)
    }

    /// copyin and copyinstr, which most scripts run on every firing: their arguments are read
    /// without being collected, and a string the kernel captured whole is shared, not copied.
    fn copy_subroutine(
        &mut self,
        func: Function,
        args: &[Expr],
        f: &mut Frame<'_>,
    ) -> Result<Value, Fault> {
        let addr = match args.first() {
            Some(e) => self.eval(e, f)?,
            None => Value::Int(0),
        };
        let size = match args.get(1) {
            Some(e) => Some(self.eval(e, f)?.int() as i64),
            None => None,
        };
        if func == Function::Copyin {
            return copyin(&addr, size.unwrap_or(0), f.firing);
        }
        let s = self.copyinstr(&addr, size, f.firing)?;
        Ok(match &addr {
            Value::User { capture, .. } => match &capture.string {
                Some(whole) if std::ptr::eq(s, &whole[..]) => Value::Str(Arc::clone(whole)),
                _ => Value::str(s),
            },
            _ => Value::str(s),
        })
    }

    /// The first `depth` frames of a recorded stack, named: the kernel's, or those of
    /// process `pid`.
    fn stack(&mut self, addrs: &[u64], depth: usize, pid: Option<u32>) -> Value {
        let frames = addrs
            .iter()
            .take(depth)
            .map(|&addr| match pid {
                Some(pid) => self.symbols.user(pid, addr),
                None => self.symbols.kernel(addr),
            })
            .collect();
        Value::Stack(frames)
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
        // copyinstr(addr, n) reads n bytes with the NUL, as the kernel's strsize slot does.
        let s = match max {
            Some(n) => {
                &s[..s
                    .len()
                    .min(usize::try_from(n).unwrap_or(0).saturating_sub(1))]
            }
            None => s,
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

/// What func(), mod(), ufunc(), uaddr() and umod() (`func`) show of `addr`, which lies in
/// `symbol`: the address in hex when nothing is known of it, as dtrace shows it.
fn symbol_text(func: Function, symbol: Option<&Symbol>, addr: u64) -> String {
    match (func, symbol) {
        (_, None) => format!("{addr:#x}"),
        (Function::Mod | Function::Umod, Some(s)) => s.module.clone(),
        (Function::Uaddr, Some(s)) => s.frame(addr),
        (_, Some(s)) => s.function(addr),
    }
}
