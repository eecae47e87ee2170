//! Incident messages and the notification queue, against real receivers on 127.0.0.1 (the
//! notify tests' HTTP receiver: Slack-compatible webhooks and a PagerDuty-shaped events
//! endpoint) at a fixed clock: a message no channel took is kept in `undelivered/` and
//! delivered first by the next run, PagerDuty hears an incident's start and end, and a
//! reminder that reaches nobody says so.

use crate::common::Opsbook;
use crate::notify::Receiver;
use std::path::Path;
use std::sync::atomic::Ordering;

const NOW: &str = "2026-01-10T10:00:00Z";
const ID: &str = "INC-20260110-1";

/// Secrets the configs take from the environment: none may show anywhere.
const SECRETS: [(&str, &str); 2] = [
    ("HOOK_TOKEN", "canary-hook-token"),
    ("PD_KEY", "canary-routing-key"),
];

/// `opsbook --config ops.yaml ARGS` in `dir` at `now`, memory 10 % used, logs (the audit
/// log among them) in `ops-logs/`.
fn opsbook(dir: &Path, now: &str, args: &[&str]) -> crate::common::Run {
    let mut all = vec!["--config", "ops.yaml"];
    all.extend_from_slice(args);
    let mut ob = Opsbook::new()
        .readings(10.0, 10.0, 5.0)
        .env("OPSBOOK_NOW", now)
        .env("USER", "alice")
        .env("LOG_TO_FILE", "true")
        .env("LOG_DIR", "ops-logs");
    for (name, value) in SECRETS {
        ob = ob.env(name, value);
    }
    let run = ob.args(all).run_in(dir);
    for (_, secret) in SECRETS {
        assert!(!run.stdout.contains(secret), "{}", run.stdout);
        assert!(!run.stderr.contains(secret), "{}", run.stderr);
    }
    run
}

fn incident(dir: &Path, now: &str, args: &[&str]) -> crate::common::Run {
    let mut all = vec!["incident"];
    all.extend_from_slice(args);
    opsbook(dir, now, &all)
}

fn declare(dir: &Path, severity: &str, title: &str) -> crate::common::Run {
    incident(
        dir,
        NOW,
        &["declare", "--severity", severity, "--title", title],
    )
}

