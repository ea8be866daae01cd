//! The event model: what a back end delivers and a presenter consumes.
//!
//! Both back ends (libdtrace and the Linux engine) translate what their probes produce into
//! these types, so that commands never see FFI structures or BPF maps. A back end never
//! formats output for a person; the one exception is `Printf::text`, because D's `printf` is
//! itself a formatting action whose result is part of the program's semantics.

use std::cmp::Ordering;
use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

use serde::Serialize;

/// A fully specified probe, `provider:module:function:name` (shown escaped: see
/// `output::text`, as a USDT or pid probe takes its names from the traced binary).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct ProbeDesc {
    pub provider: String,
    pub module: String,
    pub function: String,
    pub name: String,
}

/// A string as a traced program gave it: bytes, most often but not always UTF-8 (a file name or
/// a process name may hold any byte but NUL). How it is shown is output's business
/// (`output::text`): `Display` escapes control characters and invalid UTF-8, so that no
/// presenter can print traced bytes raw by accident, and JSON gets a string when it is UTF-8
/// and `{"bytes":"<base64>"}` when it is not, so that it keeps the exact bytes.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteString(Vec<u8>);

impl ByteString {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The text, when it is valid UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The text with invalid UTF-8 replaced by U+FFFD, for matching against a pattern.
    pub fn to_str_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
}

impl Deref for ByteString {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for ByteString {
    fn from(bytes: Vec<u8>) -> ByteString {
        ByteString(bytes)
    }
}

impl From<&[u8]> for ByteString {
    fn from(bytes: &[u8]) -> ByteString {
        ByteString(bytes.to_vec())
    }
}

impl From<String> for ByteString {
    fn from(s: String) -> ByteString {
        ByteString(s.into_bytes())
    }
}

impl From<&str> for ByteString {
    fn from(s: &str) -> ByteString {
        ByteString(s.as_bytes().to_vec())
    }
}

impl PartialEq<str> for ByteString {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for ByteString {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<String> for ByteString {
    fn eq(&self, other: &String) -> bool {
        self.0 == other.as_bytes()
    }
}

impl AsRef<[u8]> for ByteString {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ByteString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl ProbeDesc {
    /// The header of a `dtrace -l`-style listing ([`ProbeDesc::listing_line`]).
    pub fn listing_header() -> String {
        format!(
            "{:>5} {:>10} {:>20} {:>32} NAME",
            "ID", "PROVIDER", "MODULE", "FUNCTION"
        )
    }

    /// This probe's line in a `dtrace -l`-style listing, numbered `id`: ID PROVIDER MODULE
    /// FUNCTION NAME in right-aligned columns.
    /// The names are escaped as traced strings are (they may come from the traced binary).
    pub fn listing_line(&self, id: usize) -> String {
        let e = |s: &str| ByteString::from(s);
        format!(
            "{id:>5} {:>10} {:>20} {:>32} {}",
            e(&self.provider),
            e(&self.module),
            e(&self.function),
            e(&self.name)
        )
    }
}

/// One value traced by a D action.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Int(i64),
    UInt(u64),
    Str(ByteString),
    /// Symbolised frames of `stack()` or `ustack()`, innermost first.
    Stack(Vec<String>),
    /// Raw memory, as traced by `trace(*ptr)` of a non-scalar or by `copyin`.
    Bytes(Vec<u8>),
}

impl Value {
    /// The value as a signed integer, when it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(v) => Some(v),
            Value::UInt(v) => Some(v as i64),
            _ => None,
        }
    }

    /// The value as a string, when it is one.
    pub fn as_text(&self) -> Option<&ByteString> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Where a record came from: the probe that fired, on which CPU, and when.
#[derive(Clone, Debug, PartialEq)]
pub struct Origin {
    pub probe: Arc<ProbeDesc>,
    pub cpu: u32,
    /// Nanoseconds on the back end's monotonic clock (D's `timestamp`).
    pub ts_ns: u64,
}

/// The data recorded by one clause for one firing of its probe (`trace()` and friends).
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub origin: Origin,
    pub values: Vec<Value>,
    /// How dtrace(1) shows each value; shorter than `values` when the back end does not say
    /// (a value is then shown by its own kind, an integer as 8 bytes).
    pub formats: Vec<TraceFormat>,
}

/// What decides how dtrace(1) shows one value of a trace() record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFormat {
    /// An integer (or pointer) of this many bytes: its column's width depends on it.
    Int(u8),
    /// A string the D program itself wrote (a constant): shown as is, while a string from
    /// the traced system has its control characters escaped.
    ProgramText,
    /// Anything else: strings from the traced system, stacks, memory.
    Other,
}

