//! Incidents (config `incident:`): a record per incident in `DIR/INC-YYYYMMDD-N/`, as plain
//! files a person can read: `incident.json` (the record, rewritten atomically) and
//! `timeline.jsonl` (append-only, one entry per line). Every change takes the incident's
//! lock (`flock` on `.lock`, waiting), so two `incident update` at once both land.
//! Records are mode 0600 in 0700 directories no one else can write to, never opened
//! through a link; a change is all or nothing where the disk allows it, and otherwise
//! says exactly which part landed.
//!
//! The lifecycle (declare, update, escalate, resolve, notice, report, collect) lives in
//! [`lifecycle`] and [`collect`], the standing of an incident (elapsed time, what is
//! overdue) in [`standing`]; each action takes its own lock and writes its own audit line,
//! so the command line and any other caller only call it and show what comes back.

pub mod collect;
mod error;
mod lifecycle;
pub mod notify;
mod standing;
mod store;
pub mod templates;
#[cfg(test)]
mod tests;

pub use collect::{Collected, Sources, collect};
pub use error::Error;
pub use lifecycle::{
    Change, Declaration, Incidents, Resolution, Voice, declare, escalate, notice, report, resolve,
    update,
};
pub use standing::{Shown, Standing, list, show, standing};
pub use store::{Store, Unrecorded};

use crate::values::{Duration, Text};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentConfig {
    /// Where records live (default `STATE_DIR/incidents`).
    pub dir: Option<Text>,
    /// The severity scheme, most severe first (default: seed 001's SEV-1 … SEV-4).
    pub severities: Option<Vec<Severity>>,
    pub webhook: Option<notify::Webhook>,
    /// Template overrides (minijinja): declaration, update, escalation, report.
    pub templates: std::collections::BTreeMap<String, String>,
    /// Incident type → diagnosis runbook, for `incident collect`; over [`DIAGNOSIS`].
    pub diagnosis: std::collections::BTreeMap<String, String>,
}

/// The incident types known out of the box, each with the shipped diagnosis runbook that
/// `incident collect` runs for it (the incident types of the five runbooks);
/// `incident.diagnosis` in config overrides an entry or adds a type.
pub const DIAGNOSIS: &[(&str, &str)] = &[
    ("api-down", "api-unavailable"),
    ("api-unavailable", "api-unavailable"),
    ("high-error-rate", "high-error-rate"),
    ("slow-responses", "slow-responses"),
    ("high-memory", "high-memory"),
    ("disk-space", "disk-space"),
    ("database", "database-issues"),
    ("queue-backlog", "queue-backlog"),
    ("cache", "cache"),
    ("certificate-expiry", "certificate-expiry"),
];

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Severity {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// How soon someone must respond (acknowledge).
    pub response: Duration,
    /// Who is brought in, and after how long.
    #[serde(default)]
    pub escalation: Vec<Escalation>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    pub after: Duration,
    pub who: String,
}

fn minutes(m: u64) -> Duration {
    Duration(std::time::Duration::from_secs(m * 60))
}

/// Seed 001's severity levels, response times and escalation matrix.
pub fn default_severities() -> Vec<Severity> {
    let level = |name: &str, description: &str, response: u64, chain: &[(u64, &str)]| Severity {
        name: name.to_string(),
        description: description.to_string(),
        response: minutes(response),
        escalation: chain
            .iter()
            .map(|(after, who)| Escalation {
                after: minutes(*after),
                who: who.to_string(),
            })
            .collect(),
    };
    vec![
        level(
            "SEV-1",
            "Critical - Service down",
            15,
            &[
                (0, "On-call"),
                (15, "Platform Lead"),
                (60, "CTO"),
                (240, "CEO"),
            ],
        ),
        level(
            "SEV-2",
            "Major - Significant degradation",
            60,
            &[(15, "On-call"), (60, "Platform Lead"), (240, "CTO")],
        ),
        level(
            "SEV-3",
            "Minor - Limited impact",
            240,
            &[(240, "On-call"), (1440, "Platform Lead")],
        ),
        level(
            "SEV-4",
            "Low - Minimal impact",
            1440,
            &[(10080, "Platform Lead")],
        ),
    ]
}

