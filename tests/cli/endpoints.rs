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

/// The body the expectation tests judge.
const DOCUMENT: &str = r#"{"status":"healthy","version":"2.4.1","items":[1,2,3],"checks":{"db":"ok","cache":"ok"},"replicas":{"desired":3,"ready":3,"stale":2},"queue":{"depth":"150"},"name":"api","uptime":7200.5,"debug":null}"#;

/// One `http` endpoint per `(name, expect)` against `base`, run through `health`.
fn expecting(base: &str, cases: &[(&str, &str)]) -> crate::common::Run {
    let endpoints: String = cases
        .iter()
        .map(|(name, expect)| {
            format!("    - {{ name: {name}, http: {{ url: \"{base}/\", expect: {expect} }} }}\n")
        })
        .collect();
    health(&endpoints)
}

fn severity_and_message(json: &serde_json::Value, name: &str) -> (String, String) {
    let check = check(json, name);
    let text = |key: &str| check[key].as_str().unwrap_or("missing").to_string();
    (text("severity"), text("message"))
}

#[test]
fn status_lists_mix_codes_and_classes() {
    let ok = server::fixed("200 OK", DOCUMENT);
    let gone = server::fixed("404 Not Found", "{}");
    let broken = server::fixed("502 Bad Gateway", "{}");
    let endpoints = format!(
        "    - {{ name: code_or_class, http: {{ url: \"{gone}/\", expect: {{ status: [200, 4xx] }} }} }}\n\
         \x20   - {{ name: two_classes, http: {{ url: \"{broken}/\", expect: {{ status: [4xx, 5xx] }} }} }}\n\
         \x20   - {{ name: class_then_code, http: {{ url: \"{ok}/\", expect: {{ status: [3xx, 200] }} }} }}\n\
         \x20   - {{ name: quoted, http: {{ url: \"{gone}/\", expect: {{ status: [\"404\", \"5XX\"] }} }} }}\n"
    );
    let run = health(&endpoints).expect_exit(0);
    let json = run.json();
    for name in ["code_or_class", "two_classes", "class_then_code", "quoted"] {
        assert_eq!(check(&json, name)["severity"], "ok", "{name}");
    }
    let endpoints = format!(
        "    - {{ name: neither, http: {{ url: \"{ok}/\", expect: {{ status: [4xx, 5xx] }} }} }}\n\
         \x20   - {{ name: not_this_code, http: {{ url: \"{broken}/\", expect: {{ status: [2xx, 503] }} }} }}\n"
    );
    let run = health(&endpoints).expect_exit(2);
    let json = run.json();
    assert_eq!(
        severity_and_message(&json, "neither"),
        ("critical".into(), "status 200, expected 4xx or 5xx".into())
    );
    assert_eq!(
        severity_and_message(&json, "not_this_code"),
        ("critical".into(), "status 502, expected 2xx or 503".into())
    );
}

#[test]
fn statuses_and_numbers_may_come_from_runbook_variables() {
    let base = server::fixed("200 OK", DOCUMENT);
    let runbook = format!(
        "name: t\nvars: {{ ok: \"200\", items: \"3\", depth: \"200\" }}\nsteps:\n  - name: api\n    http:\n      url: \"{base}/\"\n      expect: {{ status: [\"{{{{ ok }}}}\", 5xx], json: {{ /items: {{ len: \"{{{{ items }}}}\" }}, /queue/depth: {{ lt: \"{{{{ depth }}}}\" }} }} }}\n"
    );
    let run = Opsbook::new()
        .file("rb.yaml", &runbook)
        .args(["run", "rb.yaml", "--format", "json"])
        .run()
        .expect_exit(0);
    assert_eq!(run.json()["checks"]["api"]["severity"], "ok");
    let run = Opsbook::new()
        .file("rb.yaml", &runbook)
        .args(["run", "rb.yaml", "--var", "items=4", "--format", "json"])
        .run()
        .expect_exit(2);
    assert_eq!(
        run.json()["checks"]["api"]["message"],
        "/items has 3 entries, expected exactly 4"
    );
    for (var, expected) in [
        ("ok=2o0", "rb.yaml:7:26: \"2o0\" is not an HTTP status"),
        ("items=three", "rb.yaml:7:67: \"three\" is not a number"),
        ("items=-3", "rb.yaml:7:67: len -3 is not a length"),
    ] {
        let run = Opsbook::new()
            .file("rb.yaml", &runbook)
            .args(["run", "rb.yaml", "--var", var])
            .run()
            .expect_exit(78)
            .stderr_contains(expected);
        assert_eq!(run.stdout, "", "{var}");
    }
}

