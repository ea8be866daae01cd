//! The CPython interpreters pyflow is tested on: Debian 12's /usr/bin/python3.11, and the other
//! versions Debian builds for this machine, unpacked by `.ci/debian-pythons` (the fixture) into
//! `$DTK_PYTHONS` or /var/cache/dtk-pythons.
//!
//! The fixture's manifest tells "Debian does not provide this version" (a skip, with a note)
//! from "the fixture was not run" (a skip, or a failure when `DTK_REQUIRE_KERNEL=1`).

use std::path::PathBuf;
use std::process::Command;

/// One interpreter: how to start it.
#[derive(Clone, Debug)]
pub struct Interpreter {
    /// `python3.11`, `python3.15`: for messages.
    pub name: String,
    /// The command that starts it, before the script's path.
    pub argv: Vec<String>,
    /// Variables to set for it.
    pub env: Vec<(String, String)>,
    /// CPython 3.12 to 3.14: no function markers, pyflow follows the perf trampoline.
    pub trampoline: bool,
    /// pyflow tells yields, resumes and unwinds apart on it: the trampoline path, 3.9, 3.11
    /// and 3.15 (pyflow.d reads the running frame there).
    pub yields: bool,
}

impl Interpreter {
    /// Debian 12's own python3.11.
    pub fn system_3_11() -> Interpreter {
        Interpreter {
            name: "python3.11".into(),
            argv: vec!["/usr/bin/python3.11".into()],
            env: Vec::new(),
            trampoline: false,
            yields: true,
        }
    }

    /// Debian's build of CPython `version` from the fixture, or None (with a note on stderr)
    /// when this run goes without it. Panics when it is missing and `DTK_REQUIRE_KERNEL=1`.
    pub fn debian(version: &str, test: &str) -> Option<Interpreter> {
        let root = fixture_root();
        let required = std::env::var("DTK_REQUIRE_KERNEL").as_deref() == Ok("1");
        let manifest = std::fs::read_to_string(root.join("manifest")).ok();
        let state = manifest.as_deref().map(|m| {
            m.lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .find(|w| w.get(1) == Some(&version))
                .map(|w| w[0] == "provided")
        });
        let why = match state {
            None => "the fixture was not run (.ci/debian-pythons)",
            Some(None) => "the fixture does not know this version (.ci/debian-pythons)",
            Some(Some(false)) => {
                eprintln!("{test}: skipped: Debian provides no python{version}");
                return None;
            }
            Some(Some(true)) => {
                let usr = root.join(format!("python{version}/usr"));
                let python = usr.join(format!("bin/python{version}"));
                if python.exists() {
                    return Some(Interpreter {
                        name: format!("python{version}"),
                        argv: vec![python.to_string_lossy().into_owned()],
                        env: vec![("PYTHONHOME".into(), usr.to_string_lossy().into_owned())],
                        trampoline: ["3.12", "3.13", "3.14"].contains(&version),
                        yields: ["3.9", "3.11", "3.12", "3.13", "3.14", "3.15"].contains(&version),
                    });
                }
                "the manifest lists it but its interpreter is missing (.ci/debian-pythons)"
            }
        };
        if required {
            panic!("{test}: python{version} under {}: {why}", root.display());
        }
        eprintln!(
            "{test}: skipped: python{version} under {}: {why}",
            root.display()
        );
        None
    }

    /// A pyenv build of the machine image (`--enable-shared`, no USDT markers): CPython
    /// 3.12 and 3.13 there go the perf-trampoline path. None (with a note) when absent; a
    /// failure when `DTK_REQUIRE_KERNEL=1`.
    pub fn pyenv(version: &str, test: &str) -> Option<Interpreter> {
        let minor = version.rsplit_once('.').map_or(version, |(mm, _)| mm);
        let python = PathBuf::from(format!("/root/.pyenv/versions/{version}/bin/python{minor}"));
        if python.exists() {
            return Some(Interpreter {
                name: format!("pyenv python{version}"),
                argv: vec![python.to_string_lossy().into_owned()],
                env: Vec::new(),
                trampoline: true,
                yields: true,
            });
        }
        let why = format!("{} is not on this machine", python.display());
        if std::env::var("DTK_REQUIRE_KERNEL").as_deref() == Ok("1") {
            panic!("{test}: {why}");
        }
        eprintln!("{test}: skipped: {why}");
        None
    }

    /// The interpreter running `script` (and its arguments).
    pub fn command(&self, script: &[&str]) -> Command {
        let mut command = Command::new(&self.argv[0]);
        command.args(&self.argv[1..]).args(script);
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// The command line for `dtk -c`, running `script`.
    pub fn command_line(&self, script: &str) -> String {
        self.command_line_of(&[script])
    }

    /// The command line for `dtk -c`, with `args` after the interpreter.
    pub fn command_line_of(&self, args: &[&str]) -> String {
        let mut words = self.argv.clone();
        words.extend(args.iter().map(|a| a.to_string()));
        shlex::try_join(words.iter().map(String::as_str)).expect("no NUL in a path")
    }
}

fn fixture_root() -> PathBuf {
    std::env::var_os("DTK_PYTHONS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/dtk-pythons"))
}
