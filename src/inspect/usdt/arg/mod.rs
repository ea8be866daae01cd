//! USDT argument specs: the text after "Arguments:" in `readelf -n`, one operand per argument,
//! as the compiler wrote it in the machine's assembler syntax, turned into where a BPF program
//! finds the value: a constant, a slot of the kernel's `struct pt_regs`, or memory at a
//! register plus a displacement.
//!
//! Forms (SystemTap's sys/sdt.h; the size before `@` is in bytes, negative when signed):
//! - x86_64 (AT&T): `-4@%eax`, `8@%rax`, `2@%ax`, `1@%al`, `1@%ah`, `-4@$5`,
//!   `8@-16(%rbp)`, `8@(%rdi)`, `8@foo(%rip)`, `8@foo+8(%rip)`.
//! - aarch64: `-4@x0`, `4@w1`, `8@sp`, `8@[sp, 16]`, `8@[x1]`, `8@[x2, -8]`, `-4@5`.
//!
//! A spec with no `N@` (old SDT v1 notes) takes its size from the register, unsigned.

mod aarch64;
mod x86_64;

use crate::inspect::elf::Machine;

/// Where an argument's value is, once its text has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgLocation {
    /// The value itself (`$5` on x86_64, a bare number on aarch64).
    Constant(i64),
    /// A register: the 8-byte slot at `regs_offset` in `struct pt_regs`, shifted right by
    /// `shift` bits first (8 for `%ah`..`%dh`).
    Register { regs_offset: u16, shift: u8 },
    /// In the traced process's memory at (register at `regs_offset`) + `displacement`.
    /// x86_64's `foo(%rip)` becomes this too, relative to `%rip`: at a uprobe the kernel sets
    /// `%rip` to the probe's address, so foo's address there is `%rip` + (foo − probe).
    /// That holds wherever the file is loaded, so PIE executables and libraries need no pid.
    Memory { regs_offset: u16, displacement: i64 },
}

/// One argument of a USDT probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsdtArg {
    /// Width of the value in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// Whether the value is sign-extended to 64 bits (rather than zero-extended).
    pub signed: bool,
    pub location: ArgLocation,
}

/// Why an argument spec could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgSpecError {
    #[error("bad argument size in `{spec}` (expected 1, 2, 4 or 8, optionally negative)")]
    Size { spec: String },
    #[error("unknown {machine} register `{register}` in `{spec}`")]
    Register {
        machine: &'static str,
        register: String,
        spec: String,
    },
    #[error("cannot read operand `{spec}` for {machine}")]
    Operand { machine: &'static str, spec: String },
    #[error("no symbol `{symbol}` in the file, for operand `{spec}`")]
    Symbol { symbol: String, spec: String },
    #[error("USDT arguments of {machine:?} binaries are not decoded by dtk")]
    Machine { machine: Machine },
}

/// What reading a spec needs to know beyond its text.
pub struct SpecContext<'a> {
    pub machine: Machine,
    /// The probe's address (after .stapsdt.base adjustment), for `foo(%rip)` operands.
    pub probe_address: u64,
    /// Looks a symbol's address up in the probe's file, for `foo(%rip)` operands.
    pub symbol_address: &'a dyn Fn(&str) -> Option<u64>,
}

/// Reads every argument in `specs` (space-separated operands, as stored in the note).
pub fn parse_args(context: &SpecContext<'_>, specs: &str) -> Result<Vec<UsdtArg>, ArgSpecError> {
    split_operands(specs)
        .into_iter()
        .map(|spec| parse_arg(context, &spec))
        .collect()
}