/// The output of one `printf()` action: the formatted text, and the arguments it was made of,
/// so that a command can read fields without parsing text.
#[derive(Clone, Debug, PartialEq)]
pub struct Printf {
    pub origin: Origin,
    /// The exact bytes printf produced.
    pub text: ByteString,
    /// The byte ranges of `text` that conversions produced from traced values (sorted, not
    /// overlapping); the rest is the format's own text. Text output escapes only these.
    pub traced: Vec<Range<usize>>,
    pub args: Vec<Value>,
    /// For one row of `printa(format, @a, …)`: what it was made of, where the back end
    /// knows it. None for printf().
    pub printa: Option<PrintaRow>,
}

/// One row of `printa(format, @a, @b, …)`: the aggregations named, the row's keys, and each
/// aggregation's value for them (the distributions too, which a printf argument cannot be).
#[derive(Clone, Debug, PartialEq)]
pub struct PrintaRow {
    pub aggregations: Vec<String>,
    pub keys: Vec<Value>,
    pub values: Vec<AggValue>,
}

impl Printf {
    /// Where the string arguments lie in a text formatted by someone else (libdtrace prints
    /// its printf itself and hands over only the result): each string is looked for after
    /// the previous one, as printf writes its arguments in order. A string the format cut
    /// (`%.3s`) is not found and stays unmarked, so its bytes are shown as libdtrace wrote them.
    pub fn locate_traced(text: &[u8], args: &[Value]) -> Vec<Range<usize>> {
        let mut ranges = Vec::new();
        let mut from = 0;
        for s in args.iter().filter_map(Value::as_text) {
            if s.is_empty() {
                continue;
            }
            let found = text[from..]
                .windows(s.len())
                .position(|w| w == s.as_bytes());
            if let Some(at) = found {
                ranges.push(from + at..from + at + s.len());
                from += at + s.len();
            }
        }
        ranges
    }
}

/// Which aggregating function produced an aggregation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AggFunc {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    Stddev,
    Quantize,
    Lquantize,
    Llquantize,
}

/// The value of one aggregation entry. Bucket arrays are laid out as DTrace lays them out, so
/// that both back ends fill them the same way and they print exactly as dtrace(1) prints them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AggValue {
    /// count, sum, min and max.
    Scalar(i64),
    Avg {
        count: i64,
        total: i64,
    },
    Stddev {
        count: i64,
        total: i64,
        total_squares: u128,
    },
    /// quantize: [`QUANTIZE_BUCKETS`] counts; bucket 63 holds 0, bucket 64 + k values in
    /// [2^k, 2^(k+1)), bucket 62 - k values in (-2^(k+1), -2^k].
    Quantize(Vec<i64>),
    /// lquantize(value, base, limit, step): `levels + 2` counts, the first for values below
    /// base and the last for values at or above base + levels * step.
    Lquantize {
        base: i32,
        step: u16,
        levels: u16,
        counts: Vec<i64>,
    },
    /// llquantize(value, factor, low, high, nsteps): one count below factor^low, then nsteps
    /// buckets per order of magnitude, then one at or above factor^(high+1).
    Llquantize {
        factor: u16,
        low: u16,
        high: u16,
        nsteps: u16,
        counts: Vec<i64>,
    },
}

