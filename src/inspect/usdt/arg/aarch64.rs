//! aarch64 operands and `struct user_pt_regs` (arch/arm64/include/uapi/asm/ptrace.h),
//! which begins the kernel's `struct pt_regs`: x0..x30, then sp, pc, pstate.

use super::{parse_int, ArgLocation, ArgSpecError};

const MACHINE: &str = "aarch64";
const SP_OFFSET: u16 = 31 * 8;

/// Resolves `xN`, `wN` or `sp` to (pt_regs offset, width in bytes).
fn register(name: &str) -> Option<(u16, u8)> {
    if name == "sp" {
        return Some((SP_OFFSET, 8));
    }
    let (width, digits) = match name.as_bytes().first()? {
        b'x' => (8, &name[1..]),
        b'w' => (4, &name[1..]),
        _ => return None,
    };
    let number: u16 = digits.parse().ok()?;
    (number <= 30).then_some((number * 8, width))
}

fn known(name: &str, spec: &str) -> Result<(u16, u8), ArgSpecError> {
    register(name).ok_or_else(|| ArgSpecError::Register {
        machine: MACHINE,
        register: name.to_string(),
        spec: spec.to_string(),
    })
}

/// Reads `xN`/`wN`/`sp`, a constant, or `[reg]` / `[reg, disp]` (disp may carry `#`).
pub(super) fn operand(
    operand: &str,
    spec: &str,
) -> Result<(ArgLocation, Option<u8>), ArgSpecError> {
    let bad = || ArgSpecError::Operand {
        machine: MACHINE,
        spec: spec.to_string(),
    };
    if let Some(inner) = operand.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(bad)?;
        let (base, displacement) = match inner.split_once(',') {
            Some((base, disp)) => {
                let disp = disp.trim();
                let disp = disp.strip_prefix('#').unwrap_or(disp);
                (base.trim(), parse_int(disp).ok_or_else(bad)?)
            }
            None => (inner.trim(), 0),
        };
        let (regs_offset, width) = known(base, spec)?;
        if width != 8 {
            return Err(bad());
        }
        let location = ArgLocation::Memory {
            regs_offset,
            displacement,
        };
        return Ok((location, None));
    }
    let constant = operand.strip_prefix('#').unwrap_or(operand);
    if let Some(value) = parse_int(constant) {
        return Ok((ArgLocation::Constant(value), None));
    }
    let (regs_offset, width) = known(operand, spec)?;
    let location = ArgLocation::Register {
        regs_offset,
        shift: 0,
    };
    Ok((location, Some(width)))
}