/// The records in `state/undelivered/`, oldest first.
fn queued(dir: &Path) -> Vec<serde_json::Value> {
    let mut paths: Vec<_> = std::fs::read_dir(dir.join("state/undelivered"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

fn timeline(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(format!("incidents/{ID}/timeline.jsonl"))).unwrap()
}

/// The `text` of each message `receiver` took at `path`, in order.
fn texts(receiver: &Receiver, path: &str) -> Vec<String> {
    receiver
        .taken(path)
        .iter()
        .map(|body| body["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// No secret in any file opsbook wrote (state, undelivered messages, audit log, records).
fn no_secret_in_files(dir: &Path) {
    let mut stack = vec![
        dir.join("state"),
        dir.join("ops-logs"),
        dir.join("incidents"),
    ];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            for (_, secret) in SECRETS {
                assert!(!text.contains(secret), "{} holds a secret", path.display());
            }
        }
    }
}

/// `state_dir`, the incident webhook at `hook` (its token from the environment, one
/// attempt), then `rest`.
fn config(hook: &Receiver, rest: &str) -> String {
    format!(
        "state_dir: state\nincident:\n  dir: incidents\n  webhook: {{ url: \"{}/${{HOOK_TOKEN}}\", timeout: 5s, retries: 0 }}\n{rest}",
        hook.url("/hook")
    )
}

const HOOK: &str = "/hook/canary-hook-token";

/// The incident webhook and a Slack channel routed for incidents are both down at
/// `declare`: the incident is recorded, each message is kept in `undelivered/` (the
/// webhook's under its reserved name), said, audited and on the timeline. The next
/// `update`, with both up, delivers the declaration first and then the update to each,
/// and leaves nothing behind.
#[test]
fn a_declaration_no_channel_took_is_kept_and_the_next_update_delivers_it_first() {
    let http = Receiver::start();
    http.up.store(false, Ordering::SeqCst);
    let ops = Opsbook::new().file(
        "ops.yaml",
        &config(
            &http,
            &format!(
                "notify:\n  delivery: {{ attempts: 1, timeout: 5s }}\n  channels:\n    ops: {{ slack: {{ url: \"{}\" }} }}\n  routes:\n    - {{ events: [incident], channels: [ops] }}\n",
                http.url("/ops")
            ),
        ),
    );
    let dir = ops.dir();
    declare(dir, "SEV-1", "API down")
        .expect_exit(0)
        .stderr_contains(&format!(
            "notification declaration of {ID} to @incident-webhook failed: the webhook answered 500"
        ))
        .stderr_contains(&format!(
            "notification declaration of {ID} to ops failed: the webhook answered 500"
        ))
        .stderr_contains("kept in state/undelivered/");
    let kept = queued(dir);
    let channels: Vec<&str> = kept
        .iter()
        .map(|r| r["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["@incident-webhook", "ops"]);
    for record in &kept {
        assert_eq!(record["text"]["about"], ID, "{record}");
        assert_eq!(record["text"]["what"], "declaration", "{record}");
        let text = record["text"]["text"].as_str().unwrap();
        assert!(text.contains("INCIDENT DECLARED"), "{text}");
        assert!(record["error"].as_str().unwrap().contains("answered 500"));
    }
    assert_eq!(
        timeline(dir).matches("\"kind\":\"notify-failed\"").count(),
        2
    );
    let audit = std::fs::read_to_string(dir.join("ops-logs/audit.log")).unwrap();
    assert!(audit.contains("\"notify.sent\""), "{audit}");
    assert!(audit.contains("\"failed\""), "{audit}");

    http.up.store(true, Ordering::SeqCst);
    let run = incident(
        dir,
        "2026-01-10T10:20:00Z",
        &["update", ID, "--note", "Failing over to the standby"],
    )
    .expect_exit(0);
    assert!(!run.stderr.contains("failed"), "{}", run.stderr);
    for path in [HOOK, "/ops"] {
        let got = texts(&http, path);
        assert_eq!(got.len(), 2, "{path}: {:?}", http.paths());
        assert!(got[0].contains("INCIDENT DECLARED"), "{path}: {}", got[0]);
        assert!(
            got[1].contains("Failing over to the standby"),
            "{path}: {}",
            got[1]
        );
    }
    assert!(queued(dir).is_empty());
    let audit = std::fs::read_to_string(dir.join("ops-logs/audit.log")).unwrap();
    assert!(audit.contains("\"notify.redelivered\""), "{audit}");
    no_secret_in_files(dir);
}

/// A `maintain run` settles its own scope and delivers what waits in `undelivered/`: it
/// delivers an incident message queued for a `notify:` channel, and keeps the incident
/// webhook's (which `notify:` does not know) without a word, for the next incident
/// command to deliver.
#[test]
fn a_maintain_run_delivers_the_queued_incident_messages_it_can_and_keeps_the_webhooks() {
    let (hook, chat) = (Receiver::start(), Receiver::start());
    hook.up.store(false, Ordering::SeqCst);
    chat.up.store(false, Ordering::SeqCst);
    let ops = Opsbook::new()
        .file(
            "ops.yaml",
            &config(
                &hook,
                &format!(
                    "maintain:\n  schedules:\n    daily: {{ runbook: upkeep.yaml }}\nnotify:\n  delivery: {{ attempts: 1, timeout: 5s }}\n  channels:\n    chat: {{ slack: {{ url: \"{}\" }} }}\n",
                    chat.url("/chat")
                ),
            ),
        )
        .file(
            "upkeep.yaml",
            "name: upkeep\nsteps:\n  - name: Memory\n    memory: { warn: 75, crit: 90 }\n",
        );
    let dir = ops.dir();
    declare(dir, "SEV-2", "Exports slow").expect_exit(0);
    assert_eq!(queued(dir).len(), 2);

    chat.up.store(true, Ordering::SeqCst);
    for at in ["2026-01-10T10:05:00Z", "2026-01-10T10:10:00Z"] {
        let run = opsbook(dir, at, &["maintain", "run", "daily"]).expect_exit(0);
        assert!(!run.stderr.contains("incident"), "{}", run.stderr);
        assert!(!run.stderr.contains("configured"), "{}", run.stderr);
        let kept = queued(dir);
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(kept[0]["channel"], "@incident-webhook");
    }
    let got = texts(&chat, "/chat");
    assert_eq!(got.len(), 1, "{:?}", chat.paths());
    assert!(got[0].contains("INCIDENT DECLARED"), "{}", got[0]);
    assert!(hook.taken(HOOK).is_empty());

    hook.up.store(true, Ordering::SeqCst);
    incident(
        dir,
        "2026-01-10T10:20:00Z",
        &["update", ID, "--status", "identified"],
    )
    .expect_exit(0);
    let got = texts(&hook, HOOK);
    assert_eq!(got.len(), 2, "{:?}", hook.paths());
    assert!(got[0].contains("INCIDENT DECLARED"), "{}", got[0]);
    assert!(got[1].contains("Status: IDENTIFIED"), "{}", got[1]);
    assert_eq!(
        texts(&chat, "/chat").len(),
        2,
        "the update went to chat too"
    );
    assert!(queued(dir).is_empty());
    no_secret_in_files(dir);
}

/// A run killed after the message is queued and before it is sent loses nothing: the
/// incident is recorded, the message waits in `undelivered/`, and the next command
/// delivers it before its own.
#[test]
fn a_declare_killed_before_sending_loses_nothing() {
    let http = Receiver::start();
    let ops = Opsbook::new().file("ops.yaml", &config(&http, ""));
    let dir = ops.dir();
    let killed = Opsbook::new()
        .env("OPSBOOK_NOW", NOW)
        .env("HOOK_TOKEN", "canary-hook-token")
        .env("OPSBOOK_TEST_STOP_AT", "notify-before-send")
        .args([
            "--config",
            "ops.yaml",
            "incident",
            "declare",
            "--severity",
            "SEV-1",
            "--title",
            "API down",
        ])
        .run_in(dir);
    assert_eq!(killed.code, None, "killed by its signal: {}", killed.stderr);
    assert!(http.taken(HOOK).is_empty());
    assert!(timeline(dir).contains("\"kind\":\"declared\""));
    assert_eq!(queued(dir).len(), 1);
    incident(
        dir,
        "2026-01-10T10:05:00Z",
        &["update", ID, "--note", "On it"],
    )
    .expect_exit(0);
    let got = texts(&http, HOOK);
    assert_eq!(got.len(), 2, "{:?}", http.paths());
    assert!(got[0].contains("INCIDENT DECLARED"), "{}", got[0]);
    assert!(got[1].contains("On it"), "{}", got[1]);
    assert!(queued(dir).is_empty());
}

/// PagerDuty routed for incidents gets one alert per incident: a trigger on `declare` and
/// on `escalate` (its summary naming the incident, its severity by the incident
/// severity's rank), nothing for an update, and a resolve on `resolve`, all with the
/// dedup key `opsbook-incident-<ID>`.
#[test]
fn pagerduty_hears_declare_and_escalate_as_triggers_and_resolve_with_one_dedup_key() {
    let http = Receiver::start();
    let ops = Opsbook::new().file(
        "ops.yaml",
        &format!(
            "state_dir: state\nincident:\n  dir: incidents\nnotify:\n  channels:\n    pager: {{ pagerduty: {{ routing_key: \"${{PD_KEY}}\", url: \"{}\" }} }}\n  routes:\n    - {{ events: [incident], channels: [pager] }}\n",
            http.url("/pd")
        ),
    );
    let dir = ops.dir();
    let quiet = |run: crate::common::Run| {
        assert!(!run.stderr.contains("failed"), "{}", run.stderr);
        run.expect_exit(0)
    };
    quiet(incident(
        dir,
        NOW,
        &[
            "declare",
            "--severity",
            "SEV-1",
            "--title",
            "API down",
            "--service",
            "Uploads API",
        ],
    ));
    quiet(incident(
        dir,
        "2026-01-10T10:05:00Z",
        &["update", ID, "--note", "On it"],
    ));
    quiet(incident(dir, "2026-01-10T10:20:00Z", &["escalate", ID]));
    quiet(incident(
        dir,
        "2026-01-10T10:40:00Z",
        &["resolve", ID, "--root-cause", "A full disk"],
    ));
    quiet(declare(dir, "SEV-2", "Exports slow"));
    let events = http.taken("/pd");
    assert_eq!(events.len(), 4, "{:?}", http.paths());
    let key = format!("opsbook-incident-{ID}");
    let (declared, escalated, resolved) = (&events[0], &events[1], &events[2]);
    assert_eq!(declared["routing_key"], "canary-routing-key");
    for event in [declared, escalated, resolved] {
        assert_eq!(event["dedup_key"], key.as_str(), "{event}");
    }
    assert_eq!(declared["event_action"], "trigger");
    assert_eq!(
        declared["payload"]["summary"],
        format!("🚨 INCIDENT DECLARED: {ID} API down")
    );
    assert_eq!(declared["payload"]["severity"], "critical");
    assert_eq!(declared["payload"]["component"], "Uploads API");
    assert_eq!(declared["payload"]["custom_details"]["incident"], ID);
    assert_eq!(escalated["event_action"], "trigger");
    assert_eq!(
        escalated["payload"]["summary"],
        format!("⏫ ESCALATION: {ID} API down")
    );
    assert_eq!(resolved["event_action"], "resolve");
    assert!(resolved.get("payload").is_none(), "{resolved}");
    let second = &events[3];
    assert_eq!(second["dedup_key"], "opsbook-incident-INC-20260110-2");
    assert_eq!(second["payload"]["severity"], "error");
    no_secret_in_files(dir);
}

/// A reminder that is due when no channel is configured at all reaches nobody: `remind`
/// says so on its line, exits 78 naming the settings that would tell someone, and does
/// not record a reminder, so one is sent once a channel is configured.
#[test]
fn a_reminder_due_with_no_channel_says_nobody_was_told_and_exits_78() {
    let http = Receiver::start();
    let plain = "state_dir: state\nincident:\n  dir: incidents\n";
    let ops = Opsbook::new().file("ops.yaml", plain);
    let dir = ops.dir();
    declare(dir, "SEV-1", "API down").expect_exit(0);
    for at in ["2026-01-10T10:31:00Z", "2026-01-10T10:32:00Z"] {
        let run = incident(dir, at, &["remind"]).expect_exit(78);
        let minutes = &at[14..16];
        assert_eq!(
            run.stdout,
            format!(
                "{ID}  API down  update due (last update {minutes}m ago, due every 30m)  reminder NOT sent: no channel is configured\n"
            )
        );
        assert!(
            run.stderr.contains(&format!(
                "ops.yaml: {ID}: a reminder is due and nobody was told: no channel is configured for incident messages (set incident.webhook, or route `incident` events to a notify: channel; PagerDuty hears only declare, escalate and resolve)"
            )),
            "{}",
            run.stderr
        );
        assert!(!timeline(dir).contains("\"kind\":\"reminded\""));
    }
    std::fs::write(dir.join("ops.yaml"), config(&http, "")).unwrap();
    incident(dir, "2026-01-10T10:33:00Z", &["remind"])
        .expect_exit(1)
        .stdout_contains("reminder sent");
    assert_eq!(texts(&http, HOOK).len(), 1);
    let audit = std::fs::read_to_string(dir.join("ops-logs/audit.log")).unwrap();
    assert!(
        audit.contains("no channel is configured; nobody was told"),
        "{audit}"
    );
}

/// Reminders are not updates: the update message lists the incident's changes under
/// "Updates:" and the reminders sent apart, counted with the time of the last.
#[test]
fn the_update_message_counts_reminders_apart_from_its_updates() {
    let http = Receiver::start();
    let ops = Opsbook::new().file("ops.yaml", &config(&http, ""));
    let dir = ops.dir();
    declare(dir, "SEV-1", "API down").expect_exit(0);
    incident(dir, "2026-01-10T10:31:00Z", &["remind"])
        .expect_exit(1)
        .stdout_contains("reminder sent");
    incident(dir, "2026-01-10T11:02:00Z", &["remind"])
        .expect_exit(1)
        .stdout_contains("reminder sent");
    incident(
        dir,
        "2026-01-10T11:10:00Z",
        &["update", ID, "--note", "Disk freed on the upload node"],
    )
    .expect_exit(0)
    .stdout_contains("Reminders: 2, last 11:02 UTC");
    let got = texts(&http, HOOK);
    assert_eq!(got.len(), 4, "{:?}", http.paths());
    crate::common::expect_file("incident-update-after-reminders.txt", &got[3]);
    assert!(timeline(dir).matches("\"kind\":\"reminded\"").count() == 2);
    // Recorded when claimed, before any channel took it: it says made, not sent.
    assert!(
        timeline(dir).contains("Reminder made: an update is due"),
        "{}",
        timeline(dir)
    );
}

/// A dead webhook costs a run one delivery bound, however many messages it has for it:
/// `remind` with three reminders due tries the webhook once and keeps everything; once
/// it is back, the next run delivers the three declarations and the three reminders,
/// oldest first.
#[test]
fn a_dead_webhook_costs_remind_one_try_and_the_next_run_delivers_all_in_order() {
    let http = Receiver::start();
    http.up.store(false, Ordering::SeqCst);
    let ops = Opsbook::new().file("ops.yaml", &config(&http, ""));
    let dir = ops.dir();
    for title in ["API down", "Checkout down", "Search down"] {
        declare(dir, "SEV-1", title).expect_exit(0);
    }
    let tried = http.paths().len();
    let run = incident(dir, "2026-01-10T10:31:00Z", &["remind"]).expect_exit(1);
    assert_eq!(
        run.stdout
            .matches("reminder NOT delivered (the next run sends it again)")
            .count(),
        3,
        "{}",
        run.stdout
    );
    assert_eq!(http.paths().len(), tried + 1, "one try: {:?}", http.paths());
    assert_eq!(queued(dir).len(), 6);

    http.up.store(true, Ordering::SeqCst);
    incident(dir, "2026-01-10T10:35:00Z", &["remind"])
        .expect_exit(1)
        .stdout_contains("already reminded at 2026-01-10T10:31:00Z");
    let got = texts(&http, HOOK);
    let firsts: Vec<&str> = got.iter().map(|t| t.lines().next().unwrap()).collect();
    assert_eq!(
        firsts,
        [
            "🚨 INCIDENT DECLARED",
            "🚨 INCIDENT DECLARED",
            "🚨 INCIDENT DECLARED",
            "⏰ REMINDER: INC-20260110-1 API down (SEV-1, investigating)",
            "⏰ REMINDER: INC-20260110-2 Checkout down (SEV-1, investigating)",
            "⏰ REMINDER: INC-20260110-3 Search down (SEV-1, investigating)",
        ]
    );
    for (n, title) in ["API down", "Checkout down", "Search down"]
        .iter()
        .enumerate()
    {
        assert!(got[n].contains(&format!("Title: {title}")), "{}", got[n]);
    }
    assert!(queued(dir).is_empty());
}

/// A queue that cannot be written (a full disk under `undelivered/`) does not keep an
/// incident message from going out: it is sent straight; one the channel does not take
/// either is said plainly as not kept, on the timeline and in the audit log.
#[test]
fn a_full_queue_still_sends_and_says_what_it_could_not_keep() {
    use std::io::Write;
    let http = Receiver::start();
    let ops = Opsbook::new().file("ops.yaml", &config(&http, ""));
    let dir = ops.dir();
    let _disk = crate::common::Mounted::tmpfs(&dir.join("state/undelivered"), "16k");
    let mut filler = std::fs::File::create(dir.join("state/undelivered/filler")).unwrap();
    while filler.write_all(&[0u8; 4096]).is_ok() {}
    drop(filler);
    let run = declare(dir, "SEV-1", "API down").expect_exit(0);
    assert!(!run.stderr.contains("failed"), "{}", run.stderr);
    assert_eq!(texts(&http, HOOK).len(), 1, "sent straight");

    http.up.store(false, Ordering::SeqCst);
    incident(
        dir,
        "2026-01-10T10:10:00Z",
        &["update", ID, "--note", "Still looking"],
    )
    .expect_exit(0)
    .stderr_contains(&format!(
        "notification update of {ID} to @incident-webhook failed: the webhook answered 500"
    ))
    .stderr_contains("NOT kept (cannot queue it: ");
    assert!(queued(dir).is_empty());
    let timeline = timeline(dir);
    assert!(
        timeline.contains("NOT kept (cannot queue it: "),
        "{timeline}"
    );
    let audit = std::fs::read_to_string(dir.join("ops-logs/audit.log")).unwrap();
    assert!(audit.contains("NOT kept"), "{audit}");
}

/// An incident paged at its worst severity and lowered before it was resolved: the
/// channels routed only for the worst severity still hear it end (PagerDuty's alert is
/// resolved), while an incident never that bad is not paged.
#[test]
fn an_incident_lowered_before_its_resolution_still_resolves_its_page() {
    let http = Receiver::start();
    let ops = Opsbook::new().file(
        "ops.yaml",
        &format!(
            "state_dir: state\nincident:\n  dir: incidents\nnotify:\n  channels:\n    pager: {{ pagerduty: {{ routing_key: \"${{PD_KEY}}\", url: \"{}\" }} }}\n  routes:\n    - {{ events: [incident], min_severity: critical, channels: [pager] }}\n",
            http.url("/pd")
        ),
    );
    let dir = ops.dir();
    incident(
        dir,
        NOW,
        &["declare", "--severity", "SEV-1", "--title", "API down"],
    )
    .expect_exit(0);
    incident(
        dir,
        "2026-01-10T10:05:00Z",
        &["update", ID, "--severity", "SEV-3"],
    )
    .expect_exit(0);
    incident(
        dir,
        "2026-01-10T10:40:00Z",
        &["resolve", ID, "--root-cause", "A full disk"],
    )
    .expect_exit(0);
    declare(dir, "SEV-2", "Exports slow");
    let events = http.taken("/pd");
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["event_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["trigger", "resolve"], "{:?}", http.paths());
    assert_eq!(events[1]["dedup_key"], format!("opsbook-incident-{ID}"));
}
