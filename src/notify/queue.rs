//! The undelivered queue, `STATE_DIR/undelivered/`: one file per message a channel has not
//! taken yet, written before the message is sent and removed once a channel took it, so a
//! run killed anywhere sends a message twice at worst, never not at all. Only touched
//! under the notification lock (`STATE_DIR/notify/.lock`).
//!
//! Files are named `<sequence>-<channel>-<hash>.json`: the sequence keeps the order they
//! were queued in whatever the clock does, the channel lets a run pass over the messages of
//! a channel that is waiting without reading them. A message not taken is tried again by a
//! later call once its retry is due (the channel's backoff, doubling with each failed try,
//! at most [`MAX_RETRY`]); while a channel has an older message waiting (due later, or not
//! taken in this run), its newer ones wait behind it, so they never arrive out of order and
//! a dead channel costs a run one delivery bound however long its queue. A channel that
//! refuses a message (a 4xx, a login, a certificate) holds up only that message, which is
//! dropped once a newer message about the same thing (the same problem, the same incident)
//! reached the channel: it never lands after what superseded it.

use super::direct::{Body, Known};
use super::{Error, Outcome};
use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The longest a queued message waits between tries (and how far ahead of the clock a
/// retry time may be before it is taken as due: a clock set back never holds messages).
pub const MAX_RETRY: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// A message a channel did not take, kept until a later call delivers it.
#[derive(Debug, Deserialize, Serialize)]
pub(super) struct Undelivered {
    pub(super) id: String,
    pub(super) channel: String,
    /// `"message": {…}` (a problem's) or `"text": {…}` (written text).
    #[serde(flatten)]
    pub(super) body: Body,
    /// The last attempt's error (no URL, no credential in it).
    pub(super) error: String,
    /// Calls that tried it and failed.
    #[serde(default)]
    pub(super) tries: u32,
    /// Not tried again before this time (RFC 3339); none: at once.
    #[serde(default)]
    pub(super) next_try: Option<String>,
    /// When it was last tried (RFC 3339): a clock now before it was set back.
    #[serde(default)]
    pub(super) tried_at: Option<String>,
    /// The channel answered and refused it (a 4xx, a login, a certificate): it holds up
    /// no other message.
    #[serde(default)]
    pub(super) refused: bool,
}

/// Why a channel's messages wait in this run, and how many were passed over.
#[derive(Clone, Copy, Debug)]
struct Hold {
    /// The channel did not take a message in this run (else: an older message's retry is
    /// not due yet).
    failed: bool,
    kept: usize,
}

/// The channels whose messages wait behind an older one in this run: one failed delivery
/// bound per channel and run, however many calls the run makes (hand the same one to each).
#[derive(Debug, Default)]
pub(super) struct Held {
    channels: BTreeMap<String, Hold>,
    /// Refused messages seen in this run, by channel and subject: dropped when a newer
    /// message about the same subject reaches the channel.
    refused: Vec<(String, String, PathBuf)>,
}

impl Held {
    /// Say what was passed over after a failure so far (messages waiting for a retry not
    /// yet due are not news); the channels stay held.
    pub(super) fn say(&mut self, outcome: &mut Outcome) {
        for (channel, hold) in self.channels.iter_mut() {
            if hold.failed && hold.kept > 0 {
                outcome.warnings.push(format!(
                    "{} for channel {channel} kept untried for the next run (it did not take the one before)",
                    crate::plural::count(hold.kept, "more notification", "more notifications")
                ));
            }
            hold.kept = 0;
        }
    }

    fn hold(&mut self, channel: &str, failed: bool) {
        let hold = self
            .channels
            .entry(channel.to_string())
            .or_insert(Hold { failed, kept: 0 });
        hold.failed |= failed;
    }
}

/// One file in the queue.
struct Entry {
    path: PathBuf,
    /// From the name; none for a file queued before names held it.
    channel: Option<String>,
}

/// The queue as listed under the lock, oldest first.
pub(super) struct Queue {
    dir: PathBuf,
    entries: Vec<Entry>,
    next: u64,
}

impl Queue {
    /// List `STATE_DIR/undelivered/` (none yet: empty).
    pub(super) fn open(state_dir: &Path) -> Queue {
        let dir = state_dir.join("undelivered");
        let mut named: Vec<(u64, String, Entry)> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let stem = name.strip_suffix(".json")?.to_string();
                let (sequence, channel) = parse(&stem);
                let path = e.path();
                Some((sequence, stem, Entry { path, channel }))
            })
            .collect();
        // Files named before the sequence (sequence 0) are older than any after it.
        named.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let next = named.last().map_or(1, |(s, _, _)| s.saturating_add(1));
        Queue {
            dir,
            entries: named.into_iter().map(|(_, _, e)| e).collect(),
            next,
        }
    }

    /// Write `body` for channel `name` at the end of the queue.
    pub(super) fn add(
        &mut self,
        name: &str,
        body: Body,
        error: &str,
    ) -> Result<(PathBuf, Undelivered), Error> {
        let seed = format!(
            "{}\n{}\n{}\n{}",
            body.seed(name),
            body.time(),
            std::process::id(),
            self.next
        );
        let digest = crate::digest::Sha256::digest(seed.as_bytes());
        let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        let id = format!("{:012}-{}-{hex}", self.next, encode(name));
        self.next = self.next.saturating_add(1);
        let path = self.dir.join(format!("{id}.json"));
        let record = Undelivered {
            id,
            channel: name.to_string(),
            body,
            error: error.to_string(),
            tries: 0,
            next_try: None,
            tried_at: None,
            refused: false,
        };
        let bytes = serde_json::to_vec_pretty(&record).unwrap_or_default();
        fsutil::write_state(&path, &bytes)?;
        self.entries.push(Entry {
            path: path.clone(),
            channel: Some(name.to_string()),
        });
        Ok((path, record))
    }

    /// Deliver what earlier calls left, oldest first: a message whose retry is due is
    /// tried; one delivered is removed; the others stay, and hold their channel's newer
    /// messages back.
    pub(super) async fn redeliver(
        &mut self,
        known: Known<'_>,
        now: jiff::Timestamp,
        held: &mut Held,
        outcome: &mut Outcome,
    ) -> Result<(), Error> {
        let entries = std::mem::take(&mut self.entries);
        for entry in entries {
            if let Some(channel) = &entry.channel
                && let Some(hold) = held.channels.get_mut(channel)
            {
                hold.kept += 1;
                continue;
            }
            let record = match read(&entry.path) {
                Ok(Some(record)) => record,
                Ok(None) => continue, // gone meanwhile
                // One unreadable file must not keep every later message from going out.
                Err(e) => {
                    outcome.warnings.push(e.to_string());
                    continue;
                }
            };
            if let Some(hold) = held.channels.get_mut(&record.channel) {
                hold.kept += 1;
                continue;
            }
            if !due(&record, now) {
                if record.refused {
                    let subject = record.body.subject_key();
                    held.refused.push((record.channel, subject, entry.path));
                } else {
                    held.hold(&record.channel, false);
                }
                continue;
            }
            attempt(known, &entry.path, record, false, now, held, outcome).await?;
        }
        Ok(())
    }
}

