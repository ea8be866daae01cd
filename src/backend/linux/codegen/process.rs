//! The process block in BPF: `bpf_get_current_task`, then chains of `bpf_probe_read_kernel`
//! through the task_struct at the offsets BTF gave (`inspect::task`), into the record's
//! process block (`record::process`). The same thing libbpf's CO-RE relocations compile to,
//! with the offsets filled in at startup.
//!
//! Each link's pointer is kept in the record (the block's scratch words), since helper calls
//! clobber R1–R5 and R6–R9 are taken. A NULL or unreadable link makes the reads through it
//! fail, and `bpf_probe_read_kernel` zeroes what it could not read: a kernel thread's `mm`
//! fields, for example, read as 0. The helpers need kernel 5.5 (probe_read_kernel/user) and
//! 4.8 (get_current_task), and both are offered to tracepoint, uprobe and perf-event programs.

use crate::backend::linux::bpf::insn::{AluOp, Asm, Cond, Helper, Reg, Size, Src};
use crate::backend::linux::record::process::*;
use crate::inspect::task::{MemberRead, TaskLayout};

const SCRATCH_A: usize = SCRATCH;
const SCRATCH_B: usize = SCRATCH + 8;

/// Emits the reads that fill the process block at record offset `at` (R7 = the record):
/// the task and `ppid` only, unless `full`. Clobbers R0–R5.
pub fn emit(asm: &mut Asm, task: &TaskLayout, at: usize, full: bool) {
    let block = Block { at };
    asm.call(Helper::GetCurrentTask)
        .stx(Size::DW, Reg::R7, block.off(TASK), Reg::R0);
    if !full {
        block.read(asm, SCRATCH_A, 8, TASK, task.real_parent);
        block.read(asm, PPID, 4, SCRATCH_A, task.tgid);
        // What the record decodes beyond them reads as empty, not as an older record's.
        asm.st(Size::W, Reg::R7, block.off(PSARGS_LEN), 0).st(
            Size::W,
            Reg::R7,
            block.off(ANCESTORS),
            0,
        );
        return;
    }
    // euid, egid: task->cred->{euid, egid}.
    block.read(asm, SCRATCH_B, 8, TASK, task.cred);
    block.read(asm, EUID, 4, SCRATCH_B, task.euid);
    block.read(asm, EGID, 4, SCRATCH_B, task.egid);
    // nlwp, pgid, sid: task->signal->nr_threads, ->pids[PIDTYPE_*]->numbers[0].nr.
    block.read(asm, SCRATCH_B, 8, TASK, task.signal);
    block.read(asm, NLWP, 4, SCRATCH_B, task.nr_threads);
    block.read(asm, SCRATCH_A, 8, SCRATCH_B, task.pgid_pid);
    block.read(asm, PGID, 4, SCRATCH_A, task.pid_nr);
    block.read(asm, SCRATCH_A, 8, SCRATCH_B, task.sid_pid);
    block.read(asm, SID, 4, SCRATCH_A, task.pid_nr);
    // Sizes and the command line: task->mm->{total_vm, rss_stat, start_stack, arg_*}.
    block.read(asm, SCRATCH_B, 8, TASK, task.mm);
    block.read(asm, TOTAL_VM, 8, SCRATCH_B, task.total_vm);
    for (i, &counter) in task.rss.iter().enumerate() {
        block.read(asm, RSS + 8 * i, 8, SCRATCH_B, counter);
    }
    block.read(asm, SCRATCH_A, 8, SCRATCH_B, task.start_stack);
    block.read_with(asm, Helper::ProbeReadUser, ARGC, 4, SCRATCH_A, 0);
    psargs(asm, &block, task);
    ancestors(asm, &block, task);
}

/// Reads `curthread->…` into its slot at record offset `at` (status, then value): the task's
/// address, a pointer read at each offset but the last, then the member itself. The value
/// word keeps the pointers on the way. Clobbers R0–R5.
pub fn emit_member(asm: &mut Asm, read: &MemberRead, at: usize) {
    let slot = Block { at };
    let (last, links) = read.offsets.split_last().expect("a member path has a step");
    asm.call(Helper::GetCurrentTask)
        .stx(Size::DW, Reg::R7, slot.off(8), Reg::R0);
    for &offset in links {
        slot.read(asm, 8, 8, 8, offset);
    }
    // The value word is zeroed first: a read of fewer than 8 bytes leaves the rest.
    asm.ldx(Size::DW, Reg::R3, Reg::R7, slot.off(8))
        .st(Size::DW, Reg::R7, slot.off(8), 0)
        .alu64(AluOp::Add, Reg::R3, Src::Imm(*last as i32))
        .mov64_reg(Reg::R1, Reg::R7)
        .alu64(AluOp::Add, Reg::R1, Src::Imm((at + 8) as i32))
        .mov64_imm(Reg::R2, i32::from(read.size))
        .call(Helper::ProbeReadKernel)
        .stx(Size::DW, Reg::R7, slot.off(0), Reg::R0);
}

