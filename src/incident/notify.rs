//! Notification: a webhook (Slack-compatible JSON, `{"text": …}`) with a timeout and
//! retries. The URL usually comes from `${ENV}` and is never printed. The record is always
//! written first, so a dead webhook never loses an incident.

use super::Error;
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

/// Post `message`; an error says what happened on the last attempt, without the URL.
pub fn send(webhook: &Webhook, message: &str) -> Result<(), Error> {
    crate::tls::install_crypto();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Notify(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(post(webhook, message))
}

async fn post(webhook: &Webhook, message: &str) -> Result<(), Error> {
    let client = reqwest::Client::builder()
        .timeout(webhook.timeout.0)
        .build()
        .map_err(|e| Error::Notify(format!("cannot build an HTTP client: {}", e.without_url())))?;
    let body = serde_json::to_vec(&serde_json::json!({ "text": message })).unwrap_or_default();
    let mut last = String::new();
    for attempt in 0..=webhook.retries {
        if attempt > 0 {
            let backoff = std::time::Duration::from_millis(250 << attempt.min(4));
            tokio::time::sleep(backoff).await;
        }
        let request = client
            .post(webhook.url.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone());
        match request.send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                last = format!("the webhook answered {}", response.status());
                if response.status().is_client_error() {
                    break; // a 4xx will not get better by asking again
                }
            }
            Err(e) if e.is_timeout() => {
                last = format!(
                    "the webhook did not answer within {}",
                    humantime::format_duration(webhook.timeout.0)
                );
            }
            Err(e) => last = format!("cannot reach the webhook: {}", e.without_url()),
        }
    }
    Err(Error::Notify(format!(
        "{last} (after {} attempts)",
        webhook.retries + 1
    )))
}
