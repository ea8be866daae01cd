//! USDT semaphores that the kernel holds raised without a breakpoint on the probe's sites.
//!
//! A USDT site runs only while its semaphore is non-zero, and raising the semaphore can be
//! all a program wants: `python$target:::line /0/ {}` turns CPython 3.11's function-entry on
//! (CPython issue #98894) and records nothing. Attached at its sites, such a probe would trap
//! into the kernel on every line of Python. Instead, a uprobe with the semaphore as its
//! `ref_ctr_offset` goes where no code ever runs (`inspect::usdt::semaphore_holder`): the
//! kernel raises the semaphore in the traced processes, and lowers it when the uprobe goes,
//! even if dtk is killed, and nothing traps.
//!
//! Two kinds of probe get such a hold:
//! - a USDT probe with a semaphore whose clauses can never record anything (every predicate
//!   is false, and no clause runs in the kernel): its sites are not attached;
//! - CPython 3.11's `line` probe, when the program uses that file's function-entry and does
//!   not enable `line` itself: otherwise function-entry would never fire. This one changes
//!   the target beyond what the program asked for, so it comes with a notice for stderr.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{PlanError, PlannedProbe, SemaphoreHold, Site, UprobeSite};
use crate::backend::linux::attach::uprobe::UprobeSpec;
use crate::backend::linux::firing::ProbeKind;
use crate::inspect::usdt::{semaphore_holder, UsdtError, UsdtProbes};

/// Moves the sites of probes that only raise a semaphore into holds, and adds the `line`
/// holds that CPython 3.11's function-entry needs.
pub fn resolve(probes: &mut [PlannedProbe]) -> Result<Vec<SemaphoreHold>, PlanError> {
    let mut holds = Vec::new();
    let mut holders = Holders::default();
    for probe in probes.iter_mut() {
        let idle = probe.kernel_filter.as_deref().is_some_and(<[_]>::is_empty)
            && probe.kernel_clauses.is_empty();
        let Site::Uprobe { sites } = &mut probe.site else {
            continue;
        };
        if probe.info.kind != ProbeKind::Usdt || !idle {
            continue;
        }
        let desc = probe.info.desc.to_string();
        let mut kept = Vec::new();
        for site in std::mem::take(sites) {
            match holders.hold(&site.spec).map_err(|e| usdt_error(&desc, e))? {
                Some(spec) => holds.push(SemaphoreHold { spec, notice: None }),
                // A site without a semaphore records nothing and changes nothing.
                None if site.spec.ref_ctr_offset.is_none() => {}
                None => kept.push(site),
            }
        }
        *sites = kept;
    }
    for hold in entry_needs_line(probes, &holds, &mut holders)? {
        holds.push(hold);
    }
    Ok(holds)
}

/// The holds of CPython 3.11's `line` semaphore that the program's function-entry probes
/// need and do not have yet.
fn entry_needs_line(
    probes: &[PlannedProbe],
    holds: &[SemaphoreHold],
    holders: &mut Holders,
) -> Result<Vec<SemaphoreHold>, PlanError> {
    let attached: Vec<&UprobeSpec> = probes
        .iter()
        .filter_map(|p| match &p.site {
            Site::Uprobe { sites } => Some(sites.iter().map(|s: &UprobeSite| &s.spec)),
            _ => None,
        })
        .flatten()
        .chain(holds.iter().map(|h| &h.spec))
        .collect();
    let mut added: Vec<SemaphoreHold> = Vec::new();
    for probe in probes {
        let desc = &probe.info.desc;
        let python_entry = probe.info.kind == ProbeKind::Usdt
            && desc.provider.starts_with("python")
            && desc.name == "function-entry";
        let Site::Uprobe { sites } = &probe.site else {
            continue;
        };
        if !python_entry {
            continue;
        }
        for site in sites {
            let Some(line) = holders
                .line_semaphore(&site.spec.path)
                .map_err(|e| usdt_error(&desc.to_string(), e))?
            else {
                continue;
            };
            let same = |s: &UprobeSpec| {
                s.path == site.spec.path && s.pid == site.spec.pid && s.ref_ctr_offset == Some(line)
            };
            if attached.iter().any(|s| same(s)) || added.iter().any(|h| same(&h.spec)) {
                continue;
            }
            let line_site = UprobeSpec {
                ref_ctr_offset: Some(line),
                ..site.spec.clone()
            };
            let Some(spec) = holders
                .hold(&line_site)
                .map_err(|e| usdt_error(&desc.to_string(), e))?
            else {
                continue;
            };
            let whom = match spec.pid {
                Some(pid) => format!("pid {pid}"),
                None => format!("every process that runs {}", spec.path.display()),
            };
            added.push(SemaphoreHold {
                spec,
                notice: Some(format!(
                    "enabled the line probe of {whom} so that CPython 3.11 fires function-entry"
                )),
            });
        }
    }
    Ok(added)
}

fn usdt_error(desc: &str, source: UsdtError) -> PlanError {
    PlanError::Usdt {
        desc: desc.to_string(),
        source,
    }
}

/// What the pass has read of each file, read once.
#[derive(Default)]
struct Holders {
    /// Where each semaphore of a file is held, by (file, semaphore).
    places: HashMap<(PathBuf, u64), Option<u64>>,
    /// The `line` semaphore of a CPython 3.11 file (None: another file).
    lines: HashMap<PathBuf, Option<u64>>,
}

impl Holders {
    /// `spec`'s semaphore held at its file's holding place instead of at `spec`'s site; None
    /// when it has no semaphore or its file no such place.
    fn hold(&mut self, spec: &UprobeSpec) -> Result<Option<UprobeSpec>, UsdtError> {
        let Some(semaphore) = spec.ref_ctr_offset else {
            return Ok(None);
        };
        let key = (spec.path.clone(), semaphore);
        let place = match self.places.get(&key) {
            Some(place) => *place,
            None => *self
                .places
                .entry(key)
                .or_insert(semaphore_holder(&spec.path, semaphore)?),
        };
        Ok(place.map(|offset| UprobeSpec {
            offset,
            retprobe: false,
            ..spec.clone()
        }))
    }

    /// The file offset of the `line` semaphore of `path` when it is CPython 3.11.
    fn line_semaphore(&mut self, path: &Path) -> Result<Option<u64>, UsdtError> {
        if let Some(line) = self.lines.get(path) {
            return Ok(*line);
        }
        let line = if crate::python::entry_needs_line(path) {
            UsdtProbes::open(path)?
                .find("python", "line")
                .ok()
                .and_then(|sites| sites.first()?.semaphore)
                .map(|s| s.file_offset)
        } else {
            None
        };
        self.lines.insert(path.to_path_buf(), line);
        Ok(line)
    }
}
