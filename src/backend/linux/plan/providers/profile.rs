//! The rates of `profile-N` and `tick-N`: a number with D's suffixes (ns/nsec, us/usec,
//! ms/msec, s/sec, m/min, h/hour, d/day, hz); a bare number is in hertz.

use std::time::Duration;

/// The period of a rate, or None when it is not one (or is zero).
pub fn parse_rate(rate: &str) -> Option<Duration> {
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
