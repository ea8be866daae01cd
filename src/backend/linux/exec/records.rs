//! Structs, unions and arrays the program declares, as the executor holds them: a variable of
//! such a type is a `Value::Memory` of the type's size (its address 0: D gives a variable no
//! address), laid out as `d::typetable` says. Members are read and written in place, bit by
//! bit for bit-fields, little-endian as on the machines dtk runs on.

use std::sync::Arc;

use super::eval::Eval;
use super::value::Value;
use super::{Fault, Frame, State};
use crate::backend::linux::d::arith::normalize;
use crate::backend::linux::d::ast::{BinaryOp, DType, Expr, ExprKind, UnaryOp};

/// Where a member is inside the variable that holds it.
struct Place {
    /// Offset in bits from the start of the variable.
    bit: u64,
    /// Width in bits of what is stored there.
    width: u64,
    ty: DType,
}

impl State {
    /// What an unset variable of `ty` reads as: zero, or a zeroed struct.
    pub(super) fn zero(&self, ty: &DType) -> Value {
        match ty {
            DType::Record { .. } | DType::Array(..) => Value::Memory {
                addr: 0,
                bytes: Arc::from(vec![0u8; self.types.size_of(ty).unwrap_or(0) as usize]),
            },
            other => Value::zero(other),
        }
    }

    /// `base.member` or `base->member` of a type the program defined; `None` for other
    /// structs.
    pub(super) fn record_member(
        &mut self,
        base: &Expr,
        member: &str,
        f: &mut Frame<'_>,
    ) -> Option<Eval> {
        let record = match &base.ty {
            DType::Pointer(to) => &**to,
            other => other,
        };
        let m = self.types.member(record, member)?.clone();
        let place = Place {
            bit: m.offset,
            width: m.width.map_or_else(|| self.bits(&m.ty), u64::from),
            ty: m.ty,
        };
        Some(
            self.eval(base, f)
                .and_then(|v| read(&self.deref_scratch(v), &place)),
        )
    }

    /// `array[i]` of an array member or variable.
    pub(super) fn array_element(&mut self, base: &Expr, index: &Expr, f: &mut Frame<'_>) -> Eval {
        let v = self.eval(base, f)?;
        let i = self.eval(index, f)?.int();
        let place = self.element(&base.ty, 0, i)?;
        read(&v, &place)
    }

    fn element(&self, array: &DType, start: u64, i: u64) -> Result<Place, Fault> {
        let DType::Array(elem, n) = array else {
            return Err(Fault::IllegalOperation);
        };
        if i >= *n {
            return Err(Fault::InvalidAddress(i));
        }
        let size = self.types.size_of(elem).unwrap_or(0) * 8;
        Ok(Place {
            bit: start + i * size,
            width: size,
            ty: (**elem).clone(),
        })
    }

    fn bits(&self, ty: &DType) -> u64 {
        self.types.size_of(ty).unwrap_or(0) * 8
    }

    /// Where the member chain `target` (`x.a.b`, `x.a[2]`) is inside its variable.
    fn place(&mut self, target: &Expr, f: &mut Frame<'_>) -> Result<Place, Fault> {
        match &target.kind {
            ExprKind::Member {
                base,
                member,
                arrow: false,
            } => {
                let start = self.place(base, f)?.bit;
                let m = self
                    .types
                    .member(&base.ty, member)
                    .ok_or(Fault::IllegalOperation)?
                    .clone();
                Ok(Place {
                    bit: start + m.offset,
                    width: m.width.map_or_else(|| self.bits(&m.ty), u64::from),
                    ty: m.ty,
                })
            }
            ExprKind::Index { base, indices } if matches!(base.ty, DType::Array(..)) => {
                let start = self.place(base, f)?.bit;
                let i = match indices.first() {
                    Some(e) => self.eval(e, f)?.int(),
                    None => 0,
                };
                self.element(&base.ty, start, i)
            }
            _ => Ok(Place {
                bit: 0,
                width: self.bits(&target.ty),
                ty: target.ty.clone(),
            }),
        }
    }

