//! The run configuration, resolved once from the command line and the environment before any
//! work starts. Nothing deeper reads argv or the environment: commands receive a `Config`.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use regex::Regex;

use crate::backend::BackendChoice;
use crate::cli::{
    self, BackendArg, Cli, ColorArg, Command, CountBy, FormatArg, GenerateKind, SortBy,
};
use crate::cpp::CppOptions;
use crate::output::{decide_color, ColorChoice};
use crate::target::Target;

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// How output is written, decided once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputConfig {
    pub color: bool,
    pub format: Format,
    pub header: bool,
    /// Flush after every line: stdout is not a terminal (a pipe or a file), so that
    /// `dtk … | grep X` shows lines as they happen.
    pub line_flush: bool,
}

/// The whole configuration of one invocation.
#[derive(Debug)]
pub struct Config {
    pub output: OutputConfig,
    pub backend: BackendChoice,
    pub quiet: bool,
    /// What the user should know about how an option was taken (printed on stderr before
    /// the command runs, unless quiet).
    pub notices: Vec<String>,
    pub command: CommandConfig,
}

#[derive(Debug)]
pub enum CommandConfig {
    Pyflow(PyflowConfig),
    Opens(OpensConfig),
    Syscalls(SyscallsConfig),
    Run(RunConfig),
    List,
    Show(ShowConfig),
    Generate {
        kind: GenerateKind,
        dir: Option<PathBuf>,
    },
}

/// `dtk show`: the command whose script is printed.
#[derive(Debug)]
pub enum ShowConfig {
    Pyflow(PyflowConfig),
    Opens(OpensConfig),
    Syscalls(SyscallsConfig),
}

/// Which Python frames pyflow shows.
#[derive(Debug, Default)]
pub struct FrameFilter {
    /// Show library frames too.
    pub all: bool,
    pub include: Vec<Regex>,
    pub exclude: Vec<Regex>,
    /// Packages or modules to follow even inside site-packages.
    pub modules: Vec<String>,
}

#[derive(Debug)]
pub struct PyflowConfig {
    pub target: Target,
    /// With a target: follow its whole process tree (not --no-follow).
    pub follow: bool,
    pub filter: FrameFilter,
    pub elapsed: bool,
    pub summary: bool,
    pub top: usize,
    /// --activate: turn CPython 3.14's perf trampoline on in a -p target.
    pub activate: bool,
    /// The working directory, for showing files below it as relative paths.
    pub cwd: Option<PathBuf>,
}

#[derive(Debug)]
pub struct OpensConfig {
    pub target: Target,
    /// With a target: follow its whole process tree (not --no-follow).
    pub follow: bool,
    pub name: Option<String>,
    pub name_regex: Option<Regex>,
    pub zone: Option<String>,
    pub show_zone: bool,
    pub path: Option<Regex>,
    pub failed: bool,
    pub flags: bool,
    pub timestamp: bool,
    pub elapsed: bool,
    pub full: bool,
    pub count: Option<CountBy>,
    pub duration: Option<Duration>,
}

#[derive(Debug)]
pub struct SyscallsConfig {
    pub target: Target,
    /// With a target: follow its whole process tree (not --no-follow).
    pub follow: bool,
    pub name: Option<String>,
    pub zone: Option<String>,
    pub by_process: bool,
    pub latency: bool,
    pub errors: bool,
    pub top: Option<usize>,
    pub sort: SortBy,
    pub interval: Option<u32>,
    pub duration: Option<Duration>,
    pub hist: Option<String>,
    /// The full-screen view; implies by-process counts, latency and errors.
    pub live: bool,
}

/// Where `dtk run` gets its program.
#[derive(Debug, PartialEq, Eq)]
pub enum ProgramSource {
    File(PathBuf),
    /// `-n` programs, joined.
    Inline(String),
}

#[derive(Debug)]
pub struct RunConfig {
    pub source: ProgramSource,
    pub args: Vec<String>,
    pub target: Target,
    pub list: bool,
    /// -e: compile the program and match its probes, then exit.
    pub compile_only: bool,
    pub zdefs: bool,
    pub options: Vec<(String, Option<String>)>,
    pub dump_bpf: bool,
    /// Whether per-firing lines show the CPU and probe ID columns (not under
    /// `_DTRACE_TESTING`).
    pub probe_columns: bool,
    /// `-C`: preprocess the program with cpp first.
    pub cpp: Option<CppOptions>,
}

