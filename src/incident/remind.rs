//! `incident remind`: for cron or a maintenance schedule. Every incident whose stakeholder
//! update is due (its severity's `update_every`) or that has overdue action items is
//! listed; each gets one reminder per period (a `reminded` timeline entry, so a reminder run
//! every five minutes still sends once per `update_every`, and once a day for overdue
//! action items), recorded first and then sent the way every incident message is.

use super::{Error, Incidents, Tracked, templates};
use crate::logging::audit;
use serde::Serialize;

const DAY: u64 = 86_400;

/// One incident that needs attention.
#[derive(Debug, Serialize)]
pub struct Due {
    pub id: String,
    pub title: String,
    /// `last update 45m ago, due every 30m`.
    pub update_due: Option<String>,
    pub overdue_actions: Vec<Tracked>,
    /// Whether a reminder went out now (false: one already did this period; `reminded`
    /// says when).
    pub sent: bool,
    /// A reminder went out now, but a channel did not take it: not recorded, so the next
    /// run sends it again.
    pub undelivered: bool,
    pub reminded: Option<String>,
}

/// Every incident that needs attention at `book.now`, oldest first, each reminded once
/// per period (see the module's description).
pub fn remind(book: &Incidents<'_>, voice: &super::Voice<'_>) -> Result<Vec<Due>, Error> {
    let overdue: Vec<Tracked> = super::actions(book, &super::Filter::default())
        .into_iter()
        .filter(|t| t.overdue)
        .collect();
    let mut out = Vec::new();
    for id in book.store.ids() {
        let Ok(record) = book.store.load(&id) else {
            continue;
        };
        let timeline = book.store.timeline(&id);
        let severity = book.severity_of(&record).ok().map(|(s, _)| s);
        let update_due = severity
            .as_ref()
            .and_then(|s| super::standing::update_due(&record, s, &timeline, book.now));
        let actions: Vec<Tracked> = overdue
            .iter()
            .filter(|t| t.incident == id)
            .cloned()
            .collect();
        if update_due.is_none() && actions.is_empty() {
            continue;
        }
        let period = match (&update_due, &severity) {
            (Some(_), Some(s)) => s.update_every.map_or(DAY, |e| e.0.as_secs()),
            _ => DAY,
        };
        let last_update = super::standing::last_update(&timeline);
        let reminded = timeline
            .iter()
            .filter(|e| e.kind == "reminded")
            .filter_map(|e| e.time.parse::<jiff::Timestamp>().ok())
            .max();
        let quiet = reminded.is_some_and(|r| {
            super::seconds_between(&r.to_string(), book.now) < period
                && (update_due.is_none() || last_update.is_none_or(|u| r >= u))
        });
        let mut due = Due {
            id: id.clone(),
            title: record.title.clone(),
            update_due,
            overdue_actions: actions,
            sent: false,
            undelivered: false,
            reminded: reminded.map(|r| r.to_string()),
        };
        if !quiet {
            due.sent = send(book, &record, &due, voice)?;
            due.undelivered = !due.sent;
        }
        out.push(due);
    }
    Ok(out)
}

/// Show and send the reminder, then record it on the incident's timeline: only a reminder
/// every channel took counts as sent (one that failed is sent again by the next run);
/// whether it was.
fn send(
    book: &Incidents<'_>,
    record: &super::Incident,
    due: &Due,
    voice: &super::Voice<'_>,
) -> Result<bool, Error> {
    let reminder = templates::Reminder {
        update_due: due.update_due.clone(),
        overdue_actions: due.overdue_actions.clone(),
    };
    let message = book.render_with("reminder", record, reminder)?;
    let mut about = Vec::new();
    if due.update_due.is_some() {
        about.push("an update is due".to_string());
    }
    if !due.overdue_actions.is_empty() {
        let n = due.overdue_actions.len();
        about.push(crate::plural::count(
            n,
            "overdue action item",
            "overdue action items",
        ));
    }
    let text = format!("Reminder sent: {}", about.join("; "));
    if !book.announce(&due.id, &record.severity, &message, voice) {
        audit::record(
            "incident.remind",
            "failed",
            Some(&format!(
                "{}: not delivered; the next run sends it again",
                due.id
            )),
        );
        return Ok(false);
    }
    {
        let _held = book.lock(&due.id)?;
        book.store
            .append(&due.id, &book.entry("reminded", text.clone()))?;
    }
    audit::record(
        "incident.remind",
        "ok",
        Some(&format!("{}: {text}", due.id)),
    );
    Ok(true)
}
