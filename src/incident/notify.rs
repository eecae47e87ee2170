//! Notification: the incident webhook (`incident.webhook`, Slack-compatible JSON,
//! `{"text": …}`) is a `notify` Slack channel with its own timeout and retries. The URL
//! usually comes from `${ENV}` and is never printed. The record is always written first,
//! so a dead webhook never loses an incident; a message a channel does not take is kept
//! in `STATE_DIR/undelivered/` like every notification, and the next run delivers it.

use super::{Incident, Voice};
use crate::notify::{
    Channel, Delivery, Failures, NotifyConfig, Outcome, Page, PageAction, PageSeverity, Sent,
    Slack, Target, Written,
};
use crate::values::{Duration, Text};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// A secret wherever it came from: it prints as `***`.
    #[serde(deserialize_with = "crate::values::text::secret")]
    pub url: Text,
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// Further attempts after the first fails (a 5xx, a timeout, no connection).
    #[serde(default = "default_retries")]
    pub retries: u32,
}

fn default_timeout() -> Duration {
    Duration(std::time::Duration::from_secs(5))
}

fn default_retries() -> u32 {
    3
}

impl Webhook {
    /// The webhook as a notification channel, and its delivery bound.
    pub fn channel(&self) -> (Channel, Delivery) {
        let channel = Channel::Slack(Slack {
            url: self.url.clone(),
        });
        let bound = Delivery {
            attempts: self.retries.saturating_add(1),
            backoff: Duration(std::time::Duration::from_millis(500)),
            timeout: self.timeout,
        };
        (channel, bound)
    }
}

/// Where an incident message goes: the incident webhook (named
/// [`INCIDENT_WEBHOOK`](crate::notify::INCIDENT_WEBHOOK) in the queue) and the `notify:`
/// channels routed for `incident` events of `level`; a PagerDuty channel only when the
/// message `pages` (a declaration, an escalation, a resolution).
pub struct Targets {
    /// The channels `notify:` does not name (the webhook), for the queue to resolve.
    pub reserved: Vec<Target>,
    /// Every channel the message goes to, by name.
    pub names: Vec<String>,
}

impl Targets {
    pub fn of(
        webhook: Option<&Webhook>,
        notify: &NotifyConfig,
        level: crate::notify::Severity,
        pages: bool,
    ) -> Targets {
        let reserved = reserved(webhook);
        let mut names: Vec<String> = reserved.iter().map(|t| t.name.clone()).collect();
        for name in notify.channels_for("incident", level) {
            let paging = matches!(notify.channels.get(name), Some(Channel::Pagerduty(_)));
            if pages || !paging {
                names.push(name.to_string());
            }
        }
        Targets { reserved, names }
    }

    /// Deliver what is queued, then `written` to every target, on one runtime (see
    /// [`crate::notify::send_written`]).
    pub fn send(
        &self,
        notify: &NotifyConfig,
        state_dir: &Path,
        written: &Written,
        failures: &mut Failures,
    ) -> Sent {
        match runtime() {
            Ok(runtime) => runtime.block_on(crate::notify::send_written(
                notify,
                &self.reserved,
                state_dir,
                written,
                &self.names,
                failures,
            )),
            Err(e) => Sent {
                lost: vec![e],
                ..Sent::default()
            },
        }
    }
}

/// The channels only incidents know: the webhook, under its reserved name.
fn reserved(webhook: Option<&Webhook>) -> Vec<Target> {
    webhook
        .map(|webhook| {
            let (channel, delivery) = webhook.channel();
            Target {
                name: crate::notify::INCIDENT_WEBHOOK.to_string(),
                channel,
                delivery,
            }
        })
        .into_iter()
        .collect()
}

/// Deliver what is queued, the webhook's messages among them (see
/// [`crate::notify::flush`]).
pub fn flush(
    webhook: Option<&Webhook>,
    notify: &NotifyConfig,
    state_dir: &Path,
    now: jiff::Timestamp,
    failures: &mut Failures,
) -> Outcome {
    let reserved = reserved(webhook);
    match runtime() {
        Ok(runtime) => runtime.block_on(crate::notify::flush(
            notify, &reserved, state_dir, now, failures,
        )),
        Err(e) => Outcome {
            warnings: vec![e],
            ..Outcome::default()
        },
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("notification failed: cannot start the async runtime: {e}"))
}

