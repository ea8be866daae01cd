//! Planning without the kernel: user-space providers, clause indices, rates, zdefs, and
//! capture analysis over hand-made sites.

use super::*;
use crate::backend::linux::d::{compile, MacroArgs};

fn program(src: &str) -> ast::Program {
    compile("t.d", src, &MacroArgs::default()).unwrap().program
}

fn plan(src: &str) -> Result<Plan, PlanError> {
    resolve(&program(src), None, &Options::default(), None)
}

#[test]
fn dtrace_probes_and_ticks_and_their_clauses() {
    let p = plan("BEGIN {} profile:::tick-10ms {} END {} dtrace:::BEGIN, END {}").unwrap();
    let names: Vec<&str> = p.probes.iter().map(|p| p.info.desc.name.as_str()).collect();
    assert_eq!(names, ["BEGIN", "tick-10ms", "END"]);
    assert_eq!(p.probes[0].info.clauses, [0, 3]);
    assert_eq!(p.probes[2].info.clauses, [2, 3]);
    assert_eq!(p.probes[0].info.kind, ProbeKind::Begin);
    assert_eq!(
        p.probes[1].site,
        Site::Tick {
            period: Duration::from_millis(10),
            args: vec![
                ArgLoad::SampledPc { user: false },
                ArgLoad::SampledPc { user: true },
            ],
        }
    );
    assert!(p.probes[1].info.kind.in_kernel());
    assert!(list(&p).contains("    2    profile"));
}

#[test]
fn profile_rates_become_hertz() {
    let p = plan("profile:::profile-997 {} profile-1ms {}").unwrap();
    assert!(matches!(p.probes[0].site, Site::Profile { hz: 997, .. }));
    assert!(matches!(p.probes[1].site, Site::Profile { hz: 1000, .. }));
    assert_eq!(p.probes[0].info.kind, ProbeKind::Profile);
    assert!(matches!(
        plan("profile:::tick-soon {}"),
        Err(PlanError::BadRate { .. })
    ));
}

#[test]
fn a_description_that_matches_nothing_is_an_error_unless_zdefs() {
    let src = "BEGIN {} dtrace:::NOPE {}";
    let err = plan(src).unwrap_err();
    assert_eq!(
        err.to_string(),
        "probe description dtrace:::NOPE does not match any probe"
    );
    let options = Options {
        zdefs: true,
        ..Options::default()
    };
    let p = resolve(&program(src), None, &options, None).unwrap();
    assert_eq!(p.probes.len(), 1);
}

fn probe_with_args(n: usize, clauses: Vec<usize>) -> PlannedProbe {
    PlannedProbe {
        info: ProbeInfo {
            desc: Arc::new(ProbeDesc {
                provider: "test".into(),
                module: String::new(),
                function: format!("f{}", clauses[0]),
                name: "p".into(),
            }),
            kind: ProbeKind::Usdt,
            clauses,
        },
        site: Site::Tracepoint {
            category: "c".into(),
            name: "n".into(),
            args: vec![ArgLoad::Constant(0); n],
            guard: None,
        },
        captures: Captures::default(),
        kernel_filter: None,
        kernel_clauses: Vec::new(),
    }
}

