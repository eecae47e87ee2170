//! `health --serve`, `--watch` and `--retry-timeout`: the long-running and repeating
//! modes, driven through real HTTP requests and real signals.

use crate::common::{Opsbook, server};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn config(endpoints: &str, extra: &str) -> String {
    format!("health:\n{extra}  endpoints:\n{endpoints}")
}

/// Start `health --serve 127.0.0.1:0` and return it with the address it bound.
pub fn serving(opsbook: Opsbook) -> (crate::common::Running, String) {
    let mut running = opsbook
        .args(["--config", "ops.yaml", "health", "--serve", "127.0.0.1:0"])
        .spawn();
    let line = running.stderr_line("serving http://");
    let address = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("address in the banner")
        .to_string();
    (running, address)
}

#[test]
fn serve_answers_every_route_caches_bursts_and_stops_on_sigterm() {
    let (base, count) = server::flaky(0);
    let (running, address) = serving(Opsbook::new().readings(10.0, 10.0, 1.0).file(
        "ops.yaml",
        &config(
            &format!("    - {{ name: api, http: {{ url: \"{base}/health\" }} }}\n"),
            "  serve_cache: 1h\n",
        ),
    ));
    let (code, body) = server::get(&address, "/health");
    assert_eq!(code, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "healthy");
    assert!(json["timestamp"].is_string());

    // A burst of scrapes from many clients at once is answered from one run.
    let burst: Vec<_> = (0..16)
        .map(|i| {
            let address = address.clone();
            let path = [
                "/health",
                "/health/ready",
                "/health/readiness",
                "/health/detailed",
                "/metrics",
            ][i % 5];
            std::thread::spawn(move || server::get(&address, path).0)
        })
        .collect();
    for handle in burst {
        assert_eq!(handle.join().unwrap(), 200);
    }
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "the checks ran more than once"
    );

    let (_, ready) = server::get(&address, "/health/readiness");
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["api"]["status"], "ok");
    assert!(ready["checks"].get("memory").is_none(), "{ready}");
    let (_, detailed) = server::get(&address, "/health/detailed");
    let detailed: serde_json::Value = serde_json::from_str(&detailed).unwrap();
    assert_eq!(detailed["checks"]["memory"]["percent_used"], 10.0);
    assert_eq!(detailed["checks"]["api"]["status_code"], 200);
    let (_, metrics) = server::get(&address, "/metrics");
    assert!(metrics.contains("opsbook_check_status{check=\"api\",kind=\"http\"} 0\n"));
    assert_eq!(server::get(&address, "/nope").0, 404);

    running.signal(libc::SIGTERM);
    running
        .finish(Duration::from_secs(10))
        .expect_exit(0)
        .stderr_contains("server stopped");
}

#[test]
fn serve_says_503_when_unhealthy_and_regrades_on_the_endpoint_interval() {
    // The first answer is a 503; the second waits until the test has seen the first.
    let server = server::Held::start(&[503, 200]);
    let (running, address) = serving(Opsbook::new().readings(10.0, 10.0, 1.0).file(
        "ops.yaml",
        &config(
            &format!(
                "    - {{ name: api, http: {{ url: \"{}/health\", timeout: 60s }}, interval: 100ms }}\n",
                server.url
            ),
            "",
        ),
    ));
    server.release(1);
    let (code, body) = server::get(&address, "/health");
    assert_eq!(code, 503, "{body}");
    assert_eq!(server::get(&address, "/health/ready").0, 503);
    let (code, detailed) = server::get(&address, "/health/detailed");
    assert_eq!(code, 503);
    assert!(detailed.contains("status 503, expected 2xx"), "{detailed}");
    assert_eq!(server::get(&address, "/metrics").0, 200);
    // The endpoint is probed again on its interval: once the third request is in, the
    // second answer (a 200) is its latest reading.
    server.release(2);
    server.arrived(3);
    assert_eq!(server::get(&address, "/health").0, 200);
    running.signal(libc::SIGINT);
    running.finish(Duration::from_secs(10)).expect_exit(0);
}

#[test]
fn serve_on_an_address_in_use_fails_naming_it() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    Opsbook::new()
        .readings(10.0, 10.0, 1.0)
        .args(["health", "--serve", &address])
        .run()
        .expect_exit(1)
        .stderr_contains(&format!("cannot listen on {address}"));
}

#[test]
fn watch_reruns_until_interrupted() {
    use std::io::{BufRead, Read};
    let (base, count) = server::flaky(0);
    let mut running = Opsbook::new()
        .readings(10.0, 10.0, 1.0)
        .file(
            "ops.yaml",
            &config(
                &format!("    - {{ name: api, http: {{ url: \"{base}/health\" }} }}\n"),
                "",
            ),
        )
        .args(["--config", "ops.yaml", "health", "--watch", "100ms"])
        .spawn();
    let mut stdout = std::io::BufReader::new(running.child.stdout.take().expect("stdout"));
    let mut seen = String::new();
    // Three reports are out.
    while seen.matches("health: healthy").count() < 3 {
        let mut line = String::new();
        let n = stdout.read_line(&mut line).expect("read stdout");
        assert!(n > 0, "watch ended after:\n{seen}");
        seen.push_str(&line);
    }
    assert!(count.load(Ordering::SeqCst) >= 1);
    running.signal(libc::SIGINT);
    running.finish(Duration::from_secs(10)).expect_exit(0);
    let _ = stdout.read_to_string(&mut seen);
    assert!(seen.contains("every 100ms · Ctrl-C to stop"), "{seen}");
    // Not a terminal: reports follow one another, no screen-clearing codes.
    assert!(!seen.contains('\x1b'));
}

