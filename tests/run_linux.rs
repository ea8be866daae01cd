//! Conformance of `dtk --backend linux run`: real D programs, each with a workload that makes
//! it fire and a check of the output, in the shape of bpftrace's runtime tests (NAME / PROG /
//! workload / EXPECT). Expected values come from the workloads themselves (counts the test
//! chose, files it created), not from earlier runs.

use std::path::Path;
use std::process::Output;

use assert_cmd::cargo::cargo_bin;

use crate::util::{feed, fifo, kernel_available};

const PYTHON: &str = "/usr/bin/python3.11";

/// Runs `dtk --backend linux run -n PROG [extra…]`.
fn dtk_run(prog: &str, extra: &[&str]) -> Output {
    std::process::Command::new(cargo_bin("dtk"))
        .args(["--backend", "linux", "run", "-n", prog])
        .args(extra)
        .env_remove("NO_COLOR")
        .env_remove("TERM")
        .output()
        .unwrap()
}

/// Runs a program and returns its stdout; fails the test with stderr when dtk fails.
fn stdout_of(name: &str, prog: &str, extra: &[&str]) -> Option<String> {
    if !kernel_available(name) {
        return None;
    }
    let out = dtk_run(prog, extra);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{name}: dtk failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    Some(stdout)
}

/// A python3.11 one-liner as a `-c` command.
fn python(code: &str) -> String {
    format!("{PYTHON} -c {}", shlex::try_quote(code).unwrap())
}

/// The value column of single-line aggregation output (`printa` default layout).
fn agg_lines(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

macro_rules! expect_lines {
    ($name:ident, $prog:expr, [$($extra:expr),*], |$out:ident| $check:block) => {
        #[test]
        fn $name() {
            let extra: Vec<String> = vec![$($extra.to_string()),*];
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            let Some($out) = stdout_of(stringify!($name), $prog, &extra) else {
                return;
            };
            $check
        }
    };
}

expect_lines!(
    begin_printf_and_exit,
    "BEGIN { printf(\"hello %d\\n\", 42); exit(0); }",
    ["-q"],
    |out| {
        assert_eq!(out, "hello 42\n\n");
    }
);

/// Without `quiet`, each firing of a clause that records something prints its probe's line,
/// then what the clause records on it, as dtrace(1) does (a clause that only assigns prints
/// nothing); `_DTRACE_TESTING` leaves out the CPU and ID columns.
#[test]
fn default_output_prints_each_firing_as_dtrace_does() {
    if !kernel_available("default_output_prints_each_firing_as_dtrace_does") {
        return;
    }
    let prog = "BEGIN { n = 1; } BEGIN { printf(\"hello %d\", n); } BEGIN /0/ { } \
                BEGIN { trace((int8_t)-1); trace((int)7); trace(-1ul); trace(\"a\"); } \
                END { exit(0); } BEGIN { exit(0); }";
    let out = std::process::Command::new(cargo_bin("dtk"))
        .args(["--backend", "linux", "run", "-n", prog])
        .env("_DTRACE_TESTING", "t")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let begin = format!("{:>32} ", ":BEGIN");
    let expected = [
        format!("{:>32}", "FUNCTION:NAME"),
        format!("{begin}hello 1"),
        format!("{begin}{:>4}{:>11}{:>21}  {:<33}", -1, 7, u64::MAX, "a"),
        begin.clone(),
        format!("{:>32} ", ":END"),
        String::new(),
    ]
    .map(|l| l + "\n")
    .concat();
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);

    // With the columns: the heading, and the probe's id as `dtk run -l` numbers it.
    let out = dtk_run("BEGIN { exit(0); }", &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(format!("{:>3} {:>6} {:>32}", "CPU", "ID", "FUNCTION:NAME").as_str())
    );
    let listed = dtk_run("BEGIN", &["-l"]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let id: u32 = listed
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let fields: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert!(fields[0].parse::<u32>().is_ok(), "{text}");
    assert_eq!(fields[1..], [id.to_string().as_str(), ":BEGIN"], "{text}");
}

expect_lines!(
    arithmetic_precedence_and_wraparound,
    "#pragma D option quiet\nBEGIN { x = (char)300; y = 1 + 2 * 3 - 8 / 4 % 3; z = (unsigned int)-1; printf(\"%d %d %u\\n\", x, y, z); exit(0); }",
    [],
    |out| {
        assert_eq!(out, "44 5 4294967295\n\n");
    }
);

expect_lines!(
    ternary_and_if_else,
    "#pragma D option quiet\nBEGIN { a = 3; s = a > 2 ? \"big\" : \"small\"; if (a == 3) { printf(\"%s three\\n\", s); } else { printf(\"other\\n\"); } exit(0); }",
    [],
    |out| {
        assert_eq!(out, "big three\n\n");
    }
);

expect_lines!(
    string_subroutines,
    "#pragma D option quiet\nBEGIN { s = \"/usr/lib/python3.11/json/decoder.py\"; printf(\"%s|%s|%d|%s|%s|%s|%d|%d|%s|%s\\n\", basename(s), dirname(s), strlen(s), substr(s, 5, 3), toupper(\"abc\"), strjoin(\"a\", \"b\"), index(s, \"lib\"), rindex(s, \"/\"), strstr(s, \"json\"), lltostr(-42)); exit(0); }",
    [],
    |out| {
        let s = "/usr/lib/python3.11/json/decoder.py";
        let expected = format!(
            "decoder.py|/usr/lib/python3.11/json|{}|lib|ABC|ab|{}|{}|json/decoder.py|-42\n\n",
            s.len(),
            s.find("lib").unwrap(),
            s.rfind('/').unwrap()
        );
        assert_eq!(out, expected);
    }
);

expect_lines!(
    printf_conversions,
    "#pragma D option quiet\nBEGIN { printf(\"[%5d][%-5d][%05d][%x][%X][%o][%c][%10s][%-4s][%%][%+d]\\n\", 42, 42, 42, 255, 255, 8, 65, \"right\", \"l\", 7); exit(0); }",
    [],
    |out| {
        assert_eq!(out, "[   42][42   ][00042][ff][FF][10][A][     right][l   ][%][+7]\n\n");
    }
);

expect_lines!(
    associative_arrays_and_globals,
    "#pragma D option quiet\nBEGIN { a[\"x\", 1] = 10; a[\"y\", 2] = 20; n = a[\"x\", 1] + a[\"y\", 2] + a[\"z\", 3]; printf(\"%d\\n\", n); exit(0); }",
    [],
    |out| {
        assert_eq!(out, "30\n\n");
    }
);

expect_lines!(
    tick_probe_counts_then_exits,
    "#pragma D option quiet\ntick-50ms { i++; } tick-50ms /i == 4/ { printf(\"ticks %d\\n\", i); exit(0); }",
    [],
    |out| {
        assert_eq!(out, "ticks 4\n\n");
    }
);

expect_lines!(
    end_runs_after_exit_then_aggregations_print,
    "#pragma D option quiet\nBEGIN { @c[\"k\"] = count(); @c[\"k\"] = count(); exit(0); } END { printf(\"end\\n\"); }",
    [],
    |out| {
        let lines = agg_lines(&out);
        assert_eq!(lines, [vec!["end"], vec!["k", "2"]]);
    }
);

expect_lines!(
    dollar_arguments,
    "#pragma D option quiet\nBEGIN { printf(\"%d %s %s\\n\", $1 + 1, $$2, $$1); exit(0); }",
    ["41", "word"],
    |out| {
        assert_eq!(out, "42 word 41\n\n");
    }
);

expect_lines!(
    openat_paths_of_a_command,
    "#pragma D option quiet\nsyscall::openat:entry /pid == $target/ { printf(\"%s\\n\", copyinstr(arg1)); }",
    ["-c", "cat /etc/hostname /etc/passwd"],
    |out| {
        let paths: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
        let tail = &paths[paths.len() - 2..];
        assert_eq!(tail, ["/etc/hostname", "/etc/passwd"]);
    }
);

expect_lines!(
    opensnoop_pattern_saves_pointer_at_entry_and_reads_at_return,
    "#pragma D option quiet\nsyscall::openat:entry /pid == $target/ { self->p = arg1; } syscall::openat:return /self->p/ { printf(\"%d %d %s\\n\", (int)arg0 < 0 ? -1 : 0, errno, copyinstr(self->p)); self->p = 0; }",
    ["-c", "cat /etc/hostname /nonexistent/dtk-missing"],
    |out| {
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.contains(&"0 0 /etc/hostname"), "{out}");
        assert!(lines.contains(&"-1 2 /nonexistent/dtk-missing"), "{out}");
    }
);

