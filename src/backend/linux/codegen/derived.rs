//! Derived reads in BPF: compute an address from the record's arguments, constants and
//! integers read from user memory (see `plan::derived`), then read the string or bytes there
//! into the read's slot, with the address beside them for the executor to match.
//!
//! R0 holds the value being computed. Intermediate values (the left side of an operator, a
//! loaded integer) live in the slot's data area, level by level, since helper calls clobber
//! R1–R5 and R6–R9 are taken. A link that cannot be read stops the read: its status is then
//! -EFAULT and the executor treats the address as unreadable.
//!
//! Values a probe keeps for later probes (`Captures::shadow_stores`) are computed the same
//! way and stored in the per-thread shadow maps, which `AddrExpr::Shadow` reads back.

use super::frame::THREAD_KEY;
use super::predicate::{branch, Scope};
use super::threadvars::{set_for_thread, thread_key};
use crate::backend::linux::bpf::insn::{AluOp, Asm, Cond, Helper, Label, MapRef, Reg, Size, Src};
use crate::backend::linux::deep;
use crate::backend::linux::plan::{AddrExpr, AddrOp, DerivedRead, ShadowStore};
use crate::backend::linux::record::{arg_offset, DerivedSlot};
use crate::inspect::task::MemberRead;

/// -EFAULT, the status of a read whose address could not be computed.
const EFAULT: i32 = -14;

/// Emits one derived read into `slot` (R7 = the record); `shadows` are the shadow maps.
pub fn emit(asm: &mut Asm, read: &DerivedRead, slot: &DerivedSlot, shadows: &[MapRef]) {
    let fail = asm.label();
    let done = asm.label();
    value(asm, &read.addr, slot, 0, fail, shadows);
    let helper = if slot.string {
        Helper::ProbeReadUserStr
    } else {
        Helper::ProbeReadUser
    };
    asm.stx(Size::DW, Reg::R7, slot.addr() as i16, Reg::R0)
        .mov64_reg(Reg::R3, Reg::R0)
        .mov64_reg(Reg::R1, Reg::R7)
        .alu64(AluOp::Add, Reg::R1, Src::Imm(slot.data() as i32))
        .mov64_imm(Reg::R2, slot.size as i32)
        .call(helper)
        .stx(Size::DW, Reg::R7, slot.at as i16, Reg::R0);
    // The verifier rejects unreachable code: the failure path exists only when a link is read.
    if read.addr.loads() {
        asm.jmp(done).bind(fail).mov64_imm(Reg::R0, EFAULT).stx(
            Size::DW,
            Reg::R7,
            slot.at as i16,
            Reg::R0,
        );
    }
    asm.bind(done);
}

/// Keeps each store's value as this thread's value of its variable, in order, where its
/// guard holds (R7 = the record, `scratch` its room for computing values; clobbers R0–R5).
/// A value whose link cannot be read is not kept, as the executor's assignment fails there
/// too. A full map keeps nothing, and a later probe falls back on what the first one read.
pub fn emit_shadow_stores(
    asm: &mut Asm,
    stores: &[ShadowStore],
    scratch: &DerivedSlot,
    shadows: &[MapRef],
    scope: Scope<'_>,
) {
    if stores.is_empty() {
        return;
    }
    // The key of every store; computing a kept value looks it up again, to the same id.
    thread_key(asm);
    for store in stores {
        let Some(&map) = shadows.get(store.var) else {
            continue;
        };
        let skip = asm.label();
        if let Some(index) = store.probe {
            asm.jmp_if(Cond::Ne, Reg::R8, Src::Imm(index as i32), skip);
        }
        if let Some(guard) = &store.guard {
            branch(asm, guard, scope, skip, false);
        }
        let value_expr = &store.value;
        if let AddrExpr::Arg(n) = value_expr {
            asm.ldx(Size::DW, Reg::R0, Reg::R7, arg_offset(*n));
        } else {
            value(asm, value_expr, scratch, 0, skip, shadows);
        }
        asm.mov64_reg(Reg::R1, Reg::R0);
        set_for_thread(asm, map);
        asm.bind(skip);
    }
}

/// Scratch offset of `level` in the slot.
fn scratch(slot: &DerivedSlot, level: usize) -> i16 {
    (slot.data() + 8 * level) as i16
}

