//! Whole outputs compared with expected-output files in `tests/cli/expected/` (hurl's
//! `.out` files): every format of `opsbook health` under fixed readings and a fixed clock,
//! and the text report of `opsbook run`. What varies from run to run (durations, the pid)
//! is masked by `common::mask_variable`; `OPSBOOK_BLESS=1` rewrites the files.

use crate::common::{Opsbook, expect_file, mask_variable};

/// `opsbook health --format FORMAT`: memory at 80 % (a warning), disk 91 % (critical), CPU 1 %, at
/// 2024-01-01T12:00:00Z, on one CPU.
fn health(format: &str) -> String {
    let run = Opsbook::new()
        .readings(80.0, 91.0, 1.0)
        .env("OPSBOOK_NOW", "2024-01-01T12:00:00Z")
        .one_cpu()
        .args(["health", "--format", format])
        .run()
        .expect_exit(2);
    assert_eq!(run.stderr, "", "health --format {format} wrote to stderr");
    mask_variable(&run.stdout)
}

#[test]
fn health_text_report_whole() {
    expect_file("health.txt", &health("text"));
}

#[test]
fn health_json_report_whole() {
    expect_file("health.json", &health("json"));
}

#[test]
fn health_prometheus_report_whole() {
    expect_file("health.prom", &health("prometheus"));
}

#[test]
fn health_nagios_report_whole() {
    expect_file("health.nagios", &health("nagios"));
}

#[test]
fn health_junit_report_whole() {
    expect_file("health.junit.xml", &health("junit"));
}

#[test]
fn health_tap_report_whole() {
    expect_file("health.tap", &health("tap"));
}

/// A small runbook with a step of each outcome: ok, warning, skipped by `when`, a failed
/// command with its stderr, a step skipped after the failure, an `always` step, the undo
/// of a step that completed, and `on_failure`.
const RELEASE_CHECK: &str = r#"
name: release-check
description: A small release checklist
vars: { queue: "150" }
steps:
  - name: Config present
    file: { path: app.conf, exists: true }
  - name: Queue length
    command: { run: "echo {{ queue }}", value: { warn: 100, crit: 1000 } }
    undo:
      name: Drain queue
      command: { run: "echo drained" }
  - name: Production only
    when: "queue == 'none'"
    command: { run: "true" }
  - name: Migrations
    command: { run: "sh -c 'echo migrating; echo no database >&2; exit 3'" }
  - name: Smoke test
    command: { run: "echo never" }
  - name: Clear flag
    always: true
    command: { run: "true" }
on_failure:
  - name: Tell the team
    command: { run: "echo deploy failed" }
"#;

#[test]
fn run_text_report_whole() {
    let run = Opsbook::new()
        .file("release-check.yaml", RELEASE_CHECK)
        .file("app.conf", "x\n")
        .env("OPSBOOK_NOW", "2024-01-01T12:00:00Z")
        .args(["run", "release-check.yaml"])
        .run()
        .expect_exit(2);
    assert_eq!(run.stderr, "", "run wrote to stderr");
    expect_file("run-release-check.txt", &mask_variable(&run.stdout));
}

/// The mask keeps a text column's width and touches nothing else.
#[test]
fn masking_keeps_columns_and_fixed_values() {
    let text = "ok        cpu        12 ms  cpu 1% busy over 250 ms, 4 CPUs\n\
                ok        app      1204 ms  Application is running (opsbook 0.1.0, pid 77)\n\
                x: ok — 2 checks: 2 ok in 1.5 s\n";
    assert_eq!(
        mask_variable(text),
        "ok        cpu         <ms>  cpu 1% busy over 250 ms, 4 CPUs\n\
         ok        app         <ms>  Application is running (opsbook 0.1.0, pid <pid>)\n\
         x: ok — 2 checks: 2 ok in <ms>\n"
    );
}

/// What Perl's `prove` (Debian's TAP harness) makes of a TAP file: its summary and exit.
fn prove(dir: &std::path::Path, name: &str, tap: &str) -> (String, Option<i32>) {
    std::fs::write(dir.join(name), tap).unwrap();
    let out = std::process::Command::new("prove")
        .args(["-e", "cat", name])
        .current_dir(dir)
        .output()
        .expect("prove (Debian package perl) is installed");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (text, out.status.code())
}

/// `--format tap` is read by the real `prove` with the right counts (prove refuses any
/// version after 13): `health` with one critical check, a passing `health`, and a runbook
/// run with a failure, skips, an undo and `on_failure`.
#[test]
fn prove_reads_the_tap_output_with_the_right_counts() {
    let dir = tempfile::tempdir().unwrap();
    let failing = Opsbook::new()
        .readings(80.0, 91.0, 1.0)
        .one_cpu()
        .args(["health", "--format", "tap"])
        .run()
        .expect_exit(2);
    let (summary, code) = prove(dir.path(), "health.t", &failing.stdout);
    assert!(!summary.contains("Parse errors"), "{summary}");
    assert!(
        summary.contains("health.t (Wstat: 0 Tests: 6 Failed: 1)"),
        "{summary}"
    );
    assert!(summary.contains("Failed test:  4\n"), "{summary}");
    assert!(summary.contains("Result: FAIL"), "{summary}");
    assert_eq!(code, Some(1), "{summary}");

    let passing = Opsbook::new()
        .readings(10.0, 10.0, 1.0)
        .one_cpu()
        .args(["health", "--format", "tap"])
        .run()
        .expect_exit(0);
    let (summary, code) = prove(dir.path(), "healthy.t", &passing.stdout);
    assert!(summary.contains("All tests successful."), "{summary}");
    assert!(summary.contains("Files=1, Tests=6,"), "{summary}");
    assert_eq!(code, Some(0), "{summary}");

    let run = Opsbook::new()
        .file("release-check.yaml", RELEASE_CHECK)
        .file("app.conf", "x\n")
        .args(["run", "release-check.yaml", "--format", "tap"])
        .run()
        .expect_exit(2);
    let (summary, code) = prove(dir.path(), "run.t", &run.stdout);
    assert!(!summary.contains("Parse errors"), "{summary}");
    assert!(
        summary.contains("run.t (Wstat: 0 Tests: 8 Failed: 1)"),
        "{summary}"
    );
    assert!(summary.contains("Failed test:  4\n"), "{summary}");
    assert!(
        summary.contains("(less 2 skipped subtests: 5 okay)"),
        "{summary}"
    );
    assert_eq!(code, Some(1), "{summary}");
}
