//! `tls_cert` and `dns` steps, and name resolution through a chosen DNS server: against
//! an rcgen-certified HTTPS server and a DNS server the test starts on 127.0.0.1.

use crate::common::{Opsbook, dns, server, tls};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

fn today() -> jiff::civil::Date {
    jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::now())
        .date()
}

fn days(n: i64) -> jiff::Span {
    jiff::Span::new().days(n)
}

fn health(endpoints: &str) -> Opsbook {
    health_as("json", endpoints)
}

fn health_as(format: &str, endpoints: &str) -> Opsbook {
    Opsbook::new()
        .readings(10.0, 10.0, 1.0)
        .file("ops.yaml", &format!("health:\n  endpoints:\n{endpoints}"))
        .args(["--config", "ops.yaml", "health", "--format", format])
}

fn message(json: &serde_json::Value, name: &str) -> String {
    json["checks"][name]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn certificate_days_left_are_graded_and_the_chain_is_reported() {
    let today = today();
    let soon = tls::server(today - days(30), today + days(10));
    let expired = tls::server(today - days(30), today - days(3));
    let endpoints = format!(
        "    - {{ name: soon, tls_cert: {{ host: 127.0.0.1, port: {}, server_name: localhost }} }}\n\
         \x20   - {{ name: expired, tls_cert: {{ host: 127.0.0.1, port: {} }} }}\n\
         \x20   - {{ name: relaxed, tls_cert: {{ host: 127.0.0.1, port: {}, warn: 5, crit: 2 }} }}\n",
        soon.port, expired.port, soon.port
    );
    let run = health(&endpoints)
        .env("OPSBOOK_NOW", format!("{today}T00:00:00Z"))
        .run()
        .expect_exit(2);
    let json = run.json();
    let until = today + days(10);
    assert_eq!(json["checks"]["soon"]["status"], "degraded");
    assert_eq!(
        message(&json, "soon"),
        format!(
            "127.0.0.1:{}: certificate expires in 10 days ({until}) (< warn 30 days)",
            soon.port
        )
    );
    assert_eq!(json["checks"]["soon"]["days_left"], 10);
    assert_eq!(json["checks"]["soon"]["subject"], "CN=localhost");
    assert_eq!(json["checks"]["soon"]["issuer"], "CN=opsbook test CA");
    let chain = json["checks"]["soon"]["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1]["subject"], "CN=opsbook test CA");
    assert_eq!(json["checks"]["expired"]["status"], "unhealthy");
    assert_eq!(
        message(&json, "expired"),
        format!(
            "127.0.0.1:{}: certificate expired 3 days ago ({})",
            expired.port,
            today - days(3)
        )
    );
    assert_eq!(json["checks"]["relaxed"]["status"], "healthy");
}

#[test]
fn tls_cert_on_a_closed_port_or_a_plain_server_fails_clearly() {
    let closed = server::closed_port();
    let plain = server::tcp("HTTP/1.1 400 Bad Request\r\n\r\n");
    let run = health(&format!(
        "    - {{ name: closed, tls_cert: {{ host: 127.0.0.1, port: {closed}, timeout: 2s }} }}\n\
         \x20   - {{ name: plain, tls_cert: {{ host: 127.0.0.1, port: {plain}, timeout: 2s }} }}\n"
    ))
    .run()
    .expect_exit(2);
    let json = run.json();
    assert!(
        message(&json, "closed").contains("cannot connect"),
        "{json}"
    );
    assert!(
        message(&json, "plain").contains("TLS handshake failed"),
        "{json}"
    );
}

#[test]
fn https_verification_uses_the_ca_file_and_catches_expiry() {
    let today = today();
    let good = tls::server(today - days(30), today + days(10));
    let expired = tls::server(today - days(30), today - days(3));
    let run = health(&format!(
        "    - {{ name: trusted, http: {{ url: \"https://127.0.0.1:{g}/health\", ca_file: good.pem, expect: {{ json: {{ /status: healthy }} }} }} }}\n\
         \x20   - {{ name: untrusted, http: {{ url: \"https://127.0.0.1:{g}/health\" }} }}\n\
         \x20   - {{ name: insecure, http: {{ url: \"https://127.0.0.1:{g}/health\", insecure: true }} }}\n\
         \x20   - {{ name: expired, http: {{ url: \"https://127.0.0.1:{e}/health\", ca_file: expired.pem }} }}\n",
        g = good.port,
        e = expired.port
    ))
    .file("good.pem", &good.ca_pem)
    .file("expired.pem", &expired.ca_pem)
    .run()
    .expect_exit(2);
    let json = run.json();
    assert_eq!(json["checks"]["trusted"]["status"], "healthy", "{json}");
    assert_eq!(json["checks"]["insecure"]["status"], "healthy", "{json}");
    assert_eq!(json["checks"]["untrusted"]["status"], "unhealthy");
    assert!(
        message(&json, "untrusted")
            .to_lowercase()
            .contains("issuer"),
        "{json}"
    );
    assert_eq!(json["checks"]["expired"]["status"], "unhealthy");
    assert!(message(&json, "expired").contains("expired"), "{json}");
}

#[test]
fn dns_resolves_through_the_given_server() {
    let resolver = dns::server(&[("api.test", Ipv4Addr::new(127, 0, 0, 5))]);
    let started = Instant::now();
    let run = health(&format!(
        "    - {{ name: found, dns: {{ name: api.test, server: \"{resolver}\" }} }}\n\
         \x20   - {{ name: expected, dns: {{ name: api.test, server: \"{resolver}\", expect: 127.0.0.5 }} }}\n\
         \x20   - {{ name: moved, dns: {{ name: api.test, server: \"{resolver}\", expect: [10.0.0.1] }} }}\n\
         \x20   - {{ name: missing, dns: {{ name: nosuch.test, server: \"{resolver}\" }} }}\n\
         \x20   - {{ name: silent, dns: {{ name: silent.test, server: \"{resolver}\", timeout: 300ms }} }}\n"
    ))
    .run()
    .expect_exit(2);
    assert!(started.elapsed() < Duration::from_secs(5));
    let json = run.json();
    assert_eq!(json["checks"]["found"]["status"], "healthy");
    assert!(message(&json, "found").starts_with("api.test → 127.0.0.5 in "));
    assert_eq!(json["checks"]["found"]["addresses"][0], "127.0.0.5");
    assert_eq!(json["checks"]["expected"]["status"], "healthy");
    assert_eq!(
        message(&json, "moved"),
        "api.test resolved to 127.0.0.5, expected 10.0.0.1"
    );
    assert_eq!(
        message(&json, "missing"),
        format!("nosuch.test does not exist (NXDOMAIN from {resolver})")
    );
    assert_eq!(
        message(&json, "silent"),
        format!("DNS server {resolver} did not answer for silent.test within 300ms")
    );
}

#[test]
fn http_and_tcp_resolve_names_through_the_given_server() {
    let resolver = dns::server(&[("api.test", Ipv4Addr::LOCALHOST)]);
    let base = server::http();
    let port = base.rsplit(':').next().unwrap().to_string();
    let redis = server::tcp("+PONG\r\n");
    let run = health(&format!(
        "    - {{ name: api, http: {{ url: \"http://api.test:{port}/ok\", resolver: \"{resolver}\" }} }}\n\
         \x20   - {{ name: redis, tcp: {{ host: api.test, port: {redis}, send: \"PING\\r\\n\", expect: \"+PONG\", resolver: \"{resolver}\" }} }}\n\
         \x20   - {{ name: unresolvable, http: {{ url: \"http://nosuch.test/health\", resolver: \"{resolver}\" }} }}\n"
    ))
    .run()
    .expect_exit(2);
    let json = run.json();
    assert_eq!(json["checks"]["api"]["status"], "healthy", "{json}");
    assert_eq!(json["checks"]["redis"]["status"], "healthy", "{json}");
    assert_eq!(json["checks"]["unresolvable"]["status"], "unhealthy");
    assert!(
        message(&json, "unresolvable").contains("nosuch.test does not exist (NXDOMAIN"),
        "{json}"
    );
}

#[test]
fn a_bad_dns_server_address_is_a_config_error() {
    health("    - { name: d, dns: { name: api.test, server: dns.example } }\n")
        .run()
        .expect_exit(78)
        .stderr_contains("ops.yaml:3:")
        .stderr_contains("not a DNS server address");
}

/// `promtool check metrics` (from Debian's prometheus package, installed by scripts/test)
/// accepts the Prometheus output with every kind of check in it.
#[test]
fn metrics_of_every_kind_pass_promtool_check_metrics() {
    let today = today();
    let cert = tls::server(today - days(30), today + days(10));
    let resolver = dns::server(&[("api.test", Ipv4Addr::LOCALHOST)]);
    let base = server::http();
    let redis = server::tcp("+PONG\r\n");
    let run = health_as(
        "prometheus",
        &format!(
            "    - {{ name: api, http: {{ url: \"{base}/ok\" }} }}\n\
         \x20   - {{ name: \"odd \\\"name\\\"\", http: {{ url: \"{base}/500\" }} }}\n\
         \x20   - {{ name: redis, tcp: {{ host: 127.0.0.1, port: {redis} }} }}\n\
         \x20   - {{ name: cert, tls_cert: {{ host: 127.0.0.1, port: {} }} }}\n\
         \x20   - {{ name: dns, dns: {{ name: api.test, server: \"{resolver}\" }} }}\n",
            cert.port
        ),
    )
    .run()
    .expect_exit(2);
    for family in [
        "opsbook_probe_latency_seconds{check=\"dns\",kind=\"dns\"}",
        "opsbook_tls_cert_expiry_timestamp_seconds{check=\"cert\",kind=\"tls_cert\"}",
        "opsbook_http_status_code{check=\"odd \\\"name\\\"\",kind=\"http\"} 500",
    ] {
        assert!(
            run.stdout.contains(family),
            "{family} missing:\n{}",
            run.stdout
        );
    }
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/test installs it)");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(run.stdout.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success() && checked.stdout.is_empty() && checked.stderr.is_empty(),
        "promtool: {}{}\n{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr),
        run.stdout
    );
}
