//! `opsbook incident declare|update|list|show|escalate|resolve|report|collect`: the seeds'
//! incident process as commands. The record is written before anything is sent, so a dead
//! webhook never loses an incident.

use super::{Session, check_context, config_error};
use crate::incident::{self, Entry, Incident, Status, Store, templates};
use clap::{Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Record a new incident, print the declaration and notify
    Declare {
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
    },
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
    Resolve {
        id: String,
        #[arg(long)]
        root_cause: String,
        /// A lesson learned (repeatable)
        #[arg(long)]
        lesson: Vec<String>,
        /// An action item, `ACTION|OWNER|DUE` (repeatable)
        #[arg(long = "action", value_name = "ACTION|OWNER|DUE")]
        actions: Vec<String>,
    },
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    Text,
    Json,
}

struct Ctx<'a> {
    session: &'a Session,
    config: &'a incident::IncidentConfig,
    store: Store,
    now: jiff::Timestamp,
}

impl Ctx<'_> {
    fn entry(&self, kind: &str, text: impl Into<String>) -> Entry {
        Entry {
            time: self.now.to_string(),
            author: incident::author(),
            kind: kind.to_string(),
            text: text.into(),
        }
    }

    /// The record of `id`: an unknown id is a usage error (64), an unreadable or refused
    /// record a failure (1).
    fn load(&self, id: &str) -> anyhow::Result<Incident> {
        self.store.known(id).map_err(crate::Error::Usage)?;
        self.store.load(id).map_err(anyhow::Error::msg)
    }

    /// The incident's lock, with the same distinction as [`Ctx::load`].
    fn lock(&self, id: &str) -> anyhow::Result<crate::lock::Lock> {
        self.store.known(id).map_err(crate::Error::Usage)?;
        self.store.lock(id).map_err(anyhow::Error::msg)
    }

    fn render(&self, name: &str, incident: &Incident) -> anyhow::Result<String> {
        let severity = self
            .config
            .severity(&incident.severity)
            .map_err(anyhow::Error::msg)?;
        let timeline = self.store.timeline(&incident.id);
        let view = templates::View {
            incident,
            severity: &severity,
            timeline: &timeline,
            now: self.now,
        };
        templates::render(&self.config.templates, name, &view)
            .map_err(|e| config_error(self.session, e))
    }

    /// Print `message` and send it; a failed notification is a warning and a timeline entry.
    fn announce(&self, id: &str, message: &str) {
        self.session.printer.human(message);
        if !message.ends_with('\n') {
            self.session.printer.human("\n");
        }
        let Some(webhook) = &self.config.webhook else {
            return;
        };
        if let Err(e) = incident::notify::send(webhook, message) {
            let text = format!("notification failed: {e}");
            let recorded = self
                .store
                .lock(id)
                .and_then(|_held| self.store.append(id, &self.entry("notify-failed", &text)));
            if let Err(more) = recorded {
                self.session.printer.warn(&more);
            }
            self.session
                .printer
                .warn(&format!("{id}: {text}; the record is kept"));
        }
    }
}

