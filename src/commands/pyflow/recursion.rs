//! CPython 3.12's recursion under `-X perf`, which `dtk pyflow -c` adds.
//!
//! With the perf trampoline, every Python call enters the evaluator again from C, and 3.12
//! counts each of those against its C recursion limit as well as the Python one. 3.12.1 then
//! raises RecursionError at about 750 nested calls, on programs that run to the default limit
//! (1,000) without `-X perf`. Later 3.12 releases may differ, so the interpreter is asked: dtk
//! runs it once with `-X perf` on a small recursion and says so when it stops short. Turning
//! the trampoline on later (`sys.activate_stack_trampoline`) costs the same per call, so
//! there is nothing to gain by turning it on only around the traced code.

use std::path::Path;
use std::process::{Command, Stdio};

/// Recurses until RecursionError, and prints the recursion limit, the depth reached and its
/// pid (whose perf map dtk removes).
const PROBE: &str = r#"
import os, sys
depth = 0
def down():
    global depth
    depth += 1
    down()
try:
    down()
except RecursionError:
    pass
print(sys.getrecursionlimit(), depth, os.getpid())
"#;

/// Calls short of the recursion limit that are not worth a notice (the interpreter's own
/// frames below the probe's).
const SLACK: u64 = 50;

/// A notice when `interpreter` under `-X perf` stops recursing well short of its recursion
/// limit; None when it does not, or when it cannot be asked.
pub fn perf_notice(interpreter: &Path) -> Option<String> {
    let out = Command::new(interpreter)
        .args(["-X", "perf", "-c", PROBE])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (limit, depth, pid) = parse(&text)?;
    let _ = std::fs::remove_file(format!("/tmp/perf-{pid}.map"));
    notice(limit, depth)
}

/// The probe's line: limit, depth, pid.
fn parse(text: &str) -> Option<(u64, u64, u32)> {
    let mut words = text.split_whitespace();
    Some((
        words.next()?.parse().ok()?,
        words.next()?.parse().ok()?,
        words.next()?.parse().ok()?,
    ))
}

fn notice(limit: u64, depth: u64) -> Option<String> {
    (depth + SLACK < limit).then(|| {
        format!(
            "dtk: note: this CPython 3.12 under -X perf raises RecursionError at about {depth} \
             nested calls (its recursion limit is {limit}): the perf trampoline counts every \
             call against the C recursion limit too"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recursion_stopped_short_of_the_limit_is_noticed() {
        assert_eq!(parse("1000 747 4242\n"), Some((1000, 747, 4242)));
        assert_eq!(parse("garbage"), None);
        let n = notice(1000, 747).unwrap();
        assert!(n.contains("about 747 nested calls"), "{n}");
        assert!(n.contains("limit is 1000"), "{n}");
        assert_eq!(notice(1000, 990), None);
    }
}
