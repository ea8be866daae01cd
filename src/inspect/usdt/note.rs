//! The raw records of `.note.stapsdt`, as SystemTap's sys/sdt.h lays them out.
//!
//! Each ELF note has a 12-byte header (namesz, descsz, type), the owner name ("stapsdt")
//! padded to 4 bytes, and the descriptor padded to the section's alignment. A stapsdt note has
//! type 3, and its descriptor is three addresses (the probe's pc, the link-time address of
//! `.stapsdt.base`, the semaphore, each 4 or 8 bytes by ELF class), then the provider, the
//! probe name and the argument specs as NUL-terminated strings.

/// `NT_STAPSDT`, the note type of a USDT probe descriptor.
const NT_STAPSDT: u32 = 3;
const OWNER: &[u8] = b"stapsdt";

/// One stapsdt note, with its addresses as written at link time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StapsdtNote {
    pub pc: u64,
    pub base: u64,
    pub semaphore: u64,
    pub provider: String,
    pub name: String,
    pub args: String,
}

/// Why `.note.stapsdt` could not be read: the byte offset in the section and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteFormatError {
    pub offset: usize,
    pub reason: &'static str,
}

/// How the file stores numbers: address width and byte order.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub is_64: bool,
    pub little_endian: bool,
}

impl Layout {
    fn u32_at(self, data: &[u8], at: usize) -> Option<u32> {
        let bytes: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
        Some(if self.little_endian {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        })
    }

    fn address_at(self, data: &[u8], at: usize) -> Option<u64> {
        if !self.is_64 {
            return self.u32_at(data, at).map(u64::from);
        }
        let bytes: [u8; 8] = data.get(at..at + 8)?.try_into().ok()?;
        Some(if self.little_endian {
            u64::from_le_bytes(bytes)
        } else {
            u64::from_be_bytes(bytes)
        })
    }

    fn address_size(self) -> usize {
        if self.is_64 {
            8
        } else {
            4
        }
    }
}

/// Reads every stapsdt note in `data`, the contents of `.note.stapsdt`; notes of other owners
/// or types are skipped. `align` is the section's alignment (4, or 8 for some toolchains).
pub fn parse_notes(
    data: &[u8],
    align: u64,
    layout: Layout,
) -> Result<Vec<StapsdtNote>, NoteFormatError> {
    let align = if align == 8 { 8 } else { 4 };
    let mut notes = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let fail = |reason| NoteFormatError { offset: at, reason };
        let header = |field| layout.u32_at(data, at + field).map(|v| v as usize);
        let (Some(name_size), Some(desc_size), Some(kind)) = (header(0), header(4), header(8))
        else {
            return Err(fail("truncated note header"));
        };
        let name_start = at + 12;
        let desc_start = name_start
            .checked_add(padded(name_size, 4))
            .ok_or(fail("note name size overflows"))?;
        let desc_end = desc_start
            .checked_add(desc_size)
            .filter(|&end| end <= data.len())
            .ok_or(fail("note runs past the end of the section"))?;
        let owner = data.get(name_start..name_start + name_size);
        if kind as u32 == NT_STAPSDT && owner.and_then(|o| o.strip_suffix(b"\0")) == Some(OWNER) {
            let descriptor = data
                .get(desc_start..desc_end)
                .and_then(|d| parse_descriptor(d, layout));
            notes.push(descriptor.ok_or(fail("malformed stapsdt descriptor"))?);
        }
        at = desc_start + padded(desc_size, align);
    }
    Ok(notes)
}

fn padded(size: usize, align: usize) -> usize {
    size.div_ceil(align) * align
}

