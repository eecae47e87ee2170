//! `opsbook maintain`: a nightly runbook of actions and checks end to end on a temp tree,
//! locks, killed runs, the metrics textfile, overdue status with a fixed clock, and the
//! emitted cron lines and systemd units.

use crate::common::Opsbook;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const CONFIG: &str = "state_dir: state
logs:
  sets:
    app: { paths: [logs/app.log], size: 1K, keep: 3 }
backup:
  destination: dest
  sets:
    app: { paths: [app], keep_last: 2 }
maintain:
  schedules:
    daily: { runbook: nightly.yaml }
    slow: { runbook: slow.yaml, every: 1h }
    broken: { runbook: broken.yaml }
    missing: { runbook: nowhere.yaml }
";

const NIGHTLY: &str = "name: nightly
steps:
  - name: Rotate app logs
    rotate: { set: app }
  - name: Back up app
    backup: { set: app }
  - name: Prune app backups
    prune: { set: app }
  - name: Verify app backup
    verify: { set: app }
  - name: Memory
    memory: { warn: 75, crit: 90 }
  - name: Review the error dashboard
    manual: \"Look at the error dashboard\"
";

fn tree() -> Opsbook {
    let log: String = (1..=200)
        .map(|i| format!("2026-01-10 10:00:00,000 - app - INFO - line {i}\n"))
        .collect();
    Opsbook::new()
        .file("ops.yaml", CONFIG)
        .file("nightly.yaml", NIGHTLY)
        .file(
            "slow.yaml",
            "name: slow\nsteps:\n  - name: Take a while\n    command: { run: \"sleep 3\", timeout: 30s }\n",
        )
        .file("broken.yaml", "name: broken\nsteps:\n  - name: typo\n    htp: { url: x }\n")
        .file("logs/app.log", &log)
        .file("app/app.conf", "port: 8000\n")
        .readings(10.0, 10.0, 1.0)
}

fn maintain(dir: &Path, now: &str, args: &[&str]) -> crate::common::Run {
    let mut all = vec!["--config", "ops.yaml", "maintain"];
    all.extend_from_slice(args);
    Opsbook::new()
        .env("OPSBOOK_NOW", now)
        .env("LOG_TO_FILE", "true")
        .env("LOG_DIR", "ops-logs")
        .env(
            "OPSBOOK_READINGS",
            dir.join("readings.json").to_str().unwrap(),
        )
        .args(all)
        .run_in(dir)
}

pub(crate) fn promtool_accepts(path: &Path) {
    let out = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(path).unwrap())
        .output()
        .expect("promtool (scripts/test installs prometheus)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_nightly_runbook_rotates_backs_up_prunes_verifies_and_checks() {
    let ops = tree();
    let dir = ops.dir().to_path_buf();
    let mut inodes = Vec::new();
    for (i, now) in [
        "2026-01-10T02:15:00Z",
        "2026-01-11T02:15:00Z",
        "2026-01-12T02:15:00Z",
    ]
    .iter()
    .enumerate()
    {
        // Fresh lines to rotate each night.
        let log: String = (1..=100)
            .map(|n| format!("2026-01-1{i} 01:00:00,000 - app - INFO - night {i} line {n}\n"))
            .collect();
        std::fs::write(dir.join("logs/app.log"), log).unwrap();
        let run = maintain(
            &dir,
            now,
            &["run", "daily", "--metrics", "metrics/opsbook.prom"],
        )
        .expect_exit(0);
        // Under cron (a pipe): one line, the to-do named, nothing else.
        assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
        assert!(
            run.stdout
                .starts_with("maintain daily: ok — 6 steps: 5 ok, 1 skipped or to do"),
            "{}",
            run.stdout
        );
        assert!(run.stdout.contains("to do: Review the error dashboard"));
        promtool_accepts(&dir.join("metrics/opsbook.prom"));
        inodes.push(
            std::fs::metadata(dir.join("metrics/opsbook.prom"))
                .unwrap()
                .ino(),
        );
    }
    // Replaced by rename each time, no temporary left beside it.
    assert_ne!(inodes[0], inodes[1]);
    let beside: Vec<_> = std::fs::read_dir(dir.join("metrics")).unwrap().collect();
    assert_eq!(beside.len(), 1);
    let metrics = std::fs::read_to_string(dir.join("metrics/opsbook.prom")).unwrap();
    assert!(metrics.contains("opsbook_maintain_last_run_status{schedule=\"daily\"} 0"));
    assert!(metrics.contains(
        "opsbook_maintain_step_status{schedule=\"daily\",step=\"Review the error dashboard\"} -1"
    ));
    assert!(dir.join("logs/app.log.1.gz").exists());
    assert!(dir.join("logs/app.log.3.gz").exists());
    // The details went to the log files, one line per step.
    let details = std::fs::read_to_string(dir.join("ops-logs/application.log")).unwrap();
    assert!(
        details.contains("step finished") && details.contains("Rotate app logs"),
        "{details}"
    );
    let audit = std::fs::read_to_string(dir.join("ops-logs/audit.log")).unwrap();
    assert!(audit.contains("maintain.daily"), "{audit}");
    // keep_last: 2 after three nights.
    let backups = std::fs::read_dir(dir.join("dest")).unwrap().count();
    assert_eq!(backups, 2);
    let status = maintain(
        &dir,
        "2026-01-12T10:00:00Z",
        &["status", "--format", "json"],
    )
    .json();
    let daily = status
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["schedule"] == "daily")
        .unwrap()
        .clone();
    assert_eq!(daily["outcome"], "ok");
    assert_eq!(daily["last_start"], "2026-01-12T02:15:00Z");
    assert_eq!(daily["overdue"], false);
}

