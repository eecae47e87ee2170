//! What is open per scope (`STATE_DIR/notify/<scope>.json`), and [`settle`], which
//! computes the transitions against it and sends them through the undelivered queue
//! ([`super::queue`]). Everything happens under one waiting lock (`STATE_DIR/notify/.lock`),
//! so two runs at once never send the same start twice nor lose one's write.

use super::direct::{Body, Known};
use super::queue::{Held, Queue};
use super::{Error, Event, Message, NotifyConfig, Outcome, Problem, Scope, Severity};
use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// A problem that is open (started, not yet recovered) in a scope.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct Open {
    what: String,
    severity: Severity,
    /// The worst it has been while open: its recovery goes to every channel that heard
    /// of it at that severity (a PagerDuty trigger is resolved even after it eased).
    #[serde(default)]
    worst: Option<Severity>,
    detail: String,
    since: String,
    /// When a message about it was last sent (or queued).
    last_sent: String,
}

/// What a scope's state file is, for its errors.
const STATE: &str = "a notification state file";

#[derive(Debug, Default, Deserialize, Serialize)]
struct ScopeState {
    open: BTreeMap<String, Open>,
}

/// Send what changed in `scope` since the last call: a message for each problem that
/// started, each that recovered, and each still open for longer than `repeat` since its
/// last message; first, every message left undelivered by an earlier call. `problems`
/// is everything failing now in the scope. A channel that fails within the delivery
/// bound has the message queued (and said in [`Outcome::queued`]), never dropped.
pub async fn settle(
    config: &NotifyConfig,
    state_dir: &Path,
    now: jiff::Timestamp,
    scope: &Scope<'_>,
    problems: &[Problem],
) -> Result<Outcome, Error> {
    settle_as(config, state_dir, now, scope, problems, true).await
}

/// [`settle`] without sending anything: the state brought up to date and the messages it
/// calls for queued, for the next call that delivers (a monitor told to stop at once).
pub async fn record(
    config: &NotifyConfig,
    state_dir: &Path,
    now: jiff::Timestamp,
    scope: &Scope<'_>,
    problems: &[Problem],
) -> Result<Outcome, Error> {
    settle_as(config, state_dir, now, scope, problems, false).await
}

/// Deliver the queued messages whose retry is due, and nothing else: what a long-running
/// caller does while nothing changes.
pub async fn retry(
    config: &NotifyConfig,
    state_dir: &Path,
    now: jiff::Timestamp,
) -> Result<Outcome, Error> {
    let mut outcome = Outcome::default();
    if !state_dir.join("undelivered").is_dir() {
        return Ok(outcome);
    }
    let _lock = wait_lock(&state_dir.join("notify")).await?;
    let mut held = Held::default();
    Queue::open(state_dir)
        .redeliver(Known::notify(config), now, &mut held, &mut outcome)
        .await?;
    held.say(&mut outcome);
    Ok(outcome)
}

async fn settle_as(
    config: &NotifyConfig,
    state_dir: &Path,
    now: jiff::Timestamp,
    scope: &Scope<'_>,
    problems: &[Problem],
    send: bool,
) -> Result<Outcome, Error> {
    let dir = state_dir.join("notify");
    let _lock = wait_lock(&dir).await?;
    let mut outcome = Outcome::default();
    let mut held = Held::default();
    let known = Known::notify(config);
    let mut queue = Queue::open(state_dir);
    if send {
        queue.redeliver(known, now, &mut held, &mut outcome).await?;
    }
    let path = dir.join(format!("{}.json", file_name(scope.name)));
    let read: Option<ScopeState> = read_json(&path, STATE)?;
    let was = read
        .as_ref()
        .map(|s| serde_json::to_vec_pretty(s).unwrap_or_default());
    let mut state = read.unwrap_or_default();
    let host = super::host();
    let messages = transitions(config, &mut state, now, scope, problems, &host);
    // Every message is queued before the state says it was sent, and removed once a
    // channel took it: a run killed anywhere in between sends it twice at worst, never
    // not at all.
    let mut pending = Vec::new();
    for message in &messages {
        for name in config.channels_for(scope.kind(), message.severity) {
            let body = Body::Message(message.clone());
            pending.push(queue.add(name, body, "not sent yet")?);
        }
    }
    let bytes = serde_json::to_vec_pretty(&state).unwrap_or_default();
    if was.as_ref() != Some(&bytes) {
        fsutil::write_state(&path, &bytes)?;
    }
    if !send {
        return Ok(outcome);
    }
    stop_at("notify-before-send");
    for (path, record) in pending {
        super::queue::attempt(known, &path, record, true, now, &mut held, &mut outcome).await?;
    }
    held.say(&mut outcome);
    Ok(outcome)
}

