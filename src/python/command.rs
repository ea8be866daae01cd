//! What an argument of `-c` runs: a file found as the shell would find it, and, when that file
//! is a script rather than a program, what dtk can say about it. A pyenv shim (a bash script
//! that pyenv puts first on PATH) is resolved to the interpreter it would run, with
//! `pyenv which`, since the shim itself has no interpreter in it to attach to.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What an argument names.
#[derive(Debug, PartialEq, Eq)]
pub enum Program {
    /// A file that is not a script (an ELF program, usually).
    File(PathBuf),
    /// A pyenv shim, and the interpreter `pyenv which` says it runs.
    Shim { shim: PathBuf, interpreter: PathBuf },
    /// A script, with its `#!` line.
    Script { path: PathBuf, shebang: String },
}

/// Why a pyenv shim could not be resolved.
#[derive(Debug, PartialEq, Eq)]
pub struct ShimError {
    pub shim: PathBuf,
    pub reason: String,
}

/// What `arg` names, or None when it names no file (an option, a word that is not on PATH).
pub fn program(arg: &str) -> Option<Result<Program, ShimError>> {
    let path = executable(arg)?;
    let Some(shebang) = shebang(&path) else {
        return Some(Ok(Program::File(path)));
    };
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    Some(match pyenv_shim(&text) {
        Some(shim) => shim.which(&path).map(|interpreter| Program::Shim {
            shim: path,
            interpreter,
        }),
        None => Ok(Program::Script { path, shebang }),
    })
}

/// `arg` as a file to read: a path, or a name found on PATH.
pub fn executable(arg: &str) -> Option<PathBuf> {
    if arg.contains('/') {
        let path = PathBuf::from(arg);
        return path.is_file().then_some(path);
    }
    if arg.starts_with('-') || arg.is_empty() {
        return None;
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(arg))
            .find(|p| p.is_file())
    })
}

/// The `#!` line of a script, without the `#!`; None for any other file.
fn shebang(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    Some(String::from_utf8_lossy(&line[..end]).trim().to_string())
}

/// What a pyenv shim names: pyenv's root and its command. Every shim pyenv writes (its
/// `pyenv-rehash`) has the lines `export PYENV_ROOT="ROOT"` and
/// `exec "PYENV" exec "$program" "$@"`.
#[derive(Debug, PartialEq, Eq)]
struct PyenvShim {
    root: String,
    pyenv: String,
}

fn pyenv_shim(text: &str) -> Option<PyenvShim> {
    let quoted = |s: &str| Some(s.strip_prefix('"')?.split_once('"')?.0.to_string());
    let mut root = None;
    let mut pyenv = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("export PYENV_ROOT=") {
            root = quoted(rest);
        } else if let Some(rest) = line.strip_prefix("exec ") {
            if rest.contains(" exec \"$program\"") {
                pyenv = quoted(rest);
            }
        }
    }
    Some(PyenvShim {
        root: root?,
        pyenv: pyenv?,
    })
}

impl PyenvShim {
    /// The interpreter the shim at `path` runs from the current directory, as
    /// `pyenv which NAME` says (it reads PYENV_VERSION and the .python-version files, as the
    /// shim would).
    fn which(&self, path: &Path) -> Result<PathBuf, ShimError> {
        let fail = |reason: String| ShimError {
            shim: path.to_path_buf(),
            reason,
        };
        let name = path.file_name().unwrap_or_default();
        let out = Command::new(&self.pyenv)
            .arg("which")
            .arg(name)
            .env("PYENV_ROOT", &self.root)
            .output()
            .map_err(|e| fail(format!("cannot run {}: {e}", self.pyenv)))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(fail(format!(
                "`pyenv which {}` failed: {}",
                name.to_string_lossy(),
                stderr.trim()
            )));
        }
        let interpreter = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if !interpreter.is_file() {
            return Err(fail(format!(
                "`pyenv which` named {}, which is not a file",
                interpreter.display()
            )));
        }
        Ok(interpreter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIM: &str = r#"#!/usr/bin/env bash
set -e
[ -n "$PYENV_DEBUG" ] && set -x

program="${0##*/}"

export PYENV_ROOT="/root/.pyenv"
SHIM_PATH=${0%/*}
if [[ $SHIM_PATH != "/root/.pyenv/shims" ]]; then
  export _PYENV_SHIM_PATH="$SHIM_PATH"
fi
exec "/root/.pyenv/libexec/pyenv" exec "$program" "$@"
"#;

    #[test]
    fn a_pyenv_shim_names_its_root_and_pyenv() {
        assert_eq!(
            pyenv_shim(SHIM),
            Some(PyenvShim {
                root: "/root/.pyenv".into(),
                pyenv: "/root/.pyenv/libexec/pyenv".into(),
            })
        );
        assert_eq!(pyenv_shim("#!/bin/sh\nexec python3 \"$@\"\n"), None);
    }

    #[test]
    fn scripts_are_told_from_programs() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("run.sh");
        std::fs::write(&script, "#!/bin/sh -e\nexec python3 app.py\n").unwrap();
        assert_eq!(
            program(script.to_str().unwrap()),
            Some(Ok(Program::Script {
                path: script.clone(),
                shebang: "/bin/sh -e".into()
            }))
        );
        assert_eq!(
            program("/bin/true"),
            Some(Ok(Program::File("/bin/true".into())))
        );
        assert_eq!(program("--version"), None);
    }
}
