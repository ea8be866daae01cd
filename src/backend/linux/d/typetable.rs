//! The types a D program declares: struct and union layouts, enums' constants, typedefs,
//! and the types `extern` declarations give kernel symbols.
//!
//! Layouts follow DTrace, which builds its types with libctf's rules rather than a C
//! compiler's: each member of a struct starts at the end of the one before, rounded up to a
//! byte and then to the member's alignment; a bit-field is stored in the smallest integer of
//! a power-of-two size that holds its width (so `int a : 3` takes one byte and starts a new
//! byte); and a struct is not padded at its end (`struct { int i; char c; }` is 5 bytes).

use std::collections::HashMap;

use super::ast::DType;

/// One member of a struct or union.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// The member's type; a bit-field's is the integer it is stored in.
    pub ty: DType,
    /// Offset from the start of the struct, in bits (a multiple of 8 for every member of a
    /// D-declared type).
    pub offset: u64,
    /// A bit-field's width in bits.
    pub width: Option<u8>,
}

/// A defined struct or union.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub members: Vec<Member>,
    pub size: u64,
    pub align: u64,
}

impl Record {
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }
}

/// A member as declared, before layout.
pub struct MemberDecl {
    pub name: String,
    pub ty: DType,
    pub width: Option<u8>,
}

/// Every struct, union, enum and typedef the program declared.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TypeTable {
    /// By (is a union, name).
    records: HashMap<(bool, String), Record>,
    typedefs: HashMap<String, DType>,
    enums: Vec<String>,
    /// Enumerators of every enum: D puts them in one name space with the variables.
    enumerators: HashMap<String, i64>,
    /// Kernel symbols' types, from `extern` declarations.
    externs: HashMap<String, DType>,
    anonymous: usize,
}

impl TypeTable {
    pub fn record(&self, union: bool, name: &str) -> Option<&Record> {
        self.records.get(&(union, name.to_string()))
    }

    pub fn typedef(&self, name: &str) -> Option<&DType> {
        self.typedefs.get(name)
    }

    pub fn enumerator(&self, name: &str) -> Option<i64> {
        self.enumerators.get(name).copied()
    }

    pub fn has_enum(&self, name: &str) -> bool {
        self.enums.iter().any(|e| e == name)
    }

    /// A name for a struct, union or enum declared without one.
    pub fn anonymous_name(&mut self) -> String {
        self.anonymous += 1;
        format!("(anon{})", self.anonymous)
    }

    pub fn extern_type(&self, symbol: &str) -> Option<&DType> {
        self.externs.get(symbol)
    }

    pub fn add_extern(&mut self, symbol: &str, ty: DType) -> Result<(), String> {
        if matches!(ty, DType::Void | DType::String) {
            return Err(format!("extern `{symbol}` cannot have type {ty}"));
        }
        if self.externs.insert(symbol.to_string(), ty).is_some() {
            return Err(format!("extern `{symbol}` is already declared"));
        }
        Ok(())
    }

    pub fn add_typedef(&mut self, name: &str, ty: DType) -> Result<(), String> {
        if self.typedefs.contains_key(name) {
            return Err(format!("typedef `{name}` is already defined"));
        }
        self.typedefs.insert(name.to_string(), ty);
        Ok(())
    }

    pub fn add_enum(&mut self, name: &str, enumerators: Vec<(String, i64)>) -> Result<(), String> {
        if self.has_enum(name) {
            return Err(format!("enum {name} is already defined"));
        }
        for (e, value) in enumerators {
            if self.enumerators.insert(e.clone(), value).is_some() {
                return Err(format!("enumerator `{e}` is already defined"));
            }
        }
        self.enums.push(name.to_string());
        Ok(())
    }

    /// Lays out and records a struct or union.
    pub fn add_record(
        &mut self,
        union: bool,
        name: &str,
        members: Vec<MemberDecl>,
    ) -> Result<(), String> {
        let key = (union, name.to_string());
        if self.records.contains_key(&key) {
            let kind = if union { "union" } else { "struct" };
            return Err(format!("{kind} {name} is already defined"));
        }
        let record = self.lay_out(union, members)?;
        self.records.insert(key, record);
        Ok(())
    }

