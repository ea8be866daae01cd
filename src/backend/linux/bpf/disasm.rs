//! A readable disassembly of eBPF instructions, for `dtk run --dump-bpf` and for test
//! failures. The syntax follows the kernel verifier's log (`r1 = r10`, `if r0 == 0x0 goto
//! +3`), so that a dump and a verifier complaint can be read side by side.

use std::fmt::Write;

use super::insn::{op, Helper, Insn, Size};

/// One line per instruction, numbered by slot; a `ld_imm64` takes two slots and one line.
/// Jumps show their target slot, calls the helper's name.
pub fn disassemble(insns: &[Insn]) -> String {
    let mut out = String::new();
    let mut at = 0;
    while at < insns.len() {
        let insn = insns[at];
        let text = if is_ld_imm64(&insn) {
            let high = insns.get(at + 1).map_or(0, |next| next.imm as u32 as u64);
            let line = ld_imm64(&insn, high);
            at += 1;
            line
        } else {
            one(&insn, at)
        };
        // Writing into a String cannot fail.
        let _ = writeln!(out, "{:4}: {text}", at - usize::from(is_ld_imm64(&insn)));
        at += 1;
    }
    out
}

fn is_ld_imm64(insn: &Insn) -> bool {
    insn.code == op::LD | op::IMM | Size::DW.bits()
}

fn ld_imm64(insn: &Insn, high: u64) -> String {
    let value = high << 32 | insn.imm as u32 as u64;
    if insn.src() == op::PSEUDO_MAP_FD {
        format!("r{} = map[fd {}] ll", insn.dst(), insn.imm)
    } else {
        format!("r{} = {value:#x} ll", insn.dst())
    }
}

fn one(insn: &Insn, at: usize) -> String {
    match insn.code & 0x07 {
        op::ALU64 => alu(insn, ""),
        op::ALU => alu(insn, "w"),
        op::LDX => format!(
            "r{} = *({} *)(r{} {})",
            insn.dst(),
            width(insn.code),
            insn.src(),
            signed(insn.off.into())
        ),
        op::STX | op::ST => store(insn),
        op::JMP | op::JMP32 => jump(insn, at),
        _ => unknown(insn),
    }
}

fn width(code: u8) -> &'static str {
    match Size::from_bits(code) {
        Size::B => "u8",
        Size::H => "u16",
        Size::W => "u32",
        Size::DW => "u64",
    }
}

fn signed(n: i64) -> String {
    if n < 0 {
        format!("- {}", -n)
    } else {
        format!("+ {n}")
    }
}

/// Arithmetic prints its immediate in signed decimal (`r2 += -8`), as the verifier log does.
fn alu(insn: &Insn, reg: &str) -> String {
    let reg = if reg.is_empty() { "r" } else { reg };
    let rhs = if insn.code & op::X != 0 {
        format!("{reg}{}", insn.src())
    } else {
        insn.imm.to_string()
    };
    let dst = insn.dst();
    let sym = match insn.code & 0xf0 {
        op::MOV => return format!("{reg}{dst} = {rhs}"),
        op::NEG => return format!("{reg}{dst} = -{reg}{dst}"),
        0x00 => "+=",
        0x10 => "-=",
        0x20 => "*=",
        0x30 => "/=",
        0x40 => "|=",
        0x50 => "&=",
        0x60 => "<<=",
        0x70 => ">>=",
        0x90 => "%=",
        0xa0 => "^=",
        0xc0 => "s>>=",
        _ => return unknown(insn),
    };
    format!("{reg}{dst} {sym} {rhs}")
}

fn store(insn: &Insn) -> String {
    let target = format!(
        "*({} *)(r{} {})",
        width(insn.code),
        insn.dst(),
        signed(insn.off.into())
    );
    match insn.code & 0xe0 {
        op::MEM if insn.code & 0x07 == op::ST => format!("{target} = {:#x}", insn.imm),
        op::MEM => format!("{target} = r{}", insn.src()),
        op::ATOMIC if insn.imm == 0 => format!("lock {target} += r{}", insn.src()),
        _ => unknown(insn),
    }
}