/// D's `cwd` into the block at record offset `at` (`record::cwd`): from `task->fs->pwd`,
/// up through `d_parent`, one name per level; at the root of a mount, on to the mount
/// point in the parent mount (`struct mount` holds the `vfsmount` at `mount_mnt`), until the
/// mount that is its own parent. Unrolled over `LEVELS` levels. Clobbers R0–R5.
pub fn emit_cwd(asm: &mut Asm, task: &TaskLayout, at: usize) {
    use crate::backend::linux::record::cwd::*;
    let block = Block { at };
    let done = asm.label();
    let complete = asm.label();
    asm.st(Size::DW, Reg::R7, block.off(STATUS), UNKNOWN as i32);
    for level in 0..LEVELS {
        asm.st(Size::DW, Reg::R7, block.off(NAMES + level * SLOT), 0);
    }
    asm.call(Helper::GetCurrentTask)
        .stx(Size::DW, Reg::R7, block.off(TASK), Reg::R0);
    block.read(asm, TMP, 8, TASK, task.fs);
    block.read(asm, DENTRY, 8, TMP, task.pwd_dentry);
    block.read(asm, MOUNT, 8, TMP, task.pwd_mnt);
    // No working directory to read (a kernel thread has no fs): UNKNOWN.
    asm.ldx(Size::DW, Reg::R1, Reg::R7, block.off(DENTRY))
        .jmp_if(Cond::Eq, Reg::R1, Src::Imm(0), done)
        .ldx(Size::DW, Reg::R1, Reg::R7, block.off(MOUNT))
        .jmp_if(Cond::Eq, Reg::R1, Src::Imm(0), done)
        .alu64(AluOp::Sub, Reg::R1, Src::Imm(task.mount_mnt as i32))
        .stx(Size::DW, Reg::R7, block.off(MOUNT), Reg::R1);
    for level in 0..LEVELS {
        let slot = NAMES + level * SLOT;
        let name = asm.label();
        let next = asm.label();
        // At the root of this mount: cross to its mount point, or stop at the last one.
        block.read(asm, TMP, 8, MOUNT, task.mount_mnt + task.mnt_root);
        asm.ldx(Size::DW, Reg::R1, Reg::R7, block.off(TMP))
            .ldx(Size::DW, Reg::R2, Reg::R7, block.off(DENTRY))
            .jmp_if(Cond::Ne, Reg::R1, Src::Reg(Reg::R2), name);
        block.read(asm, TMP2, 8, MOUNT, task.mnt_parent);
        asm.ldx(Size::DW, Reg::R1, Reg::R7, block.off(TMP2))
            .ldx(Size::DW, Reg::R2, Reg::R7, block.off(MOUNT))
            .jmp_if(Cond::Eq, Reg::R1, Src::Reg(Reg::R2), complete)
            .jmp_if(Cond::Eq, Reg::R1, Src::Imm(0), done);
        block.read(asm, DENTRY, 8, MOUNT, task.mnt_mountpoint);
        asm.ldx(Size::DW, Reg::R1, Reg::R7, block.off(TMP2))
            .stx(Size::DW, Reg::R7, block.off(MOUNT), Reg::R1)
            .jmp(next)
            .bind(name);
        // A name, then up to the parent; a dentry that is its own parent is a root.
        block.read(asm, TMP2, 8, DENTRY, task.d_parent);
        asm.ldx(Size::DW, Reg::R1, Reg::R7, block.off(TMP2))
            .ldx(Size::DW, Reg::R2, Reg::R7, block.off(DENTRY))
            .jmp_if(Cond::Eq, Reg::R1, Src::Reg(Reg::R2), complete)
            .jmp_if(Cond::Eq, Reg::R1, Src::Imm(0), done);
        block.read(asm, TMP, 8, DENTRY, task.d_name);
        block.read_with(
            asm,
            Helper::ProbeReadKernelStr,
            slot + 8,
            NAME_SIZE as i32,
            TMP,
            0,
        );
        asm.stx(Size::DW, Reg::R7, block.off(slot), Reg::R0)
            .ldx(Size::DW, Reg::R1, Reg::R7, block.off(TMP2))
            .stx(Size::DW, Reg::R7, block.off(DENTRY), Reg::R1)
            .bind(next);
    }
    asm.st(Size::DW, Reg::R7, block.off(STATUS), CUT as i32)
        .jmp(done)
        .bind(complete)
        .st(Size::DW, Reg::R7, block.off(STATUS), COMPLETE as i32)
        .bind(done);
}

