//! Benchmark: parse and check a 1,000-line D script with the front end (`compile`), and the
//! lexer and parser alone (`parse`). Prints the median and the fastest of many runs; the
//! target is under 10 ms for `compile` (see BENCHMARKS.md). Then the bundled scripts.
//!
//! Run with `cargo bench --bench d_frontend`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use dtk::internals::d::{compile, parse, MacroArgs};

/// One block of realistic D (24 lines): an entry clause that stores state, a return clause
/// with a predicate, printf, aggregations and if/else; `n` makes the names unique.
fn block(n: usize) -> String {
    format!(
        r#"syscall::read{n}:entry, syscall::pread{n}:entry
/(FILTER_PID == 0 || pid == FILTER_PID) && execname != "dtk{n}"/
{{
    self->ts{n} = timestamp;
    self->fd{n} = (int)arg0;
    self->path{n} = copyinstr(arg1);
}}

syscall::read{n}:return
/self->ts{n} && (int)arg0 >= 0/
{{
    this->lat = (timestamp - self->ts{n}) / 1000;
    @lat{n}[execname, probefunc] = quantize(this->lat);
    @bytes{n}[pid] = sum(arg0);
    @lin{n} = lquantize(arg0, 0, 4096, 256);
    if (this->lat > THRESHOLD) {{
        printf("%-16s %6d %4d %8d %s\n", execname, pid, self->fd{n}, this->lat,
            basename(self->path{n}));
    }} else {{
        @fast{n}[strjoin(execname, ":")] = count();
    }}
    self->ts{n} = 0;
    self->path{n} = 0;
}}
"#
    )
}

fn script(lines: usize) -> String {
    let mut s = String::from(
        "#pragma D option quiet\ninline int FILTER_PID = 0;\ninline int THRESHOLD = 100;\n",
    );
    let mut n = 0;
    while s.lines().count() < lines {
        s.push_str(&block(n));
        n += 1;
    }
    s
}

fn measure(name: &str, runs: usize, mut f: impl FnMut()) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "{name:<32} median {:>8.3} ms   fastest {:>8.3} ms   ({runs} runs)",
        times[runs / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3
    );
}

fn main() {
    let source = script(1000);
    let lines = source.lines().count();
    let macros = MacroArgs::default();
    if let Err(e) = compile("bench.d", &source, &macros) {
        eprintln!("the benchmark script does not compile:\n{e}");
        std::process::exit(1);
    }
    println!("script: {lines} lines, {} bytes", source.len());
    measure("parse (lex + parse)", 200, || {
        black_box(parse(black_box(&source), &macros).is_ok());
    });
    measure("compile (parse + check)", 200, || {
        black_box(compile("bench.d", black_box(&source), &macros).is_ok());
    });
    bundled_scripts();
}

/// The scripts dtk ships, as its commands compile them.
fn bundled_scripts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("d-scripts");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let macros = MacroArgs {
        target: Some(1),
        ..MacroArgs::default()
    };
    let mut paths: Vec<_> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    paths.sort();
    for path in paths {
        let Ok(source) = std::fs::read_to_string(&path) else {
            continue;
        };
        let name = format!(
            "compile d-scripts/{}",
            path.file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned())
        );
        measure(&name, 500, || {
            black_box(compile("script.d", black_box(&source), &macros).is_ok());
        });
    }
}
