//! `health --watch` and `--serve` grade each endpoint on its own interval, counting
//! `failure_threshold` failures in a row before it is down and `success_threshold`
//! successes before it is up again. Paced by the server: a request held unanswered keeps
//! the prober where the test wants it, and the next request arriving proves the previous
//! answer was counted.

use crate::common::Opsbook;
use crate::common::server::{Held, get};
use crate::modes::serving;
use std::io::Read;
use std::time::Duration;

/// Four failures, then successes.
const SCRIPT: &[u16] = &[503, 503, 503, 503, 200];

fn config(url: &str) -> String {
    format!(
        "logging: {{ dir: logs, to_file: true }}\nhealth:\n  endpoints:\n    - name: api\n      http: {{ url: \"{url}/health\", timeout: 60s }}\n      interval: 20ms\n      failure_threshold: 3\n      success_threshold: 2\n"
    )
}

/// The counted changes in the audit log, as `outcome: detail` (a recovery's cut after
/// "200 in ", where its latency follows).
fn audited(dir: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("logs/audit.log")).unwrap_or_default();
    text.lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("a JSON line"))
        .filter(|entry| entry["action"] == "health.endpoint")
        .map(|entry| {
            let line = format!(
                "{}: {}",
                entry["outcome"].as_str().unwrap(),
                entry["detail"].as_str().unwrap()
            );
            match line.find(" 200 in ") {
                Some(at) => line[..at + " 200 in ".len()].to_string(),
                None => line,
            }
        })
        .collect()
}

const DOWN: &str = "down: api: up → down after 3 failures in a row: status 503, expected 2xx";
/// The success's message carries its latency: only the start is fixed.
const UP: &str = "up: api: down → up after 2 successes in a row: 200 in ";

/// Read a pipe to its end on a thread, so a chatty child never blocks on a full pipe.
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

#[test]
fn watch_counts_three_failures_as_down_once_and_two_successes_as_up_once() {
    let server = Held::start(SCRIPT);
    let ops = Opsbook::new()
        .readings(10.0, 10.0, 1.0)
        .file("ops.yaml", &config(&server.url));
    let dir = ops.dir().to_path_buf();
    let mut running = ops
        .args(["--config", "ops.yaml", "health", "--watch", "1s"])
        .spawn();
    let stdout = drain(running.child.stdout.take());
    let stderr = drain(running.child.stderr.take());

    // Two failures counted (the third request is here, held): still up, nothing said.
    server.release(2);
    server.arrived(3);
    assert_eq!(audited(&dir), Vec::<String>::new());
    // The third failure flips it, once.
    server.release(3);
    server.arrived(4);
    assert_eq!(audited(&dir), [DOWN]);
    // A fourth failure and the first success: still down, nothing new.
    server.release(5);
    server.arrived(6);
    assert_eq!(audited(&dir), [DOWN]);
    // The second success in a row: up again, once.
    server.release(6);
    server.arrived(7);
    assert_eq!(audited(&dir), [DOWN, UP]);

    running.signal(libc::SIGINT);
    let run = running.finish(Duration::from_secs(30));
    assert!(matches!(run.code, Some(0 | 2)), "{:?}", run.code);
    let stdout = stdout.join().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(stdout.contains("health: "), "{stdout}");
    let printed: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("health: api: "))
        .collect();
    assert_eq!(printed.len(), 2, "{stderr}");
    assert_eq!(
        printed[0],
        "health: api: up → down after 3 failures in a row: status 503, expected 2xx"
    );
    assert!(
        printed[1].starts_with("health: api: down → up after 2 successes in a row: 200 in "),
        "{stderr}"
    );
}

fn state(address: &str) -> (u16, serde_json::Value) {
    let (code, body) = get(address, "/health/detailed");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    (code, json["checks"]["api"]["state"].clone())
}

