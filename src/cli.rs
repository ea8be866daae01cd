//! The command line, as clap sees it. This is the only module that knows clap: main.rs turns
//! what it parses into a [`crate::config::Config`] and nothing deeper reads argv.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The text after the help of `dtk show COMMAND`, with one example.
macro_rules! show_help {
    ($example:literal) => {
        concat!(
            "Examples:\n  dtk show ",
            $example,
            "\n\nExit status:\n  0        the program was printed\n  2        an error (reported on stderr)"
        )
    };
}

/// The exit statuses of the commands that trace a process (a literal, for `concat!` in the
/// help texts).
macro_rules! exit_status_of_tracing {
    () => {
        "\
Exit status:
  N        with -c: the command's own exit status, as strace and time(1) give it
  128+S    with -c: the command was killed by signal S (reported on stderr)
  0        otherwise: Ctrl-C, -d, or the end of a -p target (reported on stderr)
  2        an error (reported on stderr)
  130      a second Ctrl-C or SIGTERM while tracing stops"
    };
}

/// A DTrace toolkit: Python call flow, file opens and system calls, from bundled D scripts run
/// by libdtrace or by dtk's own eBPF engine on stock Linux.
#[derive(Debug, Parser)]
#[command(name = "dtk", version, propagate_version = true, max_term_width = 100)]
#[command(disable_help_subcommand = true)]
#[command(after_help = "\
Examples:
  dtk pyflow -p 4242                 Python call flow of a running interpreter
  dtk opens -n nginx                 files nginx opens
  dtk syscalls -P -L -d 5            syscall counts and latency by process, for 5 seconds
  dtk run -n 'syscall:::entry { @[execname] = count(); }'
  dtk list                           the bundled D scripts
  dtk show opens -n nginx            the D program `dtk opens -n nginx` runs

dtk is also a multi-call binary: linked as `pyflow`, `opens` or `syscalls`, it runs that
subcommand (`pyflow -p 4242`).

Exit status:
  0        success; also after Ctrl-C, -d, or the end of a -p target
  N        pyflow, opens, syscalls -c CMD: the status CMD exited with, or 128+S when signal S
           killed it (reported on stderr)
  N        run: the status the D program gave exit(), else 0 (as dtrace(1))
  2        an error: bad usage, a D program that does not compile, a failure to trace
  130      a second Ctrl-C or SIGTERM while tracing stops

Environment:
  NO_COLOR        when set and not empty, no colour unless --color always (no-color.org)
  TERM            when dumb, no colour unless --color always
  PATH            where -c finds its command, and pyflow an interpreter named without a path
  PYENV_VERSION   the interpreter a pyenv shim runs, as `pyenv which` (which pyflow asks) says
  _DTRACE_TESTING when set, run leaves the CPU and ID columns out of its per-firing lines,
                  as dtrace(1) does for its test suite
  dtk reads no DTK_* variables. A -c command runs with dtk's environment.")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options that every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Tracing engine: libdtrace where built in, else dtk's eBPF engine.
    #[arg(long, value_enum, value_name = "BACKEND", default_value_t = BackendArg::Auto, global = true)]
    pub backend: BackendArg,
    /// When to colour the output.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorArg::Auto, global = true)]
    pub color: ColorArg,
    /// Output format: text for people, json for one JSON object per line, each with a
    /// "type" (the fields of each are in README.md, "JSON output").
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT", default_value_t = FormatArg::Text, global = true)]
    pub output: FormatArg,
    /// Do not print the header line (pyflow: the flow's; its --summary table keeps its own).
    #[arg(long, global = true)]
    pub no_header: bool,
    /// Print no notices on stderr (errors and drop counts are still printed).
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    Auto,
    Libdtrace,
    Linux,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Pyflow(PyflowArgs),
    Opens(OpensArgs),
    Syscalls(SyscallsArgs),
    Run(Box<RunArgs>),
    /// List the bundled D scripts, one line each.
    #[command(after_help = "Examples:\n  dtk list\n  dtk -o json list")]
    List,
    Show(ShowArgs),
    Generate(GenerateArgs),
}

/// The process to trace: a running one, or a command to start.
#[derive(Clone, Debug, Default, Args)]
pub struct TargetArgs {
    /// Trace this running process; tracing ends when it exits.
    #[arg(
        short,
        long,
        value_name = "PID",
        value_parser = parse_pid,
        conflicts_with = "command",
        allow_negative_numbers = true
    )]
    pub pid: Option<u32>,
    /// Start this command (split like a shell would) and trace it until it exits.
    #[arg(short, long, value_name = "CMD")]
    pub command: Option<String>,
}

