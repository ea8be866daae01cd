//! Where the machine keeps function arguments, return values and the sampled program counter
//! in `struct pt_regs` (the context of uprobe and perf-event programs). Offsets are those of
//! the kernel's UAPI `struct pt_regs` (x86_64) and `struct user_pt_regs` (aarch64).

#[cfg(target_arch = "x86_64")]
mod machine {
    /// rdi, rsi, rdx, rcx, r8, r9: the System V integer argument registers.
    pub const ARGS: [u16; 6] = [112, 104, 96, 88, 72, 64];
    /// rax.
    pub const RETURN: u16 = 80;
    /// rip.
    pub const PC: u16 = 128;
    /// cs: its low two bits are the privilege level, 3 in user mode.
    pub const MODE: (u16, i32, i32) = (136, 3, 3);
}

#[cfg(target_arch = "aarch64")]
mod machine {
    /// x0 … x5.
    pub const ARGS: [u16; 6] = [0, 8, 16, 24, 32, 40];
    /// x0.
    pub const RETURN: u16 = 0;
    /// pc, after regs[31] and sp.
    pub const PC: u16 = 256;
    /// pstate: its low four bits are the exception level and stack, 0 (EL0t) in user mode.
    pub const MODE: (u16, i32, i32) = (264, 0xf, 0);
}

pub use machine::{ARGS, PC, RETURN};

/// The mode register's offset, the mask to apply, and the masked value that means user mode.
pub fn user_mode_test() -> (u16, i32, i32) {
    machine::MODE
}
