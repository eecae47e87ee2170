//! The incident lifecycle: declare, update, escalate, resolve, and the customer notice and
//! post-incident report. Each action checks its input, takes the incident's lock, records
//! the change (the record is written before anything is sent, so a dead webhook never
//! loses an incident), writes its audit line, then shows and sends its message.

use super::{
    ActionItem, Entry, Error, Incident, IncidentConfig, Status, Store, Unrecorded, templates,
};
use crate::logging::audit;
use std::path::{Path, PathBuf};

/// The incidents of one configuration, at one instant.
pub struct Incidents<'a> {
    pub config: &'a IncidentConfig,
    pub store: Store,
    /// The config file in use, named by template errors.
    pub config_file: PathBuf,
    /// The time every change is recorded at (the real clock unless [`Incidents::at`]).
    pub now: jiff::Timestamp,
}

/// What a person sees as it happens: each message before it is sent, and warnings (a
/// notification that failed).
pub struct Voice<'a> {
    pub message: &'a dyn Fn(&str),
    pub warn: &'a dyn Fn(&str),
}

impl Voice<'_> {
    /// A voice that shows nothing.
    pub fn silent() -> Voice<'static> {
        Voice {
            message: &|_| {},
            warn: &|_| {},
        }
    }
}

/// A new incident as declared.
pub struct Declaration {
    pub severity: String,
    pub title: String,
    pub impact: Vec<String>,
    pub components: Vec<String>,
    pub commander: Option<String>,
    /// The incident type, naming its diagnosis runbook.
    pub kind: Option<String>,
}

/// An update: a status change, a note, impact lines (at least one of them).
pub struct Change {
    pub status: Option<Status>,
    pub note: Option<String>,
    pub impact: Vec<String>,
}

/// How an incident ends.
pub struct Resolution {
    pub root_cause: String,
    pub lessons: Vec<String>,
    pub actions: Vec<ActionItem>,
}

impl<'a> Incidents<'a> {
    /// The incidents under `state_dir` (or the configured folder). The config's templates
    /// are checked first, so a broken one is found before anything is recorded.
    pub fn open(
        config: &'a IncidentConfig,
        state_dir: &Path,
        config_file: PathBuf,
    ) -> Result<Self, Error> {
        templates::check(&config.templates, &config_file)?;
        Ok(Incidents {
            config,
            store: Store::new(config.dir(state_dir)),
            config_file,
            now: jiff::Timestamp::now(),
        })
    }

    /// The same incidents, with changes recorded at `now`.
    pub fn at(self, now: jiff::Timestamp) -> Self {
        Incidents { now, ..self }
    }

    pub(crate) fn entry(&self, kind: &str, text: impl Into<String>) -> Entry {
        Entry {
            time: self.now.to_string(),
            author: super::author(),
            kind: kind.to_string(),
            text: text.into(),
        }
    }

    /// The record of `id`: an unknown id is [`Error::Unknown`], an unreadable or refused
    /// record [`Error::Store`].
    pub fn load(&self, id: &str) -> Result<Incident, Error> {
        self.store.known(id)?;
        self.store.load(id)
    }

    /// The incident's lock, with the same distinction as [`Incidents::load`].
    pub(crate) fn lock(&self, id: &str) -> Result<crate::lock::Lock, Error> {
        self.store.known(id)?;
        self.store.lock(id)
    }

    /// Template `name` rendered for `incident` and its timeline.
    fn render(&self, name: &str, incident: &Incident) -> Result<String, Error> {
        let severity = self.config.severity(&incident.severity)?;
        let timeline = self.store.timeline(&incident.id);
        let view = templates::View {
            incident,
            severity: &severity,
            timeline: &timeline,
            now: self.now,
        };
        templates::render(&self.config.templates, name, &view, &self.config_file)
    }

    /// A change to incident `id` recorded: its audit line (`action`), then its message
    /// (template `template`) shown and sent.
    fn recorded(
        &self,
        id: &str,
        action: &str,
        detail: &str,
        template: &str,
        record: &Incident,
        voice: &Voice<'_>,
    ) -> Result<(), Error> {
        audit::record(action, "ok", Some(detail));
        let message = self.render(template, record)?;
        self.announce(id, &message, voice);
        Ok(())
    }

