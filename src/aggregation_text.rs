//! Aggregations printed exactly as dtrace(1) prints them (printa without a format, and the
//! automatic print at exit): keys in fixed-width columns, values right-aligned, and the
//! quantize family as ASCII distributions. Entries are sorted by value, ascending, as dtrace
//! sorts them by default.
//!
//! This text is part of D's semantics, not only a presentation: `printf("%@")` of a
//! distribution prints it inside the program's own output, so the Linux engine's executor
//! uses it as well as the presenters. It therefore sits beside the event model, which both
//! sides share, rather than in `output`.

use std::cmp::Ordering;
use std::fmt::Write as _;

use crate::event::{
    compare_values, llquantize_bounds, quantize_bucket_value, AggEntry, AggSnapshot, AggValue,
    ByteString, Value, QUANTIZE_BUCKETS, QUANTIZE_ZERO_BUCKET,
};

/// Width of a string key column (left-aligned) and of an integer column (right-aligned).
const STRING_WIDTH: usize = 50;
const INT_WIDTH: usize = 16;
/// Indent of stack frames, dtrace's default `stackindent`.
const STACK_INDENT: usize = 14;
/// Bars are this many characters long at 100%.
const BAR: usize = 40;
/// The bucket that holds zero in a quantize() array.
const ZERO_BUCKET: usize = QUANTIZE_ZERO_BUCKET;

/// The text dtrace(1) prints for `printa(@name)`: a blank line, then one entry per line (or
/// per block, for distributions).
pub fn render(snapshot: &AggSnapshot) -> String {
    format!("\n{}", render_entries(snapshot))
}

/// The text dtrace(1) prints at the end of a run for the aggregations not printed yet: one
/// blank line, then the entries of each, one aggregation after the other.
pub fn render_final(snapshots: &[AggSnapshot]) -> String {
    let mut out = String::from("\n");
    for snapshot in snapshots {
        out.push_str(&render_entries(snapshot));
    }
    out
}

/// The entries of one aggregation, sorted as dtrace sorts them.
fn render_entries(snapshot: &AggSnapshot) -> String {
    let mut entries: Vec<&AggEntry> = snapshot.entries.iter().collect();
    entries.sort_by(|a, b| {
        let nkeys = a.keys.len().min(b.keys.len());
        snapshot.sort.compare(
            nkeys,
            |i| compare_key(&a.keys[i], &b.keys[i]),
            || compare_values(&a.value, &b.value),
        )
    });
    let mut out = String::new();
    for entry in entries {
        for (i, key) in entry.keys.iter().enumerate() {
            let size = snapshot.key_sizes.get(i).copied().unwrap_or(8);
            write_key(&mut out, key, size);
        }
        write_value(&mut out, &entry.value);
        out.push('\n');
    }
    out
}

/// The column width dtrace(1) gives an integer of `size` bytes.
fn int_width(size: u8) -> usize {
    match size {
        1 => 3,
        2 => 5,
        4 => 8,
        _ => INT_WIDTH,
    }
}

fn write_key(out: &mut String, key: &Value, size: u8) {
    let width = int_width(size);
    match key {
        Value::Int(v) => {
            let _ = write!(out, " {v:>width$}");
        }
        Value::UInt(v) => {
            let _ = write!(out, " {v:>width$}");
        }
        // Traced strings and symbols are shown escaped, through ByteString's Display
        // (output::text).
        Value::Str(s) => {
            let _ = write!(out, "  {s:<STRING_WIDTH$}");
        }
        Value::Stack(frames) => {
            out.push('\n');
            for frame in frames {
                let frame = ByteString::from(frame.as_str());
                let _ = writeln!(out, "{:STACK_INDENT$}{frame}", "");
            }
        }
        Value::Bytes(bytes) => {
            for b in bytes {
                let _ = write!(out, " {b:02x}");
            }
        }
    }
}

fn write_value(out: &mut String, value: &AggValue) {
    match value {
        AggValue::Scalar(_) | AggValue::Avg { .. } | AggValue::Stddev { .. } => {
            let v = value.scalar().unwrap_or(0);
            let _ = write!(out, " {v:>INT_WIDTH$}");
        }
        AggValue::Quantize(counts) => write_quantize(out, counts),
        AggValue::Lquantize {
            base,
            step,
            levels,
            counts,
        } => write_lquantize(out, *base, *step, *levels, counts),
        AggValue::Llquantize {
            factor,
            low,
            high,
            nsteps,
            counts,
        } => write_llquantize(out, *factor, *low, *high, *nsteps, counts),
    }
}