#[test]
fn json_operators_pass_when_they_hold() {
    let base = server::fixed("200 OK", DOCUMENT);
    let cases = [
        (
            "len_range",
            "{ json: { /items: { len: { min: 1, max: 5 } } } }",
        ),
        (
            "len_exact",
            "{ json: { /checks: { len: 2 }, /name: { len: 3 } } }",
        ),
        (
            "len_graded",
            "{ json: { /items: { len: { warn: 10, crit: 100 } } } }",
        ),
        (
            "len_below",
            "{ json: { /items: { len: { warn: 3, crit: 1, below: true } } } }",
        ),
        ("any", "{ json: { /status: { any: [healthy, degraded] } } }"),
        (
            "regex",
            "{ json: { /version: { regex: '^2\\.4\\.' }, /uptime: { regex: '^7200' } } }",
        ),
        ("absent", "{ json: { /maintenance: { exists: false } } }"),
        ("present", "{ json: { /debug: { exists: true } } }"),
        (
            "compare",
            "{ json: { /uptime: { gt: 3600, le: 7200.5 }, /replicas/ready: { ge: 3, lt: 4 } } }",
        ),
        ("numeric_text", "{ json: { /queue/depth: { lt: 200 } } }"),
        (
            "eq_pointer",
            "{ json: { /replicas/ready: { eq_pointer: /replicas/desired } } }",
        ),
        (
            "eq_object",
            "{ json: { /checks: { eq: { cache: ok, db: ok } } } }",
        ),
        (
            "plain_object",
            "{ json: { /checks: { db: ok, cache: ok } } }",
        ),
        (
            "all_hold",
            "{ json: { /items: { len: { min: 1 }, eq: [1, 2, 3.0] } } }",
        ),
    ];
    let run = expecting(&base, &cases).expect_exit(0);
    let json = run.json();
    for (name, _) in cases {
        assert_eq!(
            check(&json, name)["severity"],
            "ok",
            "{name}: {}",
            check(&json, name)
        );
    }
}

