//! USDT providers: `python123:::function-entry` (one process) and `python*:::…` (every
//! running process whose mapped files have such a provider). Probes are found in the files
//! /proc/PID/maps lists (the executable, libpython, any library), and each site becomes a
//! uprobe for that pid, with the probe's semaphore passed as `ref_ctr_offset`.
//!
//! A run whose scope names USDT files (`Scope::usdt_files`: pyflow's without a target) finds
//! `python*` in those files and in the files running processes map; each site is then one
//! uprobe on the file for every process (pid −1), so that processes started later are traced
//! too, and the kernel raises the semaphore in every mapping of the file. Those probes are
//! named without a pid (`python:python3.11::function-entry`).
//!
//! D spells the note's `function__entry` as `function-entry`; descriptions are matched
//! against that spelling. The module part is the file's name (`python3.11`,
//! `libpython3.11.so.1.0`). The function part is empty: notes do not name the function that
//! holds them.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::common::{concrete, process_error, Query};
use crate::backend::linux::attach::uprobe::UprobeSpec;
use crate::backend::linux::d::ast;
use crate::backend::linux::firing::ProbeKind;
use crate::backend::linux::plan::glob::matches;
use crate::backend::linux::plan::{describe, ArgLoad, Candidate, PlanError, Site, UprobeSite};
use crate::inspect::procmaps::{ProcMapsError, ProcessMaps};
use crate::inspect::usdt::{UsdtError, UsdtProbe, UsdtProbes};

/// The USDT probes in the files one process maps.
#[derive(Debug)]
struct ProcessProbes {
    pid: u32,
    files: Vec<MappedProbes>,
}

#[derive(Debug)]
struct MappedProbes {
    /// The file's name, D's module.
    module: String,
    /// The path to attach through for this process.
    path: PathBuf,
    probes: Arc<UsdtProbes>,
}

/// Parsed files shared between processes, by (device, inode).
type FileCache = HashMap<(u64, u64), Option<Arc<UsdtProbes>>>;

/// D's name for a note's probe name.
pub fn dtrace_name(note_name: &str) -> String {
    note_name.replace("__", "-")
}

/// The probes of `base` (a provider without its pid) in process `pid`.
pub fn probes_of_process(
    desc: &ast::ProbeDesc,
    base: &str,
    pid: u32,
    query: &mut Query,
) -> Result<Vec<Candidate>, PlanError> {
    let process = read_process(pid, &mut FileCache::new())
        .map_err(|source| process_error(desc, pid, query.target, source))?;
    candidates(desc, &process.files, Some(pid), |provider| provider == base)
}

/// The probes of every running process whose provider matches the description's glob.
/// Processes that exit or cannot be read while scanning are passed over.
pub fn probes_of_all_processes(
    desc: &ast::ProbeDesc,
    query: &mut Query,
) -> Result<Vec<Candidate>, PlanError> {
    let pattern = desc.provider.as_str();
    if let Some(files) = query.usdt_files {
        let Files(files) = query
            .cache
            .get_or_read(|| Ok::<_, PlanError>(Files(read_files(files))))?;
        return candidates(desc, files, None, |provider| matches(pattern, provider));
    }
    let Scan(scan) = query
        .cache
        .get_or_read(|| Ok::<_, PlanError>(Scan(scan_processes())))?;
    let mut found = Vec::new();
    for process in scan.iter() {
        found.extend(candidates(
            desc,
            &process.files,
            Some(process.pid),
            |provider| {
                matches(pattern, provider)
                    || matches(pattern, &format!("{provider}{}", process.pid))
            },
        )?);
    }
    Ok(found)
}

/// The files of `Scope::usdt_files` that have USDT probes, read once per plan.
struct Files(Vec<MappedProbes>);