/// The range of buckets dtrace shows: from one below the first non-empty bucket to one above
/// the last, or the three around `fallback` when all are empty.
fn shown_range(counts: &[i64], fallback: (usize, usize)) -> (usize, usize) {
    let Some(first) = counts.iter().position(|&c| c != 0) else {
        return fallback;
    };
    let last = counts.iter().rposition(|&c| c != 0).unwrap_or(first);
    (first.saturating_sub(1), (last + 1).min(counts.len() - 1))
}

fn distribution_header(out: &mut String) {
    let _ = writeln!(
        out,
        "\n{:>16} {:>41} {:<9}",
        "value", "------------- Distribution -------------", "count"
    );
}

/// One bar of a distribution: `|@@@@      count`, with dtrace's handling of negative counts.
fn write_bar(out: &mut String, count: i64, total: f64, positives: bool, negatives: bool) {
    let depth = |len: usize| {
        if total == 0.0 {
            0
        } else {
            ((count.unsigned_abs() as f64 * len as f64) / total + 0.5) as usize
        }
    };
    let ats = |n: usize| "@".repeat(n);
    let spaces = |n: usize| " ".repeat(n);
    if !negatives {
        let d = if positives { depth(BAR) } else { 0 };
        let _ = writeln!(out, "|{}{} {count:<9}", ats(d), spaces(BAR - d));
    } else if !positives {
        let d = depth(BAR);
        let _ = writeln!(out, "{}{}| {count:<9}", spaces(BAR - d), ats(d));
    } else {
        let half = BAR / 2;
        let d = depth(half);
        if count <= 0 {
            let _ = writeln!(
                out,
                "{}{}|{} {count:<9}",
                spaces(half - d),
                ats(d),
                spaces(half)
            );
        } else {
            let _ = writeln!(out, "{:20}|{}{} {count:<9}", "", ats(d), spaces(half - d));
        }
    }
}

/// Writes the rows `range` of a distribution whose row labels come from `label`.
fn write_rows(
    out: &mut String,
    counts: &[i64],
    range: (usize, usize),
    label: impl Fn(usize) -> String,
) {
    let rows = &counts[range.0..=range.1];
    let total: f64 = rows.iter().map(|c| c.unsigned_abs() as f64).sum();
    let positives = rows.iter().any(|&c| c > 0);
    let negatives = rows.iter().any(|&c| c < 0);
    distribution_header(out);
    for (i, &count) in rows.iter().enumerate() {
        let _ = write!(out, "{:>16} ", label(range.0 + i));
        write_bar(out, count, total, positives, negatives);
    }
}

fn write_quantize(out: &mut String, counts: &[i64]) {
    if counts.len() != QUANTIZE_BUCKETS {
        return;
    }
    let range = shown_range(counts, (ZERO_BUCKET - 1, ZERO_BUCKET + 1));
    write_rows(out, counts, range, |i| quantize_bucket_value(i).to_string());
}

fn write_lquantize(out: &mut String, base: i32, step: u16, levels: u16, counts: &[i64]) {
    let levels = usize::from(levels);
    if counts.len() != levels + 2 {
        return;
    }
    let range = shown_range(counts, (0, 2.min(levels + 1)));
    let step = i64::from(step);
    let base = i64::from(base);
    write_rows(out, counts, range, |i| match i {
        0 => format!("< {base}"),
        i if i == levels + 1 => format!(">= {}", base + levels as i64 * step),
        i => (base + (i as i64 - 1) * step).to_string(),
    });
}

fn write_llquantize(out: &mut String, factor: u16, low: u16, high: u16, nsteps: u16, c: &[i64]) {
    let (bounds, top) = llquantize_bounds(factor, low, high, nsteps);
    if c.len() != bounds.len() + 2 {
        return;
    }
    let first = bounds.first().copied().unwrap_or(1);
    let range = shown_range(c, (0, 1));
    write_rows(out, c, range, |i| match i {
        0 => format!("< {first}"),
        i if i == bounds.len() + 1 => format!(">= {top}"),
        i => bounds[i - 1].to_string(),
    });
}

