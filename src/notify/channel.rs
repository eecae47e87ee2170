//! The channels and how each takes a message: a Slack-compatible webhook (`{"text": …}`),
//! a generic JSON webhook (the whole message as JSON), e-mail over SMTP (lettre, in
//! `email`), and PagerDuty's Events API v2. URLs, routing keys and passwords are
//! secrets: no error text holds them.

use super::{Delivery, Error, Event, Message};
use crate::values::Text;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod email;
pub use email::{Email, Security};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Channel {
    Slack(Slack),
    Webhook(Webhook),
    Email(Email),
    Pagerduty(PagerDuty),
}

/// A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat): `{"text": …}`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Slack {
    #[serde(deserialize_with = "crate::values::text::secret")]
    pub url: Text,
}

/// A generic JSON POST of the whole message.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    #[serde(deserialize_with = "crate::values::text::secret")]
    pub url: Text,
    /// Extra request headers; credentials among them print as `***`.
    #[serde(default, deserialize_with = "crate::values::text::headers")]
    pub headers: BTreeMap<String, Text>,
}

/// PagerDuty Events API v2.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDuty {
    #[serde(deserialize_with = "crate::values::text::secret")]
    pub routing_key: Text,
    /// The events endpoint (PagerDuty's own unless set).
    #[serde(default = "pagerduty_url")]
    pub url: Text,
}

impl Channel {
    /// What can be known wrong before anything is sent: a URL that is not http(s), an
    /// empty PagerDuty routing key, an e-mail password sent in the clear to another
    /// machine or a `ca_file` without a usable CA certificate. A value from an unset
    /// `${VAR}` (empty) is left for the send to report.
    pub fn check(&self) -> Result<(), String> {
        let web = |url: &Text| {
            let url = url.as_str();
            if url.is_empty() || url.starts_with("http://") || url.starts_with("https://") {
                Ok(())
            } else {
                Err("`url` must start with http:// or https://".to_string())
            }
        };
        match self {
            Channel::Slack(s) => web(&s.url),
            Channel::Webhook(w) => web(&w.url),
            Channel::Pagerduty(p) => {
                web(&p.url)?;
                if p.routing_key.as_str().trim().is_empty() {
                    return Err("`routing_key` is empty".to_string());
                }
                Ok(())
            }
            Channel::Email(e) => e.check(),
        }
    }
}

fn pagerduty_url() -> Text {
    Text::plain("https://events.pagerduty.com/v2/enqueue")
}

/// Deliver `message` to `channel` within `bound`: the error says what happened on the last
/// attempt, never the URL or a credential.
pub async fn deliver(channel: &Channel, message: &Message, bound: &Delivery) -> Result<(), Error> {
    retry(channel, Body::Message(message), bound).await
}

/// Deliver written text (an incident's message) within `bound`: Slack gets it as `text`,
/// a webhook as `{"subject", "text"}`, e-mail as the body; PagerDuty gets its page, and
/// takes no text without one.
pub(super) async fn deliver_written(
    channel: &Channel,
    written: &super::direct::Written,
    bound: &Delivery,
) -> Result<(), Error> {
    let body = Body::Text {
        subject: &written.subject,
        text: &written.text,
        page: written
            .page
            .as_ref()
            .map(|page| (page, written.about.as_str())),
    };
    retry(channel, body, bound).await
}

/// What is sent: a problem's message, or free text (with what PagerDuty hears of it, and
/// whom it is about).
#[derive(Clone, Copy)]
enum Body<'a> {
    Message(&'a Message),
    Text {
        subject: &'a str,
        text: &'a str,
        page: Option<(&'a super::direct::Page, &'a str)>,
    },
}

impl Body<'_> {
    fn subject(&self) -> String {
        match self {
            Body::Message(m) => m.subject(),
            Body::Text { subject, .. } => subject.to_string(),
        }
    }

    fn text(&self) -> String {
        match self {
            Body::Message(m) => m.text(),
            Body::Text { text, .. } => text.to_string(),
        }
    }

    fn json(&self) -> serde_json::Value {
        let mut body = match self {
            Body::Message(m) => serde_json::to_value(m).unwrap_or_default(),
            Body::Text { subject, .. } => serde_json::json!({ "subject": subject }),
        };
        if let Some(object) = body.as_object_mut() {
            object.insert("text".into(), self.text().into());
        }
        body
    }
}

