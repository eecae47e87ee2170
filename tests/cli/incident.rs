//! `opsbook incident`: the lifecycle with a fixed clock, a real webhook receiver on
//! 127.0.0.1 (up, down, slow, failing), concurrent writers, evidence bundles, bad input.

use crate::common::Opsbook;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy)]
enum Mode {
    Ok,
    Fail,
    Slow,
}

/// A webhook receiver: every request body it got, in order.
fn webhook(mode: Mode) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let Some((_, body)) = crate::common::server::read_request(&mut stream) else {
                    return;
                };
                seen.lock().unwrap().push(body);
                let status = match mode {
                    Mode::Ok => "200 OK",
                    Mode::Fail => "500 Internal Server Error",
                    Mode::Slow => {
                        std::thread::sleep(std::time::Duration::from_secs(5));
                        "200 OK"
                    }
                };
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    )
                    .as_bytes(),
                );
            });
        }
    });
    (port, got)
}

/// Incidents with no webhook.
const PLAIN: &str = "state_dir: state\nincident:\n  dir: incidents\n";

fn config(port: u16, extra: &str) -> String {
    format!(
        "state_dir: state\nincident:\n  dir: incidents\n  webhook: {{ url: \"http://127.0.0.1:{port}/hooks/${{HOOK_TOKEN}}\", timeout: 1s, retries: 1 }}\n{extra}"
    )
}

fn at(dir: &Path, now: &str, args: &[&str]) -> crate::common::Run {
    let mut all = vec!["--config", "ops.yaml", "incident"];
    all.extend_from_slice(args);
    let run = Opsbook::new()
        .env("OPSBOOK_NOW", now)
        .env("HOOK_TOKEN", "canary-hook-token")
        .env("USER", "alice")
        .args(all)
        .run_in(dir);
    assert!(!run.stdout.contains("canary-hook-token"), "{}", run.stdout);
    assert!(!run.stderr.contains("canary-hook-token"), "{}", run.stderr);
    run
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).into_iter().flatten().flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    out
}

#[test]
fn the_whole_lifecycle_with_a_fixed_clock_reaches_the_webhook_and_the_report() {
    let (port, got) = webhook(Mode::Ok);
    let ops = Opsbook::new().file("ops.yaml", &config(port, ""));
    let dir = ops.dir().to_path_buf();
    at(
        &dir,
        "2026-01-10T10:00:00Z",
        &[
            "declare",
            "--severity",
            "sev-1",
            "--title",
            "API unavailable",
            "--impact",
            "All API requests fail",
            "--component",
            "api",
        ],
    )
    .expect_exit(0)
    .stdout_contains("INCIDENT DECLARED")
    .stdout_contains("Severity: SEV-1 (Critical - Service down)")
    .stdout_contains("ID: INC-20260110-1");
    // Not acknowledged within 15 minutes: overdue.
    let show = |now: &str| {
        at(&dir, now, &["show", "INC-20260110-1", "--format", "json"])
            .expect_exit(0)
            .json()
    };
    let shown = show("2026-01-10T10:16:00Z");
    let overdue = shown["overdue"].as_array().unwrap();
    assert!(
        overdue[0]
            .as_str()
            .unwrap()
            .contains("no response after 16m, due within 15m"),
        "{shown}"
    );
    at(
        &dir,
        "2026-01-10T10:18:00Z",
        &[
            "update",
            "INC-20260110-1",
            "--status",
            "identified",
            "--note",
            "DB connection pool exhausted",
        ],
    )
    .expect_exit(0)
    .stdout_contains("Status: IDENTIFIED")
    .stdout_contains("10:18 UTC DB connection pool exhausted");
    at(&dir, "2026-01-10T10:19:00Z", &["notice", "INC-20260110-1"])
        .expect_exit(0)
        .stdout_contains("Subject: Service Issue - api")
        .stdout_contains("This affects All API requests fail.")
        .stdout_contains("we will provide updates every 30 minutes");
    at(
        &dir,
        "2026-01-10T10:20:00Z",
        &["escalate", "INC-20260110-1"],
    )
    .expect_exit(0)
    .stdout_contains("Due now: On-call, Platform Lead")
    .stdout_contains("Next: CTO at T+1h");
    let shown = show("2026-01-10T10:21:00Z");
    assert_eq!(shown["overdue"], serde_json::json!([]), "{shown}");
    // An hour in, the CTO is due and has not been called.
    let later = at(&dir, "2026-01-10T11:01:00Z", &["list", "--open"]).expect_exit(0);
    assert!(later.stdout.contains("OVERDUE"), "{}", later.stdout);
    at(
        &dir,
        "2026-01-10T11:35:00Z",
        &[
            "resolve",
            "INC-20260110-1",
            "--root-cause",
            "Pool size 10 under a traffic spike",
            "--lesson",
            "Alert on pool saturation",
            "--action",
            "Raise the pool to 50|@db-team|2026-01-20",
        ],
    )
    .expect_exit(0)
    .stdout_contains("Status: RESOLVED");
    at(
        &dir,
        "2026-01-10T11:40:00Z",
        &["resolve", "INC-20260110-1", "--root-cause", "again"],
    )
    .expect_exit(1)
    .stderr_contains("INC-20260110-1 is already resolved (at 2026-01-10T11:35:00Z)");
    at(
        &dir,
        "2026-01-10T12:00:00Z",
        &["report", "INC-20260110-1", "--output", "report.md"],
    )
    .expect_exit(0);
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for expected in [
        "# Incident Report: INC-20260110-1",
        "| Duration | 1h 35m |",
        "| Severity | SEV-1 |",
        "Pool size 10 under a traffic spike",
        "| T+0 | Incident declared (SEV-1): API unavailable |",
        "| T+18 | DB connection pool exhausted |",
        "| T+19 | Customer notification prepared |",
        "| T+20 | Escalated to On-call, Platform Lead (T+20m) |",
        "| T+95 | Resolved. Root cause: Pool size 10 under a traffic spike |",
        "- Alert on pool saturation",
        "| Raise the pool to 50 | @db-team | 2026-01-20 |",
    ] {
        assert!(report.contains(expected), "{expected:?} missing:\n{report}");
    }
    assert!(!report.contains("DRAFT"));
    // Every change reached the webhook, as Slack-compatible JSON.
    let bodies = got.lock().unwrap().clone();
    assert_eq!(bodies.len(), 4, "{bodies:?}");
    let first: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert!(
        first["text"]
            .as_str()
            .unwrap()
            .contains("INCIDENT DECLARED")
    );
    // The timeline names who did what; the URL's secret is in no file.
    let timeline =
        std::fs::read_to_string(dir.join("incidents/INC-20260110-1/timeline.jsonl")).unwrap();
    assert!(timeline.contains("\"author\":\"alice\""), "{timeline}");
    for file in files_under(&dir) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("canary-hook-token"),
            "{}",
            file.display()
        );
    }
    // A report for an open incident is allowed, marked DRAFT.
    at(
        &dir,
        "2026-01-11T09:00:00Z",
        &["declare", "--severity", "SEV-3", "--title", "Exports slow"],
    )
    .expect_exit(0)
    .stdout_contains("ID: INC-20260111-1");
    at(&dir, "2026-01-11T09:30:00Z", &["report", "INC-20260111-1"])
        .expect_exit(0)
        .stdout_contains("**DRAFT**: the incident is still investigating");
}