    /// Show `message`, then send it; a failed notification is a warning and a timeline
    /// entry.
    fn announce(&self, id: &str, message: &str, voice: &Voice<'_>) {
        (voice.message)(message);
        let Some(webhook) = &self.config.webhook else {
            return;
        };
        if let Err(e) = super::notify::send(webhook, message) {
            let text = format!("notification failed: {e}");
            let recorded = self
                .store
                .lock(id)
                .and_then(|_held| self.store.append(id, &self.entry("notify-failed", &text)));
            if let Err(more) = recorded {
                (voice.warn)(&more.to_string());
            }
            (voice.warn)(&format!("{id}: {text}; the record is kept"));
        }
    }
}

/// Record a new incident (the next free `INC-YYYYMMDD-N`), then show and send the
/// declaration.
pub fn declare(
    book: &Incidents<'_>,
    new: Declaration,
    voice: &Voice<'_>,
) -> Result<Incident, Error> {
    let severity = book.config.severity(&new.severity)?;
    if new.title.trim().is_empty() {
        return Err(Error::Usage("--title is empty".to_string()));
    }
    let entry = book.entry(
        "declared",
        format!("Incident declared ({}): {}", severity.name, new.title),
    );
    let record = Incident {
        id: String::new(),
        title: new.title,
        severity: severity.name.clone(),
        status: Status::Investigating,
        kind: new.kind,
        impact: new.impact,
        components: new.components,
        commander: new.commander,
        declared: book.now.to_string(),
        acknowledged: None,
        mitigated: None,
        resolved: None,
        root_cause: None,
        lessons: Vec::new(),
        action_items: Vec::new(),
    };
    let day = book.now.strftime("%Y%m%d").to_string();
    let record = book.store.declare(record, entry, &day)?;
    let detail = format!("{} {}: {}", record.id, record.severity, record.title);
    book.recorded(
        &record.id,
        "incident.declare",
        &detail,
        "declaration",
        &record,
        voice,
    )?;
    Ok(record)
}

/// Add to the timeline (a status change, a note, impact), then show and send the status
/// update. A resolved incident's status no longer changes.
pub fn update(
    book: &Incidents<'_>,
    id: &str,
    change: &Change,
    voice: &Voice<'_>,
) -> Result<Incident, Error> {
    if change.status.is_none() && change.note.is_none() && change.impact.is_empty() {
        return Err(Error::Usage(
            "nothing to update: give --status, --note or --impact".to_string(),
        ));
    }
    if change.status == Some(Status::Resolved) {
        return Err(Error::Usage(format!(
            "resolve with `opsbook incident resolve {id} --root-cause \"…\"`"
        )));
    }
    let record = {
        let _held = book.lock(id)?;
        let mut record = book.load(id)?;
        if change.status.is_some() && record.status == Status::Resolved {
            return Err(Error::Refused(format!(
                "{id} is resolved; its status no longer changes (notes still can)"
            )));
        }
        let (entries, what) = apply(book, &mut record, change);
        if let Err(unrecorded) = book.store.update(&record, &entries) {
            return Err(not_recorded("incident.update", id, &what, unrecorded));
        }
        record
    };
    book.recorded(id, "incident.update", id, "update", &record, voice)?;
    Ok(record)
}

/// `change` applied to `record`: the timeline entries it makes, and what they are (for a
/// message saying what did not land).
fn apply(
    book: &Incidents<'_>,
    record: &mut Incident,
    change: &Change,
) -> (Vec<Entry>, Vec<String>) {
    let mut entries = Vec::new();
    let mut what = Vec::new();
    if let Some(status) = change.status {
        record.status = status;
        if status == Status::Monitoring && record.mitigated.is_none() {
            record.mitigated = Some(book.now.to_string());
        }
        entries.push(book.entry("status", format!("Status: {}", status.as_str())));
        what.push(format!("status {}", status.as_str()));
    }
    for line in &change.impact {
        record.impact.push(line.clone());
        entries.push(book.entry("impact", format!("Impact: {line}")));
        what.push(format!("impact {line:?}"));
    }
    if let Some(note) = &change.note {
        entries.push(book.entry("note", note.clone()));
        what.push("the note".to_string());
    }
    if record.acknowledged.is_none() {
        record.acknowledged = Some(book.now.to_string());
    }
    (entries, what)
}

