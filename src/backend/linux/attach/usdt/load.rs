//! BPF code that loads a USDT argument into a register, from the `struct pt_regs` a uprobe
//! program receives as its context.
//!
//! The value ends up 64 bits wide: sign-extended for a negative size in the spec, and
//! zero-extended otherwise, as SystemTap defines it. Register operands are read straight from
//! the context; memory operands go through `bpf_probe_read_user` (kernel ≥ 5.5), which zeroes
//! the buffer when the read faults, so a bad pointer in the traced process yields 0.

use crate::backend::linux::bpf::insn::{AluOp, Asm, Helper, Reg, Size, Src};

use super::arg::{ArgLocation, UsdtArg};

/// Emits code that leaves `arg`'s value in `dst`.
///
/// `ctx` holds the pt_regs pointer the program was called with; `scratch` is the frame-pointer
/// offset of 8 bytes of stack the code may write (e.g. -8). A memory operand calls a helper,
/// which clobbers R0–R5: keep `ctx` in R6–R9 if it is needed afterwards. `dst` may be any
/// register but R10.
pub fn load_arg(asm: &mut Asm, arg: &UsdtArg, ctx: Reg, dst: Reg, scratch: i16) {
    match arg.location {
        ArgLocation::Constant(value) => {
            asm.ld_imm64(dst, extend_constant(value, arg.size, arg.signed));
        }
        ArgLocation::Register { regs_offset, shift } => {
            asm.ldx(Size::DW, dst, ctx, regs_offset as i16);
            if shift != 0 {
                asm.alu64(AluOp::Rsh, dst, Src::Imm(i32::from(shift)));
            }
            extend(asm, dst, arg.size, arg.signed);
        }
        ArgLocation::Memory {
            regs_offset,
            displacement,
        } => {
            asm.ldx(Size::DW, Reg::R3, ctx, regs_offset as i16);
            add_displacement(asm, Reg::R3, displacement);
            asm.mov64_reg(Reg::R1, Reg::R10)
                .alu64(AluOp::Add, Reg::R1, Src::Imm(i32::from(scratch)))
                .mov64_imm(Reg::R2, i32::from(arg.size))
                .call(Helper::ProbeReadUser)
                // A load of the value's own width zero-extends; only signed values need more.
                .ldx(size_of(arg.size), dst, Reg::R10, scratch);
            if arg.signed {
                extend(asm, dst, arg.size, true);
            }
        }
    }
}

/// `reg += displacement`, through R2 when the displacement does not fit an immediate.
fn add_displacement(asm: &mut Asm, reg: Reg, displacement: i64) {
    match i32::try_from(displacement) {
        Ok(0) => {}
        Ok(small) => {
            asm.alu64(AluOp::Add, reg, Src::Imm(small));
        }
        Err(_) => {
            asm.ld_imm64(Reg::R2, displacement as u64)
                .alu64(AluOp::Add, reg, Src::Reg(Reg::R2));
        }
    }
}

/// Keeps the low `size` bytes of `reg`, sign- or zero-extended to 64 bits.
fn extend(asm: &mut Asm, reg: Reg, size: u8, signed: bool) {
    if size >= 8 {
        return;
    }
    let bits = Src::Imm(64 - 8 * i32::from(size));
    let right = if signed { AluOp::Arsh } else { AluOp::Rsh };
    asm.alu64(AluOp::Lsh, reg, bits).alu64(right, reg, bits);
}

/// What [`extend`] would make of a constant, computed now instead of in the program.
fn extend_constant(value: i64, size: u8, signed: bool) -> u64 {
    if size >= 8 {
        return value as u64;
    }
    let bits = 64 - 8 * u32::from(size);
    let high = (value as u64) << bits;
    if signed {
        ((high as i64) >> bits) as u64
    } else {
        high >> bits
    }
}