/// Reads one argument spec such as `-4@%eax`.
pub fn parse_arg(context: &SpecContext<'_>, spec: &str) -> Result<UsdtArg, ArgSpecError> {
    let (size, operand) = split_size(spec)?;
    let (location, register_width) = match context.machine {
        Machine::X86_64 => x86_64::operand(context, operand, spec)?,
        Machine::Aarch64 => aarch64::operand(operand, spec)?,
        machine @ Machine::Other(_) => return Err(ArgSpecError::Machine { machine }),
    };
    let (size, signed) = match size {
        // A register operand is never wider than its register.
        Some((size, signed)) => (register_width.map_or(size, |w| w.min(size)), signed),
        None => (register_width.unwrap_or(8), false),
    };
    Ok(UsdtArg {
        size,
        signed,
        location,
    })
}

/// Splits the argument text at spaces that are not inside `[...]`: aarch64 writes memory
/// operands as `8@[sp, 16]`.
fn split_operands(specs: &str) -> Vec<String> {
    let mut operands = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in specs.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if c.is_whitespace() && depth == 0 {
            if !current.is_empty() {
                operands.push(std::mem::take(&mut current));
            }
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        operands.push(current);
    }
    operands
}

/// The `N@` or `-N@` before an operand: width in bytes and signedness.
type SizePrefix = Option<(u8, bool)>;

/// Splits `-4@operand` into (Some((4, signed)), operand); a spec without `@` has no size.
fn split_size(spec: &str) -> Result<(SizePrefix, &str), ArgSpecError> {
    let Some((size, operand)) = spec.split_once('@') else {
        return Ok((None, spec));
    };
    let bad = || ArgSpecError::Size {
        spec: spec.to_string(),
    };
    let (signed, digits) = match size.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, size.strip_prefix('+').unwrap_or(size)),
    };
    match digits.parse::<u8>().map_err(|_| bad())? {
        size @ (1 | 2 | 4 | 8) => Ok((Some((size, signed)), operand)),
        _ => Err(bad()),
    }
}

