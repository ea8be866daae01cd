//! The eBPF instruction builder: registers, opcodes, helper ids, and [`Asm`], an assembler
//! with labels that resolves jumps when it is finished.
//!
//! The code generator emits programs through this module only, so that opcode encoding lives
//! in one place. `disasm` prints what it produced (`dtk run --dump-bpf`).

use std::fmt;

/// One 8-byte eBPF instruction, laid out as `struct bpf_insn`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    /// Destination register in the low nibble, source register in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src as u8) << 4 | dst as u8,
            off,
            imm,
        }
    }

    pub fn dst(&self) -> u8 {
        self.regs & 0x0f
    }

    pub fn src(&self) -> u8 {
        self.regs >> 4
    }
}

/// Opcode fields (`BPF_CLASS`, `BPF_SIZE`, `BPF_MODE`, `BPF_SRC`, `BPF_OP`) from the UAPI.
pub(crate) mod op {
    pub const LD: u8 = 0x00;
    pub const LDX: u8 = 0x01;
    pub const ST: u8 = 0x02;
    pub const STX: u8 = 0x03;
    pub const ALU: u8 = 0x04;
    pub const JMP: u8 = 0x05;
    pub const JMP32: u8 = 0x06;
    pub const ALU64: u8 = 0x07;
    pub const IMM: u8 = 0x00;
    pub const MEM: u8 = 0x60;
    pub const ATOMIC: u8 = 0xc0;
    pub const K: u8 = 0x00;
    pub const X: u8 = 0x08;
    pub const MOV: u8 = 0xb0;
    pub const NEG: u8 = 0x80;
    pub const JA: u8 = 0x00;
    pub const CALL: u8 = 0x80;
    pub const EXIT: u8 = 0x90;
    /// `src_reg` of a `ld_imm64` whose immediate is a map fd (`BPF_PSEUDO_MAP_FD`).
    pub const PSEUDO_MAP_FD: u8 = 1;
}

/// The eleven eBPF registers. R0 holds return values, R1–R5 arguments, R6–R9 survive calls,
/// R10 is the read-only frame pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Reg {
    R0 = 0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
}

/// Width of a memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    B,
    H,
    W,
    DW,
}

impl Size {
    pub fn bits(self) -> u8 {
        match self {
            Size::W => 0x00,
            Size::H => 0x08,
            Size::B => 0x10,
            Size::DW => 0x18,
        }
    }

    pub fn from_bits(bits: u8) -> Size {
        match bits & 0x18 {
            0x00 => Size::W,
            0x08 => Size::H,
            0x10 => Size::B,
            _ => Size::DW,
        }
    }
}

/// Arithmetic operations (`BPF_OP` of the ALU classes), except `mov` and `neg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum AluOp {
    Add = 0x00,
    Sub = 0x10,
    Mul = 0x20,
    Div = 0x30,
    Or = 0x40,
    And = 0x50,
    Lsh = 0x60,
    Rsh = 0x70,
    Mod = 0x90,
    Xor = 0xa0,
    Arsh = 0xc0,
}

/// Jump conditions (`BPF_OP` of the JMP class); `S` variants compare as signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Cond {
    Eq = 0x10,
    Gt = 0x20,
    Ge = 0x30,
    Set = 0x40,
    Ne = 0x50,
    Sgt = 0x60,
    Sge = 0x70,
    Lt = 0xa0,
    Le = 0xb0,
    Slt = 0xc0,
    Sle = 0xd0,
}

/// The right-hand operand of an ALU or jump instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src {
    Reg(Reg),
    Imm(i32),
}

