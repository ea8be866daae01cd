//! The syscall provider: one probe per syscall tracepoint pair (`syscalls:sys_enter_NAME`,
//! `sys_exit_NAME`), listed from tracefs.
//!
//! Attaching hundreds of tracepoints costs time and a program each, so when more than
//! [`RAW_THRESHOLD`] entry (or return) probes are traced, they are all served by one program
//! on `raw_syscalls:sys_enter` (or `sys_exit`) instead, which maps the syscall number to the
//! probe through a BPF array. Syscall numbers come from the `syscalls` crate's table for the
//! machine dtk is built for (tracefs does not publish them); a syscall the table does not know
//! keeps its own tracepoint.

use std::str::FromStr;

use super::common::{concrete, field_load, Query};
use crate::backend::linux::d::ast;
use crate::backend::linux::firing::ProbeKind;
use crate::backend::linux::plan::glob::matches;
use crate::backend::linux::plan::{ArgLoad, Candidate, PlanError, PlannedProbe, Site};
use crate::inspect::tracefs::{self, TracefsError};

/// More entry (or return) probes than this go through raw_syscalls.
pub const RAW_THRESHOLD: usize = 20;

/// The syscalls that have tracepoints, sorted: read once per plan.
struct Syscalls(Vec<String>);

/// The syscalls that have tracepoints, sorted.
fn list() -> Result<Vec<String>, PlanError> {
    let dir = tracefs::root()
        .map_err(PlanError::tracefs)?
        .join("events/syscalls");
    let entries = std::fs::read_dir(&dir).map_err(|source| {
        PlanError::tracefs(TracefsError::Io {
            path: dir.clone(),
            source,
        })
    })?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("sys_enter_"))
                .map(str::to_string)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// The syscall probes `desc` matches; their sites are completed by [`finish_sites`].
pub fn probes(desc: &ast::ProbeDesc, query: &mut Query) -> Result<Vec<Candidate>, PlanError> {
    let mut found = Vec::new();
    if !matches(&desc.module, "") {
        return Ok(found);
    }
    let Syscalls(names) = query.cache.get_or_read(|| list().map(Syscalls))?;
    for name in names.iter() {
        if !matches(&desc.function, name) {
            continue;
        }
        for (label, kind, prefix) in [
            ("entry", ProbeKind::SyscallEntry, "sys_enter_"),
            ("return", ProbeKind::SyscallReturn, "sys_exit_"),
        ] {
            if matches(&desc.name, label) {
                found.push(Candidate {
                    desc: concrete("syscall", "", name, label),
                    kind,
                    site: Site::Tracepoint {
                        category: "syscalls".into(),
                        name: format!("{prefix}{name}"),
                        args: Vec::new(),
                        guard: None,
                    },
                });
            }
        }
    }
    Ok(found)
}

/// Chooses raw_syscalls or each syscall's own tracepoint, and fills in where the arguments
/// are.
pub fn finish_sites(probes: &mut [PlannedProbe]) -> Result<(), PlanError> {
    for entry in [true, false] {
        let kind = if entry {
            ProbeKind::SyscallEntry
        } else {
            ProbeKind::SyscallReturn
        };
        let count = probes.iter().filter(|p| p.info.kind == kind).count();
        let raw = if count > RAW_THRESHOLD {
            Some((raw_args(entry)?, raw_id_offset(entry)?))
        } else {
            None
        };
        for probe in probes.iter_mut().filter(|p| p.info.kind == kind) {
            let nr = syscall_number(&probe.info.desc.function);
            probe.site = match (&raw, nr) {
                (Some((args, id_offset)), Some(nr)) => Site::RawSyscall {
                    entry,
                    nr,
                    args: args.clone(),
                    id_offset: *id_offset,
                },
                _ => own_tracepoint(&probe.info.desc.function, entry)?,
            };
        }
    }
    Ok(())
}

