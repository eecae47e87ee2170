//! Messages written for people and sent as they are (an incident's declaration, update,
//! escalation, resolution, reminder), through the same queue as every notification: each
//! is written to `STATE_DIR/undelivered/` before it is sent and removed once a channel took
//! it, under the notification lock, after what earlier calls left there. A channel only
//! the caller knows (the incident webhook, which is not a `notify:` channel) has a reserved
//! name in the queue; a `settle` that does not know it keeps its messages for the caller.

use super::queue::{Held, Queue, Undelivered};
use super::state;
use super::{Channel, Delivery, Error, Message, NotifyConfig, Outcome, PagerDuty};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The incident webhook (`incident.webhook`) as named in `undelivered/` records. No
/// `notify:` channel can have this name (those are letters, digits, `.`, `_` and `-`).
pub const INCIDENT_WEBHOOK: &str = "@incident-webhook";

/// What an undelivered record holds: a problem's message (what `settle` queues, and all
/// that older records hold) or written text.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Body {
    Message(Message),
    Text(Written),
}

impl Body {
    /// `problem "Disk usage" to ops-chat`, `declaration of INC-20260110-1 to ops-chat`.
    pub(super) fn label(&self, channel: &str) -> String {
        match self {
            Body::Message(m) => format!("{} {:?} to {channel}", m.event.as_str(), m.what),
            Body::Text(w) => format!("{} of {} to {channel}", w.what, w.about),
        }
    }

    /// What makes the record's name unique beside the time and the process.
    pub(super) fn seed(&self, channel: &str) -> String {
        match self {
            Body::Message(m) => format!("{channel}\n{}\n{}\n{}", m.scope, m.key, m.event.as_str()),
            Body::Text(w) => format!("{channel}\n{}\n{}", w.about, w.what),
        }
    }

    /// What it is about, for a newer message to supersede a refused one: a problem (its
    /// scope and key), an incident (its id).
    pub(super) fn subject_key(&self) -> String {
        match self {
            Body::Message(m) => format!("{}\n{}", m.scope, m.key),
            Body::Text(w) => format!("incident\n{}", w.about),
        }
    }

    /// When it was written (RFC 3339): the record's name starts with it.
    pub(super) fn time(&self) -> &str {
        match self {
            Body::Message(m) => &m.time,
            Body::Text(w) => &w.time,
        }
    }

    pub(super) async fn deliver(&self, channel: &Channel, bound: &Delivery) -> Result<(), Error> {
        match self {
            Body::Message(m) => super::deliver(channel, m, bound).await,
            Body::Text(w) => super::channel::deliver_written(channel, w, bound).await,
        }
    }
}

/// A message written for people: every channel gets its text (Slack as `text`, a webhook
/// as `{"subject", "text"}`, e-mail as subject and body); a PagerDuty channel gets the
/// event in `page`, and is not sent one without it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Written {
    /// Whom it is about: an incident's id.
    pub about: String,
    /// Which message: `declaration`, `update`, `escalation`, `reminder`.
    pub what: String,
    pub subject: String,
    pub text: String,
    /// When it was written (RFC 3339).
    pub time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<Page>,
}

/// A PagerDuty Events v2 event: a trigger opens (or updates) the alert of `dedup_key`, a
/// resolve closes it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Page {
    pub action: PageAction,
    /// The same for every event of one incident (`opsbook-incident-<ID>`).
    pub dedup_key: String,
    pub severity: PageSeverity,
    /// One line naming what happened.
    pub summary: String,
    /// The host it was sent from.
    pub source: String,
    /// The affected service, when known.
    #[serde(default)]
    pub component: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PageAction {
    Trigger,
    Resolve,
}

/// PagerDuty's four severities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PageSeverity {
    Critical,
    Error,
    Warning,
    Info,
}

/// PagerDuty's summary limit, in characters.
const SUMMARY_LIMIT: usize = 1024;

/// The Events API v2 body for `page`: a trigger with its payload (the text as a custom
/// detail), or a resolve.
pub(super) fn pagerduty(pd: &PagerDuty, page: &Page, about: &str, text: &str) -> serde_json::Value {
    let mut body = serde_json::json!({
        "routing_key": pd.routing_key.as_str(),
        "event_action": page.action,
        "dedup_key": page.dedup_key,
    });
    if page.action == PageAction::Trigger {
        let summary: String = page.summary.chars().take(SUMMARY_LIMIT).collect();
        let mut payload = serde_json::json!({
            "summary": summary,
            "severity": page.severity,
            "source": page.source,
            "group": "incident",
            "custom_details": { "incident": about, "text": text },
        });
        if let Some(component) = &page.component {
            payload["component"] = component.as_str().into();
        }
        body["payload"] = payload;
    }
    body
}

