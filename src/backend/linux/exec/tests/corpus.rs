//! Robustness: every script of the front end's corpus (tests/d/corpus) runs over a stream of
//! varied firings of each of its probes, with and without captured strings and bytes,
//! without a panic or an executor error; D run-time errors are allowed, as events.

use super::*;

/// A concrete probe for a clause's description: globs and empty parts filled in.
fn concrete(p: &ast::ProbeDesc) -> String {
    let fill = |s: &str, default: &str| {
        let s: String = s.chars().filter(|c| !"*?[]".contains(*c)).collect();
        if s.is_empty() {
            default.to_string()
        } else {
            s
        }
    };
    format!(
        "{}:{}:{}:{}",
        fill(&p.provider, "syscall"),
        fill(&p.module, "vmlinux"),
        fill(&p.function, "read"),
        fill(&p.name, "entry")
    )
}

fn kind_of(desc: &str) -> ProbeKind {
    match desc.rsplit(':').next().unwrap_or("") {
        "BEGIN" => ProbeKind::Begin,
        "END" => ProbeKind::End,
        "ERROR" => ProbeKind::Error,
        "return" => ProbeKind::SyscallReturn,
        name if name.starts_with("tick") => ProbeKind::Tick,
        name if name.starts_with("profile") => ProbeKind::Profile,
        _ => ProbeKind::SyscallEntry,
    }
}

/// A small deterministic generator, so that failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
}

fn varied_firing(probe: u32, rng: &mut Lcg) -> Firing {
    let mut f = firing(probe, (rng.next() % 4) as u32 + 1);
    f.pid = std::process::id();
    f.ts_ns = rng.next() % 1_000_000_000;
    let interesting = [0, 1, u64::MAX, 1 << 63, 4096, (-2i64) as u64, 255];
    for arg in f.args.iter_mut() {
        *arg = match rng.next() % 3 {
            0 => interesting[(rng.next() % interesting.len() as u64) as usize],
            _ => rng.next(),
        };
    }
    for arg in 0..6u8 {
        match rng.next() % 4 {
            0 => f = with_string(f, arg, "/usr/lib/python3.11/os.py"),
            1 => f = with_bytes(f, arg, &rng.next().to_le_bytes()),
            _ => {}
        }
    }
    f.errno = (rng.next() % 3) as i32;
    f
}

#[test]
fn corpus_scripts_run_over_varied_firings() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/d/corpus");
    let mut ran = 0;
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let source = std::fs::read_to_string(&path).unwrap();
        let macros = d::MacroArgs {
            target: Some(std::process::id()),
            args: vec!["1".into(), "read".into(), "3".into()],
            // One set of arguments serves every script, whichever of them it uses.
            defaultargs: true,
        };
        let Ok(compiled) = d::compile("corpus.d", &source, &macros) else {
            continue;
        };
        let mut descs: Vec<String> = Vec::new();
        for item in &compiled.program.items {
            if let ast::Item::Clause(c) = item {
                for p in &c.probes {
                    let d = concrete(p);
                    if !descs.contains(&d) {
                        descs.push(d);
                    }
                }
            }
        }
        let probes: Vec<(&str, ProbeKind)> =
            descs.iter().map(|d| (d.as_str(), kind_of(d))).collect();
        let mut h = Harness::with_macros(&source, &macros, &probes);
        let mut rng = Lcg(ran as u64 + 7);
        for _ in 0..200 {
            let probe = (rng.next() % probes.len() as u64) as u32;
            let f = varied_firing(probe, &mut rng);
            h.exec
                .fire(&f, &mut h.events)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        h.finals();
        h.exec.take_drops();
        ran += 1;
    }
    assert!(ran >= 40, "only {ran} corpus scripts compiled");
}
