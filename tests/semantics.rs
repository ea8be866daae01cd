//! D semantics seen from the command line, as dtrace(1) defines them: the exit status a
//! program chooses, aggregations that printa already printed, and `-x cpu=N`.

use std::process::Output;

use assert_cmd::cargo::cargo_bin;

use crate::util::kernel_available;

fn dtk_run(prog: &str, extra: &[&str]) -> Output {
    std::process::Command::new(cargo_bin("dtk"))
        .args(["--backend", "linux", "run", "-x", "quiet", "-n", prog])
        .args(extra)
        .env_remove("NO_COLOR")
        .env_remove("TERM")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn exit_status_is_the_first_exit_unless_end_sets_one() {
    if !kernel_available("exit_status_is_the_first_exit_unless_end_sets_one") {
        return;
    }
    let cases = [
        (
            "BEGIN { exit(3); printf(\"same\\n\"); } BEGIN { printf(\"next\\n\"); }",
            3,
            "same\n",
        ),
        ("BEGIN { exit(1); } END { exit(0); }", 0, ""),
        ("BEGIN { exit(0); } END { exit(4); }", 4, ""),
    ];
    for (prog, status, printed) in cases {
        let out = dtk_run(prog, &[]);
        assert_eq!(out.status.code(), Some(status), "{prog}: {out:?}");
        assert_eq!(stdout(&out).trim_end(), printed.trim_end(), "{prog}");
    }
}

#[test]
fn an_aggregation_printa_printed_is_not_printed_again_at_exit() {
    if !kernel_available("an_aggregation_printa_printed_is_not_printed_again_at_exit") {
        return;
    }
    let prog = "BEGIN { @a[\"printed\"] = count(); printa(@a); @b[\"kept\"] = sum(7); exit(0); }";
    let out = dtk_run(prog, &[]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert_eq!(text.matches("printed").count(), 1, "{text}");
    assert_eq!(text.matches("kept").count(), 1, "{text}");
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<u32> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string();
    list.split(',')
        .flat_map(|part| match part.split_once('-') {
            Some((a, b)) => (a.parse().unwrap()..=b.parse().unwrap()).collect::<Vec<u32>>(),
            None => vec![part.parse().unwrap()],
        })
        .collect()
}

#[test]
fn the_cpu_option_traces_one_cpu_and_runs_begin_and_end_there() {
    if !kernel_available("the_cpu_option_traces_one_cpu_and_runs_begin_and_end_there") {
        return;
    }
    let cpus = allowed_cpus();
    let cpu = *cpus.last().unwrap();
    let prog = "BEGIN { printf(\"begin %d\\n\", cpu); } \
                syscall:::entry { @[cpu] = count(); } profile-997 { @[cpu] = count(); } \
                tick-200ms { exit(0); } END { printf(\"end %d\\n\", cpu); }";
    let out = dtk_run(prog, &["-x", &format!("cpu={cpu}")]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    assert_eq!(
        lines.next(),
        Some(format!("begin {cpu}").as_str()),
        "{text}"
    );
    assert_eq!(lines.next(), Some(format!("end {cpu}").as_str()), "{text}");
    let keys: Vec<&str> = lines.filter_map(|l| l.split_whitespace().next()).collect();
    assert!(!keys.is_empty(), "{text}");
    assert!(keys.iter().all(|k| *k == cpu.to_string()), "{text}");
    let bad = dtk_run("BEGIN { exit(0); }", &["-x", "cpu=100000"]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("CPU 100000"));
}