    fn lay_out(&self, union: bool, decls: Vec<MemberDecl>) -> Result<Record, String> {
        let mut members: Vec<Member> = Vec::with_capacity(decls.len());
        let (mut size, mut align) = (0u64, 1u64);
        for d in decls {
            if members.iter().any(|m| m.name == d.name) {
                return Err(format!("member `{}` is declared twice", d.name));
            }
            let ty = match d.width {
                Some(w) => bitfield_storage(&d.ty, w)?,
                None => d.ty,
            };
            let msize = self
                .size_of(&ty)
                .ok_or_else(|| format!("member `{}` has incomplete type {ty}", d.name))?;
            let malign = self.align_of(&ty);
            let offset = match members.last() {
                Some(last) if !union => {
                    let end = last.offset + self.bits_of(last);
                    end.div_ceil(8).next_multiple_of(malign) * 8
                }
                _ => 0,
            };
            size = size.max(offset / 8 + msize);
            align = align.max(malign);
            members.push(Member {
                name: d.name,
                ty,
                offset,
                width: d.width,
            });
        }
        Ok(Record {
            members,
            size,
            align,
        })
    }

    /// How many bits a member takes, as libctf counts them to place the next one.
    fn bits_of(&self, m: &Member) -> u64 {
        match (m.width, &m.ty) {
            (Some(w), _) => u64::from(w),
            (None, DType::Int { bits, .. }) => u64::from(*bits),
            (None, ty) => self.size_of(ty).unwrap_or(0) * 8,
        }
    }

    /// Size in bytes; `None` for strings (sized by `strsize`), undefined structs and
    /// types with no size.
    pub fn size_of(&self, ty: &DType) -> Option<u64> {
        match ty {
            DType::Record { union, name } => self.record(*union, name).map(|r| r.size),
            DType::Array(elem, n) => self.size_of(elem).map(|s| s * n),
            other => other.size(),
        }
    }

    pub fn align_of(&self, ty: &DType) -> u64 {
        match ty {
            DType::Record { union, name } => self.record(*union, name).map_or(1, |r| r.align),
            DType::Array(elem, _) => self.align_of(elem),
            other => other.size().unwrap_or(1).max(1),
        }
    }

    /// The member `name` of the struct or union `ty`.
    pub fn member(&self, ty: &DType, name: &str) -> Option<&Member> {
        match ty {
            DType::Record { union, name: r } => self.record(*union, r)?.member(name),
            _ => None,
        }
    }
}

/// The integer a bit-field of `width` bits declared as `ty` is stored in: the smallest of
/// 1, 2, 4 or 8 bytes that holds it, with `ty`'s signedness.
fn bitfield_storage(ty: &DType, width: u8) -> Result<DType, String> {
    let DType::Int { bits, signed } = ty else {
        return Err(format!("a bit-field must have an integer type, not {ty}"));
    };
    if width == 0 {
        return Err("a named bit-field cannot have width 0".into());
    }
    if width > *bits {
        return Err(format!("bit-field width {width} exceeds its type, {ty}"));
    }
    let bytes = u32::from(width).div_ceil(8).next_power_of_two();
    Ok(DType::Int {
        bits: (bytes * 8) as u8,
        signed: *signed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(bits: u8) -> DType {
        DType::Int { bits, signed: true }
    }

    fn layout(union: bool, members: &[(&str, DType, Option<u8>)]) -> Record {
        let mut t = TypeTable::default();
        let decls = members
            .iter()
            .map(|(n, ty, w)| MemberDecl {
                name: n.to_string(),
                ty: ty.clone(),
                width: *w,
            })
            .collect();
        t.add_record(union, "r", decls).unwrap();
        t.record(union, "r").unwrap().clone()
    }

    #[test]
    fn members_align_and_the_struct_has_no_tail_padding() {
        let r = layout(false, &[("c", int(8), None), ("i", int(32), None)]);
        assert_eq!((r.members[1].offset, r.size, r.align), (32, 8, 4));
        let r = layout(false, &[("i", int(32), None), ("c", int(8), None)]);
        assert_eq!((r.members[1].offset, r.size), (32, 5));
        let u = layout(true, &[("c", int(8), None), ("l", int(64), None)]);
        assert_eq!((u.members[1].offset, u.size), (0, 8));
    }

    #[test]
    fn each_bitfield_starts_a_byte_and_is_stored_in_the_smallest_integer() {
        // int a:12 (2 bytes), b:10 (2 bytes, after 12 bits: byte 2), c:3 (after bit 26: byte 4)
        let r = layout(
            false,
            &[
                ("a", int(32), Some(12)),
                ("b", int(32), Some(10)),
                ("c", int(32), Some(3)),
            ],
        );
        let offsets: Vec<u64> = r.members.iter().map(|m| m.offset / 8).collect();
        assert_eq!((offsets, r.size), (vec![0, 2, 4], 5));
        assert_eq!(r.members[0].ty, int(16));
    }

    #[test]
    fn bad_bitfields_are_refused() {
        assert!(bitfield_storage(&int(32), 0).is_err());
        assert!(bitfield_storage(&int(8), 9).is_err());
        assert!(bitfield_storage(&DType::String, 3).is_err());
    }
}