#[test]
fn json_operators_that_fail_name_the_pointer_what_was_found_and_what_was_expected() {
    let base = server::fixed("200 OK", DOCUMENT);
    let cases = [
        (
            "len_min",
            "{ json: { /items: { len: { min: 5 } } } }",
            "/items has 3 entries, expected at least 5",
        ),
        (
            "len_max",
            "{ json: { /checks: { len: { max: 1 } } } }",
            "/checks has 2 members, expected at most 1",
        ),
        (
            "len_exact",
            "{ json: { /name: { len: 4 } } }",
            "/name has 3 characters, expected exactly 4",
        ),
        (
            "len_crit",
            "{ json: { /items: { len: { warn: 1, crit: 2 } } } }",
            "/items has 3 entries (> crit 2)",
        ),
        (
            "len_below",
            "{ json: { /items: { len: { crit: 5, below: true } } } }",
            "/items has 3 entries (< crit 5)",
        ),
        (
            "len_number",
            "{ json: { /uptime: { len: 1 } } }",
            "/uptime = 7200.5, expected an array, object or string to measure (len)",
        ),
        (
            "any",
            "{ json: { /status: { any: [degraded, down] } } }",
            r#"/status = "healthy", expected one of "degraded", "down""#,
        ),
        (
            "regex",
            "{ json: { /version: { regex: '^3\\.' } } }",
            r#"/version = "2.4.1", expected text matching /^3\./"#,
        ),
        (
            "regex_object",
            "{ json: { /checks: { regex: ok } } }",
            r#"/checks = {"db":"ok","cache":"ok"}, expected text matching /ok/"#,
        ),
        (
            "absent",
            "{ json: { /debug: { exists: false } } }",
            "/debug = null, expected absent",
        ),
        (
            "present",
            "{ json: { /maintenance: { exists: true } } }",
            "/maintenance not found in the JSON body",
        ),
        (
            "lt",
            "{ json: { /queue/depth: { lt: 100 } } }",
            r#"/queue/depth = "150", expected < 100"#,
        ),
        (
            "gt",
            "{ json: { /uptime: { gt: 86400 } } }",
            "/uptime = 7200.5, expected > 86400",
        ),
        (
            "le",
            "{ json: { /replicas/stale: { le: 1 } } }",
            "/replicas/stale = 2, expected <= 1",
        ),
        (
            "ge",
            "{ json: { /replicas/stale: { ge: 3 } } }",
            "/replicas/stale = 2, expected >= 3",
        ),
        (
            "not_a_number",
            "{ json: { /status: { gt: 1 } } }",
            r#"/status = "healthy", expected a number > 1"#,
        ),
        (
            "eq_pointer",
            "{ json: { /replicas/stale: { eq_pointer: /replicas/desired } } }",
            "/replicas/stale = 2, expected /replicas/desired = 3",
        ),
        (
            "eq_pointer_missing",
            "{ json: { /replicas/ready: { eq_pointer: /replicas/wanted } } }",
            "/replicas/wanted (eq_pointer of /replicas/ready) not found in the JSON body",
        ),
        (
            "eq",
            "{ json: { /checks: { eq: { db: ok } } } }",
            r#"/checks = {"db":"ok","cache":"ok"}, expected {"db":"ok"}"#,
        ),
        (
            "one_of_several",
            "{ json: { /items: { len: { min: 1 }, eq: [1, 2] } } }",
            "/items = [1,2,3], expected [1,2]",
        ),
        (
            "missing",
            "{ json: { /nope: { len: 1 } } }",
            "/nope not found in the JSON body",
        ),
    ];
    let pairs: Vec<(&str, &str)> = cases.iter().map(|(n, e, _)| (*n, *e)).collect();
    let run = expecting(&base, &pairs).expect_exit(2);
    let json = run.json();
    for (name, _, message) in cases {
        assert_eq!(
            severity_and_message(&json, name),
            ("critical".to_string(), message.to_string()),
            "{name}"
        );
    }
}

#[test]
fn a_len_past_warn_is_a_warning_that_says_so() {
    let base = server::fixed("200 OK", DOCUMENT);
    let run = expecting(
        &base,
        &[(
            "items",
            "{ json: { /items: { len: { warn: 2, crit: 10 } } } }",
        )],
    )
    .expect_exit(1);
    let (severity, message) = severity_and_message(&run.json(), "items");
    assert_eq!(severity, "warning");
    assert!(
        message.starts_with("200 in ") && message.ends_with("; /items has 3 entries (> warn 2)"),
        "{message}"
    );
}

