//! The dtk binary: runs the command, prints errors as `dtk: error: …` with their chain, and
//! exits 0 when the reader of its output went away. `dtk --help` lists the exit statuses.

use std::process::ExitCode;

fn main() -> ExitCode {
    match dtk::run(std::env::args_os().collect()) {
        Ok(status) => ExitCode::from(status),
        Err(err) if dtk::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            match err.downcast_ref::<clap::Error>() {
                // clap's own rendering carries the usage line and suggestions.
                // It starts with "error: ".
                Some(clap_err) => eprint!("dtk: {}", clap_err.render()),
                None => eprintln!("dtk: error: {err:#}"),
            }
            ExitCode::from(2)
        }
    }
}
