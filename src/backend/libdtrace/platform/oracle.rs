//! Oracle's DTrace for Linux: dtrace_init after the options and processes, dtrace_go with
//! compile flags, no dtrace_sleep (dtrace_work waits in epoll for up to the switch
//! interval), a process handler that receives a pid (negative once the process is dead),
//! probe descriptions with string pointers, a probe-data pointer that points at the current
//! record, and aggregations with separate key and data buffers.

use std::ffi::{c_char, c_int, c_uint, CStr};
use std::slice;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::AggView;
use crate::backend::libdtrace::ffi;
use crate::event::AggFunc;

/// Oracle's aggregating functions are numbered in libdtrace's private dt_aggregate.h
/// (alphabetically from DTRACEACT_AGGREGATION), which is not installed.
const AGG_FUNCS: [AggFunc; 9] = [
    AggFunc::Avg,
    AggFunc::Count,
    AggFunc::Llquantize,
    AggFunc::Lquantize,
    AggFunc::Max,
    AggFunc::Min,
    AggFunc::Quantize,
    AggFunc::Stddev,
    AggFunc::Sum,
];

/// Index of the value record in `dtagd_drecs` (dt_aggregate.h's DT_AGGDATA_RECORD; the
/// first is a counter).
const DATA_RECORD: usize = 1;

/// D that Oracle's DTrace lacks and dtk's scripts use: `zonename`, which on Linux is the
/// name of the process's cgroup (its last path component, "" for the root), as in the linux
/// back end. Oracle resolves the kernel types through BTF.
pub const PRELUDE: &[(&str, &str)] = &[(
    "zonename",
    "inline string zonename = stringof(curthread->cgroups->dfl_cgrp->kn->name);",
)];

/// Where Oracle's libdtrace reads tracefs (its include/tracefs.h): under debugfs.
const TRACEFS_EVENTS: &str = "/sys/kernel/debug/tracing/events";

