//! USDT (SystemTap SDT) probes of an ELF file: where each probe is, its semaphore, and how to
//! decode its arguments.
//!
//! - `note`: the raw `.note.stapsdt` records.
//! - `arg`: argument specs (`-4@%eax`, `8@[sp, 16]`) → pt_regs slots and memory operands.
//!
//! Addresses in a note are link-time addresses. If the file was prelinked after linking, every
//! address moved by the same amount, but the notes (not being allocated) were not relocated.
//! SystemTap records the link-time address of the `.stapsdt.base` section in each note so that
//! the difference between that and the section's address now gives the shift; dtk applies it
//! to the probe address and the semaphore address. The kernel wants file offsets, not
//! addresses: the probe's offset comes through its PT_LOAD segment, and the semaphore's from
//! the `.probes` section (offset = semaphore − .probes address + .probes file offset).
//!
//! The kernel counts the semaphore itself when given its offset as the uprobe's
//! `ref_ctr_offset` (kernel ≥ 4.20).

pub(crate) mod arg;
pub(crate) mod note;

use std::path::{Path, PathBuf};

use super::elf::{ElfError, ElfImage, SectionView};
use arg::{ArgSpecError, SpecContext, UsdtArg};
use note::{Layout, StapsdtNote};

/// Errors from reading USDT probes.
#[derive(Debug, thiserror::Error)]
pub enum UsdtError {
    #[error(transparent)]
    Elf(#[from] ElfError),
    #[error("malformed .note.stapsdt in {path} at byte {offset}: {reason}")]
    Note {
        path: PathBuf,
        offset: usize,
        reason: &'static str,
    },
    #[error(
        "{path} has no USDT probe {provider}:{name}; {}",
        list_probes(available)
    )]
    NoSuchProbe {
        path: PathBuf,
        provider: String,
        name: String,
        /// Every `provider:name` the file has, sorted, without repeats.
        available: Vec<String>,
    },
    #[error("cannot decode the arguments of USDT probe {provider}:{name} in {path}")]
    Args {
        path: PathBuf,
        provider: String,
        name: String,
        #[source]
        source: Box<ArgSpecError>,
    },
    #[error("the semaphore of USDT probe {provider}:{name} in {path} ({address:#x}) is not stored in the file")]
    SemaphoreNotInFile {
        path: PathBuf,
        provider: String,
        name: String,
        address: u64,
    },
}

/// How a NoSuchProbe message names what the file does have.
fn list_probes(available: &[String]) -> String {
    if available.is_empty() {
        "it has no USDT probes at all (no .note.stapsdt section)".to_string()
    } else {
        format!("it has: {}", available.join(", "))
    }
}

/// A semaphore: an `unsigned short` that the probe site tests before firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Semaphore {
    pub address: u64,
    /// What the uprobe PMU takes as `ref_ctr_offset`.
    pub file_offset: u64,
}

/// One USDT probe site. A provider:name pair may have several sites (inlined code).
#[derive(Debug, Clone)]
pub struct UsdtProbe {
    pub provider: String,
    pub name: String,
    /// The probe's address after the .stapsdt.base adjustment.
    pub address: u64,
    /// Where the uprobe goes.
    pub file_offset: u64,
    pub semaphore: Option<Semaphore>,
    /// The argument specs as written in the note, for messages and `dtk run -l`.
    pub arg_specs: String,
    args: Result<Vec<UsdtArg>, ArgSpecError>,
    path: PathBuf,
}

impl UsdtProbe {
    /// The decoded arguments; an error if the note's specs are not understood.
    pub fn args(&self) -> Result<&[UsdtArg], UsdtError> {
        self.args.as_deref().map_err(|source| UsdtError::Args {
            path: self.path.clone(),
            provider: self.provider.clone(),
            name: self.name.clone(),
            source: Box::new(source.clone()),
        })
    }

