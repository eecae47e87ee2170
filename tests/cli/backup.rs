//! `opsbook backup create|list|verify` on real trees, read back by GNU tar.

use crate::common::Opsbook;
use std::path::Path;

fn config(codec: &str) -> String {
    format!(
        "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    config:\n      paths: [app]\n      exclude: [\"*.pyc\", \"__pycache__\", \".git\"]\n      compress: {codec}\n"
    )
}

fn tree(opsbook: Opsbook) -> Opsbook {
    opsbook
        .file("app/conf/app.yaml", "database: postgres://db/app\n")
        .file("app/main.py", "print('hello')\n")
        .file("app/__pycache__/main.cpython-311.pyc", "bytecode")
        .file("app/lib/util.pyc", "bytecode")
        .file("app/.git/HEAD", "ref: refs/heads/main\n")
}

#[test]
fn gnu_tar_extracts_a_backup_byte_identical_with_excludes_left_out() {
    for (codec, archive, flag) in [
        ("zstd", "data.tar.zst", "--zstd"),
        ("gzip", "data.tar.gz", "-z"),
    ] {
        let opsbook = tree(Opsbook::new()).file("ops.yaml", &config(codec));
        let dir = opsbook.dir().to_path_buf();
        std::os::unix::fs::symlink("conf/app.yaml", dir.join("app/current.yaml")).unwrap();
        Opsbook::new()
            .args(["--config", "ops.yaml", "backup", "create"])
            .run_in(&dir)
            .expect_exit(0)
            .stdout_contains("config: created config-");
        let backup = crate::common::only_backup(&dir);
        assert!(backup.join("manifest.json").exists());
        let out = dir.join("extracted");
        std::fs::create_dir_all(&out).unwrap();
        let status = std::process::Command::new("tar")
            .args([flag, "-xf"])
            .arg(backup.join(archive))
            .arg("-C")
            .arg(&out)
            .status()
            .expect("GNU tar");
        assert!(status.success(), "{codec}");
        for file in ["app/conf/app.yaml", "app/main.py"] {
            assert_eq!(
                std::fs::read(out.join(file)).unwrap(),
                std::fs::read(dir.join(file)).unwrap(),
                "{codec}: {file}"
            );
        }
        for gone in ["app/__pycache__", "app/lib/util.pyc", "app/.git"] {
            assert!(!out.join(gone).exists(), "{codec}: {gone} was not excluded");
        }
        assert_eq!(
            std::fs::read_link(out.join("app/current.yaml")).unwrap(),
            Path::new("conf/app.yaml")
        );
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json")).unwrap())
                .unwrap();
        assert_eq!(manifest["set"], "config");
        let files = manifest["files"].as_array().unwrap();
        assert_eq!(files.len(), 2);
        let main = files.iter().find(|f| f["path"] == "app/main.py").unwrap();
        assert_eq!(main["size"], 15);
        assert_eq!(main["sha256"], sha256_of(&dir.join("app/main.py")));
    }
}

