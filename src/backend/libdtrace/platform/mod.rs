//! What differs between the libdtrace of Oracle Linux and that of the illumos family
//! (illumos, FreeBSD, macOS), behind one set of functions: init, go, waiting, probe
//! descriptions, where record data starts, the process handler and the aggregation layouts.
//! build.rs tells them apart by the header and emits `dtk_dtrace_oracle` for Oracle's; the
//! illumos family's module is still to be written, and build.rs builds no back end there.
//! Constants and layouts come from the platform's own header through bindgen wherever the
//! header has them.

mod oracle;

pub use oracle::*;

use super::ffi;
use crate::event::AggFunc;

/// The program text with the platform's prelude definitions that it uses, inserted after
/// an interpreter line (`#!…`), which must stay first.
pub fn with_prelude(text: &str) -> String {
    let used: Vec<&str> = PRELUDE
        .iter()
        .filter(|(name, _)| text.contains(name))
        .map(|(_, definition)| *definition)
        .collect();
    if used.is_empty() {
        return text.to_owned();
    }
    let (first, rest) = match text.strip_prefix("#!") {
        Some(_) => text.split_at(text.find('\n').map_or(text.len(), |i| i + 1)),
        None => ("", text),
    };
    let mut out = String::with_capacity(text.len() + 128);
    out.push_str(first);
    if !first.is_empty() && !first.ends_with('\n') {
        out.push('\n');
    }
    for definition in used {
        out.push_str(definition);
        out.push('\n');
    }
    out.push_str(rest);
    out
}

/// One aggregation entry as the platform lays it out, cut into byte slices.
#[derive(Debug)]
pub struct AggView<'a> {
    pub name: String,
    pub func: AggFunc,
    /// The aggregating function's parameters (lquantize and llquantize), packed as in
    /// DTRACE_LQUANTIZE_* / DTRACE_LLQUANTIZE_*.
    pub params: u64,
    /// `normalize()`'s divisor (1 when not normalised).
    pub normal: u64,
    /// Each key's record description and bytes.
    pub keys: Vec<(&'a ffi::dtrace_recdesc_t, &'a [u8])>,
    /// The value's data: the counts or accumulators, without any parameter prefix.
    pub data: &'a [u8],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prelude_goes_after_the_interpreter_line_and_only_when_used() {
        assert_eq!(with_prelude("BEGIN { exit(0); }"), "BEGIN { exit(0); }");
        for (name, definition) in PRELUDE {
            let text = format!("#!/usr/sbin/dtrace -s\nBEGIN {{ trace({name}); }}");
            let out = with_prelude(&text);
            assert!(out.starts_with("#!/usr/sbin/dtrace -s\n"), "{out}");
            assert!(out.contains(definition), "{out}");
            assert!(
                out.ends_with(&format!("BEGIN {{ trace({name}); }}")),
                "{out}"
            );
        }
    }
}