impl IncidentConfig {
    pub fn severities(&self) -> Vec<Severity> {
        self.severities.clone().unwrap_or_else(default_severities)
    }

    /// The severity named `name`, or a usage error listing the known ones.
    pub fn severity(&self, name: &str) -> Result<Severity, Error> {
        let all = self.severities();
        if let Some(found) = all.iter().find(|s| s.name.eq_ignore_ascii_case(name)) {
            return Ok(found.clone());
        }
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        let hint = crate::error::hint(name, &names);
        Err(Error::Usage(format!(
            "unknown severity {name:?} (known: {}){hint}",
            names.join(", ")
        )))
    }

    /// The diagnosis runbook of incident type `kind`: the config's, else the built-in one.
    pub fn diagnosis_for(&self, kind: &str) -> Option<&str> {
        self.diagnosis.get(kind).map(String::as_str).or_else(|| {
            DIAGNOSIS
                .iter()
                .find(|(known, _)| *known == kind)
                .map(|(_, runbook)| *runbook)
        })
    }

    /// Every incident type with a diagnosis runbook, built-in and configured.
    pub fn incident_types(&self) -> Vec<&str> {
        let mut types: Vec<&str> = DIAGNOSIS.iter().map(|(kind, _)| *kind).collect();
        types.extend(self.diagnosis.keys().map(String::as_str));
        types.sort_unstable();
        types.dedup();
        types
    }

    pub fn dir(&self, state_dir: &Path) -> PathBuf {
        self.dir.as_ref().map_or_else(
            || state_dir.join("incidents"),
            |d| PathBuf::from(d.as_str()),
        )
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Investigating => "investigating",
            Status::Identified => "identified",
            Status::Monitoring => "monitoring",
            Status::Resolved => "resolved",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ActionItem {
    pub action: String,
    pub owner: String,
    pub due: String,
}

impl ActionItem {
    /// An action item as written on the command line: `ACTION|OWNER|DUE`.
    pub fn parse(text: &str) -> Result<ActionItem, Error> {
        let parts: Vec<&str> = text.split('|').map(str::trim).collect();
        match parts.as_slice() {
            [action, owner, due] if !action.is_empty() => Ok(ActionItem {
                action: action.to_string(),
                owner: owner.to_string(),
                due: due.to_string(),
            }),
            _ => Err(Error::Usage(format!(
                "--action {text:?} is not ACTION|OWNER|DUE"
            ))),
        }
    }
}

/// The record (`incident.json`); the timeline lives beside it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Incident {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub status: Status,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub impact: Vec<String>,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default)]
    pub commander: Option<String>,
    pub declared: String,
    #[serde(default)]
    pub acknowledged: Option<String>,
    #[serde(default)]
    pub mitigated: Option<String>,
    #[serde(default)]
    pub resolved: Option<String>,
    #[serde(default)]
    pub root_cause: Option<String>,
    #[serde(default)]
    pub lessons: Vec<String>,
    #[serde(default)]
    pub action_items: Vec<ActionItem>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Entry {
    pub time: String,
    pub author: String,
    /// declared, status, note, impact, escalated, notified, notify-failed, resolved, collected
    pub kind: String,
    pub text: String,
}

/// Seconds from `from` to `to` (RFC 3339 times); 0 when unreadable or negative.
pub fn seconds_between(from: &str, to: jiff::Timestamp) -> u64 {
    from.parse::<jiff::Timestamp>()
        .map(|at| to.as_second().saturating_sub(at.as_second()).max(0) as u64)
        .unwrap_or(0)
}

/// `1h 5m`, `3d 2h`: minutes precision.
pub fn human(secs: u64) -> String {
    let secs = secs - secs % 60;
    if secs == 0 {
        return "0m".to_string();
    }
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

/// Who is due by now per the escalation matrix.
pub fn due(severity: &Severity, elapsed: u64) -> Vec<&Escalation> {
    severity
        .escalation
        .iter()
        .filter(|e| e.after.0.as_secs() <= elapsed)
        .collect()
}

/// The person recording a change.
pub fn author() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "opsbook".to_string())
}