fn sha256_of(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn list_and_verify_record_the_last_passed_verification() {
    let opsbook = tree(Opsbook::new()).file("ops.yaml", &config("zstd"));
    let dir = opsbook.dir().to_path_buf();
    let args = |extra: &[&str]| {
        let mut a = vec!["--config", "ops.yaml", "backup"];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    Opsbook::new()
        .args(args(&["create"]))
        .run_in(&dir)
        .expect_exit(0);
    // An interrupted run's leftovers are never listed.
    std::fs::create_dir_all(dir.join("dest/config-20200101T000000Z.partial")).unwrap();
    let run = Opsbook::new()
        .args(args(&["list", "--format", "json"]))
        .run_in(&dir)
        .expect_exit(0);
    let list = run.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["files"], 2);
    assert_eq!(list[0]["verified"], false);
    Opsbook::new()
        .args(args(&["verify", "latest"]))
        .run_in(&dir)
        .expect_exit(0)
        .stdout_contains("verified, 2 files match the manifest");
    let list = Opsbook::new()
        .args(args(&["list", "--format", "json"]))
        .run_in(&dir)
        .expect_exit(0)
        .json();
    assert_eq!(list[0]["verified"], true);
}

#[test]
fn a_tampered_archive_fails_verification_naming_the_file() {
    // One incompressible file, stored with gzip: a byte flipped in the middle lands in it.
    let data = crate::common::noise(256 * 1024);
    let opsbook = Opsbook::new().file("ops.yaml", &config("gzip"));
    let dir = opsbook.dir().to_path_buf();
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(dir.join("app/blob.bin"), &data).unwrap();
    Opsbook::new()
        .args(["--config", "ops.yaml", "backup", "create"])
        .run_in(&dir)
        .expect_exit(0);
    let archive = crate::common::only_backup(&dir).join("data.tar.gz");
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&archive, bytes).unwrap();
    Opsbook::new()
        .args(["--config", "ops.yaml", "backup", "verify", "latest"])
        .run_in(&dir)
        .expect_exit(1)
        .stderr_contains("app/blob.bin");
}

#[test]
fn backup_without_a_destination_or_set_says_what_to_configure() {
    Opsbook::new()
        .args(["backup", "create"])
        .run()
        .expect_exit(78)
        .stderr_contains("missing setting `backup.destination`");
    Opsbook::new()
        .file("ops.yaml", &config("zstd"))
        .args(["--config", "ops.yaml", "backup", "create", "nope"])
        .run()
        .expect_exit(64)
        .stderr_contains("no set \"nope\" in `backup.sets`");
    Opsbook::new()
        .file("ops.yaml", "backup:\n  destination: \"s3:///prefix\"\n")
        .args(["--config", "ops.yaml", "backup", "list"])
        .run()
        .expect_exit(64)
        .stderr_contains("s3:///prefix: no bucket; write s3://BUCKET/PREFIX");
}

/// Backups made on fixed days, then pruned with restic's rules (OR-ed, newest per bucket).
#[test]
fn prune_keeps_what_the_rules_say_and_cleans_leftovers() {
    let policy = "      keep_last: 1\n      keep_daily: 3\n      keep_monthly: 2\n";
    let opsbook = tree(Opsbook::new()).file("ops.yaml", &format!("{}{policy}", config("gzip")));
    let dir = opsbook.dir().to_path_buf();
    let days = [
        "2025-01-10T08:00:00Z",
        "2025-01-31T08:00:00Z",
        "2025-02-14T08:00:00Z",
        "2025-02-15T08:00:00Z",
        "2025-02-15T20:00:00Z",
        "2025-02-16T08:00:00Z",
    ];
    for day in days {
        Opsbook::new()
            .env("TZ", "UTC")
            .env("OPSBOOK_NOW", day)
            .args(["--config", "ops.yaml", "backup", "create"])
            .run_in(&dir)
            .expect_exit(0);
    }
    std::fs::create_dir_all(dir.join("dest/config-20250217T000000Z.partial")).unwrap();
    let dry = Opsbook::new()
        .env("TZ", "UTC")
        .args(["--config", "ops.yaml", "backup", "prune", "--dry-run"])
        .run_in(&dir)
        .expect_exit(0);
    // Kept: the newest (last + daily 02-16 + monthly 2025-02), the newest of 02-15 (daily),
    // 02-14 (daily), and 01-31 (monthly 2025-01). Removed: 02-15 08:00 and 01-10.
    for line in [
        "config: keep config-20250216T080000Z (last config-20250216T080000Z, daily 2025-02-16, monthly 2025-02)",
        "config: keep config-20250215T200000Z (daily 2025-02-15)",
        "config: keep config-20250214T080000Z (daily 2025-02-14)",
        "config: keep config-20250131T080000Z (monthly 2025-01)",
        "config: would remove config-20250215T080000Z",
        "config: would remove config-20250110T080000Z",
        "config: would remove config-20250217T000000Z.partial",
    ] {
        assert!(
            dry.stdout.contains(line),
            "{line:?} missing:\n{}",
            dry.stdout
        );
    }
    assert_eq!(std::fs::read_dir(dir.join("dest")).unwrap().count(), 7);
    Opsbook::new()
        .env("TZ", "UTC")
        .args(["--config", "ops.yaml", "backup", "prune"])
        .run_in(&dir)
        .expect_exit(0)
        .stdout_contains("config: removed config-20250110T080000Z");
    let mut left: Vec<String> = std::fs::read_dir(dir.join("dest"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "config-20250131T080000Z",
            "config-20250214T080000Z",
            "config-20250215T200000Z",
            "config-20250216T080000Z"
        ]
    );
}

