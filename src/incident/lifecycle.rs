//! The incident lifecycle: declare, update, escalate, resolve, and the customer notice and
//! post-incident report. Each action checks its input, takes the incident's lock, records
//! the change (the record is written before anything is sent, so a dead webhook never
//! loses an incident), writes its audit line, then shows and sends its message.

use super::notify::Told;
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
    /// The `notify:` channels whose routes take `incident` messages (none: the webhook
    /// only), set by [`Incidents::notifying`].
    pub notify: Option<&'a crate::notify::NotifyConfig>,
    /// Where messages no channel took wait (`STATE_DIR/undelivered/`).
    pub state_dir: PathBuf,
    /// The channels that did not take a message in this run (tried once per run).
    pub(crate) failures: std::cell::RefCell<crate::notify::Failures>,
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
    /// The affected service (else config `service:`).
    pub service: Option<String>,
    /// When a fix is expected, as said.
    pub eta: Option<String>,
}

/// An update: a status change, a note, new values (at least one of them). Each value that
/// differs is recorded on the timeline as old → new.
#[derive(Default)]
pub struct Change {
    pub status: Option<Status>,
    pub note: Option<String>,
    /// Impact lines to add to the record's.
    pub impact: Vec<String>,
    pub severity: Option<String>,
    /// The affected components now (empty: unchanged).
    pub components: Vec<String>,
    pub service: Option<String>,
    pub eta: Option<String>,
}

impl Change {
    fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.note.is_none()
            && self.impact.is_empty()
            && self.severity.is_none()
            && self.components.is_empty()
            && self.service.is_none()
            && self.eta.is_none()
    }
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
        config.check_routing(&config_file)?;
        Ok(Incidents {
            config,
            store: Store::new(config.dir(state_dir)),
            config_file,
            now: jiff::Timestamp::now(),
            notify: None,
            state_dir: state_dir.to_path_buf(),
            failures: std::cell::RefCell::default(),
        })
    }

    /// The same incidents, with every message also sent to the `notify:` channels whose
    /// routes take `incident` events of its severity (the highest configured severity is
    /// `critical`, every other `warning`).
    pub fn notifying(self, notify: &'a crate::notify::NotifyConfig) -> Self {
        Incidents {
            notify: Some(notify),
            ..self
        }
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

    /// The severity of `incident` with the escalation that applies to it now, and why
    /// when that is not the severity's plain list.
    pub(crate) fn severity_of(
        &self,
        incident: &Incident,
    ) -> Result<(super::Severity, Option<String>), Error> {
        self.config
            .routed(&incident.severity, incident.kind.as_deref(), self.now)
    }

    /// Template `name` rendered for `incident` and its timeline.
    pub(crate) fn render(&self, name: &str, incident: &Incident) -> Result<String, Error> {
        self.render_with(name, incident, templates::Reminder::default())
    }

    /// Template `name` rendered for `incident`, with what a reminder is about.
    pub(crate) fn render_with(
        &self,
        name: &str,
        incident: &Incident,
        reminder: templates::Reminder,
    ) -> Result<String, Error> {
        let (severity, _) = self.severity_of(incident)?;
        let timeline = self.store.timeline(&incident.id);
        let status_page = self
            .config
            .status_page
            .as_ref()
            .map(|url| url.as_str().replace("{id}", &incident.id));
        let view = templates::View {
            incident,
            severity: &severity,
            timeline: &timeline,
            now: self.now,
            status_page,
            service: incident
                .service
                .clone()
                .or_else(|| self.config.service.clone()),
            reminder,
        };
        templates::render(&self.config.templates, name, &view, &self.config_file)
    }

    /// A change to `record` recorded: its audit line, then its message shown and sent.
    pub(crate) fn recorded(
        &self,
        told: Told,
        detail: &str,
        record: &Incident,
        voice: &Voice<'_>,
    ) -> Result<(), Error> {
        audit::record(told.action(), "ok", Some(detail));
        let message = self.render(told.template(), record)?;
        self.announce(record, told.what(), &message, told.page(), voice);
        Ok(())
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
        acknowledged_by: None,
        service: new.service.or_else(|| book.config.service.clone()),
        eta: new.eta,
        mitigated: None,
        resolved: None,
        root_cause: None,
        lessons: Vec::new(),
        action_items: Vec::new(),
    };
    let day = book.now.strftime("%Y%m%d").to_string();
    let record = book.store.declare(record, entry, &day)?;
    let detail = format!("{} {}: {}", record.id, record.severity, record.title);
    book.recorded(Told::Declare, &detail, &record, voice)?;
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
    if change.is_empty() {
        return Err(Error::Usage(
            "nothing to update: give --status, --note, --impact, --severity, --component, --service or --eta".to_string(),
        ));
    }
    let severity = match &change.severity {
        Some(name) => Some(book.config.severity(name)?.name),
        None => None,
    };
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
        let (entries, what) = apply(book, &mut record, change, severity);
        if entries.is_empty() {
            return Err(Error::Usage(format!(
                "{id}: nothing to update: every value given is already the incident's"
            )));
        }
        if let Err(unrecorded) = book.store.update(&record, &entries) {
            return Err(not_recorded("incident.update", id, &what, unrecorded));
        }
        record
    };
    book.recorded(Told::Update, id, &record, voice)?;
    Ok(record)
}