/// Computes `e` into R0, using scratch levels from `level` up.
fn value(
    asm: &mut Asm,
    e: &AddrExpr,
    slot: &DerivedSlot,
    level: usize,
    fail: Label,
    shadows: &[MapRef],
) {
    deep::recurse(|| match e {
        AddrExpr::Shadow(i) => match shadows.get(*i) {
            Some(&map) => {
                thread_key(asm);
                asm.ld_map(Reg::R1, map)
                    .mov64_reg(Reg::R2, Reg::R10)
                    .alu64(AluOp::Add, Reg::R2, Src::Imm(THREAD_KEY.into()))
                    .call(Helper::MapLookupElem)
                    .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), fail)
                    .ldx(Size::DW, Reg::R0, Reg::R0, 0);
            }
            None => {
                asm.jmp(fail);
            }
        },
        AddrExpr::Arg(n) => {
            asm.ldx(Size::DW, Reg::R0, Reg::R7, arg_offset(*n));
        }
        AddrExpr::ThreadMember(read) => thread_member(asm, read, scratch(slot, level), fail),
        AddrExpr::Const(v) => match i32::try_from(*v as i64) {
            Ok(small) => {
                asm.mov64_imm(Reg::R0, small);
            }
            Err(_) => {
                asm.ld_imm64(Reg::R0, *v);
            }
        },
        AddrExpr::Binary(op, a, b) => {
            value(asm, a, slot, level, fail, shadows);
            asm.stx(Size::DW, Reg::R7, scratch(slot, level), Reg::R0);
            value(asm, b, slot, level + 1, fail, shadows);
            asm.ldx(Size::DW, Reg::R1, Reg::R7, scratch(slot, level))
                .alu64(alu(*op), Reg::R1, Src::Reg(Reg::R0))
                .mov64_reg(Reg::R0, Reg::R1);
        }
        AddrExpr::Select(cond, then, otherwise) => {
            let other = asm.label();
            let end = asm.label();
            value(asm, cond, slot, level, fail, shadows);
            asm.jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), other);
            value(asm, then, slot, level, fail, shadows);
            asm.jmp(end).bind(other);
            value(asm, otherwise, slot, level, fail, shadows);
            asm.bind(end);
        }
        AddrExpr::Load {
            addr,
            bytes,
            signed,
        } => {
            value(asm, addr, slot, level, fail, shadows);
            let at = scratch(slot, level);
            asm.mov64_reg(Reg::R3, Reg::R0)
                .mov64_reg(Reg::R1, Reg::R7)
                .alu64(AluOp::Add, Reg::R1, Src::Imm(i32::from(at)))
                .mov64_imm(Reg::R2, i32::from(*bytes))
                .call(Helper::ProbeReadUser)
                .jmp_if(Cond::Ne, Reg::R0, Src::Imm(0), fail)
                .ldx(width(*bytes), Reg::R0, Reg::R7, at);
            if *signed && *bytes < 8 {
                let unused = 64 - 8 * i32::from(*bytes);
                asm.alu64(AluOp::Lsh, Reg::R0, Src::Imm(unused)).alu64(
                    AluOp::Arsh,
                    Reg::R0,
                    Src::Imm(unused),
                );
            }
        }
    })
}

/// R0 = `curthread->…` (see `inspect::task::MemberRead`), using the scratch word at `at`.
fn thread_member(asm: &mut Asm, read: &MemberRead, at: i16, fail: Label) {
    let Some((last, links)) = read.offsets.split_last() else {
        asm.jmp(fail);
        return;
    };
    asm.call(Helper::GetCurrentTask)
        .stx(Size::DW, Reg::R7, at, Reg::R0);
    let step = |asm: &mut Asm, offset: u32, size: u8| {
        asm.ldx(Size::DW, Reg::R3, Reg::R7, at)
            .st(Size::DW, Reg::R7, at, 0)
            .alu64(AluOp::Add, Reg::R3, Src::Imm(offset as i32))
            .mov64_reg(Reg::R1, Reg::R7)
            .alu64(AluOp::Add, Reg::R1, Src::Imm(i32::from(at)))
            .mov64_imm(Reg::R2, i32::from(size))
            .call(Helper::ProbeReadKernel)
            .jmp_if(Cond::Ne, Reg::R0, Src::Imm(0), fail);
    };
    for &offset in links {
        step(asm, offset, 8);
    }
    step(asm, *last, read.size);
    asm.ldx(Size::DW, Reg::R0, Reg::R7, at);
    if read.signed && read.size < 8 {
        let unused = 64 - 8 * i32::from(read.size);
        asm.alu64(AluOp::Lsh, Reg::R0, Src::Imm(unused)).alu64(
            AluOp::Arsh,
            Reg::R0,
            Src::Imm(unused),
        );
    }
}

fn alu(op: AddrOp) -> AluOp {
    match op {
        AddrOp::Add => AluOp::Add,
        AddrOp::Sub => AluOp::Sub,
        AddrOp::Mul => AluOp::Mul,
        AddrOp::And => AluOp::And,
        AddrOp::Or => AluOp::Or,
        AddrOp::Xor => AluOp::Xor,
        AddrOp::Shl => AluOp::Lsh,
        AddrOp::Shr => AluOp::Rsh,
        AddrOp::Sar => AluOp::Arsh,
    }
}

/// The load size of an integer `bytes` wide (the planner only makes 1, 2, 4 and 8).
fn width(bytes: u8) -> Size {
    match bytes {
        1 => Size::B,
        2 => Size::H,
        4 => Size::W,
        _ => Size::DW,
    }
}