async fn retry(channel: &Channel, body: Body<'_>, bound: &Delivery) -> Result<(), Error> {
    crate::tls::install_crypto();
    let mut last = String::new();
    let mut tried = 0;
    let mut refused = false;
    for attempt in 0..bound.attempts {
        tried += 1;
        if attempt > 0 {
            let wait = bound.backoff.0.saturating_mul(1 << (attempt - 1).min(6));
            tokio::time::sleep(wait).await;
        }
        match once(channel, body, bound).await {
            Ok(()) => return Ok(()),
            Err(Try::Final(e)) => {
                last = e;
                refused = true;
                break;
            }
            Err(Try::Again(e)) => last = e,
        }
    }
    Err(Error::Delivery {
        message: format!(
            "{} (after {})",
            crate::redact::mask(&last),
            crate::plural::count(tried, "attempt", "attempts")
        ),
        refused,
    })
}

/// A failed attempt: worth another (a 5xx, a timeout, no connection) or not (a 4xx, a bad
/// address).
enum Try {
    Again(String),
    Final(String),
}

async fn once(channel: &Channel, body: Body<'_>, bound: &Delivery) -> Result<(), Try> {
    match (channel, body) {
        (Channel::Slack(slack), _) => {
            let json = serde_json::json!({ "text": body.text() });
            post("the webhook", &slack.url, &BTreeMap::new(), &json, bound).await
        }
        (Channel::Webhook(hook), _) => {
            post("the webhook", &hook.url, &hook.headers, &body.json(), bound).await
        }
        (Channel::Pagerduty(pd), Body::Message(message)) => {
            let json = pagerduty(pd, message);
            post("PagerDuty", &pd.url, &BTreeMap::new(), &json, bound).await
        }
        (
            Channel::Pagerduty(pd),
            Body::Text {
                text,
                page: Some((page, about)),
                ..
            },
        ) => {
            let json = super::direct::pagerduty(pd, page, about, text);
            post("PagerDuty", &pd.url, &BTreeMap::new(), &json, bound).await
        }
        (Channel::Pagerduty(_), Body::Text { page: None, .. }) => Err(Try::Final(
            "a PagerDuty channel takes problems, not free text".to_string(),
        )),
        (Channel::Email(email), _) => email::mail(email, body, bound).await,
    }
}

/// The Events API v2 body: a trigger (with its payload) or a resolve, the same
/// `dedup_key` for both.
fn pagerduty(pd: &PagerDuty, message: &Message) -> serde_json::Value {
    let action = if message.event == Event::Recovered {
        "resolve"
    } else {
        "trigger"
    };
    let mut body = serde_json::json!({
        "routing_key": pd.routing_key.as_str(),
        "event_action": action,
        "dedup_key": message.dedup_key,
    });
    if action == "trigger" {
        body["payload"] = serde_json::json!({
            "summary": message.text().lines().next().unwrap_or_default(),
            "severity": message.severity.as_str(),
            "source": message.host,
            "component": message.what,
            "group": message.scope,
            "custom_details": { "detail": message.detail, "rerun": message.rerun, "since": message.since },
        });
    }
    body
}

async fn post(
    who: &str,
    url: &Text,
    headers: &BTreeMap<String, Text>,
    body: &serde_json::Value,
    bound: &Delivery,
) -> Result<(), Try> {
    let client = reqwest::Client::builder()
        .timeout(bound.timeout.0)
        .build()
        .map_err(|e| Try::Final(format!("cannot build an HTTP client: {}", e.without_url())))?;
    let mut request = client
        .post(url.as_str())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(body).unwrap_or_default());
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => {
            let status = response.status();
            let said = format!("{who} answered {status}");
            if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
                Err(Try::Final(said)) // a 4xx will not get better by asking again
            } else {
                Err(Try::Again(said))
            }
        }
        Err(e) if e.is_timeout() => Err(Try::Again(format!(
            "{who} did not answer within {}",
            humantime::format_duration(bound.timeout.0)
        ))),
        Err(e) if e.is_builder() => {
            Err(Try::Final(format!("the URL {} is not usable", url.shown())))
        }
        Err(e) => Err(Try::Again(format!("cannot reach {who}: {}", causes(e)))),
    }
}

/// The error and its causes (`error sending request: … tcp connect error: Connection
/// refused`), without the URL.
pub(super) fn causes(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(inner) = cause {
        let said = inner.to_string();
        if !text.ends_with(&said) {
            text = format!("{text}: {said}");
        }
        cause = inner.source();
    }
    crate::redact::mask(&text).into_owned()
}
