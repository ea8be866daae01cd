//! AT&T operands and x86_64 `struct pt_regs` (arch/x86/include/asm/ptrace.h).

use super::{parse_int, ArgLocation, ArgSpecError, SpecContext};

const MACHINE: &str = "x86_64";

/// Offsets of the registers in `struct pt_regs`, in the kernel's field order.
const REGS: [&str; 21] = [
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi",
    "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss",
];

/// The pt_regs offset of `%rip`.
pub(super) const RIP_OFFSET: u16 = 16 * 8;

fn slot(name: &str) -> Option<u16> {
    let index = REGS.iter().position(|r| *r == name)?;
    u16::try_from(index * 8).ok()
}

/// Resolves a register name (any width) to (pt_regs offset, shift, width in bytes).
pub(super) fn register(name: &str) -> Option<(u16, u8, u8)> {
    let legacy = |full: &str, shift: u8, width: u8| slot(full).map(|o| (o, shift, width));
    match name {
        "rax" | "rbx" | "rcx" | "rdx" | "rsi" | "rdi" | "rbp" | "rsp" | "rip" => legacy(name, 0, 8),
        "eax" | "ebx" | "ecx" | "edx" | "esi" | "edi" | "ebp" | "esp" | "eip" => {
            legacy(&format!("r{}", &name[1..]), 0, 4)
        }
        "ax" | "bx" | "cx" | "dx" | "si" | "di" | "bp" | "sp" => legacy(&format!("r{name}"), 0, 2),
        "al" | "bl" | "cl" | "dl" => legacy(&format!("r{}x", &name[..1]), 0, 1),
        "ah" | "bh" | "ch" | "dh" => legacy(&format!("r{}x", &name[..1]), 8, 1),
        "sil" | "dil" | "bpl" | "spl" => legacy(&format!("r{}", &name[..2]), 0, 1),
        _ => numbered(name),
    }
}

/// `r8`..`r15` with an optional `d`, `w` or `b` suffix.
fn numbered(name: &str) -> Option<(u16, u8, u8)> {
    let rest = name.strip_prefix('r')?;
    let (digits, width) = match rest.as_bytes().last()? {
        b'd' => (&rest[..rest.len() - 1], 4),
        b'w' => (&rest[..rest.len() - 1], 2),
        b'b' => (&rest[..rest.len() - 1], 1),
        _ => (rest, 8),
    };
    let number: u8 = digits.parse().ok()?;
    if !(8..=15).contains(&number) {
        return None;
    }
    slot(&format!("r{number}")).map(|o| (o, 0, width))
}

/// Reads an AT&T operand: `%reg`, `$imm`, `disp(%reg)`, `(%reg)` or `sym+N(%rip)`.
/// Returns the location and, for a register operand, the register's width.
pub(super) fn operand(
    context: &SpecContext<'_>,
    operand: &str,
    spec: &str,
) -> Result<(ArgLocation, Option<u8>), ArgSpecError> {
    let bad = || ArgSpecError::Operand {
        machine: MACHINE,
        spec: spec.to_string(),
    };
    if let Some(name) = operand.strip_prefix('%') {
        let (regs_offset, shift, width) = known(name, spec)?;
        return Ok((ArgLocation::Register { regs_offset, shift }, Some(width)));
    }
    if let Some(value) = operand.strip_prefix('$') {
        let value = parse_int(value).ok_or_else(bad)?;
        return Ok((ArgLocation::Constant(value), None));
    }
    let (displacement, base) = operand
        .strip_suffix(')')
        .and_then(|o| o.split_once('('))
        .ok_or_else(bad)?;
    let name = base.strip_prefix('%').ok_or_else(bad)?;
    if name == "rip" {
        let location = symbol_relative(context, displacement, spec)?;
        return Ok((location, None));
    }
    let (regs_offset, _, width) = known(name, spec)?;
    if width != 8 {
        return Err(bad());
    }
    let displacement = if displacement.is_empty() {
        0
    } else {
        parse_int(displacement).ok_or_else(bad)?
    };
    Ok((
        ArgLocation::Memory {
            regs_offset,
            displacement,
        },
        None,
    ))
}

fn known(name: &str, spec: &str) -> Result<(u16, u8, u8), ArgSpecError> {
    register(name).ok_or_else(|| ArgSpecError::Register {
        machine: MACHINE,
        register: name.to_string(),
        spec: spec.to_string(),
    })
}

/// `sym`, `sym+N` or `sym-N` before `(%rip)`: the assembler made it rip-relative, but it
/// names the symbol's address, which becomes a displacement from the probe's `%rip`.
fn symbol_relative(
    context: &SpecContext<'_>,
    text: &str,
    spec: &str,
) -> Result<ArgLocation, ArgSpecError> {
    let bad = || ArgSpecError::Operand {
        machine: MACHINE,
        spec: spec.to_string(),
    };
    let split = text
        .char_indices()
        .skip(1)
        .find(|&(_, c)| c == '+' || c == '-');
    let (symbol, addend) = match split {
        Some((at, _)) => (&text[..at], parse_int(&text[at..]).ok_or_else(bad)?),
        None => (text, 0),
    };
    let starts_well = symbol
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '.');
    if !starts_well {
        return Err(bad());
    }
    let address = (context.symbol_address)(symbol).ok_or_else(|| ArgSpecError::Symbol {
        symbol: symbol.to_string(),
        spec: spec.to_string(),
    })?;
    // Two's-complement arithmetic: the symbol may lie below the probe.
    let displacement = address
        .wrapping_sub(context.probe_address)
        .wrapping_add(addend as u64) as i64;
    Ok(ArgLocation::Memory {
        regs_offset: RIP_OFFSET,
        displacement,
    })
}