#[test]
fn the_deploy_gate_waits_until_healthy() {
    let (base, count) = server::flaky(2);
    let run = Opsbook::new()
        .readings(10.0, 10.0, 1.0)
        .file(
            "ops.yaml",
            &config(
                &format!("    - {{ name: api, http: {{ url: \"{base}/health\" }} }}\n"),
                "",
            ),
        )
        .args([
            "--config",
            "ops.yaml",
            "health",
            "--retry-timeout",
            "30s",
            "--sleep",
            "100ms",
            "--format",
            "json",
        ])
        .run()
        .expect_exit(0)
        .stderr_contains("health: unhealthy (attempt 1: api); again in 100ms")
        .stderr_contains("health: healthy after 3 attempts");
    assert_eq!(count.load(Ordering::SeqCst), 3);
    // Only the final report is printed.
    assert_eq!(run.json()["status"], "healthy");
}

#[test]
fn the_deploy_gate_gives_up_at_its_timeout_with_the_last_report() {
    let closed = server::closed_port();
    let started = Instant::now();
    Opsbook::new()
        .readings(10.0, 10.0, 1.0)
        .file(
            "ops.yaml",
            &config(
                &format!(
                    "    - {{ name: api, http: {{ url: \"http://127.0.0.1:{closed}/\" }} }}\n"
                ),
                "",
            ),
        )
        .args([
            "--config",
            "ops.yaml",
            "health",
            "--retry-timeout",
            "600ms",
            "--sleep",
            "200ms",
        ])
        .run()
        .expect_exit(2)
        .stdout_contains("cannot connect")
        .stderr_contains("attempt 2: api")
        .stderr_contains("unhealthy after");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn mode_flags_are_checked() {
    Opsbook::new()
        .args(["health", "--sleep", "1s"])
        .run()
        .expect_exit(64)
        .stderr_contains("--retry-timeout");
    Opsbook::new()
        .args(["health", "--watch", "0s"])
        .run()
        .expect_exit(64)
        .stderr_contains("must be more than zero");
    Opsbook::new()
        .args(["health", "--watch", "1s", "--serve", "127.0.0.1:0"])
        .run()
        .expect_exit(64)
        .stderr_contains("cannot be used with");
    Opsbook::new()
        .args(["health", "--serve", "localhost"])
        .run()
        .expect_exit(64)
        .stderr_contains("invalid socket address");
}

/// A secret holding every character a renderer escapes: a quote, a backslash, `<`, `&`,
/// `>`, a newline, a tab and non-ASCII. Its fragments `s3cr` and `zq9` appear nowhere else.
const HOSTILE_SECRET: &str = "s3cr\"et\\ <&> \n\tñé-zq9";

/// Health endpoints that put the secret into the report: a TCP server that answers with
/// it (the message quotes the reply) and a command that prints it (the output is data).
fn leaky_endpoints() -> String {
    let reply: &'static str = Box::leak(format!("{HOSTILE_SECRET}\r\n").into_boxed_str());
    let port = server::tcp(reply);
    format!(
        "    - {{ name: echo, tcp: {{ host: 127.0.0.1, port: {port}, send: \"${{OPS_TOKEN}}\", expect: \"+PONG\" }} }}\n    - {{ name: printer, command: {{ run: \"printenv OPS_TOKEN\", env: {{ OPS_TOKEN: \"${{OPS_TOKEN}}\" }}, exit: 3 }} }}\n"
    )
}

fn assert_no_secret(what: &str, text: &str) {
    for fragment in ["s3cr", "zq9", "ñé"] {
        assert!(
            !text.contains(fragment),
            "{what} leaks {fragment:?}:\n{text}"
        );
    }
}

#[test]
fn secrets_with_quotes_backslashes_and_newlines_are_masked_in_every_format() {
    let config = config(&leaky_endpoints(), "");
    for format in ["text", "json", "prometheus", "junit", "nagios"] {
        let run = Opsbook::new()
            .readings(10.0, 10.0, 1.0)
            .file("ops.yaml", &config)
            .env("OPS_TOKEN", HOSTILE_SECRET)
            .args(["--config", "ops.yaml", "health", "--format", format])
            .run()
            .expect_exit(2);
        assert_no_secret(&format!("health --format {format}"), &run.stdout);
        assert_no_secret(&format!("health --format {format} stderr"), &run.stderr);
        if format == "json" {
            let json = run.json();
            let message = json["checks"]["echo"]["message"].as_str().unwrap();
            assert!(message.contains("reply \"***\\r\\n\""), "{message}");
            assert_eq!(json["checks"]["printer"]["stdout"], "***");
        }
    }
    // The same steps in a runbook, in the runbook formats (TAP included).
    let steps = leaky_endpoints().replace("    - ", "  - ");
    for format in ["text", "json", "junit", "tap"] {
        let run = Opsbook::new()
            .file("rb.yaml", &format!("steps:\n{steps}"))
            .env("OPS_TOKEN", HOSTILE_SECRET)
            .args(["run", "rb.yaml", "--format", format])
            .run()
            .expect_exit(2);
        assert_no_secret(&format!("run --format {format}"), &run.stdout);
        assert_no_secret(&format!("run --format {format} stderr"), &run.stderr);
    }
}

#[test]
fn served_health_masks_secrets_with_quotes_backslashes_and_newlines() {
    let (running, address) = serving(
        Opsbook::new()
            .readings(10.0, 10.0, 1.0)
            .file("ops.yaml", &config(&leaky_endpoints(), ""))
            .env("OPS_TOKEN", HOSTILE_SECRET),
    );
    for path in ["/health/detailed", "/health/ready", "/metrics", "/health"] {
        let (code, body) = server::get(&address, path);
        assert_no_secret(path, &body);
        if path != "/metrics" {
            assert_eq!(code, 503, "{path}: {body}");
        }
    }
    let (_, ready) = server::get(&address, "/health/ready");
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    let message = ready["checks"]["echo"]["message"].as_str().unwrap();
    assert!(message.contains("reply \"***\\r\\n\""), "{message}");
    running.signal(libc::SIGTERM);
    running.finish(Duration::from_secs(30)).expect_exit(0);
}

/// Evidence bundles hold the health report and a diagnosis as JSON: the secret is masked
/// there too, and in the tool's own logs.
#[test]
fn evidence_bundles_and_logs_mask_secrets_with_quotes_and_newlines() {
    let ops = Opsbook::new()
        .file(
            "ops.yaml",
            &format!(
                "state_dir: state\nlogging: {{ dir: logs, to_file: true, level: DEBUG }}\nincident:\n  dir: incidents\n  diagnosis: {{ leak: diagnose.yaml }}\nhealth:\n  endpoints:\n{}",
                leaky_endpoints()
            ),
        )
        .file(
            "diagnose.yaml",
            &format!("name: diagnose\nsteps:\n{}", leaky_endpoints().replace("    - ", "  - ")),
        )
        .readings(10.0, 10.0, 1.0);
    let dir = ops.dir().to_path_buf();
    let readings = dir.join("readings.json");
    let run = |args: &[&str]| {
        Opsbook::new()
            .env("OPS_TOKEN", HOSTILE_SECRET)
            .env("OPSBOOK_NOW", "2026-01-10T10:00:00Z")
            .env("OPSBOOK_READINGS", readings.to_str().unwrap())
            .args(["--config", "ops.yaml", "incident"])
            .args(args.iter().copied())
            .run_in(&dir)
    };
    run(&[
        "declare",
        "--severity",
        "SEV-2",
        "--title",
        "t",
        "--type",
        "leak",
    ])
    .expect_exit(0);
    let collected = run(&["collect", "INC-20260110-1"]).expect_exit(0);
    assert_no_secret("collect stdout", &collected.stdout);
    assert_no_secret("collect stderr", &collected.stderr);
    let folder = dir.join("incidents/INC-20260110-1");
    let bundle = std::fs::read_dir(&folder)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("a bundle");
    let out = dir.join("unpacked");
    std::fs::create_dir_all(&out).unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&bundle)
        .arg("-C")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let mut seen = Vec::new();
    let mut stack = vec![out];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path()),
            );
        } else {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            assert_no_secret(&path.display().to_string(), &text);
            seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(seen.iter().any(|n| n == "health.json"), "{seen:?}");
    assert!(seen.iter().any(|n| n.starts_with("diagnosis-")), "{seen:?}");
    for entry in std::fs::read_dir(dir.join("logs")).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        assert_no_secret(&entry.path().display().to_string(), &text);
    }
}

/// A reply quoted in a message is cut at 60 characters: the secret is masked before the
/// cut, so no half of it is left to print.
#[test]
fn a_secret_is_masked_before_a_message_cuts_it() {
    let reply: &'static str =
        Box::leak(format!("{}{HOSTILE_SECRET}\r\n", "x".repeat(50)).into_boxed_str());
    let port = server::tcp(reply);
    let run = Opsbook::new()
        .readings(10.0, 10.0, 1.0)
        .file(
            "ops.yaml",
            &config(
                &format!("    - {{ name: echo, tcp: {{ host: 127.0.0.1, port: {port}, send: \"${{OPS_TOKEN}}\", expect: \"+PONG\" }} }}\n"),
                "",
            ),
        )
        .env("OPS_TOKEN", HOSTILE_SECRET)
        .args(["--config", "ops.yaml", "health", "--format", "json"])
        .run()
        .expect_exit(2);
    assert_no_secret("health", &run.stdout);
    let message = run.json()["checks"]["echo"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains(&format!("{}***", "x".repeat(50))),
        "{message}"
    );
}
