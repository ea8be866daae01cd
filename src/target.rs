//! The process a run is about, as the user named it (`-p PID`, `-c CMD`, or none).
//!
//! Scripts read it to fill in their `$target` filter and back ends act on it (grab the
//! process, or start the command), so it lives in this leaf module that both can import
//! without importing each other.

/// The process a run is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    None,
    /// `-p PID`: grab a running process; tracing ends when it exits.
    Pid(u32),
    /// `-c CMD`: start the command (argv), trace it from its first instruction, end when it
    /// exits.
    Command(Vec<String>),
}