/// What the environment says about colour and terminals, read in one place.
#[derive(Debug, Default)]
pub struct Environment {
    pub stdout_is_tty: bool,
    pub no_color: Option<OsString>,
    pub term: Option<OsString>,
    pub cwd: Option<PathBuf>,
    /// `_DTRACE_TESTING` is set: as dtrace(1) does for its test suite, `run` leaves the CPU
    /// and ID columns out of its per-firing lines.
    pub dtrace_testing: bool,
}

impl Environment {
    pub fn current() -> Environment {
        Environment {
            stdout_is_tty: std::io::stdout().is_terminal(),
            no_color: std::env::var_os("NO_COLOR"),
            term: std::env::var_os("TERM"),
            cwd: std::env::current_dir().ok(),
            dtrace_testing: std::env::var_os("_DTRACE_TESTING").is_some(),
        }
    }
}

impl Config {
    pub fn resolve(cli: Cli, env: &Environment) -> Result<Config> {
        let g = &cli.global;
        let color = decide_color(
            match g.color {
                ColorArg::Auto => ColorChoice::Auto,
                ColorArg::Always => ColorChoice::Always,
                ColorArg::Never => ColorChoice::Never,
            },
            env.stdout_is_tty,
            env.no_color.as_deref(),
            env.term.as_deref(),
        );
        let output = OutputConfig {
            color,
            format: match g.output {
                FormatArg::Text => Format::Text,
                FormatArg::Json => Format::Json,
            },
            header: !g.no_header,
            line_flush: !env.stdout_is_tty,
        };
        let backend = match g.backend {
            BackendArg::Auto => BackendChoice::Auto,
            BackendArg::Libdtrace => BackendChoice::Libdtrace,
            BackendArg::Linux => BackendChoice::Linux,
        };
        let mut notices = Vec::new();
        let command = match cli.command {
            Command::Pyflow(a) => CommandConfig::Pyflow(pyflow(a, env)?),
            Command::Opens(a) => CommandConfig::Opens(opens(a, &mut notices)?),
            Command::Syscalls(a) => CommandConfig::Syscalls(syscalls(a, &mut notices)?),
            Command::Run(a) => CommandConfig::Run(run(*a, g.quiet, env.dtrace_testing)?),
            Command::List => CommandConfig::List,
            Command::Show(a) => CommandConfig::Show(match a.script {
                cli::ShowScript::Pyflow(a) => ShowConfig::Pyflow(pyflow(a, env)?),
                cli::ShowScript::Opens(a) => ShowConfig::Opens(opens(a, &mut notices)?),
                cli::ShowScript::Syscalls(a) => ShowConfig::Syscalls(syscalls(a, &mut notices)?),
            }),
            Command::Generate(a) => CommandConfig::Generate {
                kind: a.kind,
                dir: a.dir,
            },
        };
        Ok(Config {
            output,
            backend,
            quiet: g.quiet,
            notices,
            command,
        })
    }
}

fn target(args: &cli::TargetArgs) -> Result<Target> {
    Ok(match (args.pid, &args.command) {
        (Some(pid), _) => Target::Pid(pid),
        (None, Some(cmd)) => {
            let argv = shlex::split(cmd).with_context(|| {
                format!("-c {cmd:?}: unbalanced quotes or a trailing backslash")
            })?;
            if argv.is_empty() {
                bail!("-c: the command is empty");
            }
            Target::Command(argv)
        }
        (None, None) => Target::None,
    })
}

fn regexes(patterns: &[String], option: &str) -> Result<Vec<Regex>> {
    patterns
        .iter()
        .map(|p| {
            Regex::new(p).with_context(|| format!("{option} {p:?}: invalid regular expression"))
        })
        .collect()
}

fn regex(pattern: Option<&String>, option: &str) -> Result<Option<Regex>> {
    Ok(regexes(&pattern.cloned().into_iter().collect::<Vec<_>>(), option)?.pop())
}

/// The kernel keeps a process name (comm) in 16 bytes with its NUL: a longer `-n NAME` can
/// only match on its first 15 bytes, so it is cut there, and the user is told.
const COMM_LEN: usize = 15;

fn comm_name(name: Option<String>, notices: &mut Vec<String>) -> Option<String> {
    let mut name = name?;
    if name.len() > COMM_LEN {
        let cut = (0..=COMM_LEN)
            .rev()
            .find(|&i| name.is_char_boundary(i))
            .unwrap_or(0);
        name.truncate(cut);
        notices.push(format!(
            "-n: process names (comm) are at most {COMM_LEN} bytes; comparing the first {cut}: {name:?}"
        ));
    }
    Some(name)
}