#[test]
fn overdue_is_judged_against_every_with_an_hour_of_grace() {
    let ops = tree();
    let dir = ops.dir().to_path_buf();
    maintain(&dir, "2026-01-10T02:15:00Z", &["run", "daily"]).expect_exit(0);
    let overdue = |now: &str| {
        let status = maintain(&dir, now, &["status", "--format", "json"]);
        let rows = status.json();
        let daily = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["schedule"] == "daily")
            .unwrap()["overdue"]
            .clone();
        (daily, status.code)
    };
    // weekly and monthly never ran: the status exits 1 either way.
    assert_eq!(
        overdue("2026-01-11T03:15:00Z"),
        (serde_json::json!(false), Some(1))
    );
    assert_eq!(
        overdue("2026-01-11T03:16:00Z"),
        (serde_json::json!(true), Some(1))
    );
    maintain(&dir, "2026-01-11T03:16:00Z", &["status"])
        .stdout_contains("weekly     last never")
        .stdout_contains("OVERDUE");
}

#[test]
fn an_overlapping_run_exits_75_and_a_killed_run_s_lock_is_taken_over() {
    let ops = tree();
    let dir = ops.dir().to_path_buf();
    let start = || {
        Opsbook::new()
            .args(["--config", "ops.yaml", "maintain", "run", "slow"])
            .spawn_in(&dir)
    };
    let running_now = || {
        std::fs::read_to_string(dir.join("state/maintain.json"))
            .is_ok_and(|t| t.contains("\"running\""))
    };
    let first = start();
    let started = std::time::Instant::now();
    while !running_now() {
        assert!(
            started.elapsed().as_secs() < 30,
            "the first run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let pid = first.child.id();
    Opsbook::new()
        .args(["--config", "ops.yaml", "maintain", "run", "slow"])
        .run_in(&dir)
        .expect_exit(75)
        .stderr_contains(&format!("pid {pid} since"));
    // Killed mid-run: the kernel drops its lock; the next run takes it and completes.
    first.signal(libc::SIGKILL);
    first.finish(std::time::Duration::from_secs(10));
    let run = Opsbook::new()
        .args(["--config", "ops.yaml", "maintain", "run", "slow"])
        .run_in(&dir)
        .expect_exit(0);
    assert!(
        run.stdout.starts_with("maintain slow: ok"),
        "{}",
        run.stdout
    );
    let state = std::fs::read_to_string(dir.join("state/maintain.json")).unwrap();
    assert!(!state.contains("\"running\""), "{state}");
}

#[test]
fn emitted_cron_lines_and_systemd_units_run_this_binary_with_this_config() {
    let ops = Opsbook::new()
        .file("ops.yaml", "state_dir: state\n")
        .file(
            "config/production.yaml",
            "maintain:\n  schedules:\n    daily: { runbook: tiny.yaml }\n",
        )
        .file(
            "tiny.yaml",
            "name: tiny\nsteps:\n  - name: Memory\n    memory: {}\n",
        )
        .readings(10.0, 10.0, 1.0);
    let dir = ops.dir().to_path_buf();
    let binary = env!("CARGO_BIN_EXE_opsbook");
    let cron = Opsbook::new()
        .args([
            "--env",
            "production",
            "--config",
            "ops.yaml",
            "maintain",
            "schedule",
            "--emit",
            "cron",
        ])
        .run_in(&dir)
        .expect_exit(0);
    let config = std::path::absolute(dir.join("ops.yaml")).unwrap();
    let config_dir = std::path::absolute(dir.join("config")).unwrap();
    let lines: Vec<&str> = cron
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert_eq!(lines.len(), 4, "{}", cron.stdout);
    let daily = format!(
        "15 2 * * * cd {} && OPSBOOK_CONFIG_DIR={} {binary} --env production --config {} maintain run daily",
        dir.display(),
        config_dir.display(),
        config.display()
    );
    assert!(lines.contains(&daily.as_str()), "{}", cron.stdout);
    // Run as cron would: from the home directory, through sh, with nothing else set. The
    // job finds its config (the schedule's runbook, the state dir) all the same.
    let job = daily.splitn(6, ' ').nth(5).unwrap();
    let out = std::process::Command::new("sh")
        .args(["-c", job])
        .current_dir("/")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("OPSBOOK_READINGS", dir.join("readings.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("maintain daily: ok — 1 step"));
    assert!(dir.join("state/maintain.json").exists());

    Opsbook::new()
        .args(["--env", "production", "--config", "ops.yaml"])
        .args([
            "maintain", "schedule", "--emit", "systemd", "--dir", "units",
        ])
        .run_in(&dir)
        .expect_exit(0);
    let service =
        std::fs::read_to_string(dir.join("units/opsbook-maintain-daily.service")).unwrap();
    for line in [
        format!("WorkingDirectory={}", dir.display()),
        format!("Environment=OPSBOOK_CONFIG_DIR={}", config_dir.display()),
        format!(
            "ExecStart={binary} --env production --config {} maintain run daily",
            config.display()
        ),
    ] {
        assert!(service.lines().any(|l| l == line), "{line}\n{service}");
    }
    let timer = std::fs::read_to_string(dir.join("units/opsbook-maintain-daily.timer")).unwrap();
    assert!(timer.contains("OnCalendar=*-*-* 02:15:00"));
    let analyze = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(["daily", "weekly", "monthly"].iter().flat_map(|s| {
            [
                dir.join(format!("units/opsbook-maintain-{s}.service")),
                dir.join(format!("units/opsbook-maintain-{s}.timer")),
            ]
        }))
        .output();
    match analyze {
        Ok(out) => assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            eprintln!("systemd-analyze not available ({e}); unit syntax checked by content only")
        }
    }
}

#[test]
fn an_environment_asked_for_without_its_file_is_warned_about() {
    let ops = Opsbook::new().file("ops.yaml", "state_dir: state\n");
    let dir = ops.dir().to_path_buf();
    let warning = "environment \"staging\" was asked for, but config/staging.yaml was not found";
    // By flag and by $ENVIRONMENT alike, on stderr and in application.log.
    for (flag, env) in [(true, None), (false, Some("staging"))] {
        let mut cmd = Opsbook::new()
            .env("LOG_TO_FILE", "true")
            .env("LOG_DIR", "ops-logs");
        if flag {
            cmd = cmd.args(["--env", "staging"]);
        }
        if let Some(env) = env {
            cmd = cmd.env("ENVIRONMENT", env);
        }
        let run = cmd
            .args([
                "--config", "ops.yaml", "maintain", "schedule", "--emit", "cron",
            ])
            .run_in(&dir)
            .expect_exit(0)
            .stderr_contains(warning)
            .stdout_contains("--env staging --config");
        drop(run);
        let log = std::fs::read_to_string(dir.join("ops-logs/application.log")).unwrap();
        assert!(log.contains(warning), "{log}");
        std::fs::remove_file(dir.join("ops-logs/application.log")).unwrap();
    }
    // Not asked for: the built-in development defaults, no warning, and no `--env` in the
    // job (which would warn every night).
    let run = Opsbook::new()
        .args([
            "--config", "ops.yaml", "maintain", "schedule", "--emit", "cron",
        ])
        .run_in(&dir)
        .expect_exit(0);
    assert!(!run.stderr.contains("was asked for"), "{}", run.stderr);
    assert!(!run.stdout.contains("--env"), "{}", run.stdout);
    // Asked for, and found: no warning either.
    let ops = Opsbook::new().file("config/staging.yaml", "state_dir: state\n");
    let run = Opsbook::new()
        .args(["--env", "staging", "maintain", "schedule", "--emit", "cron"])
        .run_in(ops.dir())
        .expect_exit(0)
        .stdout_contains("--env staging maintain run daily");
    assert!(!run.stderr.contains("was asked for"), "{}", run.stderr);
    // Found without being asked for (config/development.yaml): the job names it too.
    let ops = Opsbook::new().file("config/development.yaml", "state_dir: state\n");
    Opsbook::new()
        .args(["maintain", "schedule", "--emit", "cron"])
        .run_in(ops.dir())
        .expect_exit(0)
        .stdout_contains("--env development maintain run daily");
}

#[test]
fn upkeep_runs_whatever_the_readings_say() {
    // Disk 95 %, CPU 99 %: exactly the night rotation and pruning are needed.
    let port = crate::common::server::closed_port();
    let ops = tree()
        .file(
            "ops.yaml",
            &format!(
                "state_dir: state\nlogs:\n  sets:\n    app: {{ paths: [logs/app.log], size: 1K }}\nbackup:\n  destination: dest\n  sets:\n    app: {{ paths: [app], keep_last: 1 }}\nmaintain:\n  schedules:\n    daily:\n      runbook: daily\n      vars: {{ log_set: app, backup_set: app, app_log: logs/app.log, api: \"http://127.0.0.1:{port}\", tls_host: 127.0.0.1, tls_port: \"{port}\" }}\n    custom: {{ runbook: custom.yaml }}\n"
            ),
        )
        .file(
            "custom.yaml",
            "name: custom\nsteps:\n  - name: Disk\n    disk: { path: / }\n  - name: Back up\n    backup: { set: app }\n",
        )
        .readings(10.0, 95.0, 99.0);
    let dir = ops.dir().to_path_buf();
    // Yesterday's backup, for the prune to remove.
    maintain(&dir, "2026-01-10T02:15:00Z", &["run", "custom"]).expect_exit(2);
    assert_eq!(std::fs::read_dir(dir.join("dest")).unwrap().count(), 1);
    let yesterday = crate::common::only_backup(&dir);
    let run = maintain(
        &dir,
        "2026-01-11T02:15:00Z",
        &["run", "daily", "--metrics", "daily.prom"],
    )
    .expect_exit(2);
    assert!(
        run.stdout
            .contains("failed: Disk space, CPU, API health, Certificate not expiring"),
        "{}",
        run.stdout
    );
    let metrics = std::fs::read_to_string(dir.join("daily.prom")).unwrap();
    for (step, status) in [
        ("Disk space", 2),
        ("CPU", 2),
        ("Rotate logs", 0),
        ("Back up", 0),
        ("Prune backups", 0),
    ] {
        let line =
            format!("opsbook_maintain_step_status{{schedule=\"daily\",step=\"{step}\"}} {status}");
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }
    assert!(dir.join("logs/app.log.1.gz").exists());
    // A new backup, and yesterday's pruned (keep_last: 1).
    let today = crate::common::only_backup(&dir);
    assert_ne!(today, yesterday);
    // Any schedule's runbook: its reading reports, its backup runs — under `maintain`
    // only; `opsbook run` keeps the runbook's own semantics (a critical step stops it).
    let custom = maintain(&dir, "2026-01-12T02:15:00Z", &["run", "custom"]).expect_exit(2);
    assert!(
        custom.stdout.contains("1 ok, 1 critical"),
        "{}",
        custom.stdout
    );
    let run = Opsbook::new()
        .env("OPSBOOK_NOW", "2026-01-13T02:15:00Z")
        .env(
            "OPSBOOK_READINGS",
            dir.join("readings.json").to_str().unwrap(),
        )
        .args(["--config", "ops.yaml", "run", "custom.yaml"])
        .run_in(&dir)
        .expect_exit(2);
    assert!(
        run.stdout.contains("not run: step \"Disk\" failed"),
        "{}",
        run.stdout
    );
}

#[test]
fn unknown_schedules_and_bad_runbooks_are_exit_78_and_nothing_runs() {
    let ops = tree();
    let dir = ops.dir().to_path_buf();
    maintain(&dir, "2026-01-10T02:15:00Z", &["run", "dialy"])
        .expect_exit(78)
        .stderr_contains("no maintenance schedule \"dialy\"")
        .stderr_contains("did you mean \"daily\"");
    maintain(&dir, "2026-01-10T02:15:00Z", &["run", "missing"])
        .expect_exit(78)
        .stderr_contains("nowhere.yaml");
    maintain(&dir, "2026-01-10T02:15:00Z", &["run", "broken"])
        .expect_exit(78)
        .stderr_contains("broken.yaml:4");
    assert!(!dir.join("state/maintain.json").exists());
    assert!(!dir.join("dest").exists());
}

#[test]
fn the_shipped_daily_runbook_rotates_and_backs_up_the_sets_a_schedule_names() {
    let port = crate::common::server::closed_port();
    let ops = tree().file(
        "ops.yaml",
        &format!(
            "state_dir: state\nlogs:\n  sets:\n    app: {{ paths: [logs/app.log], size: 1K }}\nbackup:\n  destination: dest\n  sets:\n    app: {{ paths: [app], keep_last: 1 }}\nmaintain:\n  schedules:\n    daily:\n      runbook: daily\n      vars: {{ log_set: app, backup_set: app, app_log: logs/app.log, backup_dir: dest, api: \"http://127.0.0.1:{port}\", tls_host: 127.0.0.1 }}\n"
        ),
    );
    let dir = ops.dir().to_path_buf();
    // Nothing listens for the API or TLS here: those two checks fail, the actions run.
    // The first night there is no backup yet when the freshness check runs.
    let run = maintain(&dir, "2026-01-10T02:15:00Z", &["run", "daily"]).expect_exit(2);
    assert!(
        run.stdout
            .trim_end()
            .ends_with("failed: API health, Backups are recent, Certificate not expiring"),
        "{}",
        run.stdout
    );
    let log: String = (1..=100)
        .map(|n| format!("2026-01-11 01:00:00,000 - app - INFO - line {n}\n"))
        .collect();
    std::fs::write(dir.join("logs/app.log"), log).unwrap();
    let run = maintain(&dir, "2026-01-11T02:15:00Z", &["run", "daily"]).expect_exit(2);
    assert!(
        run.stdout
            .trim_end()
            .ends_with("failed: API health, Certificate not expiring"),
        "{}",
        run.stdout
    );
    assert!(dir.join("logs/app.log.2.gz").exists());
    // keep_last: 1, pruned by the runbook.
    assert_eq!(std::fs::read_dir(dir.join("dest")).unwrap().count(), 1);
}

#[test]
fn an_action_step_naming_an_unknown_set_is_unknown_with_a_suggestion() {
    let ops = tree().file(
        "typo.yaml",
        "name: typo\nsteps:\n  - name: Rotate\n    rotate: { set: ap }\n",
    );
    let dir = ops.dir().to_path_buf();
    Opsbook::new()
        .args(["--config", "ops.yaml", "run", "typo.yaml"])
        .run_in(&dir)
        .expect_exit(3)
        .stdout_contains("no set \"ap\" in `logs.sets`; did you mean \"app\"?");
    // Actions never run from health: the config is refused.
    Opsbook::new()
        .file(
            "ops.yaml",
            "health:\n  endpoints:\n    - name: nightly\n      rotate: { set: app }\n",
        )
        .args(["--config", "ops.yaml", "health"])
        .run()
        .expect_exit(78)
        .stderr_contains("`rotate` steps belong in runbooks, not in health.endpoints");
}

#[test]
fn schedules_finishing_at_once_all_land_in_the_state_file() {
    let names = ["a", "b", "c", "d", "e", "f"];
    let mut config = String::from("state_dir: state\nmaintain:\n  schedules:\n");
    for name in names {
        config.push_str(&format!("    {name}: {{ runbook: quick.yaml }}\n"));
    }
    let ops = Opsbook::new().file("ops.yaml", &config).file(
        "quick.yaml",
        "name: quick\nsteps:\n  - name: true\n    command: { run: \"true\" }\n",
    );
    let dir = ops.dir().to_path_buf();
    let runs: Vec<_> = names
        .iter()
        .map(|name| {
            Opsbook::new()
                .args(["--config", "ops.yaml", "maintain", "run", name])
                .spawn_in(&dir)
        })
        .collect();
    for run in runs {
        run.finish(std::time::Duration::from_secs(30))
            .expect_exit(0);
    }
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state/maintain.json")).unwrap())
            .unwrap();
    for name in names {
        assert_eq!(state[name]["outcome"], "ok", "{name} lost: {state}");
    }
}

#[test]
fn emitted_systemd_units_work_from_a_directory_with_a_space_in_its_name() {
    let ops = Opsbook::new()
        .file(
            "my ops/config/production.yaml",
            "state_dir: state\nmaintain:\n  schedules:\n    daily: { runbook: tiny.yaml }\n",
        )
        .file(
            "my ops/tiny.yaml",
            "name: tiny\nsteps:\n  - name: Memory\n    memory: {}\n",
        );
    let dir = ops.dir().join("my ops");
    Opsbook::new()
        .args([
            "--env",
            "production",
            "maintain",
            "schedule",
            "--emit",
            "systemd",
        ])
        .args(["--dir", "units"])
        .run_in(&dir)
        .expect_exit(0);
    let service =
        std::fs::read_to_string(dir.join("units/opsbook-maintain-daily.service")).unwrap();
    // systemd takes WorkingDirectory= as written: quotes would be part of the path.
    let line = format!("WorkingDirectory={}", dir.display());
    assert!(service.lines().any(|l| l == line), "{line}\n{service}");
    if let Ok(out) = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.join("units/opsbook-maintain-daily.service"))
        .output()
    {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains("WorkingDirectory"),
            "{stderr}\n{service}"
        );
    }
}

/// The whole `maintain status` output, text and JSON, for a fixed state file and clock:
/// a run that finished and is not due, one killed while running, one that failed and is
/// overdue, schedules that never ran, and one without `every` (never overdue).
#[test]
fn status_shows_every_schedule_s_last_run_and_overdue_as_expected() {
    use std::os::unix::fs::PermissionsExt;
    let state = r#"{
  "daily": {
    "started": "2026-03-01T02:15:00Z",
    "ended": "2026-03-01T02:15:04Z",
    "outcome": "ok",
    "duration_ms": 4012
  },
  "weekly": {
    "started": "2026-02-22T03:30:00Z",
    "ended": null,
    "outcome": "running",
    "duration_ms": null
  },
  "hourly": {
    "started": "2026-03-01T07:59:00Z",
    "ended": "2026-03-01T08:00:30Z",
    "outcome": "critical",
    "duration_ms": 90000
  },
  "adhoc": {
    "started": "2026-01-05T12:00:00Z",
    "ended": "2026-01-05T12:00:01Z",
    "outcome": "warning",
    "duration_ms": 1000
  }
}
"#;
    let ops = Opsbook::new()
        .file(
            "ops.yaml",
            "state_dir: state\nmaintain:\n  schedules:\n    hourly: { runbook: hourly.yaml, every: 1h }\n    adhoc: { runbook: adhoc.yaml }\n",
        )
        .file("state/maintain.json", state)
        .readings(10.0, 10.0, 1.0);
    let dir = ops.dir().to_path_buf();
    std::fs::set_permissions(dir.join("state"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let now = "2026-03-01T10:00:00Z";
    let text = maintain(&dir, now, &["status"]).expect_exit(1);
    crate::common::expect_file("maintain-status.txt", &text.stdout);
    let json = maintain(&dir, now, &["status", "--format", "json"]).expect_exit(1);
    crate::common::expect_file("maintain-status.json", &json.stdout);
}

/// Every maintenance error as the command prints it, word for word, with its exit code:
/// the ones about `maintain.schedules` name the config file (78); a unit directory or a
/// metrics textfile that cannot be written is a failure (1).
#[test]
fn maintenance_errors_read_as_expected_with_their_exit_codes() {
    let ops = tree()
        .file(
            "times.yaml",
            "maintain:\n  schedules:\n    odd: { runbook: nightly.yaml, cron: \"* * *\" }\n",
        )
        .file(
            "builtin.yaml",
            "state_dir: state\nmaintain:\n  schedules:\n    tiny: { runbook: tiny.yaml, calendar: \"*-*-* 05:00:00\" }\n",
        )
        .file(
            "tiny.yaml",
            "name: tiny\nsteps:\n  - name: True\n    command: { run: \"true\" }\n",
        )
        .file("units", "a file, not a directory\n");
    let dir = ops.dir().to_path_buf();
    let mut transcript = String::new();
    for (config, args) in [
        ("ops.yaml", &["run", "dialy"][..]),
        ("ops.yaml", &["run", "missing"]),
        ("times.yaml", &["schedule", "--emit", "cron"]),
        ("times.yaml", &["schedule", "--emit", "systemd"]),
        (
            "builtin.yaml",
            &["schedule", "--emit", "systemd", "--dir", "units/here"],
        ),
        (
            "builtin.yaml",
            &["run", "tiny", "--metrics", "units/tiny.prom"],
        ),
    ] {
        let mut all = vec!["--config", config, "maintain"];
        all.extend_from_slice(args);
        let run = Opsbook::new().args(all).run_in(&dir);
        transcript.push_str(&format!(
            "$ opsbook --config {config} maintain {}\nexit {:?}\n{}\n",
            args.join(" "),
            run.code,
            run.stderr
        ));
    }
    crate::common::expect_file("maintain-errors.txt", &transcript);
}

/// `maintain run NAME --dry-run` shows the schedule's runbook with the schedule's vars —
/// the files its cleanup would remove — and removes nothing, records no run.
#[test]
fn a_dry_run_of_a_schedule_shows_what_it_would_remove_and_removes_nothing() {
    let ops = Opsbook::new()
        .file("c/new.txt", "new\n")
        .file("c/old.txt", "old\n");
    let dir = ops.dir().to_path_buf();
    std::fs::File::options()
        .append(true)
        .open(dir.join("c/old.txt"))
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(200 * 86_400))
        .unwrap();
    std::fs::write(
        dir.join("mm.yaml"),
        format!(
            "state_dir: state\nmaintain:\n  schedules:\n    monthly: {{ runbook: monthly, vars: {{ cleanup_dir: {}/c }} }}\n",
            dir.display()
        ),
    )
    .unwrap();
    let run = ops
        .args([
            "--config",
            "mm.yaml",
            "maintain",
            "run",
            "monthly",
            "--dry-run",
        ])
        .run()
        .expect_exit(0);
    assert!(
        run.stdout.contains(&format!(
            "would remove 1 file (4B) from {0}/c: {0}/c/old.txt",
            dir.display()
        )),
        "{}",
        run.stdout
    );
    assert!(dir.join("c/old.txt").exists());
    assert!(!dir.join("state/maintain.json").exists());
}