#[test]
fn a_dead_slow_or_failing_webhook_never_loses_the_incident() {
    for (name, port) in [
        ("down", crate::common::server::closed_port()),
        ("500", webhook(Mode::Fail).0),
        ("slow", webhook(Mode::Slow).0),
    ] {
        let ops = Opsbook::new().file("ops.yaml", &config(port, ""));
        let dir = ops.dir().to_path_buf();
        let run = at(
            &dir,
            "2026-01-10T10:00:00Z",
            &["declare", "--severity", "SEV-2", "--title", "Queue backlog"],
        )
        .expect_exit(0)
        .stdout_contains("INCIDENT DECLARED")
        .stderr_contains("notification declaration of INC-20260110-1 to @incident-webhook failed")
        .stderr_contains("kept in state/undelivered/");
        match name {
            "500" => assert!(run.stderr.contains("answered 500"), "{}", run.stderr),
            "slow" => assert!(
                run.stderr.contains("did not answer within 1s"),
                "{}",
                run.stderr
            ),
            _ => assert!(
                run.stderr.contains("cannot reach the webhook"),
                "{}",
                run.stderr
            ),
        }
        let timeline =
            std::fs::read_to_string(dir.join("incidents/INC-20260110-1/timeline.jsonl")).unwrap();
        assert!(
            timeline.contains("\"kind\":\"declared\""),
            "{name}: {timeline}"
        );
        assert!(
            timeline.contains("\"kind\":\"notify-failed\""),
            "{name}: {timeline}"
        );
        assert!(!timeline.contains("canary-hook-token"));
    }
}

#[test]
fn two_writers_at_once_both_land() {
    let ops = Opsbook::new().file("ops.yaml", PLAIN);
    let dir = ops.dir().to_path_buf();
    at(
        &dir,
        "2026-01-10T10:00:00Z",
        &["declare", "--severity", "SEV-2", "--title", "Latency"],
    )
    .expect_exit(0);
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                for i in 0..15 {
                    let note = format!("writer {w} note {i}");
                    let impact = format!("impact {w}-{i}");
                    at(
                        &dir,
                        "2026-01-10T10:05:00Z",
                        &[
                            "update",
                            "INC-20260110-1",
                            "--note",
                            &note,
                            "--impact",
                            &impact,
                        ],
                    )
                    .expect_exit(0);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let timeline =
        std::fs::read_to_string(dir.join("incidents/INC-20260110-1/timeline.jsonl")).unwrap();
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("incidents/INC-20260110-1/incident.json")).unwrap(),
    )
    .unwrap();
    for w in 0..2 {
        for i in 0..15 {
            assert!(
                timeline.contains(&format!("writer {w} note {i}\"")),
                "{w}/{i} lost"
            );
            let impact = format!("impact {w}-{i}");
            assert!(
                record["impact"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v == &impact),
                "{impact} lost from the record"
            );
        }
    }
    assert_eq!(timeline.lines().count(), 1 + 2 * 15 * 2);
}

#[test]
fn collect_bundles_evidence_whose_manifest_matches_its_contents() {
    let ops = Opsbook::new()
        .file(
            "ops.yaml",
            "state_dir: state\nlogging: { dir: logs, to_file: true }\nlogs:\n  sets:\n    app:\n      paths: [app.log]\nincident:\n  dir: incidents\n  diagnosis: { api-unavailable: diagnose.yaml }\n",
        )
        .file(
            "app.log",
            "2026-01-10 09:50:00,000 - app - ERROR - Failed to load pattern 42\n2026-01-10 09:51:00,000 - app - INFO - fine\n2026-01-08 09:51:00,000 - app - ERROR - too old to matter\n",
        )
        .file(
            "diagnose.yaml",
            "name: diagnose\nsteps:\n  - name: log present\n    file: { path: app.log }\n",
        )
        .readings(10.0, 10.0, 1.0);
    let dir = ops.dir().to_path_buf();
    let readings = dir.join("readings.json");
    let run = |now: &str, args: &[&str]| {
        let mut all = vec!["--config", "ops.yaml", "incident"];
        all.extend_from_slice(args);
        let mut ops = Opsbook::new().env("OPSBOOK_NOW", now);
        if readings.exists() {
            ops = ops.env("OPSBOOK_READINGS", readings.to_str().unwrap());
        }
        ops.args(all).run_in(&dir)
    };
    run(
        "2026-01-10T10:00:00Z",
        &[
            "declare",
            "--severity",
            "SEV-1",
            "--title",
            "API down",
            "--type",
            "api-unavailable",
        ],
    )
    .expect_exit(0);
    run("2026-01-10T10:05:00Z", &["collect", "INC-20260110-1"])
        .expect_exit(0)
        .stdout_contains("evidence in");
    let folder = dir.join("incidents/INC-20260110-1");
    let bundle = folder.join("evidence-20260110T100500Z.tar.gz");
    assert!(bundle.exists());
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
    let root = out.join("evidence-20260110T100500Z");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("manifest.json")).unwrap())
            .unwrap();
    let files = manifest["files"].as_array().unwrap();
    let names: Vec<&str> = files.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "health.json",
            "errors.log",
            "system.txt",
            "audit.log",
            "diagnosis-diagnose.yaml.json"
        ]
    );
    for file in files {
        let bytes = std::fs::read(root.join(file["name"].as_str().unwrap())).unwrap();
        assert_eq!(file["size"], bytes.len());
        use sha2::Digest;
        let digest: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(file["sha256"], digest.as_str());
    }
    let errors = std::fs::read_to_string(root.join("errors.log")).unwrap();
    assert!(errors.contains("Failed to load pattern 42"), "{errors}");
    assert!(!errors.contains("too old to matter"), "{errors}");
    let health: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("health.json")).unwrap()).unwrap();
    assert!(health["checks"]["memory"].is_object(), "{health}");
    let audit = std::fs::read_to_string(root.join("audit.log")).unwrap();
    assert!(audit.contains("incident.declare"), "{audit}");
    let timeline = std::fs::read_to_string(folder.join("timeline.jsonl")).unwrap();
    assert!(timeline.contains("Evidence collected: evidence-20260110T100500Z"));
}