fn pyflow(a: cli::PyflowArgs, env: &Environment) -> Result<PyflowConfig> {
    Ok(PyflowConfig {
        target: target(&a.target)?,
        follow: !a.no_follow,
        filter: FrameFilter {
            all: a.all,
            include: regexes(&a.include, "--include")?,
            exclude: regexes(&a.exclude, "--exclude")?,
            modules: a.module,
        },
        elapsed: a.elapsed,
        summary: a.summary,
        top: a.top,
        activate: a.activate,
        cwd: env.cwd.clone(),
    })
}

fn opens(a: cli::OpensArgs, notices: &mut Vec<String>) -> Result<OpensConfig> {
    Ok(OpensConfig {
        target: target(&a.target)?,
        follow: !a.no_follow,
        name_regex: regex(a.name_regex.as_ref(), "-N")?,
        name: comm_name(a.name, notices),
        show_zone: a.show_zone || a.zone.is_some(),
        zone: a.zone,
        path: regex(a.path.as_ref(), "--path")?,
        failed: a.failed,
        flags: a.flags,
        timestamp: a.timestamp,
        elapsed: a.elapsed,
        full: a.full,
        count: a.count,
        duration: a.duration,
    })
}

fn syscalls(a: cli::SyscallsArgs, notices: &mut Vec<String>) -> Result<SyscallsConfig> {
    Ok(SyscallsConfig {
        target: target(&a.target)?,
        follow: !a.no_follow,
        name: comm_name(a.name, notices),
        zone: a.zone,
        by_process: a.by_process,
        // Sorting by a column that is not measured would sort by zeros: measure it.
        latency: a.latency || a.sort == SortBy::Time,
        errors: a.errors || a.sort == SortBy::Errors,
        top: a.top,
        sort: a.sort,
        interval: a.interval,
        duration: a.duration,
        hist: a.hist,
        live: a.live,
    })
}

fn run(a: cli::RunArgs, quiet: bool, dtrace_testing: bool) -> Result<RunConfig> {
    if let Some(what) = a.unsupported.first() {
        bail!("dtrace(1)'s {what} is not supported by dtk");
    }
    let mut rest = a.script_and_args.into_iter();
    let mut clauses: Vec<String> = Vec::new();
    // dtrace(1) qualifies each kind of description from the left: -P names the provider, -m
    // the module, -f the function, -n the probe name.
    for (specs, last_field) in [(&a.provider, 0), (&a.module, 1), (&a.function, 2)] {
        clauses.extend(specs.iter().map(|s| qualify(s, last_field)));
    }
    clauses.extend(a.program.iter().cloned());
    let source = match (a.script, clauses.is_empty()) {
        (Some(_), false) => bail!("-s cannot be combined with -n, -P, -m or -f in dtk"),
        (Some(file), true) => ProgramSource::File(file),
        (None, true) => match rest.next() {
            Some(file) => ProgramSource::File(file.into()),
            None => bail!("no program: give a script file (-s FILE) or -n 'PROGRAM'"),
        },
        (None, false) => {
            // A bare description (`-n BEGIN`, `-P syscall`) is a clause with dtrace's
            // default action.
            let clauses: Vec<String> = clauses
                .into_iter()
                .map(|d| {
                    if d.contains('{') || d.trim().is_empty() {
                        d
                    } else {
                        format!("{d} {{}}")
                    }
                })
                .collect();
            ProgramSource::Inline(clauses.join("\n"))
        }
    };
    let mut options: Vec<(String, Option<String>)> = Vec::new();
    for (given, name) in [
        (quiet, "quiet"),
        (a.destructive, "destructive"),
        (a.flowindent, "flowindent"),
    ] {
        if given {
            options.push((name.into(), None));
        }
    }
    if let Some(size) = a.bufsize {
        options.push(("bufsize".into(), Some(size)));
    }
    options.extend(a.options.iter().map(|o| match o.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (o.clone(), None),
    }));
    Ok(RunConfig {
        source,
        args: rest.collect(),
        target: target(&a.target)?,
        list: a.list,
        compile_only: a.compile_only,
        zdefs: a.zdefs,
        options,
        dump_bpf: a.dump_bpf,
        probe_columns: !dtrace_testing,
        cpp: a.cpp.then_some(CppOptions {
            defines: a.defines,
            undefines: a.undefines,
            include_dirs: a.include_dirs,
        }),
    })
}