    /// `x.a.b = v` or `x.a.b op= v`: reads the variable that holds the struct, changes the
    /// member in place and stores the variable back.
    pub(super) fn assign_member(
        &mut self,
        op: Option<BinaryOp>,
        target: &Expr,
        value: Value,
        value_ty: &DType,
        f: &mut Frame<'_>,
    ) -> Eval {
        let place = self.place(target, f)?;
        let root = root_of(target);
        let (scope, name, keys) = self.target(root, f)?;
        let whole = self.read_var(scope, name, keys.clone(), &root.ty, f);
        let Value::Memory { bytes, .. } = whole else {
            return Err(Fault::IllegalOperation);
        };
        let mut bytes = bytes.to_vec();
        let old = read_bytes(&bytes, &place);
        let new = match op {
            None => value,
            Some(op) => Value::Int(super::eval::arithmetic(
                op,
                (old.int(), &place.ty),
                (value.int(), value_ty),
                &place.ty,
            )?),
        };
        write(&mut bytes, &place, &new)?;
        let stored = read_bytes(&bytes, &place);
        let whole = Value::Memory {
            addr: 0,
            bytes: Arc::from(bytes),
        };
        self.store(scope, name, keys, whole, f);
        Ok(stored)
    }
}

impl State {
    /// Where a store through a pointer lands: `*p`, `p[i]`, `p->m` and members and elements
    /// of those, as the address of the object holding it and the place inside it. `None`
    /// for targets that are not reached through a pointer.
    fn pointed_place(
        &mut self,
        target: &Expr,
        f: &mut Frame<'_>,
    ) -> Option<Result<(u64, Place), Fault>> {
        let whole = |addr: u64, ty: &DType, this: &Self| {
            Ok((
                addr,
                Place {
                    bit: 0,
                    width: this.bits(ty),
                    ty: ty.clone(),
                },
            ))
        };
        match &target.kind {
            ExprKind::Unary {
                op: UnaryOp::Deref,
                operand,
            } => Some(
                self.eval(operand, f)
                    .and_then(|p| whole(p.int(), &target.ty, self)),
            ),
            ExprKind::Index { base, indices } if matches!(base.ty, DType::Pointer(_)) => {
                Some((|| {
                    let p = self.eval(base, f)?.int();
                    let i = match indices.first() {
                        Some(e) => self.eval(e, f)?.int(),
                        None => 0,
                    };
                    let size = self.types.size_of(&target.ty).unwrap_or(1);
                    whole(p.wrapping_add(i.wrapping_mul(size)), &target.ty, self)
                })())
            }
            ExprKind::Member {
                base,
                member,
                arrow,
            } => {
                let (addr, start) = if *arrow {
                    match self.eval(base, f) {
                        Ok(p) => (p.int(), 0),
                        Err(e) => return Some(Err(e)),
                    }
                } else {
                    match self.pointed_place(base, f)? {
                        Ok((addr, place)) => (addr, place.bit),
                        Err(e) => return Some(Err(e)),
                    }
                };
                let record = match &base.ty {
                    DType::Pointer(to) if *arrow => &**to,
                    other => other,
                };
                let Some(m) = self.types.member(record, member).cloned() else {
                    return Some(Err(Fault::IllegalOperation));
                };
                Some(Ok((
                    addr,
                    Place {
                        bit: start + m.offset,
                        width: m.width.map_or_else(|| self.bits(&m.ty), u64::from),
                        ty: m.ty,
                    },
                )))
            }
            ExprKind::Index { base, indices } if matches!(base.ty, DType::Array(..)) => {
                let (addr, place) = match self.pointed_place(base, f)? {
                    Ok(found) => found,
                    Err(e) => return Some(Err(e)),
                };
                Some((|| {
                    let i = match indices.first() {
                        Some(e) => self.eval(e, f)?.int(),
                        None => 0,
                    };
                    Ok((addr, self.element(&base.ty, place.bit, i)?))
                })())
            }
            _ => None,
        }
    }

    /// `&p[i]`, `&p->m`, `&*p`: the address they name; `None` for what has no address.
    pub(super) fn address_of(
        &mut self,
        target: &Expr,
        f: &mut Frame<'_>,
    ) -> Option<Result<u64, Fault>> {
        let found = self.pointed_place(target, f)?;
        Some(found.map(|(addr, place)| addr.wrapping_add(place.bit / 8)))
    }

