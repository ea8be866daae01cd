//! Variables: the opensnoop pattern across entry and return, thread-locals per thread and
//! freed by 0, clause-locals, integer wraparound and C arithmetic, dynvarsize.

use super::*;
use crate::backend::linux::firing::ProcessState;
use crate::backend::linux::firing::Zone;

const OPENSNOOP: &str = r#"
#pragma D option quiet
syscall::openat:entry
{
	self->path = arg1;
	self->flags = arg2;
}
syscall::openat:return
/self->path/
{
	printf("%s %d %s %d\n", execname, (int)arg0, copyinstr(self->path), self->flags);
}
syscall::openat:return
/self->path/
{
	self->path = 0;
	self->flags = 0;
}
"#;

fn opensnoop() -> Harness {
    Harness::new(
        OPENSNOOP,
        &[
            ("syscall::openat:entry", ProbeKind::SyscallEntry),
            ("syscall::openat:return", ProbeKind::SyscallReturn),
        ],
    )
}

#[test]
fn opensnoop_pattern_reads_the_string_captured_at_entry() {
    let mut h = opensnoop();
    let entry = with_string(
        with_args(firing(0, 7), &[u64::MAX - 99, 0x7ffd_0000_1000, 0o2]),
        1,
        "/etc/passwd",
    );
    h.fire(&entry);
    h.fire(&with_args(firing(1, 7), &[3, 3]));
    assert_eq!(h.printed(), ["cat 3 /etc/passwd 2\n"]);
    // The last clause freed self->path: a return with no entry prints nothing.
    h.fire(&with_args(firing(1, 7), &[4, 4]));
    assert!(h.take().is_empty());
}

#[test]
fn thread_locals_are_per_thread() {
    let mut h = opensnoop();
    let entry = with_string(with_args(firing(0, 7), &[0, 0x1000, 0]), 1, "/tmp/a");
    h.fire(&entry);
    // Thread 8 never entered: its return sees no self->path.
    h.fire(&with_args(firing(1, 8), &[3]));
    assert!(h.take().is_empty());
    h.fire(&with_args(firing(1, 7), &[5]));
    assert_eq!(h.printed(), ["cat 5 /tmp/a 0\n"]);
}

#[test]
fn copyinstr_of_an_address_nothing_was_read_at_is_an_error() {
    let mut h = opensnoop();
    h.fire(&with_args(firing(0, 7), &[0, 0xdead_beef, 0]));
    h.fire(&with_args(firing(1, 7), &[3]));
    let events = h.take();
    assert_eq!(
        errors(&events),
        ["invalid address (0xdeadbeef) in action #1"]
    );
    // The clause that frees the variables still ran.
    h.fire(&with_args(firing(1, 7), &[3]));
    assert!(h.take().is_empty());
}

#[test]
fn integers_wrap_to_their_declared_width() {
    let src = r#"
int i; char c; unsigned int u; short s;
BEGIN {
	i = 2147483647; i++;
	c = 200;
	u = -1;
	s = 70000;
	this->neg = -16;
	printf("%d %d %u %d %d\n", i, c, u, s, this->neg >> 2);
	printf("%d %d\n", u / 2 > 0, (int)u / 2);
	printf("%d %d\n", -7 / 2, -7 % 2);
}
"#;
    assert_eq!(
        begin(src),
        ["-2147483648 -56 4294967295 4464 -4\n", "1 0\n", "-3 -1\n"]
    );
}

#[test]
fn run_time_arithmetic_follows_c_types() {
    let src = r#"
syscall::read:entry {
	this->a = (int)arg0;
	this->b = (unsigned int)arg1;
	printf("%d %u %d\n", this->a / 2, this->b / 2, this->a < this->b);
	printf("%d %d\n", (long)arg0 >> 60, arg0 >> 60);
}
"#;
    let mut h = Harness::new(src, &[("syscall::read:entry", ProbeKind::SyscallEntry)]);
    // arg0 = -8 as a 64-bit pattern, arg1 = 0xffff_fffe.
    h.fire(&with_args(firing(0, 1), &[(-8i64) as u64, 0xffff_fffe]));
    // int / 2 is signed; unsigned int / 2 is not; int < unsigned int compares unsigned.
    assert_eq!(
        h.printed(),
        ["-4 2147483647 1\n", &format!("-1 {}\n", u64::MAX >> 60)]
    );
}

#[test]
fn clause_locals_last_one_firing_and_globals_persist() {
    let src = r#"
syscall::read:entry { this->n++; total++; }
syscall::read:entry { printf("%d %d\n", this->n, total); }
"#;
    let mut h = Harness::new(src, &[("syscall::read:entry", ProbeKind::SyscallEntry)]);
    h.fire(&firing(0, 1));
    h.fire(&firing(0, 1));
    assert_eq!(h.printed(), ["1 1\n", "1 2\n"]);
}