/// A `-P`/`-m`/`-f` description made a full `provider:module:function:name` one: its fields
/// end at field `last_field` (0 = provider), the fields after it match anything. What follows
/// the description (a predicate or an action) is kept.
fn qualify(spec: &str, last_field: usize) -> String {
    let end = spec.find(['/', '{']).unwrap_or(spec.len());
    let (desc, clause) = spec.split_at(end);
    let desc = desc.trim();
    let given = desc.split(':').count();
    let before = (last_field + 1).saturating_sub(given);
    let after = 3 - last_field;
    format!(
        "{}{}{} {}",
        ":".repeat(before),
        desc,
        ":".repeat(after),
        clause
    )
    .trim_end()
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn resolve(args: &[&str]) -> Result<Config> {
        Config::resolve(Cli::try_parse_from(args)?, &Environment::default())
    }

    #[test]
    fn command_is_split_like_a_shell() {
        let c = resolve(&["dtk", "opens", "-c", "sh -c 'echo a b'"]).unwrap();
        let CommandConfig::Opens(o) = c.command else {
            panic!()
        };
        assert_eq!(
            o.target,
            Target::Command(vec!["sh".into(), "-c".into(), "echo a b".into()])
        );
        let err = resolve(&["dtk", "opens", "-c", "sh 'x"]).unwrap_err();
        assert!(err.to_string().contains("unbalanced quotes"), "{err}");
    }

    #[test]
    fn bad_regex_names_the_option() {
        let err = resolve(&["dtk", "opens", "--path", "("]).unwrap_err();
        assert!(err.to_string().starts_with("--path \"(\""), "{err}");
    }

    #[test]
    fn run_takes_script_then_args_or_program_then_args() {
        let c = resolve(&["dtk", "run", "s.d", "1", "x"]).unwrap();
        let CommandConfig::Run(r) = c.command else {
            panic!()
        };
        assert_eq!(r.source, ProgramSource::File("s.d".into()));
        assert_eq!(r.args, ["1", "x"]);
        let c = resolve(&["dtk", "run", "-n", "BEGIN { exit(0); }", "1"]).unwrap();
        let CommandConfig::Run(r) = c.command else {
            panic!()
        };
        assert_eq!(r.source, ProgramSource::Inline("BEGIN { exit(0); }".into()));
        assert_eq!(r.args, ["1"]);
        assert!(resolve(&["dtk", "run"]).is_err());
    }

    #[test]
    fn run_takes_options_anywhere_as_dtrace_does() {
        let c = resolve(&[
            "dtk",
            "run",
            "x.d",
            "-c",
            "ls /",
            "a",
            "-q",
            "-x",
            "strsize=8",
        ]);
        let CommandConfig::Run(r) = c.unwrap().command else {
            panic!()
        };
        assert_eq!(r.source, ProgramSource::File("x.d".into()));
        assert_eq!(r.args, ["a"]);
        assert_eq!(r.target, Target::Command(vec!["ls".into(), "/".into()]));
        assert_eq!(
            r.options,
            [("quiet".into(), None), ("strsize".into(), Some("8".into()))]
        );
        let c = resolve(&["dtk", "run", "1", "-s", "y.d", "-w", "2"]).unwrap();
        let CommandConfig::Run(r) = c.command else {
            panic!()
        };
        assert_eq!(r.source, ProgramSource::File("y.d".into()));
        assert_eq!(r.args, ["1", "2"]);
        assert_eq!(r.options, [("destructive".into(), None)]);
    }

    #[test]
    fn probe_options_qualify_descriptions_as_dtrace_does() {
        assert_eq!(qualify("syscall", 0), "syscall:::");
        assert_eq!(qualify("syscall{ exit(0); }", 0), "syscall::: { exit(0); }");
        assert_eq!(qualify("libc.so.6", 1), ":libc.so.6::");
        assert_eq!(qualify("pid1:libc.so.6", 1), "pid1:libc.so.6::");
        assert_eq!(qualify("read /pid == 1/", 2), "::read: /pid == 1/");
        let c = resolve(&["dtk", "run", "-P", "syscall", "-f", "read"]).unwrap();
        let CommandConfig::Run(r) = c.command else {
            panic!()
        };
        assert_eq!(
            r.source,
            ProgramSource::Inline("syscall::: {}\n::read: {}".into())
        );
    }

    #[test]
    fn dtrace_options_dtk_lacks_are_named() {
        let err = resolve(&["dtk", "run", "-G", "-s", "x.d"]).unwrap_err();
        assert!(err.to_string().contains("-G (an ELF object"), "{err}");
        let err = resolve(&["dtk", "run", "-i", "12"]).unwrap_err();
        assert!(
            err.to_string().contains("-i (probes by numeric id)"),
            "{err}"
        );
    }

    #[test]
    fn pipe_output_flushes_every_line() {
        let c = resolve(&["dtk", "list"]).unwrap();
        assert!(c.output.line_flush);
        assert!(!c.output.color);
    }
}
