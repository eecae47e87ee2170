//! `tls_cert` and `dns` steps, and name resolution through a chosen DNS server: against
//! an rcgen-certified HTTPS server and a DNS server the test starts on 127.0.0.1.

use crate::common::dns::Rec;
use crate::common::{Opsbook, dns, server, tls};
use std::net::{Ipv4Addr, Ipv6Addr};
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
            "127.0.0.1:{}: certificate CN=localhost expires in 10 days ({until}) (< warn 30 days)",
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
            "127.0.0.1:{}: certificate CN=localhost expired 3 days ago ({})",
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

/// A runbook run as JSON at a fixed time: its exit code checked, its report returned.
fn book(yaml: &str, now: jiff::civil::Date, exit: i32) -> serde_json::Value {
    Opsbook::new()
        .file("rb.yaml", yaml)
        .env("OPSBOOK_NOW", format!("{now}T00:00:00Z"))
        .args(["run", "rb.yaml", "--format", "json"])
        .run()
        .expect_exit(exit)
        .json()
}

#[test]
fn tls_cert_grades_the_chains_weakest_certificate_unless_leaf_only() {
    let today = today();
    let chain = tls::server_with_chain(today - days(30), today + days(60), today + days(5));
    let p = chain.port;
    let json = health(&format!(
        "    - {{ name: chain, tls_cert: {{ host: 127.0.0.1, port: {p} }} }}\n\
         \x20   - {{ name: leaf, tls_cert: {{ host: 127.0.0.1, port: {p}, leaf_only: true }} }}\n\
         \x20   - {{ name: warn_alone, tls_cert: {{ host: 127.0.0.1, port: {p}, warn: 6 }} }}\n\
         \x20   - {{ name: crit_alone, tls_cert: {{ host: 127.0.0.1, port: {p}, crit: 4 }} }}\n"
    ))
    .env("OPSBOOK_NOW", format!("{today}T00:00:00Z"))
    .run()
    .expect_exit(2)
    .json();
    assert_eq!(json["checks"]["chain"]["status"], "unhealthy", "{json}");
    assert_eq!(
        message(&json, "chain"),
        format!(
            "127.0.0.1:{p}: certificate CN=opsbook test intermediate (2 of 3 in the chain) expires in 5 days ({}) (< crit 7 days)",
            today + days(5)
        )
    );
    assert_eq!(json["checks"]["chain"]["days_left"], 5);
    assert_eq!(
        json["checks"]["chain"]["subject"],
        "CN=opsbook test intermediate"
    );
    assert_eq!(json["checks"]["leaf"]["status"], "healthy", "{json}");
    assert_eq!(
        message(&json, "leaf"),
        format!(
            "127.0.0.1:{p}: certificate CN=localhost expires in 60 days ({})",
            today + days(60)
        )
    );
    // One level alone is the only level: no default critical level under warn 6 days,
    // no default warning level over crit 4 days.
    assert_eq!(json["checks"]["warn_alone"]["status"], "degraded", "{json}");
    assert!(
        message(&json, "warn_alone").ends_with("(< warn 6 days)"),
        "{json}"
    );
    assert_eq!(json["checks"]["crit_alone"]["status"], "healthy", "{json}");
}

#[test]
fn tls_cert_levels_may_be_durations_and_numbers_may_come_from_variables() {
    let today = today();
    let tomorrow = tls::server(today - days(30), today + days(1));
    let yaml = format!(
        "vars: {{ https_port: \"{}\", soon: 48h, days: \"30\" }}\n\
         steps:\n\
         \x20 - {{ name: hours, tls_cert: {{ host: 127.0.0.1, port: \"{{{{ https_port }}}}\", crit: \"{{{{ soon }}}}\", timeout: \"{{{{ soon }}}}\" }}, continue_on_failure: true }}\n\
         \x20 - {{ name: days, tls_cert: {{ host: 127.0.0.1, port: \"{{{{ https_port }}}}\", warn: \"{{{{ days }}}}\" }}, retries: \"0\" }}\n",
        tomorrow.port
    );
    let json = book(&yaml, today, 2);
    assert_eq!(json["checks"]["hours"]["severity"], "critical", "{json}");
    assert_eq!(
        message(&json, "hours"),
        format!(
            "127.0.0.1:{}: certificate CN=localhost expires in 24 hours ({}) (< crit 2days)",
            tomorrow.port,
            today + days(1)
        )
    );
    assert_eq!(json["checks"]["days"]["severity"], "warning", "{json}");
    assert!(
        message(&json, "days").ends_with("(< warn 30 days)"),
        "{json}"
    );
}

