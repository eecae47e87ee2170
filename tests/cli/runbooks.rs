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
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file()) // examples/ is checked by its own test
        .map(|p| p.display().to_string())
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
  - {{ name: cpu, cpu: {{ sample: 1s }} }}
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
            .starts_with("TAP version 13\n1..9\nok 1 - first\n"),
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
        .args(["runbook", "show", "rb.yaml", "--format", "yaml"])
        .run()
        .expect_exit(0)
        .stdout_contains("from other")
        .stdout_contains("Bearer ***");
    assert!(!run.stdout.contains("canary-secret-93c1"));
}

/// `runbook list` groups by kind in a fixed order (maintenance, deploy, diagnosis,
/// verification, other), each runbook with its one-line description and source; a runbook
/// without `kind:` and one that does not load are `other`. JSON says each one's kind.
#[test]
fn runbook_list_groups_runbooks_by_kind() {
    let ops = Opsbook::new()
        .file(
            "runbooks/local-check.yaml",
            "description: After the nightly import\nkind: verification\nsteps:\n  - { name: x, command: { run: \"true\" } }\n",
        )
        .file(
            "runbooks/kindless.yaml",
            "description: No kind given\nsteps:\n  - { name: x, command: { run: \"true\" } }\n",
        )
        .file("runbooks/broken.yaml", "steps: [\n");
    let dir = ops.dir().to_path_buf();
    let text = ops.args(["runbook", "list"]).run().expect_exit(0);
    crate::common::expect_file("runbook-list.txt", &text.stdout);
    let json = Opsbook::new()
        .args(["runbook", "list", "--format", "json"])
        .run_in(&dir)
        .expect_exit(0)
        .json();
    let kinds: Vec<(String, String)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let kind = |name: &str| {
        kinds
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, k)| k.as_str())
    };
    assert_eq!(kind("daily"), Some("maintenance"));
    assert_eq!(kind("startup"), Some("verification"));
    assert_eq!(kind("local-check"), Some("verification"));
    assert_eq!(kind("kindless"), Some("other"));
    assert_eq!(kind("broken"), Some("other"));
    let order = [
        "maintenance",
        "deploy",
        "diagnosis",
        "verification",
        "other",
    ];
    let ranks: Vec<usize> = kinds
        .iter()
        .map(|(_, k)| order.iter().position(|o| o == k).unwrap())
        .collect();
    assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "not grouped: {kinds:?}"
    );
}

/// `runbook show` prints the plan as it would run: every variable resolved (config's
/// `runbooks.vars` under `--var`; a secret from the environment and a variable named like a
/// secret as `***`), each step's kind and role, a command's exact words, an included
/// runbook's steps in place, undo and on_failure steps. `--format yaml` keeps the data.
#[test]
fn runbook_show_prints_the_resolved_plan_with_every_command() {
    let ops = Opsbook::new()
        .env("API_TOKEN", "canary-token-5521")
        .file(
            "config/development.yaml",
            "runbooks:\n  vars:\n    service: billing-api\n    api: http://127.0.0.1:9\n",
        )
        .file(
            "release.yaml",
            "name: release\ndescription: Ship it\nkind: deploy\ndefaults: { timeout: 2m }\n\
             vars:\n  service: app\n  api: http://localhost:8000\n  token: \"${API_TOKEN}\"\n  db_password: \"\"\n\
             steps:\n\
             \x20 - name: Checks\n    include: checks.yaml\n\
             \x20 - name: Migrate\n    command:\n      argv: [migrate, --message, \"it's {{ service }}\", \"--password={{ db_password }}\"]\n      dir: /srv/app\n\
             \x20   undo:\n      name: Downgrade\n      command: { run: \"migrate down 1\" }\n\
             \x20 - name: Restart\n    needs: [Migrate]\n    retries: 2\n    command: { run: \"systemctl restart {{ service }}\" }\n\
             \x20 - parallel:\n      - { name: Health, http: { url: \"{{ api }}/health\", headers: { Authorization: \"Bearer {{ token }}\" } } }\n\
             \x20     - { name: Disk, disk: { path: /, warn: 80%, crit: 90% } }\n\
             \x20 - name: Signed off\n    manual: \"{{ service }} answers as expected\"\n\
             on_failure:\n  - name: Tell\n    command: { shell: true, run: 'echo failed >> \"$LOG\"', env: { LOG: /var/log/release.log } }\n",
        )
        .file(
            "checks.yaml",
            "steps:\n  - { name: Port, tcp: { host: 127.0.0.1, port: 5432 }, continue_on_failure: true }\n",
        );
    let dir = ops.dir().to_path_buf();
    let text = ops
        .args([
            "runbook",
            "show",
            "release.yaml",
            "--var",
            "db_password=hunter2-canary",
        ])
        .run()
        .expect_exit(0);
    assert!(!text.stdout.contains("canary"), "{}", text.stdout);
    crate::common::expect_file("runbook-show.txt", &text.stdout);
    let yaml = Opsbook::new()
        .env("API_TOKEN", "canary-token-5521")
        .args(["runbook", "show", "release.yaml", "--format", "yaml"])
        .run_in(&dir)
        .expect_exit(0);
    let doc: serde_json::Value = serde_saphyr::from_str(&yaml.stdout)
        .unwrap_or_else(|e| panic!("not YAML ({e}):\n{}", yaml.stdout));
    assert_eq!(doc["vars"]["token"], "***");
    assert_eq!(doc["vars"]["service"], "billing-api");
    assert_eq!(doc["steps"][0]["role"], "reads");
    assert_eq!(doc["steps"][1]["role"], "runs");
    let json = Opsbook::new()
        .env("API_TOKEN", "canary-token-5521")
        .args(["runbook", "show", "release.yaml", "--format", "json"])
        .run_in(&dir)
        .expect_exit(0)
        .json();
    assert_eq!(json["steps"][2]["name"], "Restart");
    Opsbook::new()
        .env("API_TOKEN", "canary-token-5521")
        .args(["runbook", "show", "release.yaml", "--format", "tap"])
        .run_in(&dir)
        .expect_exit(64)
        .stderr_contains("text, yaml, json");
}

/// `runbooks.vars` in the config reach every run, under a schedule's `vars` and `--var`;
/// an unknown key beside it and a name `{{ }}` cannot use are config errors at their line.
#[test]
fn configured_runbook_vars_reach_every_run_under_schedule_vars_and_var_flags() {
    let ops = Opsbook::new()
        .file(
            "ops.yaml",
            "state_dir: state\nrunbooks:\n  vars:\n    who: config\n    where: config\n    what: config\n\
             maintain:\n  schedules:\n    nightly:\n      runbook: say.yaml\n      vars: { where: schedule }\n",
        )
        .file(
            "say.yaml",
            "name: say\nvars:\n  who: file\n  where: file\n  what: file\nsteps:\n\
             \x20 - name: Say\n    command: { shell: true, run: 'echo \"$W $X $Y\" >> said', env: { W: \"{{ who }}\", X: \"{{ where }}\", Y: \"{{ what }}\" } }\n",
        );
    let dir = ops.dir().to_path_buf();
    // The first run holds the test directory for the ones after it.
    let _first = ops
        .args(["--config", "ops.yaml", "run", "say.yaml"])
        .args(["--var", "what=flag"])
        .run()
        .expect_exit(0);
    Opsbook::new()
        .args(["--config", "ops.yaml", "maintain", "run", "nightly"])
        .run_in(&dir)
        .expect_exit(0);
    assert_eq!(
        std::fs::read_to_string(dir.join("said")).unwrap(),
        "config config flag\nconfig schedule config\n"
    );
    // Without the config, the file's own vars.
    Opsbook::new()
        .args(["run", "say.yaml"])
        .run_in(&dir)
        .expect_exit(0);
    assert!(
        std::fs::read_to_string(dir.join("said"))
            .unwrap()
            .ends_with("file file file\n")
    );

    let bad = Opsbook::new()
        .file(
            "ops.yaml",
            "runbooks:\n  vars:\n    fine: yes\n    not-a-name: x\n  varz: {}\n",
        )
        .args(["--config", "ops.yaml", "config", "validate"])
        .run()
        .expect_exit(78);
    assert!(bad.stderr.contains("ops.yaml:4:"), "{}", bad.stderr);
    assert!(
        bad.stderr.contains("\"not-a-name\" cannot be used"),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("ops.yaml:5:"), "{}", bad.stderr);
    assert!(bad.stderr.contains("varz"), "{}", bad.stderr);
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
        "log_match",
        "log_latency",
        "manual",
        "process",
        "service",
        "port",
        "include",
    ] {
        assert!(step.get(kind).is_some(), "{kind}");
    }
    assert!(
        step["undo"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("newest first")),
        "{}",
        step["undo"]
    );
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
        .expect_exit(3);
    let json = run.json();
    assert_eq!(status(&json, "depth"), "warning");
    // A value that is not there crossed no level: unknown (exit 3), not critical.
    assert_eq!(status(&json, "missing"), "unknown");
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

