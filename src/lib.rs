//! dtk: a DTrace toolkit. The path of one run (DESIGN.md): argv → cli (clap) → Config,
//! resolved once → command → bundled Script with safe parameters → Backend (libdtrace or
//! the Linux engine) → Event stream → the command's presenter.

pub mod aggregation_text;
pub mod backend;
pub mod cli;
pub mod commands;
pub mod config;
pub mod event;
pub mod inspect;
#[doc(hidden)]
pub mod internals;
pub mod local_time;
pub mod output;
pub mod python;
pub mod script;
pub mod target;

use std::ffi::OsString;

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