#[test]
fn a_variable_that_is_not_a_number_is_a_config_error_at_its_line() {
    for (field, wanted) in [
        ("port: \"{{ v }}\"", "port \"many\" is not a port number"),
        ("crit: \"{{ v }}\"", "\"many\" is not a duration"),
        ("timeout: \"{{ v }}\"", "\"many\" is not a duration"),
    ] {
        Opsbook::new()
            .file(
                "rb.yaml",
                &format!(
                    "vars: {{ v: many }}\nsteps:\n  - name: t\n    tls_cert:\n      host: 127.0.0.1\n      {field}\n"
                ),
            )
            .args(["runbook", "validate", "rb.yaml"])
            .run()
            .expect_exit(78)
            .stderr_contains("rb.yaml:6:")
            .stderr_contains(wanted);
    }
    Opsbook::new()
        .file(
            "rb.yaml",
            "vars: { n: lots }\nsteps:\n  - name: t\n    tcp: { host: 127.0.0.1, port: 1 }\n    retries: \"{{ n }}\"\n",
        )
        .args(["runbook", "validate", "rb.yaml"])
        .run()
        .expect_exit(78)
        .stderr_contains("rb.yaml:5:")
        .stderr_contains("\"lots\" is not a whole number (0 to 4294967295)");
}

/// A health endpoint asking the test DNS server.
fn dns_step(resolver: std::net::SocketAddr, name: &str, rest: &str) -> String {
    format!("\x20   - {{ name: {name}, dns: {{ server: \"{resolver}\", {rest} }} }}\n")
}