pub fn exec(command: &IncidentCommand, session: &Session) -> anyhow::Result<u8> {
    let config = &session.loaded.config.incident;
    templates::check(&config.templates).map_err(|e| config_error(session, e))?;
    let ctx = Ctx {
        session,
        config,
        store: Store::new(config.dir(&session.loaded.config.state_dir())),
        now: check_context()?.clock.now(),
    };
    let usage = |e: String| anyhow::Error::from(crate::Error::Usage(e));
    match command {
        IncidentCommand::Declare {
            severity,
            title,
            impact,
            components,
            commander,
            kind,
        } => {
            let severity = config.severity(severity).map_err(usage)?;
            if title.trim().is_empty() {
                return Err(usage("--title is empty".to_string()));
            }
            let record = Incident {
                id: String::new(),
                title: title.clone(),
                severity: severity.name.clone(),
                status: Status::Investigating,
                kind: kind.clone(),
                impact: impact.clone(),
                components: components.clone(),
                commander: commander.clone(),
                declared: ctx.now.to_string(),
                acknowledged: None,
                mitigated: None,
                resolved: None,
                root_cause: None,
                lessons: Vec::new(),
                action_items: Vec::new(),
            };
            let day = ctx.now.strftime("%Y%m%d").to_string();
            let entry = ctx.entry(
                "declared",
                format!("Incident declared ({}): {title}", severity.name),
            );
            let record = ctx
                .store
                .declare(record, entry, &day)
                .map_err(anyhow::Error::msg)?;
            crate::logging::audit::record(
                "incident.declare",
                "ok",
                Some(&format!(
                    "{} {}: {}",
                    record.id, record.severity, record.title
                )),
            );
            let message = ctx.render("declaration", &record)?;
            ctx.announce(&record.id, &message);
            Ok(0)
        }
        IncidentCommand::Update {
            id,
            status,
            note,
            impact,
        } => {
            if status.is_none() && note.is_none() && impact.is_empty() {
                return Err(usage(
                    "nothing to update: give --status, --note or --impact".to_string(),
                ));
            }
            if *status == Some(Status::Resolved) {
                return Err(usage(format!(
                    "resolve with `opsbook incident resolve {id} --root-cause \"…\"`"
                )));
            }
            let record = {
                let _held = ctx.lock(id)?;
                let mut record = ctx.load(id)?;
                let mut entries = Vec::new();
                let mut what = Vec::new();
                if let Some(status) = status {
                    if record.status == Status::Resolved {
                        ctx.session.printer.error(&format!(
                            "{id} is resolved; its status no longer changes (notes still can)"
                        ));
                        return Ok(1);
                    }
                    record.status = *status;
                    if *status == Status::Monitoring && record.mitigated.is_none() {
                        record.mitigated = Some(ctx.now.to_string());
                    }
                    entries.push(ctx.entry("status", format!("Status: {}", status.as_str())));
                    what.push(format!("status {}", status.as_str()));
                }
                for line in impact {
                    record.impact.push(line.clone());
                    entries.push(ctx.entry("impact", format!("Impact: {line}")));
                    what.push(format!("impact {line:?}"));
                }
                if let Some(note) = note {
                    entries.push(ctx.entry("note", note.clone()));
                    what.push("the note".to_string());
                }
                if record.acknowledged.is_none() {
                    record.acknowledged = Some(ctx.now.to_string());
                }
                if let Err(unrecorded) = ctx.store.update(&record, &entries) {
                    return Ok(not_recorded(&ctx, "incident.update", id, &what, unrecorded));
                }
                record
            };
            crate::logging::audit::record("incident.update", "ok", Some(id));
            let message = ctx.render("update", &record)?;
            ctx.announce(id, &message);
            Ok(0)
        }
        IncidentCommand::List { open } => {
            let format = session.format(ListFormat::Text)?;
            let mut rows = Vec::new();
            for id in ctx.store.ids() {
                let Ok(record) = ctx.store.load(&id) else {
                    continue;
                };
                if *open && record.status == Status::Resolved {
                    continue;
                }
                rows.push(standing(&ctx, &record));
            }
            match format {
                ListFormat::Json => {
                    let text = serde_json::to_string_pretty(&rows).unwrap_or_default();
                    session.printer.data(&format!("{text}\n"));
                }
                ListFormat::Text => {
                    let mut out = String::new();
                    for row in &rows {
                        out.push_str(&format!(
                            "{}  {:<6} {:<13} {:>8}  {}{}\n",
                            row["id"].as_str().unwrap_or(""),
                            row["severity"].as_str().unwrap_or(""),
                            row["status"].as_str().unwrap_or(""),
                            row["elapsed"].as_str().unwrap_or(""),
                            row["title"].as_str().unwrap_or(""),
                            if row["overdue"].as_array().is_some_and(|o| !o.is_empty()) {
                                "  OVERDUE"
                            } else {
                                ""
                            }
                        ));
                    }
                    session.printer.data(&out);
                }
            }
            Ok(0)
        }
        IncidentCommand::Show { id } => {
            let format = session.format(ListFormat::Text)?;
            let record = ctx.load(id)?;
            let row = standing(&ctx, &record);
            let timeline = ctx.store.timeline(id);
            if format == ListFormat::Json {
                let mut row = row;
                row["record"] = serde_json::to_value(&record).unwrap_or_default();
                row["timeline"] = serde_json::to_value(&timeline).unwrap_or_default();
                let text = serde_json::to_string_pretty(&row).unwrap_or_default();
                session.printer.data(&format!("{text}\n"));
                return Ok(0);
            }
            let mut out = format!(
                "{} {} [{}] {}\nStatus: {}   Elapsed: {} (respond within {})\n",
                record.id,
                record.severity,
                record.status.as_str(),
                record.title,
                record.status.as_str(),
                row["elapsed"].as_str().unwrap_or(""),
                row["response"].as_str().unwrap_or(""),
            );
            for overdue in row["overdue"].as_array().into_iter().flatten() {
                out.push_str(&format!("OVERDUE: {}\n", overdue.as_str().unwrap_or("")));
            }
            out.push_str("Timeline:\n");
            for e in &timeline {
                out.push_str(&format!(
                    "  {} {} ({}): {}\n",
                    e.time, e.kind, e.author, e.text
                ));
            }
            session.printer.data(&out);
            Ok(0)
        }
        IncidentCommand::Escalate { id } => {
            let record = ctx.load(id)?;
            let severity = config.severity(&record.severity).map_err(usage)?;
            let elapsed = incident::seconds_between(&record.declared, ctx.now);
            let due: Vec<String> = incident::due(&severity, elapsed)
                .iter()
                .map(|e| e.who.clone())
                .collect();
            if !due.is_empty() {
                let _held = ctx.lock(id)?;
                ctx.store
                    .append(
                        id,
                        &ctx.entry(
                            "escalated",
                            format!(
                                "Escalated to {} (T+{})",
                                due.join(", "),
                                incident::human(elapsed)
                            ),
                        ),
                    )
                    .map_err(anyhow::Error::msg)?;
            }
            crate::logging::audit::record(
                "incident.escalate",
                "ok",
                Some(&format!("{id}: {}", due.join(", "))),
            );
            let message = ctx.render("escalation", &record)?;
            ctx.announce(id, &message);
            Ok(0)
        }
        IncidentCommand::Resolve {
            id,
            root_cause,
            lesson,
            actions,
        } => {
            let items = actions
                .iter()
                .map(|a| {
                    let parts: Vec<&str> = a.split('|').map(str::trim).collect();
                    match parts.as_slice() {
                        [action, owner, due] if !action.is_empty() => Ok(incident::ActionItem {
                            action: action.to_string(),
                            owner: owner.to_string(),
                            due: due.to_string(),
                        }),
                        _ => Err(usage(format!("--action {a:?} is not ACTION|OWNER|DUE"))),
                    }
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let record = {
                let _held = ctx.lock(id)?;
                let mut record = ctx.load(id)?;
                if record.status == Status::Resolved {
                    ctx.session.printer.error(&format!(
                        "{id} is already resolved (at {}); nothing changed",
                        record.resolved.as_deref().unwrap_or("?")
                    ));
                    return Ok(1);
                }
                record.status = Status::Resolved;
                record.resolved = Some(ctx.now.to_string());
                record.mitigated.get_or_insert_with(|| ctx.now.to_string());
                record
                    .acknowledged
                    .get_or_insert_with(|| ctx.now.to_string());
                record.root_cause = Some(root_cause.clone());
                record.lessons.extend(lesson.iter().cloned());
                record.action_items.extend(items);
                let entry = ctx.entry("resolved", format!("Resolved. Root cause: {root_cause}"));
                if let Err(unrecorded) = ctx.store.update(&record, &[entry]) {
                    let what = ["the resolution".to_string()];
                    return Ok(not_recorded(
                        &ctx,
                        "incident.resolve",
                        id,
                        &what,
                        unrecorded,
                    ));
                }
                record
            };
            crate::logging::audit::record("incident.resolve", "ok", Some(id));
            let message = ctx.render("update", &record)?;
            ctx.announce(id, &message);
            Ok(0)
        }
        IncidentCommand::Report { id, output } => {
            let record = ctx.load(id)?;
            let text = ctx.render("report", &record)?;
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
        IncidentCommand::Collect { id } => collect(&ctx, id),
        IncidentCommand::Notice { id } => {
            let record = ctx.load(id)?;
            let text = ctx.render("customer", &record)?;
            {
                let _held = ctx.lock(id)?;
                ctx.store
                    .append(id, &ctx.entry("notice", "Customer notification prepared"))
                    .map_err(anyhow::Error::msg)?;
            }
            session.printer.data(&text);
            Ok(0)
        }
    }
}

/// Say exactly what of a change landed (a full disk, an unwritable folder), audit it, and
/// give the exit code: 1.
fn not_recorded(
    ctx: &Ctx<'_>,
    action: &str,
    id: &str,
    what: &[String],
    unrecorded: incident::Unrecorded,
) -> u8 {
    let what = what.join(", ");
    let (outcome, message) = match unrecorded {
        incident::Unrecorded::Nothing(e) => (
            "failed",
            format!(
                "{id}: nothing was recorded ({what}: not on the timeline, record unchanged): {e}"
            ),
        ),
        incident::Unrecorded::RecordOnly(e) => (
            "partial",
            format!(
                "{id}: recorded on the timeline: {what}; not recorded in incident.json (its status and times are unchanged): {e}"
            ),
        ),
    };
    crate::logging::audit::record(action, outcome, Some(&message));
    ctx.session.printer.error(&message);
    1
}

/// The standing of an incident: elapsed against response time, and what is overdue.
fn standing(ctx: &Ctx<'_>, record: &Incident) -> serde_json::Value {
    let end = record
        .resolved
        .as_deref()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ctx.now);
    let elapsed = incident::seconds_between(&record.declared, end);
    let mut overdue = Vec::new();
    let mut response = String::new();
    if let Ok(severity) = ctx.config.severity(&record.severity) {
        let limit = severity.response.0.as_secs();
        response = incident::human(limit);
        if record.status != Status::Resolved {
            if record.acknowledged.is_none() && elapsed > limit {
                overdue.push(format!(
                    "no response after {}, due within {}",
                    incident::human(elapsed),
                    response
                ));
            }
            let escalated: Vec<String> = ctx
                .store
                .timeline(&record.id)
                .into_iter()
                .filter(|e| e.kind == "escalated")
                .map(|e| e.text)
                .collect();
            for step in incident::due(&severity, elapsed) {
                if !escalated.iter().any(|t| t.contains(&step.who)) {
                    overdue.push(format!(
                        "escalation to {} was due at T+{}",
                        step.who,
                        incident::human(step.after.0.as_secs())
                    ));
                }
            }
        }
    }
    serde_json::json!({
        "id": record.id,
        "title": record.title,
        "severity": record.severity,
        "status": record.status.as_str(),
        "declared": record.declared,
        "elapsed": incident::human(elapsed),
        "elapsed_seconds": elapsed,
        "response": response,
        "overdue": overdue,
    })
}

/// `incident collect`: the evidence bundle, recorded on the timeline.
fn collect(ctx: &Ctx<'_>, id: &str) -> anyhow::Result<u8> {
    use crate::incident::collect::{Piece, audit_tail, bundle, recent_errors, system_info};
    let session = ctx.session;
    let record = ctx.load(id)?;
    let config = &session.loaded.config;
    let mut check = check_context()?;
    check.config = std::sync::Arc::new(config.step_settings());
    let runtime = super::runtime()?;
    let health = runtime.block_on(crate::health::check(&config.health, &check));
    let style = crate::report::Style::default();
    let mut pieces = vec![Piece {
        name: "health.json".to_string(),
        bytes: crate::report::render(&health, crate::report::Format::Json, style).into_bytes(),
    }];
    let since = ctx
        .now
        .checked_sub(jiff::SignedDuration::from_hours(24))
        .unwrap_or(ctx.now);
    pieces.push(Piece {
        name: "errors.log".to_string(),
        bytes: recent_errors(&config.logs.sets, since),
    });
    pieces.push(Piece {
        name: "system.txt".to_string(),
        bytes: system_info(),
    });
    let log_dir = PathBuf::from(config.logging.dir.as_str());
    pieces.push(Piece {
        name: "audit.log".to_string(),
        bytes: audit_tail(&log_dir),
    });
    if let Some(name) = record
        .kind
        .as_ref()
        .and_then(|k| ctx.config.diagnosis.get(k))
    {
        let dirs = super::run::dirs(session);
        let loaded = crate::runbook::find(name, &dirs)
            .map_err(|e| e.to_string())
            .and_then(|source| {
                crate::runbook::load(&source, &Default::default(), &dirs)
                    .map_err(|e| format!("{e:#}"))
            });
        match loaded {
            Ok(book) => {
                let selection = crate::runbook::Selection::default();
                let report = runtime.block_on(crate::runbook::run(
                    &book,
                    &check,
                    &selection,
                    &mut |_: &crate::model::CheckResult| {},
                ));
                pieces.push(Piece {
                    name: format!("diagnosis-{name}.json"),
                    bytes: crate::report::render(&report, crate::report::Format::Json, style)
                        .into_bytes(),
                });
            }
            Err(e) => session
                .printer
                .warn(&format!("{id}: diagnosis runbook {name}: {e}")),
        }
    }
    for piece in &mut pieces {
        piece.bytes = crate::redact::mask(&String::from_utf8_lossy(&piece.bytes))
            .into_owned()
            .into_bytes();
    }
    let name = format!("evidence-{}", ctx.now.strftime("%Y%m%dT%H%M%SZ"));
    let (path, manifest) =
        bundle(&ctx.store.path(id), &name, &pieces).map_err(anyhow::Error::msg)?;
    {
        let _held = ctx.lock(id)?;
        let names: Vec<&str> = pieces.iter().map(|p| p.name.as_str()).collect();
        ctx.store
            .append(
                id,
                &ctx.entry(
                    "collected",
                    format!("Evidence collected: {} ({})", name, names.join(", ")),
                ),
            )
            .map_err(anyhow::Error::msg)?;
    }
    crate::logging::audit::record(
        "incident.collect",
        "ok",
        Some(&format!("{id}: {}", path.display())),
    );
    let files = manifest["files"].as_array().map_or(0, Vec::len);
    session.printer.human(&format!(
        "{id}: evidence in {} ({} and a manifest)\n",
        path.display(),
        crate::plural::count(files, "file", "files")
    ));
    Ok(0)
}
