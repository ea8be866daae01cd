//! The raw libdtrace API, as bindgen generated it from the system's dtrace.h in build.rs.
//! Only the wrapper in `handle.rs` and the decoders use it; nothing outside this back end does.

#![allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    unsafe_op_in_unsafe_fn,
    clippy::all
)]

include!(concat!(env!("OUT_DIR"), "/libdtrace.rs"));
