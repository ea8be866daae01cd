//! BPF code that loads a USDT argument into a register, from the `struct pt_regs` a uprobe
//! program receives as its context. Where the argument is comes from `inspect::usdt::arg`.
//!
//! The value ends up 64 bits wide: sign-extended for a negative size in the spec, and
//! zero-extended otherwise, as SystemTap defines it. Register operands are read straight from
//! the context; memory operands go through `bpf_probe_read_user` (kernel ≥ 5.5), which zeroes
//! the buffer when the read faults, so a bad pointer in the traced process yields 0.

use crate::backend::linux::bpf::insn::{AluOp, Asm, Helper, Reg, Size, Src};
use crate::backend::linux::d::arith;
use crate::inspect::usdt::arg::{ArgLocation, UsdtArg};

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
    if size == 0 || size >= 8 {
        return;
    }
    let bits = Src::Imm(64 - 8 * i32::from(size));
    let right = if signed { AluOp::Arsh } else { AluOp::Rsh };
    asm.alu64(AluOp::Lsh, reg, bits).alu64(right, reg, bits);
}

/// What [`extend`] would make of a constant, computed now instead of in the program.
fn extend_constant(value: i64, size: u8, signed: bool) -> u64 {
    arith::extend(value as u64, 8 * u32::from(size), signed)
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
    use crate::backend::linux::bpf::disasm::disassemble;
    use crate::backend::linux::bpf::insn::Insn;

    const CTX: Reg = Reg::R6;
    const DST: Reg = Reg::R7;

    fn emitted(arg: UsdtArg) -> Vec<Insn> {
        let mut asm = Asm::new();
        load_arg(&mut asm, &arg, CTX, DST, -8);
        asm.finish().unwrap()
    }

    fn expected(build: impl FnOnce(&mut Asm)) -> Vec<Insn> {
        let mut asm = Asm::new();
        build(&mut asm);
        asm.finish().unwrap()
    }

    fn assert_program(got: Vec<Insn>, want: Vec<Insn>) {
        assert!(
            got == want,
            "emitted:\n{}\nexpected:\n{}",
            disassemble(&got),
            disassemble(&want)
        );
    }

    fn arg(size: u8, signed: bool, location: ArgLocation) -> UsdtArg {
        UsdtArg {
            size,
            signed,
            location,
        }
    }

    fn register(regs_offset: u16, shift: u8) -> ArgLocation {
        ArgLocation::Register { regs_offset, shift }
    }

    fn memory(regs_offset: u16, displacement: i64) -> ArgLocation {
        ArgLocation::Memory {
            regs_offset,
            displacement,
        }
    }

    #[test]
    fn signed_register_is_sign_extended() {
        let want = expected(|asm| {
            asm.ldx(Size::DW, DST, CTX, 80)
                .alu64(AluOp::Lsh, DST, Src::Imm(32))
                .alu64(AluOp::Arsh, DST, Src::Imm(32));
        });
        assert_program(emitted(arg(4, true, register(80, 0))), want);
    }

    #[test]
    fn high_byte_register_is_shifted_then_zero_extended() {
        let want = expected(|asm| {
            asm.ldx(Size::DW, DST, CTX, 80)
                .alu64(AluOp::Rsh, DST, Src::Imm(8))
                .alu64(AluOp::Lsh, DST, Src::Imm(56))
                .alu64(AluOp::Rsh, DST, Src::Imm(56));
        });
        assert_program(emitted(arg(1, false, register(80, 8))), want);
    }

    #[test]
    fn full_width_register_is_one_load() {
        let want = expected(|asm| {
            asm.ldx(Size::DW, DST, CTX, 32);
        });
        assert_program(emitted(arg(8, false, register(32, 0))), want);
    }

    #[test]
    fn memory_operand_reads_user_memory_of_its_width() {
        let want = expected(|asm| {
            asm.ldx(Size::DW, Reg::R3, CTX, 152)
                .alu64(AluOp::Add, Reg::R3, Src::Imm(112))
                .mov64_reg(Reg::R1, Reg::R10)
                .alu64(AluOp::Add, Reg::R1, Src::Imm(-8))
                .mov64_imm(Reg::R2, 4)
                .call(Helper::ProbeReadUser)
                .ldx(Size::W, DST, Reg::R10, -8)
                .alu64(AluOp::Lsh, DST, Src::Imm(32))
                .alu64(AluOp::Arsh, DST, Src::Imm(32));
        });
        assert_program(emitted(arg(4, true, memory(152, 112))), want);
    }

    #[test]
    fn unsigned_memory_operand_needs_no_extension_nor_displacement() {
        let want = expected(|asm| {
            asm.ldx(Size::DW, Reg::R3, CTX, 112)
                .mov64_reg(Reg::R1, Reg::R10)
                .alu64(AluOp::Add, Reg::R1, Src::Imm(-8))
                .mov64_imm(Reg::R2, 2)
                .call(Helper::ProbeReadUser)
                .ldx(Size::H, DST, Reg::R10, -8);
        });
        assert_program(emitted(arg(2, false, memory(112, 0))), want);
    }

    #[test]
    fn huge_displacement_goes_through_a_register() {
        let want = expected(|asm| {
            asm.ldx(Size::DW, Reg::R3, CTX, 128)
                .ld_imm64(Reg::R2, 0x1_0000_0000)
                .alu64(AluOp::Add, Reg::R3, Src::Reg(Reg::R2))
                .mov64_reg(Reg::R1, Reg::R10)
                .alu64(AluOp::Add, Reg::R1, Src::Imm(-8))
                .mov64_imm(Reg::R2, 8)
                .call(Helper::ProbeReadUser)
                .ldx(Size::DW, DST, Reg::R10, -8);
        });
        assert_program(emitted(arg(8, false, memory(128, 0x1_0000_0000))), want);
    }

    #[test]
    fn constants_are_extended_when_assembled() {
        assert_eq!(extend_constant(-1, 4, false), 0xffff_ffff);
        assert_eq!(extend_constant(-1, 4, true), u64::MAX);
        assert_eq!(extend_constant(0x1_0000_0005, 4, true), 5);
        assert_eq!(extend_constant(0xff, 1, true), u64::MAX);
        assert_eq!(extend_constant(7, 8, false), 7);
        let want = expected(|asm| {
            asm.ld_imm64(DST, (-5i64) as u64);
        });
        assert_program(emitted(arg(4, true, ArgLocation::Constant(-5))), want);
    }
}
