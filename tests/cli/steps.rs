//! The `log_match` and `log_latency` steps against real log files (plain, rotated, gzip'd
//! by the real `gzip`), at a fixed time (`OPSBOOK_NOW`, `TZ=UTC`), and the example
//! runbooks in `runbooks/examples/`.

use crate::common::Opsbook;
use std::io::Write;

/// 11:00 UTC: "the last hour" is 10:00 to 11:00.
const NOW: &str = "2025-01-15T11:00:00Z";

fn at(hm: &str, level: &str, text: &str) -> String {
    format!("2025-01-15 {hm}:00,000 - edi - {level} - {text}\n")
}

/// Run `steps` (each continuing on failure) in a runbook at `NOW`; the JSON report.
fn run(opsbook: Opsbook, steps: &str) -> (serde_json::Value, Option<i32>) {
    let runbook = format!("name: steps\nsteps:\n{steps}");
    let run = opsbook
        .file("rb.yaml", &runbook)
        .env("OPSBOOK_NOW", NOW)
        .env("TZ", "UTC")
        .args(["run", "rb.yaml", "--format", "json"])
        .run();
    (run.json(), run.code)
}

fn step(json: &serde_json::Value, name: &str) -> (String, String) {
    let check = &json["checks"][name];
    (
        check["severity"].as_str().unwrap_or("missing").to_string(),
        check["message"].as_str().unwrap_or_default().to_string(),
    )
}

fn assert_step(json: &serde_json::Value, name: &str, severity: &str, message: &str) {
    assert_eq!(
        step(json, name),
        (severity.to_string(), message.to_string()),
        "{name}: {}",
        json["checks"][name]
    );
}

/// The EDI processor's log: three files processed in the last hour (one before it), and
/// the inventory service's "too many connections" twice in the hour, once in a traceback.
fn edi_log() -> String {
    [
        at("09:00", "INFO", "Processed file a.edi"),
        at("09:30", "ERROR", "too many connections"),
        at("10:10", "INFO", "Processed file b.edi"),
        at("10:15", "ERROR", "pool exhausted"),
        "Traceback (most recent call last):\n  psycopg2.OperationalError: too many connections\n"
            .to_string(),
        at("10:20", "INFO", "Processed file c.edi"),
        at("10:30", "ERROR", "too many connections"),
        at("10:40", "INFO", "Processed file d.edi"),
    ]
    .concat()
}