/// Tracepoints named after the kernel's function (`SYSCALL_DEFINE`) where that differs from
/// the syscall's name in the number table.
const TABLE_NAMES: &[(&str, &str)] = &[
    ("newfstat", "fstat"),
    ("newlstat", "lstat"),
    ("newstat", "stat"),
    ("newuname", "uname"),
    ("sendfile64", "sendfile"),
    ("umount", "umount2"),
];

/// This machine's number for syscall `name` (a tracepoint's name).
fn syscall_number(name: &str) -> Option<u32> {
    let name = TABLE_NAMES
        .iter()
        .find(|(tracepoint, _)| *tracepoint == name)
        .map_or(name, |(_, table)| table);
    syscalls::Sysno::from_str(name)
        .ok()
        .and_then(|s| u32::try_from(s.id()).ok())
}

/// Arguments through raw_syscalls: `args[0..6]` on entry, `ret` twice on return.
fn raw_args(entry: bool) -> Result<Vec<ArgLoad>, PlanError> {
    let name = if entry { "sys_enter" } else { "sys_exit" };
    let format = tracefs::read_format("raw_syscalls", name).map_err(PlanError::tracefs)?;
    let missing = |field: &str| {
        PlanError::tracefs(TracefsError::NoSuchTracepoint {
            category: "raw_syscalls".into(),
            name: format!("{name} (field {field})"),
            category_exists: true,
        })
    };
    if entry {
        let args = format.field("args").ok_or_else(|| missing("args"))?;
        Ok((0..6)
            .map(|i| ArgLoad::Field {
                offset: (args.offset + 8 * i) as u16,
                size: 8,
                signed: false,
            })
            .collect())
    } else {
        let ret = field_load(format.field("ret").ok_or_else(|| missing("ret"))?);
        Ok(vec![ret.clone(), ret])
    }
}

/// The offset of the syscall number in a raw_syscalls record (`id`).
fn raw_id_offset(entry: bool) -> Result<u16, PlanError> {
    let name = if entry { "sys_enter" } else { "sys_exit" };
    let format = tracefs::read_format("raw_syscalls", name).map_err(PlanError::tracefs)?;
    format.field("id").map(|f| f.offset as u16).ok_or_else(|| {
        PlanError::tracefs(TracefsError::NoSuchTracepoint {
            category: "raw_syscalls".into(),
            name: format!("{name} (field id)"),
            category_exists: true,
        })
    })
}

/// `syscalls:sys_enter_NAME` with the syscall's arguments (the fields after
/// `__syscall_nr`), or `sys_exit_NAME` with arg0 = arg1 = `ret`.
fn own_tracepoint(syscall: &str, entry: bool) -> Result<Site, PlanError> {
    let name = format!(
        "{}{syscall}",
        if entry { "sys_enter_" } else { "sys_exit_" }
    );
    let format = tracefs::read_format("syscalls", &name).map_err(PlanError::tracefs)?;
    let args = if entry {
        format
            .fields
            .iter()
            .filter(|f| !f.is_common() && f.name != "__syscall_nr")
            .map(field_load)
            .collect()
    } else {
        format
            .field("ret")
            .map(|f| vec![field_load(f), field_load(f)])
            .unwrap_or_default()
    };
    Ok(Site::Tracepoint {
        category: "syscalls".into(),
        name,
        args,
        guard: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_of_this_machine() {
        let getpid = syscall_number("getpid").unwrap();
        assert_eq!(i64::from(getpid), libc::SYS_getpid);
        assert_eq!(syscall_number("no_such_call"), None);
        assert_eq!(
            i64::from(syscall_number("newfstat").unwrap()),
            libc::SYS_fstat
        );
        assert_eq!(
            i64::from(syscall_number("umount").unwrap()),
            libc::SYS_umount2
        );
        assert_eq!(
            i64::from(syscall_number("sendfile64").unwrap()),
            libc::SYS_sendfile
        );
    }
}
