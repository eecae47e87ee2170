//! `opsbook incident declare|ack|update|list|show|escalate|resolve|report|collect|notice|
//! remind|metrics|actions|action`: the incident process as commands. Each handler builds
//! the library call's input, calls one function of `crate::incident` and prints what comes
//! back.

use super::incident_followup as followup;
use super::{Session, check_context};
use crate::incident::{self, Incidents, Standing, Status, Voice};
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Record a new incident, print the declaration and notify
    Declare(DeclareArgs),
    /// Acknowledge an incident (once; a second time says so and changes nothing)
    Ack {
        id: String,
        /// Who acknowledges (default: the user running it)
        #[arg(long)]
        by: Option<String>,
    },
    /// Add to the timeline: a status change, a note, new values (each old → new); print the
    /// status update and notify
    Update(UpdateArgs),
    /// The incidents, newest last (--open: not resolved): overdue, update due, TTA/TTM/TTR
    List {
        #[arg(long)]
        open: bool,
    },
    /// One incident: elapsed time against its response time, what is overdue or due, the
    /// times to acknowledge/mitigate/resolve, the timeline
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
    /// For cron: list incidents whose update is due or whose action items are overdue, and
    /// notify once per period (exit 1 when any is due; 78 when one is due and no channel
    /// is configured to take it)
    Remind,
    /// The incidents as a Prometheus textfile: counts, update due, action items, TTA/TTM/TTR
    Metrics {
        /// Write it to FILE (atomically, mode 0644) instead of stdout
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// The action items of every incident (--open: not done; --owner: one owner's)
    Actions {
        #[arg(long)]
        open: bool,
        #[arg(long)]
        owner: Option<String>,
    },
    /// Mark action item N (from 1, as `incident actions` numbers them) of incident ID done
    Action {
        id: String,
        n: usize,
        #[arg(long, required = true)]
        done: bool,
    },
}

// (No doc comments on these: the variant's own is the command's help.)
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
    /// The incident type, naming its diagnosis runbook for `collect` and its escalation
    /// contacts (`api-unavailable`)
    #[arg(long = "type")]
    kind: Option<String>,
    /// The affected service named in messages (default: config `incident.service`)
    #[arg(long)]
    service: Option<String>,
    /// When a fix is expected, as it should read (`11:30 UTC`)
    #[arg(long)]
    eta: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    id: String,
    #[arg(long, value_enum)]
    status: Option<Status>,
    #[arg(long)]
    note: Option<String>,
    /// An impact line to add (repeatable)
    #[arg(long)]
    impact: Vec<String>,
    /// A new severity of the configured scheme
    #[arg(long)]
    severity: Option<String>,
    /// The affected components now, replacing the old (repeatable)
    #[arg(long = "component")]
    components: Vec<String>,
    /// The affected service
    #[arg(long)]
    service: Option<String>,
    /// When a fix is expected
    #[arg(long)]
    eta: Option<String>,
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    id: String,
    #[arg(long)]
    root_cause: String,
    /// A lesson learned (repeatable)
    #[arg(long)]
    lesson: Vec<String>,
    /// An action item, tracked by `incident actions` (repeatable)
    #[arg(long = "action", value_name = "TEXT[@OWNER][ by YYYY-MM-DD]")]
    actions: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum ListFormat {
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
    .at(check_context()?.clock.now())
    .notifying(&config.notify);
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
    dispatch(command, session, &book, &voice)
}

