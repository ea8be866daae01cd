//! The BPF stack frame of a dtk program: every fixed slot below R10, in one place, checked at
//! compile time against the plan's limits (the largest kernel aggregation key, the most
//! kernel thread variables) and the kernel's 512-byte stack.
//!
//! | offset | size | slot |
//! |---|---|---|
//! | −8 | 4 | [`KEY_SLOT`]: the key of a one-slot lookup (gate, record scratch, syscall number) |
//! | −16 | 8 | [`ARG_SCRATCH`]: a USDT argument read from memory |
//! | −24 | 4 | [`DROP_KEY_SLOT`]: the key of a drop counter |
//! | −40 | 16 | [`INITIAL_VALUE`]: the zeroed value of a new aggregation key |
//! | below −40 | ≤ `MAX_KEY_SIZE` | the aggregation key ([`aggregation_key`]) |
//! | [`THREAD_VARS`] down | 8 each | the kernel thread variables ([`thread_var_slot`]) |
//! | [`THREAD_KEY`] | 8 | the thread id, key of the per-thread maps |
//! | [`THREAD_VALUE`] | 8 | a value being stored in a per-thread map |
//! | [`GENERATION`] | 4 | the generation drained aggregations count in |

use crate::backend::linux::plan::{MAX_KERNEL_VARS, MAX_KEY_SIZE};

/// The kernel's limit on a BPF program's stack.
const STACK_SIZE: i16 = 512;

pub const KEY_SLOT: i16 = -8;
pub const ARG_SCRATCH: i16 = -16;
pub const DROP_KEY_SLOT: i16 = -24;
/// The zeroed {updates, value} of a new aggregation key; the key lies below it.
pub const INITIAL_VALUE: i16 = -40;
/// Kernel thread variable 0; the others follow downwards.
pub const THREAD_VARS: i16 = -304;
pub const THREAD_KEY: i16 = -432;
pub const THREAD_VALUE: i16 = -440;
pub const GENERATION: i16 = -448;

const _: () = assert!(ARG_SCRATCH + 8 <= KEY_SLOT);
const _: () = assert!(DROP_KEY_SLOT + 8 <= ARG_SCRATCH);
const _: () = assert!(INITIAL_VALUE + 16 <= DROP_KEY_SLOT);
// The largest key fits between the initial value and the thread variables.
const _: () = assert!(INITIAL_VALUE - (MAX_KEY_SIZE as i16) >= THREAD_VARS + 8);
// The last thread variable stays above the thread key.
const _: () = assert!(THREAD_VARS - 8 * (MAX_KERNEL_VARS as i16 - 1) >= THREAD_KEY + 8);
const _: () = assert!(THREAD_VALUE + 8 <= THREAD_KEY);
const _: () = assert!(GENERATION + 8 <= THREAD_VALUE);
const _: () = assert!(GENERATION >= -STACK_SIZE);

/// The stack slot holding kernel thread variable `index` while a kernel clause runs.
pub fn thread_var_slot(index: usize) -> i16 {
    THREAD_VARS - 8 * index as i16
}

/// Where an aggregation key of `key_size` bytes lies: right below the initial value.
pub fn aggregation_key(key_size: usize) -> i16 {
    INITIAL_VALUE - key_size.next_multiple_of(8) as i16
}
