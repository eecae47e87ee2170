//! `incident remind`: for cron or a maintenance schedule. Every incident whose stakeholder
//! update is due (its severity's `update_every`) or that has overdue action items is
//! listed; each gets one reminder per period (a `reminded` timeline entry, so a reminder run
//! every five minutes still sends once per `update_every`, and once a day for overdue
//! action items), recorded first and then sent the way every incident message is. A
//! reminder that is due when no channel is configured (no incident webhook, no `notify:`
//! route for incidents) reaches nobody: it is not recorded, and said so.

use super::notify::Reach;
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
    /// A reminder went out now, but a channel did not take it: kept in `undelivered/`
    /// (or, when even that failed, marked failed), so the next run sends it.
    pub undelivered: bool,
    /// No channel is configured: the reminder reached nobody and is not recorded.
    pub nobody: bool,
    pub reminded: Option<String>,
}

/// Every incident that needs attention at `book.now`, oldest first, each reminded once
/// per period (see the module's description).
pub fn remind(book: &Incidents<'_>, voice: &super::Voice<'_>) -> Result<Vec<Due>, Error> {
    // What earlier runs left undelivered goes first, whether or not anything is due now.
    book.flush(voice);
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
        let reminded = last_reminded(&timeline);
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
            nobody: false,
            reminded: reminded.map(|r| r.to_string()),
        };
        if !quiet {
            match send(book, &record, &due, voice)? {
                Sent::Now => due.sent = true,
                Sent::Undelivered => due.undelivered = true,
                Sent::Nobody => due.nobody = true,
                Sent::ByAnother(at) => due.reminded = Some(at),
            }
        }
        out.push(due);
    }
    Ok(out)
}

/// The error for reminders that were due and reached nobody (`due` from [`remind`]): a
/// setting the command needs that no config gives (exit 78, naming the keys); none when
/// every due reminder had a channel.
pub fn unheard(book: &Incidents<'_>, due: &[Due]) -> Option<Error> {
    let ids: Vec<&str> = due
        .iter()
        .filter(|d| d.nobody)
        .map(|d| d.id.as_str())
        .collect();
    if ids.is_empty() {
        return None;
    }
    let message = format!(
        "{}: a reminder is due and nobody was told: no channel is configured for incident \
         messages (set incident.webhook, or route `incident` events to a notify: channel; \
         PagerDuty hears only declare, escalate and resolve)",
        ids.join(", ")
    );
    Some(Error::Config(crate::error::ConfigError::whole_file(
        &book.config_file,
        message,
    )))
}

/// What became of one reminder.
enum Sent {
    Now,
    /// A channel did not take it: kept for the next run.
    Undelivered,
    /// No channel is configured: not sent, not recorded.
    Nobody,
    /// Another run reminded first (at this time): not sent twice.
    ByAnother(String),
}

/// The last reminder that went out: the newest `reminded` entry, unless a
/// `remind-failed` entry came at or after it.
fn last_reminded(timeline: &[super::Entry]) -> Option<jiff::Timestamp> {
    let newest = |kind: &str| {
        timeline
            .iter()
            .filter(|e| e.kind == kind)
            .filter_map(|e| e.time.parse::<jiff::Timestamp>().ok())
            .max()
    };
    let reminded = newest("reminded")?;
    match newest("remind-failed") {
        Some(failed) if failed >= reminded => None,
        _ => Some(reminded),
    }
}

/// Claim the reminder on the incident's timeline under its lock (so two runs at once
/// never both send it), then show and send it; a reminder no channel took is marked
/// failed, so the next run sends it again.
fn send(
    book: &Incidents<'_>,
    record: &super::Incident,
    due: &Due,
    voice: &super::Voice<'_>,
) -> Result<Sent, Error> {
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
    // Claimed before it is sent (so two runs never both send it); a `notify-failed` or
    // `remind-failed` entry follows when no channel took it.
    let text = format!("Reminder made: {}", about.join("; "));
    if book.targets(record, false).names.is_empty() {
        audit::record(
            "incident.remind",
            "failed",
            Some(&format!(
                "{}: no channel is configured; nobody was told",
                due.id
            )),
        );
        return Ok(Sent::Nobody);
    }
    {
        let _held = book.lock(&due.id)?;
        let now = last_reminded(&book.store.timeline(&due.id)).map(|t| t.to_string());
        if now != due.reminded
            && let Some(at) = now
        {
            return Ok(Sent::ByAnother(at));
        }
        book.store
            .append(&due.id, &book.entry("reminded", text.clone()))?;
    }
    let reach = book.announce(record, "reminder", &message, None, voice);
    if reach == Reach::Kept {
        // Kept in `undelivered/`: the next run that notifies delivers it, so it is not
        // marked failed (that would send it twice).
        return Ok(Sent::Undelivered);
    }
    if reach != Reach::Everyone {
        let _held = book.lock(&due.id)?;
        book.store.append(
            &due.id,
            &book.entry("remind-failed", "No channel took the reminder".to_string()),
        )?;
        audit::record(
            "incident.remind",
            "failed",
            Some(&format!(
                "{}: not delivered; the next run sends it again",
                due.id
            )),
        );
        return Ok(Sent::Undelivered);
    }
    audit::record(
        "incident.remind",
        "ok",
        Some(&format!("{}: {text}", due.id)),
    );
    Ok(Sent::Now)
}