fn dispatch(
    command: &IncidentCommand,
    session: &Session,
    book: &Incidents<'_>,
    voice: &Voice<'_>,
) -> anyhow::Result<u8> {
    match command {
        IncidentCommand::Declare(args) => declare(args, book, voice),
        IncidentCommand::Ack { id, by } => ack(session, book, id, by.as_deref()),
        IncidentCommand::Update(args) => update(args, book, voice),
        IncidentCommand::List { open } => list(session, book, *open),
        IncidentCommand::Show { id } => show(session, book, id),
        IncidentCommand::Escalate { id } => {
            incident::escalate(book, id, voice)?;
            Ok(0)
        }
        IncidentCommand::Resolve(args) => resolve(args, book, voice),
        IncidentCommand::Report { id, output } => report(session, book, id, output.as_deref()),
        IncidentCommand::Collect { id } => collect(session, book, id, voice),
        IncidentCommand::Notice { id } => {
            session.printer.data(&incident::notice(book, id)?);
            Ok(0)
        }
        IncidentCommand::Remind => followup::remind(session, book, voice),
        IncidentCommand::Metrics { output } => followup::metrics(session, book, output.as_deref()),
        IncidentCommand::Actions { open, owner } => followup::actions(session, book, *open, owner),
        IncidentCommand::Action { id, n, .. } => {
            let (item, already) = incident::complete_action(book, id, *n)?;
            let text = if already {
                format!(
                    "{id}: action item {n} was already done (at {}); nothing changed\n",
                    item.done.as_deref().unwrap_or("?")
                )
            } else {
                format!("{id}: action item {n} done: {}\n", item.action)
            };
            session.printer.data(&text);
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
        service: args.service.clone(),
        eta: args.eta.clone(),
    };
    incident::declare(book, new, voice)?;
    Ok(0)
}

fn ack(session: &Session, book: &Incidents<'_>, id: &str, by: Option<&str>) -> anyhow::Result<u8> {
    let text = match incident::acknowledge(book, id, by)? {
        incident::Acknowledged::Now(record) => format!(
            "{id}: acknowledged by {} (TTA {})\n",
            record.acknowledged_by.as_deref().unwrap_or("?"),
            incident::human(
                incident::span(&record.declared, record.acknowledged.as_deref()).unwrap_or(0)
            )
        ),
        incident::Acknowledged::Already(record) => format!(
            "{id}: already acknowledged at {} by {}; nothing changed\n",
            record.acknowledged.as_deref().unwrap_or("?"),
            record
                .acknowledged_by
                .as_deref()
                .unwrap_or("its first update")
        ),
    };
    session.printer.data(&text);
    Ok(0)
}

fn update(args: &UpdateArgs, book: &Incidents<'_>, voice: &Voice<'_>) -> anyhow::Result<u8> {
    let change = incident::Change {
        status: args.status,
        note: args.note.clone(),
        impact: args.impact.clone(),
        severity: args.severity.clone(),
        components: args.components.clone(),
        service: args.service.clone(),
        eta: args.eta.clone(),
    };
    incident::update(book, &args.id, &change, voice)?;
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

/// `INC-20260110-1  SEV-1  identified       1h 1m  API unavailable  OVERDUE  UPDATE DUE  (TTA 5m)`
fn list_line(row: &Standing) -> String {
    let times = row.times();
    format!(
        "{}  {:<6} {:<13} {:>8}  {}{}{}{}\n",
        row.id,
        row.severity,
        row.status.as_str(),
        row.elapsed,
        row.title,
        if row.overdue.is_empty() {
            ""
        } else {
            "  OVERDUE"
        },
        if row.update_due.is_some() {
            "  UPDATE DUE"
        } else {
            ""
        },
        if times.is_empty() {
            String::new()
        } else {
            format!("  ({times})")
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
    let respond = if row.response.is_empty() {
        String::new()
    } else {
        format!(" (respond within {})", row.response)
    };
    let mut out = format!(
        "{} {} [{}] {}\nStatus: {}   Elapsed: {}{respond}\n",
        record.id,
        record.severity,
        record.status.as_str(),
        record.title,
        record.status.as_str(),
        row.elapsed,
    );
    if let Some(by) = &record.acknowledged_by {
        out.push_str(&format!("Acknowledged by: {by}\n"));
    }
    if !row.times().is_empty() {
        out.push_str(&format!("Times: {}\n", row.times()));
    }
    for overdue in &row.overdue {
        out.push_str(&format!("OVERDUE: {overdue}\n"));
    }
    if let Some(due) = &row.update_due {
        out.push_str(&format!("UPDATE DUE: {due}\n"));
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
    let what = format!("{id}: report");
    followup::deliver(session, &text, output, crate::fsutil::PRIVATE_FILE, &what)
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
    let vars = super::run::session_vars(session);
    let diagnose = |name: &str| {
        let report = runtime.block_on(crate::runbook::diagnose(name, &vars, &dirs, &check));
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

/// Whether `command` sends messages (its `notify:` settings must then be whole).
pub fn notifies(command: &IncidentCommand) -> bool {
    matches!(
        command,
        IncidentCommand::Declare(_)
            | IncidentCommand::Update(_)
            | IncidentCommand::Escalate { .. }
            | IncidentCommand::Resolve(_)
            | IncidentCommand::Remind
    )
}
