//! The profile provider: `profile-N` (a perf cpu-clock sample at that rate on every online
//! CPU) and `tick-N` (the same at that period on one CPU), both in the kernel, so that the
//! firing is the interrupted thread's (pid, tid, execname; 0 and the idle task's name when
//! the CPU was idle) and the kernel captures its program counter, kernel's as arg0 and
//! user's as arg1. N is a rate:
//! a number with D's suffixes (ns/nsec, us/usec, ms/msec, s/sec, m/min, h/hour, d/day, hz); a
//! bare number is in hertz. Their names are made, not listed, so a glob in the name part
//! matches none of them.

use std::time::Duration;

use super::common::{concrete, no_module_or_function, Query};
use crate::backend::linux::d::ast;
use crate::backend::linux::firing::ProbeKind;
use crate::backend::linux::plan::{describe, ArgLoad, Candidate, PlanError, Site};

/// The probe `desc` names, if any.
pub fn probes(desc: &ast::ProbeDesc, _: &mut Query) -> Result<Vec<Candidate>, PlanError> {
    if !no_module_or_function(desc) {
        return Ok(Vec::new());
    }
    let name = desc.name.as_str();
    let (rate, tick) = match (name.strip_prefix("profile-"), name.strip_prefix("tick-")) {
        (Some(rate), _) => (rate, false),
        (_, Some(rate)) => (rate, true),
        _ => return Ok(Vec::new()),
    };
    let period = parse_rate(rate).ok_or_else(|| PlanError::BadRate {
        desc: describe(desc),
        name: name.to_string(),
    })?;
    let args = vec![
        ArgLoad::SampledPc { user: false },
        ArgLoad::SampledPc { user: true },
    ];
    let (kind, site) = if tick {
        (ProbeKind::Tick, Site::Tick { period, args })
    } else {
        let hz = (1_000_000_000 / period.as_nanos().max(1)).max(1) as u64;
        (ProbeKind::Profile, Site::Profile { hz, args })
    };
    Ok(vec![Candidate {
        desc: concrete("profile", "", "", name),
        kind,
        site,
    }])
}

/// The period of a rate, or None when it is not one (or is zero).
fn parse_rate(rate: &str) -> Option<Duration> {
    let split = rate
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rate.len());
    let n: u64 = rate[..split].parse().ok().filter(|&n| n > 0)?;
    let unit_ns: u64 = match &rate[split..] {
        "" | "hz" => {
            return Some(Duration::from_nanos(1_000_000_000 / n).max(Duration::from_nanos(1)))
        }
        "ns" | "nsec" => 1,
        "us" | "usec" => 1_000,
        "ms" | "msec" => 1_000_000,
        "s" | "sec" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" | "hour" => 3_600_000_000_000,
        "d" | "day" => 86_400_000_000_000,
        _ => return None,
    };
    n.checked_mul(unit_ns).map(Duration::from_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_periods() {
        assert_eq!(parse_rate("997"), Some(Duration::from_nanos(1_003_009)));
        assert_eq!(parse_rate("100hz"), Some(Duration::from_millis(10)));
        assert_eq!(parse_rate("10ms"), Some(Duration::from_millis(10)));
        assert_eq!(parse_rate("1sec"), Some(Duration::from_secs(1)));
        assert_eq!(parse_rate("5us"), Some(Duration::from_micros(5)));
        assert_eq!(parse_rate("0"), None);
        assert_eq!(parse_rate("fast"), None);
        assert_eq!(parse_rate("1fortnight"), None);
    }
}
