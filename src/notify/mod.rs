//! Notifications (config `notify:`): named channels (a Slack-compatible webhook, a generic
//! JSON webhook, e-mail over SMTP, PagerDuty's Events API v2), routes that pick channels
//! by what happened and how bad it is, and [`settle`], the one entry point every caller
//! (`maintain run`, `run`, health, incidents) hands what is failing now in its scope.
//!
//! `settle` compares the problems with the ones stored for the scope in
//! `STATE_DIR/notify/` and sends one message when a problem starts, one when it
//! recovers, and none while it stays broken (unless `repeat:` has passed since the last
//! one). A channel that does not take a message after the bounded retries has it written
//! to `STATE_DIR/undelivered/<id>.json` and to the audit log; the next `settle`, whoever
//! calls it, delivers those first. Cron-monitor pings live in [`ping`].

mod channel;
mod config;
mod direct;
pub mod ping;
mod queue;
mod state;

pub use channel::{Channel, Email, PagerDuty, Security, Slack, Webhook, deliver};
pub use config::{Delivery, EventKind, NotifyConfig, Route};
pub use direct::{
    Failures, INCIDENT_WEBHOOK, Page, PageAction, PageSeverity, Sent, Target, Written, flush,
    send_written,
};
pub use state::{open_in, open_scopes, record, retry, settle};

use serde::{Deserialize, Serialize};

/// How bad a problem is, for routes' `min_severity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// A step's status as a problem's severity: `None` for ok and skipped.
    pub fn of(status: crate::model::Status) -> Option<Severity> {
        use crate::model::Status;
        match status {
            Status::Ok | Status::Skipped => None,
            Status::Warning => Some(Severity::Warning),
            Status::Critical | Status::Unknown => Some(Severity::Critical),
        }
    }
}

/// Something failing now in a scope.
#[derive(Clone, Debug)]
pub struct Problem {
    /// Stable across runs: the same problem has the same key (a step's name).
    pub key: String,
    /// What failed, as a person names it (a step's name).
    pub what: String,
    pub severity: Severity,
    /// The reading and the limit (a step's message).
    pub detail: String,
}

impl Problem {
    /// The steps of a report that did not run (skipped): not known to be better.
    pub fn unseen_in(report: &crate::model::Report) -> Vec<String> {
        report
            .results
            .iter()
            .filter(|r| r.status == crate::model::Status::Skipped)
            .map(|r| r.name.clone())
            .collect()
    }

    /// Every step of a report that did not end ok (or skipped), keyed by its name.
    pub fn from_report(report: &crate::model::Report) -> Vec<Problem> {
        report
            .results
            .iter()
            .filter_map(|r| {
                Severity::of(r.status).map(|severity| Problem {
                    key: r.name.clone(),
                    what: r.name.clone(),
                    severity,
                    detail: r.message.clone(),
                })
            })
            .collect()
    }
}

/// Where problems come from: `maintain:daily`, `run:deploy`, `health`; the part before
/// `:` is the kind routes match (`maintain`, `run`, `health`, `incident`).
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub name: &'a str,
    /// The command that reruns it (`opsbook maintain run daily`), said in every message.
    pub rerun: &'a str,
    /// Keys not read this time (skipped steps): an open problem among them stays open.
    pub unseen: &'a [String],
}

impl Scope<'_> {
    pub fn kind(&self) -> &str {
        self.name.split(':').next().unwrap_or(self.name)
    }
}

/// What changed, as the message says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// Started failing.
    Problem,
    /// Still failing after `repeat`.
    Reminder,
    /// Failing before, not now.
    Recovered,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Problem => "problem",
            Event::Reminder => "reminder",
            Event::Recovered => "recovered",
        }
    }
}

/// One message, the same for every channel (each renders it its own way); stored as is
/// in `undelivered/` when a channel does not take it. Secrets are masked before it is
/// built.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Message {
    pub event: Event,
    pub scope: String,
    pub key: String,
    pub what: String,
    pub severity: Severity,
    pub detail: String,
    pub host: String,
    pub rerun: String,
    /// When this was noticed (RFC 3339).
    pub time: String,
    /// When the problem started.
    pub since: String,
    /// PagerDuty's `dedup_key`: the same for a problem's trigger and its resolve.
    pub dedup_key: String,
}

impl Message {
    /// `[opsbook] PROBLEM maintain:daily on db1: Disk usage`.
    pub fn subject(&self) -> String {
        let word = match self.event {
            Event::Problem => "PROBLEM",
            Event::Reminder => "STILL FAILING",
            Event::Recovered => "RECOVERED",
        };
        format!(
            "[opsbook] {word} {} on {}: {}",
            self.scope, self.host, self.what
        )
    }

    /// The message text: what failed, the reading and the limit, the host, the command to
    /// rerun. A recovery names the last failing reading as such, never as a current one.
    pub fn text(&self) -> String {
        let first = match self.event {
            Event::Problem => format!(
                "{} failed ({}) in {} on {}: {}",
                self.what,
                self.severity.as_str(),
                self.scope,
                self.host,
                self.detail
            ),
            Event::Reminder => format!(
                "{} still failing ({}, since {}) in {} on {}: {}",
                self.what,
                self.severity.as_str(),
                self.since,
                self.scope,
                self.host,
                self.detail
            ),
            // The detail is the reading when it last failed, not a current one.
            Event::Recovered if self.detail.is_empty() => format!(
                "{} recovered in {} on {} (failing since {})",
                self.what, self.scope, self.host, self.since
            ),
            Event::Recovered => format!(
                "{} recovered in {} on {} (failing since {}; last failure: {})",
                self.what, self.scope, self.host, self.since, self.detail
            ),
        };
        format!("{first}\nRerun: {}", self.rerun)
    }
}

/// What a `settle` did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `problem "Disk usage" → ops-slack`, one per message a channel took.
    pub sent: Vec<String>,
    /// Messages left in `undelivered/` by this call, said as warnings.
    pub queued: Vec<String>,
    /// Anything else worth saying (an undelivered message for a channel no longer
    /// configured).
    pub warnings: Vec<String>,
}

impl Outcome {
    /// Every warning the caller should show: the queued messages and the rest.
    pub fn all_warnings(&self) -> impl Iterator<Item = &String> {
        self.queued.iter().chain(self.warnings.iter())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A state or undelivered file could not be read or written; the message names it.
    #[error(transparent)]
    File(#[from] crate::fsutil::Error),
    #[error(transparent)]
    Lock(#[from] crate::lock::Error),
    #[error("{path}: {problem}")]
    Corrupt { path: String, problem: String },
    /// A channel did not take a message (the text never holds the URL or a credential);
    /// `refused` when it answered no (a 4xx, a login, a certificate): not a channel that is
    /// down, so its other messages are still tried.
    #[error("{message}")]
    Delivery { message: String, refused: bool },
}

impl Error {
    /// The channel answered and refused the message (see [`Error::Delivery`]).
    pub fn is_refusal(&self) -> bool {
        matches!(self, Error::Delivery { refused: true, .. })
    }

    pub fn kind(&self) -> crate::error::Kind {
        match self {
            Error::File(e) => crate::error::kind_in(e),
            Error::Lock(e) => crate::error::kind_in(e),
            _ => crate::error::Kind::Failure,
        }
    }
}

/// This machine's name, as messages say it.
pub fn host() -> String {
    sysinfo::System::host_name().unwrap_or_else(|_| "unknown".to_string())
}
