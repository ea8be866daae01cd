//! The pid provider: `pid123:module:function:entry` and `:return`, a uprobe or uretprobe on a
//! function of the process's executable or of a library it maps. The module part matches the
//! file's name (`libc.so.6`), or is `a.out` for the executable; an empty module searches
//! every mapped file. Function globs are
//! matched against the defined functions of `.symtab` and `.dynsym`.
//!
//! Entry probes give the six integer argument registers as arg0–arg5. A return probe is, as
//! in DTrace, a uprobe on each of the function's return instructions, with arg0 = the
//! return's offset in the function and arg1 = the return value, where `inspect::returns`
//! can tell them all (x86-64 code whose every exit is a `ret`; CPython's evaluator, whose
//! indirect jumps are its own computed gotos). Otherwise it is a uretprobe, with arg0 = 0:
//! the kernel places those on at most 64 nested calls of a thread, and deeper returns are not
//! seen.

use std::path::Path;

use object::{Object, ObjectSymbol, SymbolKind};

use super::common::{concrete, process_error, Query};
use crate::backend::linux::attach::uprobe::UprobeSpec;
use crate::backend::linux::d::ast;
use crate::backend::linux::firing::ProbeKind;
use crate::backend::linux::plan::glob::{is_glob, matches};
use crate::backend::linux::plan::{
    describe, regs, ArgLoad, Candidate, PlanError, Site, UprobeSite,
};
use crate::inspect::elf::{ElfError, ElfImage, FunctionLocation};
use crate::inspect::procmaps::ProcessMaps;
use crate::inspect::returns::return_sites;

/// The pid provider's probes in process `pid`.
pub fn probes(
    desc: &ast::ProbeDesc,
    pid: u32,
    query: &mut Query,
) -> Result<Vec<Candidate>, PlanError> {
    let maps =
        ProcessMaps::read(pid).map_err(|source| process_error(desc, pid, query.target, source))?;
    let mut found = Vec::new();
    // The executable is the first file mapping (see `procmaps`); D calls it `a.out`.
    for (index, mapping) in maps.files().into_iter().enumerate() {
        let module = mapping.path.rsplit('/').next().unwrap_or("");
        let executable = index == 0 && desc.module == "a.out";
        if !executable && !matches(&desc.module, module) {
            continue;
        }
        let path = maps.openable_path(mapping);
        // Mapped files that are not ELF (locale archives, caches) have no functions.
        let Ok(image) = ElfImage::open(&path) else {
            continue;
        };
        for function in function_names(&desc.function, &path) {
            let location = match image.function(&function) {
                Ok(location) => location,
                Err(ElfError::NoSuchFunction { .. }) => continue,
                Err(source) => {
                    return Err(PlanError::Elf {
                        desc: describe(desc),
                        source,
                    })
                }
            };
            for (name, retprobe) in [("entry", false), ("return", true)] {
                if !matches(&desc.name, name) {
                    continue;
                }
                let spec = UprobeSpec {
                    path: path.clone(),
                    offset: location.file_offset,
                    ref_ctr_offset: None,
                    pid: i32::try_from(pid).ok(),
                    retprobe,
                };
                let sites = match retprobe {
                    true => return_probes(&image, &function, &location, spec),
                    false => vec![UprobeSite {
                        spec,
                        args: function_args(false),
                    }],
                };
                found.push(Candidate {
                    desc: concrete(&format!("pid{pid}"), module, &function, name),
                    kind: ProbeKind::Uprobe,
                    site: Site::Uprobe { sites },
                });
            }
        }
    }
    Ok(found)
}

/// The function names to look up: the pattern itself, or the file's defined functions that
/// match it.
fn function_names(pattern: &str, path: &Path) -> Vec<String> {
    if !pattern.is_empty() && !is_glob(pattern) {
        return vec![pattern.to_string()];
    }
    let Ok(data) = std::fs::read(path) else {
        return Vec::new();
    };
    let Ok(file) = object::File::parse(&*data) else {
        return Vec::new();
    };
    let mut names: Vec<String> = file
        .symbols()
        .chain(file.dynamic_symbols())
        .filter(|s| s.kind() == SymbolKind::Text && s.is_definition())
        .filter_map(|s| s.name().ok().map(str::to_string))
        .filter(|n| !n.is_empty() && matches(pattern, n))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The return probe of `function`: a uprobe on each of its return instructions when they are
/// known, else the uretprobe `uretprobe`.
fn return_probes(
    image: &ElfImage,
    function: &str,
    location: &FunctionLocation,
    uretprobe: UprobeSpec,
) -> Vec<UprobeSite> {
    let evaluator = function == crate::python::EVAL_FRAME;
    let Some(rets) = return_sites(image, function, location, evaluator) else {
        return vec![UprobeSite {
            spec: uretprobe,
            args: function_args(true),
        }];
    };
    rets.into_iter()
        .map(|offset| {
            let mut args = function_args(true);
            args[0] = ArgLoad::Constant(offset.wrapping_sub(location.file_offset));
            UprobeSite {
                spec: UprobeSpec {
                    offset,
                    retprobe: false,
                    ..uretprobe.clone()
                },
                args,
            }
        })
        .collect()
}

fn function_args(retprobe: bool) -> Vec<ArgLoad> {
    if retprobe {
        vec![
            ArgLoad::Constant(0),
            ArgLoad::Register {
                offset: regs::RETURN,
            },
        ]
    } else {
        regs::ARGS
            .iter()
            .map(|&offset| ArgLoad::Register { offset })
            .collect()
    }
}