#[test]
fn log_match_grades_counts_either_way_and_rates_per_minute() {
    let steps = r#"
  - { name: rate ok, continue_on_failure: true, log_match: { path: edi.log, contains: "Processed file", since: 1h, warn: 2, crit: 1, below: true } }
  - { name: rate low, continue_on_failure: true, log_match: { path: edi.log, contains: "Processed file", since: 1h, warn: 5, crit: 1, below: true } }
  - { name: rate stopped, continue_on_failure: true, log_match: { path: edi.log, contains: "Processed file", since: 1h, warn: 10, crit: 4, below: true } }
  - { name: pool ok, continue_on_failure: true, log_match: { path: edi.log, regex: "too many conn\\w+$", since: 1h, warn: 2, crit: 10 } }
  - { name: pool warning, continue_on_failure: true, log_match: { path: edi.log, regex: "too many conn\\w+$", since: 1h, warn: 1, crit: 10 } }
  - { name: pool any, continue_on_failure: true, log_match: { path: edi.log, contains: "too many connections", since: 1h } }
  - { name: per minute, continue_on_failure: true, log_match: { path: edi.log, contains: "Processed file", since: 1h, per_minute: { warn: 0.1, crit: 0.01, below: true } } }
  - { name: per minute ok, continue_on_failure: true, log_match: { path: edi.log, contains: "Processed file", since: 30m, per_minute: { warn: 0.02, crit: 0.01, below: true } } }
  - { name: whole file, continue_on_failure: true, log_match: { path: edi.log, contains: "Processed file", crit: 3 } }
  - { name: glob, continue_on_failure: true, log_match: { glob: "edi_processor_*.log", contains: "Processed file", since: 1h, crit: 1, below: true } }
  - { name: missing, continue_on_failure: true, log_match: { path: gone.log, contains: "Processed file", crit: 1, below: true } }
  - { name: timeless, continue_on_failure: true, log_match: { path: plain.txt, contains: "Processed file", since: 1h, crit: 1, below: true } }
  - { name: timeless whole, continue_on_failure: true, log_match: { path: plain.txt, contains: "Processed file", crit: 1, below: true } }
"#;
    let opsbook = Opsbook::new()
        .file("edi.log", &edi_log())
        .file(
            "edi_processor_1.log",
            &at("10:05", "INFO", "Processed file x.edi"),
        )
        .file(
            "edi_processor_2.log",
            &at("09:05", "INFO", "Processed file y.edi"),
        )
        .file("plain.txt", "Processed file a.edi\nProcessed file b.edi\n");
    let (json, code) = run(opsbook, steps);
    assert_eq!(code, Some(2), "{json}");
    let processed = "lines matching \"Processed file\" in edi.log in the last 1h";
    assert_step(&json, "rate ok", "ok", &format!("3 {processed}"));
    assert_step(
        &json,
        "rate low",
        "warning",
        &format!("3 {processed} (< warn 5)"),
    );
    assert_step(
        &json,
        "rate stopped",
        "critical",
        &format!("3 {processed} (< crit 4)"),
    );
    let pool = r#"lines matching "too many conn\\w+$" in edi.log in the last 1h"#;
    // The traceback line belongs to 10:15; the 09:30 line is outside the hour.
    assert_step(&json, "pool ok", "ok", &format!("2 {pool}"));
    assert_step(
        &json,
        "pool warning",
        "warning",
        &format!("2 {pool} (> warn 1)"),
    );
    assert_step(
        &json,
        "pool any",
        "critical",
        "2 lines matching \"too many connections\" in edi.log in the last 1h (> crit 0)",
    );
    assert_step(
        &json,
        "per minute",
        "warning",
        &format!("0.05/min (3 {processed}) (< warn 0.1/min)"),
    );
    assert_eq!(json["checks"]["per minute"]["per_minute"], 0.05);
    assert_eq!(json["checks"]["per minute"]["matched"], 3);
    assert_step(
        &json,
        "per minute ok",
        "ok",
        "0.03/min (1 line matching \"Processed file\" in edi.log in the last 30m)",
    );
    assert_step(
        &json,
        "whole file",
        "critical",
        "4 lines matching \"Processed file\" in edi.log (> crit 3)",
    );
    assert_step(
        &json,
        "glob",
        "ok",
        "1 line matching \"Processed file\" in edi_processor_*.log in the last 1h",
    );
    let (severity, message) = step(&json, "missing");
    assert_eq!(severity, "unknown");
    assert!(
        message.starts_with("cannot read gone.log: No such file"),
        "{message}"
    );
    assert_step(
        &json,
        "timeless",
        "unknown",
        "no line of plain.txt has a time opsbook can read, so none can be placed in the last 1h",
    );
    assert_step(
        &json,
        "timeless whole",
        "ok",
        "2 lines matching \"Processed file\" in plain.txt",
    );
}

