//! Aggregations: the aggregating functions with DTrace's exact semantics (bucket layouts of
//! quantize, lquantize and llquantize as libdtrace lays them out), and the operations the
//! actions apply to a whole aggregation (clear, trunc, normalize).
//!
//! Entries keep their first-insertion order; the presenter sorts them when it prints a
//! snapshot, and printa with a format sorts its rows itself (`rows`).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use super::buckets::{
    arg, llquantize_bucket, llquantize_layout, lquantize_bucket, lquantize_layout, quantize_bucket,
    BadParameters,
};
use super::value::Frames;
use crate::event::{
    self, compare_values, AggEntry, AggFunc, AggSnapshot, AggSort, AggValue, QUANTIZE_BUCKETS,
};

/// One part of a key tuple, hashable (event values are not). An integer key is the same
/// key whether it came from a signed or an unsigned expression: DTrace compares keys by
/// their bits, so `a[pid]` and `a[(uint64_t)pid]` name one element. The sign only decides
/// how the key prints.
#[derive(Clone, Debug)]
pub enum KeyPart {
    Int(i64),
    UInt(u64),
    Str(Vec<u8>),
    Stack(Frames),
}

/// What identifies a key part.
#[derive(PartialEq, Eq, Hash)]
enum KeyBits<'a> {
    Int(u64),
    Str(&'a [u8]),
    Stack(&'a [Arc<str>]),
}

impl KeyPart {
    fn bits(&self) -> KeyBits<'_> {
        match self {
            KeyPart::Int(v) => KeyBits::Int(*v as u64),
            KeyPart::UInt(v) => KeyBits::Int(*v),
            KeyPart::Str(s) => KeyBits::Str(s),
            KeyPart::Stack(frames) => KeyBits::Stack(frames),
        }
    }

    pub fn to_event(&self) -> event::Value {
        match self {
            KeyPart::Int(v) => event::Value::Int(*v),
            KeyPart::UInt(v) => event::Value::UInt(*v),
            KeyPart::Str(s) => event::Value::Str(s.as_slice().into()),
            KeyPart::Stack(frames) => {
                event::Value::Stack(frames.iter().map(|f| f.to_string()).collect())
            }
        }
    }

    fn from_event(v: &event::Value) -> KeyPart {
        match v {
            event::Value::Int(v) => KeyPart::Int(*v),
            event::Value::UInt(v) => KeyPart::UInt(*v),
            event::Value::Str(s) => KeyPart::Str(s.to_vec()),
            event::Value::Stack(frames) => {
                KeyPart::Stack(frames.iter().map(|f| Arc::from(f.as_str())).collect())
            }
            event::Value::Bytes(_) => KeyPart::Stack(Arc::from([])),
        }
    }

    fn compare(&self, other: &KeyPart) -> Ordering {
        match (self, other) {
            (KeyPart::Str(a), KeyPart::Str(b)) => a.cmp(b),
            (KeyPart::Int(a), KeyPart::Int(b)) => a.cmp(b),
            (KeyPart::UInt(a), KeyPart::UInt(b)) => a.cmp(b),
            (KeyPart::Int(a), KeyPart::UInt(b)) => i128::from(*a).cmp(&i128::from(*b)),
            (KeyPart::UInt(a), KeyPart::Int(b)) => i128::from(*a).cmp(&i128::from(*b)),
            (KeyPart::Stack(a), KeyPart::Stack(b)) => a.cmp(b),
            _ => Ordering::Equal,
        }
    }
}

impl PartialEq for KeyPart {
    fn eq(&self, other: &KeyPart) -> bool {
        self.bits() == other.bits()
    }
}

impl Eq for KeyPart {}

impl std::hash::Hash for KeyPart {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bits().hash(state);
    }
}

/// The arguments of one aggregating call, evaluated.
pub struct Update<'a> {
    pub func: AggFunc,
    pub args: &'a [i64],
}

#[derive(Clone, Debug)]
struct Aggregation {
    func: AggFunc,
    entries: Vec<(Vec<KeyPart>, AggValue)>,
    index: HashMap<Vec<KeyPart>, usize>,
    /// normalize(@a, n): values are divided by this when printed.
    normal: i64,
    /// The value shown for a key the aggregation has no entry for (printa of several
    /// aggregations): zero, in the aggregation's layout.
    zero: AggValue,
}

