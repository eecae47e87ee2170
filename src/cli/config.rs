//! `opsbook config show|validate`.

use super::Session;
use crate::config::check_file;
use crate::error::Error;
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (secrets as ***)
    Show,
    /// Check config files without running anything, reporting every error of each file (default: the files in use)
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
    let failed = files
        .iter()
        .filter(|file| !report_file(file, session))
        .count();
    if files.is_empty() {
        session
            .printer
            .human("ok: no config files in use (built-in defaults)\n");
    }
    if failed > 0 {
        let summary = match files.len() {
            1 => "the file is invalid".to_string(),
            n => format!("{failed} of {n} files are invalid"),
        };
        return Err(
            Error::Config(crate::ConfigError::whole_file("config validate", summary)).into(),
        );
    }
    Ok(0)
}

/// Check one file and print what was found; whether it is valid.
fn report_file(file: &Path, session: &Session) -> bool {
    let found = check_file(file);
    // A variable unset here may be set where the file is used: say so, no more.
    for unset in &found.unset {
        session.printer.warn(&format!(
            "{}:{}:{}: `{}` uses ${{{}}}, which is not set here",
            file.display(),
            unset.line,
            unset.column,
            unset.key,
            unset.var
        ));
    }
    if found.errors.is_empty() {
        session.printer.human(&format!("ok: {}\n", file.display()));
        return true;
    }
    for e in &found.errors {
        session.printer.error(&e.to_string());
    }
    if found.errors.len() > 1 {
        session.printer.human(&format!(
            "{}: {} errors\n",
            file.display(),
            found.errors.len()
        ));
    }
    false
}