#[test]
fn strings_are_captured_where_the_pointer_is_an_argument() {
    let prog = program(
        "BEGIN { self->p = arg1; this->q = (char *)arg2; }
         END /self->p/ { printf(\"%s %s\", copyinstr(self->p), copyinstr(arg0)); }
         ERROR { trace(copyin(arg3, 16)); }",
    );
    let clauses = prog.clauses();
    let mut probes = vec![
        probe_with_args(3, vec![0]),
        probe_with_args(3, vec![1]),
        probe_with_args(6, vec![2]),
        probe_with_args(1, vec![2]),
    ];
    captures::assign(&mut probes, &clauses);
    assert_eq!(
        probes[0].captures.strings,
        [1],
        "self->p = arg1, read later"
    );
    assert_eq!(probes[1].captures.strings, [0], "copyinstr(arg0)");
    assert_eq!(probes[2].captures.bytes, [(3, 16)]);
    assert!(probes[3].captures.bytes.is_empty(), "arg3 is not provided");
}

#[test]
fn reads_through_pointers_are_derived_with_c_arithmetic() {
    let prog = program(
        "BEGIN {
            this->argv = (uint64_t *)arg1;
            this->code = *(uint64_t *)copyin(arg1, 8) & ~7;
            printf(\"%s %s %s\", copyinstr(*(uint64_t *)copyin((uint64_t)(this->argv + 2), 8)),
                copyinstr(this->code + 40), copyinstr(arg0));
            if (arg2) { this->code = 0; }
            trace(copyinstr(this->code));
        }",
    );
    let clauses = prog.clauses();
    let mut probes = vec![probe_with_args(3, vec![0])];
    captures::assign(&mut probes, &clauses);
    let reads = &probes[0].captures.derived;
    let arg1_plus = |n| {
        AddrExpr::Binary(
            AddrOp::Add,
            Box::new(AddrExpr::Arg(1)),
            Box::new(AddrExpr::Const(n)),
        )
    };
    let argv2 = arg1_plus(16);
    assert!(
        reads.contains(&DerivedRead {
            addr: argv2,
            size: Some(8)
        }),
        "argv + 2 is scaled by sizeof (uint64_t): {reads:?}"
    );
    assert!(
        reads.iter().any(|r| r.size.is_none()
            && matches!(&r.addr, AddrExpr::Binary(AddrOp::Add, code, _) if code.loads())),
        "this->code + 40 reads through arg1: {reads:?}"
    );
    assert!(
        !reads
            .iter()
            .any(|r| r.addr == AddrExpr::Arg(0) || r.addr == arg1_plus(0)),
        "plain arguments are ordinary captures"
    );
    assert_eq!(probes[0].captures.strings, [0]);
    assert_eq!(
        reads.iter().filter(|r| r.size.is_none()).count(),
        2,
        "this->code is unknown after the if: no read for copyinstr(this->code)"
    );
}

/// The names of the aggregations the plan keeps in the kernel.
fn kernel_aggregations(src: &str) -> Vec<String> {
    plan(src)
        .unwrap()
        .kernel_aggregations
        .into_iter()
        .map(|a| a.name)
        .collect()
}

#[test]
fn simple_aggregating_clauses_on_kernel_probes_run_in_the_kernel() {
    let p = plan("profile-997 /pid != 0/ { @[cpu, execname] = count(); @s = sum(arg0); } END { printa(@s); }").unwrap();
    let names: Vec<&str> = p
        .kernel_aggregations
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, ["", "s"]);
    assert_eq!(
        p.kernel_aggregations[0].keys,
        [KeyKind::Int { signed: false }, KeyKind::Execname]
    );
    assert_eq!(p.kernel_aggregations[0].key_size(), 24);
    let profile = &p.probes[0];
    assert!(profile.info.clauses.is_empty(), "the executor skips it");
    assert_eq!(profile.kernel_clauses.len(), 1);
    assert_eq!(profile.kernel_clauses[0].updates.len(), 2);
    assert_eq!(profile.kernel_filter, Some(vec![]), "nothing to emit");
    assert_eq!(p.probes[1].info.clauses, [1]);
}

#[test]
fn aggregations_stay_in_user_space_when_any_update_needs_it() {
    assert!(kernel_aggregations("profile-997 { @a = count(); } END { @a = count(); }").is_empty());
    assert!(kernel_aggregations("profile-997 { @a = count(); printf(\"x\"); }").is_empty());
    assert!(kernel_aggregations(
        "profile-997 { @a[execname] = count(); } profile-99 { @a[probefunc] = count(); }"
    )
    .is_empty());
    assert!(kernel_aggregations(
        "profile-997 /self->x/ { @a = count(); } profile-99 { self->x = 1; trace(1); }"
    )
    .is_empty());
    assert!(
        kernel_aggregations("profile-997 { @a = count(); } profile-99 { trunc(@a); }").is_empty(),
        "trunc in a kernel probe's clause acts where the executor's copy is stale"
    );
    assert!(kernel_aggregations("profile-997 { @a = count(); } ERROR { clear(@a); }").is_empty());
    assert!(kernel_aggregations("profile-997 { @a = count(); } BEGIN { clear(@a); }").is_empty());
    assert!(kernel_aggregations(
        "profile-997 { @a = count(); } tick-1s, profile-99 { normalize(@a, 2); }"
    )
    .is_empty());
    assert_eq!(
        kernel_aggregations("profile-997 { @a = count(); } profile-99 /0/ { trunc(@a); }"),
        ["a"],
        "a clause that never runs does not count"
    );
    assert!(kernel_aggregations("profile-997 { @a = quantize(arg0); }").is_empty());
    assert!(kernel_aggregations("profile-997 { @a[walltimestamp] = count(); }").is_empty());
    // @b is updated in user space too, so the clause that updates both stays there, and @a
    // with it.
    assert!(kernel_aggregations(
        "profile-997 { @a = count(); @b = count(); } profile-99 { @b = count(); trace(1); }"
    )
    .is_empty());
    assert_eq!(
        kernel_aggregations("profile-997 { @a = count(); } profile-99 { @b = avg(1); }"),
        ["a"]
    );
}