impl Aggregation {
    /// The value at `keys`, a new entry holding `fresh` when there is none.
    fn value(&mut self, keys: Vec<KeyPart>, fresh: AggValue) -> &mut AggValue {
        let i = match self.index.get(&keys) {
            Some(&i) => i,
            None => {
                self.index.insert(keys.clone(), self.entries.len());
                self.entries.push((keys, fresh));
                self.entries.len() - 1
            }
        };
        &mut self.entries[i].1
    }
}

/// Every aggregation of the program, by name (without `@`).
#[derive(Clone, Debug, Default)]
pub struct Aggregations {
    aggs: HashMap<String, Aggregation>,
    /// Each aggregation's key sizes, from the program's types (see AggSnapshot::key_sizes).
    key_sizes: HashMap<String, Vec<u8>>,
    /// Names in the order aggregations first received data, for the final print.
    order: Vec<String>,
    /// How printa and the final print order entries (the aggsort* options).
    pub sort: AggSort,
    /// `aggsortpos`: which aggregation of a multi-aggregation printa orders its rows.
    pub sort_pos: usize,
}

impl Aggregations {
    pub fn with_key_sizes(key_sizes: HashMap<String, Vec<u8>>) -> Aggregations {
        Aggregations {
            key_sizes,
            ..Aggregations::default()
        }
    }

    /// Applies `@name[keys] = func(args)`.
    pub fn update(
        &mut self,
        name: &str,
        keys: Vec<KeyPart>,
        update: &Update<'_>,
    ) -> Result<(), BadParameters> {
        let fresh = initial(update.func, update.args)?;
        let value = self
            .aggregation(name, update.func, &fresh)
            .value(keys, fresh);
        apply(value, update.func, update.args);
        Ok(())
    }

    /// Adds what the kernel counted since its last read to an aggregation: counts and sums
    /// add up, minima and maxima keep the extreme.
    pub fn add(&mut self, name: &str, func: AggFunc, entries: Vec<AggEntry>) {
        if entries.is_empty() {
            return;
        }
        let mut fresh = AggValue::Scalar(0);
        clear_value(&mut fresh, func);
        let agg = self.aggregation(name, func, &fresh);
        for entry in entries {
            let AggValue::Scalar(v) = entry.value else {
                continue;
            };
            let keys = entry.keys.iter().map(KeyPart::from_event).collect();
            if let AggValue::Scalar(s) = agg.value(keys, fresh.clone()) {
                *s = match func {
                    AggFunc::Min => (*s).min(v),
                    AggFunc::Max => (*s).max(v),
                    _ => s.wrapping_add(v),
                };
            }
        }
    }

    /// The aggregation `name`, created empty (with `like`'s layout) if it has no data yet.
    fn aggregation(&mut self, name: &str, func: AggFunc, like: &AggValue) -> &mut Aggregation {
        self.aggs.entry(name.to_string()).or_insert_with(|| {
            self.order.push(name.to_string());
            Aggregation {
                func,
                entries: Vec::new(),
                index: HashMap::new(),
                normal: 1,
                zero: zero_of(func, like),
            }
        })
    }

    /// Replaces an aggregation's entries with what the kernel counted.
    pub fn replace(&mut self, name: &str, func: AggFunc, entries: Vec<AggEntry>) {
        if !self.aggs.contains_key(name) {
            self.order.push(name.to_string());
        }
        let mut agg = Aggregation {
            func,
            entries: Vec::new(),
            index: HashMap::new(),
            normal: self.aggs.get(name).map_or(1, |a| a.normal),
            zero: entries
                .first()
                .map_or(AggValue::Scalar(0), |e| zero_of(func, &e.value)),
        };
        for entry in entries {
            let keys: Vec<KeyPart> = entry.keys.iter().map(KeyPart::from_event).collect();
            agg.index.insert(keys.clone(), agg.entries.len());
            agg.entries.push((keys, entry.value));
        }
        self.aggs.insert(name.to_string(), agg);
    }

    /// The names that have entries, in the order they first got data.
    pub fn names_with_data(&self) -> Vec<String> {
        self.order
            .iter()
            .filter(|n| self.aggs.get(*n).is_some_and(|a| !a.entries.is_empty()))
            .cloned()
            .collect()
    }

    /// A snapshot with normalization applied, or `None` when the aggregation has no data yet.
    pub fn snapshot(&self, name: &str) -> Option<AggSnapshot> {
        let agg = self.aggs.get(name)?;
        Some(AggSnapshot {
            name: name.to_string(),
            func: agg.func,
            key_sizes: self.key_sizes.get(name).cloned().unwrap_or_default(),
            sort: self.sort,
            entries: agg
                .entries
                .iter()
                .map(|(keys, value)| AggEntry {
                    keys: keys.iter().map(KeyPart::to_event).collect(),
                    value: normalized(value, agg.normal),
                })
                .collect(),
        })
    }

