//! Endpoint probes in `health`, against real servers on 127.0.0.1.

use crate::common::{Opsbook, server};
use std::time::{Duration, Instant};

/// Run health with fixed (healthy) resource readings and these endpoints.
fn health(endpoints: &str) -> crate::common::Run {
    Opsbook::new()
        .readings(10.0, 10.0, 1.0)
        .file("ops.yaml", &format!("health:\n  endpoints:\n{endpoints}"))
        .args(["--config", "ops.yaml", "health", "--format", "json"])
        .run()
}

fn check<'a>(json: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    &json["checks"][name]
}

#[test]
fn a_healthy_server_passes_with_its_json() {
    let base = server::http();
    let run = health(&format!(
        "    - name: api\n      http: {{ url: \"{base}/ok\", expect: {{ status: 200, json: {{ /status: healthy }} }} }}\n"
    ))
    .expect_exit(0);
    let json = run.json();
    let api = check(&json, "api");
    assert_eq!(api["status"], "healthy");
    assert_eq!(api["status_code"], 200);
    assert_eq!(api["kind"], "http");
}

#[test]
fn failures_say_what_was_seen() {
    let base = server::http();
    let closed = server::closed_port();
    let endpoints = format!(
        "    - {{ name: err, http: {{ url: \"{base}/500\" }} }}\n\
         \x20   - {{ name: wrong, http: {{ url: \"{base}/degraded\", expect: {{ json: {{ /status: healthy }} }} }} }}\n\
         \x20   - {{ name: missing, http: {{ url: \"{base}/ok\", expect: {{ json: {{ /checks/db: ok }} }} }} }}\n\
         \x20   - {{ name: notfound, http: {{ url: \"{base}/nope\", expect: {{ status: 200 }} }} }}\n\
         \x20   - {{ name: refused, http: {{ url: \"http://127.0.0.1:{closed}/\" }} }}\n\
         \x20   - {{ name: loop, http: {{ url: \"{base}/loop\", max_redirects: 3 }} }}\n"
    );
    let run = health(&endpoints).expect_exit(2);
    let json = run.json();
    let message = |name: &str| {
        check(&json, name)["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(message("err"), "status 500, expected 2xx");
    assert_eq!(
        message("wrong"),
        r#"/status = "degraded", expected "healthy""#
    );
    assert_eq!(message("missing"), "/checks/db not found in the JSON body");
    assert_eq!(message("notfound"), "status 404, expected 200");
    assert!(
        message("refused").starts_with("cannot connect"),
        "{}",
        message("refused")
    );
    assert!(
        message("refused").contains("refused"),
        "{}",
        message("refused")
    );
    assert!(message("loop").contains("redirect"), "{}", message("loop"));
    for name in ["err", "wrong", "missing", "notfound", "refused", "loop"] {
        assert_eq!(check(&json, name)["severity"], "critical", "{name}");
    }
}

#[test]
fn slow_servers_are_graded_by_latency() {
    let base = server::http();
    let endpoints = format!(
        "    - {{ name: warn, http: {{ url: \"{base}/slow/300\", latency: {{ warn: 100ms, crit: 2s }} }} }}\n\
         \x20   - {{ name: crit, http: {{ url: \"{base}/slow/300\", latency: {{ warn: 50ms, crit: 200ms }} }} }}\n"
    );
    let run = health(&endpoints).expect_exit(2);
    let json = run.json();
    assert_eq!(check(&json, "warn")["severity"], "warning");
    assert!(
        check(&json, "warn")["message"]
            .as_str()
            .unwrap_or_default()
            .contains("> warn 100ms")
    );
    assert_eq!(check(&json, "crit")["severity"], "critical");
    assert!(
        check(&json, "crit")["message"]
            .as_str()
            .unwrap_or_default()
            .contains("> crit 200ms")
    );
}

#[test]
fn hostile_servers_end_within_the_timeout() {
    let base = server::http();
    let endpoints = format!(
        "    - {{ name: hang, http: {{ url: \"{base}/hang\", timeout: 500ms }} }}\n\
         \x20   - {{ name: stall, http: {{ url: \"{base}/stall-body\", timeout: 500ms }} }}\n\
         \x20   - {{ name: endless, http: {{ url: \"{base}/endless\", timeout: 5s, max_body: 65536, expect: {{ body_contains: never-there }} }} }}\n"
    );
    let started = Instant::now();
    let run = health(&endpoints).expect_exit(2);
    // Concurrent: the whole report takes about the slowest probe, not the sum.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    let json = run.json();
    assert_eq!(
        check(&json, "hang")["message"],
        "no complete response within 500ms"
    );
    assert_eq!(
        check(&json, "stall")["message"],
        "no complete response within 500ms"
    );
    let endless = check(&json, "endless");
    assert_eq!(endless["bytes"], 65536);
    assert_eq!(
        endless["message"],
        "body does not contain \"never-there\" (in the first max_body bytes)"
    );
}

#[test]
fn tcp_send_and_expect() {
    let pong = server::tcp("+PONG\r\n");
    let garbage = server::tcp("-ERR unknown\r\n");
    let closed = server::closed_port();
    let endpoints = format!(
        "    - {{ name: redis, tcp: {{ host: 127.0.0.1, port: {pong}, send: \"PING\\r\\n\", expect: \"+PONG\" }} }}\n\
         \x20   - {{ name: garbage, tcp: {{ host: 127.0.0.1, port: {garbage}, send: \"PING\\r\\n\", expect: \"+PONG\" }} }}\n\
         \x20   - {{ name: closed, tcp: {{ host: 127.0.0.1, port: {closed} }} }}\n"
    );
    let run = health(&endpoints).expect_exit(2);
    let json = run.json();
    assert_eq!(check(&json, "redis")["severity"], "ok");
    let garbage_message = check(&json, "garbage")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        garbage_message.contains(r#"reply "-ERR unknown\r\n" does not contain "+PONG""#),
        "{garbage_message}"
    );
    assert!(
        check(&json, "closed")["message"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot connect")
    );
}

#[test]
fn secrets_from_the_environment_never_appear_in_any_output_or_log() {
    let base = server::http();
    let canary = "canary-token-5d1e0c";
    // In a header and in the URL's query string; the expectation fails on purpose so the
    // message, the data and the logs all have something to say about this endpoint.
    let config = format!(
        "health:\n  endpoints:\n    - name: api\n      http:\n        url: \"{base}/echo-header/authorization?token=${{OPS_CANARY}}\"\n        headers: {{ Authorization: \"Bearer ${{OPS_CANARY}}\" }}\n        expect: {{ body_contains: nothing-like-this }}\n"
    );
    for format in ["text", "json", "prometheus", "junit", "nagios"] {
        let run = Opsbook::new()
            .readings(10.0, 10.0, 1.0)
            .file("ops.yaml", &config)
            .env("OPS_CANARY", canary)
            .env("LOG_TO_FILE", "1")
            .env("LOG_DIR", "logs")
            .env("LOG_LEVEL", "DEBUG")
            .args(["--config", "ops.yaml", "health", "-vvv", "--format", format])
            .run()
            .expect_exit(2);
        assert!(
            !run.stdout.contains(canary),
            "{format} stdout leaks:\n{}",
            run.stdout
        );
        assert!(!run.stderr.contains(canary), "{format} stderr leaks");
        let logs = run.files_under("logs");
        assert!(logs.contains("api"), "nothing was logged:\n{logs}");
        assert!(!logs.contains(canary), "{format} logs leak:\n{logs}");
    }
    // The server really received it: the probe used the secret, only the output hides it.
    let run = Opsbook::new()
        .readings(10.0, 10.0, 1.0)
        .file(
            "ops.yaml",
            &config.replace("nothing-like-this", &format!("Bearer {canary}")),
        )
        .env("OPS_CANARY", canary)
        .args(["--config", "ops.yaml", "health"])
        .run()
        .expect_exit(0);
    assert!(!run.stdout.contains(canary));
}

#[test]
fn bad_endpoints_are_rejected_before_any_probe() {
    let cases = [
        (
            "    - { name: a, http: { url: 'not a url' } }\n",
            "ops.yaml:3:31: \"not a url\" is not a valid URL",
        ),
        (
            "    - { name: a, http: { url: 'http://x/', colour: red } }\n",
            "unknown field `colour`",
        ),
        (
            "    - { name: a, http: { url: 'http://x/', timeout: -2s } }\n",
            "is not a duration",
        ),
        (
            "    - { name: a, http: { url: 'http://x/', latency: { warn: 2s, crit: 1s } } }\n",
            "latency warn 2s is above crit 1s",
        ),
        ("    - { name: a }\n", "step \"a\" has no kind"),
        (
            "    - { name: a, tcp: { host: h, port: 1 }, http: { url: 'http://x/' } }\n",
            "more than one kind",
        ),
        (
            "    - { name: a, tcp: { host: h, port: 1 } }\n    - { name: a, tcp: { host: h, port: 2 } }\n",
            "endpoint name \"a\" is used twice",
        ),
        (
            "    - { name: memory, tcp: { host: h, port: 1 } }\n",
            "\"memory\" is a built-in check's name",
        ),
    ];
    for (endpoints, expected) in cases {
        let run = health(endpoints).expect_exit(78).stderr_contains(expected);
        assert_eq!(run.stdout, "");
    }
}

#[test]
fn probes_run_concurrently_up_to_the_bound() {
    let base = server::http();
    let endpoints: String = (0..8)
        .map(|i| format!("    - {{ name: p{i}, http: {{ url: \"{base}/slow/400\" }} }}\n"))
        .collect();
    let timed = |concurrency: &str| {
        let started = Instant::now();
        Opsbook::new()
            .readings(10.0, 10.0, 1.0)
            .file("ops.yaml", &format!("health:\n  endpoints:\n{endpoints}"))
            .args([
                "--config",
                "ops.yaml",
                "health",
                "--concurrency",
                concurrency,
            ])
            .run()
            .expect_exit(0);
        started.elapsed()
    };
    // 8 probes of 400 ms: one at a time would be 3.2 s, all at once about 0.4 s (the
    // generous bound leaves room for a busy machine); two at a time can't beat 1.6 s.
    assert!(timed("64") < Duration::from_millis(2800));
    assert!(timed("2") >= Duration::from_millis(1600));
}

#[test]
fn an_unreadable_ca_file_is_unknown_and_says_which_file() {
    let base = server::http();
    let run = health(&format!(
        "    - {{ name: api, http: {{ url: \"{base}/ok\", ca_file: /no/such/ca.pem }} }}\n"
    ))
    .expect_exit(3);
    let json = run.json();
    let message = check(&json, "api")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.starts_with("cannot read ca_file /no/such/ca.pem"),
        "{message}"
    );
}
