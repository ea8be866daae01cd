//! Recursion over expression trees of any depth. A left-associative chain such as
//! `pid == 1 || pid == 2 || …` parses into a tree as deep as it is long, and every pass that
//! walks it (checker, folder, planner, code generator, executor, and Clone, Drop and
//! PartialEq of the tree) recurses once per term. Those passes call [`recurse`] at each level,
//! which moves onto a fresh heap-allocated stack segment when the thread's stack runs low,
//! as rustc does for the same reason. Real nesting stays bounded by the parser.

/// Room that must be left on the stack before a level runs in place: more than the largest
/// frame of one level in an unoptimised build.
const RED_ZONE: usize = 256 * 1024;

/// The size of each new segment.
const SEGMENT: usize = 4 * 1024 * 1024;

/// Runs `f`, first switching to a new stack segment if less than [`RED_ZONE`] is left.
#[inline]
pub fn recurse<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(RED_ZONE, SEGMENT, f)
}