impl AggValue {
    /// The single number of count, sum, min, max, avg and stddev, as dtrace(1) prints it:
    /// avg and stddev in integers, as libdtrace computes them (stddev: the square root of the
    /// truncated mean of the squares less the square of the truncated mean). None for the
    /// distributions.
    pub fn scalar(&self) -> Option<i64> {
        match *self {
            AggValue::Scalar(v) => Some(v),
            AggValue::Avg { count, total } => Some(if count == 0 { 0 } else { total / count }),
            AggValue::Stddev {
                count,
                total,
                total_squares,
            } => {
                if count <= 0 {
                    return Some(0);
                }
                let mean_of_squares = total_squares / count as u128;
                let mean = u128::from((total / count).unsigned_abs());
                Some(mean_of_squares.saturating_sub(mean * mean).isqrt() as i64)
            }
            _ => None,
        }
    }
}

/// Number of buckets of a quantize() aggregation.
pub const QUANTIZE_BUCKETS: usize = 127;
/// The quantize() bucket that holds 0.
pub const QUANTIZE_ZERO_BUCKET: usize = QUANTIZE_BUCKETS / 2;

/// The lower bound of quantize() bucket `i`.
pub fn quantize_bucket_value(i: usize) -> i64 {
    match i.cmp(&QUANTIZE_ZERO_BUCKET) {
        Ordering::Equal => 0,
        Ordering::Greater => 1i64 << (i - QUANTIZE_ZERO_BUCKET - 1),
        Ordering::Less => -(1i64 << (QUANTIZE_ZERO_BUCKET - i - 1)),
    }
}

/// Whether factor^(high + 1) exceeds 64 bits, which dtrace refuses (D_LLQUANT_HMAGVAL).
pub fn llquantize_overflows(factor: i64, high: i64) -> bool {
    let (Ok(factor), Ok(high)) = (u64::try_from(factor), u32::try_from(high)) else {
        return false;
    };
    high.checked_add(1)
        .and_then(|n| factor.checked_pow(n))
        .is_none()
}

/// The lower bounds of llquantize()'s buckets after the first ("< factor^low") one, and the
/// value that the last (">=") bucket starts at.
pub fn llquantize_bounds(factor: u16, low: u16, high: u16, nsteps: u16) -> (Vec<i64>, i64) {
    let factor = i64::from(factor);
    let nsteps = i64::from(nsteps);
    let mut value: i64 = 1;
    for _ in 0..low {
        value = value.saturating_mul(factor);
    }
    let mut bounds = Vec::new();
    let mut next = value.saturating_mul(factor);
    let mut step = if next > nsteps { next / nsteps } else { 1 };
    let mut order = low;
    while order <= high && step > 0 {
        bounds.push(value);
        value = value.saturating_add(step);
        if value >= next {
            value = next;
            next = value.saturating_mul(factor);
            step = if next > nsteps { next / nsteps } else { 1 };
            order += 1;
        }
    }
    (bounds, value)
}

/// The sort weight of a distribution: the sum of each bucket's value times its count.
fn distribution_weight(value: &AggValue) -> f64 {
    match value {
        AggValue::Quantize(c) => c
            .iter()
            .enumerate()
            .map(|(i, &n)| quantize_bucket_value(i) as f64 * n as f64)
            .sum(),
        AggValue::Lquantize {
            base, step, counts, ..
        } => counts
            .iter()
            .enumerate()
            .map(|(i, &n)| (f64::from(*base) + (i as f64 - 1.0) * f64::from(*step)) * n as f64)
            .sum(),
        AggValue::Llquantize {
            factor,
            low,
            high,
            nsteps,
            counts,
        } => {
            let (bounds, top) = llquantize_bounds(*factor, *low, *high, *nsteps);
            counts
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    let v = match i {
                        0 => 0,
                        i => bounds.get(i - 1).copied().unwrap_or(top),
                    };
                    v as f64 * n as f64
                })
                .sum()
        }
        _ => 0.0,
    }
}

/// dtrace's order of aggregation values, used to sort printed entries and by trunc(): by
/// value, by average, by standard deviation, and distributions by the sum of each bucket's
/// value times its count.
pub fn compare_values(a: &AggValue, b: &AggValue) -> Ordering {
    match (a, b) {
        (AggValue::Scalar(x), AggValue::Scalar(y)) => x.cmp(y),
        (AggValue::Avg { .. }, AggValue::Avg { .. }) => {
            let avg = |v: &AggValue| match *v {
                AggValue::Avg { count, total } if count != 0 => total as f64 / count as f64,
                _ => 0.0,
            };
            avg(a).total_cmp(&avg(b))
        }
        (AggValue::Stddev { .. }, AggValue::Stddev { .. }) => a.scalar().cmp(&b.scalar()),
        _ => distribution_weight(a).total_cmp(&distribution_weight(b)),
    }
}

