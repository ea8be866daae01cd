//! The dtrace provider: `dtrace:::BEGIN`, `END` and `ERROR`. They fire in user space: the
//! engine fires BEGIN before tracing starts, END after it stops, and ERROR when a clause
//! faults. Nothing is attached and the kernel captures nothing for them.

use super::common::{concrete, no_module_or_function, Query};
use crate::backend::linux::d::ast;
use crate::backend::linux::firing::ProbeKind;
use crate::backend::linux::plan::glob::matches;
use crate::backend::linux::plan::{Candidate, PlanError, Site};

/// The probes, by name.
pub const PROBES: &[(&str, ProbeKind)] = &[
    ("BEGIN", ProbeKind::Begin),
    ("END", ProbeKind::End),
    ("ERROR", ProbeKind::Error),
];

/// The dtrace probes `desc` matches.
pub fn probes(desc: &ast::ProbeDesc, _: &mut Query) -> Result<Vec<Candidate>, PlanError> {
    if !no_module_or_function(desc) {
        return Ok(Vec::new());
    }
    Ok(PROBES
        .iter()
        .filter(|(name, _)| matches(&desc.name, name))
        .map(|(name, kind)| Candidate {
            desc: concrete("dtrace", "", "", name),
            kind: kind.clone(),
            site: Site::UserSpace,
        })
        .collect())
}