    /// `provider:name`.
    pub fn full_name(&self) -> String {
        format!("{}:{}", self.provider, self.name)
    }

    /// The ELF file the probe was read from, where its uprobe goes.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// All USDT probes of one ELF file.
#[derive(Debug, Clone)]
pub struct UsdtProbes {
    path: PathBuf,
    probes: Vec<UsdtProbe>,
}

impl UsdtProbes {
    /// Reads the probes of the ELF file at `path`.
    pub fn open(path: &Path) -> Result<Self, UsdtError> {
        Self::read(&ElfImage::open(path)?)
    }

    /// Reads the probes of an ELF file already in memory. A file without `.note.stapsdt`
    /// simply has no probes.
    pub fn read(image: &ElfImage) -> Result<Self, UsdtError> {
        let path = image.path().to_path_buf();
        let Some(section) = image.section(".note.stapsdt")? else {
            return Ok(Self {
                path,
                probes: Vec::new(),
            });
        };
        let layout = Layout {
            is_64: image.is_64(),
            little_endian: image.is_little_endian(),
        };
        let notes = note::parse_notes(section.data, section.align, layout).map_err(|e| {
            UsdtError::Note {
                path: path.clone(),
                offset: e.offset,
                reason: e.reason,
            }
        })?;
        let base_now = image.section(".stapsdt.base")?.map(|s| s.address);
        let probes_section = image.section(".probes")?;
        let probes = notes
            .into_iter()
            .map(|note| probe(image, note, base_now, probes_section.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Self { path, probes })
    }

    pub fn all(&self) -> &[UsdtProbe] {
        &self.probes
    }

    /// Every site of `provider:name`; NoSuchProbe, listing what there is, when none.
    pub fn find(&self, provider: &str, name: &str) -> Result<Vec<&UsdtProbe>, UsdtError> {
        let sites: Vec<&UsdtProbe> = self
            .probes
            .iter()
            .filter(|p| p.provider == provider && p.name == name)
            .collect();
        if sites.is_empty() {
            return Err(UsdtError::NoSuchProbe {
                path: self.path.clone(),
                provider: provider.to_string(),
                name: name.to_string(),
                available: self.names(),
            });
        }
        Ok(sites)
    }

    /// Every `provider:name`, sorted, without repeats.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.probes.iter().map(UsdtProbe::full_name).collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Where a uprobe that never fires can hold the semaphore at file offset `semaphore` of the
/// file at `path` raised (as its `ref_ctr_offset`): the kernel then counts the semaphore in
/// every process the uprobe is for, and lowers it when the uprobe goes, even if dtk is killed,
/// without a breakpoint on the probe's sites. It is one of the file's `padding_after_functions`,
/// chosen by the semaphore's rank among the file's semaphores, so that every semaphore of a
/// file has a place of its own, the same in every run (the kernel refuses two uprobes at one
/// place with different reference counters). None when the file has no such padding or no
/// such semaphore.
pub fn semaphore_holder(path: &Path, semaphore: u64) -> Result<Option<u64>, UsdtError> {
    let image = ElfImage::open(path)?;
    let mut semaphores: Vec<u64> = UsdtProbes::read(&image)?
        .all()
        .iter()
        .filter_map(|p| p.semaphore.map(|s| s.file_offset))
        .collect();
    semaphores.sort_unstable();
    semaphores.dedup();
    let Ok(rank) = semaphores.binary_search(&semaphore) else {
        return Ok(None);
    };
    let padding = image.padding_after_functions();
    Ok((!padding.is_empty()).then(|| padding[rank % padding.len()]))
}

/// Turns a note into a probe: prelink adjustment, file offsets, decoded arguments.
fn probe(
    image: &ElfImage,
    note: StapsdtNote,
    base_now: Option<u64>,
    probes_section: Option<&SectionView<'_>>,
) -> Result<UsdtProbe, UsdtError> {
    let (address, semaphore_address) = prelink_adjusted(&note, base_now);
    let semaphore = match semaphore_address {
        None => None,
        Some(at) => Some(semaphore(image, &note, at, probes_section)?),
    };
    let symbol_address = |symbol: &str| image.symbol_address(symbol).ok();
    let context = SpecContext {
        machine: image.machine(),
        probe_address: address,
        symbol_address: &symbol_address,
    };
    let args = arg::parse_args(&context, &note.args);
    Ok(UsdtProbe {
        file_offset: image.file_offset(address)?,
        address,
        semaphore,
        args,
        arg_specs: note.args,
        provider: note.provider,
        name: note.name,
        path: image.path().to_path_buf(),
    })
}

/// The probe's address and its semaphore's (None when the note has none), moved by however
/// far `.stapsdt.base` moved since the note was written (`base_now` is its address now).
/// Without the section, or with a zero base in the note, there is nothing to adjust by.
fn prelink_adjusted(note: &StapsdtNote, base_now: Option<u64>) -> (u64, Option<u64>) {
    let shift = match base_now {
        Some(now) if note.base != 0 => now.wrapping_sub(note.base),
        _ => 0,
    };
    let semaphore = (note.semaphore != 0).then(|| note.semaphore.wrapping_add(shift));
    (note.pc.wrapping_add(shift), semaphore)
}

/// Locates a semaphore in the file: in `.probes` as sys/sdt.h places it, or else in whatever
/// PT_LOAD segment holds it (some toolchains put semaphores in .data).
fn semaphore(
    image: &ElfImage,
    note: &StapsdtNote,
    address: u64,
    probes_section: Option<&SectionView<'_>>,
) -> Result<Semaphore, UsdtError> {
    let in_probes = probes_section.and_then(|section| {
        let within = address.checked_sub(section.address)?;
        (within < section.data.len() as u64).then_some(section.file_offset? + within)
    });
    let file_offset = match in_probes {
        Some(offset) => offset,
        None => image
            .file_offset(address)
            .map_err(|_| UsdtError::SemaphoreNotInFile {
                path: image.path().to_path_buf(),
                provider: note.provider.clone(),
                name: note.name.clone(),
                address,
            })?,
    };
    Ok(Semaphore {
        address,
        file_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTHON: &str = "/usr/bin/python3.11";

    fn python() -> Option<UsdtProbes> {
        let path = Path::new(PYTHON);
        path.exists().then(|| UsdtProbes::open(path).unwrap())
    }

    /// What binutils' `readelf` says about a file: the ground truth for these tests.
    fn readelf(args: &[&str], path: &Path) -> String {
        let out = std::process::Command::new("readelf")
            .args(args)
            .arg(path)
            .output()
            .expect("readelf (binutils) is installed");
        String::from_utf8(out.stdout).unwrap()
    }

    fn hex(text: &str) -> u64 {
        let digits = text.trim().trim_end_matches(',');
        u64::from_str_radix(digits.trim_start_matches("0x"), 16).unwrap()
    }

    /// `readelf -SW`: (address, file offset) of section `name`.
    fn readelf_section(path: &Path, name: &str) -> (u64, u64) {
        let table = readelf(&["-SW"], path);
        let words: Vec<&str> = table
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find_map(|words| {
                let at = words.iter().position(|w| *w == name)?;
                Some(words[at..].to_vec())
            })
            .expect("the section is listed");
        (hex(words[2]), hex(words[3]))
    }

    /// `readelf -lW`: the file offset of `address` through its PT_LOAD line.
    fn readelf_file_offset(path: &Path, address: u64) -> u64 {
        readelf(&["-lW"], path)
            .lines()
            .filter(|line| line.trim_start().starts_with("LOAD"))
            .find_map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                let (offset, vaddr, file_size) = (hex(words[1]), hex(words[2]), hex(words[4]));
                let within = address.checked_sub(vaddr)?;
                (within < file_size).then_some(offset + within)
            })
            .expect("a LOAD segment holds the address")
    }

    /// `readelf -n`: (location, semaphore) of probe `provider:name`.
    fn readelf_probe(path: &Path, provider: &str, name: &str) -> (u64, u64) {
        let notes = readelf(&["-n"], path);
        let lines: Vec<&str> = notes.lines().map(str::trim).collect();
        let at = lines
            .windows(2)
            .position(|w| {
                w[0] == format!("Provider: {provider}") && w[1] == format!("Name: {name}")
            })
            .expect("readelf lists the probe");
        // "Location: 0x…, Base: 0x…, Semaphore: 0x…"
        let fields: Vec<&str> = lines[at + 2].split_whitespace().collect();
        (hex(fields[1]), hex(fields[5]))
    }

    /// Checks `function__entry` of `path` against readelf, with the formula of PYTHON.md:
    /// semaphore offset = semaphore − .probes address + .probes file offset.
    fn check_function_entry(path: &Path) {
        let probes = UsdtProbes::open(path).unwrap();
        let sites = probes.find("python", "function__entry").unwrap();
        assert_eq!(sites.len(), 1);
        let entry = sites[0];
        let (location, semaphore) = readelf_probe(path, "python", "function__entry");
        let (probes_address, probes_offset) = readelf_section(path, ".probes");
        assert_eq!(
            entry.semaphore,
            Some(Semaphore {
                address: semaphore,
                file_offset: semaphore - probes_address + probes_offset,
            })
        );
        assert_eq!(entry.address, location);
        assert_eq!(entry.file_offset, readelf_file_offset(path, location));
        assert_eq!(entry.arg_specs, "8@%rbp 8@%r12 -4@%eax");
        assert_eq!(entry.args().unwrap().len(), 3);
    }

    #[test]
    fn python_function_entry_agrees_with_readelf() {
        check_function_entry(Path::new(PYTHON));
    }

    #[test]
    fn libpython_function_entry_agrees_with_readelf() {
        // A shared library: its writable segment maps at a different offset than its address,
        // so the semaphore's file offset differs from its address.
        let path = Path::new("/lib/x86_64-linux-gnu/libpython3.11.so.1.0");
        check_function_entry(path);
        let probes = UsdtProbes::open(path).unwrap();
        let semaphore = probes.find("python", "function__entry").unwrap()[0]
            .semaphore
            .unwrap();
        assert_ne!(semaphore.address, semaphore.file_offset);
    }

    #[test]
    fn semaphore_offset_of_the_python_md_example() {
        // PYTHON.md, measured on Debian's python3.11 3.11.2-6+deb12u6: function__entry's
        // semaphore at 0xa84260 is at file offset 0x683260, where .probes starts.
        let image = ElfImage::open(&std::env::current_exe().unwrap()).unwrap();
        let data = [0u8; 0x18];
        let probes = SectionView {
            address: 0xa8_4260,
            file_offset: Some(0x68_3260),
            align: 2,
            data: &data,
        };
        let note = StapsdtNote {
            pc: 0x4f_20a1,
            base: 0x8c_c5a0,
            semaphore: 0xa8_4260,
            provider: "python".into(),
            name: "function__entry".into(),
            args: "8@%rbp 8@%r12 -4@%eax".into(),
        };
        let found = semaphore(&image, &note, 0xa8_4260, Some(&probes)).unwrap();
        assert_eq!(found.file_offset, 0x68_3260);
        let last = semaphore(&image, &note, 0xa8_4276, Some(&probes)).unwrap();
        assert_eq!(last.file_offset, 0x68_3276);
        // Outside .probes, and in no segment of the file it is checked against: an error.
        let err = semaphore(&image, &note, u64::MAX - 1, Some(&probes)).unwrap_err();
        assert!(
            matches!(err, UsdtError::SemaphoreNotInFile { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn prelinked_addresses_move_with_stapsdt_base() {
        let note = StapsdtNote {
            pc: 0x1500,
            base: 0x1000,
            semaphore: 0x2000,
            provider: "p".into(),
            name: "n".into(),
            args: String::new(),
        };
        // Prelinked 0x20000 higher, or lower: both addresses move by the same amount.
        assert_eq!(
            prelink_adjusted(&note, Some(0x21000)),
            (0x21500, Some(0x22000))
        );
        assert_eq!(prelink_adjusted(&note, Some(0x800)), (0xd00, Some(0x1800)));
        // Not prelinked, no base section, or no base recorded: unchanged.
        assert_eq!(
            prelink_adjusted(&note, Some(0x1000)),
            (0x1500, Some(0x2000))
        );
        assert_eq!(prelink_adjusted(&note, None), (0x1500, Some(0x2000)));
        let unbased = StapsdtNote {
            base: 0,
            ..note.clone()
        };
        assert_eq!(
            prelink_adjusted(&unbased, Some(0x9000)),
            (0x1500, Some(0x2000))
        );
        // A zero semaphore means "none" and stays so.
        let plain = StapsdtNote {
            semaphore: 0,
            ..note
        };
        assert_eq!(prelink_adjusted(&plain, Some(0x21000)), (0x21500, None));
    }

    #[test]
    fn python_probe_names() {
        let Some(probes) = python() else { return };
        let names = probes.names();
        for expected in [
            "python:function__entry",
            "python:function__return",
            "python:line",
            "python:gc__start",
            "python:gc__done",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
    }

    #[test]
    fn no_such_probe_lists_the_probes_there_are() {
        let Some(probes) = python() else { return };
        let err = probes.find("python", "function-entry").unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("has no USDT probe python:function-entry"),
            "{message}"
        );
        assert!(
            message.contains("python:function__entry, python:function__return"),
            "{message}"
        );
    }

    #[test]
    fn file_without_notes_has_no_probes() {
        let exe = std::env::current_exe().unwrap();
        let probes = UsdtProbes::open(&exe).unwrap();
        assert!(probes.all().is_empty());
        let err = probes.find("python", "line").unwrap_err();
        assert!(err
            .to_string()
            .ends_with("it has no USDT probes at all (no .note.stapsdt section)"));
    }

    #[test]
    fn libstdcxx_probes_have_no_semaphores_and_decode() {
        let path = Path::new("/lib/x86_64-linux-gnu/libstdc++.so.6");
        if !path.exists() {
            return;
        }
        let probes = UsdtProbes::open(path).unwrap();
        let image = ElfImage::open(path).unwrap();
        assert!(probes.find("libstdcxx", "throw").is_ok());
        let size = std::fs::metadata(path).unwrap().len();
        for probe in probes.all() {
            assert_eq!(probe.provider, "libstdcxx");
            assert!(probe.semaphore.is_none());
            assert!(probe.file_offset < size);
            assert_eq!(image.file_offset(probe.address).unwrap(), probe.file_offset);
            probe.args().unwrap();
        }
    }

    #[test]
    fn every_semaphore_has_a_holder_of_its_own_away_from_every_site() {
        let Some(probes) = python() else { return };
        let path = Path::new(PYTHON);
        let mut holders: Vec<u64> = Vec::new();
        for probe in probes.all() {
            let semaphore = probe.semaphore.unwrap().file_offset;
            let holder = semaphore_holder(path, semaphore).unwrap().unwrap();
            assert!(probes.all().iter().all(|p| p.file_offset != holder));
            holders.push(holder);
        }
        holders.sort_unstable();
        holders.dedup();
        let mut semaphores: Vec<u64> = probes
            .all()
            .iter()
            .map(|p| p.semaphore.unwrap().file_offset)
            .collect();
        semaphores.sort_unstable();
        semaphores.dedup();
        assert_eq!(holders.len(), semaphores.len());
        assert_eq!(semaphore_holder(path, 1).unwrap(), None);
    }
}
