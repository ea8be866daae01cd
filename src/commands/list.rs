//! `dtk list`: the bundled scripts, one line each.

use anyhow::Result;
use serde_json::json;

use crate::config::{Config, Format};
use crate::output;
use crate::script::BUNDLED;

pub fn run(config: &Config) -> Result<()> {
    let mut out = output::stdout(config.output.line_flush);
    match config.output.format {
        Format::Json => {
            for s in BUNDLED {
                out.json(&json!({"type": "script", "name": s.name, "description": s.summary}))?;
            }
        }
        Format::Text => {
            let width = BUNDLED.iter().map(|s| s.name.len()).max().unwrap_or(0);
            if config.output.header {
                out.line(&format!("{:<width$}  DESCRIPTION", "NAME"))?;
            }
            for s in BUNDLED {
                out.line(&format!("{:<width$}  {}", s.name, s.summary))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
