//! Notification: the incident webhook (`incident.webhook`, Slack-compatible JSON,
//! `{"text": …}`) is a `notify` Slack channel with its own timeout and retries. The URL
//! usually comes from `${ENV}` and is never printed. The record is always written first,
//! so a dead webhook never loses an incident.

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

/// Post `message` to the incident webhook and to every `notify:` channel (but PagerDuty,
/// which takes problems, not an incident's text) routed for `incident` events of `level`,
/// on one runtime; one line per target that did not take it, saying what happened on the
/// last attempt and never a URL or a credential.
pub fn send(
    webhook: Option<&Webhook>,
    routed: Option<(&crate::notify::NotifyConfig, crate::notify::Severity)>,
    message: &str,
) -> Vec<String> {
    let mut targets: Vec<(String, Channel, Delivery)> = Vec::new();
    if let Some(webhook) = webhook {
        let (channel, bound) = webhook.channel();
        targets.push(("notification".to_string(), channel, bound));
    }
    if let Some((notify, level)) = routed {
        for name in notify.channels_for("incident", level) {
            if let Some(channel) = notify
                .channels
                .get(name)
                .filter(|c| !matches!(c, crate::notify::Channel::Pagerduty(_)))
            {
                let label = format!("notification to channel {name}");
                targets.push((label, channel.clone(), notify.delivery.clone()));
            }
        }
    }
    if targets.is_empty() {
        return Vec::new();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return vec![format!(
                "notification failed: cannot start the async runtime: {e}"
            )];
        }
    };
    let subject = message.lines().next().unwrap_or_default();
    targets
        .iter()
        .filter_map(|(label, channel, bound)| {
            runtime
                .block_on(crate::notify::deliver_text(
                    channel, subject, message, bound,
                ))
                .err()
                .map(|e| format!("{label} failed: {e}"))
        })
        .collect()
}
