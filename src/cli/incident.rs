//! `opsbook incident declare|update|list|show|escalate|resolve|report|collect|notice`: the
//! incident process as commands. Each handler builds the library call's input, calls one
//! function of `crate::incident` and prints what comes back.

use super::{Session, check_context};
use crate::incident::{self, Incidents, Standing, Status, Voice};
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Record a new incident, print the declaration and notify
    Declare(DeclareArgs),
    /// Add to the timeline: a status change, a note, impact; print the status update and notify
    Update {
        id: String,
        #[arg(long, value_enum)]
        status: Option<Status>,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        impact: Vec<String>,
    },
    /// The incidents, newest last (--open: not resolved)
    List {
        #[arg(long)]
        open: bool,
    },
    /// One incident: elapsed time against its response time, what is overdue, the timeline
    Show { id: String },
    /// Who is due now per the escalation matrix: printed, notified, recorded
    Escalate { id: String },
    /// Close an incident with its root cause (once)
    Resolve(ResolveArgs),
    /// The post-incident report in Markdown (an open incident's is marked DRAFT)
    Report {
        id: String,
        /// Write it to FILE instead of stdout
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Gather evidence into one archive in the incident's folder
    Collect { id: String },
    /// Print the customer notification for a person to send, recorded on the timeline
    Notice { id: String },
}

// (No doc comments on these two: the variant's own is the command's help.)
#[derive(Debug, Args)]
pub struct DeclareArgs {
    /// A severity of the configured scheme (default SEV-1 … SEV-4)
    #[arg(long)]
    severity: String,
    #[arg(long)]
    title: String,
    /// Who or what is affected (repeatable)
    #[arg(long)]
    impact: Vec<String>,
    /// An affected component (repeatable)
    #[arg(long = "component")]
    components: Vec<String>,
    /// The incident commander
    #[arg(long)]
    commander: Option<String>,
    /// The incident type, naming its diagnosis runbook for `collect` (`api-unavailable`)
    #[arg(long = "type")]
    kind: Option<String>,
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    id: String,
    #[arg(long)]
    root_cause: String,
    /// A lesson learned (repeatable)
    #[arg(long)]
    lesson: Vec<String>,
    /// An action item, `ACTION|OWNER|DUE` (repeatable)
    #[arg(long = "action", value_name = "ACTION|OWNER|DUE")]
    actions: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    Text,
    Json,
}

pub fn exec(command: &IncidentCommand, session: &Session) -> anyhow::Result<u8> {
    let config = &session.loaded.config;
    let book = Incidents::open(
        &config.incident,
        &config.state_dir(),
        super::config_file(session),
    )?
    .at(check_context()?.clock.now());
    let message = |text: &str| {
        session.printer.human(text);
        if !text.ends_with('\n') {
            session.printer.human("\n");
        }
    };
    let warn = |text: &str| session.printer.warn(text);
    let voice = Voice {
        message: &message,
        warn: &warn,
    };
    match command {
        IncidentCommand::Declare(args) => declare(args, &book, &voice),
        IncidentCommand::Update {
            id,
            status,
            note,
            impact,
        } => {
            let change = incident::Change {
                status: *status,
                note: note.clone(),
                impact: impact.clone(),
            };
            incident::update(&book, id, &change, &voice)?;
            Ok(0)
        }
        IncidentCommand::List { open } => list(session, &book, *open),
        IncidentCommand::Show { id } => show(session, &book, id),
        IncidentCommand::Escalate { id } => {
            incident::escalate(&book, id, &voice)?;
            Ok(0)
        }
        IncidentCommand::Resolve(args) => resolve(args, &book, &voice),
        IncidentCommand::Report { id, output } => report(session, &book, id, output.as_deref()),
        IncidentCommand::Collect { id } => collect(session, &book, id, &voice),
        IncidentCommand::Notice { id } => {
            session.printer.data(&incident::notice(&book, id)?);
            Ok(0)
        }
    }
}

fn declare(args: &DeclareArgs, book: &Incidents<'_>, voice: &Voice<'_>) -> anyhow::Result<u8> {
    let new = incident::Declaration {
        severity: args.severity.clone(),
        title: args.title.clone(),
        impact: args.impact.clone(),
        components: args.components.clone(),
        commander: args.commander.clone(),
        kind: args.kind.clone(),
    };
    incident::declare(book, new, voice)?;
    Ok(0)
}

