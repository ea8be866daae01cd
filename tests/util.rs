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