    /// `*p = v`, `p[i] op= v`, `p->m = v`: stores into the scratch memory the pointer
    /// points at (the only memory this engine lets a program write). `None` when `target`
    /// is not reached through a pointer.
    pub(super) fn store_through_pointer(
        &mut self,
        op: Option<BinaryOp>,
        target: &Expr,
        value: &Value,
        value_ty: &DType,
        f: &mut Frame<'_>,
    ) -> Option<Eval> {
        let (addr, place) = match self.pointed_place(target, f)? {
            Ok(found) => found,
            Err(e) => return Some(Err(e)),
        };
        let len = (place.bit + place.width).div_ceil(8);
        Some((|| {
            let memory = self.scratch.slice_mut(addr, len)?;
            let new = match op {
                None => value.clone().convert(&place.ty),
                Some(op) => Value::Int(super::eval::arithmetic(
                    op,
                    (read_bytes(memory, &place).int(), &place.ty),
                    (value.int(), value_ty),
                    &place.ty,
                )?),
            };
            write(memory, &place, &new)?;
            Ok(read_bytes(memory, &place))
        })())
    }
}

/// The variable (or associative array element) a member chain belongs to.
fn root_of(mut target: &Expr) -> &Expr {
    loop {
        match &target.kind {
            ExprKind::Member {
                base, arrow: false, ..
            } => target = base,
            ExprKind::Index { base, .. } if matches!(base.ty, DType::Array(..)) => target = base,
            _ => return target,
        }
    }
}

fn read(v: &Value, place: &Place) -> Eval {
    match v {
        Value::Memory { addr, bytes } => {
            let end = (place.bit + place.width).div_ceil(8);
            if end > bytes.len() as u64 {
                return Err(Fault::InvalidAddress(addr.wrapping_add(place.bit / 8)));
            }
            Ok(read_bytes(bytes, place))
        }
        other => Err(Fault::InvalidAddress(
            other.int().wrapping_add(place.bit / 8),
        )),
    }
}

/// Reads what `place` holds in `bytes`, which are known to be long enough.
fn read_bytes(bytes: &[u8], place: &Place) -> Value {
    let (start, end) = (place.bit / 8, (place.bit + place.width).div_ceil(8));
    if !matches!(place.ty, DType::Int { .. } | DType::Pointer(_)) {
        return Value::Memory {
            addr: 0,
            bytes: Arc::from(&bytes[start as usize..end as usize]),
        };
    }
    let mut v = 0u64;
    for i in 0..place.width.min(64) {
        let bit = place.bit + i;
        if bytes[(bit / 8) as usize] >> (bit % 8) & 1 == 1 {
            v |= 1 << i;
        }
    }
    let signed = matches!(place.ty, DType::Int { signed: true, .. });
    if signed && place.width < 64 && v >> (place.width - 1) & 1 == 1 {
        v |= u64::MAX << place.width;
    }
    Value::Int(normalize(v, &place.ty))
}

fn write(bytes: &mut [u8], place: &Place, v: &Value) -> Result<(), Fault> {
    if (place.bit + place.width).div_ceil(8) > bytes.len() as u64 {
        return Err(Fault::InvalidAddress(place.bit / 8));
    }
    if let Value::Memory { bytes: from, .. } = v {
        let start = (place.bit / 8) as usize;
        let n = from.len().min((place.width / 8) as usize);
        bytes[start..start + n].copy_from_slice(&from[..n]);
        return Ok(());
    }
    let v = v.int();
    for i in 0..place.width.min(64) {
        let bit = place.bit + i;
        let byte = &mut bytes[(bit / 8) as usize];
        if v >> i & 1 == 1 {
            *byte |= 1 << (bit % 8);
        } else {
            *byte &= !(1 << (bit % 8));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitfields_are_cut_to_their_width_and_sign_extended() {
        let mut bytes = vec![0u8; 4];
        let place = Place {
            bit: 8,
            width: 3,
            ty: DType::Int {
                bits: 8,
                signed: true,
            },
        };
        write(&mut bytes, &place, &Value::Int(0b1111_0111)).unwrap();
        assert_eq!(bytes, [0, 0b111, 0, 0]);
        assert_eq!(read_bytes(&bytes, &place), Value::Int(u64::MAX));
        write(&mut bytes, &place, &Value::Int(3)).unwrap();
        assert_eq!(read_bytes(&bytes, &place), Value::Int(3));
        let wide = Place {
            bit: 0,
            width: 32,
            ty: DType::INT,
        };
        assert_eq!(read_bytes(&bytes, &wide), Value::Int(3 << 8));
    }
}
