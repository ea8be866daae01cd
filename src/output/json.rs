//! The JSON form of what D produces: aggregation values (numbers, and the quantize family as
//! bucket arrays with their bounds), whole aggregations, and the origin of a record. `dtk run
//! -o json` and `dtk syscalls -o json --hist` share it, so that an aggregation reads the same
//! wherever it appears. The schema of every line is documented in README.md ("JSON output").

use serde_json::{json, Map, Value as Json};

use crate::event::{
    llquantize_bounds, quantize_bucket_value, AggSnapshot, AggValue, Origin, QUANTIZE_BUCKETS,
    QUANTIZE_ZERO_BUCKET,
};

/// One bucket of a distribution: the values from `min` to `max` (both included) were seen
/// `count` times. The outermost buckets reach i64's limits.
fn bucket(min: i64, max: i64, count: i64) -> Json {
    json!({ "min": min, "max": max, "count": count })
}

/// The non-empty buckets of `counts`, whose bucket `i` holds the values from `bounds(i)`.
fn buckets(counts: &[i64], bounds: impl Fn(usize) -> (i64, i64)) -> Json {
    counts
        .iter()
        .enumerate()
        .filter(|(_, &n)| n != 0)
        .map(|(i, &n)| {
            let (min, max) = bounds(i);
            bucket(min, max, n)
        })
        .collect()
}

/// The values that quantize() bucket `i` holds: [2^k, 2^(k+1)) above zero, (-2^(k+1), -2^k]
/// below it.
fn quantize_bounds(i: usize) -> (i64, i64) {
    match i {
        _ if i == QUANTIZE_ZERO_BUCKET => (0, 0),
        _ if i > QUANTIZE_ZERO_BUCKET => {
            let max = match i + 1 {
                next if next < QUANTIZE_BUCKETS => quantize_bucket_value(next) - 1,
                _ => i64::MAX,
            };
            (quantize_bucket_value(i), max)
        }
        0 => (i64::MIN, quantize_bucket_value(0)),
        _ => (quantize_bucket_value(i - 1) + 1, quantize_bucket_value(i)),
    }
}

/// The fields of one aggregation value: `value` for count, sum, min, max, avg and stddev
/// (avg and stddev also with the `count` of values and their `total`); for the quantize
/// family, the parameters and the non-empty `buckets`.
pub fn value_fields(value: &AggValue) -> Map<String, Json> {
    let fields = match value {
        AggValue::Scalar(v) => json!({ "value": v }),
        AggValue::Avg { count, total } | AggValue::Stddev { count, total, .. } => {
            json!({ "value": value.scalar(), "count": count, "total": total })
        }
        AggValue::Quantize(counts) => json!({ "buckets": buckets(counts, quantize_bounds) }),
        AggValue::Lquantize {
            base,
            step,
            levels,
            counts,
        } => {
            let (base, step) = (i64::from(*base), i64::from(*step));
            let limit = base + i64::from(*levels) * step;
            let last = usize::from(*levels) + 1;
            let bounds = |i: usize| match i {
                0 => (i64::MIN, base - 1),
                i if i == last => (limit, i64::MAX),
                i => {
                    let min = base + (i as i64 - 1) * step;
                    (min, min + step - 1)
                }
            };
            json!({ "base": base, "limit": limit, "step": step, "buckets": buckets(counts, bounds) })
        }
        AggValue::Llquantize {
            factor,
            low,
            high,
            nsteps,
            counts,
        } => {
            let (starts, top) = llquantize_bounds(*factor, *low, *high, *nsteps);
            let first = starts.first().copied().unwrap_or(top);
            let bounds = |i: usize| match i {
                0 => (i64::MIN, first - 1),
                i if i > starts.len() => (top, i64::MAX),
                i => (starts[i - 1], starts.get(i).copied().unwrap_or(top) - 1),
            };
            json!({
                "factor": factor, "low": low, "high": high, "nsteps": nsteps,
                "buckets": buckets(counts, bounds),
            })
        }
    };
    match fields {
        Json::Object(map) => map,
        _ => Map::new(),
    }
}

