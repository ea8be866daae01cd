//! Helpers shared by the test modules.

/// Whether kernel tests can run here: root, and the bpf() syscall answering. Returns false
/// (and says so on stderr) when they cannot; panics instead when `DTK_REQUIRE_KERNEL=1`.
#[allow(dead_code)]
pub fn kernel_available(test: &str) -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    let why = if unsafe { libc::geteuid() } != 0 {
        Some("not running as root")
    } else if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists()
        && !std::path::Path::new("/sys/fs/bpf").exists()
    {
        Some("this kernel shows no sign of BPF support")
    } else {
        None
    };
    match why {
        None => true,
        Some(why) => {
            if std::env::var("DTK_REQUIRE_KERNEL").as_deref() == Ok("1") {
                panic!("{test}: kernel test cannot run ({why}) and DTK_REQUIRE_KERNEL=1");
            }
            eprintln!("{test}: skipped: {why}");
            false
        }
    }
}

/// Runs dtk with `args` as uid and gid 65534 (nobody) with no groups, holding only the
/// capabilities `caps` (setpriv's names, such as "bpf,perfmon"), as a user without root would.
/// dtk is copied where nobody can run it first.
#[allow(dead_code)]
pub fn dtk_as_nobody(args: &[&str], caps: &str) -> std::process::Output {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dtk = dir.path().join("dtk");
    std::fs::copy(assert_cmd::cargo::cargo_bin("dtk"), &dtk).unwrap();
    let mut setpriv = std::process::Command::new("setpriv");
    setpriv.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
    if !caps.is_empty() {
        let plus: Vec<String> = caps.split(',').map(|c| format!("+{c}")).collect();
        let plus = plus.join(",");
        setpriv.arg(format!("--inh-caps={plus}"));
        setpriv.arg(format!("--ambient-caps={plus}"));
    }
    setpriv
        .arg(&dtk)
        .args(args)
        .current_dir("/")
        .env_remove("NO_COLOR");
    // setpriv execs the fresh copy: see spawn_fresh_executable for why that can fail for a
    // moment with ETXTBSY.
    let mut tries = 0;
    loop {
        let out = setpriv.output().unwrap();
        let busy = String::from_utf8_lossy(&out.stderr).contains("Text file busy");
        if !busy || tries == 100 {
            return out;
        }
        tries += 1;
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Spawns `command`, whose program the test has just written (a copy of a binary), again while
/// exec fails with ETXTBSY: a child that another test thread forked while the file was open
/// for writing holds that descriptor until it execs itself.
#[allow(dead_code)]
pub fn spawn_fresh_executable(command: &mut std::process::Command) -> std::process::Child {
    let mut tries = 0;
    loop {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            spawned => return spawned.unwrap(),
        }
    }
}

/// A pyenv layout as pyenv writes it: ROOT/shims/NAME in pyenv's own shim format, and a
/// ROOT/libexec/pyenv whose `which NAME` prints `answer` (or fails when it is empty).
#[allow(dead_code)]
pub fn fake_pyenv(name: &str, answer: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let r = root.path().display();
    let shim = root.path().join("shims").join(name);
    let pyenv = root.path().join("libexec/pyenv");
    std::fs::create_dir_all(shim.parent().unwrap()).unwrap();
    std::fs::create_dir_all(pyenv.parent().unwrap()).unwrap();
    std::fs::write(
        &shim,
        format!(
            "#!/usr/bin/env bash\nset -e\n[ -n \"$PYENV_DEBUG\" ] && set -x\n\n\
             program=\"${{0##*/}}\"\n\nexport PYENV_ROOT=\"{r}\"\n\
             exec \"{r}/libexec/pyenv\" exec \"$program\" \"$@\"\n"
        ),
    )
    .unwrap();
    let which = if answer.is_empty() {
        "echo \"pyenv: $2: command not found\" >&2; exit 127".to_string()
    } else {
        format!("[ \"$1\" = which ] && [ \"$2\" = {name} ] && [ \"$PYENV_ROOT\" = {r} ] && echo {answer}")
    };
    std::fs::write(&pyenv, format!("#!/bin/sh\n{which}\n")).unwrap();
    for file in [&shim, &pyenv] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (root, shim)
}

/// A FIFO named `name` in `dir`: a traced command reads from it what the test writes, when
/// the test chooses to write it.
pub fn fifo(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let fifo = dir.join(name);
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path, valid for the call.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    fifo
}

/// Writes `rounds` rounds of `round` zero bytes into `fifo`, each after a pause of `pause`,
/// then closes it: a reader that waits for them all lives at least `rounds` pauses. Opening
/// waits until the reader has opened its end.
pub fn feed(fifo: &std::path::Path, rounds: usize, round: usize, pause: std::time::Duration) {
    use std::io::Write;
    let mut writer = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
    for _ in 0..rounds {
        std::thread::sleep(pause);
        writer.write_all(&vec![0; round]).unwrap();
    }
}

/// A tmux server of the test's own, killed (with what runs in it) when dropped: dtk on a
/// real terminal, as a user runs it.
#[allow(dead_code)]
pub struct Tmux {
    socket: String,
}

#[allow(dead_code)]
impl Tmux {
    /// Runs `command` (a shell command line) in a new 120x40 session.
    pub fn start(command: &str) -> Tmux {
        static SESSIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmux = Tmux {
            socket: format!("dtk-test-{}-{n}", std::process::id()),
        };
        let status = tmux
            .command()
            .args(["new-session", "-d", "-x", "120", "-y", "40", command])
            .status()
            .expect("tmux is needed (apt-get install tmux)");
        assert!(status.success());
        tmux
    }

    fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new("tmux");
        cmd.args(["-L", &self.socket]);
        cmd
    }

    /// What the terminal shows now.
    pub fn screen(&self) -> String {
        let out = self
            .command()
            .args(["capture-pane", "-p"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pane's title, which a program sets with the OSC 0 or 2 sequence.
    pub fn title(&self) -> String {
        let out = self
            .command()
            .args(["display-message", "-p", "#{pane_title}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// Types `keys` (tmux key names: `q`, `C-c`).
    pub fn keys(&self, keys: &str) {
        let status = self.command().args(["send-keys", keys]).status().unwrap();
        assert!(status.success());
    }

    /// Waits up to 20 s for the screen to satisfy `test`, and returns it.
    pub fn wait_for(&self, what: &str, test: impl Fn(&str) -> bool) -> String {
        let start = std::time::Instant::now();
        loop {
            let screen = self.screen();
            if test(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "no {what} on the screen:\n{screen}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").status();
    }
}
