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

/// Builds a C program, with frame pointers, whose `main` calls `outer`, which calls `leaf`
/// three times, then sleeps so that it is still there when its frames are named.
fn frame_pointer_program(dir: &std::path::Path) -> std::path::PathBuf {
    let source = dir.join("stacks.c");
    std::fs::write(
        &source,
        "#include <unistd.h>\n\
         __attribute__((noinline)) int leaf(int n) { return n * 2; }\n\
         __attribute__((noinline)) int outer(int n) { int s = 0; for (int i = 0; i < n; i++) s += leaf(i); return s; }\n\
         int main(void) { usleep(200000); int s = outer(3); usleep(300000); return s == 6 ? 0 : 1; }\n",
    )
    .unwrap();
    let binary = dir.join("stacks");
    let built = std::process::Command::new("cc")
        .args(["-O0", "-fno-omit-frame-pointer", "-o"])
        .arg(&binary)
        .arg(&source)
        .status()
        .unwrap();
    assert!(built.success());
    binary
}

#[test]
fn ustack_names_the_frames_of_the_traced_program_and_aggregates_by_stack() {
    if !kernel_available("ustack_names_the_frames_of_the_traced_program_and_aggregates_by_stack") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let binary = frame_pointer_program(dir.path());
    let prog = "pid$target::leaf:entry { @[ustack(2)] = count(); @depth = max(ustackdepth); }";
    let out = dtk_run(prog, &["-c", binary.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    // At a function's first instruction its caller has not pushed a frame yet: kernels
    // that read the return address there name outer; older ones walk on to main, as
    // dtrace's own expected output shows.
    let frames: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.contains('`'))
        .collect();
    assert_eq!(frames.len(), 2, "{text}");
    assert_eq!(frames[0], "stacks`leaf", "{text}");
    let caller = |f: &str| frames[1].starts_with(&format!("stacks`{f}+0x"));
    assert!(caller("outer") || caller("main"), "{text}");
    let counts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains('`'))
        .collect();
    assert!(counts.contains(&"3"), "three calls, one stack: {text}");
}

#[test]
fn stack_records_the_kernel_frames_of_a_system_call() {
    if !kernel_available("stack_records_the_kernel_frames_of_a_system_call") {
        return;
    }
    let prog = "syscall::write:entry /pid == $target/ { stack(); printf(\"depth %d\\n\", stackdepth); exit(0); }";
    let out = dtk_run(prog, &["-c", "echo hi"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let frames: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("vmlinux`"))
        .collect();
    let depth: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("depth "))
        .and_then(|d| d.trim().parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(depth > 0, "{text}");
    assert_eq!(frames.len(), depth.min(20), "{text}");
    assert!(frames.iter().any(|f| f.contains("do_syscall_64")), "{text}");
}