fn parse_descriptor(desc: &[u8], layout: Layout) -> Option<StapsdtNote> {
    let width = layout.address_size();
    let pc = layout.address_at(desc, 0)?;
    let base = layout.address_at(desc, width)?;
    let semaphore = layout.address_at(desc, 2 * width)?;
    let mut strings = desc.get(3 * width..)?.split(|&b| b == 0);
    let mut next = || {
        strings
            .next()
            .map(|s| String::from_utf8_lossy(s).into_owned())
    };
    let provider = next()?;
    let name = next()?;
    // Probes with no arguments may end right after the name.
    let args = next().unwrap_or_default();
    Some(StapsdtNote {
        pc,
        base,
        semaphore,
        provider,
        name,
        args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LE64: Layout = Layout {
        is_64: true,
        little_endian: true,
    };

    /// Builds one note the way the assembler does, for a 64-bit little-endian file.
    fn note(kind: u32, owner: &[u8], addresses: [u64; 3], strings: &[&str]) -> Vec<u8> {
        let mut desc = Vec::new();
        for address in addresses {
            desc.extend_from_slice(&address.to_le_bytes());
        }
        for s in strings {
            desc.extend_from_slice(s.as_bytes());
            desc.push(0);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&(owner.len() as u32).to_le_bytes());
        out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(owner);
        out.resize(padded(out.len(), 4), 0);
        out.extend_from_slice(&desc);
        out.resize(padded(out.len(), 4), 0);
        out
    }

    #[test]
    fn reads_notes_and_skips_other_owners() {
        let mut data = note(3, b"stapsdt\0", [0x10, 0x20, 0x30], &["p", "a", "8@%rax"]);
        data.extend(note(3, b"GNU\0", [1, 2, 3], &["x", "y", ""]));
        data.extend(note(
            3,
            b"stapsdt\0",
            [0x11, 0x20, 0],
            &["prov", "b__c", ""],
        ));
        let notes = parse_notes(&data, 4, LE64).unwrap();
        assert_eq!(
            notes,
            vec![
                StapsdtNote {
                    pc: 0x10,
                    base: 0x20,
                    semaphore: 0x30,
                    provider: "p".into(),
                    name: "a".into(),
                    args: "8@%rax".into(),
                },
                StapsdtNote {
                    pc: 0x11,
                    base: 0x20,
                    semaphore: 0,
                    provider: "prov".into(),
                    name: "b__c".into(),
                    args: String::new(),
                },
            ]
        );
    }

    #[test]
    fn truncated_notes_are_errors_not_panics() {
        let data = note(3, b"stapsdt\0", [1, 2, 3], &["p", "n", ""]);
        for cut in 1..data.len() - 4 {
            let result = parse_notes(&data[..cut], 4, LE64);
            assert!(result.is_err(), "cut at {cut} parsed");
        }
        let mut huge = data.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            parse_notes(&huge, 4, LE64).unwrap_err().reason,
            "note runs past the end of the section"
        );
    }

    /// Corrupted sections (bytes of a real note overwritten at random): errors, never panics.
    #[test]
    fn corrupted_notes_are_read_or_refused_without_panicking() {
        let good = note(3, b"stapsdt\0", [1, 2, 3], &["prov", "name", "8@%rax"]);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut data = good.clone();
            for _ in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % data.len();
                data[at] = (seed >> 32) as u8;
            }
            let _ = parse_notes(&data, 4, LE64);
            let _ = parse_notes(&data, 8, LE64);
        }
    }

    #[test]
    fn reads_32_bit_big_endian_descriptors() {
        let mut desc = Vec::new();
        for address in [0x1000u32, 0x2000, 0x3000] {
            desc.extend_from_slice(&address.to_be_bytes());
        }
        desc.extend_from_slice(b"p\0n\0-4@5\0");
        let mut data = Vec::new();
        data.extend_from_slice(&8u32.to_be_bytes());
        data.extend_from_slice(&(desc.len() as u32).to_be_bytes());
        data.extend_from_slice(&3u32.to_be_bytes());
        data.extend_from_slice(b"stapsdt\0");
        data.extend_from_slice(&desc);
        let layout = Layout {
            is_64: false,
            little_endian: false,
        };
        let notes = parse_notes(&data, 4, layout).unwrap();
        assert_eq!(notes.len(), 1);
        assert_eq!(
            (notes[0].pc, notes[0].base, notes[0].semaphore),
            (0x1000, 0x2000, 0x3000)
        );
        assert_eq!(notes[0].args, "-4@5");
    }
}
