//! `dtk generate`: the man pages and shell completions, generated from the command line
//! definition, so that they can never disagree with `--help`.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, GenerateKind};

pub fn run(kind: GenerateKind, dir: Option<&Path>) -> Result<()> {
    match (kind, dir) {
        (GenerateKind::Man, Some(dir)) => write_man_pages(dir),
        (GenerateKind::Man, None) => {
            let mut out = io::stdout().lock();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            out.flush()?;
            Ok(())
        }
        (completion, dir) => {
            let shell = match completion {
                GenerateKind::CompleteBash => Shell::Bash,
                GenerateKind::CompleteZsh => Shell::Zsh,
                _ => Shell::Fish,
            };
            match dir {
                Some(dir) => {
                    fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                    clap_complete::generate_to(shell, &mut Cli::command(), "dtk", dir)
                        .with_context(|| format!("writing into {}", dir.display()))?;
                }
                None => {
                    // clap_complete panics on a write error, so generate into memory and
                    // write here, where a closed pipe is an ordinary error.
                    let mut script = Vec::new();
                    clap_complete::generate(shell, &mut Cli::command(), "dtk", &mut script);
                    let mut out = io::stdout().lock();
                    out.write_all(&script)?;
                    out.flush()?;
                }
            }
            Ok(())
        }
    }
}

/// dtk.1, and dtk-NAME.1 for each subcommand (and dtk-show-NAME.1 below show).
fn write_man_pages(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = Cli::command();
    cmd.build();
    clap_mangen::generate_to(cmd, dir).with_context(|| format!("writing into {}", dir.display()))
}
