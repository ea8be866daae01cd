//! Kernel symbols from /proc/kallsyms, for D's backquoted names (`` `max_pfn ``,
//! ``vmlinux`jiffies``, ``ext4`ext4_fill_super``). Which symbols are listed depends on the
//! kernel: without CONFIG_KALLSYMS_ALL, only functions and a few data symbols are.

use std::sync::OnceLock;

const KALLSYMS: &str = "/proc/kallsyms";

/// What looking up a kernel symbol found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelSymbol {
    Address(u64),
    /// The symbol is listed, but the kernel shows its address as 0 (kptr_restrict, or not
    /// root).
    Hidden,
    Missing,
}

/// The address of `name` in `module` ("vmlinux" or `None` for the kernel itself).
pub fn lookup(module: Option<&str>, name: &str) -> KernelSymbol {
    static TEXT: OnceLock<String> = OnceLock::new();
    let text = TEXT.get_or_init(|| std::fs::read_to_string(KALLSYMS).unwrap_or_default());
    find(text, module, name)
}

fn find(text: &str, module: Option<&str>, name: &str) -> KernelSymbol {
    let module = module.filter(|m| *m != "vmlinux");
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(addr), Some(_kind), Some(sym)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let in_module = fields
            .next()
            .map(|m| m.trim_start_matches('[').trim_end_matches(']'));
        if sym != name || (module.is_some() && in_module != module) {
            continue;
        }
        return match u64::from_str_radix(addr, 16) {
            Ok(0) | Err(_) => KernelSymbol::Hidden,
            Ok(a) => KernelSymbol::Address(a),
        };
    }
    KernelSymbol::Missing
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "ffffffff81000000 T _text\n\
        ffffffff82a01000 D jiffies\n\
        ffffffffc0001000 t helper\t[ext4]\n\
        ffffffffc0002000 t helper\t[xfs]\n";

    #[test]
    fn finds_symbols_by_module() {
        assert_eq!(
            find(SAMPLE, None, "jiffies"),
            KernelSymbol::Address(0xffffffff82a01000)
        );
        assert_eq!(
            find(SAMPLE, Some("xfs"), "helper"),
            KernelSymbol::Address(0xffffffffc0002000)
        );
        assert_eq!(find(SAMPLE, Some("btrfs"), "helper"), KernelSymbol::Missing);
        let hidden = "0000000000000000 T _text\n";
        assert_eq!(find(hidden, Some("vmlinux"), "_text"), KernelSymbol::Hidden);
    }
}