/// The kernel aggregations of a plan, each with whether it is drained.
fn drained(src: &str) -> Vec<(String, bool)> {
    plan(src)
        .unwrap()
        .kernel_aggregations
        .into_iter()
        .map(|a| (a.name, a.drained))
        .collect()
}

#[test]
fn aggregations_printed_cleared_or_truncated_at_ticks_and_end_stay_in_the_kernel() {
    let named = |pairs: &[(&str, bool)]| -> Vec<(String, bool)> {
        pairs.iter().map(|&(n, d)| (n.to_string(), d)).collect()
    };
    assert_eq!(
        drained("profile-997 { @c[probename] = count(); } tick-1s { printa(@c); trunc(@c); }"),
        named(&[("c", true)])
    );
    assert_eq!(
        drained(
            "profile-997 { @c[pid] = count(); @m = min(arg0); @n = max(arg0); @s = sum(arg0); } \
             tick-10ms { printa(@c); trunc(@c, 5); clear(@m); } END { trunc(@n); } \
             tick-1s { normalize(@s, 1000); printa(@s); denormalize(@s); }"
        ),
        named(&[("c", true), ("m", true), ("n", true), ("s", false)]),
        "normalize needs no reset: the executor divides what it prints"
    );
    assert_eq!(
        drained("profile-997 { @a = count(); } END { printa(@a); }"),
        named(&[("a", false)]),
        "printed only: one map, read whole"
    );
}