/// Parses a decimal or `0x` hexadecimal integer with an optional sign.
fn parse_int(text: &str) -> Option<i64> {
    let (negative, magnitude) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let value = match magnitude
        .strip_prefix("0x")
        .or_else(|| magnitude.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => magnitude.parse::<u64>().ok()?,
    };
    // Wrapping: a 64-bit constant such as 0xffffffffffffffff means -1 in two's complement.
    let value = value as i64;
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets in x86_64 `struct pt_regs`, written out from the kernel header.
    const RAX: u16 = 80;
    const RBP: u16 = 32;
    const RDI: u16 = 112;
    const RDX: u16 = 96;
    const R12: u16 = 24;
    const R9: u16 = 64;
    const RSP: u16 = 152;

    fn no_symbols(_: &str) -> Option<u64> {
        None
    }

    fn x86(spec: &str) -> Result<UsdtArg, ArgSpecError> {
        let context = SpecContext {
            machine: Machine::X86_64,
            probe_address: 0x40_1000,
            symbol_address: &no_symbols,
        };
        parse_arg(&context, spec)
    }

    fn arm(spec: &str) -> Result<UsdtArg, ArgSpecError> {
        let context = SpecContext {
            machine: Machine::Aarch64,
            probe_address: 0x1000,
            symbol_address: &no_symbols,
        };
        parse_arg(&context, spec)
    }

    fn arg(size: u8, signed: bool, location: ArgLocation) -> UsdtArg {
        UsdtArg {
            size,
            signed,
            location,
        }
    }

    fn reg(regs_offset: u16, shift: u8) -> ArgLocation {
        ArgLocation::Register { regs_offset, shift }
    }

    fn mem(regs_offset: u16, displacement: i64) -> ArgLocation {
        ArgLocation::Memory {
            regs_offset,
            displacement,
        }
    }

    #[test]
    fn x86_64_registers_of_every_width() {
        assert_eq!(x86("-4@%eax").unwrap(), arg(4, true, reg(RAX, 0)));
        assert_eq!(x86("8@%rax").unwrap(), arg(8, false, reg(RAX, 0)));
        assert_eq!(x86("8@%r12").unwrap(), arg(8, false, reg(R12, 0)));
        assert_eq!(x86("-2@%ax").unwrap(), arg(2, true, reg(RAX, 0)));
        assert_eq!(x86("1@%al").unwrap(), arg(1, false, reg(RAX, 0)));
        assert_eq!(x86("1@%dh").unwrap(), arg(1, false, reg(RDX, 8)));
        assert_eq!(x86("-1@%dil").unwrap(), arg(1, true, reg(RDI, 0)));
        assert_eq!(x86("4@%r9d").unwrap(), arg(4, false, reg(R9, 0)));
        assert_eq!(x86("2@%r9w").unwrap(), arg(2, false, reg(R9, 0)));
        assert_eq!(x86("1@%r9b").unwrap(), arg(1, false, reg(R9, 0)));
        assert_eq!(x86("8@%rsp").unwrap(), arg(8, false, reg(RSP, 0)));
    }

    #[test]
    fn x86_64_rip_offset_is_the_rip_slot() {
        assert_eq!(x86_64::register("rip"), Some((x86_64::RIP_OFFSET, 0, 8)));
    }

    #[test]
    fn x86_64_size_is_capped_by_the_register_and_defaults_to_it() {
        assert_eq!(x86("8@%eax").unwrap(), arg(4, false, reg(RAX, 0)));
        assert_eq!(x86("%ax").unwrap(), arg(2, false, reg(RAX, 0)));
        assert_eq!(x86("%al").unwrap(), arg(1, false, reg(RAX, 0)));
        assert_eq!(x86("%rdi").unwrap(), arg(8, false, reg(RDI, 0)));
    }

    #[test]
    fn x86_64_memory_and_constants() {
        assert_eq!(x86("8@-16(%rbp)").unwrap(), arg(8, false, mem(RBP, -16)));
        assert_eq!(x86("8@(%rdi)").unwrap(), arg(8, false, mem(RDI, 0)));
        assert_eq!(x86("-4@112(%rsp)").unwrap(), arg(4, true, mem(RSP, 112)));
        assert_eq!(x86("-4@0x10(%rdi)").unwrap(), arg(4, true, mem(RDI, 16)));
        assert_eq!(
            x86("-4@$5").unwrap(),
            arg(4, true, ArgLocation::Constant(5))
        );
        assert_eq!(
            x86("8@$-1").unwrap(),
            arg(8, false, ArgLocation::Constant(-1))
        );
    }

    #[test]
    fn x86_64_rip_relative_symbol_becomes_a_displacement_from_the_probe() {
        let symbols = |name: &str| (name == "counter").then_some(0x40_5000);
        let context = SpecContext {
            machine: Machine::X86_64,
            probe_address: 0x40_1000,
            symbol_address: &symbols,
        };
        assert_eq!(
            parse_arg(&context, "8@counter(%rip)").unwrap(),
            arg(8, false, mem(128, 0x4000))
        );
        assert_eq!(
            parse_arg(&context, "-4@counter+8(%rip)").unwrap(),
            arg(4, true, mem(128, 0x4008))
        );
        let below = SpecContext {
            probe_address: 0x40_6000,
            ..context
        };
        assert_eq!(
            parse_arg(&below, "8@counter-4(%rip)").unwrap(),
            arg(8, false, mem(128, -0x1004))
        );
        let err = parse_arg(&below, "8@missing(%rip)").unwrap_err();
        assert!(matches!(err, ArgSpecError::Symbol { .. }), "{err:?}");
    }

    #[test]
    fn x86_64_bad_specs_are_errors() {
        for spec in [
            "3@%eax",
            "16@%rax",
            "x@%rax",
            "8@%xyz",
            "8@%r16",
            "8@(%eax)",
            "8@(%rax,%rbx,8)",
            "8@16",
            "8@$",
            "8@$zz",
            "8@-16(rbp)",
            "8@16(%rip)",
        ] {
            assert!(x86(spec).is_err(), "{spec} should not parse");
        }
        let err = x86("8@%xyz").unwrap_err();
        assert_eq!(err.to_string(), "unknown x86_64 register `xyz` in `8@%xyz`");
    }

    #[test]
    fn aarch64_forms() {
        assert_eq!(arm("-4@x0").unwrap(), arg(4, true, reg(0, 0)));
        assert_eq!(arm("8@x30").unwrap(), arg(8, false, reg(240, 0)));
        assert_eq!(arm("8@w1").unwrap(), arg(4, false, reg(8, 0)));
        assert_eq!(arm("8@sp").unwrap(), arg(8, false, reg(248, 0)));
        assert_eq!(arm("8@[sp, 16]").unwrap(), arg(8, false, mem(248, 16)));
        assert_eq!(arm("8@[sp, #16]").unwrap(), arg(8, false, mem(248, 16)));
        assert_eq!(arm("8@[x1]").unwrap(), arg(8, false, mem(8, 0)));
        assert_eq!(arm("-4@[x2, -8]").unwrap(), arg(4, true, mem(16, -8)));
        assert_eq!(arm("-4@5").unwrap(), arg(4, true, ArgLocation::Constant(5)));
        assert_eq!(
            arm("4@#-3").unwrap(),
            arg(4, false, ArgLocation::Constant(-3))
        );
    }

    #[test]
    fn aarch64_bad_specs_are_errors() {
        for spec in ["8@x31", "8@q0", "8@[w1]", "8@[x1, y]", "8@[x1", "8@%rax"] {
            assert!(arm(spec).is_err(), "{spec} should not parse");
        }
    }

    #[test]
    fn several_arguments_split_outside_brackets() {
        let context = SpecContext {
            machine: Machine::Aarch64,
            probe_address: 0,
            symbol_address: &no_symbols,
        };
        let args = parse_args(&context, "8@[sp, 16] -4@x0  8@[x1]").unwrap();
        assert_eq!(
            args,
            vec![
                arg(8, false, mem(248, 16)),
                arg(4, true, reg(0, 0)),
                arg(8, false, mem(8, 0)),
            ]
        );
        assert_eq!(parse_args(&context, "").unwrap(), vec![]);
    }

    #[test]
    fn python_function_entry_specs() {
        let context = SpecContext {
            machine: Machine::X86_64,
            probe_address: 0,
            symbol_address: &no_symbols,
        };
        let args = parse_args(&context, "8@%rbp 8@%r12 -4@%eax").unwrap();
        assert_eq!(
            args,
            vec![
                arg(8, false, reg(RBP, 0)),
                arg(8, false, reg(R12, 0)),
                arg(4, true, reg(RAX, 0)),
            ]
        );
    }

    /// Arbitrary specs built from the characters specs are made of: errors, never panics.
    #[test]
    fn any_text_is_read_or_refused_without_panicking() {
        const ALPHABET: &[u8] = b"%$@()[],# -+0123456789abcdefhilpqrswxz.\xc3\xa9";
        let symbols = |name: &str| (name == "a").then_some(0x10);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut bytes = Vec::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            for i in 0..(seed % 14) {
                bytes.push(ALPHABET[((seed >> (i * 4)) as usize) % ALPHABET.len()]);
            }
            let spec = String::from_utf8_lossy(&bytes);
            for machine in [Machine::X86_64, Machine::Aarch64] {
                let context = SpecContext {
                    machine,
                    probe_address: 0x1000,
                    symbol_address: &symbols,
                };
                let _ = parse_args(&context, &spec);
            }
        }
    }

    #[test]
    fn other_machines_are_refused() {
        let context = SpecContext {
            machine: Machine::Other(object::Architecture::Riscv64),
            probe_address: 0,
            symbol_address: &no_symbols,
        };
        let err = parse_arg(&context, "8@a0").unwrap_err();
        assert!(matches!(err, ArgSpecError::Machine { .. }), "{err:?}");
    }
}