#[test]
fn bad_input_is_named_with_the_right_exit_code_and_nothing_is_recorded() {
    let ops = Opsbook::new().file("ops.yaml", PLAIN);
    let dir = ops.dir().to_path_buf();
    at(
        &dir,
        "2026-01-10T10:00:00Z",
        &["declare", "--severity", "SEV-7", "--title", "x"],
    )
    .expect_exit(64)
    .stderr_contains("unknown severity \"SEV-7\" (known: SEV-1, SEV-2, SEV-3, SEV-4)");
    at(
        &dir,
        "2026-01-10T10:00:00Z",
        &["update", "INC-20260110-9", "--note", "x"],
    )
    .expect_exit(64)
    .stderr_contains("no incident \"INC-20260110-9\"");
    // An id is never a path: nothing is created outside the incidents folder.
    std::fs::create_dir_all(dir.join("elsewhere")).unwrap();
    at(
        &dir,
        "2026-01-10T10:00:00Z",
        &["update", "../elsewhere", "--note", "x"],
    )
    .expect_exit(64)
    .stderr_contains("no incident \"../elsewhere\"");
    assert!(files_under(&dir.join("elsewhere")).is_empty());
    assert!(!dir.join("incidents").exists() || files_under(&dir.join("incidents")).is_empty());
    std::fs::write(
        dir.join("ops.yaml"),
        "state_dir: state\nincident:\n  dir: incidents\n  templates:\n    declaration: \"{{ incident.title }} on {{ incident.sevrity }}\"\n",
    )
    .unwrap();
    at(
        &dir,
        "2026-01-10T10:00:00Z",
        &["declare", "--severity", "SEV-1", "--title", "x"],
    )
    .expect_exit(78)
    .stderr_contains("incident.templates.declaration");
    assert!(!dir.join("incidents").exists() || files_under(&dir.join("incidents")).is_empty());
}

const NOW: &str = "2026-01-10T10:00:00Z";
const ID: &str = "INC-20260110-1";

/// A directory with PLAIN's config and one declared incident, `ID`.
fn one_incident() -> (Opsbook, std::path::PathBuf) {
    let ops = Opsbook::new().file("ops.yaml", PLAIN);
    let dir = ops.dir().to_path_buf();
    at(
        &dir,
        NOW,
        &["declare", "--severity", "SEV-2", "--title", "Queue backlog"],
    )
    .expect_exit(0);
    (ops, dir)
}

#[test]
fn records_planted_as_links_are_refused_and_their_targets_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let (_ops, dir) = one_incident();
    let record = dir.join("incidents").join(ID);
    let precious = dir.join("precious");
    for name in ["timeline.jsonl", "incident.json", ".lock"] {
        std::fs::write(&precious, "precious\n").unwrap();
        std::fs::set_permissions(&precious, std::fs::Permissions::from_mode(0o600)).unwrap();
        let saved = record.join(format!("{name}.saved"));
        std::fs::rename(record.join(name), &saved).unwrap();
        std::os::unix::fs::symlink(&precious, record.join(name)).unwrap();
        let run = at(&dir, NOW, &["update", ID, "--note", "through the link"]);
        assert_ne!(run.code, Some(0), "{name}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("{ID}/{name}: it is a symbolic link")),
            "{name}:\n{}",
            run.stderr
        );
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "precious\n");
        std::fs::remove_file(record.join(name)).unwrap();
        std::fs::rename(&saved, record.join(name)).unwrap();
    }
    // Nothing half-done stayed behind: the record and its timeline are as declared.
    let mut names: Vec<String> = std::fs::read_dir(&record)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [".lock", "incident.json", "timeline.jsonl"]);
    let timeline = std::fs::read_to_string(record.join("timeline.jsonl")).unwrap();
    assert!(!timeline.contains("through the link"), "{timeline}");
}

#[test]
fn an_incident_folder_others_can_write_to_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let (_ops, dir) = one_incident();
    let incidents = dir.join("incidents");
    std::fs::set_permissions(&incidents, std::fs::Permissions::from_mode(0o777)).unwrap();
    at(&dir, NOW, &["update", ID, "--note", "x"])
        .stderr_contains("refusing to use incidents: anyone can write to it (mode 0777)");
    at(
        &dir,
        NOW,
        &["declare", "--severity", "SEV-2", "--title", "y"],
    )
    .expect_exit(1)
    .stderr_contains("refusing to use incidents: anyone can write to it");
    std::fs::set_permissions(&incidents, std::fs::Permissions::from_mode(0o700)).unwrap();
    let record = incidents.join(ID);
    std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o757)).unwrap();
    at(&dir, NOW, &["update", ID, "--note", "x"])
        .expect_exit(1)
        .stderr_contains(&format!(
            "refusing to use incidents/{ID}: anyone can write to it"
        ));
    let timeline = std::fs::read_to_string(record.join("timeline.jsonl")).unwrap();
    assert_eq!(timeline.lines().count(), 1, "{timeline}");
}

#[test]
fn records_timelines_and_evidence_are_0600_in_0700_folders_whatever_the_umask() {
    use crate::logging::{mode, run_with_umask};
    for umask in [0o000, 0o077] {
        let ops = Opsbook::new()
            .file("ops.yaml", PLAIN)
            .readings(10.0, 10.0, 1.0);
        let dir = ops.dir().to_path_buf();
        let readings = dir.join("readings.json");
        let env = [
            ("OPSBOOK_NOW", NOW),
            ("OPSBOOK_READINGS", readings.to_str().unwrap()),
        ];
        for args in [
            &["declare", "--severity", "SEV-2", "--title", "Queue backlog"][..],
            &["update", ID, "--note", "draining"],
            &["collect", ID],
        ] {
            let mut all = vec!["--config", "ops.yaml", "incident"];
            all.extend_from_slice(args);
            let out = run_with_umask(&dir, umask, &all, &env);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let record = dir.join("incidents").join(ID);
        assert_eq!(mode(&dir.join("incidents")), 0o700, "umask {umask:03o}");
        assert_eq!(mode(&record), 0o700, "umask {umask:03o}");
        let files = files_under(&record);
        assert_eq!(files.len(), 4, "{files:?}");
        for file in files {
            assert_eq!(
                mode(&file),
                0o600,
                "{} under umask {umask:03o}",
                file.display()
            );
        }
        drop(ops);
    }
}

/// `incident ARGS` under strace, every write to `path` failing with ENOSPC.
fn with_a_full(path: &Path, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut all = vec![
        "-f".to_string(),
        "-qq".to_string(),
        "-e".to_string(),
        "trace=write".to_string(),
        "-e".to_string(),
        "inject=write:error=ENOSPC".to_string(),
        "-P".to_string(),
        path.display().to_string(),
        "--".to_string(),
        env!("CARGO_BIN_EXE_opsbook").to_string(),
        "--config".to_string(),
        "ops.yaml".to_string(),
        "incident".to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let output = std::process::Command::new("strace")
        .args(&all)
        .current_dir(dir)
        .env_remove("LOG_TO_FILE")
        .env_remove("LOG_DIR")
        .env_remove("OPSBOOK_NOW")
        .env("OPSBOOK_NOW", NOW)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run strace");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_full_disk_during_an_update_says_exactly_what_was_recorded() {
    let (_ops, dir) = one_incident();
    let record = dir.join("incidents").join(ID);
    let read = |name: &str| std::fs::read_to_string(record.join(name)).unwrap();
    let (timeline, before) = (read("timeline.jsonl"), read("incident.json"));
    let args = [
        "update",
        ID,
        "--status",
        "identified",
        "--note",
        "db failover",
    ];
    let (code, stderr) = with_a_full(&record.join("timeline.jsonl"), &dir, &args, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{ID}: nothing was recorded (status identified, the note: not on the timeline, record unchanged)"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert_eq!(read("timeline.jsonl"), timeline);
    assert_eq!(read("incident.json"), before);
    assert_eq!(
        files_under(&record).len(),
        3,
        "a temporary file was left behind"
    );

    // The audit log full: the update lands, the missing audit entry is named.
    let env = [("LOG_TO_FILE", "true"), ("LOG_DIR", "logs")];
    std::fs::create_dir(dir.join("logs")).unwrap();
    std::fs::write(dir.join("logs/audit.log"), "").unwrap();
    let (code, stderr) = with_a_full(&dir.join("logs/audit.log"), &dir, &args, &env);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot write the audit log: No space left on device (os error 28); not recorded there: incident.update ok ({ID})"
        )),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("logs/audit.log")).unwrap(),
        ""
    );
    assert!(read("timeline.jsonl").contains("db failover"));
    assert!(read("incident.json").contains("\"identified\""));
}