/// A channel a caller knows that `notify:` does not name (the incident webhook), with its
/// own delivery bound.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub channel: Channel,
    pub delivery: Delivery,
}

/// The channels that did not take a message in this run: one failed delivery bound per
/// channel and run, however many calls it makes (hand the same one to each).
#[derive(Default)]
pub struct Failures(Held);

/// What [`send_written`] did: the `settle` outcome, and the messages neither taken nor kept.
#[derive(Debug, Default)]
pub struct Sent {
    pub outcome: Outcome,
    /// A message the queue could not hold (a full disk) that the channel did not take
    /// either: said here, so the caller keeps its own note of it.
    pub lost: Vec<String>,
}

/// A message for one channel: queued (its file and record), or not (the channel, and why).
type Queued<'a> = Result<(PathBuf, Undelivered), (&'a str, String)>;

/// Deliver what earlier calls left in `undelivered/`, oldest first, then `written` to each
/// channel in `to` (a `notify:` channel, or one of `reserved`), under the notification lock
/// (`STATE_DIR/notify/.lock`). Each message is queued before it is sent and removed once
/// taken; one not taken within its bound stays queued for the next call that delivers
/// anything (`settle` included). A queue that cannot be written does not stop the send.
pub async fn send_written(
    config: &NotifyConfig,
    reserved: &[Target],
    state_dir: &Path,
    written: &Written,
    to: &[String],
    failures: &mut Failures,
) -> Sent {
    let mut sent = Sent::default();
    if to.is_empty() && !state_dir.join("undelivered").is_dir() {
        return sent; // nothing to send, nothing kept from before
    }
    let known = Known {
        config,
        reserved: Some(reserved),
    };
    // Without the lock a message is sent unqueued: queued, a `settle` at the same time
    // could send it too.
    let lock = state::wait_lock(&state_dir.join("notify")).await;
    let outcome = &mut sent.outcome;
    let held = &mut failures.0;
    // The caller's clock, as the message says it (what a retry's time is measured in).
    let now = written
        .time
        .parse::<jiff::Timestamp>()
        .unwrap_or_else(|_| jiff::Timestamp::now());
    // The queue, or why there is none (the lock could not be taken).
    let mut queue = match &lock {
        Ok(_) => {
            let mut queue = Queue::open(state_dir);
            redeliver(&mut queue, known, now, held, outcome).await;
            Ok(queue)
        }
        Err(e) => {
            let why = e.to_string();
            let said = format!("{why}: undelivered messages wait for the next run");
            outcome.warnings.push(said);
            Err(why)
        }
    };
    let body = Body::Text(written.clone());
    let mut pending: Vec<Queued<'_>> = Vec::new();
    for name in to {
        let queued = match &mut queue {
            Ok(queue) => queue
                .add(name, body.clone(), "not sent yet")
                .map_err(|e| e.to_string()),
            Err(why) => Err(why.clone()),
        };
        pending.push(queued.map_err(|e| (name.as_str(), e)));
    }
    state::stop_at("notify-before-send");
    for queued in pending {
        match queued {
            Ok((path, record)) => {
                let result = super::queue::attempt(known, &path, record, true, now, held, outcome);
                if let Err(e) = result.await {
                    outcome.warnings.push(e.to_string());
                }
            }
            Err((name, why)) => {
                let said = unqueued(known, &body, name, &why).await;
                match said {
                    Ok(what) => outcome.sent.push(what),
                    Err(said) => sent.lost.push(said),
                }
            }
        }
    }
    held.say(&mut sent.outcome);
    sent
}

/// Deliver what earlier calls left in `undelivered/`, oldest first, under the notification
/// lock: what a caller with nothing new to send (`incident remind` with nothing due) does
/// so that nothing waits for the next message.
pub async fn flush(
    config: &NotifyConfig,
    reserved: &[Target],
    state_dir: &Path,
    now: jiff::Timestamp,
    failures: &mut Failures,
) -> Outcome {
    let mut outcome = Outcome::default();
    if !state_dir.join("undelivered").is_dir() {
        return outcome;
    }
    let known = Known {
        config,
        reserved: Some(reserved),
    };
    let held = &mut failures.0;
    match state::wait_lock(&state_dir.join("notify")).await {
        Ok(_held) => {
            let mut queue = Queue::open(state_dir);
            redeliver(&mut queue, known, now, held, &mut outcome).await;
        }
        Err(e) => outcome.warnings.push(e.to_string()),
    }
    held.say(&mut outcome);
    outcome
}

async fn redeliver(
    queue: &mut Queue,
    known: Known<'_>,
    now: jiff::Timestamp,
    held: &mut Held,
    outcome: &mut Outcome,
) {
    if let Err(e) = queue.redeliver(known, now, held, outcome).await {
        outcome.warnings.push(e.to_string());
    }
}