impl super::Incidents<'_> {
    /// The channels a message about `record` goes to (one that `pages` reaches PagerDuty
    /// too): the incident webhook and the `notify:` channels routed for incidents of the
    /// worst severity it has had (the highest configured severity is `critical`, every
    /// other `warning`), so the channels that heard it at its worst hear how it ends.
    pub(crate) fn targets(&self, record: &Incident, pages: bool) -> Targets {
        let none = NotifyConfig::default();
        let level = match self.config.severities().first() {
            Some(top) if self.ever(record, &top.name) => crate::notify::Severity::Critical,
            _ => crate::notify::Severity::Warning,
        };
        let notify = self.notify.unwrap_or(&none);
        Targets::of(self.config.webhook.as_ref(), notify, level, pages)
    }

    /// Show `message` (`what`: declaration, update, …), then send it to [`Self::targets`]
    /// after what earlier runs left undelivered; each message a channel did not take is
    /// kept in `STATE_DIR/undelivered/` (the next run that notifies delivers it), and is a
    /// warning and a `notify-failed` timeline entry.
    ///
    /// This is the one place an incident message is sent from. How far it got.
    pub(crate) fn announce(
        &self,
        record: &Incident,
        what: &str,
        message: &str,
        page: Option<PageAction>,
        voice: &Voice<'_>,
    ) -> Reach {
        (voice.message)(message);
        let id = record.id.as_str();
        let subject = message.lines().next().unwrap_or_default();
        let written = Written {
            about: id.to_string(),
            what: what.to_string(),
            subject: subject.to_string(),
            text: message.to_string(),
            time: self.now.to_string(),
            page: page.map(|action| self.page(record, subject, action)),
        };
        let targets = self.targets(record, written.page.is_some());
        let none = NotifyConfig::default();
        let sent = targets.send(
            self.notify.unwrap_or(&none),
            &self.state_dir,
            &written,
            &mut self.failures.borrow_mut(),
        );
        sent.outcome
            .warnings
            .iter()
            .for_each(|warning| (voice.warn)(warning));
        for text in sent.outcome.queued.iter().chain(&sent.lost) {
            let recorded = self
                .store
                .lock(id)
                .and_then(|_held| self.store.append(id, &self.entry("notify-failed", text)));
            if let Err(more) = recorded {
                (voice.warn)(&more.to_string());
            }
            (voice.warn)(text);
        }
        if targets.names.is_empty() {
            Reach::Nobody
        } else if !sent.lost.is_empty() {
            Reach::Lost
        } else if !sent.outcome.queued.is_empty() {
            Reach::Kept
        } else {
            Reach::Everyone
        }
    }

    /// Deliver what earlier runs left undelivered (the incident webhook's messages
    /// among them), each failure a warning.
    pub(crate) fn flush(&self, voice: &Voice<'_>) {
        let none = NotifyConfig::default();
        let notify = self.notify.unwrap_or(&none);
        let failures = &mut self.failures.borrow_mut();
        flush(
            self.config.webhook.as_ref(),
            notify,
            &self.state_dir,
            self.now,
            failures,
        )
        .all_warnings()
        .for_each(|warning| (voice.warn)(warning));
    }

    /// Whether `record` has had severity `name`: now, when declared, or before a change
    /// (the timeline's `Incident declared (SEV-1): …` and `Severity: SEV-1 → SEV-3`).
    fn ever(&self, record: &Incident, name: &str) -> bool {
        let is = |text: &str| text.trim().eq_ignore_ascii_case(name);
        is(&record.severity)
            || self
                .store
                .timeline(&record.id)
                .iter()
                .any(|e| e.severities().any(is))
    }

    /// What PagerDuty hears of a message about `record` whose first line is `first`: one
    /// alert per incident (`opsbook-incident-<ID>`), its severity by the incident
    /// severity's rank (the first configured `critical`, then `error`, `warning`, `info`).
    fn page(&self, record: &Incident, first: &str, action: PageAction) -> Page {
        let rank = self
            .config
            .severities()
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(&record.severity));
        let severity = match rank {
            Some(0) => PageSeverity::Critical,
            Some(1) => PageSeverity::Error,
            Some(2) => PageSeverity::Warning,
            _ => PageSeverity::Info,
        };
        let summary = match first.trim() {
            "" => format!("{} {}", record.id, record.title),
            first if first.contains(&record.id) => first.to_string(),
            first => format!("{first}: {} {}", record.id, record.title),
        };
        Page {
            action,
            dedup_key: format!("opsbook-incident-{}", record.id),
            severity,
            summary,
            source: crate::notify::host(),
            component: record.service.clone(),
        }
    }
}

/// How far an incident message got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reach {
    /// No channel is configured: nobody was told.
    Nobody,
    /// Every channel took it.
    Everyone,
    /// A channel did not take it; it is kept in `undelivered/` for the next run.
    Kept,
    /// A channel did not take it and it could not be kept either.
    Lost,
}

/// A recorded change that is told: its audit action, template, and what PagerDuty hears.
#[derive(Clone, Copy)]
pub(crate) enum Told {
    Declare,
    Update,
    Escalate,
    Resolve,
}

impl Told {
    pub(super) fn action(self) -> &'static str {
        match self {
            Told::Declare => "incident.declare",
            Told::Update => "incident.update",
            Told::Escalate => "incident.escalate",
            Told::Resolve => "incident.resolve",
        }
    }

    pub(super) fn template(self) -> &'static str {
        match self {
            Told::Declare => "declaration",
            Told::Escalate => "escalation",
            Told::Update | Told::Resolve => "update",
        }
    }

    /// What the message is, as the queue and its warnings name it.
    pub(super) fn what(self) -> &'static str {
        match self {
            Told::Declare => "declaration",
            Told::Update => "update",
            Told::Escalate => "escalation",
            Told::Resolve => "resolution",
        }
    }

    /// A declaration and an escalation open (or renew) the incident's PagerDuty alert, a
    /// resolution closes it; an update is not paged.
    pub(super) fn page(self) -> Option<PageAction> {
        match self {
            Told::Declare | Told::Escalate => Some(PageAction::Trigger),
            Told::Resolve => Some(PageAction::Resolve),
            Told::Update => None,
        }
    }
}
