//! `opsbook runbook list|validate|show`: find, lint and inspect runbooks without running them.

use super::Session;
use super::run::{VarArgs, dirs, load};
use crate::runbook;
use clap::{Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum RunbookCommand {
    /// The runbooks found in the runbook dirs and built in, with their descriptions
    List,
    /// Check runbooks without running them (default: every one found). A file's errors
    /// are reported at once: a YAML syntax error alone; else every step's schema and value
    /// errors together with every reference error (includes, needs, when, duplicate names)
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

fn list(session: &Session) -> anyhow::Result<u8> {
    let format = session.format(ListFormat::Text)?;
    let entries = runbook::catalog::list(&dirs(session));
    match format {
        ListFormat::Json => {
            let text = serde_json::to_string_pretty(&entries).unwrap_or_default();
            session.printer.data(&format!("{text}\n"));
        }
        ListFormat::Text => {
            let width = entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
            let mut out = String::new();
            for e in &entries {
                out.push_str(&format!(
                    "{:<width$}  {}  [{}]\n",
                    e.name, e.description, e.source
                ));
            }
            session.printer.data(&out);
        }
    }
    Ok(0)
}

fn validate(wanted: &[String], vars: &VarArgs, session: &Session) -> anyhow::Result<u8> {
    let names = if wanted.is_empty() {
        runbook::names(&dirs(session))
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
