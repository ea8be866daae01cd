//! The provider table: every provider lists and matches its probes (those that need no
//! kernel: tracefs-backed providers are covered by the kernel tests), every kind belongs to
//! the provider that makes it, and the reserved names come from the table.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use super::*;
use crate::backend::linux::d::ast;
use crate::backend::linux::d::Span;
use crate::backend::linux::plan::Site;

fn desc(text: &str) -> ast::ProbeDesc {
    let parts: Vec<&str> = text.split(':').collect();
    let [provider, module, function, name] = <[&str; 4]>::try_from(parts).unwrap();
    ast::ProbeDesc {
        provider: provider.into(),
        module: module.into(),
        function: function.into(),
        name: name.into(),
        span: Span::default(),
    }
}

fn find(text: &str) -> Result<Vec<Candidate>, PlanError> {
    let mut cache = Cache::default();
    resolve_desc(
        &desc(text),
        &mut Query {
            target: None,
            usdt_files: None,
            cache: &mut cache,
        },
    )
}

/// A Python that has USDT probes, stopped until dropped; it has mapped its files once it
/// printed its line.
struct Python(Child);

impl Python {
    fn start() -> Python {
        let mut child = Command::new("/usr/bin/python3.11")
            .args([
                "-c",
                "import sys; print('ready', flush=True); sys.stdin.read()",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("Debian's /usr/bin/python3.11 (it has USDT probes) runs");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n");
        Python(child)
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A description that names probes of `kind` without the kernel's tracefs, and the concrete
/// probe it must list; None for kinds whose probes are listed from tracefs.
fn example(kind: &ProbeKind, python: u32) -> Option<(String, String)> {
    let me = std::process::id();
    let same = |d: &str| Some((d.to_string(), d.to_string()));
    match kind {
        ProbeKind::Begin => same("dtrace:::BEGIN"),
        ProbeKind::End => same("dtrace:::END"),
        ProbeKind::Error => same("dtrace:::ERROR"),
        ProbeKind::Tick => same("profile:::tick-10ms"),
        ProbeKind::Profile => same("profile:::profile-997"),
        ProbeKind::SyscallEntry | ProbeKind::SyscallReturn | ProbeKind::Proc => None,
        ProbeKind::Uprobe => Some((
            format!("pid{me}:libc.so.6:getpi*:entry"),
            format!("pid{me}:libc.so.6:getpid:entry"),
        )),
        ProbeKind::Usdt => Some((
            format!("python{python}:python3.11::function-entr?"),
            format!("python{python}:python3.11::function-entry"),
        )),
    }
}

#[test]
fn every_provider_lists_and_matches_its_probes() {
    let python = Python::start();
    let mut tried = 0;
    for provider in PROVIDERS {
        for (kind, fires) in provider.kinds {
            assert_eq!(kind.provider().name, provider.name, "{kind:?}");
            assert_eq!(kind.in_kernel(), *fires == Fires::InKernel, "{kind:?}");
            let Some((pattern, expected)) = example(kind, python.0.id()) else {
                continue;
            };
            let found = find(&pattern).unwrap();
            let listed: Vec<String> = found.iter().map(|c| c.desc.to_string()).collect();
            assert!(listed.contains(&expected), "{pattern}: {listed:?}");
            for candidate in &found {
                assert_eq!(&candidate.kind, kind, "{pattern}");
                assert_eq!(
                    candidate.kind.in_kernel(),
                    candidate.site != Site::UserSpace,
                    "{pattern}: where it fires"
                );
            }
            // A description for another provider's probes matches none of these.
            let mut other = desc(&pattern);
            other.provider = format!("{}x", other.provider);
            let mut cache = Cache::default();
            let query = &mut Query {
                target: None,
                usdt_files: None,
                cache: &mut cache,
            };
            let others = resolve_desc(&other, query).unwrap_or_default();
            assert!(!others.iter().any(|c| c.desc.to_string() == expected));
            tried += 1;
        }
    }
    assert!(tried >= 7, "kinds tried without the kernel: {tried}");
}

#[test]
fn every_kind_belongs_to_one_provider() {
    for provider in PROVIDERS {
        for (kind, _) in provider.kinds {
            let owners = PROVIDERS
                .iter()
                .flat_map(|p| p.kinds)
                .filter(|(k, _)| k == kind)
                .count();
            assert_eq!(owners, 1, "{kind:?}");
        }
    }
}

#[test]
fn reserved_names_come_from_the_table() {
    let named: Vec<&str> = PROVIDERS
        .iter()
        .filter(|p| !matches!(p.naming, Naming::Usdt { .. }))
        .map(|p| p.name)
        .collect();
    assert!(named.contains(&"dtrace"), "{named:?}");
    for name in &named {
        assert!(is_reserved(name));
        assert_eq!(usdt_provider_with_pid(&format!("{name}123")), None);
    }
    assert!(!is_reserved("python"));
    assert!(!is_reserved("usdt"));
    assert_eq!(usdt_provider_with_pid("python123"), Some(("python", 123)));
    assert_eq!(usdt_provider_with_pid("python"), None);
    assert_eq!(usdt_provider_with_pid("py*123"), None);
}

#[test]
fn which_descriptions_may_name_probes_in_a_process() {
    for provider in PROVIDERS {
        let fixed = matches!(provider.naming, Naming::Fixed { .. });
        assert_eq!(in_process(provider.name), !fixed, "{}", provider.name);
    }
    assert!(!in_process(""));
    assert!(in_process("pid42"));
    assert!(in_process("python*"));
}

#[test]
fn providers_with_a_pid() {
    assert_eq!(pid_suffix("pid42", "pid"), Some(42));
    assert_eq!(pid_suffix("pid", "pid"), None);
    assert_eq!(usdt_provider_with_pid("pid123"), None);
}
