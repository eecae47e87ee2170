//! `opsbook config show|validate`.

use super::Session;
use crate::config::{Config, parse_yaml};
use crate::error::Error;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (secrets as ***)
    Show,
    /// Check config files without running anything (default: the files in use)
    Validate {
        /// Files to check
        files: Vec<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ShowFormat {
    Yaml,
    Json,
}

pub fn exec(command: &ConfigCommand, session: &Session) -> anyhow::Result<u8> {
    match command {
        ConfigCommand::Show => show(session),
        ConfigCommand::Validate { files } => validate(files, session),
    }
}

fn show(session: &Session) -> anyhow::Result<u8> {
    let config = &session.loaded.config;
    let text = match session.format(ShowFormat::Yaml)? {
        ShowFormat::Json => {
            let mut text = serde_json::to_string_pretty(config)?;
            text.push('\n');
            text
        }
        ShowFormat::Yaml => {
            let sources: Vec<String> = session
                .loaded
                .sources
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            let origin = if sources.is_empty() {
                "built-in defaults".to_string()
            } else {
                format!("built-in defaults < {}", sources.join(" < "))
            };
            format!(
                "# environment: {}\n# from: {origin}\n{}",
                session.loaded.env,
                serde_saphyr::to_string(config)?
            )
        }
    };
    session.printer.data(&text);
    Ok(0)
}

fn validate(files: &[PathBuf], session: &Session) -> anyhow::Result<u8> {
    // With no files named, the files in use were already validated while loading.
    let files = if files.is_empty() {
        session.loaded.sources.clone()
    } else {
        files.to_vec()
    };
    let mut failed = 0;
    for file in &files {
        let result = std::fs::read_to_string(file)
            .map_err(|e| crate::ConfigError::whole_file(file, format!("cannot read: {e}")))
            .and_then(|text| parse_yaml::<Config>(file, &text));
        match result {
            Ok(_) => session.printer.human(&format!("ok: {}\n", file.display())),
            Err(e) => {
                failed += 1;
                session.printer.error(&e.to_string());
            }
        }
    }
    if files.is_empty() {
        session
            .printer
            .human("ok: no config files in use (built-in defaults)\n");
    }
    if failed > 0 {
        let summary = format!(
            "{failed} of {} {} invalid",
            crate::printer::count(files.len(), "file", "files"),
            if failed == 1 { "is" } else { "are" }
        );
        return Err(
            Error::Config(crate::ConfigError::whole_file("config validate", summary)).into(),
        );
    }
    Ok(0)
}