fn resolve(args: &ResolveArgs, book: &Incidents<'_>, voice: &Voice<'_>) -> anyhow::Result<u8> {
    let resolution = incident::Resolution {
        root_cause: args.root_cause.clone(),
        lessons: args.lesson.clone(),
        actions: args
            .actions
            .iter()
            .map(|a| incident::ActionItem::parse(a))
            .collect::<Result<_, _>>()?,
    };
    incident::resolve(book, &args.id, resolution, voice)?;
    Ok(0)
}

fn list(session: &Session, book: &Incidents<'_>, open: bool) -> anyhow::Result<u8> {
    let format = session.format(ListFormat::Text)?;
    let rows = incident::list(book, open);
    match format {
        ListFormat::Json => {
            let text = serde_json::to_string_pretty(&rows).unwrap_or_default();
            session.printer.data(&format!("{text}\n"));
        }
        ListFormat::Text => {
            let out: String = rows.iter().map(list_line).collect();
            session.printer.data(&out);
        }
    }
    Ok(0)
}

/// `INC-20260110-1  SEV-1  identified       1h 1m  API unavailable  OVERDUE`
fn list_line(row: &Standing) -> String {
    format!(
        "{}  {:<6} {:<13} {:>8}  {}{}\n",
        row.id,
        row.severity,
        row.status.as_str(),
        row.elapsed,
        row.title,
        if row.overdue.is_empty() {
            ""
        } else {
            "  OVERDUE"
        }
    )
}

fn show(session: &Session, book: &Incidents<'_>, id: &str) -> anyhow::Result<u8> {
    let format = session.format(ListFormat::Text)?;
    let shown = incident::show(book, id)?;
    if format == ListFormat::Json {
        let text = serde_json::to_string_pretty(&shown).unwrap_or_default();
        session.printer.data(&format!("{text}\n"));
        return Ok(0);
    }
    let (record, row) = (&shown.record, &shown.standing);
    let mut out = format!(
        "{} {} [{}] {}\nStatus: {}   Elapsed: {} (respond within {})\n",
        record.id,
        record.severity,
        record.status.as_str(),
        record.title,
        record.status.as_str(),
        row.elapsed,
        row.response,
    );
    for overdue in &row.overdue {
        out.push_str(&format!("OVERDUE: {overdue}\n"));
    }
    out.push_str("Timeline:\n");
    for e in &shown.timeline {
        out.push_str(&format!(
            "  {} {} ({}): {}\n",
            e.time, e.kind, e.author, e.text
        ));
    }
    session.printer.data(&out);
    Ok(0)
}

fn report(
    session: &Session,
    book: &Incidents<'_>,
    id: &str,
    output: Option<&std::path::Path>,
) -> anyhow::Result<u8> {
    let text = incident::report(book, id)?;
    match output {
        Some(path) => {
            crate::fsutil::write_atomically(path, crate::redact::mask(&text).as_bytes())
                .map_err(anyhow::Error::msg)?;
            session
                .printer
                .human(&format!("{id}: report written to {}\n", path.display()));
        }
        None => session.printer.data(&text),
    }
    Ok(0)
}

/// `incident collect`: the evidence bundle, with the health report and the diagnosis
/// runbook's report (`runbook::diagnose`) rendered here and handed to the library.
fn collect(
    session: &Session,
    book: &Incidents<'_>,
    id: &str,
    voice: &Voice<'_>,
) -> anyhow::Result<u8> {
    use crate::report::{Format, Style, render};
    let config = &session.loaded.config;
    let check = super::step_context(session)?;
    let runtime = super::runtime()?;
    let health = || {
        let report = runtime.block_on(crate::health::check(&config.health, &check));
        render(&report, Format::Json, Style::default()).into_bytes()
    };
    let dirs = super::run::dirs(session);
    let diagnose = |name: &str| {
        let report = runtime.block_on(crate::runbook::diagnose(name, &dirs, &check));
        let report = report.map_err(|e| incident::Error::Diagnosis(e.to_string()))?;
        Ok(render(&report, Format::Json, Style::default()).into_bytes())
    };
    let log_dir = PathBuf::from(config.logging.dir.as_str());
    let sources = incident::Sources {
        log_sets: &config.logs.sets,
        log_dir: &log_dir,
        health: &health,
        diagnose: &diagnose,
    };
    let collected = incident::collect(book, id, &sources, voice)?;
    session.printer.human(&format!(
        "{id}: evidence in {} ({} and a manifest)\n",
        collected.path.display(),
        crate::plural::count(collected.files, "file", "files")
    ));
    Ok(0)
}