#[test]
fn keys_of_constants_and_probe_names_index_an_array_by_probe() {
    let p = plan(
        "profile-997, profile-99 { @[0, \"all\", probename] = count(); @n = sum(arg0); } \
         END { printa(@n); }",
    );
    let p = p.unwrap();
    let by_name = |name: &str| {
        p.kernel_aggregations
            .iter()
            .find(|a| a.name == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        by_name("n").storage,
        Storage::ByProbe { slots: 1 },
        "no key: one slot"
    );
    let plain = by_name("");
    assert_eq!(
        plain.keys,
        [
            KeyKind::Const {
                value: 0,
                signed: true
            },
            KeyKind::Str("all".into()),
            KeyKind::ProbeName
        ]
    );
    assert_eq!(
        plain.storage,
        Storage::ByProbe { slots: 3 },
        "one slot per probe of the plan (END too)"
    );
}

#[test]
fn an_integer_key_that_differs_between_updates_stays_in_the_hash_key() {
    let p = plan(
        "profile-997 { @a[1, probename] = count(); } profile-99 { @a[2, probename] = count(); }",
    )
    .unwrap();
    assert_eq!(
        p.kernel_aggregations[0].keys[0],
        KeyKind::Int { signed: true }
    );
    assert_eq!(p.kernel_aggregations[0].storage, Storage::Hash);
    let p = plan("profile-997 { @a[pid, probename] = count(); }").unwrap();
    assert_eq!(p.kernel_aggregations[0].storage, Storage::Hash);
}

#[test]
fn kernel_clauses_read_only_the_header_fields_they_name() {
    let reads = |src: &str| {
        let p = plan(src).unwrap();
        HeaderReads::of(&p.probes[0].kernel_clauses)
    };
    assert_eq!(
        reads("profile-997 { @[probename] = count(); }"),
        HeaderReads::default()
    );
    assert_eq!(
        reads("profile-997 /pid == 4/ { @[execname] = sum(arg0); }"),
        HeaderReads {
            pid_tgid: true,
            comm: true,
            args: true,
            ..HeaderReads::default()
        }
    );
    assert_eq!(
        reads("profile-997 /cpu == 1 && uid == 0/ { @ = count(); }"),
        HeaderReads {
            cpu: true,
            uid_gid: true,
            ..HeaderReads::default()
        }
    );
}

#[test]
fn zones_are_resolved_once_in_first_use_order() {
    if crate::inspect::cgroup::mount().is_none() {
        return;
    }
    let p = plan(
        "BEGIN /zonename == \"global\"/ {} \
         END { x = \"/\" != zonename; y = zonename == \"global\"; }",
    )
    .unwrap();
    let names: Vec<(&str, u32)> = p.zones.iter().map(|z| (z.name.as_str(), z.level)).collect();
    assert_eq!(names, [("global", 0), ("/", 0)]);
    assert_eq!(p.zones[0].cgroup_id, p.zones[1].cgroup_id);
    let err = plan("BEGIN { x = zonename == \"dtk-no-such-zone\"; }").unwrap_err();
    assert!(
        matches!(&err, PlanError::Zone { name, .. } if name == "dtk-no-such-zone"),
        "{err}"
    );
    // Only comparisons with a string name a zone.
    assert!(plan("BEGIN { x = zonename; }").unwrap().zones.is_empty());
}

#[test]
fn thread_variables_used_only_by_kernel_clauses_live_in_the_kernel() {
    let p = plan(
        "profile-997 { self->ts = timestamp; } \
         profile-99 /self->ts/ { this->ns = timestamp - self->ts; @t = sum(this->ns); \
         self->ts = 0; @n = count(); }",
    )
    .unwrap();
    assert_eq!(p.kernel_vars, ["ts"]);
    assert!(p.probes.iter().all(|probe| probe.info.clauses.is_empty()));
    let ret = &p.probes[1].kernel_clauses[0];
    assert_eq!(ret.updates.len(), 2);
    assert_eq!(ret.assigns.len(), 1);
    assert_eq!(ret.assigns[0].after, 1, "self->ts = 0 comes after the sum");
    assert!(
        matches!(&ret.updates[0].value, Some(v) if !format!("{v:?}").contains("ns")),
        "this->ns is replaced by its value"
    );
    // Read by a clause left in user space (printf), the variable stays there, and so do the
    // clauses that set it.
    let p = plan(
        "profile-997 { self->ts = timestamp; } \
         profile-99 /self->ts/ { printf(\"%d\", timestamp - self->ts); }",
    )
    .unwrap();
    assert!(p.kernel_vars.is_empty());
    assert_eq!(p.probes[0].info.clauses, [0]);
}

#[test]
fn a_pointer_saved_at_one_probe_is_read_again_at_the_next() {
    let prog =
        program("BEGIN { self->p = arg1; } END /self->p/ { printf(\"%s\", copyinstr(self->p)); }");
    let clauses = prog.clauses();
    let mut probes = vec![probe_with_args(3, vec![0]), probe_with_args(3, vec![1])];
    let shadowed = captures::assign(&mut probes, &clauses);
    assert_eq!(shadowed, ["p"]);
    assert_eq!(probes[0].captures.strings, [1], "read at the first probe");
    assert_eq!(
        probes[0].captures.shadow_stores,
        [ShadowStore {
            var: 0,
            value: AddrExpr::Arg(1),
            guard: None,
            probe: None
        }],
        "and arg1 kept"
    );
    assert_eq!(
        probes[1].captures.derived,
        [DerivedRead {
            addr: AddrExpr::Shadow(0),
            size: None
        }],
        "read again through it at the second"
    );
}

/// The stores of `probe`, as (variable, value, whether guarded).
fn stores_of(probe: &PlannedProbe) -> Vec<(usize, AddrExpr, bool)> {
    probe
        .captures
        .shadow_stores
        .iter()
        .map(|s| (s.var, s.value.clone(), s.guard.is_some()))
        .collect()
}

fn load(addr: AddrExpr, bytes: u8, signed: bool) -> AddrExpr {
    AddrExpr::Load {
        addr: Box::new(addr),
        bytes,
        signed,
    }
}

fn add(a: AddrExpr, b: u64) -> AddrExpr {
    AddrExpr::Binary(AddrOp::Add, Box::new(a), Box::new(AddrExpr::Const(b)))
}

#[test]
fn thread_pointers_are_followed_in_the_kernel_from_probe_to_probe() {
    // pyflow-trampoline.d's pattern: the frame is kept at entry, read at return through the
    // kept value, then replaced by what the thread state says (through a clause-local).
    let prog = program(
        "BEGIN { self->t = arg0; self->f = arg1; } \
         END { this->c = self->t; printf(\"%d\", *(int8_t *)copyin(self->f + 3, 1)); \
               self->f = *(uint64_t *)copyin(this->c + 72, 8); }",
    );
    let clauses = prog.clauses();
    let mut probes = vec![probe_with_args(3, vec![0]), probe_with_args(3, vec![1])];
    let kept = captures::assign(&mut probes, &clauses);
    assert_eq!(kept, ["f", "t"]);
    let (f, t) = (AddrExpr::Shadow(0), AddrExpr::Shadow(1));
    assert_eq!(
        stores_of(&probes[0]),
        [(1, AddrExpr::Arg(0), false), (0, AddrExpr::Arg(1), false)],
        "kept in the order of the assignments"
    );
    assert_eq!(
        stores_of(&probes[1]),
        [(0, load(add(t.clone(), 72), 8, false), false)]
    );
    let mut reads: Vec<AddrExpr> = probes[1]
        .captures
        .derived
        .iter()
        .map(|r| r.addr.clone())
        .collect();
    reads.sort();
    let mut want = vec![add(f, 3), add(t, 72)];
    want.sort();
    assert_eq!(reads, want, "both read through the kept values");
}

#[test]
fn a_kept_pointer_set_earlier_in_the_same_firing_is_its_new_value() {
    let prog = program(
        "BEGIN { self->f = arg1; } \
         END { self->f = arg2; printf(\"%d\", *(uint8_t *)copyin(self->f + 1, 1)); }",
    );
    let clauses = prog.clauses();
    let mut probes = vec![probe_with_args(3, vec![0]), probe_with_args(3, vec![1])];
    captures::assign(&mut probes, &clauses);
    assert_eq!(probes[1].captures.derived[0].addr, add(AddrExpr::Arg(2), 1));
}

#[test]
fn thread_variables_the_kernel_cannot_mirror_are_not_followed() {
    for src in [
        // Set under a predicate only the executor evaluates.
        "BEGIN { self->n = 1; } BEGIN /self->n/ { self->f = arg1; } \
         END { printf(\"%d\", *(uint8_t *)copyin(self->f + 1, 1)); }",
        // Set in an `if`.
        "BEGIN { if (arg0) { self->f = arg1; } } \
         END { printf(\"%d\", *(uint8_t *)copyin(self->f + 1, 1)); }",
        // Changed with a compound operator.
        "BEGIN { self->f = arg1; } END { self->f += 8; } \
         END { printf(\"%d\", *(uint8_t *)copyin(self->f + 1, 1)); }",
        // Set to a value the kernel does not compute.
        "BEGIN { self->f = timestamp; } \
         END { printf(\"%d\", *(uint8_t *)copyin(self->f + 1, 1)); }",
    ] {
        let prog = program(src);
        let clauses = prog.clauses();
        let mut probes: Vec<PlannedProbe> = (0..clauses.len())
            .map(|c| probe_with_args(3, vec![c]))
            .collect();
        assert!(captures::assign(&mut probes, &clauses).is_empty(), "{src}");
        assert!(probes.iter().all(|p| p.captures.shadow_stores.is_empty()));
    }
}

#[test]
fn a_kept_pointer_set_under_a_kernel_predicate_is_kept_only_when_it_holds() {
    let prog = program(
        "BEGIN /pid == 42/ { self->f = arg1; } \
         END { printf(\"%d\", *(uint8_t *)copyin(self->f + 1, 1)); }",
    );
    let clauses = prog.clauses();
    let mut probes = vec![probe_with_args(3, vec![0]), probe_with_args(3, vec![1])];
    assert_eq!(captures::assign(&mut probes, &clauses), ["f"]);
    assert_eq!(stores_of(&probes[0]), [(0, AddrExpr::Arg(1), true)]);
}

#[test]
fn a_kept_pointer_set_under_a_predicate_on_a_kept_value_is_kept_as_a_choice() {
    // pyflow-trampoline.d's return: the caller's frame is read only on a thread whose state
    // an entry kept. The kernel keeps `t ? new frame : old frame`, as the executor does.
    let prog = program(
        "BEGIN { self->t = arg0; self->f = arg1; } \
         END { printf(\"%d\", *(int8_t *)copyin(self->f + 3, 1)); } \
         END /self->t/ { self->f = *(uint64_t *)copyin(self->t + 72, 8); } \
         END { printf(\"%d\", *(int8_t *)copyin(self->f + 5, 1)); }",
    );
    let clauses = prog.clauses();
    let mut probes = vec![
        probe_with_args(3, vec![0]),
        probe_with_args(3, vec![1, 2, 3]),
    ];
    assert_eq!(captures::assign(&mut probes, &clauses), ["f", "t"]);
    let (f, t) = (AddrExpr::Shadow(0), AddrExpr::Shadow(1));
    let chosen = AddrExpr::Select(
        Box::new(t.clone()),
        Box::new(load(add(t.clone(), 72), 8, false)),
        Box::new(f.clone()),
    );
    assert_eq!(stores_of(&probes[1]), [(0, chosen.clone(), false)]);
    let reads: Vec<AddrExpr> = probes[1]
        .captures
        .derived
        .iter()
        .map(|r| r.addr.clone())
        .collect();
    assert!(reads.contains(&add(f, 3)), "before the clause: {reads:?}");
    assert!(reads.contains(&add(chosen, 5)), "after it: {reads:?}");
}

#[test]
fn a_later_clause_never_reads_a_value_the_kernel_assumed_was_assigned() {
    // p is kept (copyinstr(self->p), set from an argument); the second END's assignment
    // depends on a predicate only the executor evaluates, so what p holds after it is not
    // known to the kernel: arg2 + 1 is not read as if the assignment had run.
    let prog = program(
        "BEGIN { self->p = arg1; self->n = timestamp; } \
         END /self->n == 7/ { self->p = arg2; } \
         END { printf(\"%s %s\", copyinstr(self->p), copyinstr(self->p + 1)); }",
    );
    let clauses = prog.clauses();
    let mut probes = vec![probe_with_args(3, vec![0]), probe_with_args(3, vec![1, 2])];
    assert_eq!(captures::assign(&mut probes, &clauses), ["p"]);
    let reads: Vec<AddrExpr> = probes[1]
        .captures
        .derived
        .iter()
        .map(|r| r.addr.clone())
        .collect();
    assert!(
        !reads.contains(&add(AddrExpr::Arg(2), 1)),
        "read as if assigned: {reads:?}"
    );
}

#[test]
fn thread_variables_a_user_space_clause_names_leave_the_kernel_for_every_clause() {
    // ts is set and tested by clauses the kernel can run, but a printf under a predicate
    // names it too: every clause then uses the executor's ts, none a kernel copy.
    let p = plan(
        "profile-997 { self->ts = timestamp; } \
         profile-99 /self->ts/ { @n = count(); } \
         profile-99 /self->ts && arg0 == 0/ { printf(\"%d\", timestamp - self->ts); } \
         profile-99 { self->ts = 0; }",
    )
    .unwrap();
    assert!(p.kernel_vars.is_empty(), "{:?}", p.kernel_vars);
    for probe in &p.probes {
        for k in &probe.kernel_clauses {
            assert!(k.assigns.is_empty(), "a kernel clause assigns ts: {k:?}");
        }
    }
}

/// `ppid` and `curthread` need the task and its parent only; `curpsinfo` and `progenyof()`
/// need the whole block. Each probe reads as much as its own clauses use.
#[test]
fn a_probe_reads_only_as_much_of_the_process_as_its_clauses_use() {
    let p = plan(
        "syscall::getppid:entry { trace(ppid); } \
         syscall::getpid:entry { trace(curpsinfo->pr_pgid); } \
         syscall::getuid:entry { trace(pid); } \
         syscall::getgid:entry /progenyof(1)/ { trace(curthread); }",
    )
    .unwrap();
    let reads: Vec<(&str, ProcessRead)> = p
        .probes
        .iter()
        .map(|p| (p.info.desc.function.as_str(), p.captures.process))
        .collect();
    assert_eq!(
        reads,
        [
            ("getppid", ProcessRead::Parent),
            ("getpid", ProcessRead::Full),
            ("getuid", ProcessRead::None),
            ("getgid", ProcessRead::Full),
        ]
    );
}
