//! Helpers shared by the test modules.

/// Whether kernel tests can run here: root, and the bpf() syscall answering. Returns false
/// (and says so on stderr) when they cannot; panics instead when `DTK_REQUIRE_KERNEL=1`.
#[allow(dead_code)]
pub fn kernel_available(test: &str) -> bool {
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
