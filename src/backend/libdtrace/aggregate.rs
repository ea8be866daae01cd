//! Aggregation snapshots: a walk of libdtrace's aggregation buffers, decoded into
//! [`AggSnapshot`]s with DTrace's bucket layouts (event.rs).

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::ffi;
use super::handle::last_error;
use super::platform::{self, AggView};
use super::record::{decode, read_int, words, RecordShape};
use super::symbols::decode_action;
use super::LibdtraceError;
use crate::event::{AggEntry, AggFunc, AggSnapshot, AggValue, Value, QUANTIZE_BUCKETS};

/// Decodes the last snapshot of every aggregation, or of the one with id `only`, sorted as
/// dtrace(1) prints them.
///
/// # Safety
/// `h` is an open handle, and no other aggregation walk is under way on it.
pub unsafe fn collect(
    h: *mut ffi::dtrace_hdl_t,
    only: Option<u32>,
) -> Result<Vec<AggSnapshot>, LibdtraceError> {
    let mut walk = Walk {
        handle: h,
        only,
        snapshots: Vec::new(),
        panicked: false,
    };
    // SAFETY: walk_entry treats its argument as the `Walk` passed here, which outlives the
    // call, and catches panics.
    let rc = unsafe {
        ffi::dtrace_aggregate_walk_valsorted(h, Some(walk_entry), (&raw mut walk).cast())
    };
    if rc == -1 {
        return Err(LibdtraceError::Call {
            call: "dtrace_aggregate_walk_valsorted",
            // SAFETY: the handle is open.
            msg: unsafe { last_error(h) },
        });
    }
    if walk.panicked {
        return Err(LibdtraceError::Panic);
    }
    Ok(walk.snapshots)
}

struct Walk {
    handle: *mut ffi::dtrace_hdl_t,
    only: Option<u32>,
    snapshots: Vec<AggSnapshot>,
    panicked: bool,
}

impl Walk {
    fn add(&mut self, id: u32, view: AggView<'_>) {
        if self.only.is_some_and(|only| only != id) {
            return;
        }
        let entry = AggEntry {
            keys: view
                .keys
                .iter()
                // SAFETY: the handle is open during the walk.
                .map(|(rec, bytes)| unsafe { decode_key(self.handle, rec, bytes) })
                .collect(),
            value: value(&view),
        };
        let name = aggregation_name(&view.name);
        match self.snapshots.iter_mut().find(|s| s.name == name) {
            Some(s) => s.entries.push(entry),
            None => self.snapshots.push(AggSnapshot {
                name,
                func: view.func,
                entries: vec![entry],
                sort: crate::event::AggSort::default(),
                // Integer keys are traced at their own size; anything else (strings, stacks)
                // is wider than eight bytes.
                key_sizes: view
                    .keys
                    .iter()
                    .map(|(rec, _)| match rec.dtrd_size {
                        size @ (1 | 2 | 4 | 8) => size as u8,
                        _ => 0,
                    })
                    .collect(),
            }),
        }
    }
}

/// One key: stack(), ustack(), sym() and the like symbolised, other values as traced.
///
/// # Safety
/// `h` is an open handle.
unsafe fn decode_key(
    h: *mut ffi::dtrace_hdl_t,
    rec: &ffi::dtrace_recdesc_t,
    bytes: &[u8],
) -> Value {
    if u32::from(rec.dtrd_action) != ffi::DTRACEACT_DIFEXPR {
        // SAFETY: the caller passes an open handle.
        if let Some(value) = unsafe { decode_action(h, rec, bytes) } {
            return value;
        }
    }
    let shape = RecordShape {
        size: bytes.len(),
        alignment: usize::from(rec.dtrd_alignment),
        flags: 0,
    };
    decode(shape, bytes, false)
}

/// D's `@name` without the `@`; the anonymous `@` is "" (libdtrace names it `_`).
fn aggregation_name(raw: &str) -> String {
    match raw.trim_start_matches('@') {
        "_" => String::new(),
        name => name.to_owned(),
    }
}

/// dtrace_aggregate_walk's callback: adds one entry to the `Walk`.
///
/// # Safety
/// libdtrace calls it with an entry of the walk and the `Walk` that `collect` passed.
unsafe extern "C" fn walk_entry(agg: *const ffi::dtrace_aggdata_t, arg: *mut c_void) -> c_int {
    // SAFETY: arg is the `Walk` given by `collect`; agg is the entry libdtrace walks.
    unsafe {
        let (Some(walk), Some(agg)) = (arg.cast::<Walk>().as_mut(), agg.as_ref()) else {
            return ffi::DTRACE_AGGWALK_ERROR;
        };
        let result = catch_unwind(AssertUnwindSafe(|| {
            let id = agg.dtada_desc.as_ref().map_or(0, |d| d.dtagd_varid);
            if let Some(view) = platform::agg_view(agg) {
                walk.add(id, view);
            }
        }));
        if result.is_err() {
            walk.panicked = true;
            return ffi::DTRACE_AGGWALK_ABORT as c_int;
        }
    }
    ffi::DTRACE_AGGWALK_NEXT as c_int
}