/// Python call flow: indented function entries and returns, per thread.
#[derive(Clone, Debug, Args)]
#[command(after_help = concat!("\
Examples:
  dtk pyflow -p 4242                  follow a running interpreter (Ctrl-C to stop)
  dtk pyflow -c 'python3 app.py'      start a program and follow it from its first call
  dtk pyflow -p 4242 --all            include the standard library and site-packages
  dtk pyflow -p 4242 --module requests
  dtk pyflow -p 4242 | grep connect   one event per line, flushed as it happens
  dtk pyflow -c 'python3 app.py' --summary

Marks (CPython 3.9 and 3.11 to 3.15, with a target):
  <- f !          f returned by an exception
  <- f (yield)    generator or coroutine f yielded (or awaited)
  -> f (resume)   f resumed after a yield
  => exec PROG    the process replaced its program: a new flow begins, at depth 0

Lines carry the thread id (TID) from the first, since any program may start a thread.
EXCL in the summary is a function's time outside the shown functions it called: time in the
hidden library code it called is its own.

Limits (CPython 3.12 to 3.14, through the perf trampoline):
  calls nested up to 100,000 deep are shown (64 where dtk cannot find the evaluator's
  return instructions; it then says how many calls it did not show); CPython 3.13 runs a
  specialised class call's __init__ without the trampoline, so those are not shown

", exit_status_of_tracing!()))]
pub struct PyflowArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// With -c or -p: trace only that one process, not its children (by default the whole
    /// process tree is followed: children by fork, vfork and clone, theirs, across exec).
    #[arg(long)]
    pub no_follow: bool,
    /// Show every frame, including the standard library, site-packages and frozen modules.
    #[arg(short, long)]
    pub all: bool,
    /// Show only frames whose file matches REGEX (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub include: Vec<String>,
    /// Hide frames whose file matches REGEX (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub exclude: Vec<String>,
    /// Follow one package or module, even when it is installed in site-packages.
    #[arg(long, value_name = "NAME")]
    pub module: Vec<String>,
    /// Show the time since tracing started instead of the time since the previous event.
    #[arg(long)]
    pub elapsed: bool,
    /// At exit, print calls and inclusive and exclusive time per function (exclusive time
    /// includes the hidden library code the function called).
    #[arg(long)]
    pub summary: bool,
    /// How many functions the summary lists.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,
    /// With -p on CPython 3.14 without its perf trampoline: turn the trampoline on in the
    /// process (sys.remote_exec runs code in it), and off again when tracing ends.
    #[arg(long, requires = "pid")]
    pub activate: bool,
}

/// Files opened, with the fd or the error, scoped by process, name or zone.
#[derive(Clone, Debug, Args)]
#[command(after_help = concat!("\
Examples:
  dtk opens                           every open on the system
  dtk opens -n nginx -x               failed opens by processes named nginx
  dtk opens -z web                    opens inside the cgroup (zone) web and below it
  dtk opens -c 'cat /etc/hostname'    the opens of one command
  dtk opens --path '\\.conf$' -T      configuration files, with wall-clock times
  dtk opens --count path -d 10        the most opened paths over 10 seconds

", exit_status_of_tracing!()))]
pub struct OpensArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// With -c or -p: trace only that one process, not its children (by default the whole
    /// process tree is followed: children by fork, vfork and clone, theirs, across exec).
    #[arg(long)]
    pub no_follow: bool,
    /// Only processes whose name is exactly NAME.
    #[arg(short = 'n', long, value_name = "NAME")]
    pub name: Option<String>,
    /// Only processes whose name matches REGEX.
    #[arg(short = 'N', long, value_name = "REGEX")]
    pub name_regex: Option<String>,
    /// Only processes in ZONE (illumos: the zonename; Linux: a cgroup name or path, with its
    /// descendants).
    #[arg(short = 'z', long, value_name = "ZONE")]
    pub zone: Option<String>,
    /// Show the ZONE column.
    #[arg(short = 'Z', long)]
    pub show_zone: bool,
    /// Only paths that match REGEX.
    #[arg(long, value_name = "REGEX")]
    pub path: Option<String>,
    /// Only opens that failed.
    #[arg(short = 'x', long)]
    pub failed: bool,
    /// Add the FLAGS column: the open flags (O_RDONLY|O_CLOEXEC…).
    #[arg(long)]
    pub flags: bool,
    /// Add the TIME column: the wall clock.
    #[arg(short = 'T', long)]
    pub timestamp: bool,
    /// Add the ELAPSED(s) column: the time since tracing started.
    #[arg(short = 'e', long)]
    pub elapsed: bool,
    /// Resolve relative paths against the process's working directory (or openat's
    /// directory); a path that cannot be (the process has gone) is shown as given and marked
    /// "(unresolved)".
    #[arg(long)]
    pub full: bool,
    /// Instead of events, print at exit the number of opens per path or per process.
    #[arg(long, value_enum, value_name = "BY", num_args = 0..=1, default_missing_value = "path")]
    pub count: Option<CountBy>,
    /// Stop after SECONDS.
    #[arg(
        short = 'd',
        long,
        value_name = "SECONDS",
        value_parser = parse_seconds,
        allow_negative_numbers = true
    )]
    pub duration: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CountBy {
    Path,
    Process,
}

