//! ELF reading for uprobes and USDT: symbols → addresses, addresses → file offsets, and the
//! raw sections the USDT note parser needs.
//!
//! The kernel's uprobe PMU takes a path and an offset into that file, not a virtual address.
//! A symbol's value is a virtual address, so it is converted through the PT_LOAD segment that
//! contains it (offset = address − p_vaddr + p_offset). That works the same for executables
//! (ET_EXEC) and shared libraries or PIE executables (ET_DYN), whatever their load address.

use std::path::{Path, PathBuf};

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SymbolKind};

/// Errors from reading an ELF file.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an ELF file that dtk can read")]
    Parse {
        path: PathBuf,
        #[source]
        source: object::Error,
    },
    #[error("{path} has no function named `{name}` in .symtab or .dynsym")]
    NoSuchFunction { path: PathBuf, name: String },
    #[error("{path} has no symbol named `{name}`")]
    NoSuchSymbol { path: PathBuf, name: String },
    #[error("address {address:#x} is not in any loadable segment of {path}")]
    AddressNotInFile { path: PathBuf, address: u64 },
}

/// The machine an ELF file was built for, as far as dtk needs to know it (USDT argument
/// specs are written in the machine's assembler syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    X86_64,
    Aarch64,
    /// Anything else, by its `object` name; its probes can be listed but not decoded.
    Other(object::Architecture),
}

/// A function symbol resolved to where a uprobe goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionLocation {
    /// The symbol's virtual address in the file.
    pub address: u64,
    /// Its offset in the file: what the uprobe PMU wants.
    pub file_offset: u64,
    /// The symbol's size in bytes (0 when the symbol table does not say).
    pub size: u64,
}

/// A section found by name: where it is in memory and in the file, and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct SectionView<'a> {
    pub address: u64,
    /// None for a section that occupies no file space (SHT_NOBITS).
    pub file_offset: Option<u64>,
    /// The section's alignment (sh_addralign): notes are padded to it.
    pub align: u64,
    pub data: &'a [u8],
}

/// An ELF file read into memory.
#[derive(Debug)]
pub struct ElfImage {
    path: PathBuf,
    data: Vec<u8>,
    machine: Machine,
    is_64: bool,
    little_endian: bool,
}