#[test]
fn any_of_holds_when_one_alternative_does_and_says_why_each_failed() {
    let healthy = server::fixed("200 OK", DOCUMENT);
    let maintenance = server::fixed("503 Service Unavailable", r#"{"status":"maintenance"}"#);
    let starting = server::fixed("503 Service Unavailable", r#"{"status":"starting"}"#);
    let either = "{ any_of: [ { status: 200, json: { /status: healthy } }, { status: 503, json: { /status: maintenance } } ] }";
    let endpoints = format!(
        "    - {{ name: first, http: {{ url: \"{healthy}/\", expect: {either} }} }}\n\
         \x20   - {{ name: second, http: {{ url: \"{maintenance}/\", expect: {either} }} }}\n\
         \x20   - {{ name: neither, http: {{ url: \"{starting}/\", expect: {either} }} }}\n\
         \x20   - {{ name: default_2xx, http: {{ url: \"{maintenance}/\", expect: {{ any_of: [ {{ json: {{ /status: maintenance }} }} ] }} }} }}\n\
         \x20   - {{ name: beside, http: {{ url: \"{healthy}/\", expect: {{ json: {{ /name: web }}, any_of: [ {{ status: 200 }} ] }} }} }}\n\
         \x20   - {{ name: warned, http: {{ url: \"{healthy}/\", expect: {{ any_of: [ {{ json: {{ /items: {{ len: {{ warn: 1 }} }} }} }}, {{ json: {{ /status: healthy }} }} ] }} }} }}\n"
    );
    let run = health(&endpoints).expect_exit(2);
    let json = run.json();
    assert_eq!(check(&json, "first")["severity"], "ok");
    assert_eq!(check(&json, "second")["severity"], "ok");
    assert_eq!(
        severity_and_message(&json, "neither"),
        (
            "critical".into(),
            r#"no alternative of any_of holds: (1) status 503, expected 200; (2) /status = "starting", expected "maintenance""#.into()
        )
    );
    // An alternative without `status` expects 2xx, as a whole `expect` does.
    assert_eq!(
        severity_and_message(&json, "default_2xx"),
        (
            "critical".into(),
            "no alternative of any_of holds: (1) status 503, expected 2xx".into()
        )
    );
    // `any_of` is beside the other expectations: both must hold.
    assert_eq!(
        severity_and_message(&json, "beside"),
        ("critical".into(), r#"/name = "api", expected "web""#.into())
    );
    // An alternative holding cleanly wins over one holding with a warning.
    assert_eq!(check(&json, "warned")["severity"], "ok");
}

#[test]
fn bad_expectations_are_config_errors_naming_the_entry() {
    let cases = [
        (
            "{ status: [200, 6xx] }",
            "ops.yaml:3:78: \"6xx\" is not an HTTP status",
        ),
        (
            "{ status: [200, 99] }",
            "ops.yaml:3:78: \"99\" is not an HTTP status",
        ),
        ("{ status: 2xxx }", "\"2xxx\" is not an HTTP status"),
        ("{ status: [] }", "`status: []` accepts nothing"),
        (
            "{ json: { /a: { len: 3, lenn: 2 } } }",
            "`lenn` is not a JSON operator (one of eq, any, regex, exists, len, lt, gt, le, ge, eq_pointer); to compare with an object, write eq: { … }; did you mean \"len\"?",
        ),
        (
            "{ json: { /a: { exists: false, regex: x } } }",
            "`exists: false` cannot hold together with `regex`",
        ),
        (
            "{ json: { /a: { gt: 5, lt: 3 } } }",
            "no number is both > 5 and < 3",
        ),
        (
            "{ json: { /a: { ge: 5, lt: 5 } } }",
            "no number is both >= 5 and < 5",
        ),
        (
            "{ json: { /a: { len: { min: 5, max: 2 } } } }",
            "len min 5 is above max 2",
        ),
        (
            "{ json: { /a: { len: { min: -1 } } } }",
            "len min -1 is not a length",
        ),
        ("{ json: { /a: { len: -1 } } }", "len -1 is negative"),
        (
            "{ json: { /a: { len: {} } } }",
            "len needs `min`, `max`, `warn` or `crit`",
        ),
        (
            "{ json: { /a: { len: { warn: 5, crit: 2 } } } }",
            "warn 5 is above crit 2",
        ),
        (
            "{ json: { /a: { len: { most: 2 } } } }",
            "unknown field `most`",
        ),
        ("{ json: { /a: { any: [] } } }", "`any: []` accepts nothing"),
        (
            "{ json: { /a: { db: ok, len: 3 } } }",
            "`len` is an operator, but this map's first key `db` is not",
        ),
        (
            "{ json: { /a: { eq_pointer: b } } }",
            "\"b\" is not a JSON pointer",
        ),
        ("{ json: { /a: { lt: lots } } }", "\"lots\" is not a number"),
        ("{ json: { /a: { regex: '(' } } }", "invalid regex \"(\""),
        (
            "{ json: { /a: { eq_pointer: /a } } }",
            "/a: `eq_pointer: /a` compares the value with itself",
        ),
        ("{ any_of: [] }", "`any_of: []` can never hold"),
        (
            "{ status: [200, 4xx], any_of: [ { status: 503 }, { status: 5xx, json: { /a: 1 } } ] }",
            "no HTTP status passes both `status` (200 or 4xx) and an alternative of any_of (503; 5xx)",
        ),
        ("{ any_of: [ { colour: red } ] }", "unknown field `colour`"),
    ];
    for (expect, expected) in cases {
        let run = health(&format!(
            "    - {{ name: a, http: {{ url: 'http://127.0.0.1:9/', expect: {expect} }} }}\n"
        ))
        .expect_exit(78)
        .stderr_contains(expected)
        .stderr_contains("ops.yaml:3:");
        assert_eq!(run.stdout, "", "{expect}");
    }
}

/// The `http` example of docs/runbooks.md, as written, in a runbook whose `api` is `base`.
fn documented_example(base: &str) -> String {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/runbooks.md"))
        .expect("docs/runbooks.md");
    let block = docs
        .split_once("**http**\n\n```yaml\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block)
        .expect("docs/runbooks.md has an **http** yaml block");
    let steps: String = block.lines().map(|line| format!("  {line}\n")).collect();
    format!("name: docs\nvars: {{ api: \"{base}\" }}\nsteps:\n{steps}")
}

#[test]
fn the_documented_http_example_holds_for_either_answer_and_says_why_not() {
    let healthy = server::fixed(
        "200 OK",
        r#"{"status":"degraded","version":"2.4.1","checks":{"db":"ok"},"queue":{"depth":"150"},"replicas":{"desired":3,"ready":3},"jobs":{"failed":[]}}"#,
    );
    let maintenance = server::fixed(
        "503 Service Unavailable",
        r#"{"status":"maintenance","version":"2.4.1","checks":{"db":"down"},"queue":{"depth":0},"replicas":{"desired":3,"ready":3},"jobs":{"failed":[1,2,3,4,5,6,7,8,9,10,11,12]}}"#,
    );
    let starting = server::fixed(
        "503 Service Unavailable",
        r#"{"status":"starting","version":"2.4.1","checks":{"db":"ok"},"queue":{"depth":0},"replicas":{"desired":3,"ready":3},"jobs":{"failed":[]}}"#,
    );
    let run = |base: &str, code: i32| {
        Opsbook::new()
            .file("rb.yaml", &documented_example(base))
            .args(["run", "rb.yaml", "--format", "json"])
            .run()
            .expect_exit(code)
            .json()
    };
    let step = "API healthy, or down for maintenance";
    assert_eq!(run(&healthy, 0)["checks"][step]["severity"], "ok");
    let warned = run(&maintenance, 1);
    let message = warned["checks"][step]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.starts_with("503 in ")
            && message.ends_with("; /jobs/failed has 12 entries (> warn 10)"),
        "{message}"
    );
    let failed = run(&starting, 2);
    assert_eq!(
        failed["checks"][step]["message"],
        r#"no alternative of any_of holds: (1) status 503, expected 200; (2) /status = "starting", expected "maintenance""#
    );
}
