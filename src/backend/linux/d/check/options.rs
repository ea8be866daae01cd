//! `#pragma D option name[=value]`: the options dtrace(1) accepts, and the form each value
//! must have (a size such as `4m`, a rate such as `10hz` or `50ms`, a count, or one of a few
//! words), so a mistyped option is reported where it is written.

use super::Checker;
use crate::backend::linux::d::ast::Pragma;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    /// No value (a value is accepted and ignored, as dtrace does for `quiet=1`).
    Flag,
    /// Bytes, with an optional k, m, g or t suffix.
    Size,
    /// A frequency (`10hz`) or an interval (`100ms`, `1s`; a bare number is in hertz).
    Rate,
    Count,
    Choice(&'static [&'static str]),
}

const OPTIONS: &[(&str, Value)] = &[
    ("quiet", Value::Flag),
    ("flowindent", Value::Flag),
    ("defaultargs", Value::Flag),
    ("destructive", Value::Flag),
    ("zdefs", Value::Flag),
    ("rawbytes", Value::Flag),
    ("aggsortkey", Value::Flag),
    ("aggsortrev", Value::Flag),
    ("aggpercpu", Value::Flag),
    ("aggzoom", Value::Flag),
    ("verbose", Value::Flag),
    ("nolibs", Value::Flag),
    ("errtags", Value::Flag),
    ("droptags", Value::Flag),
    ("quietresize", Value::Flag),
    ("noresolve", Value::Flag),
    ("empty", Value::Flag),
    ("argref", Value::Flag),
    ("pspec", Value::Flag),
    ("knodefs", Value::Flag),
    ("kdefs", Value::Flag),
    ("unodefs", Value::Flag),
    ("udefs", Value::Flag),
    ("lazyload", Value::Flag),
    ("grabanon", Value::Flag),
    ("bpflog", Value::Flag),
    ("bufsize", Value::Size),
    ("aggsize", Value::Size),
    ("dynvarsize", Value::Size),
    ("specsize", Value::Size),
    ("strsize", Value::Size),
    ("jstackstrsize", Value::Size),
    ("bpflogsize", Value::Size),
    ("lockmem", Value::Size),
    ("scratchsize", Value::Size),
    ("printsize", Value::Size),
    ("pcapsize", Value::Size),
    ("switchrate", Value::Rate),
    ("aggrate", Value::Rate),
    ("cleanrate", Value::Rate),
    ("statusrate", Value::Rate),
    ("stackframes", Value::Count),
    ("maxframes", Value::Count),
    ("ustackframes", Value::Count),
    ("jstackframes", Value::Count),
    ("maxframes", Value::Count),
    ("nspec", Value::Count),
    ("aggsortpos", Value::Count),
    ("aggsortkeypos", Value::Count),
    ("cpu", Value::Count),
    ("stackindent", Value::Count),
    ("bufpolicy", Value::Choice(&["fill", "switch", "ring"])),
    ("bufresize", Value::Choice(&["auto", "manual"])),
];

/// The suffixes the engine's option parser (`linux::options`) understands.
const SIZE_SUFFIXES: &[&str] = &["", "k", "m", "g"];
const RATE_SUFFIXES: &[&str] = &[
    "", "hz", "ns", "nsec", "us", "usec", "ms", "msec", "s", "sec",
];

/// Whether `value` is a number followed by one of `suffixes` (in any case). Sizes and rates
/// (anything with suffixes) must also be more than zero.
fn number_with_suffix(value: &str, suffixes: &[&str]) -> bool {
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    let suffix = value[digits..].to_ascii_lowercase();
    let positive = value[..digits].bytes().any(|b| b != b'0') || suffixes.len() == 1;
    digits > 0 && positive && suffixes.contains(&suffix.as_str())
}

/// Why `name[=value]` is not a valid D option, or `Ok` when it is; the reason follows
/// dtrace's `failed to set option 'NAME': ` (pragmas) or `failed to set -x NAME: ` (the command
/// line), as its callers word it.
pub fn check_option(name: &str, value: Option<&str>) -> Result<(), String> {
    let Some(&(_, kind)) = OPTIONS.iter().find(|(n, _)| *n == name) else {
        return Err("Invalid option name".into());
    };
    let Some(value) = value else {
        if kind != Value::Flag {
            return Err(format!("it needs a value: `{name}=...`"));
        }
        return Ok(());
    };
    let (ok, wanted) = match kind {
        Value::Flag => (true, String::new()),
        Value::Size => (
            number_with_suffix(value, SIZE_SUFFIXES),
            "a size such as 4m".to_string(),
        ),
        Value::Rate => (
            number_with_suffix(value, RATE_SUFFIXES),
            "a rate such as 10hz or 100ms".to_string(),
        ),
        Value::Count => (number_with_suffix(value, &[""]), "a number".to_string()),
        Value::Choice(words) => (words.contains(&value), words.join(", ")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("it takes {wanted}, found `{value}`"))
    }
}

impl Checker {
    pub(super) fn pragma(&mut self, p: &Pragma) {
        if let Err(message) = check_option(&p.name, p.value.as_deref()) {
            let message = format!("failed to set option `{}`: {message}", p.name);
            self.tagged("D_PRAGMA_OPTSET", p.span, message);
        } else if let ("scratchsize", Some(v)) = (p.name.as_str(), p.value.as_deref()) {
            self.scratchsize = crate::backend::linux::options::parse_size(&p.name, v).ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rates_take_their_suffixes() {
        assert!(number_with_suffix("16m", SIZE_SUFFIXES));
        assert!(number_with_suffix("4096", SIZE_SUFFIXES));
        assert!(!number_with_suffix("m", SIZE_SUFFIXES));
        assert!(!number_with_suffix("4q", SIZE_SUFFIXES));
        assert!(number_with_suffix("10Hz", RATE_SUFFIXES));
        assert!(number_with_suffix("250ms", RATE_SUFFIXES));
        assert!(!number_with_suffix("fast", RATE_SUFFIXES));
        assert!(!number_with_suffix("0hz", RATE_SUFFIXES));
        assert!(number_with_suffix("0", &[""]));
    }
}