fn size_of(bytes: u8) -> Size {
    match bytes {
        1 => Size::B,
        2 => Size::H,
        4 => Size::W,
        _ => Size::DW,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::linux::bpf::insn::disassemble;

    fn listing(arg: UsdtArg) -> String {
        let mut asm = Asm::new();
        load_arg(&mut asm, &arg, Reg::R6, Reg::R7, -8);
        disassemble(&asm.finish().unwrap())
    }

    fn arg(size: u8, signed: bool, location: ArgLocation) -> UsdtArg {
        UsdtArg {
            size,
            signed,
            location,
        }
    }

    #[test]
    fn signed_register_is_sign_extended() {
        let eax = ArgLocation::Register {
            regs_offset: 80,
            shift: 0,
        };
        assert_eq!(
            listing(arg(4, true, eax)),
            "   0: r7 = *(u64 *)(r6 + 80)\n   1: r7 <<= 0x20\n   2: r7 s>>= 0x20\n"
        );
    }

    #[test]
    fn high_byte_register_is_shifted_then_zero_extended() {
        let ah = ArgLocation::Register {
            regs_offset: 80,
            shift: 8,
        };
        assert_eq!(
            listing(arg(1, false, ah)),
            "   0: r7 = *(u64 *)(r6 + 80)\n   1: r7 >>= 0x8\n   2: r7 <<= 0x38\n   3: r7 >>= 0x38\n"
        );
    }

    #[test]
    fn full_width_register_is_one_load() {
        let rbp = ArgLocation::Register {
            regs_offset: 32,
            shift: 0,
        };
        assert_eq!(
            listing(arg(8, false, rbp)),
            "   0: r7 = *(u64 *)(r6 + 32)\n"
        );
    }

    #[test]
    fn memory_operand_reads_user_memory_of_its_width() {
        let stack = ArgLocation::Memory {
            regs_offset: 152,
            displacement: 112,
        };
        let text = listing(arg(4, true, stack));
        let expected = [
            "r3 = *(u64 *)(r6 + 152)",
            "r3 += 0x70",
            "r1 = r10",
            "r1 += 0xfffffff8",
            "r2 = 0x4",
            "call bpf_probe_read_user#112",
            "r7 = *(u32 *)(r10 - 8)",
            "r7 <<= 0x20",
            "r7 s>>= 0x20",
        ];
        assert_lines(&text, &expected);
    }

    #[test]
    fn unsigned_memory_operand_needs_no_extension() {
        let deref = ArgLocation::Memory {
            regs_offset: 112,
            displacement: 0,
        };
        let text = listing(arg(2, false, deref));
        assert!(
            text.trim_end().ends_with("r7 = *(u16 *)(r10 - 8)"),
            "{text}"
        );
        assert!(!text.contains("r3 +="), "no displacement to add: {text}");
    }

    #[test]
    fn huge_displacement_goes_through_a_register() {
        let far = ArgLocation::Memory {
            regs_offset: 128,
            displacement: 0x1_0000_0000,
        };
        let text = listing(arg(8, false, far));
        assert!(text.contains("r2 = 0x100000000"), "{text}");
        assert!(text.contains("r3 += r2"), "{text}");
    }

    #[test]
    fn constants_are_extended_when_assembled() {
        assert_eq!(extend_constant(-1, 4, false), 0xffff_ffff);
        assert_eq!(extend_constant(-1, 4, true), u64::MAX);
        assert_eq!(extend_constant(0x1_0000_0005, 4, true), 5);
        assert_eq!(extend_constant(0xff, 1, true), u64::MAX);
        assert_eq!(extend_constant(7, 8, false), 7);
        let text = listing(arg(4, true, ArgLocation::Constant(-5)));
        assert!(text.contains("r7 = 0xfffffffffffffffb"), "{text}");
    }

    /// Checks the instruction text of each line of a listing, ignoring the slot numbers.
    fn assert_lines(listing: &str, expected: &[&str]) {
        let got: Vec<&str> = listing
            .lines()
            .map(|line| line.split_once(": ").map_or(line, |(_, text)| text))
            .collect();
        assert_eq!(got, expected, "{listing}");
    }
}