/// Mounts debugfs when it is not mounted: Oracle's libdtrace finds the syscall, proc and
/// sdt tracepoints only through /sys/kernel/debug/tracing (tracefs is automounted there).
pub fn prepare() -> std::io::Result<()> {
    if std::path::Path::new(TRACEFS_EVENTS).is_dir() {
        return Ok(());
    }
    // SAFETY: every argument is a NUL-terminated literal; mount(2) changes no memory of ours.
    let rc = unsafe {
        libc::mount(
            c"debugfs".as_ptr(),
            c"/sys/kernel/debug".as_ptr(),
            c"debugfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Finishes the handle's set-up once options are set and processes grabbed.
///
/// # Safety
/// `h` is an open handle.
pub unsafe fn init(h: *mut ffi::dtrace_hdl_t) -> c_int {
    // SAFETY: the caller passes an open handle.
    unsafe { ffi::dtrace_init(h) }
}

/// Whether a handle of this process has gone live: Oracle's libdtrace creates its global
/// BPF maps once per process (dt_bpf.c's dt_gmap_done) and closes them with the handle, so a
/// second handle's programs would refer to closed maps.
static WENT_LIVE: AtomicBool = AtomicBool::new(false);

/// Whether this process can still start tracing.
pub fn can_go() -> bool {
    !WENT_LIVE.load(Ordering::Relaxed)
}

/// Starts tracing on `h`.
///
/// # Safety
/// `h` is an open handle with an executed program.
pub unsafe fn go(h: *mut ffi::dtrace_hdl_t, cflags: c_uint) -> c_int {
    WENT_LIVE.store(true, Ordering::Relaxed);
    // SAFETY: the caller passes an open handle with an executed program.
    unsafe { ffi::dtrace_go(h, cflags) }
}

/// Waits between two calls of dtrace_work. Oracle's dtrace_work waits in epoll itself, but
/// returns at once while the switch interval has not elapsed: this keeps the loop from
/// spinning then.
pub fn pause(_h: *mut ffi::dtrace_hdl_t) {
    std::thread::sleep(Duration::from_millis(10));
}

/// The four parts of a probe description.
///
/// # Safety
/// `pd` is a probe description from libdtrace.
pub unsafe fn probe_names(pd: &ffi::dtrace_probedesc_t) -> [String; 4] {
    // SAFETY: the parts of a probe description from libdtrace are NUL-terminated strings.
    [pd.prv, pd.mod_, pd.fun, pd.prb].map(|p| unsafe { owned(p) })
}

/// The start of the clause's data, from which every record's `dtrd_offset` counts. Oracle
/// points `dtpda_data` at the record being delivered.
///
/// # Safety
/// `data` and `rec` come from the same record callback.
pub unsafe fn clause_data(
    data: &ffi::dtrace_probedata_t,
    rec: &ffi::dtrace_recdesc_t,
) -> *const u8 {
    data.dtpda_data
        .cast::<u8>()
        .cast_const()
        .wrapping_sub(rec.dtrd_offset as usize)
}

/// What the process handler was told: the pid, and whether the process is gone.
pub fn process_event(pid: ffi::pid_t) -> (u32, bool) {
    (pid.unsigned_abs(), pid < 0)
}

/// Reads one aggregation entry.
///
/// # Safety
/// `agg` is the entry handed to an aggregation walk callback.
pub unsafe fn agg_view<'a>(agg: &'a ffi::dtrace_aggdata_t) -> Option<AggView<'a>> {
    // SAFETY: the entry comes from a walk callback (the caller's promise), so its description
    // is NULL or libdtrace's, valid as long as the entry.
    let desc = unsafe { agg.dtada_desc.as_ref()? };
    // SAFETY: an aggregation's description has its data record after the records before it.
    let drecs = unsafe { slice::from_raw_parts(desc.dtagd_drecs, DATA_RECORD + 1) };
    let value = &drecs[DATA_RECORD];
    let func = AGG_FUNCS
        .get(usize::from(value.dtrd_action).checked_sub(ffi::DTRACEACT_AGGREGATION as usize)?)
        .copied()?;
    let key_base = agg.dtada_key.cast::<u8>().cast_const();
    let data_base = agg.dtada_data.cast::<u8>().cast_const();
    // The first key record is the aggregation's id, not a key.
    // SAFETY: the description lists `dtagd_nkrecs` key records.
    let krecs = unsafe { slice::from_raw_parts(desc.dtagd_krecs, desc.dtagd_nkrecs as usize) };
    let keys = krecs
        .iter()
        .skip(1)
        // SAFETY: the entry's key buffer holds every key record the description lists.
        .map(|r| (r, unsafe { bytes(key_base, r) }))
        .collect();
    Some(AggView {
        // SAFETY: the aggregation's name is a NUL-terminated string of libdtrace's.
        name: unsafe { owned(desc.dtagd_name) },
        func,
        params: desc.dtagd_sig,
        normal: desc.dtagd_normal.max(1),
        keys,
        // SAFETY: the entry's data buffer holds its data record.
        data: unsafe { bytes(data_base, value) },
    })
}

/// Oracle's llquantize buckets (overflow below, negative ranges, the bucket below
/// factor^low, positive ranges, overflow above) folded into dtk's layout (one bucket below
/// factor^low, the positive ranges, one at or above the top).
pub fn llquantize_counts(raw: &[i64], params: u64) -> Vec<i64> {
    let factor = (params & 0xffff) as usize;
    let low = ((params >> 16) & 0xffff) as usize;
    let high = ((params >> 32) & 0xffff) as usize;
    let steps = ((params >> 48) & 0xffff) as usize;
    let per_order = steps.saturating_sub(steps / factor.max(1));
    let side = (high + 1).saturating_sub(low) * per_order;
    let below_end = (side + 2).min(raw.len());
    let mut counts = vec![raw[..below_end].iter().sum()];
    counts.extend_from_slice(raw.get(below_end..).unwrap_or(&[]));
    counts
}

/// The bytes of record `rec` in the buffer at `base` (none when `base` is NULL).
///
/// # Safety
/// `base + rec.dtrd_offset` holds `rec.dtrd_size` readable bytes, valid for `'a`.
unsafe fn bytes<'a>(base: *const u8, rec: &ffi::dtrace_recdesc_t) -> &'a [u8] {
    if base.is_null() {
        return &[];
    }
    // SAFETY: the caller guarantees the record's bytes are readable for 'a.
    unsafe { slice::from_raw_parts(base.add(rec.dtrd_offset as usize), rec.dtrd_size as usize) }
}

/// Copies a C string (NULL gives "").
///
/// # Safety
/// `p` is NULL or a NUL-terminated string.
unsafe fn owned(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: `p` is not NULL, so (the caller's promise) a NUL-terminated string.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llquantize_folds_the_negative_side_into_the_first_bucket() {
        // llquantize(x, 10, 0, 1, 10): 9 buckets per order, 2 orders, 18 + 18 + 3 in all.
        let params = 10 | (1 << 32) | (10 << 48);
        let mut raw = vec![0i64; 39];
        raw[0] = 1; // below -100
        raw[18] = 2; // in the negative ranges
        raw[19] = 3; // below 1 (0)
        raw[20] = 4; // 1
        raw[38] = 5; // >= 100
        let counts = llquantize_counts(&raw, params);
        assert_eq!(counts.len(), 20);
        assert_eq!(counts[0], 6);
        assert_eq!(counts[1], 4);
        assert_eq!(counts[19], 5);
    }
}