/// One entry of an aggregation: its keys and its value.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AggEntry {
    pub keys: Vec<Value>,
    pub value: AggValue,
}

/// How an aggregation's entries are ordered when printed: dtrace's options `aggsortkey`
/// (by key, then value; the default is by value, then key), `aggsortkeypos` (the key
/// compared first; the others follow in order, wrapping around) and `aggsortrev` (reversed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AggSort {
    pub by_key: bool,
    pub key_pos: usize,
    pub reverse: bool,
}

impl AggSort {
    /// The order of two entries with `nkeys` keys, given how key `i` of each compares and
    /// how their values compare.
    pub fn compare(
        &self,
        nkeys: usize,
        key: impl Fn(usize) -> Ordering,
        value: impl FnOnce() -> Ordering,
    ) -> Ordering {
        let first = if self.key_pos < nkeys {
            self.key_pos
        } else {
            0
        };
        let keys = || {
            (0..nkeys)
                .map(|i| key((first + i) % nkeys))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        };
        let ord = if self.by_key {
            keys().then_with(value)
        } else {
            value().then_with(keys)
        };
        if self.reverse {
            ord.reverse()
        } else {
            ord
        }
    }
}

/// A snapshot of one aggregation, taken at print time (printa, END, exit or interval).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AggSnapshot {
    pub name: String,
    pub func: AggFunc,
    pub entries: Vec<AggEntry>,
    /// The order to print the entries in.
    #[serde(skip)]
    pub sort: AggSort,
    /// The size in bytes of each key as the program typed it (1, 2, 4 or 8 for integers, 0
    /// otherwise), where the back end knows it: dtrace(1) prints an integer key in a column
    /// as wide as its type (`@[pid]` is narrower than `@[timestamp]`). Empty: 8 bytes.
    #[serde(skip)]
    pub key_sizes: Vec<u8>,
}

/// What kind of data was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropKind {
    /// Principal buffer or ring buffer full.
    Buffer,
    /// Aggregation buffer full.
    Aggregation,
    /// Dynamic variable space (thread-locals, associative arrays) exhausted.
    Dynamic,
    /// Speculation buffers.
    Speculation,
    /// Strings cut at strsize.
    TruncatedString,
    /// Recorded before a stop, but still unread when the time a stop may take ran out: the
    /// reader was behind a target that traces faster than it prints.
    Unshown,
    /// Processes of a followed tree not followed: the kernel's followed set was full.
    Unfollowed,
}

impl fmt::Display for DropKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropKind::Buffer => "events dropped (buffer full)",
            DropKind::Aggregation => "aggregation drops",
            DropKind::Dynamic => "dynamic variable drops",
            DropKind::Speculation => "speculation drops",
            DropKind::TruncatedString => "strings truncated at strsize",
            DropKind::Unshown => "events recorded before the stop not shown (dtk was behind)",
            DropKind::Unfollowed => "processes not followed (followed set full)",
        })
    }
}

impl DropKind {
    /// What dtrace(1) calls `count` of these (`1 dynamic variable drop`, `3 aggregation
    /// drops`) and the tag `-x droptags` shows (DTRACEDROP_*); None for the kinds that are
    /// dtk's own. dtrace adds `on CPU N` to buffer drops, which dtk does not count per CPU.
    pub fn dtrace_words(&self, count: u64) -> Option<(&'static str, String)> {
        let (tag, what) = match self {
            DropKind::Buffer => ("DTRACEDROP_PRINCIPAL", "drop"),
            DropKind::Aggregation => ("DTRACEDROP_AGGREGATION", "aggregation drop"),
            DropKind::Dynamic => ("DTRACEDROP_DYNAMIC", "dynamic variable drop"),
            DropKind::Speculation => ("DTRACEDROP_SPEC", "speculative drop"),
            DropKind::TruncatedString | DropKind::Unshown | DropKind::Unfollowed => return None,
        };
        let plural = if count == 1 { "" } else { "s" };
        Some((tag, format!("{count} {what}{plural}")))
    }
}

