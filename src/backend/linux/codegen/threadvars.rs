//! Kernel thread variables in BPF (see `plan::threadvars`): one hash map per variable from
//! thread id to value, loaded into the frame's slots (`frame::thread_var_slot`) before a
//! kernel clause runs and stored back as it assigns; and the per-thread pointers that probes
//! keep for later probes (`Plan::shadow_vars`), hash maps of the same shape.

use super::frame::{thread_var_slot, DROP_KEY_SLOT, THREAD_KEY, THREAD_VALUE};
use super::predicate::load;
use crate::backend::linux::bpf::drops::DropSlots;
use crate::backend::linux::bpf::insn::{AluOp, Asm, Cond, Helper, MapRef, Reg, Size, Src};
use crate::backend::linux::bpf::maps::{MapSpec, MapTable, MapType};
use crate::backend::linux::d::ast::{Expr, ExprKind, VarScope};
use crate::backend::linux::plan::{KernelClause, Plan, ThreadAssign};

/// Threads whose kernel thread variables can be set at once (DTrace's dynamic variable
/// space); a set beyond is counted as a dynamic-variable drop.
const THREAD_VAR_ENTRIES: u32 = 65536;

/// The maps of a plan's kernel thread variables (`Plan::kernel_vars`), in that order, and
/// the counter of sets that found their map full.
#[derive(Debug)]
pub struct ThreadVars {
    pub names: Vec<String>,
    pub maps: Vec<MapRef>,
    pub drops: DropSlots,
}

impl ThreadVars {
    pub fn plan(plan: &Plan, table: &mut MapTable) -> ThreadVars {
        ThreadVars {
            names: plan.kernel_vars.clone(),
            maps: per_thread(&plan.kernel_vars, "dtk_self_", table),
            drops: DropSlots::new(table.add(DropSlots::spec("dtk_var_drops", 0)), 0),
        }
    }

    /// Reads the thread's value of each kernel thread variable `clause` uses into its stack
    /// slot (0 when the thread has none), with the thread id left in THREAD_KEY.
    pub fn emit_loads(&self, asm: &mut Asm, clause: &KernelClause) {
        let used = clause_vars(clause, &self.names);
        if used.is_empty() {
            return;
        }
        thread_key(asm);
        for i in used {
            let Some(&map) = self.maps.get(i) else {
                continue;
            };
            let absent = asm.label();
            let done = asm.label();
            asm.ld_map(Reg::R1, map)
                .mov64_reg(Reg::R2, Reg::R10)
                .alu64(AluOp::Add, Reg::R2, Src::Imm(THREAD_KEY.into()))
                .call(Helper::MapLookupElem)
                .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), absent)
                .ldx(Size::DW, Reg::R1, Reg::R0, 0)
                .jmp(done)
                .bind(absent)
                .mov64_imm(Reg::R1, 0)
                .bind(done)
                .stx(Size::DW, Reg::R10, thread_var_slot(i), Reg::R1);
        }
    }

    /// `self->x = value`: the slot (for the clause's later statements) and the map; 0
    /// deletes the thread's entry.
    pub fn emit_assign(&self, asm: &mut Asm, assign: &ThreadAssign) {
        let Some(&map) = self.maps.get(assign.var) else {
            return;
        };
        let delete = asm.label();
        let done = asm.label();
        load(asm, &assign.value, &self.names, Reg::R1);
        asm.stx(Size::DW, Reg::R10, thread_var_slot(assign.var), Reg::R1)
            .jmp_if(Cond::Eq, Reg::R1, Src::Imm(0), delete);
        set_for_thread(asm, map);
        asm.jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), done);
        self.drops.emit_count(asm, DROP_KEY_SLOT);
        asm.jmp(done)
            .bind(delete)
            .ld_map(Reg::R1, map)
            .mov64_reg(Reg::R2, Reg::R10)
            .alu64(AluOp::Add, Reg::R2, Src::Imm(THREAD_KEY.into()))
            .call(Helper::MapDeleteElem)
            .bind(done);
    }
}

/// The maps of `Plan::shadow_vars`: per-thread pointers.
pub fn shadow_maps(plan: &Plan, table: &mut MapTable) -> Vec<MapRef> {
    per_thread(&plan.shadow_vars, "dtk_ptr_", table)
}

fn per_thread(names: &[String], prefix: &str, table: &mut MapTable) -> Vec<MapRef> {
    names
        .iter()
        .map(|name| {
            let spec = MapSpec::new(
                MapType::Hash,
                8,
                8,
                THREAD_VAR_ENTRIES,
                &format!("{prefix}{name}"),
            );
            table.add(spec)
        })
        .collect()
}

/// Writes the thread id (the low 32 bits of pid_tgid) at THREAD_KEY: the key of the
/// per-thread maps.
pub fn thread_key(asm: &mut Asm) {
    asm.call(Helper::GetCurrentPidTgid)
        .alu64(AluOp::Lsh, Reg::R0, Src::Imm(32))
        .alu64(AluOp::Rsh, Reg::R0, Src::Imm(32))
        .stx(Size::DW, Reg::R10, THREAD_KEY, Reg::R0);
}

/// map[THREAD_KEY] = R1 (BPF_ANY); R0 is the helper's result.
pub fn set_for_thread(asm: &mut Asm, map: MapRef) {
    asm.stx(Size::DW, Reg::R10, THREAD_VALUE, Reg::R1)
        .ld_map(Reg::R1, map)
        .mov64_reg(Reg::R2, Reg::R10)
        .alu64(AluOp::Add, Reg::R2, Src::Imm(THREAD_KEY.into()))
        .mov64_reg(Reg::R3, Reg::R10)
        .alu64(AluOp::Add, Reg::R3, Src::Imm(THREAD_VALUE.into()))
        .mov64_imm(Reg::R4, 0)
        .call(Helper::MapUpdateElem);
}

/// The indices of the kernel thread variables `clause` reads or writes, ascending.
fn clause_vars(clause: &KernelClause, names: &[String]) -> Vec<usize> {
    let mut used = std::collections::BTreeSet::new();
    let mut visit = |e: &Expr| {
        if let ExprKind::Var {
            name,
            scope: VarScope::Thread,
        } = &e.kind
        {
            if let Some(i) = names.iter().position(|n| n == name) {
                used.insert(i);
            }
        }
    };
    let exprs = clause
        .predicate
        .iter()
        .chain(
            clause
                .updates
                .iter()
                .flat_map(|u| u.keys.iter().chain(u.value.iter())),
        )
        .chain(clause.assigns.iter().map(|a| &a.value));
    for e in exprs {
        crate::backend::linux::plan::walk(e, &mut visit);
    }
    used.extend(clause.assigns.iter().map(|a| a.var));
    used.into_iter().collect()
}
