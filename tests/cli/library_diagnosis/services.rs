//! The diagnosis runbooks that read services: `queue-backlog` and `cache` (through the real
//! `redis-cli` against a Redis-protocol stand-in), `certificate-expiry` (TLS servers with a
//! chain); then `incident collect`, which runs the diagnosis runbook of an incident's type.

use super::fixtures::*;
use crate::common::library::Book;
use crate::common::redis::Redis;
use crate::common::{GIB, Opsbook, server, tls};

#[test]
fn queue_backlog_grades_the_queue_the_processing_rate_and_the_workers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let redis = |length: u64| {
        Redis {
            lists: vec![("jobs".to_string(), length)],
            ..Redis::default()
        }
        .start()
    };
    let llen = |port: u16| format!("redis-cli -h 127.0.0.1 -p {port} LLEN jobs");
    let queue_api = server::fixed("200 OK", r#"{"queue":{"depth":3}}"#);
    // 30 items processed in the last hour; then 5 (below 10 per hour); then an error.
    let processed = (900, "INFO", "Processed file order-850.x12", 30);
    write(dir, "worker.log", &log(&[processed]));
    write(
        dir,
        "idle.log",
        &log(&[(900, "INFO", "Processed file order-850.x12", 5)]),
    );
    write(
        dir,
        "failing.log",
        &log(&[processed, (300, "ERROR", "E004 delivery error", 1)]),
    );
    folder(dir, "pickup", 3);
    folder(dir, "pickup-full", 150);
    let vars = [
        ("queue_length_command", llen(redis(5))),
        ("read_queue_url", text("yes")),
        ("queue_url", format!("{queue_api}/api/queue")),
        ("pickup_dir", text("pickup")),
        ("worker_log", text("worker.log")),
        ("worker_process", text("qworker")),
    ];
    let calm = Machine {
        processes: vec![("qworker", 300, 200 << 20), ("qworker", 301, 200 << 20)],
        ..Machine::default()
    };
    let mut book = Book::new(dir, "queue-backlog", &vars);
    book.green(|ob| calm.on(ob));
    vars_fail(
        &mut book,
        &calm,
        &as_is,
        &[
            (
                "queue_length_command",
                llen(redis(1500)),
                "Queue length",
                "critical",
            ),
            (
                "queue_url",
                format!("{}/queue", server::http()),
                "Queue depth (HTTP)",
                "warning",
            ),
            (
                "pickup_dir",
                text("pickup-full"),
                "Files waiting in the pickup directory",
                "warning",
            ),
            (
                "worker_log",
                text("idle.log"),
                "Processing rate (items processed in the last hour)",
                "warning",
            ),
            (
                "worker_log",
                text("failing.log"),
                "Worker errors",
                "critical",
            ),
        ],
    );
    book.mutant(
        &[],
        |ob| Machine::default().on(ob),
        "Workers running",
        "critical",
    );
    book.done();
}

#[test]
fn cache_reads_ping_hit_rate_memory_and_evictions_through_redis_cli() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let healthy = Redis {
        hits: 900,
        misses: 100,
        evicted: 0,
        used_memory: 10 << 20,
        lists: Vec::new(),
    };
    let port = |redis: Redis| redis.start().to_string();
    let vars = [
        ("redis_host", text("127.0.0.1")),
        ("redis_port", port(healthy.clone())),
    ];
    let calm = Machine::default();
    let mut book = Book::new(dir, "cache", &vars);
    let report = book.green(|ob| calm.on(ob));
    assert_eq!(
        report["checks"]["Cache hit rate"]["message"], "value 90",
        "{report:#}"
    );
    vars_fail(
        &mut book,
        &calm,
        &as_is,
        &[(
            "redis_port",
            server::closed_port().to_string(),
            "Redis answers PING",
            "critical",
        )],
    );
    book.mutant(
        &[(
            "redis_port",
            port(Redis {
                hits: 40,
                misses: 60,
                ..healthy.clone()
            }),
        )],
        |ob| calm.on(ob),
        "Cache hit rate",
        "critical",
    );
    book.mutant(
        &[(
            "redis_port",
            port(Redis {
                used_memory: 2 * GIB,
                ..healthy.clone()
            }),
        )],
        |ob| calm.on(ob),
        "Cache memory in use",
        "warning",
    );
    book.mutant(
        &[(
            "redis_port",
            port(Redis {
                evicted: 50,
                ..healthy.clone()
            }),
        )],
        |ob| calm.on(ob),
        "Evicted keys",
        "warning",
    );
    book.done();
}