/// Wait for the notification lock without blocking a thread, so a lock another process
/// holds never stalls what else runs here (a health server keeps answering) and a caller
/// that gives up stops waiting at once.
pub(super) async fn wait_lock(dir: &Path) -> Result<crate::lock::Lock, Error> {
    Ok(crate::lock::Lock::wait_async(&dir.join(".lock")).await?)
}

/// The messages `problems` call for against `state`, which is brought up to date.
fn transitions(
    config: &NotifyConfig,
    state: &mut ScopeState,
    now: jiff::Timestamp,
    scope: &Scope<'_>,
    problems: &[Problem],
    host: &str,
) -> Vec<Message> {
    let time = now.to_string();
    let message = |event, key: &str, open: &Open| Message {
        event,
        scope: scope.name.to_string(),
        key: key.to_string(),
        what: open.what.clone(),
        severity: match event {
            Event::Recovered => open.worst.map_or(open.severity, |w| w.max(open.severity)),
            _ => open.severity,
        },
        detail: crate::redact::mask(&open.detail).into_owned(),
        host: host.to_string(),
        rerun: scope.rerun.to_string(),
        time: time.clone(),
        since: open.since.clone(),
        dedup_key: dedup_key(host, scope.name, key, &open.since),
    };
    let mut out = Vec::new();
    let failing: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    // A problem whose step did not run this time (skipped, left out by --only) is not
    // known to be better: it stays open.
    let recovered: Vec<String> = state
        .open
        .keys()
        .filter(|k| !failing.contains(&k.as_str()) && !scope.unseen.contains(k))
        .cloned()
        .collect();
    for key in recovered {
        if let Some(open) = state.open.remove(&key) {
            out.push(message(Event::Recovered, &key, &open));
        }
    }
    for problem in problems {
        let event = match state.open.get_mut(&problem.key) {
            None => Some(Event::Problem),
            // Worse than when it was said: said again.
            Some(open) if problem.severity > open.severity => Some(Event::Problem),
            Some(open) => {
                let due = config.repeat.is_some_and(|repeat| {
                    let last = open.last_sent.parse::<jiff::Timestamp>().unwrap_or(now);
                    let elapsed = now.as_second().saturating_sub(last.as_second());
                    elapsed >= i64::try_from(repeat.0.as_secs()).unwrap_or(i64::MAX)
                });
                due.then_some(Event::Reminder)
            }
        };
        let since = state
            .open
            .get(&problem.key)
            .map_or_else(|| time.clone(), |o| o.since.clone());
        let worst = state
            .open
            .get(&problem.key)
            .map_or(problem.severity, |old| {
                old.worst.unwrap_or(old.severity).max(problem.severity)
            });
        let open = Open {
            what: problem.what.clone(),
            severity: problem.severity,
            worst: Some(worst),
            detail: problem.detail.clone(),
            since,
            last_sent: match (event, state.open.get(&problem.key)) {
                (None, Some(old)) => old.last_sent.clone(),
                _ => time.clone(),
            },
        };
        if let Some(event) = event {
            out.push(message(event, &problem.key, &open));
        }
        state.open.insert(problem.key.clone(), open);
    }
    out
}

/// The same for a problem's trigger, reminders and resolve; a new one once it recovered
/// and started again.
fn dedup_key(host: &str, scope: &str, key: &str, since: &str) -> String {
    let digest =
        crate::digest::Sha256::digest(format!("{host}\n{scope}\n{key}\n{since}").as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("opsbook-{hex}")
}

/// Test seam: SIGKILL this process when `OPSBOOK_TEST_STOP_AT` names `point`
/// (`notify-before-send`: the messages queued and the state written, nothing sent yet).
/// Costs an environment read when unset.
pub(super) fn stop_at(point: &str) {
    if std::env::var_os("OPSBOOK_TEST_STOP_AT").is_some_and(|wanted| wanted == point) {
        // SAFETY: raise(3) on our own process; SIGKILL cannot be caught, nothing returns.
        unsafe {
            libc::raise(libc::SIGKILL);
        }
    }
}

/// The keys of the problems open in `scope` (what an earlier process said is failing and
/// has not said recovered); none when the state cannot be read.
pub fn open_in(state_dir: &Path, scope: &str) -> Vec<String> {
    let path = state_dir
        .join("notify")
        .join(format!("{}.json", file_name(scope)));
    read_json::<ScopeState>(&path, STATE)
        .ok()
        .flatten()
        .map(|state| state.open.into_keys().collect())
        .unwrap_or_default()
}

/// Every scope of kind `kind` (`health`) with problems open, and their keys, by scope name.
pub fn open_scopes(state_dir: &Path, kind: &str) -> Vec<(String, Vec<String>)> {
    let prefix = file_name(&format!("{kind}:"));
    let mut out: Vec<(String, Vec<String>)> = std::fs::read_dir(state_dir.join("notify"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".json")?;
            stem.starts_with(&prefix).then_some(())?;
            let scope = fsutil::percent_decode(stem)?;
            let open = open_in(state_dir, &scope);
            (!open.is_empty()).then_some((scope, open))
        })
        .collect();
    out.sort();
    out
}

