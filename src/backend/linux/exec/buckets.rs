//! The bucket layouts of quantize, lquantize and llquantize, as DTrace defines them: which
//! bucket a value falls in, and how many buckets an aggregation's parameters make.

use std::cmp::Ordering;

use crate::event::{llquantize_overflows, AggValue, QUANTIZE_BUCKETS};

/// Why an aggregating function's parameters cannot be used (DTrace rejects these when it
/// compiles the program).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadParameters(pub String);

pub fn arg(args: &[i64], i: usize) -> i64 {
    args.get(i).copied().unwrap_or(0)
}

/// lquantize(value, base, limit[, step]): the step is 1 when not given. DTrace packs base
/// in 32 bits and step and the number of levels in 16 bits each.
pub fn lquantize_layout(args: &[i64]) -> Result<AggValue, BadParameters> {
    let (base, limit) = (arg(args, 1), arg(args, 2));
    let step = args.get(3).copied().unwrap_or(1);
    let bad = |why: &str| Err(BadParameters(format!("lquantize(): {why}")));
    let Ok(base32) = i32::try_from(base) else {
        return bad("the lower bound does not fit in 32 bits");
    };
    let Ok(step16) = u16::try_from(step) else {
        return bad("the step must be from 1 to 65535");
    };
    if step16 == 0 || limit <= base {
        return bad("the step must be positive and the upper bound above the lower");
    }
    let Ok(levels) = u16::try_from((limit - base) / step) else {
        return bad("too many levels (at most 65535)");
    };
    if levels == 0 {
        return bad("the range is smaller than one step");
    }
    Ok(AggValue::Lquantize {
        base: base32,
        step: step16,
        levels,
        counts: vec![0; usize::from(levels) + 2],
    })
}

/// llquantize(value, factor, low, high, nsteps), with DTrace's requirements on them.
pub fn llquantize_layout(args: &[i64]) -> Result<AggValue, BadParameters> {
    let part = |i| u16::try_from(arg(args, i)).ok();
    let (Some(factor), Some(low), Some(high), Some(nsteps)) = (part(1), part(2), part(3), part(4))
    else {
        return Err(BadParameters(
            "llquantize(): parameters must be from 0 to 65535".into(),
        ));
    };
    if factor < 2
        || high <= low
        || nsteps < factor
        || nsteps % factor != 0
        || llquantize_overflows(factor.into(), high.into())
    {
        return Err(BadParameters(
            "llquantize(): needs factor >= 2, low < high, nsteps a multiple of factor, \
             and factor^(high+1) within 64 bits"
                .into(),
        ));
    }
    let top = llquantize_bucket(factor, low, high, nsteps, i64::MAX);
    Ok(AggValue::Llquantize {
        factor,
        low,
        high,
        nsteps,
        counts: vec![0; top + 1],
    })
}

/// quantize(): bucket 63 holds 0; 64 + k holds [2^k, 2^(k+1)); 62 - k holds
/// (-2^(k+1), -2^k]. The outermost buckets take everything beyond them.
pub fn quantize_bucket(v: i64) -> usize {
    const ZERO: usize = QUANTIZE_BUCKETS / 2;
    match v.cmp(&0) {
        Ordering::Equal => ZERO,
        Ordering::Greater => ZERO + 1 + v.ilog2() as usize,
        Ordering::Less => ZERO.saturating_sub(1 + v.unsigned_abs().ilog2() as usize),
    }
}

/// lquantize(): the value is taken as a 32-bit integer, as DTrace does.
pub fn lquantize_bucket(base: i32, step: u16, levels: u16, v: i64) -> usize {
    let v = i64::from(v as i32);
    let base = i64::from(base);
    if v < base {
        return 0;
    }
    let level = (v - base) / i64::from(step.max(1));
    if level < i64::from(levels) {
        level as usize + 1
    } else {
        usize::from(levels) + 1
    }
}

/// llquantize(): bucket 0 is below factor^low; each order of magnitude from low to high
/// has nsteps buckets (fewer while factor^order is smaller than nsteps), less those the
/// previous order already covers; the last bucket is at or above factor^(high+1).
pub fn llquantize_bucket(factor: u16, low: u16, high: u16, nsteps: u16, value: i64) -> usize {
    let factor = i64::from(factor);
    let nsteps = i64::from(nsteps);
    let mut this: i64 = 1;
    for _ in 0..low {
        this = this.saturating_mul(factor);
    }
    if value < this {
        return 0;
    }
    let mut last = this;
    this = this.saturating_mul(factor);
    let mut base: i64 = 1;
    let mut value = value;
    for _ in low..=high {
        let nbuckets = this.min(nsteps);
        let next = this.checked_mul(factor);
        if next.is_none() {
            value = value.min(this - 1);
        }
        if value < this {
            return (base + (value - last) / (this / nbuckets).max(1)) as usize;
        }
        base += nbuckets - nbuckets / factor;
        last = this;
        this = next.unwrap_or(i64::MAX);
    }
    base as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_buckets_match_dtrace() {
        assert_eq!(quantize_bucket(0), 63);
        assert_eq!(quantize_bucket(1), 64);
        assert_eq!(quantize_bucket(2), 65);
        assert_eq!(quantize_bucket(3), 65);
        assert_eq!(quantize_bucket(1024), 74);
        assert_eq!(quantize_bucket(-1), 62);
        assert_eq!(quantize_bucket(-5), 60);
        assert_eq!(quantize_bucket(i64::MAX), 126);
        assert_eq!(quantize_bucket(i64::MIN), 0);
        assert_eq!(quantize_bucket(-(1 << 62)), 0);
    }

    #[test]
    fn lquantize_edges() {
        // lquantize(v, 0, 100, 10): 10 levels; buckets <0, [0,10), …, [90,100), >=100.
        assert_eq!(lquantize_bucket(0, 10, 10, -1), 0);
        assert_eq!(lquantize_bucket(0, 10, 10, 0), 1);
        assert_eq!(lquantize_bucket(0, 10, 10, 9), 1);
        assert_eq!(lquantize_bucket(0, 10, 10, 10), 2);
        assert_eq!(lquantize_bucket(0, 10, 10, 99), 10);
        assert_eq!(lquantize_bucket(0, 10, 10, 100), 11);
        // The value is taken as 32 bits: 2^32 + 5 is 5.
        assert_eq!(lquantize_bucket(0, 10, 10, (1 << 32) + 5), 1);
    }

    #[test]
    fn llquantize_buckets() {
        // factor 10, magnitudes 0..=1, 10 steps: <1, 1..9, 10..90 by 10, >=100.
        let b = |v| llquantize_bucket(10, 0, 1, 10, v);
        assert_eq!(b(0), 0);
        assert_eq!(b(1), 1);
        assert_eq!(b(9), 9);
        assert_eq!(b(10), 10);
        assert_eq!(b(19), 10);
        assert_eq!(b(20), 11);
        assert_eq!(b(99), 18);
        assert_eq!(b(100), 19);
        assert_eq!(b(i64::MAX), 19);
        // factor 2, magnitudes 0..=1, 4 steps: <1, 1, 2, 3, >=4.
        let b = |v| llquantize_bucket(2, 0, 1, 4, v);
        assert_eq!([b(0), b(1), b(2), b(3), b(4), b(400)], [0, 1, 2, 3, 4, 4]);
    }
}
