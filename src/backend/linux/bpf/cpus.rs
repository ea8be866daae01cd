//! CPU lists from sysfs. Per-CPU maps hold one value slot per *possible* CPU; perf events
//! (cpu-clock sampling) are opened on each *online* CPU.

use std::io;

const POSSIBLE: &str = "/sys/devices/system/cpu/possible";
const ONLINE: &str = "/sys/devices/system/cpu/online";

/// The possible CPUs, which is how many value slots a per-CPU map lookup returns.
pub fn possible() -> io::Result<Vec<u32>> {
    read_list(POSSIBLE)
}

/// The CPUs that are online now.
pub fn online() -> io::Result<Vec<u32>> {
    read_list(ONLINE)
}

fn read_list(path: &str) -> io::Result<Vec<u32>> {
    let text = std::fs::read_to_string(path)?;
    parse_list(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{path}: not a CPU list: {:?}", text.trim()),
        )
    })
}

/// Parses the kernel's CPU list syntax, e.g. `0-3,5,7-8`.
pub fn parse_list(text: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi): (u32, u32) = (lo.parse().ok()?, hi.parse().ok()?);
                if lo > hi {
                    return None;
                }
                cpus.extend(lo..=hi);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    (!cpus.is_empty()).then_some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_list("0-1\n"), Some(vec![0, 1]));
        assert_eq!(parse_list("0,2-3,7"), Some(vec![0, 2, 3, 7]));
        assert_eq!(parse_list("3-1"), None);
        assert_eq!(parse_list("x"), None);
        assert_eq!(parse_list(""), None);
    }

    #[test]
    fn this_machine_has_a_cpu() {
        assert!(!possible().unwrap().is_empty());
        assert!(!online().unwrap().is_empty());
    }
}
