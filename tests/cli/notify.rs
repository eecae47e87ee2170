//! Notifications and cron-monitor pings against real receivers on 127.0.0.1: an HTTP
//! receiver (Slack-compatible and generic webhooks, a PagerDuty-shaped events endpoint, a
//! healthchecks-style monitor); e-mail is in `notify_mail`. A fixed clock (`OPSBOOK_NOW`) moves
//! time between runs; fixed readings (`OPSBOOK_READINGS`) make a step fail or pass.

use crate::common::Opsbook;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One request an HTTP receiver took (or refused, when it was down).
#[derive(Clone, Debug)]
pub(crate) struct Request {
    method: String,
    path: String,
    body: String,
    taken: bool,
}

/// An HTTP receiver: every request, in order; answers 200 while `up`, else 500.
pub(crate) struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Request>>>,
    pub(crate) up: Arc<AtomicBool>,
}

impl Receiver {
    pub(crate) fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let up = Arc::new(AtomicBool::new(true));
        let (seen, is_up) = (got.clone(), up.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (seen, is_up) = (seen.clone(), is_up.clone());
                std::thread::spawn(move || answer(stream, &seen, &is_up));
            }
        });
        Receiver { port, got, up }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The bodies taken (answered 200) at `path`, parsed as JSON.
    pub(crate) fn taken(&self, path: &str) -> Vec<serde_json::Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.taken && r.path == path)
            .map(|r| serde_json::from_str(&r.body).expect("a JSON body"))
            .collect()
    }

    pub(crate) fn paths(&self) -> Vec<String> {
        let got = self.got.lock().unwrap();
        got.iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

fn answer(mut stream: TcpStream, seen: &Mutex<Vec<Request>>, up: &AtomicBool) {
    let Some((head, body)) = crate::common::server::read_request(&mut stream) else {
        return;
    };
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let path = words.next().unwrap_or_default().to_string();
    let taken = up.load(Ordering::SeqCst);
    seen.lock().unwrap().push(Request {
        method,
        path,
        body,
        taken,
    });
    let status = if taken {
        "200 OK"
    } else {
        "500 Internal Server Error"
    };
    let _ = stream.write_all(
        format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").as_bytes(),
    );
}

/// Fixed readings with memory `used` percent in use (the runbooks' `Memory` step: warn
/// 75, crit 90).
pub(crate) fn memory(dir: &Path, used: f64) {
    let total: u64 = 100 * 1024 * 1024 * 1024;
    let available = ((100.0 - used) / 100.0 * total as f64) as u64;
    let json = serde_json::json!({
        "memory": {"total": total, "available": available},
        "disks": {"/": {"mount": "/", "total": total, "available": total / 2}},
        "cpu": {"percent": 5.0, "count": 4},
        "load": {"one": 0.5, "five": 0.25, "fifteen": 0.125},
    });
    std::fs::write(dir.join("readings.json"), json.to_string()).unwrap();
}

const BOOK: &str = "name: upkeep\nsteps:\n  - name: Memory\n    memory: { warn: 75, crit: 90 }\n";

/// Secrets the config takes from the environment: none may show anywhere.
pub(crate) const SECRETS: [(&str, &str); 3] = [
    ("HOOK_TOKEN", "canary-hook-token"),
    ("PD_KEY", "canary-routing-key"),
    ("SMTP_PASSWORD", "canary-smtp-password"),
];

pub(crate) fn opsbook(dir: &Path, now: &str, args: &[&str]) -> crate::common::Run {
    let mut all = vec!["--config", "ops.yaml"];
    all.extend_from_slice(args);
    let mut ob = Opsbook::new()
        .env("OPSBOOK_NOW", now)
        .env("LOG_TO_FILE", "true")
        .env("LOG_DIR", "ops-logs")
        .env(
            "OPSBOOK_READINGS",
            dir.join("readings.json").to_str().unwrap(),
        );
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

/// No secret in any file opsbook wrote (audit log, state, undelivered messages).
pub(crate) fn no_secret_in_files(dir: &Path) {
    let mut stack = vec![dir.join("state"), dir.join("ops-logs")];
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

pub(crate) fn setup(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ops.yaml"), config).unwrap();
    std::fs::write(dir.path().join("upkeep.yaml"), BOOK).unwrap();
    memory(dir.path(), 10.0);
    dir
}

pub(crate) const T0: &str = "2026-03-02T03:00:00Z";

/// A directory set up with one Slack channel, `chat`, at `http`'s `/chat`.
fn chat_at(http: &Receiver) -> tempfile::TempDir {
    setup(&format!(
        "state_dir: state\nnotify:\n  channels:\n    chat: {{ slack: {{ url: \"{}\" }} }}\n",
        http.url("/chat")
    ))
}

/// A config with the `daily` schedule running `upkeep.yaml`, and `notify` (the section's
/// body, indented two spaces).
pub(crate) fn daily_with(notify: &str) -> String {
    format!(
        "state_dir: state\nmaintain:\n  schedules:\n    daily: {{ runbook: upkeep.yaml }}\nnotify:\n{notify}"
    )
}

#[test]
fn one_message_on_failure_none_while_failing_a_repeat_after_the_interval_one_on_recovery() {
    let http = Receiver::start();
    let config = daily_with(&format!(
        "  repeat: 4h
  channels:
    chat: {{ slack: {{ url: \"{}/slack/${{HOOK_TOKEN}}\" }} }}
    hook: {{ webhook: {{ url: \"{}\", headers: {{ Authorization: \"Bearer ${{HOOK_TOKEN}}\" }} }} }}
    pager: {{ pagerduty: {{ routing_key: \"${{PD_KEY}}\", url: \"{}\" }} }}
  routes:
    - {{ events: [maintain], channels: [chat, hook] }}
    - {{ events: [maintain], min_severity: critical, channels: [pager] }}
",
        http.url(""),
        http.url("/hook"),
        http.url("/pd"),
    ));
    let dir = setup(&config);
    let slack = "/slack/canary-hook-token";
    let at = |now: &str| opsbook(dir.path(), now, &["maintain", "run", "daily"]);

    // Healthy: nothing to say.
    at(T0).expect_exit(0);
    assert!(http.paths().is_empty(), "{:?}", http.paths());

    // Memory at 95%: one message per channel.
    memory(dir.path(), 95.0);
    at("2026-03-02T04:00:00Z").expect_exit(2);
    let chat = http.taken(slack);
    assert_eq!(chat.len(), 1, "{chat:?}");
    let text = chat[0]["text"].as_str().unwrap();
    // The rerun reads the same configuration, wherever it is run from.
    let rerun = format!(
        "Rerun: opsbook --config {}/ops.yaml maintain run daily",
        dir.path().canonicalize().unwrap().display()
    );
    for part in [
        "Memory failed (critical) in maintain:daily on ",
        "memory 95% used",
        &rerun,
    ] {
        assert!(text.contains(part), "{part:?} not in {text}");
    }
    let hook = http.taken("/hook");
    assert_eq!(hook.len(), 1);
    assert_eq!(hook[0]["event"], "problem");
    assert_eq!(hook[0]["scope"], "maintain:daily");
    assert_eq!(hook[0]["severity"], "critical");
    assert!(!hook[0]["host"].as_str().unwrap().is_empty());
    let pd = http.taken("/pd");
    assert_eq!(pd.len(), 1);
    assert_eq!(pd[0]["routing_key"], "canary-routing-key");
    assert_eq!(pd[0]["event_action"], "trigger");
    assert_eq!(pd[0]["payload"]["severity"], "critical");
    assert_eq!(pd[0]["payload"]["source"], hook[0]["host"]);
    assert!(
        pd[0]["payload"]["summary"]
            .as_str()
            .unwrap()
            .contains("memory 95% used")
    );
    let dedup = pd[0]["dedup_key"].as_str().unwrap().to_string();

    // Still broken an hour later: nothing new.
    at("2026-03-02T05:00:00Z").expect_exit(2);
    assert_eq!(http.taken(slack).len(), 1);
    assert_eq!(http.taken("/pd").len(), 1);

    // Four hours after the first message: a reminder, same PagerDuty incident.
    at("2026-03-02T08:00:00Z").expect_exit(2);
    let chat = http.taken(slack);
    assert_eq!(chat.len(), 2);
    assert!(chat[1]["text"].as_str().unwrap().contains("still failing"));
    let pd = http.taken("/pd");
    assert_eq!(pd.len(), 2);
    assert_eq!(pd[1]["dedup_key"], dedup.as_str());

    // Recovered: one message each; PagerDuty resolves the same dedup_key.
    memory(dir.path(), 10.0);
    at("2026-03-02T09:00:00Z").expect_exit(0);
    let chat = http.taken(slack);
    assert_eq!(chat.len(), 3);
    // The reading it names is the last failing one, said as such, not as if current.
    let text = chat[2]["text"].as_str().unwrap();
    assert!(
        text.starts_with("Memory recovered in maintain:daily on "),
        "{text}"
    );
    assert!(
        text.contains("(failing since 2026-03-02T04:00:00Z; last failure: memory 95% used"),
        "{text}"
    );
    assert_eq!(http.taken("/hook")[2]["event"], "recovered");
    let pd = http.taken("/pd");
    assert_eq!(pd.len(), 3);
    assert_eq!(pd[2]["event_action"], "resolve");
    assert_eq!(pd[2]["dedup_key"], dedup.as_str());

    // Healthy again: quiet.
    at("2026-03-02T10:00:00Z").expect_exit(0);
    assert_eq!(http.paths().len(), 9, "{:?}", http.paths());
    no_secret_in_files(dir.path());
}

#[test]
fn a_warning_reaches_only_the_routes_that_take_warnings() {
    let http = Receiver::start();
    let config = daily_with(&format!(
        "  channels:
    chat: {{ slack: {{ url: \"{}\" }} }}
    pager: {{ pagerduty: {{ routing_key: \"${{PD_KEY}}\", url: \"{}\" }} }}
  routes:
    - {{ channels: [chat] }}
    - {{ events: [maintain], min_severity: critical, channels: [pager] }}
",
        http.url("/chat"),
        http.url("/pd"),
    ));
    let dir = setup(&config);
    memory(dir.path(), 80.0);
    opsbook(dir.path(), T0, &["maintain", "run", "daily"]).expect_exit(1);
    assert_eq!(http.taken("/chat").len(), 1);
    assert!(http.taken("/pd").is_empty(), "{:?}", http.paths());
}

#[test]
fn a_dead_channel_loses_nothing_and_the_next_run_delivers_it_exactly_once() {
    let http = Receiver::start();
    http.up.store(false, Ordering::SeqCst);
    let config = daily_with(&format!(
        "  delivery: {{ attempts: 2, backoff: 10ms, timeout: 5s }}
  channels:
    chat: {{ slack: {{ url: \"{}/${{HOOK_TOKEN}}\" }} }}
",
        http.url("/chat")
    ));
    let dir = setup(&config);
    let path = "/chat/canary-hook-token";
    memory(dir.path(), 95.0);
    let run = opsbook(dir.path(), T0, &["maintain", "run", "daily"])
        .expect_exit(2)
        .stderr_contains("notification problem \"Memory\" to chat failed: the webhook answered 500")
        .stderr_contains("(after 2 attempts)")
        .stderr_contains("kept in state/undelivered/");
    assert!(run.stdout.contains("daily"), "{}", run.stdout);
    assert_eq!(http.paths().len(), 2, "both attempts: {:?}", http.paths());
    let queued: Vec<_> = std::fs::read_dir(dir.path().join("state/undelivered"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(queued.len(), 1);
    let audit = std::fs::read_to_string(dir.path().join("ops-logs/audit.log")).unwrap();
    assert!(audit.contains("\"notify.sent\""), "{audit}");
    assert!(audit.contains("\"failed\""), "{audit}");

    // The channel is back; the problem is still open (no new start): the next run
    // delivers the kept message, once.
    http.up.store(true, Ordering::SeqCst);
    let run = opsbook(
        dir.path(),
        "2026-03-02T04:00:00Z",
        &["maintain", "run", "daily"],
    );
    run.expect_exit(2);
    let taken = http.taken(path);
    assert_eq!(taken.len(), 1, "{:?}", http.paths());
    assert!(taken[0]["text"].as_str().unwrap().contains("Memory failed"));
    let left = std::fs::read_dir(dir.path().join("state/undelivered"))
        .unwrap()
        .count();
    assert_eq!(left, 0);
    opsbook(
        dir.path(),
        "2026-03-02T05:00:00Z",
        &["maintain", "run", "daily"],
    )
    .expect_exit(2);
    assert_eq!(http.taken(path).len(), 1, "{:?}", http.paths());
    let audit = std::fs::read_to_string(dir.path().join("ops-logs/audit.log")).unwrap();
    assert!(audit.contains("\"notify.redelivered\""), "{audit}");
    no_secret_in_files(dir.path());
}

#[test]
fn run_notifies_only_when_the_runbook_or_the_flag_asks() {
    let http = Receiver::start();
    let dir = chat_at(&http);
    std::fs::write(
        dir.path().join("told.yaml"),
        format!(
            "name: told\nnotify: true\n{}",
            BOOK.trim_start_matches("name: upkeep\n")
        ),
    )
    .unwrap();
    memory(dir.path(), 95.0);
    opsbook(dir.path(), T0, &["run", "upkeep.yaml"]).expect_exit(2);
    assert!(http.paths().is_empty(), "not asked: {:?}", http.paths());
    opsbook(dir.path(), T0, &["run", "upkeep.yaml", "--notify"]).expect_exit(2);
    let chat = http.taken("/chat");
    assert_eq!(chat.len(), 1);
    let text = chat[0]["text"].as_str().unwrap();
    assert!(text.contains("in run:upkeep on "), "{text}");
    let here = dir.path().canonicalize().unwrap();
    let rerun = format!(
        "Rerun: opsbook --config {0}/ops.yaml run {0}/upkeep.yaml --notify",
        here.display()
    );
    assert!(text.contains(&rerun), "{text}");
    opsbook(dir.path(), T0, &["run", "told.yaml"]).expect_exit(2);
    assert_eq!(http.taken("/chat").len(), 2);
    assert!(
        http.taken("/chat")[1]["text"]
            .as_str()
            .unwrap()
            .contains("in run:told on ")
    );
}

/// The rerun a run's message says reproduces the run: the config, the runbook file, every
/// `--var` shell-quoted (a space, a quote, a `$`), `--only` and `--notify`. A secret's
/// value is never in it: its `--var` reads the shell variable of its name. A shell reads
/// the line back as the same words.
#[test]
fn a_runs_rerun_says_its_options_quoted_and_no_secret() {
    let http = Receiver::start();
    let dir = chat_at(&http);
    std::fs::write(
        dir.path().join("gated.yaml"),
        "name: gated\nsteps:\n  - name: Memory\n    memory: { warn: 75, crit: 90 }\n  - name: Disk\n    disk: { path: /, warn: 80%, crit: 90% }\n",
    )
    .unwrap();
    memory(dir.path(), 95.0);
    let greeting = "it's $HOME \"here\"";
    let given = [
        "run".to_string(),
        "gated.yaml".to_string(),
        "--var".to_string(),
        format!("greeting={greeting}"),
        "--var".to_string(),
        "API_TOKEN=canary-api-token".to_string(),
        "--var".to_string(),
        "db=postgres://ops:canary-db-password@db1/app".to_string(),
        "--var".to_string(),
        "db-password=canary-dash-password".to_string(),
        "--only".to_string(),
        "Memory".to_string(),
        "--notify".to_string(),
    ];
    let args: Vec<&str> = given.iter().map(String::as_str).collect();
    opsbook(dir.path(), T0, &args).expect_exit(2);
    let chat = http.taken("/chat");
    assert_eq!(chat.len(), 1, "{:?}", http.paths());
    let text = chat[0]["text"].as_str().unwrap();
    let rerun = text
        .lines()
        .find_map(|l| l.strip_prefix("Rerun: opsbook "))
        .unwrap_or_else(|| panic!("no rerun in {text}"));
    for secret in [
        "canary-api-token",
        "canary-db-password",
        "canary-dash-password",
    ] {
        assert!(!text.contains(secret), "{text}");
    }
    assert!(rerun.contains("--var API_TOKEN=\"$API_TOKEN\""), "{rerun}");
    // The words a shell makes of it, with the secrets in the shell's variables.
    let words = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("printf '%s\\n' {rerun}"))
        .env("API_TOKEN", "canary-api-token")
        .env("db", "postgres://ops:canary-db-password@db1/app")
        .env("HOME", "/nowhere")
        .output()
        .unwrap();
    let words = String::from_utf8(words.stdout).unwrap();
    let here = dir.path().canonicalize().unwrap();
    let mut expected = vec![
        "--config".to_string(),
        format!("{}/ops.yaml", here.display()),
        "run".to_string(),
        format!("{}/gated.yaml", here.display()),
    ];
    // No shell variable can be named `db-password`: the name, and a word saying why.
    expected.extend(given[2..].iter().map(|w| match w.as_str() {
        "db-password=canary-dash-password" => "db-password=<secret>".to_string(),
        _ => w.clone(),
    }));
    assert_eq!(words.lines().collect::<Vec<_>>(), expected, "{rerun}");
}

#[test]
fn concurrent_runs_of_one_failing_runbook_send_one_message() {
    let http = Receiver::start();
    let dir = chat_at(&http);
    memory(dir.path(), 95.0);
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || {
                opsbook(&dir, T0, &["run", "upkeep.yaml", "--notify"]).expect_exit(2);
            })
        })
        .collect();
    for run in runs {
        run.join().unwrap();
    }
    assert_eq!(http.taken("/chat").len(), 1, "{:?}", http.paths());
}

#[test]
fn pings_say_start_then_success_or_fail_and_a_dead_monitor_is_only_a_warning() {
    let http = Receiver::start();
    let dead = crate::common::server::closed_port();
    let config = format!(
        "state_dir: state
maintain:
  schedules:
    daily: {{ runbook: upkeep.yaml, ping: {{ url: \"{}\" }} }}
    weekly: {{ runbook: upkeep.yaml, ping: {{ url: \"{}/\", method: post }} }}
    monthly: {{ runbook: upkeep.yaml, ping: {{ url: \"http://127.0.0.1:{dead}/ping/${{HOOK_TOKEN}}\", timeout: 5s }} }}
",
        http.url("/ping/abc-123"),
        http.url("/ping/w"),
    );
    let dir = setup(&config);
    opsbook(dir.path(), T0, &["maintain", "run", "daily"]).expect_exit(0);
    assert_eq!(
        http.paths(),
        vec!["GET /ping/abc-123/start", "GET /ping/abc-123"]
    );
    memory(dir.path(), 95.0);
    opsbook(dir.path(), T0, &["maintain", "run", "weekly"]).expect_exit(2);
    assert_eq!(
        http.paths()[2..],
        ["POST /ping/w/start", "POST /ping/w/fail"]
    );
    // A warning is upkeep that ran: success.
    memory(dir.path(), 80.0);
    opsbook(dir.path(), T0, &["maintain", "run", "daily"]).expect_exit(1);
    assert_eq!(
        http.paths()[4..],
        ["GET /ping/abc-123/start", "GET /ping/abc-123"]
    );
    // The monitor is down: the schedule still runs and ends by its own result.
    memory(dir.path(), 10.0);
    let run = opsbook(dir.path(), T0, &["maintain", "run", "monthly"])
        .expect_exit(0)
        .stderr_contains("the cron-monitor start ping failed")
        .stderr_contains("the cron-monitor success ping failed");
    assert!(run.stdout.contains("monthly"), "{}", run.stdout);
    no_secret_in_files(dir.path());
}

/// A schedule that cannot even load its runbook (invalid, or missing) failed: the monitor
/// hears `start`, then `fail`, and the command still exits 78 naming the fault.
#[test]
fn a_schedule_whose_runbook_does_not_load_pings_fail() {
    let http = Receiver::start();
    let config = format!(
        "state_dir: state
maintain:
  schedules:
    daily: {{ runbook: broken.yaml, ping: {{ url: \"{}\" }} }}
    weekly: {{ runbook: gone.yaml, ping: {{ url: \"{}\" }} }}
",
        http.url("/ping/d"),
        http.url("/ping/w"),
    );
    let dir = setup(&config);
    std::fs::write(
        dir.path().join("broken.yaml"),
        "name: broken\nsteps:\n  - name: Memory\n    memroy: { warn: 75 }\n",
    )
    .unwrap();
    opsbook(dir.path(), T0, &["maintain", "run", "daily"])
        .expect_exit(78)
        .stderr_contains("broken.yaml:4");
    assert_eq!(http.paths(), ["GET /ping/d/start", "GET /ping/d/fail"]);
    opsbook(dir.path(), T0, &["maintain", "run", "weekly"])
        .expect_exit(78)
        .stderr_contains("gone.yaml");
    assert_eq!(http.paths()[2..], ["GET /ping/w/start", "GET /ping/w/fail"]);
}

#[test]
fn bad_notify_settings_are_located_and_exit_78() {
    let cases = [
        (
            "notify:\n  channels:\n    chat: { slack: { url: http://x, colour: red } }\n",
            "colour",
        ),
        (
            "notify:\n  channels:\n    chat: { sms: { to: 1 } }\n",
            "sms",
        ),
        (
            "notify:\n  channels:\n    chat: { slack: { url: http://x } }\n  routes:\n    - { channels: [chta] }\n",
            "no channel \"chta\" under notify.channels (known: chat); did you mean \"chat\"?",
        ),
        (
            "notify:\n  channels:\n    mail: { email: { server: x, from: \"not an address\", to: [a@b.c] } }\n",
            "\"not an address\" is not an e-mail address",
        ),
        (
            "notify:\n  routes:\n    - { min_severity: high, channels: [x] }\n",
            "high",
        ),
        (
            "maintain:\n  schedules:\n    daily: { runbook: daily, ping: { uri: http://x } }\n",
            "uri",
        ),
        (
            "notify:\n  channels:\n    chat: { slack: { url: \"ftp://x/hook\" } }\n",
            "notify.channels.chat: `url` must start with http:// or https://",
        ),
        (
            "notify:\n  channels:\n    pd: { pagerduty: { routing_key: \"\" } }\n",
            "`routing_key` is empty",
        ),
        (
            "notify:\n  channels:\n    mail: { email: { server: smtp.example.com, security: plain, username: u, password_env: SMTP_PASSWORD, from: a@b.c, to: [a@b.c] } }\n",
            "would send the password in the clear to smtp.example.com",
        ),
        (
            "notify:\n  delivery: { attempts: 100000 }\n",
            "notify.delivery.attempts must be 1 to 10",
        ),
        (
            "notify:\n  delivery: { timeout: 0s }\n",
            "notify.delivery.timeout must be more than 0s",
        ),
    ];
    for (config, said) in cases {
        let run = Opsbook::new()
            .file("ops.yaml", config)
            .args(["--config", "ops.yaml", "maintain", "run", "daily"])
            .run()
            .expect_exit(78);
        assert!(run.stderr.contains("ops.yaml:"), "{config}: {}", run.stderr);
        assert!(run.stderr.contains(said), "{config}: {}", run.stderr);
    }
}

#[test]
fn a_run_killed_before_sending_loses_nothing_and_the_next_run_sends_it_once() {
    let http = Receiver::start();
    let config = daily_with(&format!(
        "  channels:\n    chat: {{ slack: {{ url: \"{}\" }} }}\n",
        http.url("/chat")
    ));
    let dir = setup(&config);
    memory(dir.path(), 95.0);
    let killed = Opsbook::new()
        .env("OPSBOOK_NOW", T0)
        .env("OPSBOOK_TEST_STOP_AT", "notify-before-send")
        .env(
            "OPSBOOK_READINGS",
            dir.path().join("readings.json").to_str().unwrap(),
        )
        .args(["--config", "ops.yaml", "maintain", "run", "daily"])
        .run_in(dir.path());
    assert_eq!(killed.code, None, "killed by the seam: {}", killed.stderr);
    assert!(http.paths().is_empty(), "{:?}", http.paths());
    let queued = std::fs::read_dir(dir.path().join("state/undelivered"))
        .unwrap()
        .count();
    assert_eq!(queued, 1, "the message waits in undelivered/");
    // The problem is recorded as open, so the next run has no new start: it sends the
    // kept message, once.
    opsbook(
        dir.path(),
        "2026-03-02T04:00:00Z",
        &["maintain", "run", "daily"],
    )
    .expect_exit(2);
    let chat = http.taken("/chat");
    assert_eq!(chat.len(), 1, "{:?}", http.paths());
    assert!(chat[0]["text"].as_str().unwrap().contains("Memory failed"));
}

/// Until `got()` holds, or a bound that only a broken build reaches.
fn wait_for(what: &str, got: impl Fn() -> bool) {
    let bound = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !got() {
        assert!(std::time::Instant::now() < bound, "never happened: {what}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// `health --watch` tells the `health` routes once when an endpoint's failures count
/// and once when it recovers: paced by the endpoint (each request held until released)
/// and by the receiver.
#[test]
fn health_watch_tells_once_when_an_endpoint_goes_down_and_once_when_it_recovers() {
    let chat = Receiver::start();
    let api = crate::common::server::Held::start(&[503, 503, 200, 200]);
    let config = format!(
        "state_dir: state\nhealth:\n  endpoints:\n    - name: api\n      http: {{ url: \"{}/health\", timeout: 60s }}\n      interval: 20ms\n      failure_threshold: 2\n      success_threshold: 1\nnotify:\n  channels:\n    chat: {{ slack: {{ url: \"{}\" }} }}\n  routes:\n    - {{ events: [health], channels: [chat] }}\n",
        api.url,
        chat.url("/chat")
    );
    let dir = setup(&config);
    let running = watching(dir.path(), "ops.yaml");
    // One failure: not counted yet, nothing sent.
    api.release(1);
    api.arrived(2);
    assert!(chat.taken("/chat").is_empty(), "{:?}", chat.paths());
    // The second failure counts: one message.
    api.release(2);
    api.arrived(3);
    wait_for("the down message", || chat.taken("/chat").len() == 1);
    let down = chat.taken("/chat")[0]["text"].as_str().unwrap().to_string();
    assert!(
        down.starts_with("api failed (critical) in health:api on "),
        "{down}"
    );
    assert!(down.contains("status 503"), "{down}");
    assert!(down.contains("Rerun: opsbook --config "), "{down}");
    assert!(down.ends_with("/ops.yaml health"), "{down}");
    // A success recovers it: one more message, then nothing while it stays up.
    api.release(4);
    wait_for("the recovery message", || chat.taken("/chat").len() == 2);
    let up = chat.taken("/chat")[1]["text"].as_str().unwrap().to_string();
    assert!(up.starts_with("api recovered in health:api on "), "{up}");
    assert!(up.contains("; last failure: status 503"), "{up}");
    assert!(!up.contains("): status 503"), "{up}");
    api.arrived(5);
    running.signal(libc::SIGINT);
    let run = running.finish(std::time::Duration::from_secs(30));
    assert!(
        matches!(run.code, Some(0 | 2)),
        "{:?}: {}",
        run.code,
        run.stderr
    );
    assert_eq!(chat.taken("/chat").len(), 2, "{:?}", chat.paths());
}

/// Incident messages go to the `notify:` channels routed for incidents (and no other),
/// beside the incident webhook.
#[test]
fn incident_messages_reach_the_channels_routed_for_incidents() {
    let http = Receiver::start();
    let config = format!(
        "state_dir: state\nnotify:\n  channels:\n    oncall: {{ webhook: {{ url: \"{}\" }} }}\n    ops: {{ slack: {{ url: \"{}\" }} }}\n  routes:\n    - {{ events: [incident], channels: [oncall] }}\n    - {{ events: [maintain], channels: [ops] }}\n",
        http.url("/oncall"),
        http.url("/ops")
    );
    let dir = setup(&config);
    opsbook(
        dir.path(),
        T0,
        &[
            "incident",
            "declare",
            "--severity",
            "SEV-1",
            "--title",
            "API down",
        ],
    )
    .expect_exit(0);
    let oncall = http.taken("/oncall");
    assert_eq!(oncall.len(), 1, "{:?}", http.paths());
    let text = oncall[0]["text"].as_str().unwrap();
    assert!(text.contains("API down"), "{text}");
    assert!(http.taken("/ops").is_empty(), "{:?}", http.paths());
}

/// `health --watch` tells the health routes about the machine's own readings too: one
/// message when memory runs out, none for each later report while it stays out.
#[test]
fn health_watch_tells_once_about_the_machines_readings() {
    let chat = Receiver::start();
    let config = format!(
        "state_dir: state\nnotify:\n  channels:\n    chat: {{ slack: {{ url: \"{}\" }} }}\n  routes:\n    - {{ events: [health], channels: [chat] }}\n",
        chat.url("/chat")
    );
    let dir = setup(&config);
    memory(dir.path(), 95.0);
    let mut running = watching(dir.path(), "ops.yaml");
    // Three reports, each with memory critical.
    let stdout = running.child.stdout.take().unwrap();
    let mut reports = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if line.starts_with("critical") && line.contains("memory") {
            reports += 1;
            if reports == 3 {
                break;
            }
        }
    }
    wait_for("the memory message", || !chat.taken("/chat").is_empty());
    running.signal(libc::SIGINT);
    let _ = running.finish(std::time::Duration::from_secs(30));
    let told = chat.taken("/chat");
    assert_eq!(told.len(), 1, "{:?}", chat.paths());
    let text = told[0]["text"].as_str().unwrap();
    assert!(
        text.contains("failed (critical) in health:machine on "),
        "{text}"
    );
}

/// An endpoint a stopped monitor said was down and that recovered meanwhile: the next
/// monitor starts it down, so its recovery is counted and told, once.
#[test]
fn a_restarted_monitor_tells_the_recovery_of_an_endpoint_left_down() {
    let chat = Receiver::start();
    let config = |url: &str| one_endpoint(url, &chat.url("/chat"), "");
    let down = crate::common::server::fixed("503 Service Unavailable", "{}");
    let dir = setup(&config(&down));
    let watch = || watching(dir.path(), "ops.yaml");
    let running = watch();
    wait_for("the down message", || chat.taken("/chat").len() == 1);
    running.signal(libc::SIGINT);
    let _ = running.finish(std::time::Duration::from_secs(30));
    // Fixed while no monitor ran.
    let up = crate::common::server::fixed("200 OK", "{}");
    std::fs::write(dir.path().join("ops.yaml"), config(&up)).unwrap();
    let running = watch();
    wait_for("the recovery message", || chat.taken("/chat").len() == 2);
    running.signal(libc::SIGINT);
    let _ = running.finish(std::time::Duration::from_secs(30));
    let told = chat.taken("/chat");
    assert_eq!(told.len(), 2, "{:?}", chat.paths());
    let text = told[1]["text"].as_str().unwrap();
    assert!(
        text.starts_with("api recovered in health:api on "),
        "{text}"
    );
}

/// A config with one endpoint `api` at `url` graded every 20ms and counted at once, and
/// one Slack channel `chat` at `chat` (`extra` goes under `notify:`).
fn one_endpoint(url: &str, chat: &str, extra: &str) -> String {
    format!(
        "state_dir: state\nhealth:\n  endpoints:\n    - name: api\n      http: {{ url: \"{url}\", timeout: 60s }}\n      interval: 20ms\n      failure_threshold: 1\n      success_threshold: 1\nnotify:\n  channels:\n    chat: {{ slack: {{ url: \"{chat}\" }} }}\n{extra}"
    )
}

pub(crate) fn undelivered(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("state/undelivered"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

/// Ctrl-C while a message is on its way: the monitor waits for the channel's answer and
/// records it, so nothing taken is left queued to be sent twice by the next run.
#[test]
fn a_stopped_monitor_finishes_the_message_on_its_way_before_it_exits() {
    let chat = crate::common::server::Held::start(&[200]);
    let down = crate::common::server::fixed("503 Service Unavailable", "{}");
    let dir = setup(&one_endpoint(&down, &format!("{}/chat", chat.url), ""));
    let running = watching(dir.path(), "ops.yaml");
    chat.arrived(1);
    assert_eq!(undelivered(dir.path()), 1, "queued before it is sent");
    running.signal(libc::SIGINT);
    chat.release(1);
    let run = running.finish(std::time::Duration::from_secs(60));
    assert!(run.code.is_some(), "{}", run.stderr);
    assert_eq!(undelivered(dir.path()), 0, "{}", run.stderr);
    let state = std::fs::read_to_string(dir.path().join("state/notify/health%3Aapi.json")).unwrap();
    assert!(state.contains("\"api\""), "{state}");
}

/// Under `--serve`, an endpoint that stays down is told again once `repeat` has passed,
/// with no change of its state to set it off.
#[test]
fn serve_repeats_an_endpoint_still_down_after_the_repeat_interval() {
    let chat = Receiver::start();
    let down = crate::common::server::fixed("503 Service Unavailable", "{}");
    let dir = setup(&one_endpoint(&down, &chat.url("/chat"), "  repeat: 1s\n"));
    let running = Opsbook::new()
        .args(["--config", "ops.yaml", "health", "--serve", "127.0.0.1:0"])
        .spawn_in(dir.path());
    wait_for("the reminder", || chat.taken("/chat").len() >= 2);
    running.signal(libc::SIGTERM);
    let _ = running.finish(std::time::Duration::from_secs(60));
    let told = chat.taken("/chat");
    let first = told[0]["text"].as_str().unwrap();
    assert!(
        first.starts_with("api failed (critical) in health:api"),
        "{first}"
    );
    let again = told[1]["text"].as_str().unwrap();
    assert!(
        again.starts_with("api still failing (critical, since "),
        "{again}"
    );
    assert!(again.contains("status 503"), "{again}");
}

/// Under `--serve`, a message a dead channel did not take is delivered once the channel
/// is back, while the endpoint stays down: no change of state is needed to retry it.
#[test]
fn serve_retries_an_undelivered_message_without_waiting_for_a_change() {
    let chat = Receiver::start();
    chat.up.store(false, Ordering::SeqCst);
    let down = crate::common::server::fixed("503 Service Unavailable", "{}");
    let bound = "  delivery: { attempts: 1, timeout: 5s }\n";
    let dir = setup(&one_endpoint(&down, &chat.url("/chat"), bound));
    let running = Opsbook::new()
        .args(["--config", "ops.yaml", "health", "--serve", "127.0.0.1:0"])
        .spawn_in(dir.path());
    wait_for("the refused attempt", || !chat.paths().is_empty());
    wait_for("the message queued", || undelivered(dir.path()) == 1);
    chat.up.store(true, Ordering::SeqCst);
    wait_for("the retry", || chat.taken("/chat").len() == 1);
    wait_for("the queue emptied", || undelivered(dir.path()) == 0);
    running.signal(libc::SIGTERM);
    let run = running.finish(std::time::Duration::from_secs(60));
    let told = chat.taken("/chat");
    assert_eq!(told.len(), 1, "{:?}\n{}", chat.paths(), run.stderr);
    let text = told[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("api failed (critical) in health:api"),
        "{text}"
    );
}

/// A dead channel costs a run one delivery bound, however many messages wait for it: the
/// first is tried, the rest are kept untried (in order) and said once; the next run with
/// the channel back delivers them all, oldest first.
#[test]
fn a_dead_channel_costs_a_run_one_delivery_bound_however_long_its_queue() {
    let http = Receiver::start();
    http.up.store(false, Ordering::SeqCst);
    let config = format!(
        "state_dir: state\nmaintain:\n  schedules:\n    three: {{ runbook: three.yaml }}\nnotify:\n  delivery: {{ attempts: 2, backoff: 10ms, timeout: 5s }}\n  channels:\n    chat: {{ slack: {{ url: \"{}\" }} }}\n",
        http.url("/chat")
    );
    let dir = setup(&config);
    let steps: String = ["A", "B", "C"]
        .iter()
        .map(|n| format!("  - name: Memory {n}\n    memory: {{ warn: 75, crit: 90 }}\n    continue_on_failure: true\n"))
        .collect();
    std::fs::write(
        dir.path().join("three.yaml"),
        format!("name: three\nsteps:\n{steps}"),
    )
    .unwrap();
    memory(dir.path(), 95.0);
    opsbook(dir.path(), T0, &["maintain", "run", "three"])
        .expect_exit(2)
        .stderr_contains("notification problem \"Memory A\" to chat failed")
        .stderr_contains("notification problem \"Memory C\" to chat not tried: the channel did not take an earlier one");
    assert_eq!(
        http.paths().len(),
        2,
        "one message's attempts: {:?}",
        http.paths()
    );
    assert_eq!(undelivered(dir.path()), 3);
    // Still dead: the queue is tried once more, by its oldest message only.
    opsbook(
        dir.path(),
        "2026-03-02T04:00:00Z",
        &["maintain", "run", "three"],
    )
    .expect_exit(2)
    .stderr_contains("2 more notifications for channel chat kept untried for the next run");
    assert_eq!(http.paths().len(), 4, "{:?}", http.paths());
    assert_eq!(undelivered(dir.path()), 3);
    http.up.store(true, Ordering::SeqCst);
    opsbook(
        dir.path(),
        "2026-03-02T05:00:00Z",
        &["maintain", "run", "three"],
    )
    .expect_exit(2);
    let told = first_lines(&http, "/chat");
    assert_eq!(told.len(), 3, "{told:?}");
    for (said, step) in told.iter().zip(["A", "B", "C"]) {
        assert!(
            said.starts_with(&format!("Memory {step} failed")),
            "{told:?}"
        );
    }
    assert_eq!(undelivered(dir.path()), 0);
}

/// A notification lock another process holds delays the notification, never the health
/// server: `/health/detailed` answers while the message waits for the lock.
#[test]
fn a_held_notification_lock_never_stalls_the_health_server() {
    let chat = Receiver::start();
    let down = crate::common::server::fixed("503 Service Unavailable", "{}");
    let dir = setup(&one_endpoint(&down, &chat.url("/chat"), ""));
    let held = hold_notify_lock(dir.path());
    let port = crate::common::server::closed_port();
    let address = format!("127.0.0.1:{port}");
    let mut running = Opsbook::new()
        .args(["--config", "ops.yaml", "health", "--serve", &address])
        .spawn_in(dir.path());
    running.stderr_line("api: up → down");
    for _ in 0..3 {
        let (code, body) = crate::common::server::get(&address, "/health/detailed");
        assert_eq!(code, 503, "{body}");
        assert!(body.contains("\"api\""), "{body}");
    }
    assert!(chat.taken("/chat").is_empty(), "sent without the lock");
    held.unlock().unwrap();
    wait_for("the message once the lock is free", || {
        chat.taken("/chat").len() == 1
    });
    running.signal(libc::SIGTERM);
    let _ = running.finish(std::time::Duration::from_secs(60));
}

/// Stderr lines of a running opsbook, read by one reader (so none is lost between calls).
struct Lines(std::io::Lines<BufReader<std::process::ChildStderr>>);

impl Lines {
    fn of(running: &mut crate::common::Running) -> Lines {
        Lines(BufReader::new(running.child.stderr.take().unwrap()).lines())
    }

    /// Read until a line contains `needle`.
    fn until(&mut self, needle: &str) {
        for line in self.0.by_ref() {
            if line.unwrap().contains(needle) {
                return;
            }
        }
        panic!("opsbook ended before printing {needle:?}");
    }
}

/// A second monitor on the same state directory that has not counted the failure yet
/// never tells the first one's problem recovered: only a counted change does.
#[test]
fn a_second_monitor_that_has_not_counted_the_failure_never_says_recovered() {
    let chat = Receiver::start();
    let down = crate::common::server::fixed("503 Service Unavailable", "{}");
    let dir = setup(&one_endpoint(&down, &chat.url("/chat"), ""));
    // The same endpoint, counted down only after a thousand failures.
    let patient = one_endpoint(&down, &chat.url("/chat"), "")
        .replace("failure_threshold: 1", "failure_threshold: 1000");
    std::fs::write(dir.path().join("patient.yaml"), patient).unwrap();
    let monitor = |config: &str| watching(dir.path(), config);
    let mut second = monitor("patient.yaml");
    let mut reports = BufReader::new(second.child.stdout.take().unwrap()).lines();
    let mut report = || {
        for line in reports.by_ref() {
            if line.unwrap().starts_with("every 1s") {
                return;
            }
        }
        panic!("the second monitor ended");
    };
    report();
    let first = monitor("ops.yaml");
    wait_for("the first monitor's message", || {
        chat.taken("/chat").len() == 1
    });
    // Two more reports (each a tick) of the second monitor, settled before it exits.
    report();
    report();
    second.signal(libc::SIGINT);
    let _ = second.finish(std::time::Duration::from_secs(60));
    first.signal(libc::SIGINT);
    let _ = first.finish(std::time::Duration::from_secs(60));
    let told = chat.taken("/chat");
    assert_eq!(told.len(), 1, "{told:?}");
}

/// A channel that refuses one message (a 4xx) still takes the others, in the same run;
/// the refused one stays queued and is tried again by a later run, not at every call.
#[test]
fn a_refused_message_holds_up_only_itself() {
    let (port, got) = refusing("Memory A");
    let config = format!(
        "state_dir: state\nmaintain:\n  schedules:\n    two: {{ runbook: two.yaml }}\nnotify:\n  delivery: {{ attempts: 2, backoff: 10ms, timeout: 5s }}\n  channels:\n    chat: {{ slack: {{ url: \"http://127.0.0.1:{port}/chat\" }} }}\n"
    );
    let dir = setup(&config);
    let steps: String = ["A", "B"]
        .iter()
        .map(|n| format!("  - name: Memory {n}\n    memory: {{ warn: 75, crit: 90 }}\n    continue_on_failure: true\n"))
        .collect();
    std::fs::write(
        dir.path().join("two.yaml"),
        format!("name: two\nsteps:\n{steps}"),
    )
    .unwrap();
    memory(dir.path(), 95.0);
    opsbook(dir.path(), T0, &["maintain", "run", "two"])
        .expect_exit(2)
        .stderr_contains(
            "notification problem \"Memory A\" to chat failed: the webhook answered 400",
        );
    let statuses = |got: &Mutex<Vec<(u16, String)>>| -> Vec<u16> {
        got.lock().unwrap().iter().map(|(s, _)| *s).collect()
    };
    assert_eq!(
        statuses(&got),
        [400, 200],
        "one try for the refused, B taken"
    );
    assert_eq!(undelivered(dir.path()), 1);
    // A second at once: the refused message waits for its retry (backoff), B is not resent.
    opsbook(dir.path(), T0, &["maintain", "run", "two"]).expect_exit(2);
    assert_eq!(statuses(&got), [400, 200]);
    // An hour later it is tried again.
    opsbook(
        dir.path(),
        "2026-03-02T04:00:00Z",
        &["maintain", "run", "two"],
    )
    .expect_exit(2);
    assert_eq!(statuses(&got), [400, 200, 400]);
    assert_eq!(undelivered(dir.path()), 1);
}

/// Messages keep the order they were queued in even when the clock is set back between
/// runs: a recovery never arrives before the failure it ends.
#[test]
fn queued_messages_keep_their_order_when_the_clock_goes_back() {
    let http = Receiver::start();
    http.up.store(false, Ordering::SeqCst);
    let config = daily_with(&format!(
        "  delivery: {{ attempts: 1, timeout: 5s }}\n  channels:\n    chat: {{ slack: {{ url: \"{}\" }} }}\n",
        http.url("/chat")
    ));
    let dir = setup(&config);
    memory(dir.path(), 95.0);
    opsbook(
        dir.path(),
        "2026-03-02T05:00:00Z",
        &["maintain", "run", "daily"],
    )
    .expect_exit(2);
    memory(dir.path(), 10.0);
    // The clock set back an hour; the retry of the first is due (it is far ahead).
    opsbook(
        dir.path(),
        "2026-03-02T04:00:00Z",
        &["maintain", "run", "daily"],
    )
    .expect_exit(0);
    assert_eq!(undelivered(dir.path()), 2);
    http.up.store(true, Ordering::SeqCst);
    opsbook(
        dir.path(),
        "2026-03-02T04:30:00Z",
        &["maintain", "run", "daily"],
    )
    .expect_exit(0);
    let told: Vec<String> = http
        .taken("/chat")
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(told[0].starts_with("Memory failed"), "{told:?}");
    assert!(told[1].starts_with("Memory recovered"), "{told:?}");
}

/// A second Ctrl-C stops at once, even while the notification lock is taken elsewhere
/// and a message is on its way: what was on its way stays queued, and the changes not yet
/// settled are recorded (queued, the state written) for the next run, or said lost when
/// the lock never came.
#[test]
fn a_second_stop_keeps_what_is_on_its_way_and_records_the_rest() {
    let chat = crate::common::server::Held::start(&[200]);
    let down = crate::common::server::fixed("503 Service Unavailable", "{}");
    let config = one_endpoint(&down, &format!("{}/chat", chat.url), "").replace(
        "notify:\n",
        &format!("    - name: db\n      http: {{ url: \"{down}\", timeout: 60s }}\n      interval: 20ms\n      failure_threshold: 1\n      success_threshold: 1\nnotify:\n"),
    );
    let dir = setup(&config);
    let mut running = Opsbook::new()
        .args(["--config", "ops.yaml", "health", "--serve", "127.0.0.1:0"])
        .spawn_in(dir.path());
    let mut lines = Lines::of(&mut running);
    lines.until("up → down");
    lines.until("up → down");
    chat.arrived(1); // one message on its way (held), the other change waiting
    running.signal(libc::SIGTERM);
    lines.until("Ctrl-C again");
    running.signal(libc::SIGTERM);
    lines.until("stopping without sending");
    let run = running.finish(std::time::Duration::from_secs(60));
    assert!(run.code.is_some());
    assert_eq!(undelivered(dir.path()), 2, "both kept");
    for name in ["api", "db"] {
        let state = dir
            .path()
            .join(format!("state/notify/health%3A{name}.json"));
        let state = std::fs::read_to_string(state).unwrap();
        assert!(state.contains(&format!("\"{name}\"")), "{state}");
    }
}

/// An endpoint told down and then renamed away: its problem stays open (nothing can say it
/// recovered), and a starting monitor says so, naming where to forget it.
#[test]
fn a_monitor_names_problems_left_open_for_endpoints_no_longer_configured() {
    let chat = Receiver::start();
    let down = crate::common::server::fixed("503 Service Unavailable", "{}");
    let dir = setup(&one_endpoint(&down, &chat.url("/chat"), ""));
    let watch = || watching(dir.path(), "ops.yaml");
    let running = watch();
    wait_for("the down message", || chat.taken("/chat").len() == 1);
    running.signal(libc::SIGINT);
    let _ = running.finish(std::time::Duration::from_secs(60));
    let renamed = one_endpoint(&down, &chat.url("/chat"), "").replace("name: api", "name: api-v2");
    std::fs::write(dir.path().join("ops.yaml"), renamed).unwrap();
    let mut running = watch();
    running.stderr_line(
        "health: health:api was told failing by an earlier monitor and its endpoint is no longer configured: it stays open",
    );
    running.signal(libc::SIGINT);
    let _ = running.finish(std::time::Duration::from_secs(60));
    assert!(
        chat.taken("/chat")
            .iter()
            .all(|m| !m["text"].as_str().unwrap().contains("recovered")),
        "{:?}",
        chat.paths()
    );
}

/// A schedule whose runbook no longer loads is a problem told like any other: once, at
/// critical, while what it found failing before stays open; once it runs again, its
/// recovery is told.
#[test]
fn a_schedule_that_cannot_run_is_told_once_and_its_recovery_too() {
    let http = Receiver::start();
    let config = daily_with(&format!(
        "  channels:\n    chat: {{ slack: {{ url: \"{}\" }} }}\n",
        http.url("/chat")
    ));
    let dir = setup(&config);
    memory(dir.path(), 95.0);
    opsbook(dir.path(), T0, &["maintain", "run", "daily"]).expect_exit(2);
    let good = std::fs::read_to_string(dir.path().join("upkeep.yaml")).unwrap();
    std::fs::write(
        dir.path().join("upkeep.yaml"),
        good.replace("memory:", "memroy:"),
    )
    .unwrap();
    for at in ["2026-03-02T04:00:00Z", "2026-03-02T05:00:00Z"] {
        opsbook(dir.path(), at, &["maintain", "run", "daily"]).expect_exit(78);
    }
    std::fs::write(dir.path().join("upkeep.yaml"), &good).unwrap();
    opsbook(
        dir.path(),
        "2026-03-02T06:00:00Z",
        &["maintain", "run", "daily"],
    )
    .expect_exit(2);
    let told = first_lines(&http, "/chat");
    assert_eq!(told.len(), 3, "{told:?}");
    assert!(told[0].starts_with("Memory failed (critical)"), "{told:?}");
    assert!(
        told[1].starts_with("schedule daily failed (critical) in maintain:daily on ")
            && told[1].contains("could not run: ")
            && told[1].contains("upkeep.yaml"),
        "{told:?}"
    );
    assert!(
        told[2].starts_with("schedule daily recovered in maintain:daily"),
        "{told:?}"
    );
}

/// An unset `${VAR}` under `notify:` stops every command that would tell people (exit
/// 78, naming it) instead of dropping the whole section and telling nobody; a command
/// that tells nobody is not held up by it.
#[test]
fn an_unset_variable_under_notify_stops_the_commands_that_notify() {
    let http = Receiver::start();
    let config = daily_with(&format!(
        "  channels:\n    chat: {{ slack: {{ url: \"{}\" }} }}\n    pager: {{ pagerduty: {{ routing_key: \"${{UNSET_PD_KEY}}\", url: \"{}\" }} }}\n",
        http.url("/chat"),
        http.url("/pd")
    ));
    let dir = setup(&config);
    memory(dir.path(), 95.0);
    std::fs::write(
        dir.path().join("gate.yaml"),
        "name: gate\nnotify: true\nsteps:\n  - name: Memory\n    memory: { warn: 75, crit: 90 }\n",
    )
    .unwrap();
    for args in [
        &["maintain", "run", "daily"][..],
        &[
            "incident",
            "declare",
            "--severity",
            "SEV-1",
            "--title",
            "API down",
        ],
        &["health", "--serve", "127.0.0.1:0"],
        &["run", "gate.yaml"],
        &["run", "upkeep.yaml", "--notify"],
    ] {
        opsbook(dir.path(), T0, args)
            .expect_exit(78)
            .stderr_contains("UNSET_PD_KEY");
    }
    assert!(http.paths().is_empty(), "{:?}", http.paths());
    // Nothing told: not held up.
    opsbook(dir.path(), T0, &["run", "upkeep.yaml"]).expect_exit(2);
    opsbook(dir.path(), T0, &["health"]).expect_exit(2);
    for args in [
        &["maintain", "status"][..],
        &["incident", "list"],
        &["incident", "metrics", "--output", "incidents.prom"],
    ] {
        let run = opsbook(dir.path(), T0, args);
        assert_ne!(run.code, Some(78), "{args:?}: {}", run.stderr);
        assert!(
            !run.stderr.contains("UNSET_PD_KEY"),
            "{args:?}: {}",
            run.stderr
        );
    }
}

/// A message the channel refused is dropped once a newer one about the same problem
/// reached it (it never lands after its recovery), and while it waits for its retry it
/// holds up no newer message.
#[test]
fn a_refused_message_is_superseded_by_the_newer_one_about_the_same_problem() {
    let (port, got) = refusing("Memory failed");
    let config = daily_with(&format!(
        "  delivery: {{ attempts: 1, backoff: 1m, timeout: 5s }}\n  channels:\n    chat: {{ slack: {{ url: \"http://127.0.0.1:{port}/chat\" }} }}\n"
    ));
    let dir = setup(&config);
    memory(dir.path(), 95.0);
    opsbook(dir.path(), T0, &["maintain", "run", "daily"]).expect_exit(2);
    assert_eq!(undelivered(dir.path()), 1);
    // Ten seconds later, recovered: the refused problem's retry is not due, and it holds
    // nothing up; the recovery goes out and supersedes it.
    memory(dir.path(), 10.0);
    opsbook(
        dir.path(),
        "2026-03-02T03:00:10Z",
        &["maintain", "run", "daily"],
    )
    .expect_exit(0)
    .stderr_contains("dropped: a newer message about the same thing reached it");
    assert_eq!(undelivered(dir.path()), 0);
    opsbook(
        dir.path(),
        "2026-03-02T05:00:00Z",
        &["maintain", "run", "daily"],
    )
    .expect_exit(0);
    let got = got.lock().unwrap();
    let statuses: Vec<u16> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [400, 200], "{got:?}");
    assert!(got[1].1.contains("Memory recovered"), "{got:?}");
}

/// While another process holds the notification lock, a second Ctrl-C still stops at
/// once: the machine's reports waiting are one (only the latest matters), and what could
/// not be recorded in the time left is counted, not waited for.
#[test]
fn a_second_stop_is_prompt_while_the_lock_is_held_elsewhere() {
    let chat = Receiver::start();
    let down = crate::common::server::fixed("503 Service Unavailable", "{}");
    let dir = setup(&one_endpoint(&down, &chat.url("/chat"), ""));
    let _held = hold_notify_lock(dir.path());
    let mut running = watching(dir.path(), "ops.yaml");
    let mut lines = Lines::of(&mut running);
    lines.until("up → down");
    let mut reports = BufReader::new(running.child.stdout.take().unwrap()).lines();
    let mut seen = 0;
    while seen < 3 {
        if reports.next().unwrap().unwrap().starts_with("every 1s") {
            seen += 1;
        }
    }
    running.signal(libc::SIGINT);
    lines.until("Ctrl-C again");
    running.signal(libc::SIGINT);
    lines.until("health: 2 changes could not be recorded before the stop");
    let run = running.finish(std::time::Duration::from_secs(60));
    assert!(run.code.is_some());
    assert!(chat.paths().is_empty(), "{:?}", chat.paths());
}

/// A route naming an unknown channel is one error, not a second false one about the
/// channels it does name; routes without any channel are refused too.
#[test]
fn a_route_to_an_unknown_channel_is_one_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ops.yaml"),
        "notify:\n  channels:\n    chat: { slack: { url: \"http://127.0.0.1:1/x\" } }\n  routes:\n    - { channels: [chat, foo] }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bare.yaml"),
        "notify:\n  routes:\n    - { channels: [chat] }\n",
    )
    .unwrap();
    let run = Opsbook::new()
        .args(["--config", "ops.yaml", "config", "validate"])
        .run_in(dir.path())
        .expect_exit(78)
        .stderr_contains("no channel \"foo\" under notify.channels (known: chat)");
    assert!(!run.stderr.contains("known: none"), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("no channel").count(),
        1,
        "{}",
        run.stderr
    );
    std::fs::write(
        dir.path().join("empty.yaml"),
        "notify:\n  channels:\n    chat: { slack: { url: \"http://127.0.0.1:1/x\" } }\n  routes:\n    - { events: [maintain], channels: [chat] }\n    - { events: [health], channels: [] }\n",
    )
    .unwrap();
    let run = Opsbook::new()
        .args(["--config", "empty.yaml", "config", "validate"])
        .run_in(dir.path())
        .expect_exit(78)
        .stderr_contains("empty.yaml:6:7: a route's `channels` is empty");
    assert_eq!(run.stderr.matches("is empty").count(), 1, "{}", run.stderr);
    Opsbook::new()
        .args(["--config", "bare.yaml", "config", "validate"])
        .run_in(dir.path())
        .expect_exit(78)
        .stderr_contains(
            "notify.routes[0].channels names \"chat\", but notify.channels names no channel",
        );
}

/// One Ctrl-C while another process keeps the notification lock: the stop does not wait
/// for the lock forever (a service manager would kill it), it stops without sending once
/// its limit passed (a minute; one second here, through the test seam).
#[test]
fn a_stop_waits_for_a_held_lock_only_so_long() {
    let chat = Receiver::start();
    let down = crate::common::server::fixed("503 Service Unavailable", "{}");
    let dir = setup(&one_endpoint(&down, &chat.url("/chat"), ""));
    let _held = hold_notify_lock(dir.path());
    let mut running = Opsbook::new()
        .env("OPSBOOK_TEST_STOP_LIMIT", "1")
        .args(["--config", "ops.yaml", "health", "--serve", "127.0.0.1:0"])
        .spawn_in(dir.path());
    let mut lines = Lines::of(&mut running);
    lines.until("up → down");
    running.signal(libc::SIGTERM);
    lines.until("stopping without sending");
    lines.until("1 change could not be recorded before the stop");
    let run = running.finish(std::time::Duration::from_secs(60));
    assert!(run.code.is_some());
    assert!(chat.paths().is_empty(), "{:?}", chat.paths());
}

/// The first line of each message `http` took at `path`, in order.
fn first_lines(http: &Receiver, path: &str) -> Vec<String> {
    http.taken(path)
        .iter()
        .map(|m| {
            let text = m["text"].as_str().unwrap_or_default();
            text.lines().next().unwrap_or_default().to_string()
        })
        .collect()
}

/// `opsbook --config CONFIG health --watch 1s` in `dir`, on the fixed readings there.
fn watching(dir: &Path, config: &str) -> crate::common::Running {
    Opsbook::new()
        .env(
            "OPSBOOK_READINGS",
            dir.join("readings.json").to_str().unwrap(),
        )
        .args(["--config", config, "health", "--watch", "1s"])
        .spawn_in(dir)
}

/// The notification lock of `dir`'s state directory, taken as another process would.
fn hold_notify_lock(dir: &Path) -> std::fs::File {
    use std::os::unix::fs::DirBuilderExt;
    let notify = dir.join("state/notify");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&notify)
        .unwrap();
    let held = std::fs::File::create(notify.join(".lock")).unwrap();
    held.lock().unwrap();
    held
}

/// A channel on 127.0.0.1 that refuses (400) every body containing `needle` and takes
/// the rest: its port, and each request's status and body, in order.
type Answered = Arc<Mutex<Vec<(u16, String)>>>;

fn refusing(needle: &'static str) -> (u16, Answered) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Answered::default();
    let seen = got.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let Some((_, body)) = crate::common::server::read_request(&mut stream) else {
                continue;
            };
            let status = if body.contains(needle) { 400 } else { 200 };
            seen.lock().unwrap().push((status, body));
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (port, got)
}