/// The first `PSARGS_SIZE` bytes of the command line, from the process's own memory
/// (`mm->arg_start` up to `mm->arg_end`).
fn psargs(asm: &mut Asm, block: &Block, task: &TaskLayout) {
    // arg_end goes to the ancestors' area, which is written after.
    block.read(asm, SCRATCH_A, 8, SCRATCH_B, task.arg_start);
    block.read(asm, ANCESTORS, 8, SCRATCH_B, task.arg_end);
    let skip = asm.label();
    let capped = asm.label();
    asm.st(Size::W, Reg::R7, block.off(PSARGS_LEN), 0)
        .ldx(Size::DW, Reg::R2, Reg::R7, block.off(ANCESTORS))
        .ldx(Size::DW, Reg::R3, Reg::R7, block.off(SCRATCH_A))
        .alu64(AluOp::Sub, Reg::R2, Src::Reg(Reg::R3))
        .jmp_if(Cond::Le, Reg::R2, Src::Imm(PSARGS_SIZE as i32), capped)
        .mov64_imm(Reg::R2, PSARGS_SIZE as i32)
        .bind(capped)
        .jmp_if(Cond::Eq, Reg::R2, Src::Imm(0), skip)
        .stx(Size::W, Reg::R7, block.off(PSARGS_LEN), Reg::R2)
        .mov64_reg(Reg::R1, Reg::R7)
        .alu64(AluOp::Add, Reg::R1, Src::Imm((block.at + PSARGS) as i32))
        .call(Helper::ProbeReadUser)
        .jmp_if(Cond::Eq, Reg::R0, Src::Imm(0), skip)
        .st(Size::W, Reg::R7, block.off(PSARGS_LEN), 0)
        .bind(skip);
}

/// ppid and the ancestors' tgids: task->real_parent->tgid, then up the real_parent chain
/// until a tgid of 0 or 1 (init) or `MAX_ANCESTORS` levels, unrolled (the verifier accepts
/// bounded loops only from 5.3, and unrolled code from any).
fn ancestors(asm: &mut Asm, block: &Block, task: &TaskLayout) {
    let done = asm.label();
    block.read(asm, SCRATCH_A, 8, TASK, task.real_parent);
    block.read(asm, PPID, 4, SCRATCH_A, task.tgid);
    for i in 0..MAX_ANCESTORS {
        let slot = ANCESTORS + 4 * i;
        if i > 0 {
            block.read(asm, SCRATCH_A, 8, SCRATCH_A, task.real_parent);
        }
        block.read(asm, slot, 4, SCRATCH_A, task.tgid);
        asm.ldx(Size::W, Reg::R1, Reg::R7, block.off(slot)).jmp_if(
            Cond::Le,
            Reg::R1,
            Src::Imm(1),
            done,
        );
    }
    asm.bind(done);
}

/// The block's place in the record.
struct Block {
    at: usize,
}

impl Block {
    fn off(&self, field: usize) -> i16 {
        (self.at + field) as i16
    }

    /// `len` bytes of kernel memory at `*(u64 *)block[from] + offset` into `block[to]`.
    fn read(&self, asm: &mut Asm, to: usize, len: i32, from: usize, offset: u32) {
        self.read_with(asm, Helper::ProbeReadKernel, to, len, from, offset);
    }

    fn read_with(
        &self,
        asm: &mut Asm,
        helper: Helper,
        to: usize,
        len: i32,
        from: usize,
        offset: u32,
    ) {
        asm.ldx(Size::DW, Reg::R3, Reg::R7, self.off(from))
            .alu64(AluOp::Add, Reg::R3, Src::Imm(offset as i32))
            .mov64_reg(Reg::R1, Reg::R7)
            .alu64(AluOp::Add, Reg::R1, Src::Imm((self.at + to) as i32))
            .mov64_imm(Reg::R2, len)
            .call(helper);
    }
}
