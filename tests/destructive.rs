//! Destructive actions on `dtk --backend linux run`: refused unless `-x destructive` allows
//! them, as dtrace(1) refuses them without -w; system() output in its place among the
//! program's output; raise() signalling the thread that fired the probe.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;

use crate::util::kernel_available;

fn dtk_run(args: &[&str]) -> Output {
    Command::new(cargo_bin("dtk"))
        .args(["--backend", "linux", "run"])
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("TERM")
        .output()
        .unwrap()
}

#[test]
fn system_runs_in_order_only_when_destructive_actions_are_allowed() {
    if !kernel_available("system_runs_in_order_only_when_destructive_actions_are_allowed") {
        return;
    }
    let word = format!("shell-{}", std::process::id());
    let prog = r#"BEGIN { printf("before\n"); system("echo %s %d", $$1, 6 * 7);
        printf("after\n"); exit(0); }"#;
    let refused = dtk_run(&["-x", "quiet", "-n", prog, &word]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("`system()` is a destructive action"),
        "{stderr}"
    );
    assert!(refused.stdout.is_empty());

    let allowed = dtk_run(&["-x", "quiet", "-x", "destructive", "-n", prog, &word]);
    let stderr = String::from_utf8_lossy(&allowed.stderr);
    assert!(allowed.status.success(), "{stderr}");
    // dtrace(1) ends its output with an empty line, and so does dtk.
    assert_eq!(
        String::from_utf8_lossy(&allowed.stdout).trim_end(),
        format!("before\n{word} 42\nafter")
    );
}

#[test]
fn raise_signals_the_thread_that_fired_the_probe() {
    if !kernel_available("raise_signals_the_thread_that_fired_the_probe") {
        return;
    }
    let prog = "syscall::clock_nanosleep:entry /pid == $target/ { raise(SIGUSR1); }";
    let started = Instant::now();
    let out = dtk_run(&["-x", "destructive", "-n", prog, "-c", "sleep 60"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("killed by signal 10 (SIGUSR1)"), "{stderr}");
    // Without the signal, sleep would run its full minute.
    assert!(started.elapsed() < Duration::from_secs(50), "{stderr}");
}
