//! The instructions by which a function returns, for return probes that are uprobes on them
//! (as DTrace's pid provider places its return probes) rather than uretprobes. A uretprobe
//! replaces the return address on the stack, and the kernel does that for at most 64 nested
//! calls of a thread (MAX_URETPROBE_DEPTH): a deeper call's return is never seen. A uprobe on
//! a `ret` fires however deep the recursion.
//!
//! Placing a breakpoint anywhere but at the start of an instruction would corrupt the
//! program, so the function is decoded from its first byte to its last (x86-64 only), and the
//! answer is None unless every way out of it is known:
//! - each `ret` in its code;
//! - each `ret` reached from the code it jumps to outside itself (GCC's `.cold` parts of a
//!   function), decoded by following every branch (and going on after calls);
//! - no jump to another function (a tail call: that function's `ret` would be the return),
//!   no indirect jump unless the caller knows they stay inside the function (an
//!   interpreter's computed gotos), and nothing that does not decode.
//!
//! An outside part reached only through such an indirect jump is not decoded: its returns
//! would be missed. CPython's evaluator on Debian's 3.13 and 3.14 keeps most of its code in
//! an outside part and returns through its own `ret`; the tests compare the returns seen
//! with the interpreter's own count at 900 nested calls.

use iced_x86::{Decoder, DecoderOptions, FlowControl, Instruction};

use super::elf::{ElfImage, FunctionLocation, Machine};

/// How far the outside parts are followed before giving up, in instructions.
const OUTSIDE_LIMIT: usize = 100_000;

/// The file offsets of the `ret` instructions of `function` in `image`, or None when they are
/// not known to be its only exits (see the module doc). `indirect_stays_inside`: the
/// function's indirect jumps are known to go to its own code.
pub fn return_sites(
    image: &ElfImage,
    name: &str,
    function: &FunctionLocation,
    indirect_stays_inside: bool,
) -> Option<Vec<u64>> {
    if image.machine() != Machine::X86_64 || function.size == 0 {
        return None;
    }
    let start = function.address;
    let end = start.checked_add(function.size)?;
    let inside = |address: u64| (start..end).contains(&address);
    let mut rets = Vec::new();
    let mut outside = Vec::new();
    // The function's own code, in one sweep.
    let code = image.bytes_at(function.file_offset, usize::try_from(function.size).ok()?)?;
    let mut decoder = Decoder::with_ip(64, code, start, DecoderOptions::NONE);
    let mut instruction = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut instruction);
        if instruction.is_invalid() {
            return None;
        }
        match exit_of(&instruction, indirect_stays_inside)? {
            Exit::Return => rets.push(instruction.ip()),
            Exit::Jump(target) if !inside(target) => outside.push(target),
            _ => {}
        }
    }
    // The parts outside it, by following their branches.
    let functions = image.function_starts();
    let mut seen = std::collections::HashSet::new();
    let mut decoded = 0;
    while let Some(mut ip) = outside.pop() {
        loop {
            if inside(ip) || !seen.insert(ip) {
                break;
            }
            decoded += 1;
            // A jump to another function is a tail call; GCC names a function's own
            // outside parts NAME.cold or NAME.part.N.
            let other = functions
                .get(&ip)
                .is_some_and(|f| !f.strip_prefix(name).is_some_and(|r| r.starts_with('.')));
            if decoded > OUTSIDE_LIMIT || other {
                return None;
            }
            let offset = image.file_offset(ip).ok()?;
            let bytes = image
                .bytes_at(offset, 15)
                .or_else(|| image.bytes_at(offset, 1))?;
            let mut decoder = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
            decoder.decode_out(&mut instruction);
            if instruction.is_invalid() {
                return None;
            }
            match exit_of(&instruction, indirect_stays_inside)? {
                Exit::Return => {
                    rets.push(ip);
                    break;
                }
                Exit::Jump(target) => {
                    outside.push(target);
                    if instruction.flow_control() == FlowControl::UnconditionalBranch {
                        break;
                    }
                }
                Exit::Stop => break,
                Exit::Next => {}
            }
            ip = instruction.next_ip();
        }
    }
    rets.sort_unstable();
    rets.dedup();
    rets.into_iter()
        .map(|address| image.file_offset(address).ok())
        .collect()
}

/// What one instruction does to the flow out of a function.
enum Exit {
    Return,
    /// A direct jump, conditional or not.
    Jump(u64),
    /// The flow goes no further here (an indirect jump known to stay inside, `ud2`, `hlt`).
    Stop,
    Next,
}

/// None when the instruction leaves the function in a way that cannot be followed.
fn exit_of(instruction: &Instruction, indirect_stays_inside: bool) -> Option<Exit> {
    Some(match instruction.flow_control() {
        FlowControl::Return => Exit::Return,
        FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch => {
            Exit::Jump(instruction.near_branch_target())
        }
        FlowControl::IndirectBranch if indirect_stays_inside => Exit::Stop,
        FlowControl::IndirectBranch => return None,
        FlowControl::Exception | FlowControl::Interrupt => Exit::Stop,
        FlowControl::Next
        | FlowControl::Call
        | FlowControl::IndirectCall
        | FlowControl::XbeginXabortXend => Exit::Next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// objdump's `ret` lines in the function: the ground truth.
    fn objdump_rets(path: &str, function: &FunctionLocation) -> Option<Vec<u64>> {
        let out = std::process::Command::new("objdump")
            .args(["-d", "--no-show-raw-insn"])
            .arg(format!("--start-address={:#x}", function.address))
            .arg(format!(
                "--stop-address={:#x}",
                function.address + function.size
            ))
            .arg(path)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        Some(
            text.lines()
                .filter_map(|l| {
                    let (address, rest) = l.trim().split_once(':')?;
                    let op = rest.split_whitespace().next()?;
                    op.starts_with("ret")
                        .then(|| u64::from_str_radix(address, 16).ok())?
                })
                .collect(),
        )
    }

    #[test]
    fn the_returns_of_functions_are_objdumps_rets() {
        let path = "/usr/bin/python3.11";
        let Ok(image) = ElfImage::open(Path::new(path)) else {
            return;
        };
        let mut checked = 0;
        for name in [
            "Py_Main",
            "PyObject_GetAttr",
            "PyLong_FromLong",
            "_PyEval_EvalFrameDefault",
        ] {
            let function = image.function(name).unwrap();
            let evaluator = name == "_PyEval_EvalFrameDefault";
            let Some(sites) = return_sites(&image, name, &function, evaluator) else {
                assert!(!evaluator, "the evaluator's returns are known");
                continue;
            };
            let Some(expected) = objdump_rets(path, &function) else {
                return;
            };
            let at: Vec<u64> = sites
                .iter()
                .filter(|&&o| o >= function.file_offset && o < function.file_offset + function.size)
                .map(|o| o - function.file_offset + function.address)
                .collect();
            assert_eq!(at, expected, "{name}");
            assert!(!sites.is_empty(), "{name}");
            checked += 1;
        }
        assert!(checked >= 2, "{checked}");
    }
}