/// A real full disk: the audit line that does not fit is cut off again, never torn.
#[test]
fn a_full_disk_never_leaves_a_torn_audit_line() {
    use std::os::unix::fs::PermissionsExt;
    let ops = Opsbook::new().file("ops.yaml", PLAIN);
    let dir = ops.dir().to_path_buf();
    let logs = dir.join("logs");
    let _disk = crate::common::Mounted::tmpfs(&logs, "64k");
    std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The audit log ends 96 bytes short of a page boundary; every other page is taken.
    let earlier = format!("{{\"earlier\":\"{}\"}}\n", "x".repeat(4000 - 15));
    assert_eq!(earlier.len(), 4000);
    std::fs::write(logs.join("audit.log"), &earlier).unwrap();
    let mut filler = std::fs::File::create(logs.join("filler")).unwrap();
    while filler.write_all(&[0u8; 4096]).is_ok() {}
    drop(filler);
    let run = Opsbook::new()
        .env("OPSBOOK_NOW", NOW)
        .env("LOG_TO_FILE", "true")
        .env("LOG_DIR", "logs")
        .args([
            "--config",
            "ops.yaml",
            "incident",
            "declare",
            "--severity",
            "SEV-3",
            "--title",
            "Disk full",
        ])
        .run_in(&dir);
    assert_eq!(
        std::fs::read_to_string(logs.join("audit.log")).unwrap(),
        earlier,
        "{}",
        run.stderr
    );
    let run = run
        .expect_exit(0)
        .stderr_contains("cannot write the audit log")
        .stderr_contains("not recorded there: incident.declare ok");
    assert!(
        dir.join("incidents")
            .join(ID)
            .join("incident.json")
            .is_file()
    );
    drop(run);
}

/// `collect` copies the audit log into the bundle, but never what a planted link points at.
#[test]
fn collect_never_reads_the_audit_log_through_a_link() {
    let ops = Opsbook::new()
        .file(
            "ops.yaml",
            "state_dir: state\nlogging: { dir: logs }\nincident:\n  dir: incidents\n",
        )
        .file("precious", "root:$6$precious-hash:19000:0:99999:7:::\n")
        .readings(10.0, 10.0, 1.0);
    let dir = ops.dir().to_path_buf();
    std::fs::create_dir(dir.join("logs")).unwrap();
    std::os::unix::fs::symlink(dir.join("precious"), dir.join("logs/audit.log")).unwrap();
    at(
        &dir,
        NOW,
        &["declare", "--severity", "SEV-2", "--title", "x"],
    )
    .expect_exit(0);
    Opsbook::new()
        .env("OPSBOOK_NOW", NOW)
        .env(
            "OPSBOOK_READINGS",
            dir.join("readings.json").display().to_string(),
        )
        .args(["--config", "ops.yaml", "incident", "collect", ID])
        .run_in(&dir)
        .expect_exit(0);
    let bundle = dir
        .join("incidents")
        .join(ID)
        .join("evidence-20260110T100000Z.tar.gz");
    let listing = std::process::Command::new("tar")
        .arg("-xzOf")
        .arg(&bundle)
        .arg("evidence-20260110T100000Z/audit.log")
        .output()
        .unwrap();
    assert!(listing.status.success());
    let audit = String::from_utf8_lossy(&listing.stdout);
    assert!(!audit.contains("precious-hash"), "{audit}");
    assert!(audit.contains("it is a symbolic link"), "{audit}");
    assert_eq!(
        std::fs::read_to_string(dir.join("precious")).unwrap(),
        "root:$6$precious-hash:19000:0:99999:7:::\n"
    );
}