#[test]
fn log_match_follows_a_log_as_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("db.log");
    std::fs::write(&log, at("10:10", "INFO", "pool size 20")).unwrap();
    std::fs::write(
        dir.path().join("rb.yaml"),
        "steps:\n  - { name: connections, log_match: { path: db.log, contains: \"too many connections\", since: 1h, warn: 1, crit: 2 } }\n",
    )
    .unwrap();
    let check = || {
        let run = Opsbook::new()
            .env("OPSBOOK_NOW", NOW)
            .env("TZ", "UTC")
            .args(["run", "rb.yaml", "--format", "json"])
            .run_in(dir.path());
        let json = run.json();
        let connections = json["checks"]["connections"].clone();
        (step(&json, "connections").0, connections["matched"].clone())
    };
    let append = |line: String| {
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        file.write_all(line.as_bytes()).unwrap();
    };
    assert_eq!(check(), ("ok".to_string(), 0.into()));
    // The inventory service logs the error twice, then a third time.
    append(at("10:20", "ERROR", "too many connections"));
    append(at("10:21", "ERROR", "too many connections"));
    assert_eq!(check(), ("warning".to_string(), 2.into()));
    append(at("10:22", "ERROR", "too many connections"));
    assert_eq!(check(), ("critical".to_string(), 3.into()));
}

/// A set of three files: `edi.log.2.gz` (compressed by the real gzip), `edi.log.1` and the
/// live `edi.log`; the window reaches into all three.
fn edi_set() -> Opsbook {
    let opsbook = Opsbook::new()
        .file(
            "config.yaml",
            "state_dir: state\nlogs:\n  sets:\n    edi:\n      paths: [\"logs/edi.log\"]\n",
        )
        .file(
            "logs/edi.log.2",
            &[
                at("08:00", "INFO", "Processed file old.edi"),
                at("08:00", "INFO", "Performance: convert took 900ms"),
                at("10:05", "INFO", "Processed file a.edi"),
                at("10:05", "INFO", "Performance: convert took 100ms"),
            ]
            .concat(),
        )
        .file(
            "logs/edi.log.1",
            &[
                at("10:25", "INFO", "Processed file b.edi"),
                at("10:25", "INFO", "Performance: convert took 200ms"),
            ]
            .concat(),
        )
        .file(
            "logs/edi.log",
            &[
                at("10:50", "INFO", "Processed file c.edi"),
                at("10:50", "INFO", "Performance: convert took 400ms"),
            ]
            .concat(),
        );
    let status = std::process::Command::new("gzip")
        .arg(opsbook.path("logs/edi.log.2"))
        .status()
        .unwrap();
    assert!(status.success());
    assert!(opsbook.path("logs/edi.log.2.gz").exists());
    opsbook.args(["--config", "config.yaml"])
}

#[test]
fn a_sets_rotated_and_compressed_history_is_read() {
    let steps = r#"
  - { name: processed, continue_on_failure: true, log_match: { set: edi, contains: "Processed file", since: 1h, warn: 4, crit: 1, below: true } }
  - { name: convert, continue_on_failure: true, log_latency: { set: edi, format: application, since: 1h, p50: { warn: 150ms }, max: { warn: 300ms, crit: 1s } } }
  - { name: typo, continue_on_failure: true, log_match: { set: eid, contains: "Processed file", crit: 1, below: true } }
"#;
    let (json, _) = run(edi_set(), steps);
    assert_step(
        &json,
        "processed",
        "warning",
        "3 lines matching \"Processed file\" in log set edi in the last 1h (< warn 4)",
    );
    assert_step(
        &json,
        "convert",
        "warning",
        "p50 200 ms (> warn 150ms), max 400 ms (> warn 300ms) over 3 samples in log set edi in the last 1h",
    );
    let convert = &json["checks"]["convert"];
    assert_eq!(convert["samples"], 3);
    assert_eq!(convert["p95_ms"], 400.0);
    assert_eq!(convert["mean_ms"], 233.333);
    let (severity, message) = step(&json, "typo");
    assert_eq!(severity, "unknown");
    assert!(
        message.contains("no log set \"eid\" in `logs.sets`; did you mean \"edi\"?"),
        "{message}"
    );
}

/// Twenty durations 10, 20, … 200 ms in each format, one more outside the hour (10 s):
/// p50 100 ms, p90 180 ms, p95 190 ms, p99 and max 200 ms, mean 105 ms.
fn durations(line: impl Fn(&str, u32) -> String) -> String {
    let mut text = line("09:00", 10_000);
    for i in 1..=20u32 {
        text.push_str(&line(&format!("10:{:02}", i * 2), i * 10));
        text.push_str(&line(&format!("10:{:02}", i * 2), u32::MAX)); // a line without one
    }
    text
}

