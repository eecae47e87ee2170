//! `opsbook runbook list|validate|show`: find, lint and inspect runbooks without running them.

use super::Session;
use super::run::{VarArgs, dirs, load};
use crate::runbook::{self, builtin};
use clap::{Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum RunbookCommand {
    /// The runbooks found in the runbook dirs and built in, with their descriptions
    List,
    /// Check runbooks without running them (default: every one found). Errors come in
    /// passes: a YAML syntax error alone; else every step's schema and value errors; once
    /// those are fixed, every reference error (includes, needs, when, duplicate names)
    Validate {
        /// Files or names
        runbooks: Vec<String>,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Print a JSON Schema of the runbook format (for editors with a YAML language server)
    Schema,
    /// Print the resolved plan: variables, includes spliced in, as YAML
    Show {
        runbook: String,
        #[command(flatten)]
        vars: VarArgs,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    Text,
    Json,
}

pub fn exec(command: &RunbookCommand, session: &Session) -> anyhow::Result<u8> {
    match command {
        RunbookCommand::List => list(session),
        RunbookCommand::Validate { runbooks, vars } => validate(runbooks, vars, session),
        RunbookCommand::Schema => {
            session
                .printer
                .data(&format!("{}\n", crate::runbook::schema::runbook_schema()));
            Ok(0)
        }
        RunbookCommand::Show { runbook, vars } => {
            let book = load(runbook, vars, session)?;
            let yaml = serde_saphyr::to_string(&book)
                .map_err(|e| anyhow::anyhow!("cannot print the plan: {e}"))?;
            session.printer.data(&yaml);
            Ok(0)
        }
    }
}

/// Every runbook name: files in the dirs first (they take precedence), then built-ins.
fn all_names(session: &Session) -> Vec<String> {
    let mut names = runbook::load::list_dir_names(&dirs(session));
    for name in builtin::names() {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

fn list(session: &Session) -> anyhow::Result<u8> {
    let format = session.format(ListFormat::Text)?;
    let dirs = dirs(session);
    let mut rows = Vec::new();
    for name in all_names(session) {
        let (source, description) = match runbook::find(&name, &dirs) {
            Ok(source) => {
                let description = match runbook::load(&source, &Default::default(), &dirs) {
                    Ok(book) => book.description,
                    Err(e) => format!(
                        "INVALID: {}",
                        e.to_string().lines().next().unwrap_or_default()
                    ),
                };
                (source.label.display().to_string(), description)
            }
            Err(e) => (String::new(), e.message),
        };
        rows.push((name, source, description));
    }
    match format {
        ListFormat::Json => {
            let json: Vec<serde_json::Value> = rows
                .iter()
                .map(|(name, source, description)| {
                    serde_json::json!({"name": name, "source": source, "description": description})
                })
                .collect();
            let text = serde_json::to_string_pretty(&json).unwrap_or_default();
            session.printer.data(&format!("{text}\n"));
        }
        ListFormat::Text => {
            let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
            let mut out = String::new();
            for (name, source, description) in &rows {
                out.push_str(&format!("{name:<width$}  {description}  [{source}]\n"));
            }
            session.printer.data(&out);
        }
    }
    Ok(0)
}

fn validate(wanted: &[String], vars: &VarArgs, session: &Session) -> anyhow::Result<u8> {
    let names = if wanted.is_empty() {
        all_names(session)
    } else {
        wanted.to_vec()
    };
    let mut bad = 0;
    for name in &names {
        match load(name, vars, session) {
            Ok(book) => session.printer.human(&format!(
                "ok       {name}: {} ({})\n",
                crate::plural::count(book.all_steps().count(), "step", "steps"),
                book.source
            )),
            Err(e) => {
                bad += 1;
                session.printer.error(&format!("{e:#}"));
            }
        }
    }
    if bad > 0 {
        return Err(crate::Error::Config(crate::ConfigError::whole_file(
            "runbook validate",
            format!(
                "{bad} of {} {} invalid",
                crate::plural::count(names.len(), "runbook", "runbooks"),
                if bad == 1 { "is" } else { "are" }
            ),
        ))
        .into());
    }
    Ok(0)
}