/// Who is due now per the escalation matrix: recorded on the timeline (when anyone is),
/// shown and sent. The names of those due.
pub fn escalate(book: &Incidents<'_>, id: &str, voice: &Voice<'_>) -> Result<Vec<String>, Error> {
    let record = book.load(id)?;
    let severity = book.config.severity(&record.severity)?;
    let elapsed = super::seconds_between(&record.declared, book.now);
    let due: Vec<String> = super::due(&severity, elapsed)
        .iter()
        .map(|e| e.who.clone())
        .collect();
    if !due.is_empty() {
        let _held = book.lock(id)?;
        let text = format!(
            "Escalated to {} (T+{})",
            due.join(", "),
            super::human(elapsed)
        );
        book.store.append(id, &book.entry("escalated", text))?;
    }
    let detail = format!("{id}: {}", due.join(", "));
    book.recorded(
        id,
        "incident.escalate",
        &detail,
        "escalation",
        &record,
        voice,
    )?;
    Ok(due)
}

/// Close an incident with its root cause (once), then show and send the update.
pub fn resolve(
    book: &Incidents<'_>,
    id: &str,
    resolution: Resolution,
    voice: &Voice<'_>,
) -> Result<Incident, Error> {
    let record = {
        let _held = book.lock(id)?;
        let mut record = book.load(id)?;
        if record.status == Status::Resolved {
            return Err(Error::Refused(format!(
                "{id} is already resolved (at {}); nothing changed",
                record.resolved.as_deref().unwrap_or("?")
            )));
        }
        let now = book.now.to_string();
        record.status = Status::Resolved;
        record.resolved = Some(now.clone());
        record.mitigated.get_or_insert_with(|| now.clone());
        record.acknowledged.get_or_insert_with(|| now.clone());
        let entry = book.entry(
            "resolved",
            format!("Resolved. Root cause: {}", resolution.root_cause),
        );
        record.root_cause = Some(resolution.root_cause);
        record.lessons.extend(resolution.lessons);
        record.action_items.extend(resolution.actions);
        if let Err(unrecorded) = book.store.update(&record, &[entry]) {
            let what = ["the resolution".to_string()];
            return Err(not_recorded("incident.resolve", id, &what, unrecorded));
        }
        record
    };
    book.recorded(id, "incident.resolve", id, "update", &record, voice)?;
    Ok(record)
}

/// The post-incident report in Markdown (an open incident's is marked DRAFT).
pub fn report(book: &Incidents<'_>, id: &str) -> Result<String, Error> {
    let record = book.load(id)?;
    book.render("report", &record)
}

/// The customer notification for a person to send, recorded on the timeline.
pub fn notice(book: &Incidents<'_>, id: &str) -> Result<String, Error> {
    let record = book.load(id)?;
    let text = book.render("customer", &record)?;
    let _held = book.lock(id)?;
    book.store
        .append(id, &book.entry("notice", "Customer notification prepared"))?;
    Ok(text)
}

/// Say exactly what of a change landed (a full disk, an unwritable folder), and audit it.
fn not_recorded(action: &str, id: &str, what: &[String], unrecorded: Unrecorded) -> Error {
    let what = what.join(", ");
    let (outcome, message) = match unrecorded {
        Unrecorded::Nothing(e) => (
            "failed",
            format!(
                "{id}: nothing was recorded ({what}: not on the timeline, record unchanged): {e}"
            ),
        ),
        Unrecorded::RecordOnly(e) => (
            "partial",
            format!(
                "{id}: recorded on the timeline: {what}; not recorded in incident.json (its status and times are unchanged): {e}"
            ),
        ),
    };
    audit::record(action, outcome, Some(&message));
    Error::NotRecorded(message)
}