impl ElfImage {
    /// Reads and checks the file at `path`.
    pub fn open(path: &Path) -> Result<Self, ElfError> {
        let data = std::fs::read(path).map_err(|source| ElfError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(path, data)
    }

    /// Checks `data` as the contents of the ELF file `path` (the path is used in messages).
    pub fn from_bytes(path: &Path, data: Vec<u8>) -> Result<Self, ElfError> {
        let (machine, is_64, little_endian) = {
            // Only the ELF reader is compiled into `object`, so anything it parses is ELF.
            let file = parse(path, &data)?;
            let machine = match file.architecture() {
                object::Architecture::X86_64 => Machine::X86_64,
                object::Architecture::Aarch64 => Machine::Aarch64,
                other => Machine::Other(other),
            };
            (machine, file.is_64(), file.is_little_endian())
        };
        Ok(Self {
            path: path.to_path_buf(),
            data,
            machine,
            is_64,
            little_endian,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn machine(&self) -> Machine {
        self.machine
    }

    /// Whether addresses in the file are 8 bytes (ELFCLASS64) rather than 4.
    pub fn is_64(&self) -> bool {
        self.is_64
    }

    pub fn is_little_endian(&self) -> bool {
        self.little_endian
    }

    /// Finds a defined function (STT_FUNC or STT_GNU_IFUNC) named `name` in .symtab, then in
    /// .dynsym (stripped libraries keep only the latter). A global symbol wins over a local one
    /// of the same name. For an IFUNC this is the resolver, as with every uprobe tool.
    pub fn function(&self, name: &str) -> Result<FunctionLocation, ElfError> {
        let file = self.parsed()?;
        let found = best_symbol(file.symbols(), name, true)
            .or_else(|| best_symbol(file.dynamic_symbols(), name, true));
        let Some((address, size)) = found else {
            return Err(ElfError::NoSuchFunction {
                path: self.path.clone(),
                name: name.to_string(),
            });
        };
        Ok(FunctionLocation {
            address,
            file_offset: self.file_offset(address)?,
            size,
        })
    }

    /// The file's function symbols by the address they start at.
    pub fn function_starts(&self) -> std::collections::HashMap<u64, String> {
        let Ok(file) = self.parsed() else {
            return Default::default();
        };
        file.symbols()
            .chain(file.dynamic_symbols())
            .filter(|s| s.kind() == SymbolKind::Text && s.is_definition())
            .filter_map(|s| Some((s.address(), s.name().ok()?.to_string())))
            .collect()
    }

    /// The address of any defined symbol (function or data) named `name`.
    pub fn symbol_address(&self, name: &str) -> Result<u64, ElfError> {
        let file = self.parsed()?;
        best_symbol(file.symbols(), name, false)
            .or_else(|| best_symbol(file.dynamic_symbols(), name, false))
            .map(|(address, _)| address)
            .ok_or_else(|| ElfError::NoSuchSymbol {
                path: self.path.clone(),
                name: name.to_string(),
            })
    }

    /// Whether the file is loaded at the addresses it names (ET_EXEC), rather than anywhere
    /// (a PIE or a shared library).
    pub fn is_fixed_address(&self) -> bool {
        self.parsed()
            .is_ok_and(|file| file.kind() == object::ObjectKind::Executable)
    }

    /// The virtual address of the file's start: that of the PT_LOAD segment at file offset 0
    /// (0 for most PIEs and shared libraries). A mapping of offset 0 at address A means the
    /// file's addresses are off by A minus this.
    pub fn start_address(&self) -> Option<u64> {
        let file = self.parsed().ok()?;
        file.segments()
            .find(|segment| segment.file_range().0 == 0)
            .map(|segment| segment.address())
    }

    /// Converts a virtual address to a file offset through the PT_LOAD segment whose file
    /// image holds it.
    pub fn file_offset(&self, address: u64) -> Result<u64, ElfError> {
        let file = self.parsed()?;
        file.segments()
            .find_map(|segment| {
                let (offset, file_size) = segment.file_range();
                let start = segment.address();
                let within = address.checked_sub(start)?;
                (within < file_size).then(|| offset + within)
            })
            .ok_or_else(|| ElfError::AddressNotInFile {
                path: self.path.clone(),
                address,
            })
    }

    /// The first section named `name`, if the file has one.
    pub fn section(&self, name: &str) -> Result<Option<SectionView<'_>>, ElfError> {
        let file = self.parsed()?;
        let Some(section) = file.section_by_name(name) else {
            return Ok(None);
        };
        let data = section.data().map_err(|source| ElfError::Parse {
            path: self.path.clone(),
            source,
        })?;
        Ok(Some(SectionView {
            address: section.address(),
            file_offset: section.file_range().map(|(offset, _)| offset),
            align: section.align(),
            data,
        }))
    }

    /// `len` bytes of the file at `offset`, if the file has them.
    pub fn bytes_at(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(offset).ok()?;
        self.data.get(start..start.checked_add(len)?)
    }

    /// File offsets of instructions that never run: the padding no-op right after a function
    /// (`.p2align` between functions; code never runs off the end of a function), one per
    /// function that has one, in address order. A uprobe there never fires, so it can hold a
    /// USDT semaphore (its `ref_ctr_offset`) without trapping. Only no-ops that the kernel's
    /// uprobe decoder accepts are taken: on x86-64 no `cs` prefix (`nopw %cs:…`); on AArch64
    /// the 4-byte `nop`. Empty for other machines or a file without function sizes.
    pub fn padding_after_functions(&self) -> Vec<u64> {
        let Ok(file) = self.parsed() else {
            return Vec::new();
        };
        let mut functions: Vec<(u64, u64)> = file
            .symbols()
            .chain(file.dynamic_symbols())
            .filter(|s| s.kind() == SymbolKind::Text && s.is_definition() && s.size() > 0)
            .map(|s| (s.address(), s.address() + s.size()))
            .collect();
        functions.sort_unstable();
        functions.dedup();
        // The end of each function, if no other function covers it; the gap up to the next.
        let mut gaps = Vec::new();
        let mut covered = 0;
        for (i, &(_, end)) in functions.iter().enumerate() {
            covered = covered.max(end);
            let next = functions.get(i + 1).map_or(0, |&(start, _)| start);
            if end == covered && next > end {
                gaps.push((end, next - end));
            }
        }
        gaps.into_iter()
            .filter_map(|(address, gap)| {
                let offset = self.file_offset(address).ok()?;
                let bytes = self.bytes_at(offset, usize::try_from(gap.min(16)).ok()?)?;
                let len = padding_nop_len(self.machine, bytes)?;
                (len as u64 <= gap).then_some(offset)
            })
            .collect()
    }

    /// The libraries a 64-bit file needs (DT_NEEDED) and where it asks the loader to look
    /// first (DT_RUNPATH, or DT_RPATH without it); None when it has no dynamic section.
    pub fn dynamic_needs(&self) -> Option<(Vec<String>, Vec<String>)> {
        use object::read::elf::{Dyn, FileHeader};
        let data = self.data.as_slice();
        let header = object::elf::FileHeader64::<object::Endianness>::parse(data).ok()?;
        let endian = header.endian().ok()?;
        let sections = header.sections(endian, data).ok()?;
        let (entries, link) = sections.dynamic(endian, data).ok()??;
        let strings = sections.strings(endian, data, link).ok()?;
        let (mut needed, mut runpath, mut rpath) = (Vec::new(), Vec::new(), Vec::new());
        for entry in entries {
            let list = match entry.tag32(endian).map(i64::from) {
                Some(object::elf::DT_NEEDED) => &mut needed,
                Some(object::elf::DT_RUNPATH) => &mut runpath,
                Some(object::elf::DT_RPATH) => &mut rpath,
                _ => continue,
            };
            if let Ok(text) = entry.string(endian, strings) {
                list.push(String::from_utf8_lossy(text).into_owned());
            }
        }
        Some((needed, if runpath.is_empty() { rpath } else { runpath }))
    }

    /// The defined functions of .symtab and .dynsym: (address, size, name), sorted by
    /// address, each address once (a global name wins over a local one).
    pub fn functions(&self) -> Vec<(u64, u64, String)> {
        let Ok(file) = self.parsed() else {
            return Vec::new();
        };
        let mut found: Vec<(u64, bool, u64, String)> = file
            .symbols()
            .chain(file.dynamic_symbols())
            .filter(|s| s.is_definition() && s.kind() == SymbolKind::Text && s.address() != 0)
            .filter_map(|s| {
                let name = s.name().ok()?.to_string();
                Some((s.address(), !s.is_global(), s.size(), name))
            })
            .collect();
        found.sort();
        found.dedup_by_key(|f| f.0);
        found
            .into_iter()
            .map(|(address, _, size, name)| (address, size, name))
            .collect()
    }

    /// The virtual address that file offset `offset` is loaded at, through the PT_LOAD
    /// segment whose file image holds it.
    pub fn address_of_offset(&self, offset: u64) -> Option<u64> {
        let file = self.parsed().ok()?;
        file.segments().find_map(|segment| {
            let (start, size) = segment.file_range();
            let within = offset.checked_sub(start)?;
            (within < size).then(|| segment.address() + within)
        })
    }

    fn parsed(&self) -> Result<object::File<'_>, ElfError> {
        parse(&self.path, &self.data)
    }
}

fn parse<'a>(path: &Path, data: &'a [u8]) -> Result<object::File<'a>, ElfError> {
    object::File::parse(data).map_err(|source| ElfError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// The length of the no-op `bytes` start with, if it is one that pads between functions and
/// that a uprobe may be placed on.
fn padding_nop_len(machine: Machine, bytes: &[u8]) -> Option<usize> {
    const X86_NOPS: [&[u8]; 9] = [
        &[0x90],
        &[0x66, 0x90],
        &[0x0f, 0x1f, 0x00],
        &[0x0f, 0x1f, 0x40, 0x00],
        &[0x0f, 0x1f, 0x44, 0x00, 0x00],
        &[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
        &[0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00],
        &[0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
        &[0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
    ];
    const AARCH64_NOP: &[u8] = &[0x1f, 0x20, 0x03, 0xd5];
    match machine {
        Machine::X86_64 => X86_NOPS
            .iter()
            .find(|nop| bytes.starts_with(nop))
            .map(|nop| nop.len()),
        Machine::Aarch64 => bytes.starts_with(AARCH64_NOP).then_some(AARCH64_NOP.len()),
        Machine::Other(_) => None,
    }
}

/// The (address, size) of the defined symbol named `name` among `symbols`, preferring a
/// global one; only functions when `functions_only`.
fn best_symbol<'data, S>(
    symbols: impl Iterator<Item = S>,
    name: &str,
    functions_only: bool,
) -> Option<(u64, u64)>
where
    S: ObjectSymbol<'data>,
{
    let mut local = None;
    for symbol in symbols {
        if symbol.name_bytes().ok() != Some(name.as_bytes()) || !symbol.is_definition() {
            continue;
        }
        if functions_only && symbol.kind() != SymbolKind::Text {
            continue;
        }
        if symbol.is_global() {
            return Some((symbol.address(), symbol.size()));
        }
        local.get_or_insert((symbol.address(), symbol.size()));
    }
    local
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTHON: &str = "/usr/bin/python3.11";

    fn python() -> Option<ElfImage> {
        let path = Path::new(PYTHON);
        path.exists()
            .then(|| ElfImage::open(path).expect("python3.11 is an ELF file"))
    }

    #[test]
    fn not_elf_is_a_parse_error() {
        let err = ElfImage::from_bytes(Path::new("x.txt"), b"hello, world".to_vec()).unwrap_err();
        assert!(matches!(err, ElfError::Parse { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "x.txt is not an ELF file that dtk can read"
        );
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let err = ElfImage::open(Path::new("/nonexistent/dtk-test")).unwrap_err();
        assert!(matches!(err, ElfError::Read { .. }), "{err:?}");
    }

    #[test]
    fn section_and_segment_tables_agree_on_where_probes_is() {
        let Some(image) = python() else { return };
        // Two independent tables of the file: the section header of .probes, and the PT_LOAD
        // segment that maps its address.
        let probes = image.section(".probes").unwrap().expect(".probes exists");
        assert_eq!(
            Some(image.file_offset(probes.address).unwrap()),
            probes.file_offset
        );
        assert_eq!(image.machine(), Machine::X86_64);
    }

    #[test]
    fn padding_after_functions_is_a_nop_outside_every_function() {
        let Some(image) = python() else { return };
        let padding = image.padding_after_functions();
        assert!(padding.len() > 100, "{} padding sites", padding.len());
        let file = image.parsed().unwrap();
        let functions: Vec<(u64, u64)> = file
            .dynamic_symbols()
            .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
            .map(|s| (image.file_offset(s.address()).unwrap(), s.size()))
            .collect();
        for &offset in padding.iter().take(200) {
            let bytes = image.bytes_at(offset, 16).unwrap();
            assert!(
                bytes[0] == 0x90 || bytes[0] == 0x66 || bytes[0] == 0x0f,
                "{bytes:x?}"
            );
            assert!(
                !functions
                    .iter()
                    .any(|&(start, size)| (start..start + size).contains(&offset)),
                "{offset:#x} is inside a function"
            );
        }
        assert_eq!(
            padding_nop_len(Machine::X86_64, &[0x66, 0x2e, 0x0f, 0x1f]),
            None
        );
        assert_eq!(padding_nop_len(Machine::X86_64, &[0xcc]), None);
        assert_eq!(
            padding_nop_len(Machine::X86_64, &[0x0f, 0x1f, 0x40, 0x00, 0x90]),
            Some(4)
        );
    }

    #[test]
    fn function_offset_agrees_with_the_segment_it_is_in() {
        // Debian strips .symtab from python3.11, so this goes through .dynsym.
        let Some(image) = python() else { return };
        let main = image.function("Py_Main").unwrap();
        assert_ne!(main.size, 0);
        // A non-PIE x86_64 executable's text segment maps file offset X at 0x400000 + X.
        assert_eq!(main.address - main.file_offset, 0x40_0000);
        assert_eq!(image.symbol_address("Py_Main").unwrap(), main.address);
    }

    #[test]
    fn unknown_function_and_unmapped_address_are_errors() {
        let Some(image) = python() else { return };
        let err = image.function("no_such_function_in_python").unwrap_err();
        assert!(matches!(err, ElfError::NoSuchFunction { .. }), "{err:?}");
        let err = image.file_offset(0x10).unwrap_err();
        assert!(matches!(err, ElfError::AddressNotInFile { .. }), "{err:?}");
    }

    /// A function with a fixed name, so the test can look it up in this test binary's .symtab.
    #[no_mangle]
    #[inline(never)]
    pub extern "C" fn dtk_elf_test_function(x: u64) -> u64 {
        x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ 0x5a
    }

    #[test]
    fn symtab_function_bytes_in_file_equal_the_code_in_memory() {
        let exe = std::env::current_exe().unwrap();
        let image = ElfImage::open(&exe).unwrap();
        let found = image.function("dtk_elf_test_function").unwrap();
        assert!(found.size > 0 && found.size < 4096, "{found:?}");
        let size = found.size as usize;
        let start = found.file_offset as usize;
        let in_file = &image.data[start..start + size];
        let code = dtk_elf_test_function as *const u8;
        // SAFETY: `code` points at the function's machine code, which is mapped readable for
        // the life of the process, and the symbol table says it is `size` bytes long.
        let in_memory = unsafe { std::slice::from_raw_parts(code, size) };
        assert_eq!(in_file, in_memory);
    }

    #[test]
    fn dynsym_function_in_a_shared_library() {
        let path = Path::new("/lib/x86_64-linux-gnu/libc.so.6");
        if !path.exists() {
            return;
        }
        let libc = ElfImage::open(path).unwrap();
        let getpid = libc.function("getpid").unwrap();
        assert_eq!(
            libc.file_offset(getpid.address).unwrap(),
            getpid.file_offset
        );
        assert!(getpid.file_offset < std::fs::metadata(path).unwrap().len());
    }
}
