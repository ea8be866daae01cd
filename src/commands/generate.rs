//! `dtk generate`: the man pages and shell completions, generated from the command line
//! definition, so that they can never disagree with `--help`.
//!
//! clap_mangen renders the name, synopsis, description, options and subcommands. The text
//! after a command's help is split here into the sections a man page has (man-pages(7)):
//! its `Exit status:`, `Environment:` and `Examples:` blocks become EXIT STATUS,
//! ENVIRONMENT and EXAMPLES, other blocks go under NOTES; every page gets dtk's ENVIRONMENT
//! and a SEE ALSO.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};
use clap::{Command, CommandFactory};
use clap_complete::Shell;

use crate::cli::{Cli, GenerateKind};

pub fn run(kind: GenerateKind, dir: Option<&Path>) -> Result<()> {
    match (kind, dir) {
        (GenerateKind::Man, Some(dir)) => write_man_pages(dir),
        (GenerateKind::Man, None) => {
            let mut cmd = Cli::command();
            cmd.build();
            let mut page = Vec::new();
            render_man(&cmd, &environment_of(&cmd), &mut page)?;
            let mut out = io::stdout().lock();
            out.write_all(&page)?;
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
    let environment = environment_of(&cmd);
    let mut pending = vec![cmd];
    while let Some(cmd) = pending.pop() {
        pending.extend(cmd.get_subcommands().filter(|c| !c.is_hide_set()).cloned());
        let path = dir.join(format!("{}.1", page_name(&cmd)));
        let mut page = Vec::new();
        render_man(&cmd, &environment, &mut page)?;
        fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `dtk`, `dtk-opens`, `dtk-show-opens`: the page's name, as clap_mangen names the file.
fn page_name(cmd: &Command) -> String {
    cmd.get_display_name().unwrap_or(cmd.get_name()).to_string()
}

/// The main command's Environment block, which every page shows.
fn environment_of(main: &Command) -> String {
    Block::parse_all(&after_help(main))
        .into_iter()
        .find(|b| b.heading == Some("Environment"))
        .map(|b| b.body)
        .unwrap_or_default()
}

fn after_help(cmd: &Command) -> String {
    cmd.get_after_help()
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// One paragraph of the text after a command's help: `Heading:` on its own line, then the
/// body, or a body alone.
struct Block<'a> {
    heading: Option<&'a str>,
    body: String,
}

impl Block<'_> {
    fn parse_all(text: &str) -> Vec<Block<'_>> {
        text.split("\n\n")
            .filter(|p| !p.trim().is_empty())
            .map(|p| match p.split_once('\n') {
                Some((first, body))
                    if first.ends_with(':') && !first.starts_with(char::is_whitespace) =>
                {
                    Block {
                        heading: Some(first.trim_end_matches(':')),
                        body: body.to_string(),
                    }
                }
                _ => Block {
                    heading: None,
                    body: p.to_string(),
                },
            })
            .collect()
    }
}

/// A man page: clap_mangen's sections, then those made from the text after the help, in
/// man-pages(7)'s order.
fn render_man(cmd: &Command, environment: &str, out: &mut dyn Write) -> io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(out)?;
    }
    if cmd.get_subcommands().any(|c| !c.is_hide_set()) {
        man.render_subcommands_section(out)?;
    }
    let text = after_help(cmd);
    let blocks = Block::parse_all(&text);
    let section = |heading: &str| blocks.iter().find(|b| b.heading == Some(heading));
    if let Some(b) = section("Exit status") {
        write_section(out, "EXIT STATUS", &b.body)?;
    }
    write_section(out, "ENVIRONMENT", environment)?;
    let mut notes = blocks
        .iter()
        .filter(|b| !matches!(b.heading, Some("Exit status" | "Environment" | "Examples")))
        .peekable();
    if notes.peek().is_some() {
        writeln!(out, ".SH NOTES")?;
        for note in notes {
            if let Some(heading) = note.heading {
                writeln!(out, ".SS {}", roff_text(heading))?;
            }
            write_preformatted(out, &note.body)?;
        }
    }
    if let Some(b) = section("Examples") {
        write_section(out, "EXAMPLES", &b.body)?;
    }
    if cmd.get_version().is_some() {
        man.render_version_section(out)?;
    }
    writeln!(out, ".SH \"SEE ALSO\"")?;
    let refs: Vec<String> = see_also(cmd)
        .iter()
        .map(|(name, section)| format!("\\fB{}\\fR({section})", roff_text(name)))
        .collect();
    writeln!(out, "{}", refs.join(",\n"))
}

fn write_section(out: &mut dyn Write, title: &str, body: &str) -> io::Result<()> {
    writeln!(out, ".SH \"{title}\"")?;
    write_preformatted(out, body)
}

/// Text laid out for the terminal (aligned columns), kept as it is, less the indent its
/// lines share.
fn write_preformatted(out: &mut dyn Write, body: &str) -> io::Result<()> {
    let indent = body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    writeln!(out, ".PP\n.nf")?;
    for line in body.lines() {
        writeln!(out, "{}", roff_text(line.get(indent..).unwrap_or("")))?;
    }
    writeln!(out, ".fi")
}

/// Text as roff prints it: backslashes and minus signs escaped, and a leading control
/// character made literal.
fn roff_text(line: &str) -> String {
    let text = line.replace('\\', "\\e").replace('-', "\\-");
    if text.starts_with(['.', '\'']) {
        format!("\\&{text}")
    } else {
        text
    }
}

/// The pages a page refers to: dtk's own, around it, and the tools it stands beside.
fn see_also(cmd: &Command) -> Vec<(String, u8)> {
    let name = page_name(cmd);
    if name == "dtk" {
        let mut refs: Vec<(String, u8)> = cmd
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
            .map(|c| (page_name(c), 1))
            .collect();
        refs.extend([("dtrace".into(), 1), ("bpftrace".into(), 8)]);
        return refs;
    }
    let mut refs = vec![("dtk".to_string(), 1)];
    let tool = match name.strip_prefix("dtk-show-") {
        Some(tool) => {
            refs.push((format!("dtk-{tool}"), 1));
            tool.to_string()
        }
        None => name.trim_start_matches("dtk-").to_string(),
    };
    if ["pyflow", "opens", "syscalls"].contains(&tool.as_str()) && !name.starts_with("dtk-show-") {
        refs.push((format!("dtk-show-{tool}"), 1));
    }
    match tool.as_str() {
        "pyflow" => refs.push(("python3".into(), 1)),
        "opens" => refs.extend([("open".into(), 2), ("strace".into(), 1)]),
        "syscalls" => refs.push(("strace".into(), 1)),
        "run" | "show" => refs.extend([("dtrace".into(), 1), ("bpftrace".into(), 8)]),
        _ => {}
    }
    refs
}