/// The sample lines of `/metrics` for the endpoint families, once promtool has accepted
/// the whole exposition (saved in `dir`).
fn endpoint_samples(address: &str, dir: &std::path::Path) -> Vec<String> {
    let (code, body) = get(address, "/metrics");
    assert_eq!(code, 200);
    let saved = dir.join("metrics.prom");
    std::fs::write(&saved, &body).unwrap();
    crate::maintain::promtool_accepts(&saved);
    body.lines()
        .filter(|l| l.starts_with("opsbook_endpoint_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn serve_shows_each_endpoints_counted_state_in_detailed_and_metrics() {
    let server = Held::start(SCRIPT);
    let ops = Opsbook::new()
        .readings(10.0, 10.0, 1.0)
        .env("OPSBOOK_NOW", "2026-03-01T12:00:00Z")
        .file("ops.yaml", &config(&server.url));
    let dir = ops.dir().to_path_buf();
    let (running, address) = serving(ops);

    server.release(2);
    server.arrived(3);
    // The report shows the latest reading (a failure: 503); the state counts it.
    let (code, api) = state(&address);
    assert_eq!(code, 503);
    assert_eq!(api["status"], "up", "{api}");
    assert_eq!(api["consecutive_failures"], 2);
    assert_eq!(api["consecutive_successes"], 0);
    assert_eq!(api["last_change"], serde_json::Value::Null);
    assert_eq!(api["readings"], 2);
    assert_eq!(api["last_reading"]["time"], "2026-03-01T12:00:00Z");
    assert_eq!(api["last_reading"]["status"], "critical");
    assert_eq!(api["last_reading"]["message"], "status 503, expected 2xx");
    assert_eq!(
        (
            &api["interval"],
            &api["failure_threshold"],
            &api["success_threshold"]
        ),
        (
            &serde_json::json!("20ms"),
            &serde_json::json!(3),
            &serde_json::json!(2)
        )
    );
    assert_eq!(
        endpoint_samples(&address, &dir),
        [
            "opsbook_endpoint_up{name=\"api\"} 1",
            "opsbook_endpoint_consecutive_failures{name=\"api\"} 2",
            "opsbook_endpoint_consecutive_successes{name=\"api\"} 0",
            "opsbook_endpoint_last_reading_timestamp_seconds{name=\"api\"} 1772366400",
        ]
    );

    server.release(3);
    server.arrived(4);
    let (_, api) = state(&address);
    assert_eq!(api["status"], "down", "{api}");
    assert_eq!(api["consecutive_failures"], 3);
    assert_eq!(api["last_change"], "2026-03-01T12:00:00Z");
    assert_eq!(
        endpoint_samples(&address, &dir),
        [
            "opsbook_endpoint_up{name=\"api\"} 0",
            "opsbook_endpoint_consecutive_failures{name=\"api\"} 3",
            "opsbook_endpoint_consecutive_successes{name=\"api\"} 0",
            "opsbook_endpoint_last_change_timestamp_seconds{name=\"api\"} 1772366400",
            "opsbook_endpoint_last_reading_timestamp_seconds{name=\"api\"} 1772366400",
        ]
    );

    // One success after a failure: the report says healthy, the state stays down.
    server.release(5);
    server.arrived(6);
    let (code, api) = state(&address);
    assert_eq!(code, 200);
    assert_eq!(api["status"], "down", "{api}");
    assert_eq!(
        (&api["consecutive_failures"], &api["consecutive_successes"]),
        (&serde_json::json!(0), &serde_json::json!(1))
    );

    server.release(6);
    server.arrived(7);
    let (_, api) = state(&address);
    assert_eq!(api["status"], "up", "{api}");
    assert_eq!(api["consecutive_successes"], 2);
    assert_eq!(audited(&dir), [DOWN, UP]);

    running.signal(libc::SIGTERM);
    let run = running.finish(Duration::from_secs(30)).expect_exit(0);
    assert_eq!(
        run.stderr
            .matches("api: up → down after 3 failures")
            .count(),
        1,
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr
            .matches("api: down → up after 2 successes")
            .count(),
        1,
        "{}",
        run.stderr
    );
}

#[test]
fn grading_options_are_checked_where_they_are_written() {
    let cases = [
        (
            "interval: 0s",
            "ops.yaml:5:17: `interval` must be more than zero",
        ),
        (
            "interval: soon",
            "ops.yaml:5:17: \"soon\" is not a duration",
        ),
        (
            "failure_threshold: 0",
            "ops.yaml:5:26: a threshold of 0 readings in a row: give 1 to 1000",
        ),
        (
            "success_threshold: 1001",
            "ops.yaml:5:26: a threshold of 1001 readings in a row",
        ),
        (
            "success_threshold: 1.5",
            "ops.yaml:5:26: \"1.5\" is not a whole number",
        ),
        (
            "failure_treshold: 2",
            "ops.yaml:5:25: unknown field `failure_treshold`",
        ),
    ];
    for (line, expected) in cases {
        let run = Opsbook::new()
            .file(
                "ops.yaml",
                &format!("health:\n  endpoints:\n    - name: api\n      tcp: {{ host: 127.0.0.1, port: 1 }}\n      {line}\n"),
            )
            .args(["--config", "ops.yaml", "health", "--watch", "1s"])
            .run()
            .expect_exit(78)
            .stderr_contains(expected);
        assert_eq!(run.stdout, "", "{line}");
        if line.starts_with("failure_treshold") {
            assert!(
                run.stderr.contains("did you mean `failure_threshold`?"),
                "{}",
                run.stderr
            );
        }
    }
}