/// Declares [`Helper`] with its kernel ids (`enum bpf_func_id`) and names in one table, so
/// the id, the name the code generator calls and the name the disassembler prints agree.
macro_rules! helpers {
    ($($variant:ident = $id:literal, $name:literal, $since:literal;)*) => {
        /// The BPF helper functions dtk calls, with their kernel ids.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Helper { $(#[doc = $since] $variant,)* }

        impl Helper {
            pub const ALL: &'static [Helper] = &[$(Helper::$variant,)*];

            pub fn id(self) -> i32 {
                match self { $(Helper::$variant => $id,)* }
            }

            /// The kernel's name, e.g. `bpf_ringbuf_output`.
            pub fn name(self) -> &'static str {
                match self { $(Helper::$variant => $name,)* }
            }
        }
    };
}

helpers! {
    MapLookupElem = 1, "bpf_map_lookup_elem", "Kernel ≥ 3.19.";
    MapUpdateElem = 2, "bpf_map_update_elem", "Kernel ≥ 3.19.";
    MapDeleteElem = 3, "bpf_map_delete_elem", "Kernel ≥ 3.19.";
    KtimeGetNs = 5, "bpf_ktime_get_ns", "Kernel ≥ 4.1.";
    GetSmpProcessorId = 8, "bpf_get_smp_processor_id", "Kernel ≥ 4.1.";
    GetCurrentPidTgid = 14, "bpf_get_current_pid_tgid", "Kernel ≥ 4.2.";
    GetCurrentUidGid = 15, "bpf_get_current_uid_gid", "Kernel ≥ 4.2.";
    GetCurrentComm = 16, "bpf_get_current_comm", "Kernel ≥ 4.2.";
    GetCurrentTask = 35, "bpf_get_current_task", "Kernel ≥ 4.8.";
    GetStack = 67, "bpf_get_stack", "Kernel ≥ 4.18.";
    GetCurrentCgroupId = 80, "bpf_get_current_cgroup_id", "Kernel ≥ 4.18.";
    ProbeReadUser = 112, "bpf_probe_read_user", "Kernel ≥ 5.5.";
    ProbeReadKernel = 113, "bpf_probe_read_kernel", "Kernel ≥ 5.5.";
    ProbeReadUserStr = 114, "bpf_probe_read_user_str", "Kernel ≥ 5.5.";
    ProbeReadKernelStr = 115, "bpf_probe_read_kernel_str", "Kernel ≥ 5.5.";
    GetCurrentAncestorCgroupId = 123, "bpf_get_current_ancestor_cgroup_id", "Kernel ≥ 5.7; for every program type since 6.4.";
    RingbufOutput = 130, "bpf_ringbuf_output", "Kernel ≥ 5.8.";
    RingbufReserve = 131, "bpf_ringbuf_reserve", "Kernel ≥ 5.8.";
    RingbufSubmit = 132, "bpf_ringbuf_submit", "Kernel ≥ 5.8.";
    RingbufDiscard = 133, "bpf_ringbuf_discard", "Kernel ≥ 5.8.";
    RingbufQuery = 134, "bpf_ringbuf_query", "Kernel ≥ 5.8.";
}

impl Helper {
    /// Looks a helper up by its kernel name, with or without the `bpf_` prefix.
    pub fn from_name(name: &str) -> Option<Helper> {
        let wanted = name.strip_prefix("bpf_").unwrap_or(name);
        Helper::ALL
            .iter()
            .copied()
            .find(|h| h.name().strip_prefix("bpf_") == Some(wanted))
    }

    pub fn from_id(id: i32) -> Option<Helper> {
        Helper::ALL.iter().copied().find(|h| h.id() == id)
    }
}