/// Whether `record`'s retry is due at `now` (or its time is past any retry's reach: the
/// clock was set back).
fn due(record: &Undelivered, now: jiff::Timestamp) -> bool {
    let time = |t: &Option<String>| t.as_deref().and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let Some(next) = time(&record.next_try) else {
        return true;
    };
    let set_back = time(&record.tried_at).is_some_and(|tried| now < tried);
    let reach = i64::try_from(MAX_RETRY.as_secs()).unwrap_or(i64::MAX);
    set_back || next <= now || next.as_second() > now.as_second().saturating_add(reach)
}

/// Deliver the queued `record` (file `path`): taken, the file goes; not taken, it stays
/// with its error and next retry, and is said. A channel with an older message waiting in
/// this run is not tried.
pub(super) async fn attempt(
    known: Known<'_>,
    path: &Path,
    mut record: Undelivered,
    fresh: bool,
    now: jiff::Timestamp,
    held: &mut Held,
    outcome: &mut Outcome,
) -> Result<(), Error> {
    let what = record.body.label(&record.channel);
    if let Some(hold) = held.channels.get(&record.channel) {
        if fresh {
            let why = if hold.failed {
                "the channel did not take an earlier one"
            } else {
                "an older one for the channel waits for its retry"
            };
            outcome.queued.push(format!(
                "notification {what} not tried: {why}; kept in {} for the next run",
                path.display()
            ));
        }
        return Ok(());
    }
    let Some((channel, bound)) = known.resolve(&record.channel) else {
        outcome
            .warnings
            .extend(known.unresolved(&record.channel, path));
        return Ok(());
    };
    match record.body.deliver(channel, bound).await {
        Ok(()) => {
            std::fs::remove_file(path).map_err(|error| fsutil::Error::Io {
                what: "cannot remove",
                path: path.to_path_buf(),
                error,
            })?;
            fsutil::sync_dir(fsutil::parent(path));
            let action = if fresh {
                "notify.sent"
            } else {
                "notify.redelivered"
            };
            crate::logging::audit::record(action, "ok", Some(&what));
            outcome.sent.push(what);
            supersede(&record, held, outcome);
        }
        Err(e) => {
            let said = format!(
                "notification {what} failed: {e}; kept in {} for the next run",
                path.display()
            );
            crate::logging::audit::record("notify.sent", "failed", Some(&said));
            record.refused = e.is_refusal();
            if record.refused {
                let subject = record.body.subject_key();
                let entry = (record.channel.clone(), subject, path.to_path_buf());
                held.refused.push(entry);
            } else {
                held.hold(&record.channel, true);
            }
            record.error = e.to_string();
            record.tries = record.tries.saturating_add(1);
            record.next_try = Some(retry_at(now, bound, record.tries).to_string());
            record.tried_at = Some(now.to_string());
            let bytes = serde_json::to_vec_pretty(&record).unwrap_or_default();
            fsutil::write_state(path, &bytes)?;
            if fresh {
                outcome.queued.push(said);
            } else {
                outcome.warnings.push(said);
            }
        }
    }
    Ok(())
}