/// The JSON file at `path` (none: missing), or an error saying it is not `what`.
pub(super) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
) -> Result<Option<T>, Error> {
    let Some(bytes) = fsutil::read_state(path)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Corrupt {
            path: path.display().to_string(),
            problem: format!("not {what}: {e}"),
        })
}

/// A scope as a file name: letters, digits, `.`, `_` and `-` kept, anything else `%XX`
/// (so `maintain:daily` and `maintain_daily` stay apart, and `/` never leaves the dir).
fn file_name(scope: &str) -> String {
    fsutil::escape_name(scope, b"_-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_file_names_stay_apart_and_inside() {
        assert_eq!(file_name("maintain:daily"), "maintain%3Adaily");
        assert_eq!(file_name("maintain_daily"), "maintain_daily");
        assert_eq!(file_name("run:../../etc"), "run%3A..%2F..%2Fetc");
        assert_eq!(file_name(".hidden"), "%2Ehidden");
    }

    fn problem(key: &str, severity: Severity) -> Problem {
        Problem {
            key: key.into(),
            what: key.into(),
            severity,
            detail: "disk 95% used (limit 90%)".into(),
        }
    }

    #[test]
    fn one_message_on_start_none_while_open_one_on_recovery_and_reminders_after_repeat() {
        let config = NotifyConfig {
            repeat: Some(crate::values::Duration(std::time::Duration::from_secs(
                4 * 3600,
            ))),
            ..NotifyConfig::default()
        };
        let scope = Scope {
            name: "maintain:daily",
            rerun: "opsbook maintain run daily",
            unseen: &[],
        };
        let at = |h: i64| jiff::Timestamp::from_second(1_800_000_000 + h * 3600).expect("time");
        let mut state = ScopeState::default();
        let disk = [problem("Disk", Severity::Warning)];
        let events = |m: Vec<Message>| m.iter().map(|m| m.event).collect::<Vec<_>>();
        let first = transitions(&config, &mut state, at(0), &scope, &disk, "h");
        assert_eq!(events(first.clone()), vec![Event::Problem]);
        assert!(transitions(&config, &mut state, at(1), &scope, &disk, "h").is_empty());
        let again = transitions(&config, &mut state, at(4), &scope, &disk, "h");
        assert_eq!(events(again.clone()), vec![Event::Reminder]);
        assert_eq!(again[0].dedup_key, first[0].dedup_key);
        assert!(transitions(&config, &mut state, at(5), &scope, &disk, "h").is_empty());
        let worse = [problem("Disk", Severity::Critical)];
        let worse = transitions(&config, &mut state, at(6), &scope, &worse, "h");
        assert_eq!(events(worse), vec![Event::Problem]);
        let back = transitions(&config, &mut state, at(7), &scope, &[], "h");
        assert_eq!(events(back.clone()), vec![Event::Recovered]);
        assert_eq!(back[0].dedup_key, first[0].dedup_key);
        assert!(state.open.is_empty());
    }

    /// A step that did not run keeps its problem open; a problem that eased from critical
    /// to warning recovers at critical, so the channels that heard it critical hear it end.
    #[test]
    fn a_skipped_step_stays_open_and_a_recovery_goes_out_at_the_worst_severity() {
        let config = NotifyConfig::default();
        let skipped = ["Queue".to_string()];
        let unseen = Scope {
            name: "run:gate",
            rerun: "opsbook run gate",
            unseen: &skipped,
        };
        let seen = Scope {
            unseen: &[],
            ..unseen
        };
        let at = |h: i64| jiff::Timestamp::from_second(1_800_000_000 + h * 3600).expect("time");
        let mut state = ScopeState::default();
        let critical = [problem("Queue", Severity::Critical)];
        assert_eq!(
            transitions(&config, &mut state, at(0), &seen, &critical, "h").len(),
            1
        );
        assert!(transitions(&config, &mut state, at(1), &unseen, &[], "h").is_empty());
        assert!(state.open.contains_key("Queue"));
        let eased = [problem("Queue", Severity::Warning)];
        assert!(transitions(&config, &mut state, at(2), &seen, &eased, "h").is_empty());
        let back = transitions(&config, &mut state, at(3), &seen, &[], "h");
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].event, Event::Recovered);
        assert_eq!(back[0].severity, Severity::Critical);
    }
}
