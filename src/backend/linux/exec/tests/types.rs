//! Declared types in the executor: struct, union and array variables, bit-fields, enums,
//! offsetof, sizeof, and members read through a pointer to copied-in memory.

use super::*;

#[test]
fn nested_struct_members_and_whole_struct_copies() {
    let out = begin(
        r#"
struct coords { int x, y; };
struct particle { struct coords position; struct coords velocity; };
struct particle a, b;
this struct coords c;
BEGIN {
	b.position.x = 17; b.velocity.y = -20;
	this->c.x = 15;
	a = b;
	a.velocity = this->c;
	printf("%d %d %d %d %d\n", a.position.x, a.velocity.x, a.velocity.y, b.velocity.y, b.velocity.x);
}
"#,
    );
    // a is b's copy, then its velocity is this->c (whose y was never set).
    assert_eq!(out, ["17 15 0 -20 0\n"]);
}

#[test]
fn bitfields_are_cut_to_their_width_and_signed_ones_sign_extend() {
    let (a, b, d) = (7u64, 0x75u64, 0x7_5555_5555u64);
    let out = begin(&format!(
        r#"
struct bits {{ int a : 3; int b : 7; long d : 35; unsigned int u : 4; }} v;
BEGIN {{
	v.a = {a}; v.b = {b}; v.d = {d}; v.u = 0x1f;
	printf("%d %d %d %d\n", v.a, v.b, v.d, v.u);
}}
"#
    ));
    let signed = |v: u64, width: u32| ((v << (64 - width)) as i64) >> (64 - width);
    let want = format!(
        "{} {} {} {}\n",
        signed(a, 3),
        signed(b, 7),
        signed(d, 35),
        0x1f & 0xf
    );
    assert_eq!(out, [want]);
}

#[test]
fn layouts_follow_dtrace_offsetof_and_sizeof() {
    let out = begin(
        r#"
typedef struct rec { char c; int x; long l; } rec_t;
union u { char c; long l; };
struct bits { int a : 12; int b : 10; int c : 3; };
BEGIN {
	printf("%d %d %d %d %d %d\n", offsetof(rec_t, x), offsetof(struct rec, l),
	    sizeof(rec_t), sizeof(union u), sizeof(struct bits), offsetof(union u, l));
}
"#,
    );
    // c at 0, x aligned to 4, l to 8; no padding after a struct's last member; each
    // bit-field starts a byte and is stored in 2, 2 and 1 bytes.
    assert_eq!(out, ["4 8 16 8 5 0\n"]);
}

#[test]
fn enumerators_count_on_from_the_last_value() {
    let out = begin(
        r#"
enum colors { RED, GREEN = 5, BLUE, CYAN = GREEN * 2 };
enum colors paint;
BEGIN { paint = BLUE; printf("%d %d %d %d %d\n", RED, GREEN, BLUE, CYAN, paint); }
"#,
    );
    assert_eq!(out, ["0 5 6 10 6\n"]);
}

#[test]
fn array_variables_and_members_are_indexed_and_sized() {
    let out = begin(
        r#"
int a[4];
struct s { short v[3]; char c; } x;
BEGIN {
	a[1] = 5; a[2] += 7; i = 2;
	x.v[i] = a[2] * 2; x.c = a[1];
	printf("%d %d %d %d %d %d %d\n", a[0], a[1], a[i], x.v[2], x.c, sizeof(a), sizeof(x));
}
"#,
    );
    assert_eq!(out, ["0 5 7 14 5 16 7\n"]);
}

#[test]
fn an_index_past_the_end_faults() {
    let mut h = Harness::new(
        "int a[2]; BEGIN { i = 2; a[i] = 1; }",
        &[("BEGIN", ProbeKind::Begin)],
    );
    h.fire(&firing(0, 0));
    assert_eq!(errors(&h.take()), ["invalid address (0x2) in action #2"]);
}

#[test]
fn structs_as_associative_array_keys_compare_by_content() {
    let out = begin(
        r#"
struct k { int id; char tag; };
struct k one, two, other;
BEGIN {
	one.id = 1; one.tag = 'a'; two.id = 1; two.tag = 'a'; other.id = 2;
	n[one] = 10; n[other] = 20;
	printf("%d %d\n", n[two], n[other]);
}
"#,
    );
    assert_eq!(out, ["10 20\n"]);
}

#[test]
fn members_are_read_through_a_pointer_to_copied_in_memory() {
    let mut h = Harness::new(
        r#"
struct hdr { unsigned char kind; unsigned short len; unsigned int seq; };
syscall::write:entry {
	this->h = (struct hdr *)copyin(arg1, sizeof (struct hdr));
	printf("%d %d %d\n", this->h->kind, this->h->len, this->h->seq);
}
"#,
        &[("syscall::write:entry", ProbeKind::SyscallEntry)],
    );
    let mut bytes = vec![9u8, 0];
    bytes.extend_from_slice(&513u16.to_le_bytes());
    bytes.extend_from_slice(&70_000u32.to_le_bytes());
    let entry = with_bytes(with_args(firing(0, 7), &[1, 0x1000, 8]), 1, &bytes);
    h.fire(&entry);
    assert_eq!(h.printed(), ["9 513 70000\n"]);
}

#[test]
fn a_constant_address_is_read_at_run_time_not_folded() {
    let mut h = Harness::new(
        "BEGIN { x = *(int *)0x1000; }",
        &[("BEGIN", ProbeKind::Begin)],
    );
    h.fire(&firing(0, 0));
    assert_eq!(errors(&h.take()), ["invalid address (0x1000) in action #1"]);
}

#[test]
fn extern_declarations_type_kernel_symbols() {
    // `_text` and `_stext` are in every kernel's /proc/kallsyms; only the first is declared.
    let out = begin(
        "extern int _text;\nBEGIN { printf(\"%d %d %d\\n\", sizeof(`_text), sizeof(vmlinux`_stext), &`_text == &vmlinux`_text); }",
    );
    assert_eq!(out, ["4 8 1\n"]);
}