impl fmt::Display for Helper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A jump target. Create with [`Asm::label`], place with [`Asm::bind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

/// A map as a program names it before the maps exist: its index in the table of maps the
/// programs of a run share. [`Asm::ld_map`] emits it and [`relocate`] swaps in the fd, so
/// that programs are built without a system call and loaded once their maps are created.
/// (Code built around a map that exists may name it by its fd, and is not relocated.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapRef(pub u32);

/// A map reference with no map in the table.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("instruction {at} names map {index}, but the table has {count}")]
pub struct RelocateError {
    pub at: usize,
    pub index: u32,
    pub count: usize,
}

/// Replaces every map reference in `insns` (a `BPF_LD_IMM64` with `BPF_PSEUDO_MAP_FD`) by the
/// fd at its index in `fds`.
pub fn relocate(insns: &mut [Insn], fds: &[i32]) -> Result<(), RelocateError> {
    let ld_dw = op::LD | op::IMM | Size::DW.bits();
    for (at, insn) in insns.iter_mut().enumerate() {
        if insn.code == ld_dw && insn.regs >> 4 == Reg::R1 as u8 {
            let index = insn.imm as u32;
            insn.imm = *fds.get(index as usize).ok_or(RelocateError {
                at,
                index,
                count: fds.len(),
            })?;
        }
    }
    Ok(())
}

/// Why a program could not be assembled.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AsmError {
    #[error("label {label} is used by a jump but never bound")]
    UnboundLabel { label: usize },
    #[error("label {label} is bound twice")]
    LabelBoundTwice { label: usize },
    #[error("jump at instruction {at} to label {label} is out of range ({distance} slots)")]
    JumpOutOfRange {
        at: usize,
        label: usize,
        distance: i64,
    },
}

/// An assembler: push instructions, jump to labels, then [`Asm::finish`] to resolve them.
#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    /// (instruction index, label) of each jump awaiting its offset.
    fixups: Vec<(usize, Label)>,
    errors: Vec<AsmError>,
}

impl Asm {
    pub fn new() -> Asm {
        Asm::default()
    }

    fn push(&mut self, insn: Insn) -> &mut Asm {
        self.insns.push(insn);
        self
    }

    pub fn mov64_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.push(Insn::new(op::ALU64 | op::MOV | op::K, dst, Reg::R0, 0, imm))
    }

    pub fn mov64_reg(&mut self, dst: Reg, src: Reg) -> &mut Asm {
        self.push(Insn::new(op::ALU64 | op::MOV | op::X, dst, src, 0, 0))
    }

    /// `dst = (u32) src`: a 32-bit move, which zero-extends into the upper half.
    pub fn mov32_reg(&mut self, dst: Reg, src: Reg) -> &mut Asm {
        self.push(Insn::new(op::ALU | op::MOV | op::X, dst, src, 0, 0))
    }

    /// 64-bit arithmetic: `dst op= src`.
    pub fn alu64(&mut self, alu: AluOp, dst: Reg, src: Src) -> &mut Asm {
        self.alu(op::ALU64, alu, dst, src)
    }

    /// 32-bit arithmetic: `dst = (u32)(dst op src)`.
    pub fn alu32(&mut self, alu: AluOp, dst: Reg, src: Src) -> &mut Asm {
        self.alu(op::ALU, alu, dst, src)
    }

    fn alu(&mut self, class: u8, alu: AluOp, dst: Reg, src: Src) -> &mut Asm {
        let insn = match src {
            Src::Reg(r) => Insn::new(class | alu as u8 | op::X, dst, r, 0, 0),
            Src::Imm(imm) => Insn::new(class | alu as u8 | op::K, dst, Reg::R0, 0, imm),
        };
        self.push(insn)
    }

    /// `dst = -dst` (64-bit).
    pub fn neg64(&mut self, dst: Reg) -> &mut Asm {
        self.push(Insn::new(op::ALU64 | op::NEG, dst, Reg::R0, 0, 0))
    }

    /// `dst = *(size *)(src + off)`.
    pub fn ldx(&mut self, size: Size, dst: Reg, src: Reg, off: i16) -> &mut Asm {
        self.push(Insn::new(op::LDX | op::MEM | size.bits(), dst, src, off, 0))
    }

    /// `*(size *)(dst + off) = src`.
    pub fn stx(&mut self, size: Size, dst: Reg, off: i16, src: Reg) -> &mut Asm {
        self.push(Insn::new(op::STX | op::MEM | size.bits(), dst, src, off, 0))
    }

    /// `*(size *)(dst + off) = imm`.
    pub fn st(&mut self, size: Size, dst: Reg, off: i16, imm: i32) -> &mut Asm {
        self.push(Insn::new(
            op::ST | op::MEM | size.bits(),
            dst,
            Reg::R0,
            off,
            imm,
        ))
    }

    /// `lock *(size *)(dst + off) += src` (W or DW only; kernel ≥ 5.12 for the
    /// `BPF_ATOMIC` encoding, which is the old `BPF_XADD`'s and so loads on older ones too).
    pub fn atomic_add(&mut self, size: Size, dst: Reg, off: i16, src: Reg) -> &mut Asm {
        let code = op::STX | op::ATOMIC | size.bits();
        self.push(Insn::new(code, dst, src, off, AluOp::Add as i32))
    }

    /// `dst = imm` for a full 64-bit constant (two instruction slots).
    pub fn ld_imm64(&mut self, dst: Reg, imm: u64) -> &mut Asm {
        self.ld_dw(dst, Reg::R0, imm)
    }

    /// `dst = &map`: the instruction holds the map's index in the program's map table until
    /// [`relocate`] swaps in its fd; the kernel swaps the fd for the map's address at load
    /// time.
    pub fn ld_map(&mut self, dst: Reg, map: MapRef) -> &mut Asm {
        // The source register field holds BPF_PSEUDO_MAP_FD (1), i.e. the number of R1.
        self.ld_map_fd(dst, map.0 as i32)
    }

    /// `dst = &map` for a map that exists: the kernel swaps the fd for its address at load
    /// time.
    pub fn ld_map_fd(&mut self, dst: Reg, fd: i32) -> &mut Asm {
        // The source register field holds BPF_PSEUDO_MAP_FD (1), i.e. the number of R1.
        self.ld_dw(dst, Reg::R1, fd as u32 as u64)
    }

    fn ld_dw(&mut self, dst: Reg, src: Reg, imm: u64) -> &mut Asm {
        let code = op::LD | op::IMM | Size::DW.bits();
        self.push(Insn::new(code, dst, src, 0, imm as u32 as i32));
        self.push(Insn::new(0, Reg::R0, Reg::R0, 0, (imm >> 32) as u32 as i32))
    }

    pub fn call(&mut self, helper: Helper) -> &mut Asm {
        self.push(Insn::new(
            op::JMP | op::CALL,
            Reg::R0,
            Reg::R0,
            0,
            helper.id(),
        ))
    }

    pub fn exit(&mut self) -> &mut Asm {
        self.push(Insn::new(op::JMP | op::EXIT, Reg::R0, Reg::R0, 0, 0))
    }

    /// A new, unbound label.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Places `label` at the next instruction.
    pub fn bind(&mut self, label: Label) -> &mut Asm {
        match self.labels.get_mut(label.0) {
            Some(slot @ None) => *slot = Some(self.insns.len()),
            _ => self
                .errors
                .push(AsmError::LabelBoundTwice { label: label.0 }),
        }
        self
    }

    /// `goto label`.
    pub fn jmp(&mut self, label: Label) -> &mut Asm {
        self.fixups.push((self.insns.len(), label));
        self.push(Insn::new(op::JMP | op::JA, Reg::R0, Reg::R0, 0, 0))
    }

    /// `if lhs cond rhs goto label`.
    pub fn jmp_if(&mut self, cond: Cond, lhs: Reg, rhs: Src, label: Label) -> &mut Asm {
        self.fixups.push((self.insns.len(), label));
        let insn = match rhs {
            Src::Reg(r) => Insn::new(op::JMP | cond as u8 | op::X, lhs, r, 0, 0),
            Src::Imm(imm) => Insn::new(op::JMP | cond as u8 | op::K, lhs, Reg::R0, 0, imm),
        };
        self.push(insn)
    }

    /// Resolves every jump and returns the program.
    pub fn finish(mut self) -> Result<Vec<Insn>, AsmError> {
        if let Some(err) = self.errors.into_iter().next() {
            return Err(err);
        }
        for &(at, label) in &self.fixups {
            let target = self.labels[label.0].ok_or(AsmError::UnboundLabel { label: label.0 })?;
            let distance = target as i64 - at as i64 - 1;
            let off = i16::try_from(distance).map_err(|_| AsmError::JumpOutOfRange {
                at,
                label: label.0,
                distance,
            })?;
            self.insns[at].off = off;
        }
        Ok(self.insns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_resolve_forward_and_backward() {
        let mut asm = Asm::new();
        let top = asm.label();
        let out = asm.label();
        asm.bind(top);
        asm.mov64_imm(Reg::R0, 0);
        asm.jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), out);
        asm.ld_imm64(Reg::R1, 0x1_0000_0002);
        asm.jmp(top);
        asm.bind(out);
        asm.exit();
        let insns = asm.finish().unwrap();
        assert_eq!(insns.len(), 6);
        assert_eq!(insns[1].off, 3, "skips ld_imm64 (2 slots) and the ja");
        assert_eq!(insns[4].off, -5, "back to slot 0");
        assert_eq!(insns[2].imm, 2);
        assert_eq!(insns[3].imm, 1);
    }

    #[test]
    fn an_unbound_label_is_an_error() {
        let mut asm = Asm::new();
        let nowhere = asm.label();
        asm.jmp(nowhere);
        assert_eq!(asm.finish(), Err(AsmError::UnboundLabel { label: 0 }));
    }

    #[test]
    fn binding_twice_is_an_error() {
        let mut asm = Asm::new();
        let l = asm.label();
        asm.bind(l).exit().bind(l);
        assert_eq!(asm.finish(), Err(AsmError::LabelBoundTwice { label: 0 }));
    }

    #[test]
    fn map_references_become_fds() {
        let mut asm = Asm::new();
        asm.ld_imm64(Reg::R2, 1)
            .ld_map(Reg::R1, MapRef(1))
            .ld_map(Reg::R3, MapRef(0));
        let mut insns = asm.finish().unwrap();
        relocate(&mut insns, &[40, 41]).unwrap();
        let imms: Vec<i32> = insns.iter().map(|i| i.imm).collect();
        assert_eq!(imms, [1, 0, 41, 0, 40, 0]);
        assert_eq!(
            relocate(&mut asm_with(MapRef(2)), &[40, 41]),
            Err(RelocateError {
                at: 0,
                index: 2,
                count: 2
            })
        );
    }

    fn asm_with(map: MapRef) -> Vec<Insn> {
        let mut asm = Asm::new();
        asm.ld_map(Reg::R1, map);
        asm.finish().unwrap()
    }

    #[test]
    fn encodings_match_the_uapi() {
        let mut asm = Asm::new();
        asm.mov64_reg(Reg::R6, Reg::R1)
            .stx(Size::DW, Reg::R10, -8, Reg::R1)
            .ld_map(Reg::R1, MapRef(7))
            .call(Helper::RingbufOutput);
        let insns = asm.finish().unwrap();
        assert_eq!((insns[0].code, insns[0].regs), (0xbf, 0x16));
        assert_eq!(
            (insns[1].code, insns[1].regs, insns[1].off),
            (0x7b, 0x1a, -8)
        );
        assert_eq!(
            (insns[2].code, insns[2].regs, insns[2].imm),
            (0x18, 0x11, 7)
        );
        assert_eq!((insns[4].code, insns[4].imm), (0x85, 130));
    }

    #[test]
    fn helpers_are_found_by_name() {
        assert_eq!(
            Helper::from_name("bpf_ktime_get_ns"),
            Some(Helper::KtimeGetNs)
        );
        assert_eq!(
            Helper::from_name("ringbuf_submit"),
            Some(Helper::RingbufSubmit)
        );
        assert_eq!(Helper::from_name("bpf_no_such_helper"), None);
        assert_eq!(Helper::from_id(14), Some(Helper::GetCurrentPidTgid));
    }
}