#[test]
fn log_latency_reads_each_built_in_format_and_grades_each_percentile() {
    let application = durations(|hm, ms| match ms {
        u32::MAX => at(hm, "INFO", "Performance: upload failed"),
        ms => at(hm, "INFO", &format!("Performance: upload took {ms}.00ms")),
    });
    let access = |hm: &str, last: String| {
        format!(
            "10.0.0.1 - - [15/Jan/2025:{hm}:00 +0000] \"GET /api/items HTTP/1.1\" 200 512 \"-\" \"curl/8\" {last}\n"
        )
    };
    let nginx = durations(|hm, ms| match ms {
        u32::MAX => access(hm, "-".into()),
        ms => access(hm, format!("{}.{:03}", ms / 1000, ms % 1000)),
    });
    let apache = durations(|hm, ms| match ms {
        u32::MAX => access(hm, "\"x\"".into()),
        ms => access(hm, (ms * 1000).to_string()),
    });
    let postgresql = durations(|hm, ms| match ms {
        u32::MAX => format!("2025-01-15 {hm}:00.000 UTC [42] LOG:  connection received\n"),
        ms => format!(
            "2025-01-15 {hm}:00.000 UTC [42] LOG:  duration: {ms}.000 ms  statement: SELECT * FROM items\n"
        ),
    });
    let custom = durations(|hm, ms| match ms {
        u32::MAX => format!("2025-01-15T{hm}:00Z job=sync status=running\n"),
        ms => format!(
            "2025-01-15T{hm}:00Z job=sync elapsed={}s\n",
            f64::from(ms) / 1000.0
        ),
    });
    let steps = r#"
  - { name: application, continue_on_failure: true, log_latency: { path: app.log, format: application, since: 1h, p95: { warn: 300ms, crit: 500ms } } }
  - { name: nginx, continue_on_failure: true, log_latency: { path: nginx.log, format: nginx, since: 1h, p95: { warn: 150ms, crit: 500ms }, p50: { warn: 150ms } } }
  - { name: apache, continue_on_failure: true, log_latency: { path: apache.log, format: apache, since: 1h, p90: { warn: 100ms, crit: 150ms } } }
  - { name: postgresql, continue_on_failure: true, log_latency: { path: postgresql.log, format: postgresql, since: 1h, p99: { crit: 1s }, mean: { warn: 100ms } } }
  - { name: custom, continue_on_failure: true, log_latency: { path: custom.log, regex: "elapsed=(?P<s>[0-9.]+)s", since: 1h, max: { warn: 1s } } }
  - { name: whole, continue_on_failure: true, log_latency: { path: app.log, format: application, max: { crit: 5s } } }
  - { name: wrong format, continue_on_failure: true, log_latency: { path: app.log, format: postgresql, since: 1h, p95: { crit: 1s } } }
"#;
    let opsbook = Opsbook::new()
        .file("app.log", &application)
        .file("nginx.log", &nginx)
        .file("apache.log", &apache)
        .file("postgresql.log", &postgresql)
        .file("custom.log", &custom);
    let (json, code) = run(opsbook, steps);
    assert_eq!(code, Some(2), "{json}");
    let over = "over 20 samples in";
    assert_step(
        &json,
        "application",
        "ok",
        &format!("p95 190 ms {over} app.log in the last 1h"),
    );
    assert_step(
        &json,
        "nginx",
        "warning",
        &format!("p50 100 ms, p95 190 ms (> warn 150ms) {over} nginx.log in the last 1h"),
    );
    assert_step(
        &json,
        "apache",
        "critical",
        &format!("p90 180 ms (> crit 150ms) {over} apache.log in the last 1h"),
    );
    assert_step(
        &json,
        "postgresql",
        "warning",
        &format!("p99 200 ms, mean 105 ms (> warn 100ms) {over} postgresql.log in the last 1h"),
    );
    assert_step(
        &json,
        "custom",
        "ok",
        &format!("max 200 ms {over} custom.log in the last 1h"),
    );
    assert_step(
        &json,
        "whole",
        "critical",
        "max 10 s (> crit 5s) over 21 samples in app.log",
    );
    assert_step(
        &json,
        "wrong format",
        "unknown",
        "no duration found in app.log in the last 1h: check `format`/`regex` against its lines",
    );
    let nginx = &json["checks"]["nginx"];
    for (field, value) in [
        ("samples", 20.0),
        ("p50_ms", 100.0),
        ("p90_ms", 180.0),
        ("p95_ms", 190.0),
        ("p99_ms", 200.0),
        ("mean_ms", 105.0),
        ("max_ms", 200.0),
    ] {
        assert_eq!(nginx[field].as_f64(), Some(value), "{field}: {nginx}");
    }
}