/// The entry's value, normalised as `normalize()` asked.
fn value(view: &AggView<'_>) -> AggValue {
    let normal = i64::try_from(view.normal).unwrap_or(1).max(1);
    let counts: Vec<i64> = words(view.data).into_iter().map(|w| w as i64).collect();
    let at = |i: usize| counts.get(i).copied().unwrap_or(0);
    match view.func {
        AggFunc::Count | AggFunc::Sum | AggFunc::Min | AggFunc::Max => {
            AggValue::Scalar(read_int(view.data, view.data.len().min(8), true) / normal)
        }
        AggFunc::Avg => AggValue::Avg {
            count: at(0),
            total: at(1) / normal,
        },
        AggFunc::Stddev => AggValue::Stddev {
            count: at(0),
            total: at(1) / normal,
            total_squares: (u128::from(at(3) as u64) << 64 | u128::from(at(2) as u64))
                / (normal as u128 * normal as u128),
        },
        AggFunc::Quantize => {
            let mut buckets = counts;
            buckets.resize(QUANTIZE_BUCKETS, 0);
            AggValue::Quantize(buckets)
        }
        AggFunc::Lquantize => AggValue::Lquantize {
            base: (view.params & u64::from(u32::MAX)) as u32 as i32,
            levels: ((view.params >> 32) & 0xffff) as u16,
            step: ((view.params >> 48) & 0xffff) as u16,
            counts,
        },
        AggFunc::Llquantize => AggValue::Llquantize {
            factor: (view.params & 0xffff) as u16,
            low: ((view.params >> 16) & 0xffff) as u16,
            high: ((view.params >> 32) & 0xffff) as u16,
            nsteps: ((view.params >> 48) & 0xffff) as u16,
            counts: platform::llquantize_counts(&counts, view.params),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(func: AggFunc, params: u64, data: &[i64]) -> (Vec<u8>, AggFunc, u64) {
        (
            data.iter().flat_map(|v| v.to_ne_bytes()).collect(),
            func,
            params,
        )
    }

    fn value_of(func: AggFunc, params: u64, data: &[i64], normal: u64) -> AggValue {
        let (bytes, func, params) = view(func, params, data);
        value(&AggView {
            name: "x".into(),
            func,
            params,
            normal,
            keys: Vec::new(),
            data: &bytes,
        })
    }

    #[test]
    fn scalars_and_normalisation() {
        assert_eq!(value_of(AggFunc::Count, 0, &[42], 1), AggValue::Scalar(42));
        assert_eq!(value_of(AggFunc::Sum, 0, &[-10], 1), AggValue::Scalar(-10));
        assert_eq!(
            value_of(AggFunc::Sum, 0, &[1000], 10),
            AggValue::Scalar(100)
        );
    }

    #[test]
    fn avg_and_stddev_keep_their_accumulators() {
        assert_eq!(
            value_of(AggFunc::Avg, 0, &[4, 10], 1),
            AggValue::Avg {
                count: 4,
                total: 10
            }
        );
        assert_eq!(
            value_of(AggFunc::Stddev, 0, &[2, 6, 20, 1], 1),
            AggValue::Stddev {
                count: 2,
                total: 6,
                total_squares: (1u128 << 64) | 20
            }
        );
    }

    #[test]
    fn quantize_has_127_buckets_and_lquantize_its_parameters() {
        let AggValue::Quantize(b) = value_of(AggFunc::Quantize, 0, &[0, 1], 1) else {
            panic!("not a quantize");
        };
        assert_eq!(b.len(), QUANTIZE_BUCKETS);
        // lquantize(x, -10, 10, 5): base -10, 4 levels, step 5.
        let params = u64::from((-10i32) as u32) | (4 << 32) | (5 << 48);
        assert_eq!(
            value_of(AggFunc::Lquantize, params, &[1, 0, 0, 0, 0, 2], 1),
            AggValue::Lquantize {
                base: -10,
                step: 5,
                levels: 4,
                counts: vec![1, 0, 0, 0, 0, 2]
            }
        );
    }

    #[test]
    fn anonymous_aggregation_has_an_empty_name() {
        assert_eq!(aggregation_name("_"), "");
        assert_eq!(aggregation_name("calls"), "calls");
        assert_eq!(aggregation_name("@time"), "time");
    }
}
