//! dtk: a DTrace toolkit. The path of one run (DESIGN.md): argv → cli (clap) → Config,
//! resolved once → command → bundled Script with safe parameters → Backend (libdtrace or
//! the Linux engine) → Event stream → the command's presenter.
//!
//! The library's surface is [`run`] and [`is_broken_pipe`], for main. Every module is private
//! to the crate, so the compiler finds dead code; tests, benches and the fuzz target reach the
//! engine through the hidden `internals` facade.

pub(crate) mod aggregation_text;
pub(crate) mod backend;
pub(crate) mod cli;
pub(crate) mod commands;
pub(crate) mod config;
pub(crate) mod cpp;
pub(crate) mod event;
pub(crate) mod inspect;
#[doc(hidden)]
pub mod internals;
pub(crate) mod local_time;
pub(crate) mod output;
pub(crate) mod python;
pub(crate) mod script;
pub(crate) mod target;

use std::ffi::OsString;

pub use output::is_broken_pipe;

use clap::Parser;

/// Parses `args`, resolves the configuration and runs the command; returns dtk's exit
/// status. Help and version requests print and return 0; a command-line error is returned as
/// a [`clap::Error`] inside the anyhow error, for main to print.
pub fn run(args: Vec<OsString>) -> anyhow::Result<u8> {
    let cli = match cli::Cli::try_parse_from(cli::multicall_args(args)) {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help and --version: print to stdout.
            err.print()?;
            return Ok(0);
        }
        Err(err) => return Err(err.into()),
    };
    let config = config::Config::resolve(cli, &config::Environment::current())?;
    if !config.quiet {
        for notice in &config.notices {
            eprintln!("dtk: {notice}");
        }
    }
    commands::dispatch(config)
}
