//! D options for the Linux engine: `#pragma D option` in the program, then `-x` from the
//! command line, which wins. Sizes take dtrace's suffixes (k, m, g) and rates take dtrace's
//! forms (`10hz`, `50ms`, `1s`, a bare number of hertz).

use std::time::Duration;

use thiserror::Error;

use super::d::ast::{Item, Program};
use super::d::check_option;
use crate::event::AggSort;

/// The options the engine uses, with dtrace's defaults, except `switchrate`: 20hz rather
/// than dtrace's 1hz, so that on a terminal an event shows within 50 ms of happening (an idle
/// run wakes that often and no more).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// `strsize`: longest string, not counting its NUL; longer strings are cut and counted.
    pub strsize: usize,
    /// `bufsize`: the ring buffer's size in bytes (rounded up to a power of two by the
    /// runtime).
    pub bufsize: usize,
    /// `switchrate`: how often the ring buffer is read and its events ordered and delivered.
    pub switchrate: Duration,
    /// `zdefs` (or -Z): a description that matches no probe is not an error.
    pub zdefs: bool,
    /// `dynvarsize`: space for thread-local and associative-array variables, in bytes.
    pub dynvarsize: usize,
    /// `quiet` (or -q): only what the program prints explicitly, no per-firing probe lines.
    pub quiet: bool,
    /// `aggsortkey`, `aggsortkeypos` and `aggsortrev`: how aggregations are printed.
    pub aggsort: AggSort,
    /// `aggsortpos`: the aggregation whose values order a multi-aggregation printa.
    pub aggsortpos: usize,
    /// `cpu`: trace on this CPU only; BEGIN, END and tick-N fire there too.
    pub cpu: Option<u32>,
    /// `nspec`: how many speculative buffers `speculation()` hands out.
    pub nspec: usize,
    /// `scratchsize`: bytes of scratch memory `alloca()` hands out in one firing.
    pub scratchsize: usize,
    /// `specsize`: bytes of data one speculative buffer holds.
    pub specsize: usize,
    /// `destructive` (or -w): actions that change the system (`system()`, `raise()`) are
    /// allowed.
    pub destructive: bool,
    /// `stackframes` and `ustackframes`: the frames `stack()` and `ustack()` show without a
    /// count.
    pub stackframes: usize,
    pub ustackframes: usize,
    /// `maxframes`: the most frames any stack shows, whatever count it asks for; by default
    /// the kernel's `perf_event_max_stack`, as in dtrace.
    pub maxframes: usize,
}

/// dtrace's `maxframes` when /proc/sys/kernel/perf_event_max_stack cannot be read (the
/// kernel's own default).
const DEFAULT_MAXFRAMES: usize = 127;

fn kernel_max_stack() -> usize {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_max_stack")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_MAXFRAMES)
}