/// System call counts, errors and latency, per call and per process.
#[derive(Clone, Debug, Args)]
#[command(after_help = concat!("\
Examples:
  dtk syscalls -d 5                   counts by call over 5 seconds
  dtk syscalls -P -L                  by process, with total and average latency (Ctrl-C)
  dtk syscalls -p 812 -e              one process, with errors per call
  dtk syscalls -i 1 -o json           one JSON table per second
  dtk syscalls --hist read -d 10      latency histogram of read
  dtk syscalls --live                 full-screen view of the top calls and processes

--live keys: c, r, t, e, n sort by count, rate, time, errors or name; q (or Ctrl-C) quits.

", exit_status_of_tracing!()))]
pub struct SyscallsArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// With -c or -p: trace only that one process, not its children (by default the whole
    /// process tree is followed: children by fork, vfork and clone, theirs, across exec).
    #[arg(long)]
    pub no_follow: bool,
    /// Only processes whose name is exactly NAME.
    #[arg(short = 'n', long, value_name = "NAME")]
    pub name: Option<String>,
    /// Only processes in ZONE (Linux: a cgroup name or path, with its descendants).
    #[arg(short = 'z', long, value_name = "ZONE")]
    pub zone: Option<String>,
    /// Count by process (PID, COMM) as well as by call.
    #[arg(short = 'P', long)]
    pub by_process: bool,
    /// Add total and average latency, from entry to return per thread.
    #[arg(short = 'L', long)]
    pub latency: bool,
    /// Add errors per call, with the errno names and counts.
    #[arg(short = 'e', long)]
    pub errors: bool,
    /// Full-screen view of the top calls and processes (counts, rates, latency and errors),
    /// refreshed every second.
    #[arg(long, conflicts_with_all = ["interval", "hist", "top"])]
    pub live: bool,
    /// Show the top N rows.
    #[arg(short = 'T', long, value_name = "N")]
    pub top: Option<usize>,
    /// Sort rows by this column (time implies -L, errors implies -e).
    #[arg(long, value_enum, value_name = "COLUMN", default_value_t = SortBy::Count)]
    pub sort: SortBy,
    /// Print a table every SECONDS (whole seconds).
    #[arg(short = 'i', long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..))]
    pub interval: Option<u32>,
    /// Stop after SECONDS.
    #[arg(
        short = 'd',
        long,
        value_name = "SECONDS",
        value_parser = parse_seconds,
        allow_negative_numbers = true
    )]
    pub duration: Option<Duration>,
    /// Latency histogram of one system call, in DTrace's quantize format.
    #[arg(long, value_name = "SYSCALL")]
    pub hist: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SortBy {
    Count,
    Time,
    Errors,
    Name,
}

/// Run a D script or one-liner through dtk's consumer.
#[derive(Clone, Debug, Args)]
#[command(after_help = "\
Examples:
  dtk run script.d                    run a D script
  dtk run script.d 42 nginx           with $1 = 42 and $2 = nginx
  dtk run -s script.d -c 'ls /'       the same as dtrace(1): options anywhere, -s the script
  dtk run -q -P syscall -e            compile and match probes, then exit
  dtk run -n 'syscall::openat:entry { printf(\"%s\\n\", copyinstr(arg1)); }'
  dtk run -n 'python$target:::function-entry { @[copyinstr(arg1)] = count(); }' -p 4242
                                      calls per Python function (on CPython 3.11, dtk
                                      turns the line probe on, which entries need)
  dtk run -n 'tick-1s { exit(3); }'; echo $?
  dtk run -l -n 'syscall::read*:'     list the probes a description matches