expect_lines!(
    errno_on_failed_open,
    "#pragma D option quiet\nsyscall::openat:entry /pid == $target/ { self->p = arg1; } syscall::openat:return /self->p && errno != 0 && index(copyinstr(self->p), \"/nonexistent/\") == 0/ { printf(\"errno %d %s\\n\", errno, copyinstr(self->p)); } syscall::openat:return { self->p = 0; }",
    ["-c", "cat /nonexistent/a /nonexistent/b"],
    |out| {
        assert_eq!(out, "errno 2 /nonexistent/a\nerrno 2 /nonexistent/b\n\n");
    }
);

expect_lines!(
    count_exact_syscalls_of_a_command,
    "#pragma D option quiet\nsyscall::getppid:entry /pid == $target/ { @n = count(); }",
    [
        "-c",
        python("import os\nfor _ in range(1234): os.getppid()")
    ],
    |out| {
        assert_eq!(agg_lines(&out), [vec!["1234"]]);
    }
);

expect_lines!(
    aggregation_keyed_by_execname,
    "#pragma D option quiet\nsyscall::read:entry /pid == $target/ { @[execname] = count(); }",
    ["-c", "dd if=/dev/zero of=/dev/null bs=1 count=300"],
    |out| {
        let lines = agg_lines(&out);
        assert_eq!(lines.len(), 1, "{out}");
        assert_eq!(lines[0][0], "dd");
        let n: u64 = lines[0][1].parse().unwrap();
        assert!(n >= 300, "{out}");
    }
);

expect_lines!(
    aggregation_keyed_by_argument,
    "#pragma D option quiet\nsyscall::write:entry /pid == $target/ { @[arg0] = count(); }",
    ["-c", "dd if=/dev/zero of=/dev/null bs=1 count=250"],
    |out| {
        // dd writes its data to fd 1 (of=) 250 times; its report goes to fd 2.
        let lines = agg_lines(&out);
        assert!(
            lines.contains(&vec!["1".to_string(), "250".to_string()]),
            "{out}"
        );
    }
);

expect_lines!(
    probefunc_glob,
    "#pragma D option quiet\nsyscall::getpp*:entry /pid == $target/ { @[probefunc] = count(); }",
    ["-c", python("import os\nfor _ in range(77): os.getppid()")],
    |out| {
        assert_eq!(agg_lines(&out), [vec!["getppid", "77"]]);
    }
);

expect_lines!(
    sum_min_max_avg,
    "#pragma D option quiet\nsyscall::read:return /pid == $target && arg0 > 0/ { @s = sum(arg0); @lo = min(arg0); @hi = max(arg0); @av = avg(arg0); } END { printa(\"%@d \", @s); printa(\"%@d \", @lo); printa(\"%@d \", @hi); printa(\"%@d\\n\", @av); }",
    ["-c", "dd if=/dev/zero of=/dev/null bs=4096 count=10"],
    |out| {
        let line = out.lines().find(|l| !l.trim().is_empty()).unwrap();
        let v: Vec<u64> = line.split_whitespace().map(|x| x.parse().unwrap()).collect();
        // dd also reads its locale files; the 10 blocks of 4096 are among the reads.
        assert!(v[0] >= 40960, "{out}");
        assert!(v[1] <= 4096 && v[2] >= 4096 && v[3] > 0, "{out}");
    }
);

