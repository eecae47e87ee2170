//! `opsbook run` and `opsbook runbook …`: every step kind against real local servers and
//! files, the run semantics, process-group timeouts, report formats, and bad runbooks.

use crate::common::{Opsbook, dns, server, tls};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

fn status<'a>(json: &'a serde_json::Value, step: &str) -> &'a str {
    json["checks"][step]["severity"]
        .as_str()
        .unwrap_or("missing")
}

fn message(json: &serde_json::Value, step: &str) -> String {
    json["checks"][step]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn every_shipped_runbook_validates() {
    // Built in (as the binary carries them) …
    let run = Opsbook::new()
        .args(["runbook", "validate"])
        .run()
        .expect_exit(0);
    for name in [
        "pre-deploy",
        "deploy",
        "daily",
        "weekly",
        "monthly",
        "backup-verify",
        "api-unavailable",
        "database-issues",
        "high-memory",
        "disk-space",
        "high-error-rate",
    ] {
        assert!(
            run.stdout.contains(&format!("ok       {name}:")),
            "{name}: {}",
            run.stdout
        );
    }
    // … and as files in the repository.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    assert!(files.len() >= 11);
    Opsbook::new()
        .args(["runbook", "validate"])
        .args(files)
        .run()
        .expect_exit(0);
}

#[test]
fn a_runbook_with_every_kind_runs_against_real_servers_and_files() {
    let base = server::http();
    let port = base.rsplit(':').next().unwrap().to_string();
    let redis = server::tcp("+PONG\r\n");
    let today = jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::now())
        .date();
    let cert = tls::server(
        today - jiff::Span::new().days(30),
        today + jiff::Span::new().days(40),
    );
    let resolver = dns::server(&[("api.test", Ipv4Addr::LOCALHOST)]);
    let mut worker = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let now = jiff::Timestamp::now();
    let line = |ago: i64, level: &str| {
        let at = now - jiff::SignedDuration::from_secs(ago);
        format!(
            "{} {level} something happened\n",
            at.strftime("%Y-%m-%d %H:%M:%S")
        )
    };
    let mut log = line(7200, "ERROR"); // outside the hour: not counted
    for i in 0..19 {
        log.push_str(&line(600 + i, "INFO"));
    }
    log.push_str(&line(60, "ERROR"));
    log.push_str("Traceback (most recent call last):\n  File \"x.py\"\n");
    let runbook = format!(
        r#"name: every-kind
vars:
  base: "{base}"
defaults: {{ timeout: 20s }}
steps:
  - name: api
    http: {{ url: "{{{{ base }}}}/ok", expect: {{ json: {{ /status: healthy }} }} }}
  - parallel:
      - {{ name: redis, tcp: {{ host: 127.0.0.1, port: {redis}, send: "PING\r\n", expect: "+PONG" }} }}
      - {{ name: cert, tls_cert: {{ host: 127.0.0.1, port: {cert}, warn: 30, crit: 7 }} }}
      - {{ name: dns, dns: {{ name: api.test, server: "{resolver}", expect: 127.0.0.1 }} }}
  - {{ name: memory, memory: {{ warn: 75, crit: 90 }} }}
  - {{ name: swap, swap: {{}} }}
  - {{ name: disk, disk: {{ path: /, warn: 80%, crit: 90% }} }}
  - {{ name: cpu, cpu: {{ sample: 10ms }} }}
  - {{ name: load, load: {{}} }}
  - name: queue length
    command: {{ run: "echo 42 jobs", value: {{ warn: 100, crit: 1000 }} }}
  - name: config present
    file: {{ path: config.yaml, contains: "key: value", max_age: 1h, mode: "0640", max_size: 1K }}
  - name: pickup folder
    file: {{ path: pickup, count: {{ warn: 5, crit: 10 }} }}
  - name: no maintenance flag
    file: {{ path: maintenance.flag, exists: false }}
  - name: error rate
    log_errors: {{ path: app.log, level: ERROR, since: 1h, warn: 10%, crit: 50% }}
  - name: migrations reviewed
    manual: "Confirm the migrations were reviewed"
  - name: worker
    process: {{ pid_file: worker.pid }}
  - name: listening
    port: {port}
  - name: shared checks
    include: shared.yaml
"#,
        redis = redis,
        cert = cert.port,
    );
    let shared = "name: shared\nsteps:\n  - name: included step\n    command: { argv: [sh, -c, 'test -f config.yaml'] }\n";
    let opsbook = Opsbook::new()
        .readings(10.0, 10.0, 1.0)
        .file("rb.yaml", &runbook)
        .file("shared.yaml", shared)
        .file("config.yaml", "key: value\n")
        .file("pickup/a.csv", "1")
        .file("pickup/b.csv", "2")
        .file("app.log", &log)
        .file("worker.pid", &worker.id().to_string());
    std::fs::set_permissions(
        opsbook.path("config.yaml"),
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    let run = opsbook
        .args(["run", "rb.yaml", "--yes", "--format", "json"])
        .run();
    let _ = worker.kill();
    let _ = worker.wait();
    let run = run.expect_exit(0);
    let json = run.json();
    for step in [
        "api",
        "redis",
        "cert",
        "dns",
        "memory",
        "swap",
        "disk",
        "cpu",
        "load",
        "queue length",
        "config present",
        "pickup folder",
        "no maintenance flag",
        "error rate",
        "migrations reviewed",
        "worker",
        "listening",
        "included step",
    ] {
        assert_eq!(
            status(&json, step),
            "ok",
            "{step}: {}",
            json["checks"][step]
        );
    }
    assert_eq!(message(&json, "queue length"), "value 42");
    assert_eq!(message(&json, "pickup folder"), "pickup: 2 entries");
    assert_eq!(
        message(&json, "error rate"),
        "ERROR+ rate 5% (1 of 20 lines) in the last 1h"
    );
    assert_eq!(
        message(&json, "migrations reviewed"),
        "Confirm the migrations were reviewed: confirmed by --yes"
    );
    assert_eq!(
        message(&json, "listening"),
        format!("port {port} is listening")
    );
    assert_eq!(json["checks"]["worker"]["count"], 1);
}

const SEMANTICS: &str = r#"name: semantics
vars: { env: staging }
steps:
  - { name: first, command: { run: "true" } }
  - { name: warns, command: { run: "echo 150", value: { warn: 100, crit: 1000 } } }
  - { name: tolerated, continue_on_failure: true, command: { run: "false" } }
  - { name: gated, needs: [tolerated], command: { run: "touch gated" } }
  - { name: prod only, when: "env == 'production'", command: { run: "touch prod" } }
  - { name: breaks, command: { run: "sh -c 'echo boom >&2; exit 3'" } }
  - { name: after, command: { run: "touch after" } }
  - { name: cleanup, always: true, command: { run: "touch cleaned" } }
on_failure:
  - { name: rollback, command: { run: "touch rolled-back" } }
"#;

#[test]
fn run_semantics_follow_the_spec() {
    let opsbook = Opsbook::new().file("rb.yaml", SEMANTICS);
    let dir = opsbook.dir().to_path_buf();
    let run = opsbook
        .args(["run", "rb.yaml", "--format", "json"])
        .run()
        .expect_exit(2);
    let json = run.json();
    assert_eq!(status(&json, "first"), "ok");
    assert_eq!(status(&json, "warns"), "warning");
    assert_eq!(message(&json, "warns"), "value 150 (> warn 100)");
    assert_eq!(status(&json, "tolerated"), "critical");
    assert_eq!(message(&json, "tolerated"), "exit 1, expected 0");
    assert_eq!(status(&json, "gated"), "skipped");
    assert_eq!(
        message(&json, "gated"),
        "needs \"tolerated\", which is critical"
    );
    assert_eq!(status(&json, "prod only"), "skipped");
    assert_eq!(
        message(&json, "prod only"),
        "condition `env == 'production'` is false"
    );
    assert_eq!(status(&json, "breaks"), "critical");
    assert_eq!(message(&json, "breaks"), "exit 3, expected 0: boom");
    assert_eq!(status(&json, "after"), "skipped");
    assert_eq!(message(&json, "after"), "not run: step \"breaks\" failed");
    assert_eq!(status(&json, "cleanup"), "ok");
    assert_eq!(status(&json, "rollback"), "ok");
    for (file, exists) in [
        ("cleaned", true),
        ("rolled-back", true),
        ("gated", false),
        ("prod", false),
        ("after", false),
    ] {
        assert_eq!(dir.join(file).exists(), exists, "{file}");
    }
}

#[test]
fn text_streams_each_step_and_shows_a_failed_commands_output() {
    let run = Opsbook::new()
        .file("rb.yaml", SEMANTICS)
        .args(["run", "rb.yaml", "--var", "env=production"])
        .run()
        .expect_exit(2);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("ok        first"), "{}", run.stdout);
    assert!(
        run.stdout.contains("ok        prod only"),
        "--var overrides vars"
    );
    assert!(run.stdout.contains("          │ boom\n"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("semantics: critical — 9 steps: 4 ok, 1 warning, 2 critical, 2 skipped"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_timed_out_command_is_killed_with_its_children() {
    let opsbook = Opsbook::new().file(
        "rb.yaml",
        "steps:\n  - name: stubborn\n    command:\n      run: \"trap '' TERM; sleep 60 & echo $! > child.pid; wait\"\n      shell: true\n      timeout: 1s\n",
    );
    let pid_file = opsbook.path("child.pid");
    let started = Instant::now();
    let run = opsbook
        .args(["run", "rb.yaml", "--format", "json"])
        .run()
        .expect_exit(2);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        message(&run.json(), "stubborn"),
        "timed out after 1s; its process group was killed"
    );
    let child = std::fs::read_to_string(pid_file).unwrap();
    // Gone, or a zombie waiting for a reaper: either way no longer running. A signal sent
    // is not yet a signal handled on a loaded machine: give the kernel a moment.
    let running = || {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", child.trim())).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .map(str::to_string);
        (!matches!(state.as_deref(), None | Some("Z") | Some("X"))).then_some(stat)
    };
    let waited = Instant::now();
    while let Some(stat) = running() {
        assert!(
            waited.elapsed() < Duration::from_secs(5),
            "child still running: {stat}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn manual_steps_are_unknown_without_a_person_or_yes() {
    let run = Opsbook::new()
        .file(
            "rb.yaml",
            "steps:\n  - name: review\n    manual: Migrations reviewed\n",
        )
        .args(["run", "rb.yaml", "--format", "json"])
        .run()
        .expect_exit(3);
    assert_eq!(
        message(&run.json(), "review"),
        "Migrations reviewed: needs a person (no terminal to ask on; run with --yes to confirm)"
    );
}

#[test]
fn only_skip_dry_run_and_tags() {
    let book = "steps:\n  - { name: a, tags: [fast], command: { run: \"touch a\" } }\n  - { name: b, command: { run: \"touch b\" } }\n  - { name: c, tags: [fast], command: { run: \"touch c\" } }\n";
    let opsbook = Opsbook::new().file("rb.yaml", book);
    let dir = opsbook.dir().to_path_buf();
    let run = opsbook
        .args([
            "run", "rb.yaml", "--only", "fast", "--skip", "c", "--format", "json",
        ])
        .run()
        .expect_exit(0);
    let json = run.json();
    assert_eq!(status(&json, "a"), "ok");
    assert_eq!(message(&json, "b"), "not selected by --only fast");
    assert_eq!(message(&json, "c"), "skipped by --skip c");
    assert!(dir.join("a").exists() && !dir.join("b").exists() && !dir.join("c").exists());

    let opsbook = Opsbook::new().file("rb.yaml", book);
    let dir = opsbook.dir().to_path_buf();
    let run = opsbook
        .args(["run", "rb.yaml", "--dry-run", "--skip", "b"])
        .run()
        .expect_exit(0);
    assert!(
        run.stdout.contains("command    b  (skipped by --skip b)"),
        "{}",
        run.stdout
    );
    assert!(!dir.join("a").exists(), "--dry-run ran a step");
}

#[test]
fn junit_and_tap_reports_have_the_shapes_ci_reads() {
    let opsbook = Opsbook::new().file("rb.yaml", SEMANTICS);
    let dir = opsbook.dir().to_path_buf();
    let run = opsbook
        .args([
            "run",
            "rb.yaml",
            "--format",
            "junit",
            "--output",
            "report.xml",
        ])
        .run()
        .expect_exit(2);
    // --output keeps the text on stdout and writes the asked format to the file.
    assert!(run.stdout.contains("critical  breaks"));
    let xml = std::fs::read_to_string(dir.join("report.xml")).unwrap();
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
        "{xml}"
    );
    assert!(
        xml.contains(
            "<testsuites name=\"opsbook semantics\" tests=\"9\" skipped=\"3\" failures=\"2\""
        ),
        "{xml}"
    );
    assert!(xml.contains("<testsuite name=\"opsbook semantics\""));
    assert_eq!(xml.matches("<testcase ").count(), 9);
    assert!(xml.contains("<testcase name=\"breaks\""));
    assert_eq!(xml.matches("<failure").count(), 2, "{xml}");
    assert_eq!(xml.matches("<skipped").count(), 3, "{xml}");
    assert!(xml.trim_end().ends_with("</testsuites>"));

    let run = Opsbook::new()
        .file("rb.yaml", SEMANTICS)
        .args(["run", "rb.yaml", "--format", "tap"])
        .run()
        .expect_exit(2);
    assert!(
        run.stdout
            .starts_with("TAP version 14\n1..9\nok 1 - first\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("not ok 6 - breaks\n  ---\n  severity: critical\n")
    );
    assert!(
        run.stdout
            .contains("ok 7 - after # SKIP not run: step \"breaks\" failed")
    );
}

#[test]
fn runbook_list_and_show() {
    let run = Opsbook::new()
        .file(
            "runbooks/local.yaml",
            "description: A local one\nsteps:\n  - { name: x, command: { run: \"true\" } }\n",
        )
        .args(["runbook", "list", "--format", "json"])
        .run()
        .expect_exit(0);
    let json = run.json();
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"local") && names.contains(&"daily") && names.contains(&"pre-deploy"));
    let local = json
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "local")
        .unwrap();
    assert_eq!(local["description"], "A local one");

    let run = Opsbook::new()
        .env("API_TOKEN", "canary-secret-93c1")
        .file(
            "rb.yaml",
            "vars: { token: \"${API_TOKEN}\" }\nsteps:\n  - { name: x, http: { url: \"http://127.0.0.1:1/\", headers: { Authorization: \"Bearer {{ token }}\" } } }\n  - { name: y, include: other.yaml }\n",
        )
        .file("other.yaml", "steps:\n  - { name: from other, command: { run: \"true\" } }\n")
        .args(["runbook", "show", "rb.yaml"])
        .run()
        .expect_exit(0)
        .stdout_contains("from other")
        .stdout_contains("Bearer ***");
    assert!(!run.stdout.contains("canary-secret-93c1"));
}

/// Each bad runbook: exit 78, `file:line:col`, the line quoted with a caret, nothing run.
#[test]
fn bad_runbooks_are_rejected_with_locations_before_anything_runs() {
    let first = "steps:\n  - { name: canary, command: { run: \"touch ran\" } }\n";
    let cases: [(&str, &str); 10] = [
        ("  - name: a\n    command: { run: true\n", "rb.yaml:4:"),
        (
            "  - name: a\n    htpp: { url: \"http://x/\" }\n",
            "unknown field `htpp`",
        ),
        (
            "  - { name: a, tcp: { host: h, port: 1 }, file: { path: x } }\n",
            "more than one kind",
        ),
        (
            "  - { name: a, command: { rn: \"true\" } }\n",
            "did you mean `run`?",
        ),
        ("  - name: a\n    name: b\n    load: {}\n", "rb.yaml:4:"),
        (
            "  - { name: a, timeout: 5 parsecs, load: {} }\n",
            "is not a duration",
        ),
        (
            "  - { name: a, command: { run: \"echo {{ nope }}\" } }\n",
            "undefined variable `nope`",
        ),
        (
            "  - { name: canary, load: {} }\n",
            "step name \"canary\" is used twice",
        ),
        (
            "  - { name: a, needs: [canery], load: {} }\n",
            "did you mean \"canary\"?",
        ),
        (
            "  - { name: a, when: \"status('later') == 'ok'\", load: {} }\n  - { name: later, load: {} }\n",
            "which does not run before it",
        ),
    ];
    for (rest, expected) in cases {
        let opsbook = Opsbook::new().file("rb.yaml", &format!("{first}{rest}"));
        let dir = opsbook.dir().to_path_buf();
        let run = opsbook.args(["run", "rb.yaml"]).run().expect_exit(78);
        assert!(
            run.stderr.contains(expected),
            "{rest}\nwanted {expected:?} in:\n{}",
            run.stderr
        );
        assert!(run.stderr.contains("rb.yaml:"), "{}", run.stderr);
        assert!(
            run.stderr.contains(" | "),
            "no quoted line:\n{}",
            run.stderr
        );
        assert!(run.stderr.contains('^'), "no caret:\n{}", run.stderr);
        assert!(!dir.join("ran").exists(), "a step ran: {rest}");
        assert_eq!(run.stdout, "");
    }
}

#[test]
fn every_error_in_a_runbook_is_reported_at_once() {
    let run = Opsbook::new()
        .file(
            "rb.yaml",
            "steps:\n  - name: one\n    htp: { url: \"http://x/\" }\n  - name: two\n    load: {}\n  - name: three\n    command: { run: \"true\", timeout: soon }\n",
        )
        .args(["runbook", "validate", "rb.yaml"])
        .run()
        .expect_exit(78);
    assert!(
        run.stderr.contains("rb.yaml:3:5: unknown field `htp`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `http`?"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("rb.yaml:7:"), "{}", run.stderr);
    assert!(
        run.stderr.contains("\"soon\" is not a duration"),
        "{}",
        run.stderr
    );
}

#[test]
fn include_cycles_are_caught() {
    Opsbook::new()
        .file(
            "a.yaml",
            "steps:\n  - { name: a, load: {} }\n  - { name: to b, include: b.yaml }\n",
        )
        .file(
            "b.yaml",
            "steps:\n  - { name: b, load: {} }\n  - { name: to a, include: a.yaml }\n",
        )
        .args(["run", "a.yaml"])
        .run()
        .expect_exit(78)
        .stderr_contains("b.yaml:3:")
        .stderr_contains("include cycle:");
}

#[test]
fn a_missing_runbook_is_named() {
    Opsbook::new()
        .args(["run", "dailly"])
        .run()
        .expect_exit(78)
        .stderr_contains("no such runbook")
        .stderr_contains("did you mean `daily`?");
}

/// Truncated and mutated runbooks never crash the loader: each is valid (0) or an error
/// with its file and a position (78).
#[test]
fn mutated_runbooks_never_panic() {
    let original = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/pre-deploy.yaml"),
    )
    .unwrap();
    let mut variants: Vec<String> = Vec::new();
    let chars: Vec<char> = original.chars().collect();
    for cut in (0..chars.len()).step_by(37) {
        variants.push(chars[..cut].iter().collect());
    }
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..60 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let at = (seed as usize) % chars.len();
        let junk = [
            "{", "}", ":", "- ", "\"", "[", "{{", "\n  ", "*a", "&a ", "!!int ",
        ][(seed >> 32) as usize % 11];
        let mut mutated: String = chars[..at].iter().collect();
        mutated.push_str(junk);
        mutated.extend(&chars[at..]);
        variants.push(mutated);
    }
    for (i, text) in variants.iter().enumerate() {
        let run = Opsbook::new()
            .file("rb.yaml", text)
            .args(["runbook", "validate", "rb.yaml"])
            .run();
        match run.code {
            Some(0) => {}
            Some(78) => assert!(
                run.stderr.contains("rb.yaml"),
                "variant {i}: no file named:\n{}\n---\n{text}",
                run.stderr
            ),
            other => panic!("variant {i}: exit {other:?}\n{}\n---\n{text}", run.stderr),
        }
    }
}

#[test]
fn the_schema_describes_every_kind_and_resolves_its_references() {
    let run = Opsbook::new()
        .args(["runbook", "schema"])
        .run()
        .expect_exit(0);
    let schema = run.json();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let step = &schema["$defs"]["Step"]["properties"];
    for kind in [
        "http",
        "tcp",
        "tls_cert",
        "dns",
        "command",
        "file",
        "log_errors",
        "manual",
        "process",
        "service",
        "port",
        "include",
    ] {
        assert!(step.get(kind).is_some(), "{kind}");
    }
    for reference in run.stdout.split("\"$ref\": \"").skip(1) {
        let target = reference.split('"').next().unwrap();
        let name = target.trim_start_matches("#/$defs/");
        assert!(schema["$defs"].get(name).is_some(), "dangling {target}");
    }
}

/// On a terminal (a pty from util-linux's `script`), a manual step asks and waits.
#[test]
fn manual_steps_ask_on_a_terminal() {
    for (answer, expected) in [
        ("y", "Migrations reviewed: confirmed"),
        ("n", "Migrations reviewed: not confirmed"),
    ] {
        let opsbook = Opsbook::new().file(
            "rb.yaml",
            "steps:\n  - name: review\n    manual: Migrations reviewed\n",
        );
        let dir = opsbook.dir().to_path_buf();
        let command = format!("{} --no-color run rb.yaml", env!("CARGO_BIN_EXE_opsbook"));
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "(sleep 1; echo {answer}) | script -qec '{command}' /dev/null"
            ))
            .current_dir(&dir)
            .env_remove("ENVIRONMENT")
            .output()
            .expect("script (util-linux)");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("? Migrations reviewed [y/N]"), "{text}");
        assert!(text.contains(expected), "{text}");
    }
}

