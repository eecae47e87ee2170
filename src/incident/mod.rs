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

mod ack;
mod actions;
pub mod collect;
mod error;
mod lifecycle;
mod metrics;
pub mod notify;
mod remind;
mod routing;
mod standing;
mod store;
pub mod templates;
#[cfg(test)]
mod tests;

pub use ack::{Acknowledged, acknowledge};
pub use actions::{Filter, Tracked, actions, complete_action, overdue_actions};
pub use collect::{Collected, Sources, collect};
pub use error::Error;
pub use lifecycle::{
    Change, Declaration, Incidents, Resolution, Voice, declare, escalate, notice, report, resolve,
    update,
};
pub use metrics::metrics;
pub use remind::{Due, remind, unheard};
pub use routing::{BusinessHours, Routing};
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
    /// The severity scheme, most severe first (default: FileForge's SEV-1 … SEV-4).
    pub severities: Option<Vec<Severity>>,
    pub webhook: Option<notify::Webhook>,
    /// Template overrides (minijinja): declaration, update, escalation, report.
    pub templates: std::collections::BTreeMap<String, String>,
    /// Incident type → diagnosis runbook, for `incident collect`; over [`DIAGNOSIS`].
    pub diagnosis: std::collections::BTreeMap<String, String>,
    /// Severity name → who is brought in: by incident type, in and out of business hours
    /// (replaces that severity's own `escalation` list).
    pub escalation: std::collections::BTreeMap<String, Routing>,
    /// The public status page; `{id}` in it becomes the incident's id.
    pub status_page: Option<Text>,
    /// The affected service named in messages when `--service` is not given.
    pub service: Option<String>,
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
    /// How soon someone must respond (acknowledge); some schemes give none.
    #[serde(default)]
    pub response: Option<Duration>,
    /// How often stakeholders get an update while the incident is open.
    #[serde(default)]
    pub update_every: Option<Duration>,
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

/// FileForge's severity levels, response times and escalation matrix.
pub fn default_severities() -> Vec<Severity> {
    let level = |name: &str, description: &str, response: u64, chain: &[(u64, &str)]| Severity {
        name: name.to_string(),
        description: description.to_string(),
        response: Some(minutes(response)),
        // The customer update "every 30 minutes" for an outage, hourly for a degradation.
        update_every: match response {
            15 => Some(minutes(30)),
            60 => Some(minutes(60)),
            _ => None,
        },
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
    /// The bleeding has stopped (a rollback, a workaround); the cause may still be open.
    Mitigated,
    Monitoring,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Investigating => "investigating",
            Status::Identified => "identified",
            Status::Mitigated => "mitigated",
            Status::Monitoring => "monitoring",
            Status::Resolved => "resolved",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ActionItem {
    pub action: String,
    /// Who owns it (may be empty).
    pub owner: String,
    /// `YYYY-MM-DD`, or empty for no date.
    pub due: String,
    /// When it was marked done.
    #[serde(default)]
    pub done: Option<String>,
}

impl ActionItem {
    /// An action item as written on the command line: `TEXT[@owner][ by YYYY-MM-DD]`
    /// (the owner is the word after the last `@` at its end), or `ACTION|OWNER|DUE`.
    pub fn parse(text: &str) -> Result<ActionItem, Error> {
        let bad = |why: String| Error::Usage(format!("--action {text:?}: {why}"));
        let (action, owner, due) = if text.contains('|') {
            let parts: Vec<&str> = text.split('|').map(str::trim).collect();
            match parts.as_slice() {
                [action, owner, due] => (action.to_string(), owner.to_string(), due.to_string()),
                _ => return Err(bad("not ACTION|OWNER|DUE".to_string())),
            }
        } else {
            let mut rest = text.trim();
            let mut due = String::new();
            // ` by DATE` at the end (a date starts with a digit: "by hand" is text).
            if let Some(at) = rest.rfind(" by ") {
                let date = rest[at + 4..].trim();
                if date.starts_with(|c: char| c.is_ascii_digit()) {
                    due = date.to_string();
                    rest = rest[..at].trim_end();
                }
            }
            let mut owner = String::new();
            if let Some(at) = rest.rfind('@') {
                let who = &rest[at + 1..];
                if !who.is_empty() && !who.contains(char::is_whitespace) {
                    owner = format!("@{who}");
                    rest = rest[..at].trim_end();
                }
            }
            (rest.to_string(), owner, due)
        };
        if action.is_empty() {
            return Err(bad("the action's text is empty".to_string()));
        }
        if !due.is_empty() {
            due.parse::<jiff::civil::Date>()
                .map_err(|e| bad(format!("due date {due:?} is not YYYY-MM-DD ({e})")))?;
        }
        Ok(ActionItem {
            action,
            owner,
            due,
            done: None,
        })
    }

    /// Open and past its due date at `now` (UTC days).
    pub fn overdue(&self, now: jiff::Timestamp) -> bool {
        let today = now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
        self.done.is_none()
            && self
                .due
                .parse::<jiff::civil::Date>()
                .is_ok_and(|due| due < today)
    }

    /// Whether `owner` owns it (`@` and case aside).
    pub fn owned_by(&self, owner: &str) -> bool {
        self.owner
            .trim_start_matches('@')
            .eq_ignore_ascii_case(owner.trim_start_matches('@'))
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
    /// Who acknowledged it (`incident ack --by`, else whoever first updated it).
    #[serde(default)]
    pub acknowledged_by: Option<String>,
    /// The affected service, for the messages (`--service`, else config `service:`).
    #[serde(default)]
    pub service: Option<String>,
    /// When it is expected to be fixed, as said (`--eta`).
    #[serde(default)]
    pub eta: Option<String>,
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
    /// declared, acknowledged, status, note, impact, severity, components, service, eta,
    /// escalated, notice, reminded, notify-failed, resolved, action, collected
    pub kind: String,
    pub text: String,
}

impl Entry {
    /// The severities this entry names, as `declare` and `update` write them: the
    /// declared one (`Incident declared (SEV-1): …`), both sides of a change
    /// (`Severity: SEV-1 → SEV-3`); none for any other entry.
    pub fn severities(&self) -> impl Iterator<Item = &str> {
        let named: Vec<&str> = match self.kind.as_str() {
            "declared" => self
                .text
                .strip_prefix("Incident declared (")
                .and_then(|rest| rest.split_once(')'))
                .map(|(severity, _)| vec![severity])
                .unwrap_or_default(),
            "severity" => self
                .text
                .strip_prefix("Severity: ")
                .map(|change| change.split(" → ").collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        named.into_iter()
    }
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

/// Seconds from `from` to `to`, both RFC 3339 (None when either is missing or unreadable).
pub fn span(from: &str, to: Option<&str>) -> Option<u64> {
    let to = to?.parse::<jiff::Timestamp>().ok()?;
    from.parse::<jiff::Timestamp>().ok()?;
    Some(seconds_between(from, to))
}

/// `30 minutes`, `1 hour`, `1 hour 30 minutes`: for sentences in messages.
pub fn spoken(secs: u64) -> String {
    let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    let parts: Vec<String> = [(days, "day"), (hours, "hour"), (minutes, "minute")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}{}", if n == 1 { "" } else { "s" }))
        .collect();
    if parts.is_empty() {
        "0 minutes".to_string()
    } else {
        parts.join(" ")
    }
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