#[test]
fn output_lost_to_a_full_disk_fails_the_command_but_a_reader_going_away_does_not() {
    let test = Opsbook::new().file("ops.yaml", "state_dir: state\n");
    let dir = test.dir().to_path_buf();
    Opsbook::new()
        .args(["--config", "ops.yaml", "incident", "declare"])
        .args(["--severity", "SEV-2", "--title", "API down"])
        .run_in(&dir)
        .expect_exit(0);
    let id = std::fs::read_dir(dir.join("state/incidents"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.starts_with("INC-"))
        .unwrap();
    let binary = env!("CARGO_BIN_EXE_opsbook");
    // `opsbook incident report ID > report.md` on a full disk: /dev/full answers every
    // write with ENOSPC. An exit 0 would leave an empty report that looks written.
    for args in [
        &["incident", "report", id.as_str()][..],
        &["incident", "list"][..],
        &["--help"][..],
    ] {
        let out = std::process::Command::new(binary)
            .args(["--config", "ops.yaml"])
            .args(args)
            .current_dir(&dir)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("cannot write the output: No space left on device"),
            "{args:?}: {stderr}"
        );
    }
    // `| head -c 1`: the reader leaving early is not an error.
    let mut child = std::process::Command::new(binary)
        .args(["--config", "ops.yaml", "incident", "report", &id])
        .current_dir(&dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The whole text of `incident show`: header, elapsed against the response time, what is
/// overdue and the timeline, at a fixed clock.
#[test]
fn show_prints_the_whole_standing_and_timeline_as_expected() {
    let (_ops, dir) = one_incident();
    at(
        &dir,
        "2026-01-10T10:18:00Z",
        &[
            "update",
            ID,
            "--status",
            "identified",
            "--note",
            "DB connection pool exhausted",
        ],
    )
    .expect_exit(0);
    at(&dir, "2026-01-10T10:20:00Z", &["escalate", ID]).expect_exit(0);
    // An hour in: the Platform Lead was due and has not been called.
    let shown = at(&dir, "2026-01-10T11:05:00Z", &["show", ID]).expect_exit(0);
    assert_eq!(shown.stderr, "");
    crate::common::expect_file("incident-show.txt", &shown.stdout);
}

/// `ack` is recorded once (a second says when and by whom, and changes nothing); the times
/// to acknowledge, mitigate (`--status mitigated`) and resolve show in `show`, `list` and
/// the report.
#[test]
fn ack_is_recorded_once_and_tta_ttm_ttr_show_in_show_list_and_report() {
    let (_ops, dir) = one_incident();
    at(&dir, "2026-01-10T10:06:00Z", &["ack", ID, "--by", " "])
        .expect_exit(64)
        .stderr_contains("--by is empty");
    at(&dir, "2026-01-10T10:07:00Z", &["ack", ID, "--by", "bob"])
        .expect_exit(0)
        .stdout_contains("INC-20260110-1: acknowledged by bob (TTA 7m)");
    let timeline =
        || std::fs::read_to_string(dir.join("incidents").join(ID).join("timeline.jsonl")).unwrap();
    let before = timeline();
    at(&dir, "2026-01-10T10:09:00Z", &["ack", ID])
        .expect_exit(0)
        .stdout_contains("already acknowledged at 2026-01-10T10:07:00Z by bob; nothing changed");
    assert_eq!(timeline(), before, "a second ack records nothing");
    at(&dir, "2026-01-10T10:09:00Z", &["ack", "INC-20260110-9"])
        .expect_exit(64)
        .stderr_contains("no incident \"INC-20260110-9\"");
    let list = at(&dir, "2026-01-10T10:10:00Z", &["list"]).expect_exit(0);
    assert!(list.stdout.contains("(TTA 7m)"), "{}", list.stdout);
    at(
        &dir,
        "2026-01-10T10:25:00Z",
        &[
            "update",
            ID,
            "--status",
            "mitigated",
            "--note",
            "rolled back",
        ],
    )
    .expect_exit(0)
    .stdout_contains("Status: MITIGATED");
    at(
        &dir,
        "2026-01-10T11:00:00Z",
        &["resolve", ID, "--root-cause", "a bad deploy"],
    )
    .expect_exit(0);
    let shown = at(&dir, "2026-01-10T12:00:00Z", &["show", ID]).expect_exit(0);
    crate::common::expect_file("incident-show-times.txt", &shown.stdout);
    let json = at(
        &dir,
        "2026-01-10T12:00:00Z",
        &["show", ID, "--format", "json"],
    )
    .expect_exit(0)
    .json();
    assert_eq!(
        (
            json["tta_seconds"].as_u64(),
            json["ttm_seconds"].as_u64(),
            json["ttr_seconds"].as_u64()
        ),
        (Some(420), Some(1500), Some(3600)),
        "{json}"
    );
    at(&dir, "2026-01-10T12:00:00Z", &["list"])
        .expect_exit(0)
        .stdout_contains("Queue backlog  (TTA 7m, TTM 25m, TTR 1h)");
    let report = at(&dir, "2026-01-10T12:00:00Z", &["report", ID]).expect_exit(0);
    for row in [
        "| Time to acknowledge | 7m |",
        "| Time to mitigate | 25m |",
        "| Time to resolve | 1h |",
    ] {
        assert!(
            report.stdout.contains(row),
            "{row:?} missing:\n{}",
            report.stdout
        );
    }
}

/// `incident metrics --output FILE`: counts by severity and status (a severity name with
/// a quote and a backslash escaped), update-due and action-item counts, and a summary of
/// TTA/TTM/TTR for resolved incidents; written whole, mode 0644, and promtool accepts it.
#[test]
fn metrics_textfile_counts_incidents_and_their_times_and_promtool_accepts_it() {
    use std::os::unix::fs::PermissionsExt;
    let ops = Opsbook::new().file(
        "ops.yaml",
        "state_dir: state\nincident:\n  dir: incidents\n  severities:\n    - { name: 'Sev \"A\\', response: 15m, update_every: 30m }\n    - { name: Low }\n",
    );
    let dir = ops.dir().to_path_buf();
    for (now, severity, title) in [
        ("2026-01-10T10:00:00Z", "Sev \"A\\", "Checkout down"),
        ("2026-01-10T10:05:00Z", "low", "Typo on the pricing page"),
        ("2026-01-10T10:10:00Z", "Sev \"A\\", "Search slow"),
    ] {
        at(
            &dir,
            now,
            &["declare", "--severity", severity, "--title", title],
        )
        .expect_exit(0);
    }
    at(&dir, "2026-01-10T10:04:00Z", &["ack", "INC-20260110-1"]).expect_exit(0);
    at(
        &dir,
        "2026-01-10T10:20:00Z",
        &["update", "INC-20260110-1", "--status", "monitoring"],
    )
    .expect_exit(0);
    at(
        &dir,
        "2026-01-10T11:00:00Z",
        &[
            "resolve",
            "INC-20260110-1",
            "--root-cause",
            "x",
            "--action",
            "Add a canary @web by 2026-01-12",
            "--action",
            "Write the runbook",
        ],
    )
    .expect_exit(0);
    // A stale file is replaced whole.
    std::fs::write(dir.join("incidents.prom"), "stale\n").unwrap();
    at(
        &dir,
        "2026-01-13T09:00:00Z",
        &["metrics", "--output", "incidents.prom"],
    )
    .expect_exit(0)
    .stdout_contains("");
    let path = dir.join("incidents.prom");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "readable by the textfile collector");
    crate::maintain::promtool_accepts(&path);
    let text = std::fs::read_to_string(&path).unwrap();
    // Each action item is in one state: summed over them, the two items count twice
    // only if an overdue one were also open.
    let items: u64 = text
        .lines()
        .filter_map(|l| l.strip_prefix("opsbook_incident_action_items{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(items, 2, "{text}");
    assert!(
        text.contains("opsbook_incident_action_items{state=\"open\"} 1\n"),
        "{text}"
    );
    crate::common::expect_file("incident-metrics.prom", &text);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["incidents", "incidents.prom", "ops.yaml"],
        "no temporary file is left"
    );
    // Without --output it goes to stdout, the same bytes.
    let out = at(&dir, "2026-01-13T09:00:00Z", &["metrics"]).expect_exit(0);
    assert_eq!(out.stdout, text);
}

/// A severity's `update_every`: `list`/`show` mark an incident whose update is due;
/// `incident remind` lists it, exits 1, and notifies once per period (a second run in the
/// same period lists it but sends nothing); an update resets the clock; nothing due is
/// exit 0.
#[test]
fn update_cadence_marks_due_incidents_and_remind_notifies_once_per_period() {
    let (port, got) = webhook(Mode::Ok);
    let ops = Opsbook::new().file("ops.yaml", &config(port, ""));
    let dir = ops.dir().to_path_buf();
    at(
        &dir,
        NOW,
        &["declare", "--severity", "SEV-1", "--title", "API down"],
    )
    .expect_exit(0);
    at(
        &dir,
        NOW,
        &["declare", "--severity", "SEV-3", "--title", "Exports slow"],
    )
    .expect_exit(0);
    let sent = || got.lock().unwrap().len();
    assert_eq!(sent(), 2);
    at(&dir, "2026-01-10T10:29:00Z", &["remind"])
        .expect_exit(0)
        .stdout_contains("nothing due");
    let list = at(&dir, "2026-01-10T10:29:00Z", &["list"]).expect_exit(0);
    assert!(!list.stdout.contains("UPDATE DUE"), "{}", list.stdout);
    assert_eq!(sent(), 2);
    // 30 minutes without an update: due (SEV-3 has no cadence).
    let list = at(&dir, "2026-01-10T10:30:00Z", &["list"]).expect_exit(0);
    assert_eq!(
        list.stdout.matches("UPDATE DUE").count(),
        1,
        "{}",
        list.stdout
    );
    at(&dir, "2026-01-10T10:30:00Z", &["show", "INC-20260110-1"])
        .expect_exit(0)
        .stdout_contains("UPDATE DUE: last update 30m ago, due every 30m");
    let run = at(&dir, "2026-01-10T10:31:00Z", &["remind"]).expect_exit(1);
    assert_eq!(
        run.stdout,
        "INC-20260110-1  API down  update due (last update 31m ago, due every 30m)  reminder sent\n"
    );
    assert_eq!(sent(), 3);
    let body: serde_json::Value = serde_json::from_str(&got.lock().unwrap()[2]).unwrap();
    crate::common::expect_file("incident-reminder.txt", body["text"].as_str().unwrap());
    // Still due ten minutes later: listed, not sent again.
    at(&dir, "2026-01-10T10:41:00Z", &["remind"])
        .expect_exit(1)
        .stdout_contains("already reminded at 2026-01-10T10:31:00Z");
    assert_eq!(sent(), 3);
    // An update resets the clock; the next period reminds again.
    at(
        &dir,
        "2026-01-10T10:45:00Z",
        &["update", "INC-20260110-1", "--note", "failing over"],
    )
    .expect_exit(0);
    assert_eq!(sent(), 4);
    at(&dir, "2026-01-10T11:14:00Z", &["remind"]).expect_exit(0);
    at(&dir, "2026-01-10T11:15:00Z", &["remind"])
        .expect_exit(1)
        .stdout_contains("reminder sent");
    assert_eq!(sent(), 5);
    // A resolved incident is never due.
    at(
        &dir,
        "2026-01-10T11:20:00Z",
        &["resolve", "INC-20260110-1", "--root-cause", "x"],
    )
    .expect_exit(0);
    at(&dir, "2026-01-10T13:00:00Z", &["remind"]).expect_exit(0);
}

/// A reminder the webhook did not take is kept in `undelivered/` (with the declaration
/// it did not take either): the next run delivers both, once, and sends no other
/// reminder in the same period.
#[test]
fn a_reminder_no_channel_took_is_sent_again_by_the_next_run() {
    let (down, _) = webhook(Mode::Fail);
    let ops = Opsbook::new().file("ops.yaml", &config(down, ""));
    let dir = ops.dir().to_path_buf();
    at(
        &dir,
        NOW,
        &["declare", "--severity", "SEV-1", "--title", "API down"],
    );
    at(&dir, "2026-01-10T10:31:00Z", &["remind"])
        .expect_exit(1)
        .stdout_contains("reminder NOT delivered (the next run sends it again)");
    let (up, got) = webhook(Mode::Ok);
    std::fs::write(dir.join("ops.yaml"), config(up, "")).unwrap();
    at(&dir, "2026-01-10T10:35:00Z", &["remind"])
        .expect_exit(1)
        .stdout_contains("already reminded at 2026-01-10T10:31:00Z");
    // The declaration and the reminder, both kept by the dead webhook, oldest first.
    let text = |n: usize| {
        let body: serde_json::Value = serde_json::from_str(&got.lock().unwrap()[n]).unwrap();
        body["text"].as_str().unwrap().to_string()
    };
    assert_eq!(got.lock().unwrap().len(), 2);
    assert!(text(0).contains("INCIDENT DECLARED"), "{}", text(0));
    assert!(text(1).contains("REMINDER"), "{}", text(1));
    at(&dir, "2026-01-10T10:40:00Z", &["remind"])
        .expect_exit(1)
        .stdout_contains("already reminded at 2026-01-10T10:31:00Z");
    assert_eq!(got.lock().unwrap().len(), 2);
}

/// Runs of `incident remind` at once send each due reminder once: the reminder is claimed
/// on the timeline under the incident's lock before it is sent.
#[test]
fn reminders_from_runs_at_once_go_out_once() {
    let (port, got) = webhook(Mode::Ok);
    let ops = Opsbook::new().file("ops.yaml", &config(port, ""));
    let dir = ops.dir().to_path_buf();
    for title in ["API down", "Checkout down"] {
        at(
            &dir,
            NOW,
            &["declare", "--severity", "SEV-1", "--title", title],
        )
        .expect_exit(0);
    }
    assert_eq!(got.lock().unwrap().len(), 2);
    let runs: Vec<_> = (0..6)
        .map(|_| {
            let dir = dir.clone();
            std::thread::spawn(move || at(&dir, "2026-01-10T10:31:00Z", &["remind"]).code)
        })
        .collect();
    for run in runs {
        assert_eq!(run.join().unwrap(), Some(1));
    }
    assert_eq!(got.lock().unwrap().len(), 4, "one reminder per incident");
}

/// `update` changes severity, components (replaced), impact (a line added), service and
/// ETA, each recorded as old → new; an unknown severity or a change to the same values records nothing.
#[test]
fn update_changes_severity_components_and_impact_recorded_old_to_new() {
    let (_ops, dir) = one_incident();
    let timeline =
        || std::fs::read_to_string(dir.join("incidents").join(ID).join("timeline.jsonl")).unwrap();
    at(
        &dir,
        "2026-01-10T10:10:00Z",
        &[
            "update",
            ID,
            "--severity",
            "sev-1",
            "--component",
            "queue",
            "--component",
            "api",
            "--impact",
            "Orders are delayed",
            "--eta",
            "11:00 UTC",
        ],
    )
    .expect_exit(0)
    .stdout_contains("Severity: SEV-1\n")
    .stdout_contains("ETA: 11:00 UTC\n");
    at(
        &dir,
        "2026-01-10T10:20:00Z",
        &[
            "update",
            ID,
            "--impact",
            "Orders fail",
            "--component",
            "api",
        ],
    )
    .expect_exit(0);
    let texts: Vec<String> = timeline()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        texts[1..],
        [
            "Severity: SEV-2 → SEV-1",
            "Impact: - → Orders are delayed",
            "Components: - → queue, api",
            "ETA: - → 11:00 UTC",
            "Impact: Orders are delayed → Orders are delayed; Orders fail",
            "Components: queue, api → api",
        ]
    );
    // The new severity's response time and escalation apply.
    at(&dir, "2026-01-10T10:21:00Z", &["show", ID])
        .expect_exit(0)
        .stdout_contains("INC-20260110-1 SEV-1 [investigating]")
        .stdout_contains("(respond within 15m)");
    let before = timeline();
    at(
        &dir,
        "2026-01-10T10:30:00Z",
        &["update", ID, "--severity", "SEV-9"],
    )
    .expect_exit(64)
    .stderr_contains("unknown severity \"SEV-9\"");
    at(
        &dir,
        "2026-01-10T10:30:00Z",
        &["update", ID, "--severity", "SEV-1", "--component", "api"],
    )
    .expect_exit(64)
    .stderr_contains("nothing to update: every value given is already the incident's");
    assert_eq!(timeline(), before);
}

const ROUTED: &str = "  escalation:\n    SEV-1:\n      contacts: [{ after: 0m, who: Day on-call }, { after: 15m, who: Platform Lead }]\n      by_type:\n        security: [{ after: 0m, who: Security Lead }]\n      business_hours: { days: Mon-Fri, from: \"09:00\", to: \"18:00\", tz: Europe/Berlin }\n      off_hours: [{ after: 0m, who: Night pager }, { after: 30m, who: CTO }]\n";

/// Escalation by incident type and by business hours (in the configured time zone), and
/// routes that cannot work are config errors naming the key.
#[test]
fn escalation_picks_contacts_by_incident_type_and_business_hours() {
    let ops = Opsbook::new().file("ops.yaml", &format!("{PLAIN}{ROUTED}"));
    let dir = ops.dir().to_path_buf();
    // Monday 2026-01-12 10:00 UTC is 11:00 in Berlin: business hours.
    at(
        &dir,
        "2026-01-12T10:00:00Z",
        &["declare", "--severity", "SEV-1", "--title", "API down"],
    )
    .expect_exit(0);
    at(
        &dir,
        "2026-01-12T10:20:00Z",
        &["escalate", "INC-20260112-1"],
    )
    .expect_exit(0)
    .stdout_contains("Due now: Day on-call, Platform Lead");
    // 17:10 UTC is 18:10 in Berlin: off-hours, whoever declared it when.
    at(
        &dir,
        "2026-01-12T17:10:00Z",
        &["escalate", "INC-20260112-1"],
    )
    .expect_exit(0)
    .stdout_contains("Due now: Night pager, CTO");
    // A security incident goes to its own contacts at any hour.
    at(
        &dir,
        "2026-01-10T03:00:00Z",
        &[
            "declare",
            "--severity",
            "SEV-1",
            "--title",
            "Leaked key",
            "--type",
            "security",
        ],
    )
    .expect_exit(0);
    at(
        &dir,
        "2026-01-10T03:05:00Z",
        &["escalate", "INC-20260110-1"],
    )
    .expect_exit(0)
    .stdout_contains("Due now: Security Lead\n");
    let timeline =
        std::fs::read_to_string(dir.join("incidents/INC-20260112-1/timeline.jsonl")).unwrap();
    assert!(
        timeline.contains("Escalated to Day on-call, Platform Lead (T+20m)\""),
        "{timeline}"
    );
    assert!(
        timeline.contains("Escalated to Night pager, CTO (T+7h 10m; off-hours contacts)"),
        "{timeline}"
    );
    // What is overdue follows the same contacts: off-hours, the night pager is due.
    at(
        &dir,
        "2026-01-12T17:11:00Z",
        &["declare", "--severity", "SEV-1", "--title", "Disk full"],
    )
    .expect_exit(0);
    at(&dir, "2026-01-12T17:12:00Z", &["show", "INC-20260112-2"])
        .expect_exit(0)
        .stdout_contains("OVERDUE: escalation to Night pager was due at T+0m");
    for (bad, named) in [
        (
            "  escalation:\n    SEV-9: { contacts: [{ after: 0m, who: x }] }\n",
            "incident.escalation.SEV-9: no such severity (known: SEV-1, SEV-2, SEV-3, SEV-4)",
        ),
        (
            "  escalation:\n    SEV-1:\n      contacts: [{ after: 0m, who: x }]\n      business_hours: { days: Mon-Fri, from: \"09:00\", to: \"18:00\" }\n",
            "incident.escalation.SEV-1: business_hours without off_hours contacts changes nothing",
        ),
        (
            "  escalation:\n    SEV-1:\n      contacts: [{ after: 0m, who: x }]\n      business_hours: { days: Fri-Mon, from: \"09:00\", to: \"18:00\" }\n      off_hours: []\n",
            "Fri comes after Mon",
        ),
        (
            "  escalation:\n    SEV-1:\n      contacts: [{ after: 0m, who: x }]\n      business_hours: { days: Mon-Fri, from: \"9am\", to: \"18:00\" }\n      off_hours: []\n",
            "\"9am\" is not a time of day HH:MM",
        ),
        (
            "  escalation:\n    SEV-1:\n      contacts: [{ after: 0m, who: x }]\n      business_hours: { days: Mon-Fri, from: \"09:00\", to: \"18:00\", tz: Mars/Olympus }\n      off_hours: []\n",
            "\"Mars/Olympus\" is not a known time zone",
        ),
    ] {
        std::fs::write(dir.join("ops.yaml"), format!("{PLAIN}{bad}")).unwrap();
        at(
            &dir,
            "2026-01-12T10:00:00Z",
            &["declare", "--severity", "SEV-1", "--title", "x"],
        )
        .expect_exit(78)
        .stderr_contains(named);
    }
    assert!(!dir.join("incidents/INC-20260112-3").exists());
}

/// Action items (`TEXT[@owner][ by DATE]`) are tracked across incidents: listed, filtered
/// by owner and state, as JSON, marked done (once), and overdue ones are listed by
/// `incident remind` and `maintain status`.
#[test]
fn action_items_are_tracked_across_incidents_and_overdue_ones_are_reminded() {
    let (port, got) = webhook(Mode::Ok);
    let ops = Opsbook::new().file("ops.yaml", &config(port, ""));
    // Every schedule ran this morning: only the action item can make maintain status fail.
    let ran = r#"{"started":"2026-01-21T02:00:00Z","ended":"2026-01-21T02:01:00Z","outcome":"ok"}"#;
    let ops = ops.file(
        "state/maintain.json",
        &format!(r#"{{"daily":{ran},"weekly":{ran},"monthly":{ran},"quarterly":{ran}}}"#),
    );
    let dir = ops.dir().to_path_buf();
    for (day, title, actions) in [
        (
            "2026-01-10",
            "Queue backlog",
            vec![
                "Raise the pool to 50 @db-team by 2026-01-20",
                "Alert on pool saturation @ops",
            ],
        ),
        (
            "2026-01-11",
            "Exports slow",
            vec![
                "Add an index@DB-team by 2026-02-01",
                "Write the runbook | @ops | 2026-01-15",
            ],
        ),
    ] {
        let now = format!("{day}T10:00:00Z");
        at(
            &dir,
            &now,
            &["declare", "--severity", "SEV-3", "--title", title],
        )
        .expect_exit(0);
        let id = format!("INC-{}-1", day.replace('-', ""));
        let mut args = vec!["resolve", &id, "--root-cause", "x"];
        for a in &actions {
            args.extend(["--action", a]);
        }
        at(&dir, &format!("{day}T11:00:00Z"), &args).expect_exit(0);
    }
    // A bad date is named and nothing is resolved.
    at(
        &dir,
        "2026-01-12T09:00:00Z",
        &["declare", "--severity", "SEV-4", "--title", "Typo"],
    )
    .expect_exit(0);
    at(
        &dir,
        "2026-01-12T09:05:00Z",
        &[
            "resolve",
            "INC-20260112-1",
            "--root-cause",
            "x",
            "--action",
            "Fix it by 2026-13-01",
        ],
    )
    .expect_exit(64)
    .stderr_contains(
        "--action \"Fix it by 2026-13-01\": due date \"2026-13-01\" is not YYYY-MM-DD",
    );
    at(&dir, "2026-01-12T09:06:00Z", &["show", "INC-20260112-1"])
        .expect_exit(0)
        .stdout_contains("[investigating]");
    let all = at(&dir, "2026-01-21T09:00:00Z", &["actions"]).expect_exit(0);
    crate::common::expect_file("incident-actions.txt", &all.stdout);
    let db = at(
        &dir,
        "2026-01-21T09:00:00Z",
        &["actions", "--owner", "db-team", "--format", "json"],
    )
    .expect_exit(0)
    .json();
    let picked: Vec<(String, u64, bool)> = db
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["incident"].as_str().unwrap().to_string(),
                a["n"].as_u64().unwrap(),
                a["overdue"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        picked,
        [
            ("INC-20260110-1".to_string(), 1, true),
            ("INC-20260111-1".to_string(), 1, false)
        ]
    );
    at(
        &dir,
        "2026-01-21T09:30:00Z",
        &["action", "INC-20260111-1", "2", "--done"],
    )
    .expect_exit(0)
    .stdout_contains("INC-20260111-1: action item 2 done: Write the runbook");
    at(
        &dir,
        "2026-01-21T09:40:00Z",
        &["action", "INC-20260111-1", "2", "--done"],
    )
    .expect_exit(0)
    .stdout_contains("action item 2 was already done (at 2026-01-21T09:30:00Z); nothing changed");
    at(
        &dir,
        "2026-01-21T09:40:00Z",
        &["action", "INC-20260111-1", "3", "--done"],
    )
    .expect_exit(64)
    .stderr_contains("INC-20260111-1 has 2 action items; there is no action item 3");
    at(
        &dir,
        "2026-01-21T09:40:00Z",
        &["action", "INC-20260111-1", "1"],
    )
    .expect_exit(64)
    .stderr_contains("--done");
    let open = at(&dir, "2026-01-21T10:00:00Z", &["actions", "--open"]).expect_exit(0);
    assert_eq!(open.stdout.lines().count(), 3, "{}", open.stdout);
    assert!(
        !open.stdout.contains("Write the runbook"),
        "{}",
        open.stdout
    );
    // The one overdue item is reminded (once a day) and listed by maintain status.
    at(&dir, "2026-01-21T10:00:00Z", &["remind"])
        .expect_exit(1)
        .stdout_contains("INC-20260110-1  Queue backlog  reminder sent\n  INC-20260110-1 #1  open  due 2026-01-20  @db-team      Raise the pool to 50  OVERDUE\n");
    let reminders = |got: &Mutex<Vec<String>>| {
        let got = got.lock().unwrap();
        got.iter().filter(|body| body.contains("REMINDER")).count()
    };
    assert_eq!(reminders(&got), 1);
    at(&dir, "2026-01-21T12:00:00Z", &["remind"])
        .expect_exit(1)
        .stdout_contains("already reminded");
    assert_eq!(reminders(&got), 1);
    let status = Opsbook::new()
        .env("OPSBOOK_NOW", "2026-01-21T12:00:00Z")
        .args(["--config", "ops.yaml", "maintain", "status"])
        .run_in(&dir)
        .expect_exit(1);
    assert!(
        status.stdout.ends_with(
            "\naction     INC-20260110-1 #1 due 2026-01-20 @db-team: Raise the pool to 50  OVERDUE\n"
        ),
        "{}",
        status.stdout
    );
    at(
        &dir,
        "2026-01-21T12:05:00Z",
        &["action", "INC-20260110-1", "1", "--done"],
    )
    .expect_exit(0);
    Opsbook::new()
        .env("OPSBOOK_NOW", "2026-01-21T12:10:00Z")
        .args(["--config", "ops.yaml", "maintain", "status"])
        .run_in(&dir)
        .expect_exit(0);
    at(&dir, "2026-01-22T12:10:00Z", &["remind"]).expect_exit(0);
}

/// The templates get what they lacked: the affected service (flag, else config), the ETA
/// and the status page, in the declaration, the status update and the customer notice. A
/// scheme without response times (as two of the runbooks have) is valid and asks for none.
#[test]
fn templates_carry_service_eta_and_status_page_and_schemes_need_no_response_times() {
    let ops = Opsbook::new().file(
        "ops.yaml",
        "state_dir: state\nincident:\n  dir: incidents\n  service: File uploads\n  status_page: \"https://status.example.com/incidents/{id}\"\n",
    );
    let dir = ops.dir().to_path_buf();
    let declared = at(
        &dir,
        NOW,
        &[
            "declare",
            "--severity",
            "SEV-1",
            "--title",
            "Uploads fail",
            "--impact",
            "All uploads fail",
            "--eta",
            "11:30 UTC",
        ],
    )
    .expect_exit(0);
    crate::common::expect_file("incident-declaration.txt", &declared.stdout);
    let updated = at(
        &dir,
        "2026-01-10T10:20:00Z",
        &[
            "update",
            ID,
            "--status",
            "identified",
            "--service",
            "Uploads API",
            "--note",
            "Disk full on the upload node",
        ],
    )
    .expect_exit(0);
    crate::common::expect_file("incident-update.txt", &updated.stdout);
    let notice = at(&dir, "2026-01-10T10:25:00Z", &["notice", ID]).expect_exit(0);
    crate::common::expect_file("incident-customer.txt", &notice.stdout);
    // The severity scheme of the queue runbook: names and descriptions only.
    std::fs::write(
        dir.join("ops.yaml"),
        "state_dir: state\nincident:\n  dir: other\n  severities:\n    - { name: Critical, description: System down, update_every: 1h }\n    - { name: High }\n",
    )
    .unwrap();
    let declared = at(
        &dir,
        NOW,
        &[
            "declare",
            "--severity",
            "critical",
            "--title",
            "Queue stalled",
        ],
    )
    .expect_exit(0);
    assert!(
        !declared.stdout.contains("Response due"),
        "{}",
        declared.stdout
    );
    let shown = at(&dir, "2026-01-11T10:00:00Z", &["show", ID]).expect_exit(0);
    assert!(shown.stdout.contains("Elapsed: 1day\n"), "{}", shown.stdout);
    assert!(!shown.stdout.contains("OVERDUE"), "{}", shown.stdout);
    at(&dir, "2026-01-11T10:00:00Z", &["notice", ID])
        .expect_exit(0)
        .stdout_contains("Our team is investigating and we will provide updates every hour.");
    at(
        &dir,
        NOW,
        &["declare", "--severity", "High", "--title", "Slow"],
    )
    .expect_exit(0);
    at(&dir, "2026-01-11T10:00:00Z", &["notice", "INC-20260110-2"])
        .expect_exit(0)
        .stdout_contains("Our team is investigating and we will keep you updated.");
}
