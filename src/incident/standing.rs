//! Where an incident stands: elapsed time against its severity's response time, what is
//! overdue (no response in time, an escalation that was due and is not on the timeline),
//! whether a stakeholder update is due, and the times to acknowledge, mitigate and resolve.

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
    /// The severity's response time (empty for a severity without one).
    pub response: String,
    pub overdue: Vec<String>,
    /// Time to acknowledge, mitigate and resolve, in seconds from the declaration (each
    /// once that milestone is reached).
    pub tta_seconds: Option<u64>,
    pub ttm_seconds: Option<u64>,
    pub ttr_seconds: Option<u64>,
    /// `last update 45m ago, due every 30m` while a stakeholder update is due.
    pub update_due: Option<String>,
}

impl Standing {
    /// `TTA 5m, TTM 20m, TTR 1h 35m`: the milestones reached (empty when none is).
    pub fn times(&self) -> String {
        [
            ("TTA", self.tta_seconds),
            ("TTM", self.ttm_seconds),
            ("TTR", self.ttr_seconds),
        ]
        .into_iter()
        .filter_map(|(name, secs)| Some(format!("{name} {}", super::human(secs?))))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// Timeline entries that count as an update to stakeholders (for the update cadence).
const UPDATES: [&str; 10] = [
    "declared",
    "status",
    "note",
    "impact",
    "severity",
    "components",
    "service",
    "eta",
    "notice",
    "resolved",
];

/// When the last stakeholder update of `timeline` was made.
pub(crate) fn last_update(timeline: &[Entry]) -> Option<jiff::Timestamp> {
    timeline
        .iter()
        .filter(|e| UPDATES.contains(&e.kind.as_str()))
        .filter_map(|e| e.time.parse().ok())
        .max()
}

/// `last update 45m ago, due every 30m` when an open incident's update is due at `now`.
pub(crate) fn update_due(
    record: &Incident,
    severity: &super::Severity,
    timeline: &[Entry],
    now: jiff::Timestamp,
) -> Option<String> {
    let every = severity.update_every?.0.as_secs();
    if record.status == Status::Resolved || every == 0 {
        return None;
    }
    let last = last_update(timeline)
        .map(|t| t.to_string())
        .unwrap_or_else(|| record.declared.clone());
    let since = super::seconds_between(&last, now);
    (since >= every).then(|| {
        format!(
            "last update {} ago, due every {}",
            super::human(since),
            super::human(every)
        )
    })
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
    let mut update = None;
    if let Ok((severity, _)) = book.severity_of(record) {
        let timeline = book.store.timeline(&record.id);
        update = update_due(record, &severity, &timeline, book.now);
        let limit = severity.response.map(|r| r.0.as_secs());
        response = limit.map(super::human).unwrap_or_default();
        if record.status != Status::Resolved {
            if let Some(limit) = limit.filter(|l| record.acknowledged.is_none() && elapsed > *l) {
                overdue.push(format!(
                    "no response after {}, due within {}",
                    super::human(elapsed),
                    super::human(limit)
                ));
            }
            let escalated: Vec<String> = timeline
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
        tta_seconds: super::span(&record.declared, record.acknowledged.as_deref()),
        ttm_seconds: super::span(&record.declared, record.mitigated.as_deref()),
        ttr_seconds: super::span(&record.declared, record.resolved.as_deref()),
        update_due: update,
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