#[test]
fn a_reading_that_is_not_a_number_is_unknown_and_one_level_is_plain() {
    let base = server::http();
    let step = |name: &str, kind: &str| {
        format!("  - {{ name: {name}, continue_on_failure: true, {kind} }}\n")
    };
    let book = [
        "vars: { code: \"3\", attempts: \"0\", errors_warn: \"1\", errors_max: \"5\" }\nsteps:\n"
            .to_string(),
        step("words", "command: { run: \"echo none here\", value: { crit: 1 } }"),
        step(
            "pattern",
            "command: { run: \"echo depth=deep\", value: { pattern: 'depth=(\\S+)', crit: 1 } }",
        ),
        step("text", &format!("http: {{ url: \"{base}/ok\", value: {{ json: /status, crit: 1 }} }}")),
        step("crit_alone", "command: { run: \"echo 50\", value: { crit: 100 } }"),
        step("crit_crossed", "command: { run: \"echo 150\", value: { crit: 100 } }"),
        step("warn_alone", "command: { run: \"echo 5000\", value: { warn: 10 } }"),
        step("errors_warn", "log_errors: { path: app.log, warn: \"{{ errors_warn }}\" }"),
        step("errors_max", "log_errors: { path: app.log, max: \"{{ errors_max }}\" }"),
        step(
            "exit_from_var",
            "command: { argv: [sh, -c, \"exit 3\"], exit: \"{{ code }}\" }, retries: \"{{ attempts }}\"",
        ),
    ]
    .concat();
    let errors = "2026-01-01 00:00:00,000 ERROR one\n2026-01-01 00:00:01,000 ERROR two\n";
    let run = Opsbook::new()
        .file("rb.yaml", &book)
        .file("app.log", errors)
        .args(["run", "rb.yaml", "--format", "json"])
        .run();
    let json = run.json();
    assert_eq!(status(&json, "errors_warn"), "warning", "{json}");
    assert_eq!(status(&json, "errors_max"), "ok", "{json}");
    assert_eq!(status(&json, "words"), "unknown", "{json}");
    assert_eq!(message(&json, "words"), "no number in stdout \"none here\"");
    assert_eq!(status(&json, "pattern"), "unknown", "{json}");
    assert_eq!(
        message(&json, "pattern"),
        "\"deep\" (from stdout) is not a number"
    );
    assert_eq!(status(&json, "text"), "unknown", "{json}");
    assert_eq!(
        message(&json, "text"),
        "/status = \"healthy\", expected a number"
    );
    assert_eq!(status(&json, "crit_alone"), "ok", "{json}");
    assert_eq!(status(&json, "crit_crossed"), "critical", "{json}");
    assert_eq!(message(&json, "crit_crossed"), "value 150 (> crit 100)");
    assert_eq!(status(&json, "warn_alone"), "warning", "{json}");
    assert_eq!(message(&json, "warn_alone"), "value 5000 (> warn 10)");
    assert_eq!(status(&json, "exit_from_var"), "ok", "{json}");
    run.expect_exit(2);
}

// ---------------------------------------------------------------------------------------
// Every shipped check step can fail: a healthy world in which every shipped runbook is
// green, and for each check step a mutation of that world in which that step alone goes
// warning or critical. A check step with no mutation fails `every_shipped_check_step_has_a_fixture`.

pub(crate) mod shipped {
    use crate::common::{Mounted, Opsbook, server, tls};
    use std::collections::BTreeMap;
    use std::io::{Read, Write};
    use std::path::{Path, PathBuf};

    /// The shipped runbooks tested below (the newer ones are tested with
    /// `common::library::Book` in tests/cli/library_*.rs; a runbook moved there leaves
    /// this list).
    const RUNBOOKS: [&str; 2] = ["backup-verify", "daily"];

