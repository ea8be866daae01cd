//! Speculative tracing on `dtk --backend linux run`: what a clause records after
//! speculate() reaches the output only if a later probe commits it.

use std::process::Command;

use assert_cmd::cargo::cargo_bin;

use crate::util::kernel_available;

#[test]
fn only_committed_speculations_are_printed() {
    if !kernel_available("only_committed_speculations_are_printed") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let present = dir.path().join("present");
    let missing = dir.path().join("missing");
    std::fs::write(&present, "x\n").unwrap();
    // The entry clause records the path speculatively; the return commits it when the open
    // failed and discards it when it succeeded.
    let prog = r#"
#pragma D option quiet
syscall::openat:entry /pid == $target/ { self->spec = speculation(); }
syscall::openat:entry /pid == $target && self->spec/ {
    speculate(self->spec);
    printf("open %s\n", copyinstr(arg1));
}
syscall::openat:return /pid == $target && self->spec && (int)arg0 < 0/ {
    commit(self->spec);
    self->spec = 0;
}
syscall::openat:return /pid == $target && self->spec && (int)arg0 >= 0/ {
    discard(self->spec);
    self->spec = 0;
}
"#;
    let command = format!(
        "cat {} {} {}",
        present.display(),
        missing.display(),
        present.display()
    );
    let out = Command::new(cargo_bin("dtk"))
        .args(["--backend", "linux", "run", "-c", &command, "-n", prog])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let opens: Vec<&str> = stdout.lines().filter(|l| l.starts_with("open ")).collect();
    let missing_line = format!("open {}", missing.display());
    let present_line = format!("open {}", present.display());
    assert_eq!(
        opens.iter().filter(|l| **l == missing_line).count(),
        1,
        "{stdout}\n{stderr}"
    );
    assert!(
        !opens.contains(&present_line.as_str()),
        "{stdout}\n{stderr}"
    );
}
