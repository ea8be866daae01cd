//! What every provider takes: the planning query (the target and a cache of what was read
//! from the system), and the small pieces that several providers build their probes from.
//! A leaf of `providers/`: the provider files use it, and it uses none of them.

use std::any::{Any, TypeId};
use std::collections::hash_map::{Entry, HashMap};
use std::path::PathBuf;

use crate::backend::linux::d::ast;
use crate::backend::linux::plan::glob::matches;
use crate::backend::linux::plan::{describe, ArgLoad, PlanError};
use crate::event::ProbeDesc;
use crate::inspect::procmaps::ProcMapsError;
use crate::inspect::tracefs::Field;

/// What one plan's providers read once and reuse across descriptions (the syscall list, the
/// USDT probes of every process), one value per type; each provider keeps its own type, so
/// this module knows none of them.
#[derive(Default)]
pub struct Cache(HashMap<TypeId, Box<dyn Any>>);

impl Cache {
    /// The `T` read earlier for this plan, or the one `read` gives now.
    pub fn get_or_read<T: Any, E>(
        &mut self,
        read: impl FnOnce() -> Result<T, E>,
    ) -> Result<&mut T, E> {
        let slot = match self.0.entry(TypeId::of::<T>()) {
            Entry::Occupied(slot) => slot.into_mut(),
            Entry::Vacant(slot) => slot.insert(Box::new(read()?)),
        };
        Ok(slot
            .downcast_mut()
            .expect("a cache slot holds the type it is keyed by"))
    }
}

/// What a provider is asked with besides the description.
pub struct Query<'c> {
    /// The -p/-c process, already substituted for `$target`; it only sharpens error messages.
    pub target: Option<u32>,
    /// Files where USDT providers named by a glob are found besides the running processes'
    /// (`Scope::usdt_files`), attached for every process; None: in each running process.
    pub usdt_files: Option<&'c [PathBuf]>,
    pub cache: &'c mut Cache,
}

/// A concrete probe's description.
pub fn concrete(provider: &str, module: &str, function: &str, name: &str) -> ProbeDesc {
    ProbeDesc {
        provider: provider.into(),
        module: module.into(),
        function: function.into(),
        name: name.into(),
    }
}

/// Whether the description's module and function parts match the empty ones of a provider
/// whose probes have neither (dtrace, profile, proc).
pub fn no_module_or_function(desc: &ast::ProbeDesc) -> bool {
    matches(&desc.module, "") && matches(&desc.function, "")
}

/// How to load a tracepoint field as an argument.
pub fn field_load(field: &Field) -> ArgLoad {
    ArgLoad::Field {
        offset: field.offset as u16,
        size: field.size.clamp(1, 8) as u8,
        signed: field.signed,
    }
}

/// `pid123` with prefix `pid` → 123.
pub fn pid_suffix(provider: &str, prefix: &str) -> Option<u32> {
    let digits = provider.strip_prefix(prefix)?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The plan error for process `pid`, whose files could not be read.
pub fn process_error(
    desc: &ast::ProbeDesc,
    pid: u32,
    target: Option<u32>,
    source: ProcMapsError,
) -> PlanError {
    match source {
        ProcMapsError::NoSuchProcess { pid } => PlanError::NoProcess {
            desc: describe(desc),
            pid,
            is_target: target == Some(pid),
        },
        source => PlanError::ProcMaps {
            desc: describe(desc),
            pid,
            source: Box::new(source),
        },
    }
}
