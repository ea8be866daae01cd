//! alloca() scratch memory: stores and loads through pointers into it, struct members,
//! bcopy() and copyinto(), its bounds and its life of one clause.

use super::*;

#[test]
fn stores_and_loads_through_alloca_pointers() {
    let (x, y) = (0x1234_5678u64, 300u64);
    let out = begin(&format!(
        r#"
int *arr;
BEGIN {{
	arr = alloca(4 * sizeof(int));
	arr[2] = {x};
	arr[2] += 1;
	*arr = {y};
	arr[1] = arr[2] - *arr;
	c = (char *)arr;
	printf("%d %d %d %d %d\n", *arr, arr[1], arr[2], arr[3], c[4 * 2]);
}}
"#
    ));
    let want = format!(
        "{y} {} {} 0 {}\n",
        (x + 1 - y) as i32,
        x + 1,
        (x + 1) as u8 as i8
    );
    assert_eq!(out, [want]);
}

#[test]
fn struct_members_and_addresses_through_a_pointer() {
    let out = begin(
        r#"
struct rec { char tag; int n; short s[3]; } *r;
BEGIN {
	r = alloca(sizeof(struct rec));
	r->tag = 'q';
	r->n = -5;
	r->s[2] = 77;
	p = &r->n;
	printf("%c %d %d %d %d\n", r->tag, r->n, r->s[2], *p,
	    (long)&r->s[2] - (long)r);
}
"#,
    );
    // n at 4 (after a char, aligned), s at 8, s[2] at 12.
    assert_eq!(out, ["q -5 77 -5 12\n"]);
}

#[test]
fn bcopy_and_stringof_of_scratch_memory() {
    let out = begin(
        r#"
BEGIN {
	s = (char *)alloca(16);
	bcopy("abcdef", s, 7);
	bcopy("XY", &s[2], 2);
	v = alloca(4);
	bcopy("xyz", v, 4);
	printf("%s %s %c %s\n", stringof(s), stringof(&s[3]), s[5], (string)v);
}
"#,
    );
    assert_eq!(out, ["abXYef Yef f xyz\n"]);
}

#[test]
fn copyinto_copies_what_the_kernel_read() {
    let mut h = Harness::new(
        r#"
syscall::write:entry {
	b = (char *)alloca(8);
	copyinto(arg1, 4, b);
	printf("%d %d %s\n", b[0], b[3], stringof(b));
}
"#,
        &[("syscall::write:entry", ProbeKind::SyscallEntry)],
    );
    let data = b"hey\0junk";
    h.fire(&with_bytes(
        with_args(firing(0, 1), &[1, 0x5000, 8]),
        1,
        data,
    ));
    assert_eq!(h.printed(), [format!("{} {} hey\n", data[0], data[3])]);
}

#[test]
fn scratch_is_bounded_by_scratchsize_and_freed_each_clause() {
    let mut h = Harness::new(
        r#"
#pragma D option scratchsize=64
tick-1s { a = alloca(40); b = (long *)alloca(24); b[2] = 9; printf("%d\n", b[2]); }
tick-1s { c = alloca(40); c = alloca(25); printf("not reached\n"); }
tick-1s { d = (long *)alloca(64); printf("%d %d\n", d == a, d[7]); }
tick-1s { printf("%d\n", *(long *)a); }
"#,
        &[("profile:::tick-1s", ProbeKind::Tick)],
    );
    for _ in 0..2 {
        h.fire(&firing(0, 1));
        let events = h.take_all();
        let printed: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                Event::Printf(p) => Some(p.text.to_str_lossy().into_owned()),
                _ => None,
            })
            .collect();
        // 40 + 24 bytes fit in 64 and 40 + 25 do not; the third clause has all 64 again, at
        // the first clause's address, zeroed; in the fourth, the first clause's memory is
        // gone.
        assert_eq!(printed, ["9\n", "1 0\n"]);
        let errors = errors(&events);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("out of scratch space"), "{errors:?}");
        assert!(errors[1].contains("invalid address"), "{errors:?}");
    }
}

#[test]
fn trace_of_a_char_pointer_into_scratch_is_its_string() {
    let mut h = Harness::new(
        r#"BEGIN { s = (char *)alloca(8); bcopy("hi", s, 3); trace(s); }"#,
        &[("BEGIN", ProbeKind::Begin)],
    );
    h.fire(&firing(0, 0));
    let events = h.take_all();
    assert!(errors(&events).is_empty(), "{events:?}");
    let traced: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Record(r) => Some(r.values.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        traced,
        [vec![crate::event::Value::Str("hi".as_bytes().into())]]
    );
}

#[test]
fn stores_outside_alloca_memory_fault() {
    let out = begin(
        r#"
BEGIN { p = (int *)alloca(8); p[2] = 1; printf("not reached\n"); }
BEGIN { q = (char *)alloca(4); bcopy("abcdefgh", q, 8); printf("not reached\n"); }
BEGIN { printf("done\n"); }
"#,
    );
    assert_eq!(out, ["done\n"]);
}
