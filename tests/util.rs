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