/// Drop the refused messages of this run that `taken` (just delivered, newer) supersedes:
/// the same channel, the same subject.
fn supersede(taken: &Undelivered, held: &mut Held, outcome: &mut Outcome) {
    let subject = taken.body.subject_key();
    held.refused.retain(|(channel, about, path)| {
        if *channel != taken.channel || *about != subject {
            return true;
        }
        if std::fs::remove_file(path).is_ok() {
            let said = format!(
                "{}: refused earlier by channel {channel}, dropped: a newer message about the same thing reached it",
                path.display()
            );
            crate::logging::audit::record("notify.superseded", "ok", Some(&said));
            outcome.warnings.push(said);
        }
        false
    });
}

/// When a message that failed `tries` times is tried again: the channel's backoff (a
/// second at least), doubled for each earlier failure, at most [`MAX_RETRY`].
fn retry_at(now: jiff::Timestamp, bound: &super::Delivery, tries: u32) -> jiff::Timestamp {
    let base = bound.backoff.0.max(std::time::Duration::from_secs(1));
    let wait = base
        .saturating_mul(1 << tries.saturating_sub(1).min(16))
        .min(MAX_RETRY);
    let wait = jiff::SignedDuration::try_from(wait).unwrap_or(jiff::SignedDuration::ZERO);
    now.checked_add(wait).unwrap_or(now)
}

fn read(path: &Path) -> Result<Option<Undelivered>, Error> {
    super::state::read_json(path, "an undelivered notification")
}

/// A channel's name as part of a file name: `-`, which separates the parts, escaped too.
fn encode(channel: &str) -> String {
    fsutil::escape_name(channel, b"_")
}

/// A file's stem as its sequence and channel: `000000000042-chat-0a1b2c3d4e5f` is
/// (42, chat); an older name (`20260302T040000Z-…`) is (0, none).
fn parse(stem: &str) -> (u64, Option<String>) {
    let mut parts = stem.splitn(2, '-');
    let (Some(sequence), Some(rest)) = (parts.next(), parts.next()) else {
        return (0, None);
    };
    if sequence.len() != 12 || !sequence.bytes().all(|b| b.is_ascii_digit()) {
        return (0, None);
    }
    let Ok(sequence) = sequence.parse::<u64>() else {
        return (0, None);
    };
    let channel = rest
        .rsplit_once('-')
        .and_then(|(channel, _)| fsutil::percent_decode(channel));
    (sequence, channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_the_order_and_the_channel() {
        for channel in ["chat", "ops-mail", "@incident-webhook", "a%b", "é.x"] {
            let stem = format!("{:012}-{}-0a1b2c3d4e5f", 42, encode(channel));
            assert_eq!(parse(&stem), (42, Some(channel.to_string())), "{stem}");
        }
        assert_eq!(
            parse("20260302T040000Z-00000000000000000001-0a1b2c"),
            (0, None)
        );
        assert_eq!(parse("garbage"), (0, None));
    }

    #[test]
    fn retries_back_off_to_the_limit_and_a_clock_set_back_never_holds_them() {
        let bound = super::super::Delivery::default(); // backoff 2s
        let at = jiff::Timestamp::from_second(1_800_000_000).expect("time");
        let wait = |tries| retry_at(at, &bound, tries).as_second() - at.as_second();
        assert_eq!([wait(1), wait(2), wait(3)], [2, 4, 8]);
        assert_eq!(wait(40), 900);
        let record = |next: jiff::Timestamp| Undelivered {
            id: "x".into(),
            channel: "chat".into(),
            body: Body::Text(super::super::direct::Written {
                about: "a".into(),
                what: "w".into(),
                subject: "s".into(),
                text: "t".into(),
                time: at.to_string(),
                page: None,
            }),
            error: String::new(),
            tries: 1,
            next_try: Some(next.to_string()),
            tried_at: Some(at.to_string()),
            refused: false,
        };
        let later = |s: i64| jiff::Timestamp::from_second(1_800_000_000 + s).expect("time");
        assert!(!due(&record(later(10)), at));
        assert!(due(&record(later(10)), later(10)));
        assert!(
            due(&record(later(3600)), at),
            "an hour ahead: the clock went back"
        );
    }
}
