//! Stack frames as dtrace prints them, `module`function+0xoffset`: kernel addresses through
//! /proc/kallsyms, user addresses through the process's /proc/PID/maps and the .symtab and
//! .dynsym of the file mapped there. Each table is read once and each address named once
//! per process, so a stack seen again costs a few lookups in a cache.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::elf::ElfImage;
use super::procmaps::ProcessMaps;

/// Functions sorted by address: (address, size, name). A size of 0 (kallsyms gives none)
/// extends to the next function.
#[derive(Debug, Default)]
struct Functions(Vec<(u64, u64, String)>);

impl Functions {
    /// The function holding `addr` and the offset into it.
    fn find(&self, addr: u64) -> Option<(&str, u64)> {
        let i = self.0.partition_point(|f| f.0 <= addr).checked_sub(1)?;
        let (start, size, name) = &self.0[i];
        let offset = addr - start;
        (*size == 0 || offset < *size).then_some((name.as_str(), offset))
    }
}

/// The kernel's text symbols, by module (`vmlinux` for the kernel itself).
#[derive(Debug, Default)]
struct KernelSymbols {
    functions: Functions,
    modules: Vec<String>,
}

impl KernelSymbols {
    fn read() -> KernelSymbols {
        let text = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
        KernelSymbols::parse(&text)
    }

    /// Parses kallsyms lines (`ffffffff81000000 T _stext [module]`): the text symbols, and
    /// the module of each (`vmlinux` when none is named) in `modules`.
    fn parse(text: &str) -> KernelSymbols {
        let mut entries: Vec<(u64, String, String)> = text
            .lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                let addr = u64::from_str_radix(parts.next()?, 16).ok()?;
                let kind = parts.next()?;
                let name = parts.next()?;
                let module = parts
                    .next()
                    .map(|m| m.trim_matches(|c| c == '[' || c == ']'))
                    .unwrap_or("vmlinux");
                let text_symbol = matches!(kind, "t" | "T" | "w" | "W");
                (addr != 0 && text_symbol).then(|| (addr, name.to_string(), module.to_string()))
            })
            .collect();
        entries.sort();
        entries.dedup_by_key(|e| e.0);
        let modules = entries.iter().map(|e| e.2.clone()).collect();
        let functions = Functions(entries.into_iter().map(|(a, n, _)| (a, 0, n)).collect());
        KernelSymbols { functions, modules }
    }

    fn symbol(&self, addr: u64) -> Option<Symbol> {
        let i = self
            .functions
            .0
            .partition_point(|f| f.0 <= addr)
            .checked_sub(1)?;
        let (name, offset) = self.functions.find(addr)?;
        Some(Symbol {
            module: self.modules[i].clone(),
            function: Some((name.to_string(), offset)),
        })
    }

    #[cfg(test)]
    fn name(&self, addr: u64) -> Option<String> {
        self.symbol(addr).map(|s| s.frame(addr))
    }
}

/// Where an address lies: its module (the file mapped there, or the kernel module), and the
/// function that holds it with the offset into it, when a symbol covers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub module: String,
    pub function: Option<(String, u64)>,
}

impl Symbol {
    /// `module`name+0xoffset` (`module`0xaddr` when no function holds `addr`), as stack
    /// frames and uaddr() print it.
    pub fn frame(&self, addr: u64) -> String {
        match &self.function {
            Some((name, offset)) => frame(&self.module, name, *offset),
            None => format!("{}`{}", self.module, hex(addr)),
        }
    }

    /// `module`name` (`module`0xaddr` when no function holds `addr`), as func() and
    /// ufunc() print it.
    pub fn function(&self, addr: u64) -> String {
        match &self.function {
            Some((name, _)) => frame(&self.module, name, 0),
            None => self.frame(addr),
        }
    }
}

/// What one process maps, with the symbols of each file.
struct ProcessSymbols {
    maps: ProcessMaps,
}

/// Names stack frames; one per run, shared by all firings.
#[derive(Default)]
pub struct Symbolizer {
    kernel: Option<KernelSymbols>,
    processes: HashMap<u32, Option<ProcessSymbols>>,
    files: HashMap<String, Arc<(Functions, Option<ElfImage>)>>,
    names: HashMap<(u32, u64), Arc<str>>,
}

impl Symbolizer {
    /// A kernel frame.
    pub fn kernel(&mut self, addr: u64) -> Arc<str> {
        if let Some(name) = self.names.get(&(0, addr)) {
            return name.clone();
        }
        let name: Arc<str> = self
            .kernel_symbol(addr)
            .map_or_else(|| hex(addr), |s| s.frame(addr))
            .into();
        self.names.insert((0, addr), name.clone());
        name
    }

