//! String subroutines and friends through D, on edge cases.

use super::*;
use crate::backend::linux::firing::ProcessState;

#[test]
fn string_subroutines_on_edge_cases() {
    let src = r#"
BEGIN {
	printf("[%s][%s][%s][%s]\n", basename("/"), dirname("a"), basename("/usr/lib/"),
	    dirname("/usr/lib/"));
	printf("[%s][%s][%s]\n", substr("coconut", -3), substr("coconut", 2, 3),
	    substr("coconut", 10));
	printf("[%d][%d][%d][%d]\n", strlen(""), index("banana", "an"), rindex("banana", "an"),
	    index("banana", "an", 2));
	printf("[%s][%s][%s]\n", strstr("a/b/c", "/b"), toupper("MiXed1"), tolower("MiXed1"));
	printf("[%s][%s][%s]\n", lltostr(-12), lltostr(255, 16), strjoin("", ""));
	printf("[%d][%d]\n", sizeof (int), sizeof (string));
}
"#;
    assert_eq!(
        begin(src),
        [
            "[/][.][lib][/usr]\n",
            "[nut][con][]\n",
            "[0][1][3][3]\n",
            "[/b/c][MIXED1][mixed1]\n",
            "[-12][0xff][]\n",
            "[4][256]\n"
        ]
    );
}

#[test]
fn lltostr_with_a_bad_base_is_an_illegal_operation() {
    let mut h = Harness::new(
        "syscall::read:entry { x = lltostr(5, (int)arg0); }",
        &[("syscall::read:entry", ProbeKind::SyscallEntry)],
    );
    h.fire(&with_args(firing(0, 1), &[1]));
    assert_eq!(errors(&h.take()), ["illegal operation in action #1"]);
}

#[test]
fn progenyof_reads_the_ancestors_read_at_the_probe() {
    let src = r#"syscall::read:entry {
	printf("%d %d %d %d\n", progenyof(1), progenyof(7), progenyof(pid), progenyof((int)arg0));
}"#;
    let mut h = Harness::new(src, &[("syscall::read:entry", ProbeKind::SyscallEntry)]);
    let mut f = with_args(firing(0, 1), &[4_194_304 + 11]);
    f.pid = 42;
    f.process = Some(Box::new(ProcessState {
        ppid: 7,
        ancestors: vec![7, 5, 1],
        ..ProcessState::default()
    }));
    h.fire(&f);
    // A firing that carries no process state is nobody's progeny.
    f.process = None;
    h.fire(&f);
    assert_eq!(h.printed(), ["1 1 1 0\n", "0 0 0 0\n"]);
}

#[test]
fn copyinstr_with_a_limit_and_a_cast() {
    let src = r#"
syscall::write:entry { printf("%s|%s\n", copyinstr((uintptr_t)arg1, 3), copyinstr(arg1)); }
"#;
    let mut h = Harness::new(src, &[("syscall::write:entry", ProbeKind::SyscallEntry)]);
    h.fire(&with_string(
        with_args(firing(0, 1), &[1, 0x1000, 5]),
        1,
        "hello",
    ));
    // The limit counts the terminating NUL, as the kernel's read does.
    assert_eq!(h.printed(), ["he|hello\n"]);
}

#[test]
fn stringof_copyin_and_integers() {
    let src = r#"
syscall::write:entry { printf("%s|%s|%s\n", stringof(copyin(arg1, 8)), stringof(arg2), stringof((int)arg3)); }
"#;
    let mut h = Harness::new(src, &[("syscall::write:entry", ProbeKind::SyscallEntry)]);
    let f = with_args(firing(0, 1), &[1, 0x1000, 42, u64::MAX]);
    h.fire(&with_bytes(f, 1, b"abc\0defgh"));
    assert_eq!(h.printed(), ["abc|42|-1\n"]);
}
