//! Where an incident stands: elapsed time against its severity's response time, and what
//! is overdue (no response in time, an escalation that was due and is not on the timeline).

use super::{Entry, Error, Incident, Incidents, Status};
use serde::Serialize;

/// One incident's standing, as `incident list` and `incident show` give it.
#[derive(Clone, Debug, Serialize)]
pub struct Standing {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub status: Status,
    pub declared: String,
    /// `1h 5m`: until now, or until it was resolved.
    pub elapsed: String,
    pub elapsed_seconds: u64,
    /// The severity's response time (empty for a severity no longer configured).
    pub response: String,
    pub overdue: Vec<String>,
}

/// One incident whole: its standing, its record and its timeline.
#[derive(Debug, Serialize)]
pub struct Shown {
    #[serde(flatten)]
    pub standing: Standing,
    pub record: Incident,
    pub timeline: Vec<Entry>,
}

/// The standing of `record` at `book.now`.
pub fn standing(book: &Incidents<'_>, record: &Incident) -> Standing {
    let end = record
        .resolved
        .as_deref()
        .and_then(|r| r.parse().ok())
        .unwrap_or(book.now);
    let elapsed = super::seconds_between(&record.declared, end);
    let mut overdue = Vec::new();
    let mut response = String::new();
    if let Ok(severity) = book.config.severity(&record.severity) {
        let limit = severity.response.0.as_secs();
        response = super::human(limit);
        if record.status != Status::Resolved {
            if record.acknowledged.is_none() && elapsed > limit {
                overdue.push(format!(
                    "no response after {}, due within {}",
                    super::human(elapsed),
                    response
                ));
            }
            let escalated: Vec<String> = book
                .store
                .timeline(&record.id)
                .into_iter()
                .filter(|e| e.kind == "escalated")
                .map(|e| e.text)
                .collect();
            for step in super::due(&severity, elapsed) {
                if !escalated.iter().any(|t| t.contains(&step.who)) {
                    overdue.push(format!(
                        "escalation to {} was due at T+{}",
                        step.who,
                        super::human(step.after.0.as_secs())
                    ));
                }
            }
        }
    }
    Standing {
        id: record.id.clone(),
        title: record.title.clone(),
        severity: record.severity.clone(),
        status: record.status,
        declared: record.declared.clone(),
        elapsed: super::human(elapsed),
        elapsed_seconds: elapsed,
        response,
        overdue,
    }
}

/// Every readable incident, oldest first (`open`: those not resolved).
pub fn list(book: &Incidents<'_>, open: bool) -> Vec<Standing> {
    book.store
        .ids()
        .iter()
        .filter_map(|id| book.store.load(id).ok())
        .filter(|record| !open || record.status != Status::Resolved)
        .map(|record| standing(book, &record))
        .collect()
}

/// The incident `id`: its standing, record and timeline.
pub fn show(book: &Incidents<'_>, id: &str) -> Result<Shown, Error> {
    let record = book.load(id)?;
    Ok(Shown {
        standing: standing(book, &record),
        timeline: book.store.timeline(id),
        record,
    })
}