expect_lines!(
    quantize_of_read_sizes,
    "#pragma D option quiet\nsyscall::read:return /pid == $target && execname == \"dd\" && arg0 == 1/ { @ = quantize(arg0); }",
    ["-c", "dd if=/dev/zero of=/dev/null bs=1 count=321"],
    |out| {
        let text = out.trim_start_matches('\n');
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "           value  ------------- Distribution ------------- count    ");
        assert_eq!(lines[1], "               0 |                                         0        ");
        assert_eq!(lines[2], "               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 321      ");
        assert_eq!(lines[3], "               2 |                                         0        ");
    }
);

expect_lines!(
    lquantize_buckets,
    "#pragma D option quiet\nBEGIN { @ = lquantize(5, 0, 10, 2); @ = lquantize(5, 0, 10, 2); @ = lquantize(11, 0, 10, 2); exit(0); }",
    [],
    |out| {
        // Rows 2 … >= 10 are shown (one empty bucket either side of the data); the bars are
        // 2/3 and 1/3 of 40 characters, rounded: 27 and 13.
        let bar = |n: usize| format!("|{}{} ", "@".repeat(n), " ".repeat(40 - n));
        assert!(out.contains(&format!("               4 {}2        \n", bar(27))), "{out}");
        assert!(out.contains(&format!("           >= 10 {}1        \n", bar(13))), "{out}");
        assert!(out.contains(&format!("               2 {}0        \n", bar(0))), "{out}");
    }
);

expect_lines!(
    llquantize_buckets,
    "#pragma D option quiet\nBEGIN { @ = llquantize(150, 10, 0, 3, 10); exit(0); }",
    [],
    |out| {
        assert!(
            out.contains("             100 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 1        \n"),
            "{out}"
        );
    }
);

expect_lines!(
    stddev_of_known_values,
    "#pragma D option quiet\nBEGIN { @ = stddev(2); @ = stddev(4); @ = stddev(4); @ = stddev(4); @ = stddev(5); @ = stddev(5); @ = stddev(7); @ = stddev(9); exit(0); }",
    [],
    |out| {
        assert_eq!(agg_lines(&out), [vec!["2"]]);
    }
);

expect_lines!(
    printa_with_format_and_keys,
    "#pragma D option quiet\nBEGIN { @c[\"b\"] = count(); @c[\"a\"] = count(); @c[\"a\"] = count(); exit(0); } END { printa(\"%s=%@d\\n\", @c); }",
    [],
    |out| {
        assert_eq!(out, "b=1\na=2\n\n");
    }
);

expect_lines!(
    trunc_keeps_the_top_entries,
    "#pragma D option quiet\nBEGIN { @[1] = sum(10); @[2] = sum(30); @[3] = sum(20); trunc(@, 2); exit(0); }",
    [],
    |out| {
        assert_eq!(agg_lines(&out), [vec!["3", "20"], vec!["2", "30"]]);
    }
);

expect_lines!(
    clear_zeroes_values_and_keeps_keys,
    "#pragma D option quiet\nBEGIN { @[\"x\"] = count(); @[\"x\"] = count(); } tick-20ms /!done/ { clear(@); done = 1; } tick-60ms /done/ { @[\"y\"] = count(); exit(0); }",
    [],
    |out| {
        assert_eq!(agg_lines(&out), [vec!["x", "0"], vec!["y", "1"]]);
    }
);

expect_lines!(
    normalize_divides_at_print_time,
    "#pragma D option quiet\nBEGIN { @ = sum(5000); normalize(@, 1000); exit(0); }",
    [],
    |out| {
        assert_eq!(agg_lines(&out), [vec!["5"]]);
    }
);

expect_lines!(
    thread_local_latency_is_positive,
    "#pragma D option quiet\nsyscall::nanosleep:entry,syscall::clock_nanosleep:entry /pid == $target/ { self->ts = timestamp; } syscall::nanosleep:return,syscall::clock_nanosleep:return /self->ts/ { @ = sum(timestamp - self->ts); self->ts = 0; }",
    ["-c", "sleep 0.2"],
    |out| {
        let ns: u64 = agg_lines(&out)[0][0].parse().unwrap();
        assert!((150_000_000..2_000_000_000).contains(&ns), "{out}");
    }
);

expect_lines!(
    uid_and_execname_builtins,
    "#pragma D option quiet\nsyscall::getppid:entry /pid == $target/ { printf(\"%d %s\\n\", uid, execname); exit(0); }",
    ["-c", python("import os\nos.getppid()")],
    |out| {
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() };
        assert_eq!(out, format!("{uid} python3.11\n\n"));
    }
);

// ppid and psargs are read from /proc when the event is delivered (at most switchrate later),
// so the workload stays alive that long.
expect_lines!(
    ppid_and_psargs,
    "#pragma D option quiet\n#pragma D option switchrate=20hz\nsyscall::getppid:entry /pid == $target/ { printf(\"%d %s\\n\", ppid == 0 ? 0 : 1, curpsinfo->pr_psargs); exit(0); }",
    ["-c", python("import os, time\nos.getppid()\ntime.sleep(1)")],
    |out| {
        assert!(out.starts_with("1 /usr/bin/python3.11 -c"), "{out}");
    }
);

expect_lines!(
    walltimestamp_is_the_real_time,
    "#pragma D option quiet\nBEGIN { printf(\"%d\\n\", walltimestamp / 1000000000); exit(0); }",
    [],
    |out| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let got: u64 = out.trim().parse().unwrap();
        assert!(got.abs_diff(now) <= 5, "{out} vs {now}");
    }
);

expect_lines!(
    percent_y_formats_walltimestamp,
    "#pragma D option quiet\nBEGIN { printf(\"%Y\\n\", walltimestamp); exit(0); }",
    [],
    |out| {
        // 2026 Nov 24 10:15:03
        let re = regex::Regex::new(r"^\d{4} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}\n\n$").unwrap();
        assert!(re.is_match(&out), "{out:?}");
    }
);