fn jump(insn: &Insn, at: usize) -> String {
    let target = at as i64 + 1 + i64::from(insn.off);
    let goto = format!(
        "goto {} <{target}>",
        signed(insn.off.into()).replace(' ', "")
    );
    let reg = if insn.code & 0x07 == op::JMP32 {
        "w"
    } else {
        "r"
    };
    let rhs = if insn.code & op::X != 0 {
        format!("{reg}{}", insn.src())
    } else {
        format!("{:#x}", insn.imm)
    };
    let sym = match insn.code & 0xf0 {
        op::JA => return goto,
        op::CALL => return call(insn),
        op::EXIT => return "exit".to_string(),
        0x10 => "==",
        0x20 => ">",
        0x30 => ">=",
        0x40 => "&",
        0x50 => "!=",
        0x60 => "s>",
        0x70 => "s>=",
        0xa0 => "<",
        0xb0 => "<=",
        0xc0 => "s<",
        0xd0 => "s<=",
        _ => return unknown(insn),
    };
    format!("if {reg}{} {sym} {rhs} {goto}", insn.dst())
}

fn call(insn: &Insn) -> String {
    match Helper::from_id(insn.imm) {
        Some(helper) => format!("call {helper}#{}", insn.imm),
        None => format!("call #{}", insn.imm),
    }
}

fn unknown(insn: &Insn) -> String {
    format!(
        "(unknown opcode {:#04x} regs {:#04x} off {} imm {})",
        insn.code, insn.regs, insn.off, insn.imm
    )
}

#[cfg(test)]
mod tests {
    use super::super::insn::{AluOp, Asm, Cond, Reg, Src};
    use super::*;

    #[test]
    fn a_small_program_reads_like_the_verifier_log() {
        let mut asm = Asm::new();
        let out = asm.label();
        asm.mov64_reg(Reg::R6, Reg::R1)
            .call(Helper::GetCurrentPidTgid)
            .alu64(AluOp::Rsh, Reg::R0, Src::Imm(32))
            .stx(Size::W, Reg::R10, -4, Reg::R0)
            .st(Size::DW, Reg::R10, -16, 0)
            .ld_map_fd(Reg::R1, 5)
            .ld_imm64(Reg::R2, 0x1_0000_0000)
            .jmp_if(Cond::Sgt, Reg::R0, Src::Reg(Reg::R6), out)
            .ldx(Size::B, Reg::R3, Reg::R6, 8)
            .atomic_add(Size::DW, Reg::R10, -16, Reg::R3)
            .alu32(AluOp::Add, Reg::R3, Src::Imm(1))
            .alu64(AluOp::Add, Reg::R3, Src::Imm(-8))
            .bind(out)
            .mov64_imm(Reg::R0, 0)
            .exit();
        let text = disassemble(&asm.finish().unwrap());
        let expected = "   0: r6 = r1
   1: call bpf_get_current_pid_tgid#14
   2: r0 >>= 32
   3: *(u32 *)(r10 - 4) = r0
   4: *(u64 *)(r10 - 16) = 0x0
   5: r1 = map[fd 5] ll
   7: r2 = 0x100000000 ll
   9: if r0 s> r6 goto +4 <14>
  10: r3 = *(u8 *)(r6 + 8)
  11: lock *(u64 *)(r10 - 16) += r3
  12: w3 += 1
  13: r3 += -8
  14: r0 = 0
  15: exit
";
        assert_eq!(text, expected);
    }

    #[test]
    fn garbage_is_shown_not_rejected() {
        let junk = Insn {
            code: 0xff,
            regs: 0,
            off: 0,
            imm: 0,
        };
        assert!(disassemble(&[junk]).contains("unknown opcode 0xff"));
    }
}