#[test]
fn certificate_expiry_grades_the_weakest_certificate_of_the_chain_and_the_renewal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let today = jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::now())
        .date();
    let days = |n: i64| today + jiff::Span::new().days(n);
    let healthy = tls::server_with_chain(days(-30), days(60), days(400));
    // The server's own certificate has 60 days; its intermediate CA only 5.
    let lapsing = tls::server_with_chain(days(-30), days(60), days(5));
    write(
        dir,
        "letsencrypt.log",
        "renewal run: no renewals were attempted\n",
    );
    write(
        dir,
        "stale.log",
        "renewal run: no renewals were attempted\n",
    );
    std::fs::File::options()
        .write(true)
        .open(dir.join("stale.log"))
        .expect("open")
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(10 * 86_400))
        .expect("set mtime");
    let vars = [
        ("tls_host", text("127.0.0.1")),
        ("tls_port", healthy.port.to_string()),
        ("renewal_log", text("letsencrypt.log")),
    ];
    let calm = Machine::default();
    let mut book = Book::new(dir, "certificate-expiry", &vars);
    book.green(|ob| calm.on(ob));
    vars_fail(
        &mut book,
        &calm,
        &as_is,
        &[
            (
                "tls_port",
                lapsing.port.to_string(),
                "Certificate chain not expiring",
                "critical",
            ),
            (
                "renewal_log",
                text("stale.log"),
                "Renewal ran recently",
                "critical",
            ),
        ],
    );
    book.done();
    let (_, report) = crate::common::library::run_book(
        dir,
        "certificate-expiry",
        &[
            ("tls_host", text("127.0.0.1")),
            ("tls_port", lapsing.port.to_string()),
            ("renewal_log", text("letsencrypt.log")),
        ],
        |ob| calm.on(ob),
    );
    let message = report["checks"]["Certificate chain not expiring"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("CN=opsbook test intermediate"),
        "the intermediate is named: {message}"
    );
}

/// `incident collect` runs the diagnosis runbook of the incident's type with no config
/// naming it (the built-in types), the runbook reading its settings from the environment;
/// a type with no runbook is named with the closest known one, and the bundle goes without.
#[test]
fn incident_collect_runs_the_diagnosis_runbook_of_the_incidents_type_with_the_configured_vars() {
    let redis = Redis {
        hits: 900,
        misses: 100,
        used_memory: 10 << 20,
        ..Redis::default()
    }
    .start();
    // The port reaches the diagnosis runbook through the config's `runbooks.vars`.
    let ops = Opsbook::new().file(
        "ops.yaml",
        &format!(
            "state_dir: state\nincident: {{ dir: incidents }}\nrunbooks: {{ vars: {{ redis_port: \"{redis}\" }} }}\n"
        ),
    );
    let dir = ops.dir().to_path_buf();
    let run = |args: &[&str]| {
        let mut all = vec!["--config", "ops.yaml", "incident"];
        all.extend_from_slice(args);
        Machine::default()
            .on(Opsbook::new())
            .env("REDIS_HOST", "127.0.0.1")
            .env("OPSBOOK_NOW", "2026-01-10T10:00:00Z")
            .args(all)
            .run_in(&dir)
    };
    let declare = |kind: &str| {
        run(&[
            "declare",
            "--severity",
            "SEV-2",
            "--title",
            "Slow pages",
            "--type",
            kind,
        ])
        .expect_exit(0)
    };
    declare("cache");
    declare("cahce");
    let collected = run(&["collect", "INC-20260110-1"]).expect_exit(0);
    assert!(
        !collected.stderr.contains("diagnosis"),
        "{}",
        collected.stderr
    );
    // A type with no diagnosis runbook: named, with the closest, and the bundle goes on.
    run(&["collect", "INC-20260110-2"])
        .expect_exit(0)
        .stderr_contains("INC-20260110-2: no diagnosis runbook for incident type \"cahce\"")
        .stderr_contains("did you mean \"cache\"?");
    // The bundle's member, read straight out of it (GNU tar's -O).
    let shown = std::process::Command::new("tar")
        .arg("-xzOf")
        .arg(dir.join("incidents/INC-20260110-1/evidence-20260110T100000Z.tar.gz"))
        .arg("evidence-20260110T100000Z/diagnosis-cache.json")
        .output()
        .expect("tar");
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let diagnosis: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("JSON");
    for step in [
        "Redis answers PING",
        "Cache hit rate",
        "Cache memory in use",
        "Evicted keys",
    ] {
        assert_eq!(diagnosis["checks"][step]["severity"], "ok", "{diagnosis:#}");
    }
}
