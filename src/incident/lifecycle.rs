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
    audit::record(
        "incident.declare",
        "ok",
        Some(&format!(
            "{} {}: {}",
            record.id, record.severity, record.title
        )),
    );
    let message = book.render("declaration", &record)?;
    book.announce(&record.id, &message, voice);
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
    audit::record("incident.update", "ok", Some(id));
    let message = book.render("update", &record)?;
    book.announce(id, &message, voice);
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
    audit::record(
        "incident.escalate",
        "ok",
        Some(&format!("{id}: {}", due.join(", "))),
    );
    let message = book.render("escalation", &record)?;
    book.announce(id, &message, voice);
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
    audit::record("incident.resolve", "ok", Some(id));
    let message = book.render("update", &record)?;
    book.announce(id, &message, voice);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn at(text: &str) -> jiff::Timestamp {
        text.parse().expect("an RFC 3339 time")
    }

    fn config(dir: &Path) -> IncidentConfig {
        IncidentConfig {
            dir: Some(crate::values::Text::plain(
                dir.join("incidents").display().to_string(),
            )),
            ..IncidentConfig::default()
        }
    }

    fn declaration(severity: &str, title: &str) -> Declaration {
        Declaration {
            severity: severity.to_string(),
            title: title.to_string(),
            impact: vec!["All API requests fail".to_string()],
            components: vec!["api".to_string()],
            commander: None,
            kind: None,
        }
    }

    /// The lifecycle through the library alone: each message is shown in turn, the
    /// record's times follow the clock, and the standing applies the overdue rule.
    #[test]
    fn the_lifecycle_runs_through_the_library_without_the_command_line() {
        let temp = tempfile::tempdir().expect("temp dir");
        let config = config(temp.path());
        let open = |now: &str| {
            Incidents::open(&config, temp.path(), PathBuf::from("ops.yaml"))
                .expect("built-in templates")
                .at(at(now))
        };
        let shown = RefCell::new(Vec::<String>::new());
        let message = |text: &str| shown.borrow_mut().push(text.to_string());
        let voice = Voice {
            message: &message,
            warn: &|text| panic!("no warning expected: {text}"),
        };
        let book = open("2026-01-10T10:00:00Z");
        let record =
            declare(&book, declaration("sev-1", "API unavailable"), &voice).expect("declared");
        assert_eq!(record.id, "INC-20260110-1");
        assert_eq!(record.severity, "SEV-1");
        let book = open("2026-01-10T10:16:00Z");
        assert_eq!(
            crate::incident::standing(&book, &record).overdue,
            [
                "no response after 16m, due within 15m",
                "escalation to On-call was due at T+0m",
                "escalation to Platform Lead was due at T+15m",
            ]
            .map(String::from)
        );
        let change = Change {
            status: Some(Status::Monitoring),
            note: Some("pool raised".to_string()),
            impact: Vec::new(),
        };
        let updated = update(&book, &record.id, &change, &voice).expect("updated");
        assert_eq!(
            updated.acknowledged.as_deref(),
            Some("2026-01-10T10:16:00Z")
        );
        assert_eq!(updated.mitigated.as_deref(), Some("2026-01-10T10:16:00Z"));
        let due = escalate(&book, &record.id, &voice).expect("escalated");
        assert_eq!(due, ["On-call", "Platform Lead"]);
        let book = open("2026-01-10T10:30:00Z");
        assert!(
            crate::incident::standing(&book, &updated)
                .overdue
                .is_empty()
        );
        let resolution = Resolution {
            root_cause: "pool size".to_string(),
            lessons: vec!["alert on saturation".to_string()],
            actions: vec![ActionItem::parse("Raise the pool | @db | 2026-01-20").expect("parsed")],
        };
        let resolved = resolve(&book, &record.id, resolution, &voice).expect("resolved");
        assert_eq!(resolved.status, Status::Resolved);
        assert_eq!(resolved.action_items[0].owner, "@db");
        let shown = shown.into_inner();
        assert_eq!(shown.len(), 4, "{shown:?}");
        assert!(shown[0].starts_with("🚨 INCIDENT DECLARED"), "{}", shown[0]);
        assert!(shown[1].contains("Status: MONITORING"), "{}", shown[1]);
        assert!(shown[2].starts_with("⏫ ESCALATION"), "{}", shown[2]);
        assert!(shown[3].contains("Status: RESOLVED"), "{}", shown[3]);
        let kinds: Vec<String> = book
            .store
            .timeline(&record.id)
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            ["declared", "status", "note", "escalated", "resolved"]
        );
    }

    /// Each refusal has the kind its exit code comes from, and changes nothing.
    #[test]
    fn refusals_are_typed_and_change_nothing() {
        let temp = tempfile::tempdir().expect("temp dir");
        let config = config(temp.path());
        let book = Incidents::open(&config, temp.path(), PathBuf::from("ops.yaml"))
            .expect("built-in templates")
            .at(at("2026-01-10T10:00:00Z"));
        let voice = Voice::silent();
        let kind = |e: Error| e.kind();
        use crate::error::Kind;
        let unknown = declare(&book, declaration("SEV-7", "x"), &voice).expect_err("SEV-7");
        assert_eq!(kind(unknown), Kind::Usage);
        let empty = declare(&book, declaration("SEV-2", "  "), &voice).expect_err("no title");
        assert_eq!(empty.to_string(), "--title is empty");
        let nothing = Change {
            status: None,
            note: None,
            impact: Vec::new(),
        };
        let err = update(&book, "INC-20260110-1", &nothing, &voice).expect_err("empty");
        assert_eq!(kind(err), Kind::Usage);
        let err = escalate(&book, "../elsewhere", &voice).expect_err("not an id");
        assert!(matches!(err, Error::Unknown(_)), "{err}");
        let err = ActionItem::parse("no owner").expect_err("malformed");
        assert_eq!(
            err.to_string(),
            "--action \"no owner\" is not ACTION|OWNER|DUE"
        );
        let record = declare(&book, declaration("SEV-2", "Queue backlog"), &voice).expect("ok");
        let end = || Resolution {
            root_cause: "x".to_string(),
            lessons: Vec::new(),
            actions: Vec::new(),
        };
        resolve(&book, &record.id, end(), &voice).expect("resolved");
        let before = book.store.timeline(&record.id).len();
        let again = resolve(&book, &record.id, end(), &voice).expect_err("twice");
        assert_eq!(
            again.to_string(),
            "INC-20260110-1 is already resolved (at 2026-01-10T10:00:00Z); nothing changed"
        );
        assert_eq!(kind(again), Kind::Failure);
        let status = Change {
            status: Some(Status::Identified),
            note: None,
            impact: Vec::new(),
        };
        let err = update(&book, &record.id, &status, &voice).expect_err("resolved");
        assert!(matches!(err, Error::Refused(_)), "{err}");
        assert_eq!(book.store.timeline(&record.id).len(), before);
    }

    /// A template that does not render is a config error naming the file, found before
    /// anything is recorded.
    #[test]
    fn a_broken_template_is_a_config_error_before_anything_is_recorded() {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut config = config(temp.path());
        config
            .templates
            .insert("update".to_string(), "{{ incident.sevrity }}".to_string());
        let err = Incidents::open(&config, temp.path(), PathBuf::from("ops.yaml"))
            .err()
            .expect("a broken template");
        assert_eq!(err.kind(), crate::error::Kind::Config);
        assert!(
            err.to_string()
                .starts_with("ops.yaml: incident.templates.update: "),
            "{err}"
        );
        assert!(!temp.path().join("incidents").exists());
    }
}