/// `change` applied to `record`: the timeline entries it makes, and what they are (for a
/// message saying what did not land). A value equal to the old one makes no entry.
fn apply(
    book: &Incidents<'_>,
    record: &mut Incident,
    change: &Change,
    severity: Option<String>,
) -> (Vec<Entry>, Vec<String>) {
    let mut entries = Vec::new();
    let mut what = Vec::new();
    if let Some(status) = change.status.filter(|s| *s != record.status) {
        let old = std::mem::replace(&mut record.status, status);
        if matches!(status, Status::Mitigated | Status::Monitoring) && record.mitigated.is_none() {
            record.mitigated = Some(book.now.to_string());
        }
        let text = format!("Status: {} → {}", old.as_str(), status.as_str());
        entries.push(book.entry("status", text));
        what.push(format!("status {}", status.as_str()));
    }
    let mut changed = |kind: &str, label: &str, old: String, new: String| {
        if old != new {
            let old = if old.is_empty() { "-".to_string() } else { old };
            entries.push(book.entry(kind, format!("{label}: {old} → {new}")));
            what.push(format!("{kind} {new:?}"));
        }
    };
    if let Some(new) = severity {
        changed("severity", "Severity", record.severity.clone(), new.clone());
        record.severity = new;
    }
    if !change.impact.is_empty() {
        let old = record.impact.join("; ");
        record.impact.extend(change.impact.iter().cloned());
        changed("impact", "Impact", old, record.impact.join("; "));
    }
    if !change.components.is_empty() {
        let (old, new) = (record.components.join(", "), change.components.join(", "));
        changed("components", "Components", old, new);
        record.components = change.components.clone();
    }
    if let Some(new) = &change.service {
        let old = record.service.replace(new.clone()).unwrap_or_default();
        changed("service", "Service", old, new.clone());
    }
    if let Some(new) = &change.eta {
        let old = record.eta.replace(new.clone()).unwrap_or_default();
        changed("eta", "ETA", old, new.clone());
    }
    if let Some(note) = &change.note {
        entries.push(book.entry("note", note.clone()));
        what.push("the note".to_string());
    }
    if record.acknowledged.is_none() && !entries.is_empty() {
        record.acknowledged = Some(book.now.to_string());
        record.acknowledged_by = Some(super::author());
    }
    (entries, what)
}

/// Who is due now per the escalation matrix: recorded on the timeline (when anyone is),
/// shown and sent. The names of those due.
pub fn escalate(book: &Incidents<'_>, id: &str, voice: &Voice<'_>) -> Result<Vec<String>, Error> {
    let record = book.load(id)?;
    let (severity, why) = book.severity_of(&record)?;
    let elapsed = super::seconds_between(&record.declared, book.now);
    let due: Vec<String> = super::due(&severity, elapsed)
        .iter()
        .map(|e| e.who.clone())
        .collect();
    if !due.is_empty() {
        let _held = book.lock(id)?;
        let why = why.map_or_else(String::new, |why| format!("; {why} contacts"));
        let text = format!(
            "Escalated to {} (T+{}{why})",
            due.join(", "),
            super::human(elapsed)
        );
        book.store.append(id, &book.entry("escalated", text))?;
    }
    let detail = format!("{id}: {}", due.join(", "));
    book.recorded(Told::Escalate, &detail, &record, voice)?;
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
    book.recorded(Told::Resolve, id, &record, voice)?;
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
pub(crate) fn not_recorded(
    action: &str,
    id: &str,
    what: &[String],
    unrecorded: Unrecorded,
) -> Error {
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