/// `paths` that have USDT probes, and every file with USDT probes that a running process
/// maps; each file once, whatever its name. A path that cannot be read is passed over.
fn read_files(paths: &[PathBuf]) -> Vec<MappedProbes> {
    let mut cache = FileCache::new();
    let mut files: Vec<MappedProbes> = paths
        .iter()
        .filter_map(|path| mapped_probes(path.clone(), path_module(path), &mut cache))
        .collect();
    for process in scan_processes() {
        files.extend(process.files);
    }
    let mut seen = HashSet::new();
    files.retain(|f| std::fs::metadata(&f.path).is_ok_and(|m| seen.insert((m.dev(), m.ino()))));
    files
}

/// A file's name, D's module.
fn path_module(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The USDT probes of every process, read once per plan (on first use).
struct Scan(Vec<ProcessProbes>);

fn scan_processes() -> Vec<ProcessProbes> {
    let mut files = FileCache::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids.into_iter()
        .filter_map(|pid| read_process(pid, &mut files).ok())
        .filter(|p| !p.files.is_empty())
        .collect()
}

/// The files of `pid` that have USDT probes.
fn read_process(pid: u32, cache: &mut FileCache) -> Result<ProcessProbes, ProcMapsError> {
    let maps = ProcessMaps::read(pid)?;
    let mut files = Vec::new();
    for mapping in maps.files() {
        let module = mapping.path.rsplit('/').next().unwrap_or("").to_string();
        files.extend(mapped_probes(maps.openable_path(mapping), module, cache));
    }
    Ok(ProcessProbes { pid, files })
}

/// The USDT probes of the file at `path`, if it has any.
fn mapped_probes(path: PathBuf, module: String, cache: &mut FileCache) -> Option<MappedProbes> {
    let meta = std::fs::metadata(&path).ok()?;
    let probes = cache
        .entry((meta.dev(), meta.ino()))
        .or_insert_with(|| {
            UsdtProbes::open(&path)
                .ok()
                .filter(|p| !p.all().is_empty())
                .map(Arc::new)
        })
        .clone()?;
    Some(MappedProbes {
        module,
        path,
        probes,
    })
}

/// One candidate per (file, provider, name) of `files` that the description matches: in
/// process `pid`, or for every process that maps them (None).
fn candidates(
    desc: &ast::ProbeDesc,
    files: &[MappedProbes],
    pid: Option<u32>,
    provider_ok: impl Fn(&str) -> bool,
) -> Result<Vec<Candidate>, PlanError> {
    let mut found: Vec<Candidate> = Vec::new();
    for file in files {
        if !matches(&desc.module, &file.module) || !matches(&desc.function, "") {
            continue;
        }
        for probe in file.probes.all() {
            let name = dtrace_name(&probe.name);
            if !provider_ok(&probe.provider) || !matches(&desc.name, &name) {
                continue;
            }
            let site = uprobe_site(probe, file, pid).map_err(|source| PlanError::Usdt {
                desc: describe(desc),
                source,
            })?;
            let pid_part = pid.map(|p| p.to_string()).unwrap_or_default();
            let probe_desc = concrete(
                &format!("{}{pid_part}", probe.provider),
                &file.module,
                "",
                &name,
            );
            match found.iter_mut().find(|c| c.desc == probe_desc) {
                Some(Candidate {
                    site: Site::Uprobe { sites },
                    ..
                }) => sites.push(site),
                _ => found.push(Candidate {
                    desc: probe_desc,
                    kind: ProbeKind::Usdt,
                    site: Site::Uprobe { sites: vec![site] },
                }),
            }
        }
    }
    Ok(found)
}

fn uprobe_site(
    probe: &UsdtProbe,
    file: &MappedProbes,
    pid: Option<u32>,
) -> Result<UprobeSite, UsdtError> {
    let args = probe.args()?.iter().cloned().map(ArgLoad::Usdt).collect();
    let mut spec = UprobeSpec::usdt(probe, pid.and_then(|p| i32::try_from(p).ok()));
    spec.path = file.path.clone();
    Ok(UprobeSite { spec, args })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_names_in_d_spelling() {
        assert_eq!(dtrace_name("function__entry"), "function-entry");
        assert_eq!(
            dtrace_name("import__find__load__start"),
            "import-find-load-start"
        );
        assert_eq!(dtrace_name("line"), "line");
    }
}