/// Bad steps are refused before anything runs: exit 78, `rb.yaml:LINE:`, the reason.
#[test]
fn bad_log_steps_are_config_errors_naming_file_and_line() {
    let cases = [
        (
            "log_match: { path: a.log, regex: \"(unclosed\" }",
            "unclosed group",
        ),
        (
            "log_latency: { path: a.log, regex: \"took [\", p95: { crit: 1s } }",
            "invalid regex",
        ),
        (
            "log_latency: { path: a.log, regex: \"took (\\\\d+)ms\", p95: { crit: 1s } }",
            "has no duration group: name it (?P<ms>…)",
        ),
        (
            "log_latency: { path: a.log, format: nginx }",
            "grade at least one of p50",
        ),
        (
            "log_latency: { path: a.log, format: haproxy, p95: { crit: 1s } }",
            "haproxy",
        ),
        (
            "log_match: { path: a.log, set: app, contains: x }",
            "only one of `path`, `glob` and `set`",
        ),
        (
            "log_match: { glob: \"logs/[\", contains: x }",
            "is not a valid glob",
        ),
        (
            "log_match: { path: a.log, contains: x, per_minute: { crit: 1 } }",
            "`per_minute` needs `since`",
        ),
        (
            "log_match: { path: a.log, contains: x, regex: y }",
            "`contains` or `regex`, not both",
        ),
        (
            "log_match: { path: a.log, contains: x, warn: 1, crit: 5, below: true }",
            "warn 1 is below crit 5",
        ),
    ];
    for (step, expected) in cases {
        let runbook = format!(
            "steps:\n  - {{ name: canary, command: {{ run: \"touch ran\" }} }}\n  - name: bad\n    {step}\n"
        );
        let opsbook = Opsbook::new().file("rb.yaml", &runbook);
        let dir = opsbook.dir().to_path_buf();
        let run = opsbook.args(["run", "rb.yaml"]).run().expect_exit(78);
        assert!(run.stderr.contains("rb.yaml:4:"), "{step}:\n{}", run.stderr);
        assert!(
            run.stderr.contains(expected),
            "{step}: wanted {expected:?} in:\n{}",
            run.stderr
        );
        assert!(!dir.join("ran").exists(), "a step ran: {step}");
    }
}

#[test]
fn every_example_runbook_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/examples");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .map(|p| p.display().to_string())
        .collect();
    let all: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    for kind in [
        "log_match:",
        "log_latency:",
        "process:",
        "rss:",
        "open_files:",
        "env:",
        "newest: true",
        "recursive: true",
    ] {
        assert!(all.contains(kind), "no example of {kind} in {files:?}");
    }
    let run = Opsbook::new()
        .args(["runbook", "validate"])
        .args(files.clone())
        .run()
        .expect_exit(0);
    for file in &files {
        assert!(run.stdout.contains("ok "), "{file}: {}", run.stdout);
    }
}
