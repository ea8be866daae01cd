//! Build script: finds the system's libdtrace and, when there is one, generates its Rust
//! bindings with bindgen and links it (DESIGN.md, "The two back ends").
//!
//! Search order for dtrace.h: DTRACE_INCLUDE_DIR (with DTRACE_LIB_DIR); pkg-config `dtrace`;
//! the platform's usual places. Without a dtrace.h nothing more happens: libclang is not
//! loaded, and one cargo:warning says that the libdtrace back end is not built.
//!
//! Emitted cfgs: `dtk_libdtrace` when the back end is built, and `dtk_dtrace_oracle` when the
//! header is Oracle's DTrace for Linux, whose API differs from the illumos family (FreeBSD,
//! macOS): it has dtrace_init and dtrace_go(h, cflags), no dtrace_sleep, a pid-based process
//! handler, and different probe-data and aggregation layouts.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a libdtrace was found.
struct Libdtrace {
    include: PathBuf,
    /// Extra include directories the header needs (FreeBSD keeps them in the source tree).
    extra_includes: Vec<PathBuf>,
    lib: Option<PathBuf>,
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(dtk_libdtrace)");
    println!("cargo::rustc-check-cfg=cfg(dtk_dtrace_oracle)");
    println!("cargo::rerun-if-env-changed=DTRACE_INCLUDE_DIR");
    println!("cargo::rerun-if-env-changed=DTRACE_LIB_DIR");
    println!("cargo::rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo::rerun-if-changed=build.rs");

    let Some(found) = find_libdtrace() else {
        println!(
            "cargo::warning=dtrace.h not found: the libdtrace back end is not built \
             (set DTRACE_INCLUDE_DIR and DTRACE_LIB_DIR to build it)"
        );
        return;
    };
    let header = found.include.join("dtrace.h");
    println!("cargo::rerun-if-changed={}", header.display());
    let text = fs::read_to_string(&header).unwrap_or_default();
    // Oracle's header is the only one that declares dtrace_init. The illumos family's
    // layouts (src/backend/libdtrace/platform/) have no module yet: say so, build without.
    if !text.contains("dtrace_init(") {
        println!(
            "cargo::warning={} is an illumos-family libdtrace; dtk's libdtrace back end \
             supports Oracle's DTrace for Linux only for now, so it is not built",
            header.display()
        );
        return;
    }
    println!("cargo::rustc-cfg=dtk_dtrace_oracle");
    generate_bindings(&found, &header);
    if let Some(lib) = &found.lib {
        println!("cargo::rustc-link-search=native={}", lib.display());
        // A private prefix is not on the loader's path: record it in the binary.
        println!("cargo::rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
    println!("cargo::rustc-link-lib=dylib=dtrace");
    println!("cargo::rustc-cfg=dtk_libdtrace");
}

fn find_libdtrace() -> Option<Libdtrace> {
    if let Some(include) = env::var_os("DTRACE_INCLUDE_DIR").map(PathBuf::from) {
        if include.join("dtrace.h").is_file() {
            return Some(Libdtrace {
                include,
                extra_includes: Vec::new(),
                lib: env::var_os("DTRACE_LIB_DIR").map(PathBuf::from),
            });
        }
        println!(
            "cargo::warning=DTRACE_INCLUDE_DIR={} has no dtrace.h",
            include.display()
        );
    }
    from_pkg_config().or_else(from_known_places)
}

/// pkg-config `dtrace` (Oracle Linux ships dtrace.pc).
fn from_pkg_config() -> Option<Libdtrace> {
    let output = Command::new("pkg-config")
        .args(["--cflags-only-I", "--libs-only-L", "dtrace"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let flags = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut include = None;
    let mut lib = None;
    for flag in flags.split_whitespace() {
        if let Some(dir) = flag.strip_prefix("-I") {
            include.get_or_insert_with(|| PathBuf::from(dir));
        } else if let Some(dir) = flag.strip_prefix("-L") {
            lib.get_or_insert_with(|| PathBuf::from(dir));
        }
    }
    let include = include.unwrap_or_else(|| PathBuf::from("/usr/include"));
    include.join("dtrace.h").is_file().then_some(Libdtrace {
        include,
        extra_includes: Vec::new(),
        lib,
    })
}

/// The places each platform installs dtrace.h.
fn from_known_places() -> Option<Libdtrace> {
    match env::var("CARGO_CFG_TARGET_OS").as_deref() {
        // illumos, Solaris and Oracle Linux install it with the system headers.
        Ok("illumos" | "solaris" | "linux") => at("/usr/include", &[]),
        // FreeBSD does not install libdtrace's headers; they are in the source tree.
        Ok("freebsd") => {
            let src = "/usr/src/cddl/contrib/opensolaris/lib/libdtrace/common";
            at(
                src,
                &[
                    "/usr/src/sys/cddl/compat/opensolaris",
                    "/usr/src/sys/cddl/contrib/opensolaris/uts/common",
                    "/usr/src/cddl/compat/opensolaris/include",
                    "/usr/src/cddl/contrib/opensolaris/head",
                    "/usr/src/cddl/contrib/opensolaris/lib/libctf/common",
                ],
            )
        }
        Ok("macos") => {
            let sdk = Command::new("xcrun")
                .args(["--show-sdk-path"])
                .output()
                .ok()?;
            let sdk = String::from_utf8_lossy(&sdk.stdout).trim().to_owned();
            at(&format!("{sdk}/usr/include"), &[])
        }
        _ => None,
    }
}

fn at(include: &str, extra: &[&str]) -> Option<Libdtrace> {
    let include = PathBuf::from(include);
    include.join("dtrace.h").is_file().then(|| Libdtrace {
        include,
        extra_includes: extra.iter().map(PathBuf::from).collect(),
        lib: None,
    })
}

fn generate_bindings(found: &Libdtrace, header: &Path) {
    let mut builder = bindgen::Builder::default()
        .header(header.display().to_string())
        .clang_arg(format!("-I{}", found.include.display()))
        .allowlist_function("dtrace_.*")
        .allowlist_type("dtrace_.*")
        .allowlist_var("DTRACE.*")
        .allowlist_var("_dtrace_version")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for dir in &found.extra_includes {
        builder = builder.clang_arg(format!("-I{}", dir.display()));
    }
    let bindings = match builder.generate() {
        Ok(bindings) => bindings,
        Err(e) => panic!(
            "bindgen could not read {} ({e}); it needs libclang at build time \
             (Debian: apt-get install libclang-dev)",
            header.display()
        ),
    };
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    if let Err(e) = bindings.write_to_file(out.join("libdtrace.rs")) {
        panic!("writing the libdtrace bindings into OUT_DIR: {e}");
    }
}