Exit status:
  N        the status the D program gave exit(), as with dtrace(1)
  0        the program did not call exit(): Ctrl-C, or the end of the -p or -c target
           (reported on stderr: `dtk: pid N exited (status S)`)
  2        an error: the program does not compile, or tracing failed
  130      a second Ctrl-C or SIGTERM while tracing stops")]
pub struct RunArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The D script file; every operand is then a macro argument ($1, $2, …).
    #[arg(short = 's', long = "script", value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// A D program given on the command line (repeatable: clauses are joined in order).
    /// With -n, every operand is a macro argument ($1, $2, …).
    #[arg(short = 'n', long = "program", value_name = "PROGRAM")]
    pub program: Vec<String>,
    /// Probes of this provider, as `dtrace -P`: PROVIDER[[/predicate/]{action}] (repeatable).
    #[arg(short = 'P', long = "provider", value_name = "PROVIDER")]
    pub provider: Vec<String>,
    /// Probes in this module, as `dtrace -m`: [PROVIDER:]MODULE[{action}] (repeatable).
    #[arg(short = 'm', long = "module", value_name = "MODULE")]
    pub module: Vec<String>,
    /// Probes of this function, as `dtrace -f`: [[PROVIDER:]MODULE:]FUNCTION[{action}]
    /// (repeatable).
    #[arg(short = 'f', long = "function", value_name = "FUNCTION")]
    pub function: Vec<String>,
    /// List the probes that the descriptions match (-n DESC, or the script's) instead of
    /// tracing.
    #[arg(short = 'l', long)]
    pub list: bool,
    /// Compile the program and match its probes, then exit without tracing.
    #[arg(short = 'e', long)]
    pub compile_only: bool,
    /// Permit probe descriptions that match no probes.
    #[arg(short = 'Z', long)]
    pub zdefs: bool,
    /// Permit destructive actions such as system() and raise() (`-x destructive`).
    #[arg(short = 'w', long)]
    pub destructive: bool,
    /// Indent function entries and returns (`-x flowindent`).
    #[arg(short = 'F', long)]
    pub flowindent: bool,
    /// The principal buffer's size, such as 4m (`-x bufsize=SIZE`).
    #[arg(short = 'b', long, value_name = "SIZE")]
    pub bufsize: Option<String>,
    /// Set a D option, as `#pragma D option` does (repeatable).
    #[arg(short = 'x', long = "option", value_name = "NAME[=VALUE]")]
    pub options: Vec<String>,
    /// Print the generated eBPF programs on stderr before tracing (linux back end).
    #[arg(long)]
    pub dump_bpf: bool,
    /// Run the C preprocessor (cpp) over the program first, as dtrace -C does.
    #[arg(short = 'C')]
    pub cpp: bool,
    /// With -C: define a preprocessor macro (repeatable).
    #[arg(short = 'D', value_name = "NAME[=VALUE]")]
    pub defines: Vec<String>,
    /// With -C: undefine a preprocessor macro (repeatable).
    #[arg(short = 'U', value_name = "NAME")]
    pub undefines: Vec<String>,
    /// With -C: a directory to search for #include files (repeatable).
    #[arg(short = 'I', value_name = "DIR")]
    pub include_dirs: Vec<String>,
    #[command(flatten)]
    pub unsupported: UnsupportedArgs,
    /// The script file (unless -s, -n, -P, -m or -f gives the program), then its arguments
    /// ($1, $2, …). Options may come before, between or after them, as with dtrace(1); `--`
    /// ends the options.
    #[arg(value_name = "SCRIPT_AND_ARGS", allow_negative_numbers = true)]
    pub script_and_args: Vec<String>,
}

/// dtrace(1) options that dtk does not have. They are accepted by the parser only so that the
/// error can name the feature instead of calling the option unknown.
#[derive(Clone, Debug, Args)]
pub struct UnsupportedArgs {
    #[arg(short = 'G', hide = true)]
    pub anonymous_object: bool,
    #[arg(short = 'a', hide = true)]
    pub claim_anonymous: bool,
    #[arg(short = 'A', hide = true)]
    pub anonymous: bool,
    #[arg(short = 'S', hide = true)]
    pub show_dif: bool,
    #[arg(short = 'v', hide = true)]
    pub verbose: bool,
    #[arg(short = 'H', hide = true)]
    pub include_files: bool,
    #[arg(short = 'i', hide = true, value_name = "ID")]
    pub probe_id: Option<String>,
    #[arg(short = 'L', hide = true, value_name = "PATH")]
    pub library_path: Option<String>,
    #[arg(short = 'X', hide = true, value_name = "MODE")]
    pub conformance: Option<String>,
}