impl Default for Options {
    fn default() -> Self {
        Options {
            strsize: 256,
            bufsize: 4 << 20,
            switchrate: Duration::from_millis(50),
            zdefs: false,
            dynvarsize: 1 << 20,
            quiet: false,
            aggsort: AggSort::default(),
            aggsortpos: 0,
            cpu: None,
            nspec: 1,
            specsize: 4 << 20,
            scratchsize: 256,
            destructive: false,
            stackframes: 20,
            ustackframes: 100,
            maxframes: kernel_max_stack(),
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum OptionError {
    #[error("option {name}: {value:?} is not a {what}")]
    BadValue {
        name: String,
        value: String,
        what: &'static str,
    },
    #[error("option {0} needs a value")]
    MissingValue(String),
    /// A `-x` option that dtrace(1) would refuse too: an unknown name or a malformed value.
    #[error("failed to set -x {name}: {why}")]
    CommandLine { name: String, why: String },
}

impl Options {
    /// The program's pragmas, then `overrides` (from -x), in order. Options the engine does
    /// not act on (the checker already knows every valid name) are accepted and ignored, as
    /// dtrace ignores options that do not apply to a platform.
    pub fn resolve(
        program: &Program,
        overrides: &[(String, Option<String>)],
    ) -> Result<Options, OptionError> {
        let mut options = Options::default();
        for item in &program.items {
            if let Item::Pragma(p) = item {
                options.set(&p.name, p.value.as_deref())?;
            }
        }
        for (name, value) in overrides {
            check_option(name, value.as_deref()).map_err(|why| OptionError::CommandLine {
                name: name.clone(),
                why,
            })?;
            options.set(name, value.as_deref())?;
        }
        Ok(options)
    }

    fn set(&mut self, name: &str, value: Option<&str>) -> Result<(), OptionError> {
        let need = || value.ok_or_else(|| OptionError::MissingValue(name.to_string()));
        match name {
            "zdefs" => self.zdefs = true,
            "quiet" => self.quiet = true,
            "destructive" => self.destructive = true,
            "specsize" => self.specsize = parse_size(name, need()?)?,
            "scratchsize" => self.scratchsize = parse_size(name, need()?)?,
            "nspec" => {
                let value = need()?;
                self.nspec = value.parse().map_err(|_| OptionError::BadValue {
                    name: name.into(),
                    value: value.into(),
                    what: "count",
                })?;
            }
            "strsize" => self.strsize = parse_size(name, need()?)?.max(2),
            "bufsize" => self.bufsize = parse_size(name, need()?)?,
            "dynvarsize" => self.dynvarsize = parse_size(name, need()?)?,
            "switchrate" => self.switchrate = parse_rate(name, need()?)?,
            "aggsortkey" => self.aggsort.by_key = true,
            "aggsortrev" => self.aggsort.reverse = true,
            "aggsortkeypos" => self.aggsort.key_pos = parse_count(name, need()?)?,
            "aggsortpos" => self.aggsortpos = parse_count(name, need()?)?,
            "cpu" => self.cpu = Some(parse_count(name, need()?)? as u32),
            "stackframes" => self.stackframes = parse_count(name, need()?)?,
            "ustackframes" => self.ustackframes = parse_count(name, need()?)?,
            "maxframes" => self.maxframes = parse_count(name, need()?)?,
            // Kernel aggregations are read when they are printed, so the rate is checked and
            // then has nothing to pace.
            "aggrate" => {
                parse_rate(name, need()?)?;
            }
            // The rest change nothing in the engine.
            _ => {}
        }
        Ok(())
    }
}

/// A position: a non-negative integer.
fn parse_count(name: &str, value: &str) -> Result<usize, OptionError> {
    value.parse().map_err(|_| OptionError::BadValue {
        name: name.to_string(),
        value: value.to_string(),
        what: "position (a non-negative integer)",
    })
}

/// `4m`, `512k`, `1g`, `256`.
pub(crate) fn parse_size(name: &str, value: &str) -> Result<usize, OptionError> {
    let bad = || OptionError::BadValue {
        name: name.into(),
        value: value.into(),
        what: "size (such as 256, 64k or 4m)",
    };
    let lower = value.to_ascii_lowercase();
    let (digits, shift) = match lower.as_bytes().last() {
        Some(b'k') => (&lower[..lower.len() - 1], 10),
        Some(b'm') => (&lower[..lower.len() - 1], 20),
        Some(b'g') => (&lower[..lower.len() - 1], 30),
        _ => (lower.as_str(), 0),
    };
    let n: usize = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).filter(|&n| n > 0).ok_or_else(bad)
}

/// `10hz`, `100ms`, `1s`, `50us`, `1000ns`, or a bare number of hertz.
fn parse_rate(name: &str, value: &str) -> Result<Duration, OptionError> {
    let bad = || OptionError::BadValue {
        name: name.into(),
        value: value.into(),
        what: "rate (such as 10hz, 100ms or 1s)",
    };
    let lower = value.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let n: u64 = lower[..split].parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(bad());
    }
    Ok(match &lower[split..] {
        "" | "hz" => Duration::from_nanos(1_000_000_000 / n),
        "s" | "sec" => Duration::from_secs(n),
        "ms" | "msec" => Duration::from_millis(n),
        "us" | "usec" => Duration::from_micros(n),
        "ns" | "nsec" => Duration::from_nanos(n),
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::linux::d::{compile, MacroArgs};

    fn resolve(src: &str, overrides: &[(&str, Option<&str>)]) -> Result<Options, OptionError> {
        let program = compile("t.d", src, &MacroArgs::default()).unwrap().program;
        let overrides: Vec<_> = overrides
            .iter()
            .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
            .collect();
        Options::resolve(&program, &overrides)
    }

    #[test]
    fn pragmas_then_command_line() {
        let o = resolve(
            "#pragma D option quiet\n#pragma D option strsize=1k\n#pragma D option switchrate=10hz\nBEGIN { exit(0); }",
            &[("strsize", Some("64"))],
        )
        .unwrap();
        assert_eq!(o.strsize, 64);
        assert_eq!(o.switchrate, Duration::from_millis(100));
    }

    #[test]
    fn stack_frame_options() {
        let o = resolve("BEGIN { exit(0); }", &[]).unwrap();
        assert_eq!((o.stackframes, o.ustackframes), (20, 100));
        assert!(o.maxframes > 0);
        let o = resolve(
            "#pragma D option maxframes=25\nBEGIN { exit(0); }",
            &[("stackframes", Some("5")), ("ustackframes", Some("7"))],
        )
        .unwrap();
        assert_eq!((o.stackframes, o.ustackframes, o.maxframes), (5, 7, 25));
    }

    #[test]
    fn unknown_command_line_options_are_named() {
        let err = resolve("BEGIN { exit(0); }", &[("bogusopt", Some("1"))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to set -x bogusopt: Invalid option name"
        );
        let err = resolve("BEGIN { exit(0); }", &[("bufsize", Some("lots"))]).unwrap_err();
        assert!(
            err.to_string().starts_with("failed to set -x bufsize: "),
            "{err}"
        );
        assert!(resolve("BEGIN { exit(0); }", &[("aggsortrev", None)]).is_ok());
    }

    #[test]
    fn sizes_and_rates() {
        assert_eq!(parse_size("bufsize", "16m"), Ok(16 << 20));
        assert!(parse_size("bufsize", "lots").is_err());
        assert_eq!(
            parse_rate("aggrate", "250ms"),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(
            parse_rate("switchrate", "4"),
            Ok(Duration::from_millis(250))
        );
        assert!(parse_rate("switchrate", "0hz").is_err());
        assert!(parse_rate("switchrate", "10parsecs").is_err());
    }
}