#[test]
fn an_empty_policy_removes_nothing() {
    let opsbook = tree(Opsbook::new()).file("ops.yaml", &config("gzip"));
    let dir = opsbook.dir().to_path_buf();
    for day in ["2025-01-10T08:00:00Z", "2025-01-11T08:00:00Z"] {
        Opsbook::new()
            .env("OPSBOOK_NOW", day)
            .args(["--config", "ops.yaml", "backup", "create"])
            .run_in(&dir)
            .expect_exit(0);
    }
    Opsbook::new()
        .args(["--config", "ops.yaml", "backup", "prune"])
        .run_in(&dir)
        .expect_exit(0)
        .stdout_contains("(no retention rule)");
    assert_eq!(std::fs::read_dir(dir.join("dest")).unwrap().count(), 2);
}

#[test]
fn verifying_an_unknown_backup_points_at_the_list() {
    Opsbook::new()
        .file("ops.yaml", &config("zstd"))
        .args([
            "--config",
            "ops.yaml",
            "backup",
            "verify",
            "config-19990101T000000Z",
        ])
        .run()
        .expect_exit(64)
        .stderr_contains(
            "no backup \"config-19990101T000000Z\" in dest (`opsbook backup list` shows the ids)",
        );
}

#[test]
fn a_backup_step_fails_when_backups_or_drills_stop() {
    let opsbook = tree(Opsbook::new())
        .file("ops.yaml", &config("zstd"))
        .file(
            "check.yaml",
            "name: backups\nsteps:\n  - name: config backups\n    backup: { set: config, max_age: 26h, max_drill_age: 8d }\n",
        );
    let dir = opsbook.dir().to_path_buf();
    let at = |now: &str, args: &[&str]| {
        let mut all = vec!["--config", "ops.yaml"];
        all.extend_from_slice(args);
        Opsbook::new()
            .env("OPSBOOK_NOW", now)
            .args(all)
            .run_in(&dir)
    };
    at("2026-01-10T00:00:00Z", &["run", "check.yaml"])
        .expect_exit(2)
        .stdout_contains("no backup of set config");
    at("2026-01-10T00:00:00Z", &["backup", "create"]).expect_exit(0);
    at("2026-01-10T12:00:00Z", &["run", "check.yaml"])
        .expect_exit(2)
        .stdout_contains(
            "newest backup of config is 12h old, but it has never passed a restore test",
        );
    at(
        "2026-01-10T12:00:00Z",
        &["backup", "verify", "latest", "--restore-test"],
    )
    .expect_exit(0)
    .stdout_contains("restore test passed: 2 files restored");
    let run = at(
        "2026-01-11T00:00:00Z",
        &["run", "check.yaml", "--format", "json"],
    )
    .expect_exit(0);
    let report = run.json();
    let step = &report["checks"]["config backups"];
    assert_eq!(step["severity"], "ok", "{report}");
    assert_eq!(step["newest_age_seconds"], 86400);
    assert_eq!(step["drill_age_seconds"], 43200);
    // The backup job silently stopped: a day and a half later it is critical.
    at("2026-01-11T12:00:01Z", &["run", "check.yaml"])
        .expect_exit(2)
        .stdout_contains("is 1day 12h 1s old, more than 1day 2h");
    // The drills stopped: backups go on, the last drill ages out.
    at("2026-01-19T00:00:00Z", &["backup", "create"]).expect_exit(0);
    at("2026-01-19T01:00:00Z", &["run", "check.yaml"])
        .expect_exit(2)
        .stdout_contains("the last passed restore test is 8days 13h old, more than 8days");
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Wait (at most 60 s) until `ready` says so.
fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !ready() {
        assert!(
            started.elapsed().as_secs() < 60,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn a_killed_backup_is_never_listed_and_the_next_run_and_prune_clean_up() {
    let opsbook = Opsbook::new().file(
        "ops.yaml",
        "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    big:\n      paths: [data]\n      compress: gzip\n    db:\n      command: { run: \"echo dump; sleep 2\", shell: true, file: db.sql }\n",
    );
    let dir = opsbook.dir().to_path_buf();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    for i in 0..8 {
        std::fs::write(
            dir.join(format!("data/{i}.bin")),
            crate::common::noise(1 << 20),
        )
        .unwrap();
    }
    let partial = |set: &str| {
        std::fs::read_dir(dir.join("dest"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with(set) && name.ends_with(".partial")
            })
    };
    let kill_when = |set: &str, ready: &dyn Fn() -> bool| {
        let running = Opsbook::new()
            .args(["--config", dir.join("ops.yaml").to_str().unwrap()])
            .args(["backup", "create", set])
            .spawn_in(&dir);
        wait_for(set, ready);
        running.signal(libc::SIGKILL);
        running.finish(std::time::Duration::from_secs(10));
    };
    // While a command source runs.
    kill_when("db", &|| partial("db").is_some());
    // Halfway through the archive.
    kill_when("big", &|| {
        partial("big").is_some_and(|p| {
            std::fs::metadata(p.join("data.tar.gz")).is_ok_and(|m| m.len() > 2 << 20)
        })
    });
    // Right at the start.
    let running = Opsbook::new()
        .args(["--config", dir.join("ops.yaml").to_str().unwrap()])
        .args(["backup", "create", "big"])
        .spawn_in(&dir);
    running.signal(libc::SIGKILL);
    running.finish(std::time::Duration::from_secs(10));
    let list = Opsbook::new()
        .args(["--config", "ops.yaml", "backup", "list", "--format", "json"])
        .run_in(&dir)
        .expect_exit(0)
        .json();
    assert_eq!(
        list,
        serde_json::json!([]),
        "an incomplete backup is listed"
    );
    Opsbook::new()
        .args(["--config", "ops.yaml", "backup", "create", "big"])
        .run_in(&dir)
        .expect_exit(0);
    Opsbook::new()
        .args(["--config", "ops.yaml", "backup", "prune"])
        .run_in(&dir)
        .expect_exit(0);
    let left = names(&dir.join("dest"));
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with("big-") && !left[0].ends_with(".partial"));
    Opsbook::new()
        .args(["--config", "ops.yaml", "backup", "verify", "latest"])
        .run_in(&dir)
        .expect_exit(0);
}

#[test]
fn a_full_disk_fails_cleanly_with_nothing_half_visible() {
    let opsbook = Opsbook::new().file(
        "ops.yaml",
        "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    big:\n      paths: [data]\n",
    );
    let dir = opsbook.dir().to_path_buf();
    let _mounted = crate::common::Mounted::tmpfs(&dir.join("dest"), "1m");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/blob.bin"), crate::common::noise(3 << 20)).unwrap();
    Opsbook::new()
        .args(["--config", "ops.yaml", "backup", "create"])
        .run_in(&dir)
        .expect_exit(1)
        .stderr_contains("No space left on device");
    assert_eq!(names(&dir.join("dest")), Vec::<String>::new());
    Opsbook::new()
        .args(["--config", "ops.yaml", "backup", "list"])
        .run_in(&dir)
        .expect_exit(0);
}

#[test]
fn s3_create_list_verify_restore_prune_against_a_real_s3_server() {
    let s3 = crate::common::s3::S3Server::start("backups");
    let opsbook = tree(Opsbook::new()).file(
        "ops.yaml",
        &format!(
            "state_dir: state\nbackup:\n  destination: s3://backups/opsbook\n  s3: {{ endpoint: \"{}\", region: us-east-1 }}\n  sets:\n    config:\n      paths: [app]\n      exclude: [\"*.pyc\", \"__pycache__\", \".git\"]\n      keep_last: 1\n",
            s3.endpoint()
        ),
    );
    let dir = opsbook.dir().to_path_buf();
    let run = |now: &str, args: &[&str]| {
        let mut all = vec!["--config", "ops.yaml"];
        all.extend_from_slice(args);
        let run = Opsbook::new()
            .env("AWS_ACCESS_KEY_ID", "opsbook-test")
            .env("AWS_SECRET_ACCESS_KEY", "canary-s3-secret")
            .env("OPSBOOK_NOW", now)
            .args(all)
            .run_in(&dir);
        assert!(!run.stdout.contains("canary-s3-secret"), "{}", run.stdout);
        assert!(!run.stderr.contains("canary-s3-secret"), "{}", run.stderr);
        run
    };
    for now in ["2026-01-10T00:00:00Z", "2026-01-11T00:00:00Z"] {
        run(now, &["backup", "create"])
            .expect_exit(0)
            .stdout_contains("in s3://backups/opsbook");
    }
    assert!(
        s3.get("backups", "opsbook/config-20260111T000000Z/manifest.json")
            .is_some()
    );
    // An interrupted upload: data, no manifest. Never listed; prune removes it.
    let leftover = "opsbook/config-20260101T000000Z/data.tar.zst";
    s3.put("backups", leftover, b"half an archive");
    let list = run(
        "2026-01-11T01:00:00Z",
        &["backup", "list", "--format", "json"],
    )
    .expect_exit(0)
    .json();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["config-20260110T000000Z", "config-20260111T000000Z"]);
    run("2026-01-11T01:00:00Z", &["backup", "verify", "latest"])
        .expect_exit(0)
        .stdout_contains("config-20260111T000000Z: verified, 2 files match the manifest");
    run(
        "2026-01-11T01:00:00Z",
        &["restore", "latest", "--to", "restored"],
    )
    .expect_exit(0)
    .stdout_contains("restored 2 files");
    assert_eq!(
        std::fs::read(dir.join("restored/app/main.py")).unwrap(),
        std::fs::read(dir.join("app/main.py")).unwrap()
    );
    run("2026-01-11T01:00:00Z", &["backup", "prune"])
        .expect_exit(0)
        .stdout_contains("config: removed config-20260110T000000Z")
        .stdout_contains("config: removed config-20260101T000000Z");
    assert!(s3.get("backups", leftover).is_none());
    let list = run(
        "2026-01-11T01:00:00Z",
        &["backup", "list", "--format", "json"],
    )
    .expect_exit(0)
    .json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Tampering with the stored object is caught, naming the file.
    let key = "opsbook/config-20260111T000000Z/data.tar.zst";
    let mut bytes = s3.get("backups", key).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    s3.put("backups", key, &bytes);
    let run = run("2026-01-11T01:00:00Z", &["backup", "verify", "latest"]).expect_exit(1);
    assert!(
        run.stderr.contains("app/") || run.stderr.contains("damaged"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_s3_endpoint_that_is_down_fails_promptly_and_clearly() {
    let port = crate::common::server::closed_port();
    let opsbook = tree(Opsbook::new()).file(
        "ops.yaml",
        &format!(
            "state_dir: state\nbackup:\n  destination: s3://backups/opsbook\n  s3: {{ endpoint: \"http://127.0.0.1:{port}\" }}\n  sets:\n    config:\n      paths: [app]\n"
        ),
    );
    let dir = opsbook.dir().to_path_buf();
    let started = std::time::Instant::now();
    let run = Opsbook::new()
        .env("AWS_ACCESS_KEY_ID", "opsbook-test")
        .env("AWS_SECRET_ACCESS_KEY", "canary-s3-secret")
        .args(["--config", "ops.yaml", "backup", "create"])
        .run_in(&dir)
        .expect_exit(1)
        .stderr_contains("s3://backups/opsbook");
    assert!(started.elapsed().as_secs() < 90);
    assert!(!run.stderr.contains("canary-s3-secret"));
}

#[test]
fn a_progress_bar_on_a_terminal_and_none_under_cron() {
    let opsbook = Opsbook::new().file(
        "ops.yaml",
        "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    app:\n      paths: [app]\n",
    );
    let dir = opsbook.dir().to_path_buf();
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(dir.join("app/blob.bin"), crate::common::noise(4 << 20)).unwrap();
    // `script` gives the run a terminal (util-linux, on every Debian).
    let bin = env!("CARGO_BIN_EXE_opsbook");
    let out = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("{bin} --config ops.yaml backup create"),
            "/dev/null",
        ])
        .current_dir(&dir)
        .env("TERM", "xterm")
        .output()
        .expect("script (util-linux)");
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{seen}");
    assert!(seen.contains("/4.00 MiB") && seen.contains("ETA"), "{seen}");
    let run = Opsbook::new()
        .args(["--config", "ops.yaml", "backup", "create"])
        .run_in(&dir)
        .expect_exit(0)
        .stdout_contains("(1 file, ");
    assert!(!run.stderr.contains("ETA"), "{}", run.stderr);
    assert_eq!(run.stderr, "");
}

#[test]
fn a_drill_runbook_checks_the_restored_tree_and_everything_is_audited() {
    let opsbook = tree(Opsbook::new())
        .file(
            "ops.yaml",
            "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    config:\n      paths: [app]\n      verify: { runbook: drill.yaml }\n      keep_last: 1\n",
        )
        .file(
            "drill.yaml",
            "name: config drill\nsteps:\n  - name: main restored\n    file: { path: \"{{ restore_dir }}/app/main.py\", contains: hello }\n  - name: config restored\n    file: { path: \"{{ restore_dir }}/app/conf/app.yaml\" }\n",
        );
    let dir = opsbook.dir().to_path_buf();
    let run = |args: &[&str]| {
        let mut all = vec!["--config", "ops.yaml"];
        all.extend_from_slice(args);
        Opsbook::new()
            .env("LOG_TO_FILE", "true")
            .env("LOG_DIR", "logs")
            .args(all)
            .run_in(&dir)
    };
    run(&["backup", "create"]).expect_exit(0);
    run(&["backup", "verify", "latest", "--restore-test"])
        .expect_exit(0)
        .stdout_contains("restore test passed: 5 files restored, runbook config drill passed");
    // A backup that no longer holds what the drill expects fails it.
    std::fs::remove_file(dir.join("app/conf/app.yaml")).unwrap();
    run(&["backup", "create"]).expect_exit(0);
    run(&["backup", "verify", "latest", "--restore-test"])
        .expect_exit(1)
        .stderr_contains("runbook config drill failed: config restored:");
    run(&["backup", "prune"]).expect_exit(0);
    run(&["restore", "latest", "--to", "out"]).expect_exit(0);
    let audit = std::fs::read_to_string(dir.join("logs/audit.log")).unwrap();
    for action in ["backup.create", "backup.drill", "backup.prune", "restore"] {
        assert!(audit.contains(action), "{action} missing:\n{audit}");
    }
}