#[test]
fn associative_arrays_by_tuple_and_dynvarsize_drops() {
    let src = r#"
#pragma D option dynvarsize=256
syscall::read:entry { counts[execname, tid]++; printf("%d\n", counts[execname, tid]); }
"#;
    let mut h = Harness::new(src, &[("syscall::read:entry", ProbeKind::SyscallEntry)]);
    for tid in [1, 1, 2, 3, 4, 5] {
        h.fire(&firing(0, tid));
    }
    // Each element costs a header, two keys (one a string at strsize 256) and a value, so
    // 256 bytes hold none: every increment is dropped and reads 0.
    assert_eq!(h.printed(), ["0\n"; 6]);
    assert_eq!(h.drops(DropKind::Dynamic), 6);

    let src = r#"
syscall::read:entry { counts[tid]++; printf("%d\n", counts[tid]); }
"#;
    let mut h = Harness::new(src, &[("syscall::read:entry", ProbeKind::SyscallEntry)]);
    for tid in [1, 1, 2] {
        h.fire(&firing(0, tid));
    }
    assert_eq!(h.printed(), ["1\n", "2\n", "1\n"]);
    assert_eq!(h.drops(DropKind::Dynamic), 0);
}

#[test]
fn strings_are_cut_at_strsize_and_counted() {
    let src = r#"
#pragma D option strsize=8
BEGIN { s = strjoin("abcdef", "ghijkl"); printf("%s %d\n", s, strlen(s)); }
"#;
    let mut h = Harness::new(src, &[("BEGIN", ProbeKind::Begin)]);
    h.fire(&firing(0, 0));
    // strsize counts the bytes of the string without its NUL, as in DTrace.
    assert_eq!(h.printed(), ["abcdefgh 8\n"]);
    assert_eq!(h.drops(DropKind::TruncatedString), 1);
    assert_eq!(h.drops(DropKind::TruncatedString), 0);
}

#[test]
fn string_comparison_is_strcmp() {
    let src = r#"
syscall::read:entry /execname == "cat"/ {
	printf("%d %d %d\n", execname < "dog", execname > "car", probefunc != "read");
}
syscall::read:entry /execname == "dog"/ { printf("dog\n"); }
"#;
    let mut h = Harness::new(src, &[("syscall::read:entry", ProbeKind::SyscallEntry)]);
    h.fire(&firing(0, 1));
    assert_eq!(h.printed(), ["1 1 0\n"]);
}

#[test]
fn builtins_from_the_firing_and_its_process_state() {
    let src = r#"
syscall::read:entry {
	printf("%d %d %d %d %s %s %s %s %d\n", pid, tid, uid, cpu, probeprov, probemod,
	    probefunc, probename, timestamp);
	printf("%d %d %s\n", ppid, curpsinfo->pr_pid, zonename);
	printf("%d %d\n", errno, walltimestamp > timestamp);
	printf("%d %d %d %d %d %d %s %d %x\n", curpsinfo->pr_ppid, curpsinfo->pr_pgid,
	    curpsinfo->pr_sid, curpsinfo->pr_euid, curpsinfo->pr_egid, curpsinfo->pr_argc,
	    curpsinfo->pr_psargs, curpsinfo->pr_size, curthread);
}
"#;
    let mut h = Harness::new(src, &[("syscall::read:entry", ProbeKind::SyscallEntry)]);
    let mut f = firing(0, 3);
    let (pid, ppid) = (4242, 4000);
    f.pid = pid;
    f.errno = 2;
    f.process = Some(Box::new(ProcessState {
        ppid,
        pgid: 4001,
        sid: 4002,
        euid: 7,
        egid: 8,
        argc: 2,
        psargs: "cat /etc/hostname".into(),
        size_pages: 3,
        task: 0xffff_8880_1234_5678,
        ..ProcessState::default()
    }));
    h.fire(&f);
    // SAFETY: sysconf has no preconditions.
    let kb = 3 * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } / 1024;
    assert_eq!(
        h.printed(),
        [
            format!("{pid} 3 1000 1 syscall  read entry 1000000\n"),
            format!("{ppid} {pid} global\n"),
            "2 1\n".to_string(),
            format!("{ppid} 4001 4002 7 8 2 cat /etc/hostname {kb} ffff888012345678\n"),
        ]
    );
}

#[test]
fn integer_keys_match_whatever_their_signedness() {
    let src = r#"
syscall::read:entry { a[pid] = 5; @c[pid] = count(); }
syscall::read:entry { printf("%d\n", a[(uint64_t)pid]); @c[(uint64_t)pid] = count(); }
"#;
    let mut h = Harness::new(src, &[("syscall::read:entry", ProbeKind::SyscallEntry)]);
    h.fire(&firing(0, 1));
    assert_eq!(h.printed(), ["5\n"]);
    let finals = h.finals();
    assert_eq!(finals[0].entries.len(), 1, "{finals:?}");
}

