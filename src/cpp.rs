//! `dtk run -C`: the system's C preprocessor over a D script, as dtrace(1) runs it for -C,
//! with the macros dtrace predefines and the -D/-U/-I options given.
//!
//! cpp's line markers are taken out of its output, and blank lines put back where cpp
//! dropped them, so that a line of the script keeps its number in dtk's messages. Lines an
//! `#include` brings in come before the script's own lines; only the lines after an include
//! are numbered past what the file says.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The preprocessor dtrace(1) runs; found on PATH.
const CPP: &str = "cpp";

/// What -C was given with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CppOptions {
    /// `-D NAME[=VALUE]`.
    pub defines: Vec<String>,
    /// `-U NAME`.
    pub undefines: Vec<String>,
    /// `-I DIR`.
    pub include_dirs: Vec<String>,
}

/// The macros dtrace(1) defines for cpp on Linux (x86_64: `__amd64` too), and its language
/// mode (`-std=c99`, dtrace's default `-X a`).
fn dtrace_args() -> Vec<String> {
    let mut args: Vec<String> = [
        "-D__linux",
        "-D__unix",
        "-D__SVR4",
        "-D__SUNW_D=1",
        "-U__GNUC__",
        "-D__SUNW_D_64",
        "-D__Linux",
        "-D__SUNW_D_VERSION=0x02000000",
        "-std=c99",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if cfg!(target_arch = "x86_64") {
        args.push("-D__amd64".into());
    }
    args
}

/// Runs cpp over `text`, the program `name`; returns what the D compiler is to read.
pub fn preprocess(name: &str, text: &str, options: &CppOptions) -> Result<String> {
    let mut cmd = Command::new(CPP);
    cmd.args(dtrace_args());
    cmd.args(options.include_dirs.iter().map(|d| format!("-I{d}")));
    cmd.args(options.defines.iter().map(|d| format!("-D{d}")));
    cmd.args(options.undefines.iter().map(|u| format!("-U{u}")));
    cmd.arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "-C runs the C preprocessor, `{CPP}`, which is not installed (on Debian: apt-get install cpp)"
        ),
        Err(e) => return Err(e).context(format!("starting the C preprocessor `{CPP}`")),
    };
    // Write from another thread: cpp may fill its output pipe before it has read all input.
    let mut stdin = child.stdin.take().context("cpp's standard input")?;
    let input = text.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .context("waiting for the C preprocessor")?;
    // A write error means cpp stopped reading, which its exit status explains.
    let _ = writer.join();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).replace("<stdin>", name);
        bail!(
            "the C preprocessor failed ({}):\n{}",
            output.status,
            stderr.trim_end()
        );
    }
    Ok(without_line_markers(&String::from_utf8_lossy(
        &output.stdout,
    )))
}

/// cpp's output without its `# N "file" flags` line markers, with blank lines put back so
/// that each line of the script is on the line it was on.
fn without_line_markers(out: &str) -> String {
    let mut text = String::with_capacity(out.len());
    // The number the next line written gets.
    let mut line = 1u64;
    for l in out.lines() {
        if let Some((number, file)) = line_marker(l) {
            if file == "<stdin>" {
                while line < number {
                    text.push('\n');
                    line += 1;
                }
            }
            continue;
        }
        text.push_str(l);
        text.push('\n');
        line += 1;
    }
    text
}

/// `# 12 "file" 2` → (12, "file").
fn line_marker(l: &str) -> Option<(u64, &str)> {
    let rest = l.strip_prefix("# ")?;
    let (number, rest) = rest.split_once(' ')?;
    let number = number.parse().ok()?;
    let file = rest.strip_prefix('"')?.split('"').next()?;
    Some((number, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_markers_go_and_script_lines_keep_their_numbers() {
        let out = "# 1 \"<stdin>\"\n# 1 \"<built-in>\"\n# 1 \"<stdin>\"\n\n\n# 5 \"<stdin>\"\nBEGIN\n# 1 \"x.h\" 1\nint x;\n# 7 \"<stdin>\" 2\n{ }\n";
        let text = without_line_markers(out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[4], "BEGIN");
        assert_eq!(lines[5], "int x;");
        assert_eq!(lines[6], "{ }");
    }
}