expect_lines!(
    profile_samples_a_busy_command,
    "#pragma D option quiet\nprofile-997 /pid == $target/ { @ = count(); }",
    ["-c", python("x = 0\nfor i in range(3_000_000): x += i")],
    |out| {
        let n: u64 = agg_lines(&out)[0][0].parse().unwrap();
        assert!(n >= 10, "{out}");
    }
);

expect_lines!(
    proc_exec_success,
    "#pragma D option quiet\nproc:::exec-success /execname == \"true\"/ { printf(\"exec %s\\n\", execname); exit(0); }",
    ["-c", "sh -c '/bin/true; sleep 1'"],
    |out| {
        assert_eq!(out, "exec true\n\n");
    }
);

expect_lines!(
    python_function_returns,
    "#pragma D option quiet\npython$target:::function-return /copyinstr(arg1) == \"leaf\"/ { printf(\"%s %d\\n\", copyinstr(arg1), arg2); }",
    ["-c", python("def leaf():\n    return 1\nfor _ in range(3): leaf()")],
    |out| {
        assert_eq!(out, "leaf 2\nleaf 2\nleaf 2\n\n");
    }
);

expect_lines!(
    python_function_entries_need_the_line_probe_on_3_11,
    "#pragma D option quiet\npython$target:::function-entry /copyinstr(arg1) == \"leaf\"/ { @ = count(); } python$target:::line /0/ { }",
    ["-c", python("def leaf():\n    return 1\nfor _ in range(5): leaf()")],
    |out| {
        assert_eq!(agg_lines(&out), [vec!["5"]]);
    }
);

