//! Notification: the incident webhook (`incident.webhook`, Slack-compatible JSON,
//! `{"text": …}`) is a `notify` Slack channel with its own timeout and retries. The URL
//! usually comes from `${ENV}` and is never printed. The record is always written first,
//! so a dead webhook never loses an incident.

use super::Error;
use crate::notify::{Channel, Delivery, Slack};
use crate::values::{Duration, Text};
use serde::{Deserialize, Serialize};

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

/// Post `message`; an error says what happened on the last attempt, without the URL.
pub fn send(webhook: &Webhook, message: &str) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Notify(format!("cannot start the async runtime: {e}")))?;
    let (channel, bound) = webhook.channel();
    let subject = message.lines().next().unwrap_or_default();
    runtime
        .block_on(crate::notify::deliver_text(
            &channel, subject, message, &bound,
        ))
        .map_err(|e| Error::Notify(e.to_string()))
}

/// Post `message` to every `notify:` channel (but PagerDuty) routed for `incident` events
/// of `level`;
/// one line per channel that did not take it (named, never its URL or credentials).
pub fn send_routed(
    notify: &crate::notify::NotifyConfig,
    level: crate::notify::Severity,
    message: &str,
) -> Vec<String> {
    let names = notify.channels_for("incident", level);
    if names.is_empty() {
        return Vec::new();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return vec![format!("cannot start the async runtime: {e}")],
    };
    let subject = message.lines().next().unwrap_or_default();
    let mut failed = Vec::new();
    for name in names {
        // PagerDuty takes problems (from maintain, run and health), not an incident's text.
        let Some(channel) = notify
            .channels
            .get(name)
            .filter(|c| !matches!(c, crate::notify::Channel::Pagerduty(_)))
        else {
            continue;
        };
        let sent = runtime.block_on(crate::notify::deliver_text(
            channel,
            subject,
            message,
            &notify.delivery,
        ));
        if let Err(e) = sent {
            failed.push(format!("notification to channel {name} failed: {e}"));
        }
    }
    failed
}
