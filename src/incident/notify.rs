//! Notification: the incident webhook (`incident.webhook`, Slack-compatible JSON,
//! `{"text": …}`) is a `notify` Slack channel with its own timeout and retries. The URL
//! usually comes from `${ENV}` and is never printed. The record is always written first,
//! so a dead webhook never loses an incident; a message a channel does not take is kept
//! in `STATE_DIR/undelivered/` like every notification, and the next run delivers it.

use crate::notify::{Channel, Delivery, NotifyConfig, Outcome, Sent, Slack, Target, Written};
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
    pub fn send(&self, notify: &NotifyConfig, state_dir: &Path, written: &Written) -> Sent {
        match runtime() {
            Ok(runtime) => runtime.block_on(crate::notify::send_written(
                notify,
                &self.reserved,
                state_dir,
                written,
                &self.names,
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
pub fn flush(webhook: Option<&Webhook>, notify: &NotifyConfig, state_dir: &Path) -> Outcome {
    let reserved = reserved(webhook);
    match runtime() {
        Ok(runtime) => runtime.block_on(crate::notify::flush(notify, &reserved, state_dir)),
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