fn status_of(json: &serde_json::Value, name: &str) -> String {
    json["checks"][name]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn dns_asks_each_record_type_and_matches_any_or_all_answers() {
    let resolver = dns::zone(&[
        ("pool.test", Rec::A(Ipv4Addr::new(10, 0, 0, 1))),
        ("pool.test", Rec::A(Ipv4Addr::new(10, 0, 0, 2))),
        ("v6.test", Rec::Aaaa(Ipv6Addr::LOCALHOST)),
        ("www.test", Rec::Cname("pool.test")),
        ("mail.test", Rec::Mx(10, "mx1.test")),
        ("mail.test", Rec::Txt("v=spf1 -all")),
    ]);
    let dns = |name: &str, rest: &str| dns_step(resolver, name, rest);
    let endpoints = [
        dns("any", "name: pool.test, expect: [10.0.0.2, 10.0.0.9]"),
        dns(
            "all_stray",
            "name: pool.test, expect: [10.0.0.1], expect_all: true",
        ),
        dns(
            "all_ok",
            "name: pool.test, expect: [10.0.0.1, 10.0.0.2], expect_all: true",
        ),
        dns("none", "name: pool.test, expect: [10.0.0.8, 10.0.0.9]"),
        dns("aaaa", "name: v6.test, type: AAAA, expect: \"::1\""),
        dns("cname", "name: www.test, type: CNAME, expect: POOL.test."),
        dns("mx", "name: mail.test, type: MX, expect: \"10 mx1.test\""),
        dns("mx_host", "name: mail.test, type: MX, expect: mx2.test"),
        dns("txt", "name: mail.test, type: TXT, expect: \"v=spf1 -all\""),
        dns("no_txt", "name: www.test, type: TXT"),
    ]
    .concat();
    let json = health(&endpoints).run().expect_exit(2).json();
    let status = |name: &str| status_of(&json, name);
    assert_eq!(status("any"), "healthy", "{json}");
    assert!(
        message(&json, "any").starts_with("pool.test → 10.0.0.1, 10.0.0.2 in "),
        "{json}"
    );
    assert_eq!(status("all_stray"), "unhealthy");
    assert_eq!(
        message(&json, "all_stray"),
        "pool.test resolved to 10.0.0.1, 10.0.0.2: 10.0.0.2 not expected (expect_all: 10.0.0.1)"
    );
    assert_eq!(status("all_ok"), "healthy", "{json}");
    assert_eq!(
        message(&json, "none"),
        "pool.test resolved to 10.0.0.1, 10.0.0.2, expected one of 10.0.0.8, 10.0.0.9"
    );
    assert_eq!(status("aaaa"), "healthy", "{json}");
    assert_eq!(json["checks"]["aaaa"]["addresses"][0], "::1");
    assert_eq!(status("cname"), "healthy", "{json}");
    assert!(
        message(&json, "cname").starts_with("www.test → pool.test. in "),
        "{json}"
    );
    assert_eq!(status("mx"), "healthy", "{json}");
    assert!(
        message(&json, "mx").starts_with("mail.test → 10 mx1.test. in "),
        "{json}"
    );
    assert_eq!(
        message(&json, "mx_host"),
        "mail.test resolved to 10 mx1.test., expected mx2.test"
    );
    assert_eq!(status("txt"), "healthy", "{json}");
    assert_eq!(
        message(&json, "no_txt"),
        format!("www.test has no TXT record (asked {resolver})")
    );
}

#[test]
fn dns_rcode_can_expect_nxdomain_and_says_what_came_instead() {
    let resolver = dns::zone(&[
        ("api.test", Rec::A(Ipv4Addr::LOCALHOST)),
        ("broken.test", Rec::ServFail),
    ]);
    let dns = |name: &str, rest: &str| dns_step(resolver, name, rest);
    let endpoints = [
        dns("gone", "name: old.test, rcode: NXDOMAIN"),
        dns("still_there", "name: api.test, rcode: nxdomain"),
        dns(
            "exists",
            "name: api.test, rcode: NOERROR, expect: 127.0.0.1",
        ),
        dns("nodata", "name: api.test, type: MX, rcode: NOERROR"),
        dns("failing", "name: broken.test, rcode: SERVFAIL"),
        dns("unexpected_fail", "name: broken.test"),
    ]
    .concat();
    let json = health(&endpoints).run().expect_exit(2).json();
    let status = |name: &str| status_of(&json, name);
    assert_eq!(status("gone"), "healthy", "{json}");
    assert!(
        message(&json, "gone").starts_with("old.test → NXDOMAIN as expected in "),
        "{json}"
    );
    assert_eq!(status("still_there"), "unhealthy");
    assert_eq!(
        message(&json, "still_there"),
        format!("api.test: DNS server {resolver} answered NOERROR, expected NXDOMAIN")
    );
    assert_eq!(status("exists"), "healthy", "{json}");
    assert_eq!(status("nodata"), "healthy", "{json}");
    assert!(
        message(&json, "nodata").starts_with("api.test → NOERROR, no MX record in "),
        "{json}"
    );
    assert_eq!(status("failing"), "healthy", "{json}");
    assert_eq!(status("unexpected_fail"), "unhealthy");
    assert!(
        message(&json, "unexpected_fail").contains("broken.test"),
        "{json}"
    );
}

#[test]
fn dns_settings_that_cannot_work_are_config_errors() {
    for (step, wanted) in [
        (
            "{ name: api.test, rcode: NXDOMAIN }",
            "`rcode` needs `server`",
        ),
        ("{ name: api.test, type: MX }", "type MX needs `server`"),
        (
            "{ name: api.test, type: SRV, server: 127.0.0.1 }",
            "type \"SRV\" is not a record type",
        ),
        (
            "{ name: api.test, rcode: GONE, server: 127.0.0.1 }",
            "rcode \"GONE\" is not a DNS response code",
        ),
        (
            "{ name: api.test, expect: \"::1\", server: 127.0.0.1 }",
            "expect \"::1\" is not an IPv4 address",
        ),
        (
            "{ name: api.test, rcode: NXDOMAIN, expect: 127.0.0.1, server: 127.0.0.1 }",
            "give one or the other",
        ),
    ] {
        health(&format!("    - {{ name: d, dns: {step} }}\n"))
            .run()
            .expect_exit(78)
            .stderr_contains("ops.yaml:3:")
            .stderr_contains(wanted);
    }
}

#[test]
fn an_undefined_variable_in_a_port_is_named_with_a_did_you_mean() {
    for kind in ["tcp", "tls_cert"] {
        let run = Opsbook::new()
            .file(
                "rb.yaml",
                &format!(
                    "vars: {{ portx: 443 }}\nsteps:\n  - name: t\n    {kind}:\n      host: 127.0.0.1\n      port: \"{{{{ port }}}}\"\n"
                ),
            )
            .args(["runbook", "validate", "rb.yaml"])
            .run()
            .expect_exit(78)
            .stderr_contains("rb.yaml:")
            .stderr_contains("portx");
        assert!(!run.stderr.contains("untagged enum"), "{}", run.stderr);
    }
}

/// An X.509 version 1 certificate (what `openssl x509 -req` still makes without
/// extensions) is read like any other, served by a real `openssl s_server`.
#[test]
fn tls_cert_reads_a_version_1_certificate() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "k.pem",
        "-subj",
        "/CN=localhost",
        "-out",
        "csr.pem",
    ]);
    openssl(&[
        "x509", "-req", "-in", "csr.pem", "-signkey", "k.pem", "-days", "400", "-out", "c.pem",
    ]);
    let port = server::closed_port();
    let mut s_server = std::process::Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            "c.pem",
        ])
        .args(["-key", "k.pem", "-www"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let stdout = s_server.stdout.take().unwrap();
    let ready = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("ACCEPT"));
    assert!(ready, "s_server never accepted");
    let endpoints = format!(
        "    - {{ name: old, tls_cert: {{ host: 127.0.0.1, port: {port}, server_name: localhost }} }}\n"
    );
    let run = health(&endpoints).run();
    let _ = s_server.kill();
    let _ = s_server.wait();
    let json = run.expect_exit(0).json();
    assert_eq!(json["checks"]["old"]["status"], "healthy", "{json}");
    assert_eq!(json["checks"]["old"]["subject"], "CN=localhost");
    assert!(
        json["checks"]["old"]["days_left"].as_i64().unwrap() >= 398,
        "{json}"
    );
}