fn compare_key(x: &Value, y: &Value) -> Ordering {
    match (x, y) {
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        _ => x.as_i64().cmp(&y.as_i64()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::AggFunc;

    fn snapshot(func: AggFunc, entries: Vec<(Vec<Value>, AggValue)>) -> AggSnapshot {
        AggSnapshot {
            name: "a".into(),
            func,
            key_sizes: Vec::new(),
            sort: crate::event::AggSort::default(),
            entries: entries
                .into_iter()
                .map(|(keys, value)| AggEntry { keys, value })
                .collect(),
        }
    }

    #[test]
    fn count_by_string_key_is_sorted_by_value() {
        let s = snapshot(
            AggFunc::Count,
            vec![
                (vec![Value::Str("sshd".into())], AggValue::Scalar(15)),
                (vec![Value::Str("utmpd".into())], AggValue::Scalar(2)),
            ],
        );
        let expected = format!(
            "\n  {:<50} {:>16}\n  {:<50} {:>16}\n",
            "utmpd", 2, "sshd", 15
        );
        assert_eq!(render(&s), expected);
    }

    #[test]
    fn the_snapshot_sort_orders_the_entries() {
        let mut s = snapshot(
            AggFunc::Count,
            vec![
                (vec![Value::Str("a".into())], AggValue::Scalar(15)),
                (vec![Value::Str("b".into())], AggValue::Scalar(2)),
            ],
        );
        s.sort = crate::event::AggSort {
            by_key: true,
            key_pos: 0,
            reverse: true,
        };
        let expected = format!("\n  {:<50} {:>16}\n  {:<50} {:>16}\n", "b", 2, "a", 15);
        assert_eq!(render(&s), expected);
    }

    #[test]
    fn integer_keys_are_as_wide_as_their_type() {
        let mut s = snapshot(
            AggFunc::Sum,
            vec![(vec![Value::Int(1), Value::Int(7)], AggValue::Scalar(10))],
        );
        s.key_sizes = vec![4, 8];
        assert_eq!(render(&s), format!("\n {:>8} {:>16} {:>16}\n", 1, 7, 10));
    }

    #[test]
    fn quantize_prints_like_dtrace() {
        let mut counts = vec![0; QUANTIZE_BUCKETS];
        counts[ZERO_BUCKET + 12] = 1; // 2048
        counts[ZERO_BUCKET + 13] = 100; // 4096
        let s = snapshot(
            AggFunc::Quantize,
            vec![(vec![], AggValue::Quantize(counts))],
        );
        let expected = "\n\n           value  ------------- Distribution ------------- count    \n\
             \x20           1024 |                                         0        \n\
             \x20           2048 |                                         1        \n\
             \x20           4096 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 100      \n\
             \x20           8192 |                                         0        \n\n";
        assert_eq!(render(&s), expected);
    }

    #[test]
    fn lquantize_labels_the_outer_buckets() {
        // lquantize(x, 0, 10, 5): levels 2, buckets <0, 0, 5, >=10.
        let s = snapshot(
            AggFunc::Lquantize,
            vec![(
                vec![],
                AggValue::Lquantize {
                    base: 0,
                    step: 5,
                    levels: 2,
                    counts: vec![0, 3, 0, 1],
                },
            )],
        );
        let text = render(&s);
        let labels: Vec<&str> = text
            .lines()
            .skip(3)
            .filter_map(|l| l.get(..16))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(labels, ["< 0", "0", "5", ">= 10"]);
        assert!(text.contains("|@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@           3        \n"));
    }

    #[test]
    fn llquantize_buckets_follow_orders_of_magnitude() {
        // llquantize(x, 10, 0, 1, 10): 1..9 by 1, then 10..90 by 10, then >= 100.
        let (bounds, top) = llquantize_bounds(10, 0, 1, 10);
        assert_eq!(
            bounds,
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 40, 50, 60, 70, 80, 90]
        );
        assert_eq!(top, 100);
    }

    #[test]
    fn avg_and_stddev() {
        let avg = AggValue::Avg {
            count: 4,
            total: 10,
        };
        let mut out = String::new();
        write_value(&mut out, &avg);
        assert_eq!(out, format!(" {:>16}", 2));
        // Values 2, 4, 4, 4, 5, 5, 7, 9: mean 5, stddev 2.
        let sd = AggValue::Stddev {
            count: 8,
            total: 40,
            total_squares: 232,
        };
        assert_eq!(sd.scalar(), Some(2));
        // libdtrace's integer formula: values 1 and 2 give sqrt(5/2 - 1*1) = 1.
        let two = AggValue::Stddev {
            count: 2,
            total: 3,
            total_squares: 5,
        };
        assert_eq!(two.scalar(), Some(1));
    }
}