/// A whole aggregation: `{"type":"aggregation", "name", "function", "final", "entries":
/// [{"keys":[…], …value_fields}]}`. `final` is true for the print at the end of the run,
/// false for printa().
pub fn aggregation(snapshot: &AggSnapshot, is_final: bool) -> Json {
    let entries: Vec<Json> = snapshot
        .entries
        .iter()
        .map(|e| {
            let mut fields = Map::new();
            fields.insert("keys".into(), json!(e.keys));
            fields.extend(value_fields(&e.value));
            Json::Object(fields)
        })
        .collect();
    json!({
        "type": "aggregation",
        "name": snapshot.name,
        "function": snapshot.func,
        "final": is_final,
        "entries": entries,
    })
}

/// The fields that say where a record came from: the probe, the CPU and the time.
pub fn origin_fields(origin: &Origin) -> Map<String, Json> {
    let mut fields = Map::new();
    fields.insert("probe".into(), json!(*origin.probe));
    fields.insert("cpu".into(), json!(origin.cpu));
    fields.insert("ts_ns".into(), json!(origin.ts_ns));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::QUANTIZE_BUCKETS;

    /// The bucket bounds of `value`, as (min, max, count).
    fn bounds_of(value: &AggValue) -> Vec<(i64, i64, i64)> {
        value_fields(value)["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let n = |k: &str| b[k].as_i64().unwrap();
                (n("min"), n("max"), n("count"))
            })
            .collect()
    }

    #[test]
    fn quantize_buckets_cover_every_value_once() {
        let all = AggValue::Quantize(vec![1; QUANTIZE_BUCKETS]);
        let buckets = bounds_of(&all);
        assert_eq!(buckets.len(), QUANTIZE_BUCKETS);
        assert_eq!(buckets[0].0, i64::MIN);
        assert_eq!(buckets[QUANTIZE_BUCKETS - 1].1, i64::MAX);
        for pair in buckets.windows(2) {
            assert_eq!(pair[0].1 + 1, pair[1].0, "{pair:?}");
        }
        let mut counts = vec![0; QUANTIZE_BUCKETS];
        counts[QUANTIZE_ZERO_BUCKET + 3] = 5; // 4..=7
        counts[QUANTIZE_ZERO_BUCKET - 2] = 2; // -3..=-2
        counts[QUANTIZE_ZERO_BUCKET] = 1;
        assert_eq!(
            bounds_of(&AggValue::Quantize(counts)),
            [(-3, -2, 2), (0, 0, 1), (4, 7, 5)]
        );
    }

    #[test]
    fn lquantize_buckets_have_their_ranges() {
        let value = AggValue::Lquantize {
            base: 0,
            step: 10,
            levels: 3,
            counts: vec![1, 2, 0, 3, 4],
        };
        assert_eq!(
            bounds_of(&value),
            [(i64::MIN, -1, 1), (0, 9, 2), (20, 29, 3), (30, i64::MAX, 4)]
        );
        assert_eq!(value_fields(&value)["limit"], 30);
    }

    #[test]
    fn llquantize_buckets_follow_the_orders_of_magnitude() {
        // factor 10, orders 0 and 1, 10 steps: 1..9 by 1, then 10..90 by 10.
        let (starts, top) = llquantize_bounds(10, 0, 1, 10);
        let mut counts = vec![1; starts.len() + 2];
        counts[2] = 0;
        let buckets = bounds_of(&AggValue::Llquantize {
            factor: 10,
            low: 0,
            high: 1,
            nsteps: 10,
            counts,
        });
        assert_eq!(buckets[0], (i64::MIN, 0, 1));
        assert_eq!(buckets[1], (1, 1, 1));
        assert_eq!(buckets[2], (3, 3, 1), "the empty bucket of 2 is left out");
        assert_eq!(*buckets.last().unwrap(), (top, i64::MAX, 1));
        for pair in buckets[2..].windows(2) {
            assert_eq!(pair[0].1 + 1, pair[1].0, "{pair:?}");
        }
    }

    #[test]
    fn averages_carry_their_count_and_total() {
        let f = value_fields(&AggValue::Avg {
            count: 4,
            total: 10,
        });
        assert_eq!(
            (&f["value"], &f["count"], &f["total"]),
            (&json!(2), &json!(4), &json!(10))
        );
    }
}