#[test]
fn python_function_entries_on_3_11_turn_the_line_probe_on_and_say_so() {
    let name = "python_function_entries_on_3_11_turn_the_line_probe_on_and_say_so";
    if !kernel_available(name) {
        return;
    }
    // The program's own count of its calls is the ground truth.
    let calls = 1000 + std::process::id() % 1000;
    let code = format!("def leaf():\n    return 1\nfor _ in range({calls}): leaf()");
    let out = dtk_run(
        "#pragma D option quiet\npython$target:::function-entry /copyinstr(arg1) == \"leaf\"/ { @ = count(); }",
        &["-c", &python(&code)],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(agg_lines(&stdout), [vec![calls.to_string()]], "{stderr}");
    assert!(
        stderr.contains("dtk: enabled the line probe of pid ")
            && stderr.contains("so that CPython 3.11 fires function-entry"),
        "{stderr}"
    );
}

expect_lines!(
    pid_provider_uprobe_on_libc,
    "#pragma D option quiet\npid$target::getppid:entry { @ = count(); }",
    ["-c", python("import os\nfor _ in range(40): os.getppid()")],
    |out| {
        assert_eq!(agg_lines(&out), [vec!["40"]]);
    }
);

expect_lines!(
    divide_by_zero_is_a_run_time_error_and_the_run_goes_on,
    "#pragma D option quiet\nBEGIN { z = 0; x = 1 / z; printf(\"not reached\\n\"); } BEGIN { printf(\"next clause\\n\"); exit(0); }",
    [],
    |out| {
        assert_eq!(out, "next clause\n\n");
    }
);

expect_lines!(
    self_variables_are_per_thread,
    "#pragma D option quiet\nsyscall::getppid:entry /pid == $target/ { self->n++; @[self->n > 1 ? \"again\" : \"first\"] = count(); }",
    ["-c", python("import os, threading\nt = [threading.Thread(target=lambda: [os.getppid() for _ in range(3)]) for _ in range(4)]\n[x.start() for x in t]\n[x.join() for x in t]")],
    |out| {
        let mut lines = agg_lines(&out);
        lines.sort();
        assert_eq!(lines, [vec!["again", "8"], vec!["first", "4"]]);
    }
);

#[test]
fn description_matching_nothing_is_an_error_unless_zdefs() {
    if !kernel_available("description_matching_nothing_is_an_error_unless_zdefs") {
        return;
    }
    let out = dtk_run("syscall::no_such_call:entry { }", &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("syscall::no_such_call:entry"), "{err}");
    let out = dtk_run(
        "syscall::no_such_call:entry { } BEGIN { exit(0); }",
        &["-Z"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn malformed_script_reports_line_and_column_before_attaching() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bad.d");
    std::fs::write(&script, "BEGIN\n{\n\tx = ;\n}\n").unwrap();
    let out = std::process::Command::new(cargo_bin("dtk"))
        .args(["--backend", "linux", "run"])
        .arg(&script)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let loc = format!("{}:3:6: error:", script.display());
    assert!(err.contains(&loc), "{err}");
    assert!(Path::new(&script).exists());
}

#[test]
fn list_probes_of_a_description() {
    if !kernel_available("list_probes_of_a_description") {
        return;
    }
    let out = std::process::Command::new(cargo_bin("dtk"))
        .args([
            "--backend",
            "linux",
            "run",
            "-l",
            "-n",
            "syscall::getppid:",
            "-n",
            "BEGIN",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<String>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(rows[0], ["ID", "PROVIDER", "MODULE", "FUNCTION", "NAME"]);
    assert_eq!(
        &rows[1..],
        [
            vec!["1", "syscall", "getppid", "entry"],
            vec!["2", "syscall", "getppid", "return"],
            vec!["3", "dtrace", "BEGIN"],
        ]
    );
}

#[test]
fn dump_bpf_shows_each_program_under_its_attach_point() {
    if !kernel_available("dump_bpf_shows_each_program_under_its_attach_point") {
        return;
    }
    let out = dtk_run(
        "syscall::getppid:entry /pid != 0/ { @ = count(); } BEGIN { exit(0); }",
        &["--dump-bpf"],
    );
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("; tracepoint syscalls:sys_enter_getppid\n"),
        "{err}"
    );
    assert!(err.contains("call bpf_get_current_pid_tgid#14"), "{err}");
    assert!(err.contains("exit"), "{err}");
}

expect_lines!(
    kernel_aggregation_printed_live_from_a_tick,
    "#pragma D option quiet\nsyscall::getppid:entry /pid == $target/ { @n = count(); } tick-100ms /++t == 8/ { printa(\"live %@d\\n\", @n); exit(0); }",
    ["-c", python("import os, time\nfor _ in range(50): os.getppid()\ntime.sleep(2)")],
    |out| {
        assert_eq!(out.lines().next(), Some("live 50"), "{out}");
    }
);

/// Ctrl-C (SIGINT) ends tracing: the aggregations are printed and dtk exits 0.
#[test]
fn sigint_prints_aggregations_and_exits_zero() {
    use std::io::{BufRead, BufReader, Read};
    if !kernel_available("sigint_prints_aggregations_and_exits_zero") {
        return;
    }
    let me = std::process::id().to_string();
    let mut child = std::process::Command::new(cargo_bin("dtk"))
        .args(["--backend", "linux", "run", "-n"])
        .arg(
            "#pragma D option quiet\nsyscall::getppid:entry /pid == $1/ { @calls = count(); } \
             BEGIN { printf(\"attached\\n\"); }",
        )
        .arg(&me)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "attached\n");
    for _ in 0..25 {
        // SAFETY: getppid cannot fail.
        unsafe { libc::getppid() };
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(agg_lines(&rest), [vec!["25"]]);
}

/// Programs whose output does not change from run to run, compared byte for byte with
/// dtrace(1) when `DTK_COMPARE_DTRACE` names a dtrace binary (for example Oracle's DTrace for
/// Linux built from source). Without it this comparison mode does nothing.
const SAME_AS_DTRACE: &[&str] = &[
    "BEGIN { printf(\"[%5d][%-5d][%05d][%x][%X][%o][%c][%10s][%-4s][%%][%+d]\\n\", 42, 42, 42, 255, 255, 8, 65, \"right\", \"l\", 7); exit(0); }",
    // Without toupper, which Oracle's DTrace does not have.
    "BEGIN { s = \"/usr/lib/python3.11/json/decoder.py\"; printf(\"%s|%s|%d|%s|%s|%d|%d|%s\\n\", basename(s), dirname(s), strlen(s), substr(s, 5, 3), strjoin(\"a\", \"b\"), index(s, \"lib\"), rindex(s, \"/\"), strstr(s, \"json\")); exit(0); }",
    "BEGIN { x = (char)300; y = 1 + 2 * 3 - 8 / 4 % 3; z = (unsigned int)-1; printf(\"%d %d %u\\n\", x, y, z); exit(0); }",
    "BEGIN { @[1] = sum(10); @[2] = sum(30); @[3] = sum(20); exit(0); }",
    "BEGIN { @c[\"b\"] = count(); @c[\"a\"] = count(); @c[\"a\"] = count(); exit(0); }",
    "BEGIN { @c[\"b\"] = count(); @c[\"a\"] = count(); @c[\"a\"] = count(); exit(0); } END { printa(\"%s=%@d\\n\", @c); }",
    "BEGIN { @mn = min(5); @mn = min(3); @mx = max(5); @mx = max(9); @av = avg(4); @av = avg(7); exit(0); }",
    "BEGIN { @ = stddev(2); @ = stddev(4); @ = stddev(4); @ = stddev(4); @ = stddev(5); @ = stddev(5); @ = stddev(7); @ = stddev(9); exit(0); }",
    "BEGIN { @ = quantize(0); @ = quantize(1); @ = quantize(2); @ = quantize(3); @ = quantize(1024); @ = quantize(1025); exit(0); }",
    "BEGIN { @ = lquantize(5, 0, 10, 2); @ = lquantize(5, 0, 10, 2); @ = lquantize(11, 0, 10, 2); @ = lquantize(-1, 0, 10, 2); exit(0); }",
    "BEGIN { @ = llquantize(150, 10, 0, 3, 10); @ = llquantize(7, 10, 0, 3, 10); exit(0); }",
    "BEGIN { @[1] = sum(10); @[2] = sum(30); @[3] = sum(20); trunc(@, 2); exit(0); }",
    "BEGIN { @ = sum(5000); normalize(@, 1000); exit(0); }",
    "BEGIN { @q[\"x\"] = quantize(100); @q[\"y\"] = quantize(7); exit(0); }",
    "BEGIN { a = 3; printf(\"%s\\n\", a > 2 ? \"big\" : \"small\"); exit(0); }",
];

#[test]
fn same_output_as_dtrace() {
    let Ok(dtrace) = std::env::var("DTK_COMPARE_DTRACE") else {
        return;
    };
    let mut differences = Vec::new();
    for prog in SAME_AS_DTRACE {
        let theirs = std::process::Command::new(&dtrace)
            .args(["-q", "-n", prog])
            .output()
            .unwrap();
        let ours = dtk_run(&format!("#pragma D option quiet\n{prog}"), &[]);
        if theirs.stdout != ours.stdout {
            differences.push(format!(
                "{prog}\n--- dtrace:\n{}--- dtk:\n{}",
                String::from_utf8_lossy(&theirs.stdout),
                String::from_utf8_lossy(&ours.stdout)
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

// dtk tracing its own system calls must not wake itself for every record it reads (each
// wakeup is another epoll_wait, which is another record): it reads at intervals instead.
// Before the fix this made about 200,000 calls a second; reading in batches, 10 to 130 were
// measured here.
expect_lines!(
    tracing_its_own_syscalls_does_not_feed_back,
    "#pragma D option quiet\nsyscall::epoll_wait:entry /pid == $pid/ { n++; } tick-1s { printf(\"%d\\n\", n); exit(0); }",
    [],
    |out| {
        let n: u64 = out.trim().parse().unwrap();
        assert!(n < 1000, "{n} epoll_wait calls in one second");
    }
);

/// `dtk syscalls -i 1` prints a dated table every second.
#[test]
fn syscalls_interval_tables() {
    if !kernel_available("syscalls_interval_tables") {
        return;
    }
    let out = std::process::Command::new(cargo_bin("dtk"))
        .args(["--backend", "linux", "syscalls", "-i", "1", "-c"])
        .arg(python(
            "import os, time\nfor _ in range(3):\n    os.getppid()\n    time.sleep(1)",
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let dated = regex::Regex::new(r"(?m)^--- \d{4}-\d\d-\d\d \d\d:\d\d:\d\d ---$").unwrap();
    assert!(dated.find_iter(&text).count() >= 2, "{text}");
    let getppid: u64 = text
        .lines()
        .filter_map(|l| l.strip_prefix("getppid"))
        .map(|n| n.trim().parse::<u64>().unwrap())
        .sum();
    assert_eq!(getppid, 3, "{text}");
}

/// A pointer read through another at the probe: execve's argv[1] and argv[2] are
/// `*(argv + 1)` and `*(argv + 2)`, read in the kernel before the exec replaces the memory.
/// Words chosen here, so the output cannot come from anywhere but the traced exec.
#[test]
fn pointer_chains_are_read_at_the_probe() {
    let words = [
        format!("w{}", std::process::id()),
        format!("x{}", std::process::id() * 7),
    ];
    let prog = "#pragma D option quiet
syscall::execve:entry
/basename(copyinstr(arg0)) == \"echo\"/
{
	this->argv = (uint64_t *)arg1;
	printf(\"%s %s %s\\n\", copyinstr(arg0), copyinstr(*(uint64_t *)copyin(arg1 + 8, 8)),
	    copyinstr(*(uint64_t *)copyin((uint64_t)(this->argv + 2), 8)));
	this->third = *(uint64_t *)copyin(arg1 + 24, 8);
	printf(\"argv[3] %s\\n\", this->third ? \"set\" : \"NULL\");
}";
    let command = format!(
        "sh -c '/bin/echo {} {} >/dev/null; true'",
        words[0], words[1]
    );
    let Some(out) = stdout_of(
        "pointer_chains_are_read_at_the_probe",
        prog,
        &["-c", &command],
    ) else {
        return;
    };
    assert_eq!(
        out,
        format!("/bin/echo {} {}\nargv[3] NULL\n\n", words[0], words[1])
    );
}

/// A pointer read at one probe is kept per thread in the kernel and followed at another:
/// writev's first buffer, read from its iovec at the entry, is read again at the return
/// through the kept pointer plus one (an address only the kernel can compute there). Words
/// chosen here.
#[test]
fn pointers_kept_at_one_probe_are_followed_at_another() {
    let word = format!("w{}", std::process::id());
    let prog = "#pragma D option quiet
syscall::writev:entry /pid == $target/ { self->base = *(uint64_t *)copyin(arg1, 8); }
syscall::writev:return /pid == $target/ { printf(\"%s\\n\", copyinstr(self->base + 1)); self->base = 0; }";
    let command = python(&format!(
        "import os\nfd = os.open('/dev/null', os.O_WRONLY)\n\
         for i in range(3): os.writev(fd, [b'/{word}' + str(i).encode()])"
    ));
    let Some(out) = stdout_of(
        "pointers_kept_at_one_probe_are_followed_at_another",
        prog,
        &["-c", &command],
    ) else {
        return;
    };
    assert_eq!(out, format!("{word}0\n{word}1\n{word}2\n\n"));
}

/// DTrace's timing pattern with a thread variable runs in the kernel: the count is exact, the
/// times are plausible, and the programs send no records to user space.
#[test]
fn thread_variables_time_calls_in_the_kernel() {
    let prog = "syscall::getppid:entry /pid == $target/ { self->ts = timestamp; } \
                syscall::getppid:return /self->ts/ { @n = count(); \
                @t = sum(timestamp - self->ts); @lo = min(timestamp - self->ts); self->ts = 0; }";
    let calls = 1234;
    let command = python(&format!("import os\nfor i in range({calls}): os.getppid()"));
    let Some(out) = stdout_of(
        "thread_variables_time_calls_in_the_kernel",
        prog,
        &["-c", &command],
    ) else {
        return;
    };
    let values: Vec<u64> = agg_lines(&out)
        .iter()
        .map(|l| l[0].parse().unwrap())
        .collect();
    let [n, total, lo] = values[..] else {
        panic!("{out}");
    };
    assert_eq!(n, calls);
    assert!(lo > 0 && lo * n <= total, "{out}");
    assert!(total < n * 1_000_000, "under 1 ms a call: {out}");
    let dump = dtk_run(prog, &["--dump-bpf", "-c", "true"]);
    let programs = String::from_utf8_lossy(&dump.stderr);
    assert!(programs.contains("bpf_map_delete_elem"), "{programs}");
    assert!(!programs.contains("bpf_ringbuf_output"), "{programs}");
}

/// A predicate of 10,000 `pid == N` joined by `||` (too long for the verifier, so the
/// executor evaluates it), one of 100 (evaluated in the kernel), and a sum of 10,000 terms
/// that the executor adds up: every pass copes with a chain as deep as it is long, on a
/// 1 MiB main stack.
#[test]
fn long_chains_run_on_a_small_stack() {
    if !kernel_available("long_chains_run_on_a_small_stack") {
        return;
    }
    for n in [100, 10_000] {
        let pids: Vec<String> = (1..=n)
            .map(|i| format!("pid == {}", 4_000_000 + i))
            .collect();
        let sum = vec!["this->one"; n].join(" + ");
        let prog = format!(
            "syscall::getpid:entry /{} || pid == $target/ {{ this->one = 1; \
             printf(\"hit %d %d\\n\", pid, {sum}); exit(0); }}",
            pids.join(" || ")
        );
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("chain.d");
        std::fs::write(&script, prog).unwrap();
        let workload =
            format!("{PYTHON} -c 'import os, time; time.sleep(0.5); print(os.getpid())'");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("ulimit -s 1024 && exec \"$0\" --backend linux run -c \"$1\" \"$2\"")
            .arg(cargo_bin("dtk"))
            .arg(&workload)
            .arg(&script)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{n} terms: {stderr}");
        let python_pid = stdout
            .lines()
            .find(|l| !l.starts_with("hit") && !l.is_empty())
            .unwrap_or_else(|| panic!("{n} terms: no pid printed:\n{stdout}\n{stderr}"));
        assert!(
            stdout.contains(&format!("hit {python_pid} {n}\n")),
            "{n} terms:\n{stdout}\n{stderr}"
        );
    }
}

/// printa with trunc and clear at a tick keeps the aggregations in the kernel, and their
/// intervals lose nothing: dd copies bytes that the test feeds it in three rounds, 0.8 s
/// apart, so that a tick falls between the last two; the per-interval write counts
/// (truncated) and byte sums (cleared) each add up to the bytes copied, as does a count never
/// reset; the write program sends no records, and nothing is dropped.
#[test]
fn intervals_truncated_and_cleared_at_ticks_add_up_to_the_total() {
    if !kernel_available("intervals_truncated_and_cleared_at_ticks_add_up_to_the_total") {
        return;
    }
    const ROUND: usize = 200_000;
    let prog = "syscall::write:entry /pid == $target/ { \
                    @calls[probefunc] = count(); @bytes[probefunc] = sum(arg2); @all = count(); } \
                tick-1s { printa(\"calls %s %@d\\n\", @calls); trunc(@calls); \
                    printa(\"bytes %s %@d\\n\", @bytes); clear(@bytes); } \
                END { printa(\"calls %s %@d\\n\", @calls); printa(\"bytes %s %@d\\n\", @bytes); \
                    printa(\"all %@d\\n\", @all); }";
    let dir = tempfile::tempdir().unwrap();
    let bytes = fifo(dir.path(), "bytes");
    let copy = format!(
        "dd of=/dev/null bs=1 status=none if={} count={}",
        bytes.display(),
        3 * ROUND
    );
    let dtk = std::process::Command::new(cargo_bin("dtk"))
        .args(["--backend", "linux", "run", "-q", "-n", prog, "-c", &copy])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    feed(&bytes, 3, ROUND, std::time::Duration::from_millis(800));
    let out = dtk.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("drop"), "{stderr}");
    let values = |what: &str| -> Vec<i64> {
        stdout
            .lines()
            .filter_map(|l| l.strip_prefix(what))
            .map(|n| n.trim().parse().unwrap())
            .collect()
    };
    let copied = 3 * ROUND as i64;
    let calls = values("calls write ");
    assert!(calls.len() >= 2, "a tick and the end:\n{stdout}");
    assert_eq!(calls.iter().sum::<i64>(), copied, "{stdout}");
    assert_eq!(
        values("bytes write ").iter().sum::<i64>(),
        copied,
        "{stdout}"
    );
    assert_eq!(values("all "), [copied], "{stdout}");
    let dump = dtk_run(prog, &["--dump-bpf", "-c", "true"]);
    let programs = String::from_utf8_lossy(&dump.stderr);
    // The write program's, up to the next program (the tick's, which sends its firings).
    let write = programs
        .split("\n; ")
        .find(|p| p.contains("sys_enter_write"))
        .unwrap_or_else(|| panic!("{programs}"));
    assert!(write.contains("bpf_map_lookup_elem"), "{programs}");
    assert!(!write.contains("bpf_ringbuf_output"), "{programs}");
}

/// A thread variable kept by the kernel (a pointer followed from probe to probe) and set in
/// a clause whose predicate names another kept variable: every clause reads the value the
/// executor gives it, so the path read through it is the one each open was given.
#[test]
fn a_pointer_set_under_a_predicate_is_followed_by_every_clause() {
    let name = "a_pointer_set_under_a_predicate_is_followed_by_every_clause";
    if !kernel_available(name) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<std::path::PathBuf> = ["first-opened", "second-opened"]
        .iter()
        .map(|f| {
            let path = dir.path().join(f);
            std::fs::write(&path, "x\n").unwrap();
            path
        })
        .collect();
    let prog = "syscall::openat:entry /pid == $target/ { self->path = arg1; } \
                syscall::openat:return /self->path/ { self->last = self->path; } \
                syscall::openat:return /self->path/ { \
                    printf(\"[%s]\\n\", copyinstr(self->last + 1)); self->path = 0; }";
    let command = format!("cat {} {}", files[0].display(), files[1].display());
    let out = dtk_run(prog, &["-x", "quiet", "-c", &command]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stderr.contains("invalid address"), "stderr:\n{stderr}");
    for file in &files {
        // What the program passed to openat, less its first byte.
        let tail = &file.to_str().unwrap()[1..];
        let want = format!("[{tail}]");
        assert_eq!(
            stdout.lines().filter(|l| *l == want).count(),
            1,
            "{want} once in:\n{stdout}\nstderr:\n{stderr}"
        );
    }
}

expect_lines!(
    tick_fires_in_the_thread_it_interrupts,
    "#pragma D option quiet\ntick-5ms /pid == $target && execname == \"python3.11\"/ { printf(\"%s %d %x %x\\n\", execname, tid, arg0, arg1); }",
    // tick-N samples the first online CPU: the busy target runs there.
    [
        "-c",
        format!("taskset -c 0 {}", python("x = 0\nfor i in range(5_000_000): x += i"))
    ],
    |out| {
        let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
        assert!(!lines.is_empty(), "no tick interrupted the target:\n{out}");
        for line in lines {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f[0], "python3.11", "{line}");
            let kernel_pc = u64::from_str_radix(f[2], 16).unwrap();
            let user_pc = u64::from_str_radix(f[3], 16).unwrap();
            // arg0 is the kernel's program counter and arg1 the user's: one of them, the
            // mode the CPU was in.
            assert!((kernel_pc == 0) != (user_pc == 0), "{line}");
            assert!(kernel_pc == 0 || kernel_pc >> 63 == 1, "{line}");
            assert!(user_pc >> 63 == 0, "{line}");
        }
    }
);

expect_lines!(
    ufunc_umod_and_uaddr_name_the_sampled_user_functions,
    "#pragma D option quiet\nprofile-997 /pid == $target && arg1/ { @f[ufunc(arg1)] = count(); @m[umod(arg1)] = count(); @a[uaddr(arg1)] = count(); } END { printa(\"f %s\\n\", @f); printa(\"m %s\\n\", @m); printa(\"a %s\\n\", @a); }",
    ["-c", python("x = 0\nfor i in range(3_000_000): x += i")],
    |out| {
        let module = Path::new(PYTHON).file_name().unwrap().to_str().unwrap();
        let keys = |tag: &str| -> Vec<String> {
            out.lines()
                .filter_map(|l| l.strip_prefix(tag))
                .map(str::to_string)
                .collect()
        };
        let named = regex::Regex::new(&format!(r"^{}`[A-Za-z_]", regex::escape(module))).unwrap();
        let funcs = keys("f ");
        assert!(funcs.iter().any(|f| named.is_match(f)), "{out}");
        let mut unique = funcs.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), funcs.len(), "a function counted twice:\n{out}");
        assert!(keys("m ").iter().any(|m| m == module), "{out}");
        let with_offset = regex::Regex::new(&format!(r"^{}`[A-Za-z_]\w*(\+0x[0-9a-f]+)?$", regex::escape(module))).unwrap();
        assert!(keys("a ").iter().any(|a| with_offset.is_match(a)), "{out}");
    }
);

expect_lines!(
    func_and_mod_name_the_sampled_kernel_functions,
    "#pragma D option quiet\nprofile-997 /pid == $target && arg0/ { @f[func(arg0)] = count(); @m[mod(arg0)] = count(); } END { printa(\"f %s\\n\", @f); printa(\"m %s\\n\", @m); }",
    ["-c", python("import os\nfor _ in range(400_000): os.getppid()")],
    |out| {
        let funcs: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("f ")).collect();
        let mods: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("m ")).collect();
        assert!(!funcs.is_empty(), "{out}");
        // Every kernel function is in a module mod() names, and no offset is shown.
        for f in &funcs {
            let (module, name) = f.split_once('`').unwrap_or_else(|| panic!("{out}"));
            assert!(mods.contains(&module), "{f} not in {mods:?}");
            assert!(!name.contains('+'), "{f}");
        }
    }
);

expect_lines!(
    maxframes_caps_every_stack,
    "#pragma D option quiet\n#pragma D option maxframes=2\nsyscall::getppid:entry /pid == $target/ { printf(\"%d\\n\", stackdepth); stack(); stack(5); printf(\"end\\n\"); exit(0); }",
    ["-c", python("import os\nos.getppid()")],
    |out| {
        let depth: usize = out.lines().next().unwrap().parse().unwrap();
        let frames = out
            .lines()
            .skip(1)
            .take_while(|l| *l != "end")
            .filter(|l| l.contains('`') || l.trim().starts_with("0x"))
            .count();
        // Two stacks, each of at most two frames, however deep the kernel's was.
        assert!(depth >= 2, "{out}");
        assert_eq!(frames, 4, "{out}");
    }
);

expect_lines!(
    ticks_fire_while_a_followed_command_sleeps,
    "#pragma D option quiet\ntick-50ms /++n == 4/ { printf(\"ticks %d\\n\", n); exit(0); }",
    // The command never runs during the ticks: they fire whatever the CPU runs.
    ["-c", "sleep 30"],
    |out| {
        assert_eq!(out, "ticks 4\n\n");
    }
);
/// Runs `dtk --backend linux run ARGS…` with `path` as PATH.
fn dtk_run_with_path(args: &[&std::ffi::OsStr], path: &Path) -> Output {
    std::process::Command::new(cargo_bin("dtk"))
        .args(["--backend", "linux", "run"])
        .args(args)
        .env("PATH", path)
        .output()
        .unwrap()
}

#[test]
fn cpp_keeps_the_line_numbers_of_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("pre.d");
    let header = dir.path().join("defs.h");
    std::fs::write(&header, "#define TWO 2\n#define THREE 3\n").unwrap();
    let lines = [
        "#include \"defs.h\"",
        "#define BAD",
        "#ifdef BAD",
        "BEGIN { x = TWO + THREE; }",
        "BEGIN { y = ; }",
        "#endif",
    ];
    std::fs::write(&script, lines.join("\n") + "\n").unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let include = format!("-I{}", dir.path().display());
    let out = dtk_run_with_path(
        &["-C".as_ref(), include.as_ref(), script.as_os_str()][..],
        Path::new(&path),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let bad = lines.iter().position(|l| l.contains("y = ;")).unwrap() + 1;
    let loc = format!("{}:{bad}:", script.display());
    assert!(err.contains(&loc), "want {loc}: {err}");
    assert!(
        err.contains("y = ;"),
        "the message quotes the script's line: {err}"
    );
}

#[test]
fn cpp_defines_and_conditionals_select_the_program() {
    let prog = "#pragma D option quiet\n#if N > 2 && defined(__SUNW_D)\nBEGIN { printf(\"%d\\n\", N * 10); exit(0); }\n#else\nBEGIN { printf(\"small\\n\"); exit(0); }\n#endif\n";
    let Some(big) = stdout_of("cpp_defines_big", prog, &["-C", "-DN=7"]) else {
        return;
    };
    assert_eq!(big.trim_end(), (7 * 10).to_string());
    let small = stdout_of("cpp_defines_small", prog, &["-C", "-D", "N=1"]).unwrap();
    assert_eq!(small.trim_end(), "small");
}

#[test]
fn cpp_failure_and_a_missing_cpp_are_clear_errors() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let unterminated: &std::ffi::OsStr = "#ifdef X\nBEGIN { exit(0); }\n".as_ref();
    let out = dtk_run_with_path(
        &["-C".as_ref(), "-n".as_ref(), unterminated][..],
        Path::new(&path),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the C preprocessor failed"), "{err}");
    assert!(err.contains("unterminated"), "cpp's own message: {err}");

    let empty = tempfile::tempdir().unwrap();
    let out = dtk_run_with_path(
        &["-C".as_ref(), "-n".as_ref(), "BEGIN { exit(0); }".as_ref()][..],
        empty.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`cpp`, which is not installed"), "{err}");
}