    /// `clear(@a)`: every value back to its zero; keys stay. As libdtrace does, min and max
    /// restart from the extreme values so that the next update sets them.
    pub fn clear(&mut self, name: &str) {
        if let Some(agg) = self.aggs.get_mut(name) {
            for (_, value) in &mut agg.entries {
                clear_value(value, agg.func);
            }
        }
    }

    /// `trunc(@a)` removes every entry; `trunc(@a, n)` keeps the `n` largest values (the
    /// `-n` smallest when `n` is negative).
    pub fn trunc(&mut self, name: &str, keep: Option<i64>) {
        let Some(agg) = self.aggs.get_mut(name) else {
            return;
        };
        let mut entries = std::mem::take(&mut agg.entries);
        match keep {
            None => entries.clear(),
            Some(n) => {
                entries.sort_by(|a, b| compare_values(&b.1, &a.1));
                if n < 0 {
                    entries.reverse();
                }
                entries.truncate(usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX));
            }
        }
        agg.index = entries
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        agg.entries = entries;
    }

    /// `normalize(@a, n)` (n > 0) and `denormalize(@a)` (n = 1).
    pub fn set_normal(&mut self, name: &str, normal: i64) {
        if let Some(agg) = self.aggs.get_mut(name) {
            agg.normal = normal.max(1);
        }
    }

    /// The rows of `printa(format, @a, @b, …)`: the union of the keys, each with every
    /// aggregation's (normalized) value, zero where an aggregation has no such key; sorted by
    /// the first aggregation's value, then by key, as dtrace sorts them.
    pub fn rows(&self, names: &[String]) -> Vec<(Vec<KeyPart>, Vec<AggValue>)> {
        let aggs: Vec<Option<&Aggregation>> = names.iter().map(|n| self.aggs.get(n)).collect();
        let mut keys: Vec<&Vec<KeyPart>> = Vec::new();
        for agg in aggs.iter().flatten() {
            for (k, _) in &agg.entries {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        let mut rows: Vec<(Vec<KeyPart>, Vec<AggValue>)> = keys
            .into_iter()
            .map(|k| {
                let values = aggs
                    .iter()
                    .map(|agg| match agg {
                        Some(a) => a
                            .index
                            .get(k)
                            .and_then(|&i| a.entries.get(i))
                            .map_or_else(|| a.zero.clone(), |e| normalized(&e.1, a.normal)),
                        None => AggValue::Scalar(0),
                    })
                    .collect();
                (k.clone(), values)
            })
            .collect();
        let pos = if self.sort_pos < names.len() {
            self.sort_pos
        } else {
            0
        };
        rows.sort_by(|a, b| {
            let nkeys = a.0.len().min(b.0.len());
            let value = || match (a.1.get(pos), b.1.get(pos)) {
                (Some(x), Some(y)) => compare_values(x, y),
                _ => Ordering::Equal,
            };
            self.sort.compare(nkeys, |i| a.0[i].compare(&b.0[i]), value)
        });
        rows
    }
}

/// The value a new entry starts from, with the bucket layout its parameters give.
fn initial(func: AggFunc, args: &[i64]) -> Result<AggValue, BadParameters> {
    Ok(match func {
        AggFunc::Min => AggValue::Scalar(i64::MAX),
        AggFunc::Max => AggValue::Scalar(i64::MIN),
        AggFunc::Avg => AggValue::Avg { count: 0, total: 0 },
        AggFunc::Stddev => AggValue::Stddev {
            count: 0,
            total: 0,
            total_squares: 0,
        },
        AggFunc::Quantize => AggValue::Quantize(vec![0; QUANTIZE_BUCKETS]),
        AggFunc::Lquantize => lquantize_layout(args)?,
        AggFunc::Llquantize => llquantize_layout(args)?,
        _ => AggValue::Scalar(0),
    })
}

/// Adds one value to an entry.
fn apply(value: &mut AggValue, func: AggFunc, args: &[i64]) {
    let v = arg(args, 0);
    match value {
        AggValue::Scalar(s) => match func {
            AggFunc::Count => *s = s.wrapping_add(1),
            AggFunc::Sum => *s = s.wrapping_add(v),
            AggFunc::Min => *s = (*s).min(v),
            AggFunc::Max => *s = (*s).max(v),
            _ => {}
        },
        AggValue::Avg { count, total } => {
            *count = count.wrapping_add(1);
            *total = total.wrapping_add(v);
        }
        AggValue::Stddev {
            count,
            total,
            total_squares,
        } => {
            *count = count.wrapping_add(1);
            *total = total.wrapping_add(v);
            *total_squares = total_squares.wrapping_add(u128::from(v.unsigned_abs()).pow(2));
        }
        AggValue::Quantize(counts) => {
            let incr = args.get(1).copied().unwrap_or(1);
            if let Some(c) = counts.get_mut(quantize_bucket(v)) {
                *c = c.wrapping_add(incr);
            }
        }
        AggValue::Lquantize {
            base,
            step,
            levels,
            counts,
        } => {
            let incr = args.get(4).copied().unwrap_or(1);
            if let Some(c) = counts.get_mut(lquantize_bucket(*base, *step, *levels, v)) {
                *c = c.wrapping_add(incr);
            }
        }
        AggValue::Llquantize {
            factor,
            low,
            high,
            nsteps,
            counts,
        } => {
            let i = llquantize_bucket(*factor, *low, *high, *nsteps, v);
            if let Some(c) = counts.get_mut(i) {
                *c = c.wrapping_add(1);
            }
        }
    }
}

fn normalized(value: &AggValue, normal: i64) -> AggValue {
    if normal == 1 {
        return value.clone();
    }
    let n = normal;
    let div = |counts: &[i64]| counts.iter().map(|c| c / n).collect::<Vec<_>>();
    match value {
        AggValue::Scalar(v) => AggValue::Scalar(v / n),
        AggValue::Avg { count, total } => AggValue::Avg {
            count: *count,
            total: total / n,
        },
        AggValue::Stddev {
            count,
            total,
            total_squares,
        } => AggValue::Stddev {
            count: *count,
            total: total / n,
            total_squares: total_squares / (n as u128).pow(2),
        },
        AggValue::Quantize(c) => AggValue::Quantize(div(c)),
        AggValue::Lquantize {
            base,
            step,
            levels,
            counts,
        } => AggValue::Lquantize {
            base: *base,
            step: *step,
            levels: *levels,
            counts: div(counts),
        },
        AggValue::Llquantize {
            factor,
            low,
            high,
            nsteps,
            counts,
        } => AggValue::Llquantize {
            factor: *factor,
            low: *low,
            high: *high,
            nsteps: *nsteps,
            counts: div(counts),
        },
    }
}

fn clear_value(value: &mut AggValue, func: AggFunc) {
    match value {
        AggValue::Scalar(v) => {
            *v = match func {
                AggFunc::Min => i64::MAX,
                AggFunc::Max => i64::MIN,
                _ => 0,
            }
        }
        AggValue::Avg { count, total } => (*count, *total) = (0, 0),
        AggValue::Stddev {
            count,
            total,
            total_squares,
        } => (*count, *total, *total_squares) = (0, 0, 0),
        AggValue::Quantize(c)
        | AggValue::Lquantize { counts: c, .. }
        | AggValue::Llquantize { counts: c, .. } => c.iter_mut().for_each(|c| *c = 0),
    }
}

/// The value an aggregation shows for a key it has no entry for (printa of several
/// aggregations): zero, with the layout of `like`.
fn zero_of(func: AggFunc, like: &AggValue) -> AggValue {
    let mut v = like.clone();
    clear_value(&mut v, func);
    if let AggValue::Scalar(s) = &mut v {
        *s = 0;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(aggs: &mut Aggregations, name: &str, key: &str, func: AggFunc, args: &[i64]) {
        aggs.update(name, vec![KeyPart::Str(key.into())], &Update { func, args })
            .unwrap();
    }

    fn scalar(aggs: &Aggregations, name: &str) -> Vec<i64> {
        aggs.snapshot(name)
            .unwrap()
            .entries
            .iter()
            .map(|e| match e.value {
                AggValue::Scalar(v) => v,
                _ => panic!("not a scalar"),
            })
            .collect()
    }

    #[test]
    fn clear_trunc_and_normalize() {
        let mut aggs = Aggregations::default();
        for (key, n) in [("a", 5), ("b", 1), ("c", 9)] {
            update(&mut aggs, "s", key, AggFunc::Sum, &[n]);
            update(&mut aggs, "m", key, AggFunc::Min, &[n]);
        }
        aggs.set_normal("s", 2);
        assert_eq!(scalar(&aggs, "s"), [2, 0, 4]);
        aggs.set_normal("s", 1);
        aggs.trunc("s", Some(2));
        assert_eq!(scalar(&aggs, "s"), [9, 5]);
        aggs.trunc("s", Some(-1));
        assert_eq!(scalar(&aggs, "s"), [5]);
        aggs.clear("s");
        assert_eq!(scalar(&aggs, "s"), [0]);
        aggs.clear("m");
        update(&mut aggs, "m", "a", AggFunc::Min, &[7]);
        assert_eq!(scalar(&aggs, "m"), [7, i64::MAX, i64::MAX]);
        aggs.trunc("m", None);
        assert!(aggs.snapshot("m").unwrap().entries.is_empty());
        assert_eq!(aggs.names_with_data(), ["s"]);
    }

    /// What the kernel counted since its last read, by key.
    fn counted(pairs: &[(&str, i64)]) -> Vec<AggEntry> {
        pairs
            .iter()
            .map(|&(key, v)| AggEntry {
                keys: vec![event::Value::Str(key.into())],
                value: AggValue::Scalar(v),
            })
            .collect()
    }

    #[test]
    fn kernel_increments_add_up_and_clear_and_trunc_act_on_their_sum() {
        let mut aggs = Aggregations::default();
        aggs.add("c", AggFunc::Count, counted(&[("a", 5), ("b", 1)]));
        aggs.add("c", AggFunc::Count, counted(&[("b", 9), ("c", 2)]));
        assert_eq!(scalar(&aggs, "c"), [5, 10, 2]);
        aggs.trunc("c", Some(2));
        assert_eq!(scalar(&aggs, "c"), [10, 5], "the two largest");
        aggs.add("c", AggFunc::Count, counted(&[("c", 1)]));
        assert_eq!(scalar(&aggs, "c"), [10, 5, 1]);
        aggs.clear("c");
        aggs.add("c", AggFunc::Count, counted(&[("a", 3)]));
        assert_eq!(scalar(&aggs, "c"), [0, 3, 0], "clear keeps the keys");
        aggs.trunc("c", None);
        aggs.add("c", AggFunc::Count, Vec::new());
        assert!(aggs.snapshot("c").unwrap().entries.is_empty());

        aggs.add("lo", AggFunc::Min, counted(&[("a", 7)]));
        aggs.add("lo", AggFunc::Min, counted(&[("a", 9), ("b", -2)]));
        aggs.add("hi", AggFunc::Max, counted(&[("a", 7)]));
        aggs.add("hi", AggFunc::Max, counted(&[("a", 9)]));
        assert_eq!(scalar(&aggs, "lo"), [7, -2]);
        assert_eq!(scalar(&aggs, "hi"), [9]);
        aggs.clear("lo");
        aggs.add("lo", AggFunc::Min, counted(&[("b", 4)]));
        assert_eq!(
            scalar(&aggs, "lo"),
            [i64::MAX, 4],
            "a cleared minimum starts again"
        );
        assert_eq!(aggs.names_with_data(), ["lo", "hi"]);
    }

    #[test]
    fn increments_and_the_default_step() {
        use crate::backend::linux::d::ast::Function;
        // The front end does not accept the increment argument yet; the layout does.
        let mut aggs = Aggregations::default();
        let mut add = |func: AggFunc, args: &[i64]| {
            let name = Function::Aggregating(func).name();
            aggs.update(name, vec![], &Update { func, args }).unwrap();
        };
        add(AggFunc::Quantize, &[3, 5]);
        add(AggFunc::Quantize, &[3]);
        add(AggFunc::Lquantize, &[2, 0, 4]);
        add(AggFunc::Lquantize, &[2, 0, 4, 1, 10]);
        let q = aggs.snapshot("quantize").unwrap();
        let AggValue::Quantize(counts) = &q.entries[0].value else {
            panic!("{q:?}")
        };
        assert_eq!(counts[65], 6);
        let l = aggs.snapshot("lquantize").unwrap();
        assert_eq!(
            l.entries[0].value,
            AggValue::Lquantize {
                base: 0,
                step: 1,
                levels: 4,
                counts: vec![0, 0, 0, 11, 0, 0],
            }
        );
    }

    #[test]
    fn bad_lquantize_parameters_are_reported() {
        let mut aggs = Aggregations::default();
        let err = aggs
            .update(
                "l",
                vec![],
                &Update {
                    func: AggFunc::Lquantize,
                    args: &[1, 0, 1_000_000, 1],
                },
            )
            .unwrap_err();
        assert!(err.0.contains("levels"), "{err:?}");
    }
}