#[test]
fn zonename_compared_with_a_zone_reads_the_membership_bits() {
    let src = r#"
syscall::read:entry {
	printf("%d %d %d %d\n", zonename == "web", "web" != zonename, zonename == "global",
	    zonename == "other");
}
"#;
    let mut h = Harness::new(src, &[("syscall::read:entry", ProbeKind::SyscallEntry)]);
    let zone = |name: &str, level| Zone {
        name: name.into(),
        cgroup_id: 4242,
        level,
    };
    h.exec = h.exec.with_zones(vec![zone("web", 2), zone("global", 0)]);
    // In web's cgroup or below it (bit 0), then outside it; the root holds every thread, and
    // a name the plan did not resolve compares as a name (zonename is "global" here).
    let mut inside = firing(0, 1);
    inside.zones = 1;
    h.fire(&inside);
    h.fire(&firing(0, 1));
    assert_eq!(h.printed(), ["1 0 1 0\n", "0 1 1 0\n"]);
}

/// The value the front end folded `expr` to, or None when it did not fold it.
fn folded(expr: &str) -> Option<i64> {
    let source = format!("BEGIN {{ printf(\"%d\", {expr}); }}");
    let compiled = d::compile("fold.d", &source, &d::MacroArgs::default()).ok()?;
    let clause = compiled.program.clauses()[0];
    let Some([ast::Stmt::Expr(call)]) = clause.body.as_deref() else {
        return None;
    };
    let ast::ExprKind::Call { args, .. } = &call.kind else {
        return None;
    };
    args[1].as_int().map(|v| v as i64)
}

#[test]
fn folding_and_the_executor_agree() {
    // (type of the left operand, its value, operator, type of the right operand, its value)
    let table: &[(&str, i64, &str, &str, i64)] = &[
        ("int", 1, "<<", "int", 64),
        ("long", 1, "<<", "int", 64),
        ("long", 1, "<<", "int", 65),
        ("long", 1, "<<", "int", -1),
        ("int", 1, "<<", "int", 31),
        ("int", 1, "<<", "int", 40),
        ("long", -8, ">>", "int", 1),
        ("long", -8, ">>", "int", 64),
        ("long", -8, ">>", "int", -62),
        ("unsigned long", -8, ">>", "int", 60),
        ("unsigned long", -8, ">>", "int", 124),
        ("unsigned int", -8, ">>", "long", 1),
        ("char", 100, "+", "char", 100),
        ("int", 2147483647, "+", "int", 1),
        ("unsigned int", 0, "-", "int", 1),
        ("long", -9223372036854775807 - 1, "/", "long", -1),
        ("long", -9223372036854775807 - 1, "%", "long", -1),
        ("int", -7, "/", "int", 2),
        ("unsigned int", -7, "/", "int", 2),
        ("int", -7, "%", "int", 2),
        ("unsigned long", -7, "%", "int", 3),
        ("int", -1, "<", "unsigned int", 1),
        ("int", -1, "<", "long", 1),
        ("unsigned long", -1, ">", "int", 1),
        ("short", -1, "==", "unsigned short", 65535),
        ("int", -1, "&", "unsigned char", 255),
        ("int", 6, "^", "int", 3),
        ("int", 6, "|", "long", 1 << 40),
        ("int", 3, "&&", "long", 1 << 40),
        ("int", 0, "||", "long", 0),
        ("int", 5, "^^", "int", 7),
        ("unsigned char", 200, "*", "unsigned char", 200),
    ];
    for &(lt, l, op, rt, r) in table {
        let constant = format!("({lt})({l}) {op} ({rt})({r})");
        folded(&constant).unwrap_or_else(|| panic!("{constant} was not folded"));
        // Both keep 64 bits until printed, where printf cuts the value to its type.
        let at_compile = begin(&format!("BEGIN {{ printf(\"%d\", {constant}); }}"));
        let run = format!(
            "BEGIN {{ this->l = ({lt})({l}); this->r = ({rt})({r}); \
             printf(\"%d\", this->l {op} this->r); }}"
        );
        assert_eq!(
            begin(&run),
            at_compile,
            "{constant} folds to {at_compile:?}"
        );
    }
    // Division by zero: a compile-time error when folded, a fault when run.
    for op in ["/", "%"] {
        let constant = format!("BEGIN {{ printf(\"%d\", 7 {op} 0); }}");
        let err = d::compile("fold.d", &constant, &d::MacroArgs::default()).unwrap_err();
        assert!(err.to_string().contains("division by zero"), "{err}");
        let run = format!("BEGIN {{ this->z = 0; printf(\"%d\", 7 {op} this->z); }}");
        let mut h = Harness::new(&run, &[("BEGIN", ProbeKind::Begin)]);
        h.fire(&firing(0, 0));
        assert_eq!(errors(&h.take()).len(), 1, "7 {op} 0 at run time");
    }
}

#[test]
fn shifts_by_64_or_more_take_the_count_modulo_64() {
    assert_eq!(
        begin(r#"BEGIN { n = 64; m = 1; printf("%d %d\n", 1 << 64, m << n); }"#),
        ["1 1\n"]
    );
}