impl UnsupportedArgs {
    /// The first dtrace(1) option given that dtk does not have, with what it does there.
    pub fn first(&self) -> Option<&'static str> {
        [
            (
                self.anonymous_object,
                "-G (an ELF object for anonymous tracing)",
            ),
            (
                self.claim_anonymous,
                "-a (claiming anonymous tracing state)",
            ),
            (self.anonymous, "-A (anonymous tracing at boot)"),
            (self.show_dif, "-S (showing the compiled DIF)"),
            (self.verbose, "-v (the stability report)"),
            (self.include_files, "-H (listing the files cpp includes)"),
            (self.probe_id.is_some(), "-i (probes by numeric id)"),
            (self.library_path.is_some(), "-L (a D library directory)"),
            (
                self.conformance.is_some(),
                "-X (ISO C conformance modes of cpp)",
            ),
        ]
        .into_iter()
        .find_map(|(given, what)| given.then_some(what))
    }
}

/// Print the exact D program a command would run, ready to paste into dtrace(1).
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dtk show pyflow -p 4242
  dtk show opens -n nginx -x
  dtk show syscalls -P -L")]
#[command(disable_help_subcommand = true)]
pub struct ShowArgs {
    #[command(subcommand)]
    pub script: ShowScript,
}

#[derive(Debug, Subcommand)]
pub enum ShowScript {
    /// Print the D program of `dtk pyflow` with these options.
    #[command(after_help = show_help!("pyflow -p 4242"))]
    Pyflow(PyflowArgs),
    /// Print the D program of `dtk opens` with these options.
    #[command(after_help = show_help!("opens -n nginx -x"))]
    Opens(OpensArgs),
    /// Print the D program of `dtk syscalls` with these options.
    #[command(after_help = show_help!("syscalls -P -L"))]
    Syscalls(SyscallsArgs),
}

/// Write the man pages or a shell completion script, generated from this command line.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dtk generate man --dir man/
  dtk generate complete-bash > /etc/bash_completion.d/dtk")]
pub struct GenerateArgs {
    /// What to generate.
    #[arg(value_enum)]
    pub kind: GenerateKind,
    /// Write the files into DIR (man: dtk.1 and one page per subcommand) instead of printing
    /// the main one on stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GenerateKind {
    Man,
    CompleteBash,
    CompleteZsh,
    CompleteFish,
}

fn parse_pid(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err("not a process id (a positive integer)".into()),
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => match Duration::try_from_secs_f64(v) {
            Ok(d) if d.is_zero() => Err("too small: the shortest duration is 1e-9 seconds".into()),
            Ok(d) => Ok(d),
            Err(_) => Err(format!(
                "too large: at most {} seconds",
                Duration::MAX.as_secs()
            )),
        },
        _ => Err("not a positive number of seconds".into()),
    }
}

/// The names under which dtk runs one subcommand directly (multi-call binary).
pub const MULTICALL_NAMES: &[&str] = &["pyflow", "opens", "syscalls"];

/// The arguments clap should parse: when dtk was invoked through a link named after a
/// subcommand (`pyflow -p 42`), the subcommand is inserted after the program name.
pub fn multicall_args(mut args: Vec<OsString>) -> Vec<OsString> {
    let invoked_as = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .map(str::to_owned);
    if let Some(name) = invoked_as.filter(|n| MULTICALL_NAMES.contains(&n.as_str())) {
        args[0] = "dtk".into();
        args.insert(1, name.into());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn multicall_inserts_the_subcommand() {
        let args = multicall_args(vec![
            "/usr/local/bin/pyflow".into(),
            "-p".into(),
            "7".into(),
        ]);
        assert_eq!(args, ["dtk", "pyflow", "-p", "7"]);
        let args = multicall_args(vec!["dtk".into(), "list".into()]);
        assert_eq!(args, ["dtk", "list"]);
    }

    #[test]
    fn pid_must_be_a_positive_integer() {
        assert_eq!(parse_pid("42"), Ok(42));
        assert!(parse_pid("0").is_err());
        assert!(parse_pid("notapid").is_err());
        assert!(parse_pid("-1").is_err());
    }

    #[test]
    fn seconds_out_of_range_are_errors() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        for bad in ["99999999999999999999", "1e300", "18446744073709551616"] {
            assert!(
                parse_seconds(bad).unwrap_err().contains("too large"),
                "{bad}"
            );
        }
        assert!(parse_seconds("1e-300").unwrap_err().contains("too small"));
        for bad in ["0", "-1", "nan", "inf", "soon"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