#[test]
fn http_grades_a_number_in_the_json_body() {
    let base = server::http();
    let run = Opsbook::new()
        .file(
            "rb.yaml",
            &format!(
                "steps:\n  - {{ name: depth, continue_on_failure: true, http: {{ url: \"{base}/queue\", value: {{ json: /queue/depth, warn: 100, crit: 1000 }} }} }}\n  - {{ name: missing, http: {{ url: \"{base}/queue\", value: {{ json: /queue/nope, crit: 1 }} }} }}\n"
            ),
        )
        .args(["run", "rb.yaml", "--format", "json"])
        .run()
        .expect_exit(2);
    let json = run.json();
    assert_eq!(status(&json, "depth"), "warning");
    assert!(
        message(&json, "depth").ends_with("; /queue/depth = 150 (> warn 100)"),
        "{json}"
    );
    assert_eq!(
        message(&json, "missing"),
        "/queue/nope not found in the JSON body"
    );
}

#[test]
fn thresholds_can_come_from_variables() {
    let book = "vars: { pool_warn: \"${POOL_WARN:-100}\" }\nsteps:\n  - { name: connections, command: { run: \"echo 42\", value: { warn: \"{{ pool_warn }}\" } } }\n";
    let run = Opsbook::new()
        .file("rb.yaml", book)
        .args(["run", "rb.yaml", "--format", "json"])
        .run()
        .expect_exit(0);
    assert_eq!(message(&run.json(), "connections"), "value 42");
    let run = Opsbook::new()
        .file("rb.yaml", book)
        .args([
            "run",
            "rb.yaml",
            "--format",
            "json",
            "--var",
            "pool_warn=40",
        ])
        .run()
        .expect_exit(1);
    assert_eq!(message(&run.json(), "connections"), "value 42 (> warn 40)");
}