/// `body` sent to `name` straight, when its queue file could not be written (`why`): the
/// label when taken, else what was lost (also in the audit log).
async fn unqueued(known: Known<'_>, body: &Body, name: &str, why: &str) -> Result<String, String> {
    let what = body.label(name);
    let Some((channel, bound)) = known.resolve(name) else {
        return Err(format!("notification {what}: no such channel"));
    };
    match body.deliver(channel, bound).await {
        Ok(()) => {
            crate::logging::audit::record("notify.sent", "ok", Some(&what));
            Ok(what)
        }
        Err(e) => {
            let said =
                format!("notification {what} failed: {e}; NOT kept (cannot queue it: {why})");
            crate::logging::audit::record("notify.sent", "failed", Some(&said));
            Err(said)
        }
    }
}

/// The channels a call can deliver queued messages to: `notify:`'s, and the ones only its
/// caller knows (`reserved`; `None`: a caller that knows of none, as `settle`, which keeps
/// their messages without a word).
#[derive(Clone, Copy)]
pub(super) struct Known<'a> {
    pub(super) config: &'a NotifyConfig,
    pub(super) reserved: Option<&'a [Target]>,
}

impl<'a> Known<'a> {
    /// The `notify:` channels only.
    pub(super) fn notify(config: &'a NotifyConfig) -> Self {
        Known {
            config,
            reserved: None,
        }
    }

    /// The channel named `name` and its bound: a `notify:` channel, else a reserved one.
    pub(super) fn resolve(&self, name: &str) -> Option<(&'a Channel, &'a Delivery)> {
        let config = self.config;
        config
            .channels
            .get(name)
            .map(|c| (c, &config.delivery))
            .or_else(|| {
                self.reserved?
                    .iter()
                    .find(|t| t.name == name)
                    .map(|t| (&t.channel, &t.delivery))
            })
    }

    /// What to say of a queued record for channel `name` that cannot be delivered here:
    /// nothing for the incident webhook when the caller knows of no reserved channel
    /// (`settle` keeps its messages for the next incident command), else that it is kept.
    pub(super) fn unresolved(&self, name: &str, path: &Path) -> Option<String> {
        if name == INCIDENT_WEBHOOK {
            return self.reserved.map(|_| {
                format!(
                    "{}: the incident webhook (incident.webhook) is not configured; the message is kept",
                    path.display()
                )
            });
        }
        Some(format!(
            "{}: channel {name:?} is no longer configured; the message is kept",
            path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_record_with_a_message_still_reads_and_text_round_trips() {
        let old = r#"{"id":"x","channel":"chat","message":{"event":"problem","scope":"maintain:daily","key":"Disk","what":"Disk","severity":"critical","detail":"95%","host":"h","rerun":"r","time":"2026-03-02T03:00:00Z","since":"2026-03-02T03:00:00Z","dedup_key":"k"},"error":"e"}"#;
        let record: Undelivered = serde_json::from_str(old).expect("an old record reads");
        assert!(matches!(&record.body, Body::Message(m) if m.what == "Disk"));
        let written = Written {
            about: "INC-20260110-1".into(),
            what: "declaration".into(),
            subject: "s".into(),
            text: "t".into(),
            time: "2026-01-10T10:00:00Z".into(),
            page: None,
        };
        let record = Undelivered {
            id: "y".into(),
            channel: INCIDENT_WEBHOOK.into(),
            body: Body::Text(written),
            error: String::new(),
            tries: 0,
            next_try: None,
            tried_at: None,
            refused: false,
        };
        let json = serde_json::to_string(&record).expect("serializes");
        assert!(
            json.contains(r#""text":{"about":"INC-20260110-1""#),
            "{json}"
        );
        let back: Undelivered = serde_json::from_str(&json).expect("reads back");
        assert!(matches!(&back.body, Body::Text(w) if w.what == "declaration"));
        assert!(
            serde_json::from_str::<Undelivered>(r#"{"id":"z","channel":"c","error":""}"#).is_err()
        );
    }

    #[test]
    fn the_incident_webhook_is_kept_quietly_by_a_settle_and_said_by_an_incident_command() {
        let path = Path::new("state/undelivered/x.json");
        let config = NotifyConfig::default();
        let settle = Known::notify(&config);
        assert_eq!(settle.unresolved(INCIDENT_WEBHOOK, path), None);
        let incident = Known {
            config: &config,
            reserved: Some(&[]),
        };
        let said = incident.unresolved(INCIDENT_WEBHOOK, path).expect("said");
        assert!(said.contains("incident.webhook"), "{said}");
        let said = settle.unresolved("chat", path).expect("said");
        assert!(said.contains("no longer configured"), "{said}");
    }
}