    /// A frame of process `pid`.
    pub fn user(&mut self, pid: u32, addr: u64) -> Arc<str> {
        let key = (pid.max(1), addr);
        if let Some(name) = self.names.get(&key) {
            return name.clone();
        }
        let name: Arc<str> = self
            .user_symbol(pid, addr)
            .map_or_else(|| hex(addr), |s| s.frame(addr))
            .into();
        self.names.insert(key, name.clone());
        name
    }

    /// Where kernel address `addr` lies, if a kernel symbol covers it.
    pub fn kernel_symbol(&mut self, addr: u64) -> Option<Symbol> {
        self.kernel
            .get_or_insert_with(KernelSymbols::read)
            .symbol(addr)
    }

    /// Where address `addr` of process `pid` lies, if a file is mapped there.
    pub fn user_symbol(&mut self, pid: u32, addr: u64) -> Option<Symbol> {
        let process = self
            .processes
            .entry(pid)
            .or_insert_with(|| {
                ProcessMaps::read(pid)
                    .ok()
                    .map(|maps| ProcessSymbols { maps })
            })
            .as_ref()?;
        let mapping = process
            .maps
            .mappings()
            .iter()
            .find(|m| (m.start..m.end).contains(&addr))?
            .clone();
        let path = process.maps.openable_path(&mapping);
        let file = self
            .files
            .entry(mapping.path.clone())
            .or_insert_with(|| Arc::new(read_file(&path)))
            .clone();
        let module = Path::new(&mapping.path).file_name().map_or_else(
            || mapping.path.clone(),
            |n| n.to_string_lossy().into_owned(),
        );
        let offset = addr - mapping.start + mapping.offset;
        let (functions, image) = &*file;
        let vaddr = image.as_ref()?.address_of_offset(offset)?;
        let function = functions
            .find(vaddr)
            .map(|(name, within)| (name.to_string(), within));
        Some(Symbol { module, function })
    }
}

fn read_file(path: &Path) -> (Functions, Option<ElfImage>) {
    match ElfImage::open(path) {
        Ok(image) => (Functions(image.functions()), Some(image)),
        Err(_) => (Functions::default(), None),
    }
}

/// `module`name+0xoffset`, or `module`name` at the function's first byte.
fn frame(module: &str, name: &str, offset: u64) -> String {
    if offset == 0 {
        format!("{module}`{name}")
    } else {
        format!("{module}`{name}+{offset:#x}")
    }
}

fn hex(addr: u64) -> String {
    format!("{addr:#x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kallsyms_names_by_module_and_offset() {
        let k = KernelSymbols::parse(
            "ffffffff81000000 T _stext\n\
             ffffffff81000100 t helper\n\
             ffffffff81000200 D some_data\n\
             ffffffffc0000000 t ext4_write [ext4]\n",
        );
        assert_eq!(
            k.name(0xffffffff81000000).as_deref(),
            Some("vmlinux`_stext")
        );
        assert_eq!(
            k.name(0xffffffff81000123).as_deref(),
            Some("vmlinux`helper+0x23")
        );
        assert_eq!(
            k.name(0xffffffffc0000010).as_deref(),
            Some("ext4`ext4_write+0x10")
        );
        assert_eq!(k.name(0x1000), None);
    }

    #[test]
    fn symbols_print_as_frames_and_functions() {
        let named = Symbol {
            module: "libc.so.6".into(),
            function: Some(("malloc".into(), 0x14)),
        };
        assert_eq!(named.frame(0x7f00), "libc.so.6`malloc+0x14");
        assert_eq!(named.function(0x7f00), "libc.so.6`malloc");
        let unnamed = Symbol {
            module: "a.out".into(),
            function: None,
        };
        assert_eq!(unnamed.frame(0x401000), "a.out`0x401000");
        assert_eq!(unnamed.function(0x401000), "a.out`0x401000");
    }

    #[test]
    fn this_process_names_its_own_functions() {
        let here = this_process_names_its_own_functions as *const () as usize as u64;
        let mut s = Symbolizer::default();
        let name = s.user(std::process::id(), here + 1);
        let exe = std::env::current_exe().unwrap();
        let module = exe.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(&format!("{module}`")), "{name}");
        assert!(
            name.contains("this_process_names_its_own_functions"),
            "{name}"
        );
        assert!(name.ends_with("+0x1"), "{name}");
    }
}