/// How a traced process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetStatus {
    /// It exited with this status (`exit(3)`, or returning from main).
    Exited(i32),
    /// This signal killed it.
    Killed(i32),
}

impl TargetStatus {
    /// Decodes a status as wait(2) reports it.
    pub fn from_wait_status(status: i32) -> TargetStatus {
        if libc::WIFSIGNALED(status) {
            TargetStatus::Killed(libc::WTERMSIG(status))
        } else {
            TargetStatus::Exited(libc::WEXITSTATUS(status))
        }
    }
}

/// The end of the traced process (-p or -c).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetExit {
    pub pid: u32,
    /// How it ended, when that could be learnt (see `backend::linux::target`).
    pub status: Option<TargetStatus>,
}

/// `pid 42 exited (status 3)`, `pid 42 killed by signal 9 (SIGKILL)`, or `pid 42 exited`
/// when its status is not known.
impl fmt::Display for TargetExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pid = self.pid;
        match self.status {
            Some(TargetStatus::Exited(code)) => write!(f, "pid {pid} exited (status {code})"),
            Some(TargetStatus::Killed(signal)) => {
                write!(f, "pid {pid} killed by signal {signal}")?;
                match nix::sys::signal::Signal::try_from(signal) {
                    Ok(name) => write!(f, " ({name})"),
                    Err(_) => Ok(()),
                }
            }
            None => write!(f, "pid {pid} exited"),
        }
    }
}

/// Everything a back end can tell a presenter.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A clause of a program that is not quiet starts its output for one firing: dtrace(1)
    /// prints the probe's CPU, ID and FUNCTION:NAME, then what the clause records on the same
    /// line, until `FiringEnd`. `probe_id` numbers the probe as `dtk run -l` does.
    FiringStart {
        origin: Origin,
        probe_id: u32,
    },
    /// The end of what a clause recorded for the firing `FiringStart` began.
    FiringEnd,
    Record(Record),
    Printf(Printf),
    /// printa(@a) without a format.
    Agg(AggSnapshot),
    /// The print at the end of the run: every aggregation that has data and was not printed
    /// by printa in END, in program order. dtrace(1) prints one blank line and then their
    /// entries one after the other.
    FinalAggs(Vec<AggSnapshot>),
    Drop {
        kind: DropKind,
        count: u64,
        /// The probe whose data was lost, where the back end tells them apart (the Linux
        /// engine's ring buffer counts lost records per probe).
        probe: Option<Arc<ProbeDesc>>,
    },
    /// A run-time error in a clause (DTrace's ERROR probe).
    Error {
        probe: Option<Arc<ProbeDesc>>,
        msg: String,
    },
    /// The traced process (-p or -c) has exited; tracing ends after this.
    TargetExited(TargetExit),
    /// The run is over: exit() was called, the target exited, or the user interrupted.
    Done,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_worded_as_dtrace_words_them() {
        assert_eq!(
            DropKind::Dynamic.dtrace_words(1),
            Some(("DTRACEDROP_DYNAMIC", "1 dynamic variable drop".to_string()))
        );
        assert_eq!(
            DropKind::Aggregation.dtrace_words(3),
            Some(("DTRACEDROP_AGGREGATION", "3 aggregation drops".to_string()))
        );
        assert_eq!(DropKind::Buffer.dtrace_words(2).unwrap().1, "2 drops");
        assert_eq!(DropKind::Unshown.dtrace_words(2), None);
    }

    #[test]
    fn traced_strings_are_found_in_a_finished_text_in_order() {
        let args = [
            Value::Str("x".into()),
            Value::Int(7),
            Value::Str("a\nb".into()),
            Value::Str("missing".into()),
        ];
        let text = b"x: fix 7 a\nb\n";
        assert_eq!(Printf::locate_traced(text, &args), [0..1, 9..12]);
    }
}
