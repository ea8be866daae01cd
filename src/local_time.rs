//! Calendar time in the local time zone: the one wrapper around `localtime_r`, for the
//! executor's `%Y` and the presenters' timestamps alike (a leaf: it imports nothing of dtk).

/// A broken-down local time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i64,
    /// 1 to 12.
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// The local time `secs` seconds after the epoch; None when the C library cannot represent it.
pub fn local_time(secs: i64) -> Option<LocalTime> {
    let secs = libc::time_t::try_from(secs).ok()?;
    // SAFETY: an all-zero tm is a valid value; both pointers are valid for the call, and
    // localtime_r, the thread-safe form, only writes into the tm we own.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return None;
        }
        tm
    };
    let field = |v: libc::c_int| u32::try_from(v).unwrap_or(0);
    Some(LocalTime {
        year: i64::from(tm.tm_year) + 1900,
        month: field(tm.tm_mon) + 1,
        day: field(tm.tm_mday),
        hour: field(tm.tm_hour),
        minute: field(tm.tm_min),
        second: field(tm.tm_sec),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_in_range() {
        let t = local_time(1_795_000_000).unwrap();
        assert!((2026..=2027).contains(&t.year), "{t:?}");
        assert!(
            (1..=12).contains(&t.month) && (1..=31).contains(&t.day),
            "{t:?}"
        );
        assert!(t.hour < 24 && t.minute < 60 && t.second <= 60, "{t:?}");
    }
}
