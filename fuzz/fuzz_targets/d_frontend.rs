//! Fuzz target for the D front end: any bytes, as a script, must give a program or
//! diagnostics, never a panic; and every diagnostic must render against the source.
//!
//! Run from fuzz/: `cargo +nightly fuzz run d_frontend -- -dict=d.dict -max_len=4096`
//! (or `RUSTC_BOOTSTRAP=1 cargo fuzz run ...` on the stable toolchain). Seed the corpus with
//! tests/d/*.d and tests/d/corpus/*.d for a faster start.
#![no_main]

use dtk::internals::d::{compile, MacroArgs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let macros = MacroArgs {
        target: Some(4242),
        args: vec!["1".into(), "open".into(), "a b".into()],
        defaultargs: true,
    };
    match compile("fuzz.d", source, &macros) {
        Ok(compiled) => {
            let _ = dtk::internals::d::dump(&compiled.program, source);
            for w in &compiled.warnings {
                let _ = w.render(source);
            }
        }
        Err(diagnostics) => {
            let _ = diagnostics.to_string();
        }
    }
});