    fn shipped_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks")
    }

    /// The check steps of a shipped runbook, read from its YAML: every step of `steps`
    /// (groups flattened, includes followed) that is not `manual`.
    fn check_steps(runbook: &str) -> Vec<String> {
        let path = shipped_dir().join(format!("{runbook}.yaml"));
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let mut names = Vec::new();
        for item in doc["steps"].as_array().unwrap() {
            let steps: Vec<&serde_json::Value> = match item["parallel"].as_array() {
                Some(group) => group.iter().collect(),
                None => vec![item],
            };
            for step in steps {
                if let Some(included) = step["include"].as_str() {
                    names.extend(check_steps(included.trim_end_matches(".yaml")));
                } else if step.get("manual").is_none() {
                    names.push(step["name"].as_str().unwrap().to_string());
                }
            }
        }
        names
    }

    /// A local API: `/health` answers 200 healthy (500 once `broken` exists: a release that
    /// came back unhealthy after its restart), `/health/readiness` answers `ready`.
    pub(crate) fn api(health: u16, ready: u16, broken: PathBuf) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let broken = broken.clone();
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head);
                    let path = head.split_whitespace().nth(1).unwrap_or("/");
                    let status = match path {
                        "/health" if broken.exists() => 500,
                        "/health" => health,
                        "/health/readiness" => ready,
                        _ => 404,
                    };
                    let body = if status == 200 {
                        r#"{"status":"healthy"}"#
                    } else {
                        r#"{"status":"unhealthy"}"#
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        port
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Backups {
        Fresh,
        /// The newest backup is three days old.
        Old,
        /// The newest backup is fresh but its archive is damaged.
        Corrupt,
        /// A fresh one, and a ten-day-old one on a read-only filesystem: pruning fails.
        Unprunable,
    }

    /// The world every shipped runbook runs in; `Default` is healthy.
    struct World {
        memory: f64,
        disk: f64,
        data_disk: f64,
        cpu: f64,
        swap: f64,
        health: u16,
        ready: u16,
        broken_by_restart: bool,
        api_port_dead: bool,
        /// Extra lines in the application log: (seconds ago, level, how many).
        log_lines: Vec<(i64, &'static str, usize)>,
        backups: Backups,
        source_missing: bool,
        rotate_broken: bool,
        cert_days_left: i64,
        audit_log_old: bool,
        config_missing: bool,
        big_logs: bool,
        big_backups: bool,
        no_environment: bool,
        db_port: Option<u16>,
        vars: Vec<(&'static str, &'static str)>,
    }

    impl Default for World {
        fn default() -> Self {
            World {
                memory: 10.0,
                disk: 10.0,
                data_disk: 10.0,
                cpu: 10.0,
                swap: 0.0,
                health: 200,
                ready: 200,
                broken_by_restart: false,
                api_port_dead: false,
                log_lines: Vec::new(),
                backups: Backups::Fresh,
                source_missing: false,
                rotate_broken: false,
                cert_days_left: 40,
                audit_log_old: false,
                config_missing: false,
                big_logs: false,
                big_backups: false,
                no_environment: false,
                db_port: None,
                vars: Vec::new(),
            }
        }
    }

    /// The mutation that makes `step` (a shipped check step's name) warning or critical
    /// and leaves every other check step as it was; `None` when there is none.
    fn mutation(step: &str) -> Option<fn(&mut World)> {
        let mutate: fn(&mut World) = match step {
            "API health" => |w| w.health = 500,
            "Error log review" => |w| w.log_lines.push((5 * 3600, "ERROR", 10)),
            "Memory" => |w| w.memory = 95.0,
            "Disk space" => |w| w.disk = 95.0,
            "CPU" => |w| w.cpu = 99.0,
            "Newest backup is recent" | "Backups are recent" => |w| w.backups = Backups::Old,
            "Newest backup restores" => |w| w.backups = Backups::Corrupt,
            "Back up" => |w| w.source_missing = true,
            "Prune backups" => |w| w.backups = Backups::Unprunable,
            "Rotate logs" => |w| w.rotate_broken = true,
            "Certificate not expiring" => |w| w.cert_days_left = 3,
            _ => return None,
        };
        Some(mutate)
    }

    #[test]
    fn every_shipped_check_step_has_a_fixture() {
        let mut files: Vec<String> = std::fs::read_dir(shipped_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|path| path.is_file()) // examples/ is not shipped
            .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let mut tested: Vec<String> = RUNBOOKS
            .iter()
            .chain(crate::library_maintenance::COVERED)
            .chain(crate::library_diagnosis::COVERED)
            .chain(crate::library_verification::COVERED)
            .map(|name| name.to_string())
            .collect();
        tested.sort();
        tested.dedup();
        assert_eq!(
            files, tested,
            "each shipped runbook needs a test below or in tests/cli/library_*.rs"
        );
        let mut missing = Vec::new();
        for runbook in RUNBOOKS {
            for step in check_steps(runbook) {
                if mutation(&step).is_none() {
                    missing.push(format!("{runbook}: {step:?}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "shipped check steps that no fixture makes fail:\n{}",
            missing.join("\n")
        );
    }

    fn log_line(ago: i64, level: &str, i: usize) -> String {
        let at = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(ago + i as i64);
        format!(
            "{} {level} request {i} handled\n",
            at.strftime("%Y-%m-%d %H:%M:%S")
        )
    }

    fn backup(dir: &Path, now: Option<jiff::Timestamp>) -> PathBuf {
        let before: Vec<PathBuf> = entries(&dir.join("dest"));
        let mut cmd = Opsbook::new().args(["--config", "c.yaml", "backup", "create", "db"]);
        if let Some(now) = now {
            cmd = cmd.env("OPSBOOK_NOW", now.to_string());
        }
        cmd.run_in(dir).expect_exit(0);
        entries(&dir.join("dest"))
            .into_iter()
            .find(|e| !before.contains(e))
            .expect("a new backup")
    }

    fn entries(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    }

    fn sparse(path: &Path, len: u64) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::File::create(path).unwrap().set_len(len).unwrap();
    }

    impl World {
        /// Run `runbook` in this world; its JSON report.
        fn run(&self, runbook: &str) -> serde_json::Value {
            let ob = Opsbook::new();
            let dir = ob.dir().to_path_buf();
            let flag = dir.join("restarted");
            let api_port = api(self.health, self.ready, flag.clone());
            let today = jiff::tz::TimeZone::UTC
                .to_datetime(jiff::Timestamp::now())
                .date();
            let cert = tls::server(
                today - jiff::Span::new().days(30),
                today + jiff::Span::new().days(self.cert_days_left),
            );
            let log_size = if self.rotate_broken { "1K" } else { "1M" };
            let postrotate = if self.rotate_broken { "false" } else { "true" };
            let config = format!(
                "state_dir: {dir}/state\nbackup:\n  destination: {dir}/dest\n  sets:\n    db: {{ paths: [{dir}/data], keep_daily: 1 }}\nlogs:\n  sets:\n    app: {{ paths: [\"{dir}/rotated/app.log\"], size: {log_size}, keep: 2, postrotate: \"{postrotate}\" }}\n",
                dir = dir.display()
            );
            let mut ob = ob
                .file("c.yaml", &config)
                .file("data/rows.txt", "1\n2\n3\n")
                .file("rotated/app.log", &"x".repeat(2048))
                .file("logdir/app.log", "small\n")
                .file("backupdir/README", "small\n")
                .file("audit-fixture.log", "{}\n");
            // The application log: quiet traffic over the last month, plus the mutation's.
            let mut log = String::new();
            for (ago, count) in [
                (10 * 86_400, 20),
                (3 * 86_400, 20),
                (2 * 3600, 200),
                (300, 20),
            ] {
                for i in 0..count {
                    log.push_str(&log_line(ago, "INFO", i * 60 % 3000));
                }
            }
            for (ago, level, count) in &self.log_lines {
                for i in 0..*count {
                    log.push_str(&log_line(*ago, level, i));
                }
            }
            ob = ob.file("app.log", &log);
            if self.audit_log_old {
                let old =
                    std::time::SystemTime::now() - std::time::Duration::from_secs(10 * 86_400);
                std::fs::File::options()
                    .write(true)
                    .open(dir.join("audit-fixture.log"))
                    .unwrap()
                    .set_modified(old)
                    .unwrap();
            }
            if self.big_logs {
                sparse(&dir.join("logdir/huge.log"), 2 << 30);
            }
            if self.big_backups {
                sparse(&dir.join("backupdir/huge.tar"), 60 << 30);
            }
            // Backups.
            let now = jiff::Timestamp::now();
            let mut _read_only = None;
            match self.backups {
                Backups::Fresh => {
                    backup(&dir, None);
                }
                Backups::Old => {
                    backup(&dir, Some(now - jiff::SignedDuration::from_hours(72)));
                }
                Backups::Corrupt => {
                    let id = backup(&dir, None);
                    let archive = entries(&id)
                        .into_iter()
                        .filter(|p| !p.to_string_lossy().contains("manifest"))
                        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
                        .unwrap();
                    let mut bytes = std::fs::read(&archive).unwrap();
                    let middle = bytes.len() / 2;
                    let end = (middle + 16).min(bytes.len());
                    for b in &mut bytes[middle..end] {
                        *b ^= 0xff;
                    }
                    std::fs::write(&archive, bytes).unwrap();
                }
                Backups::Unprunable => {
                    let old = backup(&dir, Some(now - jiff::SignedDuration::from_hours(240)));
                    backup(&dir, None);
                    // The old backup moves onto a filesystem that refuses its removal.
                    let saved = dir.join("saved-old");
                    std::fs::rename(&old, &saved).unwrap();
                    let mount = Mounted::tmpfs(&old, "16m");
                    for file in entries(&saved) {
                        std::fs::copy(&file, old.join(file.file_name().unwrap())).unwrap();
                    }
                    let status = std::process::Command::new("mount")
                        .args(["-o", "remount,ro"])
                        .arg(&old)
                        .status()
                        .unwrap();
                    assert!(status.success());
                    _read_only = Some(mount);
                }
            }
            if self.source_missing {
                std::fs::remove_dir_all(dir.join("data")).unwrap();
            }
            // Fixed readings.
            let total: u64 = 100 << 30;
            let reading = |used: f64| {
                serde_json::json!({
                    "mount": "/", "total": total,
                    "available": ((100.0 - used) / 100.0 * total as f64) as u64,
                })
            };
            let data_dir = dir.join("pgdata");
            std::fs::create_dir_all(&data_dir).unwrap();
            let readings = serde_json::json!({
                "memory": {
                    "total": total,
                    "available": ((100.0 - self.memory) / 100.0 * total as f64) as u64,
                    "swap_total": total,
                    "swap_used": (self.swap / 100.0 * total as f64) as u64,
                },
                "disks": { "/": reading(self.disk), data_dir.display().to_string(): reading(self.data_disk) },
                "cpu": {"percent": self.cpu, "count": 4},
                "load": {"one": 0.5, "five": 0.25, "fifteen": 0.125},
            });
            ob = ob.file("readings.json", &readings.to_string()).env(
                "OPSBOOK_READINGS",
                dir.join("readings.json").display().to_string(),
            );
            if !self.no_environment {
                ob = ob.env("ENVIRONMENT", "development");
            }
            let api_url = format!("http://127.0.0.1:{api_port}");
            let api_check_port = if self.api_port_dead {
                server::closed_port()
            } else {
                api_port
            };
            let db_port = self.db_port.unwrap_or_else(server::closed_port);
            let restart = if self.broken_by_restart {
                format!("touch {}", flag.display())
            } else {
                "true".to_string()
            };
            let config_file = if self.config_missing {
                "missing.yaml"
            } else {
                "c.yaml"
            };
            let mut vars: BTreeMap<&str, String> = BTreeMap::from([
                ("api", api_url),
                ("api_host", "127.0.0.1".into()),
                ("api_port", api_check_port.to_string()),
                ("app_log", "app.log".into()),
                ("tls_host", "127.0.0.1".into()),
                ("tls_port", cert.port.to_string()),
                ("backup_set", "db".into()),
                ("log_set", "app".into()),
                ("audit_log", "audit-fixture.log".into()),
                ("config_file", config_file.into()),
                ("log_dir", "logdir".into()),
                ("backup_dir", "backupdir".into()),
                ("test_command", "true".into()),
                ("app_dir", ".".into()),
                ("pull", "true".into()),
                ("install", "true".into()),
                ("migrate", "true".into()),
                ("test", "true".into()),
                ("restart", restart),
                ("rollback", "true".into()),
                ("downgrade", "true".into()),
                ("db_host", "127.0.0.1".into()),
                ("db_port", db_port.to_string()),
                ("db_user", "postgres".into()),
                ("db_name", "postgres".into()),
                ("data_dir", data_dir.display().to_string()),
            ]);
            for (name, value) in &self.vars {
                vars.insert(name, value.to_string());
            }
            let path = shipped_dir().join(format!("{runbook}.yaml"));
            let mut args = vec![
                "--config".to_string(),
                "c.yaml".to_string(),
                "run".to_string(),
                path.display().to_string(),
                "--format".to_string(),
                "json".to_string(),
                "--yes".to_string(),
            ];
            for (name, value) in vars {
                args.push("--var".to_string());
                args.push(format!("{name}={value}"));
            }
            let run = ob.args(args).run();
            assert!(
                matches!(run.code, Some(0..=3)),
                "{runbook}: exit {:?}\n{}\n{}",
                run.code,
                run.stdout,
                run.stderr
            );
            let report = run.json();
            // Unmounted before the test directory goes.
            drop(_read_only);
            report
        }
    }

    fn severities(report: &serde_json::Value) -> BTreeMap<String, String> {
        report["checks"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, check)| {
                (
                    name.clone(),
                    check["severity"].as_str().unwrap_or("missing").to_string(),
                )
            })
            .collect()
    }

    /// A rollback's undo steps and `on_failure` answer a failure; they are not checks.
    fn is_check(runbook: &str, name: &str) -> bool {
        let text = std::fs::read_to_string(shipped_dir().join(format!("{runbook}.yaml"))).unwrap();
        let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let on_failure = doc["on_failure"].as_array().cloned().unwrap_or_default();
        !name.starts_with("undo: ") && !on_failure.iter().any(|s| s["name"] == name)
    }

    /// The healthy world is all green; then each check step's mutation makes that step,
    /// and no other check step, warning or critical.
    fn prove(runbook: &str, world: impl Fn() -> World) {
        let bad = |s: &str| s == "warning" || s == "critical";
        let baseline = severities(&world().run(runbook));
        let not_green: Vec<_> = baseline
            .iter()
            .filter(|(_, s)| *s != "ok" && *s != "skipped")
            .collect();
        assert!(
            not_green.is_empty(),
            "{runbook}: the healthy world is not green: {not_green:?}"
        );
        for step in check_steps(runbook) {
            let Some(mutate) = mutation(&step) else {
                panic!("{runbook}: no fixture for {step:?}");
            };
            let mut w = world();
            mutate(&mut w);
            let result = severities(&w.run(runbook));
            assert!(
                result.get(&step).is_some_and(|s| bad(s)),
                "{runbook}: {step:?} did not fail in its fixture: {result:?}"
            );
            let others: Vec<_> = result
                .iter()
                .filter(|(name, s)| **name != step && bad(s) && is_check(runbook, name))
                .collect();
            assert!(
                others.is_empty(),
                "{runbook}: {step:?}'s fixture also failed {others:?}"
            );
        }
    }

    #[test]
    fn backup_verify() {
        prove("backup-verify", World::default);
    }

    #[test]
    fn daily() {
        prove("daily", World::default);
    }
}

/// A release in three steps, each leaving a file and reversing it in its `undo`; each
/// undo also appends to `undo.log`, so the order they ran in is on disk.
const RELEASE: &str = r#"name: release
vars: { fail_at: "" }
steps:
  - name: pre-check
    command: { run: "test '{{ fail_at }}' != pre-check", shell: true }
    undo:
      command: { run: "echo pre-check >> undo.log", shell: true }
  - name: switch
    command: { run: "test '{{ fail_at }}' != switch && touch switched", shell: true }
    undo:
      - name: switch back
        command: { run: "rm switched && echo switch >> undo.log", shell: true }
      - name: say so
        command: { run: "echo said >> undo.log", shell: true }
  - name: migrate
    command: { run: "test '{{ fail_at }}' != migrate && touch migrated", shell: true }
    undo:
      command: { run: "rm migrated && echo migrate >> undo.log", shell: true }
  - name: optional
    continue_on_failure: true
    command: { run: "false" }
    undo:
      command: { run: "echo optional >> undo.log", shell: true }
  - name: smoke
    command: { run: "test '{{ fail_at }}' != smoke", shell: true }
    undo:
      command: { run: "echo smoke >> undo.log", shell: true }
  - name: tidy
    always: true
    command: { run: "echo tidy >> undo.log", shell: true }
on_failure:
  - name: tell
    command: { run: "echo tell >> undo.log", shell: true }
"#;

fn release(fail_at: &str) -> (crate::common::Run, String, std::path::PathBuf) {
    let opsbook = Opsbook::new().file("rb.yaml", RELEASE);
    let dir = opsbook.dir().to_path_buf();
    let run = opsbook
        .args(["run", "rb.yaml", "--format", "json", "--var"])
        .args([format!("fail_at={fail_at}")])
        .run();
    let log = std::fs::read_to_string(dir.join("undo.log")).unwrap_or_default();
    (run, log, dir)
}

#[test]
fn undo_reverses_only_the_steps_that_completed_newest_first() {
    // `optional` fails (continue_on_failure) in every run, so every run fails; it never
    // completed, so its undo never runs.
    // Failing at the first step: nothing ran, nothing is undone; `always`, then on_failure.
    let (run, log, _) = release("pre-check");
    let json = run.expect_exit(2).json();
    assert_eq!(log, "tidy\ntell\n");
    assert!(json["checks"].get("undo: pre-check").is_none());
    // Failing at migrate: its own undo does not run (it failed), switch's do, in order,
    // then pre-check's; after the `always` step and before on_failure.
    let (run, log, dir) = release("migrate");
    let json = run.expect_exit(2).json();
    assert_eq!(log, "tidy\nswitch\nsaid\npre-check\ntell\n");
    assert!(!dir.join("switched").exists() && !dir.join("migrated").exists());
    assert_eq!(status(&json, "undo: switch back"), "ok");
    assert_eq!(status(&json, "undo: say so"), "ok");
    assert_eq!(status(&json, "undo: pre-check"), "ok");
    assert!(json["checks"].get("undo: migrate").is_none());
    assert!(json["checks"].get("undo: optional").is_none());
    assert!(json["checks"].get("undo: smoke").is_none());
    // Failing late: everything that completed is undone, newest first.
    let (run, log, _) = release("smoke");
    run.expect_exit(2);
    assert_eq!(log, "tidy\nmigrate\nswitch\nsaid\npre-check\ntell\n");
}

#[test]
fn a_failing_undo_is_reported_and_the_others_still_run() {
    let book = "steps:\n  - name: one\n    command: { run: \"true\" }\n    undo: { command: { run: \"touch one-undone\" } }\n  - name: two\n    command: { run: \"true\" }\n    undo: { command: { run: \"false\" } }\n  - name: three\n    command: { run: \"false\" }\n";
    let opsbook = Opsbook::new().file("rb.yaml", book);
    let dir = opsbook.dir().to_path_buf();
    let run = opsbook.args(["run", "rb.yaml"]).run().expect_exit(2);
    assert!(run.stdout.contains("critical  undo: two"), "{}", run.stdout);
    assert!(run.stdout.contains("ok        undo: one"), "{}", run.stdout);
    assert!(dir.join("one-undone").exists());
}

#[test]
fn undo_results_are_marked_in_every_format() {
    let formats = [
        ("json", "\"undo: switch back\""),
        ("junit", "<testcase name=\"undo: switch back\""),
        ("tap", "ok 8 - undo: switch back"),
        ("text", "undo: switch back"),
    ];
    for (format, needle) in formats {
        let run = Opsbook::new()
            .file("rb.yaml", RELEASE)
            .args([
                "run",
                "rb.yaml",
                "--var",
                "fail_at=smoke",
                "--format",
                format,
            ])
            .run()
            .expect_exit(2);
        assert!(run.stdout.contains(needle), "{format}: {}", run.stdout);
    }
}

#[test]
fn bad_undo_is_rejected_with_its_location() {
    for (book, needle) in [
        (
            "steps:\n  - name: a\n    command: { run: \"true\" }\n    undo: { command: { run: \"true\" }, needs: [a] }\n",
            "an `undo` step cannot have `always` or `needs`",
        ),
        (
            "steps:\n  - name: a\n    command: { run: \"true\" }\n    undo: []\n",
            "an empty `undo` list",
        ),
        (
            "steps:\n  - name: a\n    command: { run: \"true\" }\n    undo: { htp: { url: x } }\n",
            "rb.yaml:4",
        ),
        (
            "steps:\n  - name: a\n    command: { run: \"true\" }\non_failure:\n  - name: b\n    command: { run: \"true\" }\n    undo: { command: { run: \"true\" } }\n",
            "`undo` cannot be used in `on_failure`",
        ),
        (
            "steps:\n  - name: a\n    command: { run: \"true\" }\n    undo: { name: b, command: { run: \"true\" } }\n  - name: \"undo: b\"\n    command: { run: \"true\" }\n",
            "used twice",
        ),
    ] {
        let opsbook = Opsbook::new().file("rb.yaml", book);
        let dir = opsbook.dir().to_path_buf();
        opsbook
            .args(["run", "rb.yaml"])
            .run()
            .expect_exit(78)
            .stderr_contains(needle);
        assert!(!dir.join("a").exists());
    }
}

#[test]
fn the_shipped_deploy_rolls_back_only_what_it_did() {
    // Every command of the deploy writes its name to deploy.log; a failing one is
    // `sh -c 'exit 1'` (`false` is a false `when:`: an empty or false command is skipped).
    let ops = Opsbook::new()
        .file("app/.keep", "")
        .readings(10.0, 10.0, 1.0)
        .env("ENVIRONMENT", "development");
    let dir = ops.dir().to_path_buf();
    let log = dir.join("deploy.log");
    let step = |name: &str| format!("sh -c 'echo {name} >> {}'", log.display());
    let deploy = |failing: &[&str]| {
        let mut args = vec![
            "run".to_string(),
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("runbooks/deploy.yaml")
                .display()
                .to_string(),
            "--yes".to_string(),
            "--only".to_string(),
            "Pull latest code,Install dependencies,Run migrations,Run tests,Restart service,Verify health".to_string(),
            "--var".to_string(),
            "api=http://127.0.0.1:1".to_string(),
        ];
        for var in crate::library_maintenance::DEPLOY_COMMANDS {
            let command = if failing.contains(&var) {
                "sh -c 'exit 1'".to_string()
            } else {
                step(var)
            };
            args.push("--var".to_string());
            args.push(format!("{var}={command}"));
        }
        let _ = std::fs::remove_file(&log);
        let run = Opsbook::new().args(args).run_in(&dir);
        (run, std::fs::read_to_string(&log).unwrap_or_default())
    };
    // The migration fails: it is not downgraded; the code is rolled back and the old
    // dependencies reinstalled; the service was never restarted, so it is not restarted.
    let (run, log) = deploy(&["migrate"]);
    run.expect_exit(2);
    assert_eq!(log, "pull\ninstall\nrollback\ninstall\n");
    // The pull fails: nothing was deployed, nothing is rolled back.
    let (run, log) = deploy(&["pull"]);
    run.expect_exit(2);
    assert_eq!(log, "");
    // Tests fail after the migration: downgrade, then roll back the code.
    let (run, log) = deploy(&["test"]);
    run.expect_exit(2);
    assert_eq!(
        log,
        "pull\ninstall\nmigrate\ndowngrade\nrollback\ninstall\n"
    );
}

#[test]
fn dry_run_prints_each_command_with_its_variables_resolved() {
    let book = "vars: { release: \"42\" }\nsteps:\n  - name: switch\n    command: { run: \"ln -sfn releases/{{ release }} current\", dir: /srv/app }\n    undo: { command: { run: \"ln -sfn releases/41 current\" } }\n  - name: api\n    http: { url: \"http://127.0.0.1:9/{{ release }}\", headers: { Authorization: \"Bearer ${TOKEN}\" } }\n";
    let opsbook = Opsbook::new()
        .file("rb.yaml", book)
        .env("TOKEN", "s3cr3t-token");
    let dir = opsbook.dir().to_path_buf();
    let run = opsbook
        .args(["run", "rb.yaml", "--dry-run", "--var", "release=43"])
        .run()
        .expect_exit(0);
    for line in [
        "  command    switch",
        "             $ ln -sfn releases/43 current   (in /srv/app)",
        "             command    undo: switch",
        "                        $ ln -sfn releases/41 current",
        "  http       api",
        "             GET http://127.0.0.1:9/43",
    ] {
        assert!(
            run.stdout.lines().any(|l| l == line),
            "{line:?}\n{}",
            run.stdout
        );
    }
    assert!(!run.stdout.contains("s3cr3t"));
    assert!(!dir.join("current").exists());
}

#[test]
fn cpu_is_sampled_over_a_second_and_never_stops_a_run_by_itself() {
    Opsbook::new()
        .file(
            "rb.yaml",
            "steps:\n  - name: cpu\n    cpu: { sample: 250ms }\n",
        )
        .args(["run", "rb.yaml"])
        .run()
        .expect_exit(78)
        .stderr_contains("rb.yaml:3")
        .stderr_contains("sample over at least 1s");
    let opsbook = Opsbook::new()
        .file(
            "rb.yaml",
            "steps:\n  - name: cpu\n    cpu: {}\n  - name: after\n    command: { run: \"touch after\" }\n",
        )
        .readings(10.0, 10.0, 99.0);
    let dir = opsbook.dir().to_path_buf();
    let run = opsbook
        .args(["run", "rb.yaml", "--format", "json"])
        .run()
        .expect_exit(2);
    let json = run.json();
    assert_eq!(status(&json, "cpu"), "critical");
    assert_eq!(status(&json, "after"), "ok");
    assert!(message(&json, "cpu").contains("over 1000 ms"));
    assert!(dir.join("after").exists());
}

#[test]
fn the_shipped_backup_verify_fails_on_an_empty_backup_directory() {
    let ops = Opsbook::new()
        .file(
            "ops.yaml",
            "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    db: { paths: [data] }\n",
        )
        .file("data/rows.txt", "1\n")
        .file("dest/.keep", "");
    let run = ops
        .args([
            "--config",
            "ops.yaml",
            "run",
            "backup-verify",
            "--format",
            "json",
        ])
        .args(["--var", "backup_set=db"])
        .run()
        .expect_exit(2);
    let json = run.json();
    assert_eq!(status(&json, "Newest backup is recent"), "critical");
    assert!(message(&json, "Newest backup is recent").contains("no backup of set db"));
    assert_eq!(status(&json, "Newest backup restores"), "critical");
    assert!(
        message(&json, "Newest backup restores").contains("no backup \"latest\""),
        "{}",
        message(&json, "Newest backup restores")
    );
}

#[test]
fn a_failure_before_a_step_never_undoes_it() {
    // An early check that may fail (continue_on_failure), then a release that completes:
    // nothing failed after the switch, so it is not rolled back; on_failure still runs.
    let book = "steps:\n  - name: error rate\n    continue_on_failure: true\n    command: { run: \"false\" }\n  - name: switch\n    command: { run: \"touch switched\" }\n    undo: { command: { run: \"rm switched\" } }\n  - name: smoke\n    command: { run: \"true\" }\non_failure:\n  - name: tell\n    command: { run: \"touch told\" }\n";
    let opsbook = Opsbook::new().file("rb.yaml", book);
    let dir = opsbook.dir().to_path_buf();
    let run = opsbook
        .args(["run", "rb.yaml", "--format", "json"])
        .run()
        .expect_exit(2);
    let json = run.json();
    assert!(json["checks"].get("undo: switch").is_none(), "{json}");
    assert!(dir.join("switched").exists());
    assert!(dir.join("told").exists());
    // A failure after it undoes it, as before.
    let book = book.replace(
        "run: \"true\" }\non_failure",
        "run: \"false\" }\non_failure",
    );
    let opsbook = Opsbook::new().file("rb.yaml", &book);
    let dir = opsbook.dir().to_path_buf();
    opsbook.args(["run", "rb.yaml"]).run().expect_exit(2);
    assert!(!dir.join("switched").exists());
}

#[test]
fn a_service_step_without_systemctl_is_unknown_saying_so() {
    // A PATH holding only a shell: the step's systemctl cannot be found.
    let opsbook = Opsbook::new().file("rb.yaml", "steps:\n  - name: web\n    service: nginx\n");
    let bin = opsbook.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink("/bin/sh", bin.join("sh")).unwrap();
    let run = opsbook
        .env("PATH", bin.display().to_string())
        .args(["run", "rb.yaml", "--format", "json"])
        .run();
    let json = run.json();
    assert_eq!(status(&json, "web"), "unknown", "{}", run.stdout);
    assert_eq!(
        message(&json, "web"),
        "systemctl not found: service steps need systemd"
    );
}

/// Every reference error is placed where the parser read the name, not where the name
/// first appears in the text: line 1's comment names them all first.
#[test]
fn reference_errors_are_placed_by_the_parser_not_by_the_first_mention() {
    let book = "# canary, ghost and loop.yaml are named here first\nsteps:\n  - name: canary\n    load: {}\n  - name: check\n    needs: [canary, ghost]\n    load: {}\n  - name: canary\n    load: {}\n  - name: again\n    include: loop.yaml\n";
    let run = Opsbook::new()
        .file("loop.yaml", book)
        .args(["runbook", "validate", "./loop.yaml"])
        .run()
        .expect_exit(78);
    for expected in [
        "loop.yaml:6:21: step \"check\" needs \"ghost\", but no step has that name",
        "loop.yaml:8:11: step name \"canary\" is used twice: names must be unique (first used at line 3)",
        "loop.yaml:11:14: include cycle:",
    ] {
        assert!(run.stderr.contains(expected), "{expected}:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("loop.yaml:1:"), "{}", run.stderr);
    // A duplicate across an include is at the included step, the note naming the first.
    let run = Opsbook::new()
        .file(
            "a.yaml",
            "# x and b.yaml\nsteps:\n  - { name: x, load: {} }\n  - { name: more, include: b.yaml }\n",
        )
        .file("b.yaml", "# x\nsteps:\n  - name: y\n    load: {}\n  - name: x\n    load: {}\n")
        .args(["runbook", "validate", "a.yaml"])
        .run()
        .expect_exit(78);
    assert!(
        run.stderr.contains(
            "b.yaml:5:11: step name \"x\" is used twice: names must be unique (first used at a.yaml:3)"
        ),
        "{}",
        run.stderr
    );
}

/// `runbook validate` reports schema, value and reference errors of a file in one run; a
/// reference to a step that is there but invalid is not reported as naming no step.
#[test]
fn validate_reports_schema_value_and_reference_errors_in_one_run() {
    let book = "steps:\n  - name: a\n    disk: { path: / }\n    colour: red\n  - name: b\n    memory: {}\n    when: \"status('a') ==\"\n  - name: c\n    memory: {}\n    needs: [nope, a]\n  - name: c\n    load: {}\n  - name: d\n    include: book.yaml\n  - name: e\n    load: {}\n    when: \"status('ghost') == 'ok'\"\n";
    let run = Opsbook::new()
        .file("book.yaml", book)
        .args(["runbook", "validate", "./book.yaml"])
        .run()
        .expect_exit(78);
    for expected in [
        "book.yaml:4:5: unknown field `colour`",
        "book.yaml:7:",
        "book.yaml:10:13: step \"c\" needs \"nope\", but no step has that name",
        "book.yaml:11:11: step name \"c\" is used twice",
        "book.yaml:14:14: include cycle:",
        "book.yaml:17:11: step \"e\" has a condition on \"ghost\", but no step has that name",
        "1 of 1 runbook is invalid",
    ] {
        assert!(run.stderr.contains(expected), "{expected}:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("needs \"a\""), "{}", run.stderr);
    // A repeated key in one step does not hide the errors of the others.
    Opsbook::new()
        .file(
            "book.yaml",
            "steps:\n  - name: a\n    name: b\n    load: {}\n  - name: c\n    lod: {}\n",
        )
        .args(["runbook", "validate", "./book.yaml"])
        .run()
        .expect_exit(78)
        .stderr_contains("book.yaml:3:5: duplicate mapping key: name")
        .stderr_contains("book.yaml:6:5: unknown field `lod`");
}

/// A runbook that is not UTF-8 is located at its first bad byte, and nothing runs.
#[test]
fn a_runbook_that_is_not_utf8_is_located_at_its_first_bad_byte() {
    let opsbook = Opsbook::new();
    let dir = opsbook.dir().to_path_buf();
    std::fs::write(
        dir.join("rb.yaml"),
        b"steps:\n  - name: caf\xe9\n    command: { run: \"touch ran\" }\n",
    )
    .unwrap();
    let run = opsbook
        .args(["run", "./rb.yaml"])
        .run()
        .expect_exit(78)
        .stderr_contains("rb.yaml:2:14: the file is not UTF-8: byte 0xE9");
    assert!(run.stderr.contains('^'), "{}", run.stderr);
    assert!(!dir.join("ran").exists());
    Opsbook::new()
        .args(["runbook", "validate", dir.join("rb.yaml").to_str().unwrap()])
        .run()
        .expect_exit(78)
        .stderr_contains("rb.yaml:2:14: the file is not UTF-8");
    // Included, it is shown in its own file too.
    let including = Opsbook::new().file(
        "main.yaml",
        "steps:\n  - { name: more, include: rb.yaml }\n",
    );
    std::fs::copy(dir.join("rb.yaml"), including.path("rb.yaml")).unwrap();
    including
        .args(["runbook", "validate", "main.yaml"])
        .run()
        .expect_exit(78)
        .stderr_contains("rb.yaml:2:14: the file is not UTF-8");
}

/// `{{ var }}` works in every string: an `expect.json` value (in a list too), a JSON
/// pointer, `any`, the regexes of `json`, `env` and `command`, an env variable's name.
/// Integers in JSON compare exactly: 2^53 + 1 is not 2^53.
#[test]
fn variables_work_in_json_values_pointers_and_regexes() {
    let base = server::fixed(
        "200 OK",
        r#"{"name": "api-7", "tags": ["a", "b"], "n": 9007199254740993}"#,
    );
    let book = r#"vars: { svc: api, seven: "7", field: name, tag: b, var_name: OPSBOOK_T_WORD, word: hello }
steps:
  - { name: json, continue_on_failure: true, http: { url: "BASE/", expect: { json: { "/{{ field }}": "{{ svc }}-{{ seven }}", /tags: [a, "{{ tag }}"], /n: { any: ["{{ svc }}", 9007199254740993] } } } } }
  - { name: json regex, continue_on_failure: true, http: { url: "BASE/", expect: { json: { /name: { regex: '^{{ svc }}-\d$' } } } } }
  - { name: env, continue_on_failure: true, env: { name: "{{ var_name }}", matches: '^{{ word }}$' } }
  - { name: stdout, continue_on_failure: true, command: { run: "echo hello world", stdout_regex: '^{{ word }} w' } }
  - { name: big, continue_on_failure: true, http: { url: "BASE/", expect: { json: { /n: 9007199254740992 } } } }
"#
    .replace("BASE", &base);
    let run = Opsbook::new()
        .file("rb.yaml", &book)
        .env("OPSBOOK_T_WORD", "hello")
        .args(["run", "rb.yaml", "--format", "json"])
        .run()
        .expect_exit(2);
    let json = run.json();
    for name in ["json", "json regex", "env", "stdout"] {
        assert_eq!(status(&json, name), "ok", "{name}: {json}");
    }
    assert_eq!(status(&json, "big"), "critical", "{json}");
    assert_eq!(
        message(&json, "big"),
        "/n = 9007199254740993, expected 9007199254740992"
    );
}

/// An undefined variable in a regex or in an `expect.json` value is the usual located
/// error, each at its own line, and nothing runs.
#[test]
fn an_undefined_variable_in_a_regex_or_json_value_is_located() {
    let book = r#"steps:
  - { name: e, env: { name: X, matches: '^{{ nope }}$' } }
  - { name: j, http: { url: "http://127.0.0.1:1/", expect: { json: { /a: [1, "{{ nada }}"] } } } }
  - { name: c, command: { run: "true", stdout_regex: "{{ nix }}" } }
"#;
    let run = Opsbook::new()
        .file("rb.yaml", book)
        .args(["runbook", "validate", "rb.yaml"])
        .run()
        .expect_exit(78);
    for (line, name) in [(2, "nope"), (3, "nada"), (4, "nix")] {
        assert!(
            run.stderr
                .lines()
                .any(|l| l.contains(&format!("rb.yaml:{line}:"))
                    && l.contains(&format!("undefined variable `{name}`"))),
            "{name}: {}",
            run.stderr
        );
    }
}

/// `needs:` naming a step of its own `parallel:` group can never be met (the two run at
/// once): refused at the entry, not skipped at run time.
#[test]
fn needs_on_a_sibling_in_the_same_parallel_group_is_refused_at_the_entry() {
    let book = "steps:
  - parallel:
      - { name: a, command: { run: \"true\" } }
      - { name: b, needs: [a], command: { run: \"true\" } }
  - { name: c, needs: [a], command: { run: \"true\" } }
";
    let column = book.lines().nth(3).unwrap().find("[a]").unwrap() + 2;
    Opsbook::new()
        .file("rb.yaml", book)
        .args(["runbook", "validate", "rb.yaml"])
        .run()
        .expect_exit(78)
        .stderr_contains(&format!(
            "rb.yaml:4:{column}: step \"b\" needs \"a\", but both are in the same `parallel:` group and run concurrently"
        ));
}

/// A set of values checked against both the JSON Schema (by python's jsonschema, a real
/// validator) and `runbook validate`: each is accepted by both or refused by both.
#[test]
fn the_schema_and_validate_agree_on_values() {
    let cases: &[(&str, bool)] = &[
        (
            r#"{"process": {"name": "x", "min": "{{ n }}", "max": "{{ n }}"}}"#,
            true,
        ),
        (r#"{"process": {"name": "x", "min": 1}}"#, true),
        (
            r#"{"dns": {"name": "x.test", "server": "127.0.0.1", "type": "a", "rcode": "nxdomain"}}"#,
            true,
        ),
        (
            r#"{"dns": {"name": "x.test", "server": "127.0.0.1", "type": "Cname"}}"#,
            true,
        ),
        (
            r#"{"dns": {"name": "x.test", "server": "127.0.0.1", "type": "srv"}}"#,
            false,
        ),
        (
            r#"{"dns": {"name": "x.test", "server": "127.0.0.1", "rcode": "gone"}}"#,
            false,
        ),
        (r#"{"env": {"name": "X", "non_empty": "yes"}}"#, false),
        (r#"{"env": {"name": "X", "non_empty": true}}"#, true),
        (
            r#"{"file": {"path": "/tmp", "size": {"crit": "1G"}}}"#,
            true,
        ),
        (
            r#"{"file": {"path": "/tmp", "size": {"warn": 1024, "crit": "1M"}}}"#,
            true,
        ),
        (r#"{"disk": {"crit": "50%"}}"#, true),
        (
            r#"{"log_errors": {"path": "app.log", "max": "{{ n }}"}}"#,
            true,
        ),
        (
            r#"{"continue_on_failure": "yes", "env": {"name": "X"}}"#,
            false,
        ),
        (r#"{"port": "{{ n }}"}"#, true),
        (r#"{"port": {"port": "{{ n }}"}}"#, true),
        (r#"{"port": 70000}"#, false),
    ];
    let ops = Opsbook::new();
    let schema = ops.path("schema.json");
    let run = Opsbook::new()
        .args(["runbook", "schema"])
        .run()
        .expect_exit(0);
    std::fs::write(&schema, &run.stdout).unwrap();
    let mut docs = Vec::new();
    for (i, (step, _)) in cases.iter().enumerate() {
        let doc = format!(
            r#"{{"vars": {{"n": "2"}}, "steps": [{}]}}"#,
            step.replacen('{', r#"{"name": "s", "#, 1)
        );
        let path = ops.path(&format!("case{i}.yaml"));
        std::fs::write(&path, &doc).unwrap();
        docs.push(path);
    }
    let check = "import json, sys, jsonschema\nschema = json.load(open(sys.argv[1]))\nv = jsonschema.Draft202012Validator(schema)\nfor p in sys.argv[2:]:\n    print('ok' if v.is_valid(json.load(open(p))) else 'refused')\n";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(check)
        .arg(&schema)
        .args(&docs)
        .output()
        .expect("python3 with jsonschema");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts = String::from_utf8(out.stdout).unwrap();
    let by_schema: Vec<&str> = verdicts.lines().collect();
    for (i, (step, accepted)) in cases.iter().enumerate() {
        let wanted = if *accepted { "ok" } else { "refused" };
        assert_eq!(by_schema[i], wanted, "schema on {step}");
        let run = Opsbook::new()
            .args([
                "runbook".to_string(),
                "validate".to_string(),
                docs[i].display().to_string(),
            ])
            .run();
        let code = if *accepted { 0 } else { 78 };
        assert_eq!(run.code, Some(code), "validate on {step}: {}", run.stderr);
    }
}

/// In a runbook step, `crit` alone is a one-level threshold (no warning level from the
/// default) and `warn` alone likewise, for disk, memory and cpu.
#[test]
fn a_resource_step_with_crit_or_warn_alone_has_one_level() {
    let book = "steps:
  - { name: disk crit alone, continue_on_failure: true, disk: { path: /, crit: 95% } }
  - { name: disk crit low, continue_on_failure: true, disk: { path: /, crit: 50% } }
  - { name: memory warn alone, continue_on_failure: true, memory: { warn: 95 } }
  - { name: cpu crit alone, continue_on_failure: true, cpu: { crit: 50 } }
  - { name: defaults, continue_on_failure: true, disk: { path: / } }
";
    let run = Opsbook::new()
        .readings(97.0, 85.0, 60.0)
        .file("rb.yaml", book)
        .args(["run", "rb.yaml", "--format", "json"])
        .run()
        .expect_exit(2);
    let json = run.json();
    for (name, wanted) in [
        ("disk crit alone", "ok"),
        ("disk crit low", "critical"),
        ("memory warn alone", "warning"),
        ("cpu crit alone", "critical"),
        ("defaults", "warning"),
    ] {
        assert_eq!(status(&json, name), wanted, "{name}: {json}");
    }
    assert!(
        message(&json, "disk crit low").contains("(> crit 50%)"),
        "{json}"
    );
}

/// `runbook show` prints levels as written (`crit: 1`, not `crit: 1.0`) and leaves out a
/// level that is not given (no `warn: null`).
#[test]
fn runbook_show_prints_levels_as_written() {
    let book = "steps:
  - { name: c, command: { run: \"echo 1\", value: { crit: 1 } } }
  - { name: h, http: { url: \"http://127.0.0.1:1/\", latency: { crit: 1s } } }
  - { name: d, disk: { crit: 50% } }
  - { name: f, file: { path: /tmp, count: { warn: 3 }, size: { crit: 1K } } }
";
    let run = Opsbook::new()
        .file("rb.yaml", book)
        .args(["runbook", "show", "rb.yaml", "--format", "yaml"])
        .run()
        .expect_exit(0)
        .stdout_contains("crit: 1\n")
        .stdout_contains("crit: 50\n")
        .stdout_contains("warn: 3\n")
        .stdout_contains("crit: 1024\n");
    assert!(!run.stdout.contains(".0\n"), "{}", run.stdout);
    assert!(!run.stdout.contains("warn: null"), "{}", run.stdout);
}

/// Small refusals, each readable: a regex error on one line (not the regex crate's
/// drawing with literal `\n`s), `eq` beside an `any` that excludes it, a pointer with a
/// bad `~` escape.
#[test]
fn regex_errors_read_on_one_line_and_contradictions_are_refused() {
    let book = r#"steps:
  - { name: r, env: { name: X, matches: "a(b" } }
  - { name: a, http: { url: "http://127.0.0.1:1/", expect: { json: { /a: { eq: 1, any: [2, 3] } } } } }
  - { name: p, http: { url: "http://127.0.0.1:1/", expect: { json: { "/a~2": 1 } } } }
"#;
    let run = Opsbook::new()
        .file("rb.yaml", book)
        .args(["runbook", "validate", "rb.yaml"])
        .run()
        .expect_exit(78)
        .stderr_contains("invalid regex \"a(b\": unclosed group at character 2")
        .stderr_contains("`eq: 1` cannot hold together with `any`, which refuses that value")
        .stderr_contains("`~` at character 3 must be `~0` (for `~`) or `~1` (for `/`)");
    assert!(!run.stderr.contains("\\n"), "{}", run.stderr);
}

/// A runbook file whose name is not UTF-8 is listed and validated under its name as
/// shown (U+FFFD for the bad byte), not skipped.
#[test]
fn a_runbook_named_in_bytes_that_are_not_utf8_is_listed_and_validated() {
    use std::os::unix::ffi::OsStrExt;
    let ops = Opsbook::new();
    std::fs::create_dir_all(ops.path("runbooks")).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.yaml");
    std::fs::write(ops.path("runbooks").join(name), "steps: [\n").unwrap();
    let dir = ops.dir().to_path_buf();
    let run = Opsbook::new()
        .args(["runbook", "list", "--format", "json"])
        .run_in(&dir)
        .expect_exit(0);
    let json = run.json();
    let entry = json
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "caf\u{FFFD}")
        .unwrap_or_else(|| panic!("not listed: {json}"));
    assert!(
        entry["description"]
            .as_str()
            .unwrap()
            .starts_with("INVALID: "),
        "{entry}"
    );
    Opsbook::new()
        .args(["runbook", "validate"])
        .run_in(&dir)
        .expect_exit(78)
        .stderr_contains("caf\u{FFFD}.yaml");
    drop(ops);
}

/// A command kept in a variable may be empty when a `when:` skips it; without one the
/// runbook is refused at the step, and a `when:` that lets an empty one through is a
/// critical step (nothing was run), never an ok.
#[test]
fn a_command_from_an_empty_variable_needs_a_when_and_never_passes() {
    let book = "name: e\nvars: { pull: \"\", env: prod }\nsteps:\n  - name: Pull\n    when: \"pull\"\n    command: { run: \"{{ pull }}\" }\n  - name: Gated elsewhere\n    when: \"env == 'prod'\"\n    command: { run: \"{{ pull }}\" }\n";
    let run = Opsbook::new()
        .file("e.yaml", book)
        .args(["run", "e.yaml", "--format", "json"])
        .run()
        .expect_exit(2);
    let json = run.json();
    assert_eq!(json["checks"]["Pull"]["severity"], "skipped", "{json}");
    assert_eq!(
        json["checks"]["Gated elsewhere"]["severity"], "critical",
        "{json}"
    );
    Opsbook::new()
        .file("e.yaml", book)
        .args(["run", "e.yaml", "--var", "pull=true"])
        .run()
        .expect_exit(0);
    let bare = "name: e\nvars: { pull: \"\" }\nsteps:\n  - name: Bare\n    command: { run: \"{{ pull }}\" }\n";
    Opsbook::new()
        .file("e.yaml", bare)
        .args(["runbook", "validate", "e.yaml"])
        .run()
        .expect_exit(78)
        .stderr_contains("e.yaml:4:11: step \"Bare\": the command is empty");
}

/// `defaults.retries` takes a number from a variable, as a step's own `retries` does.
#[test]
fn default_retries_come_from_a_variable() {
    let book = "name: v\nvars: { n: \"2\" }\ndefaults: { timeout: 5s, retries: \"{{ n }}\" }\nsteps:\n  - name: a\n    command: { run: \"true\" }\n";
    Opsbook::new()
        .file("v.yaml", book)
        .args(["runbook", "validate", "v.yaml"])
        .run()
        .expect_exit(0);
    Opsbook::new()
        .file("v.yaml", book)
        .args(["runbook", "validate", "v.yaml", "--var", "n=many"])
        .run()
        .expect_exit(78)
        .stderr_contains("v.yaml:3:");
}

/// `--only` or `--skip` naming no step and no tag is a usage error with the closest name,
/// never a run where everything is skipped and ok.
#[test]
fn only_or_skip_naming_nothing_is_a_usage_error() {
    let book =
        "name: t\nsteps:\n  - name: Disk\n    tags: [quick]\n    command: { run: \"true\" }\n";
    Opsbook::new()
        .file("t.yaml", book)
        .args(["run", "t.yaml", "--only", "Dsik"])
        .run()
        .expect_exit(64)
        .stderr_contains("\"Dsik\"; did you mean \"Disk\"?");
    Opsbook::new()
        .file("t.yaml", book)
        .args(["run", "t.yaml", "--skip", "slow"])
        .run()
        .expect_exit(64);
    Opsbook::new()
        .file("t.yaml", book)
        .args(["run", "t.yaml", "--only", "quick"])
        .run()
        .expect_exit(0);
}
