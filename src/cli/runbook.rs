//! `opsbook runbook list|validate|show`: find, lint and inspect runbooks without running them.

use super::Session;
use super::run::{VarArgs, dirs, load};
use crate::runbook;
use clap::{Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum RunbookCommand {
    /// The runbooks found in the runbook dirs and built in, grouped by kind (maintenance,
    /// deploy, diagnosis, verification, then other), with their descriptions
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
    /// Print the resolved plan: variables (secrets as ***), every step with its kind, role
    /// and the command line it would run, includes spliced in, undo and on_failure steps
    /// (--format yaml or json: the same as data)
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ShowFormat {
    Text,
    Yaml,
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
        RunbookCommand::Show { runbook, vars } => show(runbook, vars, session),
    }
}

fn show(wanted: &str, vars: &VarArgs, session: &Session) -> anyhow::Result<u8> {
    let format = session.format(ShowFormat::Text)?;
    let book = load(wanted, vars, session)?;
    let cannot = |e: &dyn std::fmt::Display| anyhow::anyhow!("cannot print the plan: {e}");
    let text = match format {
        ShowFormat::Text => runbook::show(&book),
        data => {
            // Secrets are masked inside each string before the YAML is written, so the
            // emitter quotes `***` (masking the written text would leave a bare `***`,
            // which YAML reads as an alias).
            let mut value = runbook::data(&book).map_err(|e| cannot(&e))?;
            mask_strings(&mut value);
            if data == ShowFormat::Yaml {
                serde_saphyr::to_string(&value).map_err(|e| cannot(&e))?
            } else {
                let json = serde_json::to_string_pretty(&value).map_err(|e| cannot(&e))?;
                format!("{json}\n")
            }
        }
    };
    session.printer.data(&text);
    Ok(0)
}

/// Every string in `value` with the registered secrets masked.
fn mask_strings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) => crate::redact::mask_in_place(text),
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_strings),
        serde_json::Value::Object(map) => map.values_mut().for_each(mask_strings),
        _ => {}
    }
}

fn list(session: &Session) -> anyhow::Result<u8> {
    let format = session.format(ListFormat::Text)?;
    let entries = runbook::catalog::list(&dirs(session), &super::run::session_vars(session));
    match format {
        ListFormat::Json => {
            let text = serde_json::to_string_pretty(&entries).unwrap_or_default();
            session.printer.data(&format!("{text}\n"));
        }
        ListFormat::Text => session.printer.data(&list_text(&entries)),
    }
    Ok(0)
}

/// The text of `runbook list`: a heading per kind that has runbooks, in the catalog's
/// order, then one line per runbook: name, description, where it comes from.
fn list_text(entries: &[runbook::catalog::Entry]) -> String {
    let width = entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    let mut group: Option<&str> = None;
    for e in entries {
        if group != Some(e.kind.as_str()) {
            if group.is_some() {
                out.push('\n');
            }
            out.push_str(&format!("{}:\n", e.kind));
            group = Some(e.kind.as_str());
        }
        out.push_str(&format!(
            "  {:<width$}  {}  [{}]\n",
            e.name, e.description, e.source
        ));
    }
    out
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
