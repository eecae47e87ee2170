//! `opsbook backup create|list|verify` on real trees, read back by GNU tar.

use crate::common::Opsbook;
use std::io::Write;
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
        let stored = |rel: &str| crate::common::stored(&dir, rel);
        for file in ["app/conf/app.yaml", "app/main.py"] {
            assert_eq!(
                std::fs::read(out.join(stored(file))).unwrap(),
                std::fs::read(dir.join(file)).unwrap(),
                "{codec}: {file}"
            );
        }
        for gone in ["app/__pycache__", "app/lib/util.pyc", "app/.git"] {
            assert!(
                !out.join(stored(gone)).exists(),
                "{codec}: {gone} was not excluded"
            );
        }
        assert_eq!(
            std::fs::read_link(out.join(stored("app/current.yaml"))).unwrap(),
            Path::new("conf/app.yaml")
        );
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json")).unwrap())
                .unwrap();
        assert_eq!(manifest["set"], "config");
        let files = manifest["files"].as_array().unwrap();
        assert_eq!(files.len(), 2);
        let main = files
            .iter()
            .find(|f| f["path"] == stored("app/main.py").as_str())
            .unwrap();
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
        std::fs::read(
            dir.join("restored")
                .join(crate::common::stored(&dir, "app/main.py"))
        )
        .unwrap(),
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
    let opsbook = tree(Opsbook::new()).file(
        "ops.yaml",
        "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    config:\n      paths: [app]\n      verify: { runbook: drill.yaml }\n      keep_last: 1\n",
    );
    let dir = opsbook.dir().to_path_buf();
    let app = crate::common::stored(&dir, "app");
    std::fs::write(
        dir.join("drill.yaml"),
        format!("name: config drill\nsteps:\n  - name: main restored\n    file: {{ path: \"{{{{ restore_dir }}}}/{app}/main.py\", contains: hello }}\n  - name: config restored\n    file: {{ path: \"{{{{ restore_dir }}}}/{app}/conf/app.yaml\" }}\n"),
    )
    .unwrap();
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
    // The first backup passed its drill and stays; one made after the failed one lets
    // retention remove the failed one.
    run(&["backup", "create"]).expect_exit(0);
    run(&["backup", "prune"]).expect_exit(0);
    run(&["restore", "latest", "--to", "out"]).expect_exit(0);
    let audit = std::fs::read_to_string(dir.join("logs/audit.log")).unwrap();
    for action in ["backup.create", "backup.drill", "backup.prune", "restore"] {
        assert!(audit.contains(action), "{action} missing:\n{audit}");
    }
}

/// Run opsbook with `args` in `dir` (config `ops.yaml`).
fn ops(dir: &Path, args: &[&str]) -> crate::common::Run {
    let mut all = vec!["--config", "ops.yaml"];
    all.extend_from_slice(args);
    Opsbook::new().args(all).run_in(dir)
}

/// GNU tar's listing of an archive, names byte for byte.
fn gnu_tar_list(archive: &Path) -> Vec<u8> {
    let out = std::process::Command::new("tar")
        .args(["--quoting-style=literal", "-tf"])
        .arg(archive)
        .output()
        .expect("GNU tar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// bsdtar's listing of an archive.
fn bsdtar_list(archive: &Path) -> String {
    let out = std::process::Command::new("bsdtar")
        .arg("-tf")
        .arg(archive)
        .output()
        .expect("bsdtar (libarchive-tools)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn paths_with_the_same_name_are_stored_under_their_full_paths_and_restore() {
    let opsbook = Opsbook::new();
    let dir = opsbook.dir().to_path_buf();
    let _opsbook = opsbook
        .file("x/etc/app/x.conf", "etc side\n")
        .file("x/srv/app/x.conf", "srv side\n")
        .file("x/srv/app/data/item.txt", "item\n")
        .file(
            "ops.yaml",
            &format!(
                "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    app:\n      paths: [{0}/x/etc/app, {0}/x/srv/app]\n    here:\n      paths: [.]\n      exclude: [dest, state, ops.yaml]\n",
                dir.display()
            ),
        );
    let etc = crate::common::stored(&dir, "x/etc/app/x.conf");
    let srv = crate::common::stored(&dir, "x/srv/app/x.conf");
    ops(&dir, &["backup", "create", "app"]).expect_exit(0);
    let archive = crate::common::only_backup(&dir).join("data.tar.zst");
    let gnu = String::from_utf8(gnu_tar_list(&archive)).unwrap();
    let bsd = bsdtar_list(&archive);
    for listing in [&gnu, &bsd] {
        let names: Vec<&str> = listing.lines().collect();
        assert!(names.contains(&etc.as_str()), "{listing}");
        assert!(names.contains(&srv.as_str()), "{listing}");
        assert!(!names.iter().any(|n| n.starts_with("app/")), "{listing}");
    }
    ops(&dir, &["backup", "verify", "latest"])
        .expect_exit(0)
        .stdout_contains("verified, 3 files match the manifest");
    ops(&dir, &["restore", "latest", "--to", "out"]).expect_exit(0);
    assert_eq!(
        std::fs::read_to_string(dir.join("out").join(&etc)).unwrap(),
        "etc side\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("out").join(&srv)).unwrap(),
        "srv side\n"
    );
    // `paths: [.]` is stored under the directory's real path, not as `root/` or `./`.
    let sub = dir.join("x");
    Opsbook::new()
        .args(["--config", dir.join("ops.yaml").to_str().unwrap()])
        .args(["backup", "create", "here"])
        .run_in(&sub)
        .expect_exit(0);
    let here = std::fs::read_dir(dir.join("x/dest"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let gnu = String::from_utf8(gnu_tar_list(&here.join("data.tar.zst"))).unwrap();
    assert!(
        gnu.lines()
            .any(|n| n == crate::common::stored(&dir, "x/srv/app/data/item.txt")),
        "{gnu}"
    );
    assert!(
        gnu.lines()
            .all(|n| n.starts_with(&crate::common::stored(&dir, "x"))),
        "{gnu}"
    );
}

/// A backup made before members were full paths (`app/…`), by GNU tar and a manifest of
/// that time, still verifies and restores.
#[test]
fn backups_in_the_older_layout_still_verify_and_restore() {
    let opsbook = tree(Opsbook::new()).file("ops.yaml", &config("gzip"));
    let dir = opsbook.dir().to_path_buf();
    let id = "config-20200101T000000Z";
    let backup = dir.join("dest").join(id);
    std::fs::create_dir_all(&backup).unwrap();
    let status = std::process::Command::new("tar")
        .args(["-czf"])
        .arg(backup.join("data.tar.gz"))
        .args(["-C"])
        .arg(&dir)
        .arg("app/main.py")
        .status()
        .expect("GNU tar");
    assert!(status.success());
    let manifest = serde_json::json!({
        "id": id, "set": "config", "created": "2020-01-01T00:00:00Z", "host": "old",
        "tool_version": "0.1.0", "compression": "gzip", "archive": "data.tar.gz",
        "archive_bytes": std::fs::metadata(backup.join("data.tar.gz")).unwrap().len(),
        "files": [{"path": "app/main.py", "size": 15, "mode": 420, "mtime": 0,
                   "sha256": sha256_of(&dir.join("app/main.py"))}],
    });
    std::fs::write(backup.join("manifest.json"), manifest.to_string()).unwrap();
    ops(&dir, &["backup", "verify", id])
        .expect_exit(0)
        .stdout_contains("verified, 1 file matches the manifest");
    ops(&dir, &["restore", id, "--to", "old"]).expect_exit(0);
    assert_eq!(
        std::fs::read_to_string(dir.join("old/app/main.py")).unwrap(),
        "print('hello')\n"
    );
}

#[test]
fn names_that_are_not_utf8_are_kept_byte_exact() {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let opsbook = Opsbook::new().file("ops.yaml", &config("zstd"));
    let dir = opsbook.dir().to_path_buf();
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    let ff = std::ffi::OsStr::from_bytes(b"bad\xffname");
    let fe = std::ffi::OsStr::from_bytes(b"bad\xfename");
    std::fs::write(app.join(ff), "ff\n").unwrap();
    std::fs::write(app.join(fe), "fe\n").unwrap();
    std::os::unix::fs::symlink(ff, app.join("link")).unwrap();
    ops(&dir, &["backup", "create"]).expect_exit(0);
    let backup = crate::common::only_backup(&dir);
    let archive = backup.join("data.tar.zst");
    let prefix = crate::common::stored(&dir, "app/");
    let gnu = gnu_tar_list(&archive);
    for name in [&b"bad\xffname"[..], b"bad\xfename"] {
        let mut line = prefix.as_bytes().to_vec();
        line.extend_from_slice(name);
        assert!(
            gnu.split(|b| *b == b'\n').any(|l| l == line.as_slice()),
            "GNU tar does not list {line:?}: {gnu:?}"
        );
    }
    assert!(!gnu.windows(3).any(|w| w == "\u{fffd}".as_bytes()));
    // bsdtar prints the raw bytes escaped in octal (U+FFFD would show as \357\277\275)…
    let bsd_list = bsdtar_list(&archive);
    for escaped in ["bad\\377name", "bad\\376name"] {
        assert!(
            bsd_list.lines().any(|l| l == format!("{prefix}{escaped}")),
            "bsdtar does not list {escaped}: {bsd_list}"
        );
    }
    // …and its extraction has the exact names.
    let bsd = dir.join("bsd");
    std::fs::create_dir_all(&bsd).unwrap();
    let status = std::process::Command::new("bsdtar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&bsd)
        .status()
        .expect("bsdtar");
    assert!(status.success());
    let extracted = bsd.join(crate::common::stored(&dir, "app"));
    assert_eq!(std::fs::read_to_string(extracted.join(ff)).unwrap(), "ff\n");
    assert_eq!(std::fs::read_to_string(extracted.join(fe)).unwrap(), "fe\n");
    assert_eq!(
        std::fs::read_link(extracted.join("link"))
            .unwrap()
            .into_os_string()
            .into_vec(),
        b"bad\xffname"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json")).unwrap())
            .unwrap();
    let hexes: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["path_hex"].as_str())
        .collect();
    assert_eq!(hexes.len(), 2, "{manifest}");
    assert!(hexes.iter().any(|h| h.ends_with("626164ff6e616d65")));
    assert!(hexes.iter().any(|h| h.ends_with("626164fe6e616d65")));
    let link = manifest["others"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["target"].is_string())
        .unwrap();
    assert_eq!(link["target_hex"], "626164ff6e616d65");
    ops(&dir, &["backup", "verify", "latest"])
        .expect_exit(0)
        .stdout_contains("verified, 2 files match the manifest");
}

/// A sqlite3 process holding `BEGIN EXCLUSIVE` open (its stdin is a pipe we keep).
struct SqliteWriter(std::process::Child);

impl SqliteWriter {
    fn lock(db: &Path) -> SqliteWriter {
        use std::io::{BufRead, Write};
        let mut child = std::process::Command::new("sqlite3")
            .arg(db)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sqlite3");
        let stdin = child.stdin.as_mut().unwrap();
        stdin
            .write_all(b"BEGIN EXCLUSIVE;\nINSERT INTO items VALUES (9999, 'uncommitted');\nSELECT 'locked';\n")
            .unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
        SqliteWriter(child)
    }
}

impl Drop for SqliteWriter {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

#[test]
fn a_dump_that_failed_fails_the_backup_and_sqlite_files_use_the_online_backup() {
    let opsbook = Opsbook::new().file(
        "ops.yaml",
        "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    files:\n      paths: [data]\n    dump:\n      command: { run: \"sqlite3 data/app.db .dump\", file: app.sql }\n    noisy:\n      command: { run: \"echo 'CREATE TABLE t(x);'; echo 'ERROR: connection lost' >&2\", shell: true, file: t.sql }\n    empty:\n      command: { run: \"true\", file: e.sql }\n",
    );
    let dir = opsbook.dir().to_path_buf();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let db = dir.join("data/app.db");
    let sqlite = |db: &Path, sql: &str| {
        let out = std::process::Command::new("sqlite3")
            .arg(db)
            .arg(sql)
            .output()
            .expect("sqlite3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    sqlite(
        &db,
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) INSERT INTO items SELECT i, 'item ' || i FROM n;",
    );
    let listed = || {
        ops(&dir, &["backup", "list", "--format", "json"])
            .expect_exit(0)
            .json()
    };
    {
        let _writer = SqliteWriter::lock(&db);
        ops(&dir, &["backup", "create", "dump"])
            .expect_exit(1)
            .stderr_contains("command source app.sql: the SQLite dump did not complete");
        ops(&dir, &["backup", "create", "files"])
            .expect_exit(1)
            .stderr_contains("app.db: SQLite online backup failed")
            .stderr_contains("database is locked");
        assert_eq!(listed(), serde_json::json!([]));
    }
    ops(&dir, &["backup", "create", "noisy"])
        .expect_exit(1)
        .stderr_contains("exited 0 but reported an error: ERROR: connection lost");
    ops(&dir, &["backup", "create", "empty"])
        .expect_exit(1)
        .stderr_contains("the command printed nothing");
    assert_eq!(listed(), serde_json::json!([]));
    let names: Vec<_> = std::fs::read_dir(dir.join("dest")).unwrap().collect();
    assert!(names.is_empty(), "{names:?}");
    // Writer gone: both succeed; the stored database is a consistent copy.
    ops(&dir, &["backup", "create", "files"]).expect_exit(0);
    ops(&dir, &["backup", "create", "dump"]).expect_exit(0);
    ops(&dir, &["backup", "verify", "latest", "--set", "files"]).expect_exit(0);
    ops(
        &dir,
        &["restore", "latest", "--set", "files", "--to", "out"],
    )
    .expect_exit(0);
    let restored = dir
        .join("out")
        .join(crate::common::stored(&dir, "data/app.db"));
    assert_eq!(sqlite(&restored, "SELECT count(*) FROM items"), "300");
    assert_eq!(sqlite(&restored, "PRAGMA integrity_check"), "ok");
}

#[test]
fn an_unsupported_destination_scheme_is_a_config_error() {
    let opsbook = tree(Opsbook::new()).file(
        "ops.yaml",
        "state_dir: state\nbackup:\n  destination: sftp://host/backups\n  sets:\n    config:\n      paths: [app]\n",
    );
    let dir = opsbook.dir().to_path_buf();
    for args in [
        &["backup", "create"][..],
        &["backup", "list"],
        &["backup", "prune"],
    ] {
        ops(&dir, args)
            .expect_exit(78)
            .stderr_contains("ops.yaml")
            .stderr_contains("does not support `sftp://` destinations")
            .stderr_contains("a local directory")
            .stderr_contains("s3://BUCKET/PREFIX");
    }
    assert!(!dir.join("sftp:").exists());
}

#[test]
fn retention_never_removes_the_newest_or_the_last_drilled_backup() {
    let opsbook = tree(Opsbook::new()).file(
        "ops.yaml",
        &format!("{}      keep_last: 0\n", config("gzip")),
    );
    let dir = opsbook.dir().to_path_buf();
    for day in [
        "2025-03-01T08:00:00Z",
        "2025-03-02T08:00:00Z",
        "2025-03-03T08:00:00Z",
    ] {
        Opsbook::new()
            .env("OPSBOOK_NOW", day)
            .args(["--config", "ops.yaml", "backup", "create"])
            .run_in(&dir)
            .expect_exit(0);
    }
    ops(
        &dir,
        &[
            "backup",
            "verify",
            "config-20250301T080000Z",
            "--restore-test",
        ],
    )
    .expect_exit(0);
    ops(&dir, &["backup", "prune"])
        .expect_exit(0)
        .stdout_contains("config: keep config-20250303T080000Z (newest complete backup)")
        .stdout_contains("config: keep config-20250301T080000Z (newest passed restore test)")
        .stdout_contains("config: removed config-20250302T080000Z");
    assert_eq!(
        names(&dir.join("dest")),
        ["config-20250301T080000Z", "config-20250303T080000Z"]
    );
}

#[test]
fn a_write_error_never_publishes_a_backup() {
    let opsbook = tree(Opsbook::new()).file("ops.yaml", &config("zstd"));
    let dir = opsbook.dir().to_path_buf();
    // The fifth write is the archive's (the lock file takes the first four): before, the
    // error was swallowed when the compressor was dropped and an empty archive listed.
    let out = std::process::Command::new("strace")
        .args([
            "-f",
            "-o",
            "/dev/null",
            "-e",
            "inject=write:error=ENOSPC:when=5",
        ])
        .arg(env!("CARGO_BIN_EXE_opsbook"))
        .args(["--config", "ops.yaml", "backup", "create"])
        .current_dir(&dir)
        .output()
        .expect("strace");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert_eq!(names(&dir.join("dest")), Vec::<String>::new());
    ops(&dir, &["backup", "verify", "latest"])
        .expect_exit(64)
        .stderr_contains("no backup \"latest\"");
    // Unhindered, the same backup is made.
    ops(&dir, &["backup", "create"]).expect_exit(0);
}

#[test]
fn prune_trusts_the_name_not_the_manifest_and_leftovers_match_their_set_exactly() {
    let opsbook = tree(Opsbook::new()).file(
        "ops.yaml",
        "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    app:\n      paths: [app]\n      keep_last: 1\n    app-db:\n      paths: [app]\n      keep_last: 1\n",
    );
    let dir = opsbook.dir().to_path_buf();
    for day in ["2025-03-01T08:00:00Z", "2025-03-02T08:00:00Z"] {
        Opsbook::new()
            .env("OPSBOOK_NOW", day)
            .args(["--config", "ops.yaml", "backup", "create", "app"])
            .run_in(&dir)
            .expect_exit(0);
    }
    let dest = dir.join("dest");
    // A copy of the older backup under a newer name, and a manifest naming a directory.
    let copy = dest.join("app-20250309T000000Z");
    std::fs::create_dir_all(&copy).unwrap();
    for file in ["data.tar.zst", "manifest.json"] {
        std::fs::copy(
            dest.join("app-20250301T080000Z").join(file),
            copy.join(file),
        )
        .unwrap();
    }
    let victim = dir.join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("keep.txt"), "precious\n").unwrap();
    let forged = dest.join("app-20250101T000000Z");
    std::fs::create_dir_all(&forged).unwrap();
    let mut manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dest.join("app-20250301T080000Z/manifest.json")).unwrap(),
    )
    .unwrap();
    manifest["id"] = victim.display().to_string().into();
    manifest["created"] = "2020-01-01T00:00:00Z".into();
    std::fs::write(forged.join("manifest.json"), manifest.to_string()).unwrap();
    // Another set's run in progress.
    std::fs::create_dir_all(dest.join("app-db-20250302T080000Z.partial")).unwrap();
    std::fs::create_dir_all(dest.join("app-20250302T070000Z.partial")).unwrap();
    let run = ops(&dir, &["backup", "prune", "app"])
        .expect_exit(1)
        .stdout_contains("app: keep app-20250302T080000Z")
        .stdout_contains("app: removed app-20250301T080000Z")
        .stdout_contains("app: removed app-20250302T070000Z.partial")
        .stderr_contains("app-20250309T000000Z: its manifest says id \"app-20250301T080000Z\"")
        .stderr_contains("app-20250101T000000Z: its manifest says id");
    assert!(!run.stdout.contains("app-db-"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("app-20250309T000000Z"),
        "{}",
        run.stdout
    );
    assert_eq!(
        std::fs::read_to_string(victim.join("keep.txt")).unwrap(),
        "precious\n"
    );
    assert_eq!(
        names(&dest),
        [
            "app-20250101T000000Z",
            "app-20250302T080000Z",
            "app-20250309T000000Z",
            "app-db-20250302T080000Z.partial"
        ]
    );
    // The copy is not a backup: not listed, not found by its name.
    let list = ops(&dir, &["backup", "list", "--format", "json"]).expect_exit(0);
    assert_eq!(list.json().as_array().unwrap().len(), 1);
    ops(&dir, &["backup", "prune", "app-db"])
        .expect_exit(0)
        .stdout_contains("app-db: removed app-db-20250302T080000Z.partial");
}

#[test]
fn backups_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let opsbook = tree(Opsbook::new()).file(
        "ops.yaml",
        "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    config:\n      paths: [app]\n      command: { run: \"echo secret\", file: s.txt }\n",
    );
    let dir = opsbook.dir().to_path_buf();
    // Everyone may walk the test directory: only the backup's own modes keep others out.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = env!("CARGO_BIN_EXE_opsbook");
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("umask 000; exec {bin} --config ops.yaml backup create"),
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let backup = crate::common::only_backup(&dir);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&dir.join("dest")), 0o700);
    assert_eq!(mode(&backup), 0o700);
    for file in ["data.tar.zst", "manifest.json"] {
        assert_eq!(mode(&backup.join(file)), 0o600, "{file}");
    }
    // Even with the directories opened up, nobody cannot read a file.
    for d in [dir.join("dest"), backup.clone()] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let read = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(backup.join("manifest.json"))
        .output()
        .expect("setpriv (util-linux)");
    assert!(!read.status.success(), "nobody read the manifest");
    assert!(String::from_utf8_lossy(&read.stderr).contains("Permission denied"));
}

#[test]
fn a_file_growing_during_a_backup_is_stored_at_its_opened_size_with_a_warning() {
    let opsbook = Opsbook::new().file(
        "ops.yaml",
        "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    logs:\n      paths: [app.log]\n",
    );
    let dir = opsbook.dir().to_path_buf();
    let log = dir.join("app.log");
    std::fs::write(&log, "line 1\n").unwrap();
    // The seam stops opsbook right after it opened the file and read its size.
    let running = Opsbook::new()
        .env("OPSBOOK_TEST_STOP_AT", "backup-file-opened")
        .args(["--config", dir.join("ops.yaml").to_str().unwrap()])
        .args(["backup", "create"])
        .spawn_in(&dir);
    crate::common::wait_stopped(running.child.id());
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"line 2, written during the backup\n")
        .unwrap();
    running.signal(libc::SIGCONT);
    let run = running.finish(std::time::Duration::from_secs(60));
    let run = run
        .expect_exit(0)
        .stderr_contains("app.log: file grew while it was backed up; stored its first 7 bytes");
    drop(run);
    let backup = crate::common::only_backup(&dir);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["files"][0]["size"], 7);
    ops(&dir, &["backup", "verify", "latest"]).expect_exit(0);
}

#[test]
fn a_destination_inside_a_backed_up_path_is_never_backed_up() {
    let opsbook = Opsbook::new()
        .file(
            "ops.yaml",
            "state_dir: state\nbackup:\n  destination: app/backups\n  sets:\n    app:\n      paths: [app]\n",
        )
        .file("app/conf.yaml", "port: 80\n");
    let dir = opsbook.dir().to_path_buf();
    // Twice: the second would otherwise hold the first backup, and its own partial archive.
    for _ in 0..2 {
        let run = ops(&dir, &["backup", "create", "app"]).expect_exit(0);
        assert!(!run.stderr.contains("grew"), "{}", run.stderr);
    }
    let mut backups: Vec<_> = std::fs::read_dir(dir.join("app/backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    backups.sort();
    assert_eq!(backups.len(), 2, "{backups:?}");
    let listing = String::from_utf8(gnu_tar_list(&backups[1].join("data.tar.zst"))).unwrap();
    let mut members: Vec<&str> = listing.lines().collect();
    members.sort();
    let app = crate::common::stored(&dir, "app");
    assert_eq!(
        members,
        [app.clone(), format!("{app}/conf.yaml")],
        "{listing}"
    );
    ops(&dir, &["backup", "verify", "latest"]).expect_exit(0);
    // The destination as the path itself would back up nothing: refused, not an empty
    // backup reported as made.
    std::fs::write(
        dir.join("ops.yaml"),
        "state_dir: state\nbackup:\n  destination: app/backups\n  sets:\n    app:\n      paths: [app/backups]\n",
    )
    .unwrap();
    let run = ops(&dir, &["backup", "create", "app"])
        .expect_exit(1)
        .stderr_contains("app/backups is the backup destination itself");
    drop(run);
}

#[test]
fn a_set_path_that_is_a_symlink_is_stored_as_a_link_and_the_backup_restores() {
    let opsbook = Opsbook::new()
        .file(
            "ops.yaml",
            "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    app:\n      paths: [current]\n",
        )
        .file("releases/42/app.py", "print('42')\n");
    let dir = opsbook.dir().to_path_buf();
    std::os::unix::fs::symlink("releases/42", dir.join("current")).unwrap();
    let run = ops(&dir, &["backup", "create", "app"])
        .expect_exit(0)
        .stderr_contains("current is a symlink: stored as a link");
    drop(run);
    // Entries stored under the link would be refused by every restore (never written
    // through a symlink): the backup would be made, listed and verified, yet useless.
    let listing = String::from_utf8(gnu_tar_list(
        &crate::common::only_backup(&dir).join("data.tar.zst"),
    ))
    .unwrap();
    assert_eq!(listing.lines().count(), 1, "{listing}");
    ops(&dir, &["backup", "verify", "latest", "--restore-test"]).expect_exit(0);
    ops(&dir, &["restore", "latest", "--to", "out"]).expect_exit(0);
    let link = dir.join("out").join(crate::common::stored(&dir, "current"));
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("releases/42"));
    // Asked for with a slash, what it points to is backed up, as a directory.
    std::fs::write(
        dir.join("ops.yaml"),
        "state_dir: state\nbackup:\n  destination: dest2\n  sets:\n    app:\n      paths: [current/]\n",
    )
    .unwrap();
    ops(&dir, &["backup", "create", "app"]).expect_exit(0);
    ops(&dir, &["restore", "latest", "--to", "out2"]).expect_exit(0);
    let file = dir
        .join("out2")
        .join(crate::common::stored(&dir, "current/app.py"));
    assert_eq!(std::fs::read_to_string(file).unwrap(), "print('42')\n");
}

#[test]
fn files_replaced_or_removed_during_a_backup_are_left_out_never_read_through_or_waited_on() {
    let opsbook = Opsbook::new()
        .file(
            "ops.yaml",
            "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    app:\n      paths: [app]\n",
        )
        .file("app/a", "a\n")
        .file("app/b", "b\n")
        .file("app/c", "c\n")
        .file("app/d", "d\n")
        .file("secret", "TOPSECRET\n");
    let dir = opsbook.dir().to_path_buf();
    // The seam stops opsbook each time it has opened a file: after the first (`a`), with
    // the directory already read, b becomes a link to a file outside the set, c a FIFO
    // (which a plain open would wait on forever), and d goes.
    let running = Opsbook::new()
        .env("OPSBOOK_TEST_STOP_AT", "backup-file-opened")
        .args(["--config", dir.join("ops.yaml").to_str().unwrap()])
        .args(["backup", "create"])
        .spawn_in(&dir);
    crate::common::wait_stopped(running.child.id());
    for name in ["b", "c", "d"] {
        std::fs::remove_file(dir.join("app").join(name)).unwrap();
    }
    std::os::unix::fs::symlink(dir.join("secret"), dir.join("app/b")).unwrap();
    let fifo = std::ffi::CString::new(dir.join("app/c").to_str().unwrap()).unwrap();
    // SAFETY: a valid C string; mkfifo has no other effect.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    running.signal(libc::SIGCONT);
    let run = running.finish(std::time::Duration::from_secs(60));
    let run = run
        .expect_exit(0)
        .stderr_contains("app/d: removed since its directory was read")
        .stderr_contains("app/b: replaced by a symlink (never read through)")
        .stderr_contains("app/c: replaced by something that is not a regular file");
    drop(run);
    let archive = crate::common::only_backup(&dir).join("data.tar.zst");
    let listing = String::from_utf8(gnu_tar_list(&archive)).unwrap();
    let a = crate::common::stored(&dir, "app/a");
    assert!(listing.lines().any(|l| l == a), "{listing}");
    assert_eq!(listing.lines().count(), 2, "{listing}");
    let all = std::process::Command::new("tar")
        .args(["--zstd", "-xOf"])
        .arg(&archive)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&all.stdout).contains("TOPSECRET"));
    ops(&dir, &["backup", "verify", "latest"]).expect_exit(0);
}

#[test]
fn a_directory_replaced_by_a_link_during_a_backup_is_never_walked_through() {
    let opsbook = Opsbook::new()
        .file(
            "ops.yaml",
            "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    app:\n      paths: [app]\n",
        )
        .file("app/a", "a\n")
        .file("app/sub/x", "x\n")
        .file("elsewhere/key", "TOPSECRET\n");
    let dir = opsbook.dir().to_path_buf();
    let running = Opsbook::new()
        .env("OPSBOOK_TEST_STOP_AT", "backup-file-opened")
        .args(["--config", dir.join("ops.yaml").to_str().unwrap()])
        .args(["backup", "create"])
        .spawn_in(&dir);
    // Stopped after opening app/a; app/ is read already: app/sub becomes a link.
    crate::common::wait_stopped(running.child.id());
    std::fs::rename(dir.join("app/sub"), dir.join("app-sub-moved")).unwrap();
    std::os::unix::fs::symlink(dir.join("elsewhere"), dir.join("app/sub")).unwrap();
    running.signal(libc::SIGCONT);
    // Each later file opened stops it again; go on until it ends.
    let pid = running.child.id();
    let status = format!("/proc/{pid}/status");
    let mut running = running;
    let ended = loop {
        if let Ok(Some(_)) = running.child.try_wait() {
            break true;
        }
        if std::fs::read_to_string(&status).is_ok_and(|s| s.contains("(stopped)")) {
            running.signal(libc::SIGCONT);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(ended);
    let archive = std::fs::read_dir(dir.join("dest"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("data.tar.zst").exists());
    // The backup is made (the swapped directory left out with a warning), not failed.
    let backup = archive.expect("the backup completes");
    let all = std::process::Command::new("tar")
        .args(["--zstd", "-xOf"])
        .arg(backup.join("data.tar.zst"))
        .output()
        .unwrap();
    assert!(all.status.success());
    let all = String::from_utf8_lossy(&all.stdout);
    assert!(all.contains("a\n"), "app/a is stored: {all:?}");
    assert!(!all.contains("TOPSECRET"));
    // Whatever was stored restores, and nothing is restored under the link's name.
    ops(&dir, &["restore", "latest", "--to", "out"]).expect_exit(0);
    let out = dir.join("out");
    let stored = |rel: &str| out.join(crate::common::stored(&dir, rel));
    assert_eq!(std::fs::read(stored("app/a")).unwrap(), b"a\n");
    assert!(std::fs::symlink_metadata(stored("app/sub")).is_err());
}

#[test]
fn a_verbose_dump_naming_an_error_table_is_not_a_failed_dump() {
    // `pg_dump --verbose` names every table on stderr; an application's `error_log` table
    // made every backup of its database fail.
    let opsbook = Opsbook::new().file(
        "ops.yaml",
        "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    db:\n      command: { run: \"echo 'CREATE TABLE error_log(x);'; echo 'pg_dump: dumping contents of table \\\"public.error_log\\\"' >&2\", shell: true, file: db.sql }\n    broken:\n      command: { run: \"echo 'CREATE TABLE t(x);'; echo 'pg_dump: error: connection to server lost' >&2\", shell: true, file: t.sql }\n",
    );
    let dir = opsbook.dir().to_path_buf();
    let run = ops(&dir, &["backup", "create", "db"])
        .expect_exit(0)
        .stderr_contains("dumping contents of table");
    drop(run);
    let run = ops(&dir, &["backup", "create", "broken"])
        .expect_exit(1)
        .stderr_contains(
            "exited 0 but reported an error: pg_dump: error: connection to server lost",
        );
    drop(run);
}

#[test]
fn verify_checks_directories_and_symlinks_against_the_manifest() {
    let opsbook = Opsbook::new()
        .file(
            "ops.yaml",
            "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    app:\n      paths: [app]\n      compress: gzip\n",
        )
        .file("app/a", "a\n");
    let dir = opsbook.dir().to_path_buf();
    std::os::unix::fs::symlink("a", dir.join("app/current")).unwrap();
    ops(&dir, &["backup", "create", "app"]).expect_exit(0);
    let archive = crate::common::only_backup(&dir).join("data.tar.gz");
    // Rewrite the archive: the same files byte for byte (their digests still match), the
    // link pointed elsewhere, one directory more.
    let mut rewritten = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let mut original = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&archive).unwrap(),
    ));
    for entry in original.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let path = entry.path().unwrap().into_owned();
        if header.entry_type() == tar::EntryType::Symlink {
            rewritten
                .append_link(&mut header, &path, "../../../../etc/shadow")
                .unwrap();
        } else {
            rewritten
                .append_data(&mut header, &path, &mut entry)
                .unwrap();
        }
    }
    let mut extra = tar::Header::new_gnu();
    extra.set_entry_type(tar::EntryType::Directory);
    extra.set_mode(0o755);
    extra.set_size(0);
    let extra_name = format!("{}/extra", crate::common::stored(&dir, "app"));
    rewritten
        .append_data(&mut extra, &extra_name, std::io::empty())
        .unwrap();
    let bytes = rewritten.into_inner().unwrap().finish().unwrap();
    std::fs::write(&archive, bytes).unwrap();
    // Restore refuses it whole; verify must not call it verified.
    ops(&dir, &["restore", "latest", "--to", "out"]).expect_exit(1);
    let link = crate::common::stored(&dir, "app/current");
    let run = ops(&dir, &["backup", "verify", "latest"])
        .expect_exit(1)
        .stderr_contains(&format!(
            "{link}: does not match the manifest (kind or link target)"
        ))
        .stderr_contains(&format!(
            "{extra_name}: in the archive but not in the manifest"
        ));
    drop(run);
}

#[test]
fn a_command_source_file_that_is_not_a_plain_name_is_a_config_error() {
    // `file` is stored as commands/FILE and restored to it: `../x` or `a/b` would name a
    // path elsewhere, an empty name a directory.
    for file in ["../../etc/cron.d/x", "a/b", "", "..", "."] {
        let opsbook = Opsbook::new().file(
            "ops.yaml",
            &format!(
                "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    db:\n      command: {{ run: \"echo hi\", file: {file:?} }}\n"
            ),
        );
        let dir = opsbook.dir().to_path_buf();
        let run = ops(&dir, &["config", "validate"])
            .expect_exit(78)
            .stderr_contains("ops.yaml:6:")
            .stderr_contains(&format!(
                "command source `file: {file:?}` must be a plain file name"
            ));
        drop(run);
        assert!(!dir.join("dest").exists());
    }
    // A plain name is fine.
    let opsbook = Opsbook::new().file(
        "ops.yaml",
        "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    db:\n      command: { run: \"echo hi\", file: db.sql }\n",
    );
    ops(opsbook.dir(), &["config", "validate"]).expect_exit(0);
}

#[test]
fn a_deep_tree_is_walked_with_one_descriptor_per_level() {
    // 300 levels of 3 files each, under a limit of 360 open descriptors: the walk holds one
    // per level, never one per entry seen (900 files).
    let opsbook = Opsbook::new().file(
        "ops.yaml",
        "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    deep:\n      paths: [deep]\n",
    );
    let dir = opsbook.dir().to_path_buf();
    let mut level = dir.join("deep");
    for depth in 0..300 {
        std::fs::create_dir_all(&level).unwrap();
        for name in ["a", "b", "c"] {
            std::fs::write(level.join(name), format!("{depth}{name}\n")).unwrap();
        }
        level.push("d");
    }
    let out = std::process::Command::new("prlimit")
        .arg("--nofile=360:360")
        .arg(env!("CARGO_BIN_EXE_opsbook"))
        .args(["--config", "ops.yaml", "backup", "create"])
        .current_dir(&dir)
        .output()
        .expect("prlimit (util-linux)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let backup = crate::common::only_backup(&dir);
    let listing = std::process::Command::new("tar")
        .args(["--zstd", "-tf"])
        .arg(backup.join("data.tar.zst"))
        .output()
        .unwrap();
    assert!(listing.status.success());
    let listing = String::from_utf8_lossy(&listing.stdout);
    let deepest = format!("{}/c", "d/".repeat(299).trim_end_matches('/'));
    assert!(
        listing
            .lines()
            .any(|l| l.ends_with(&format!("deep/{deepest}")))
    );
    // 300 directories and 900 files.
    assert_eq!(listing.lines().count(), 1200);
}

#[test]
fn a_drill_step_runs_the_restore_test_from_a_runbook_and_fails_when_the_check_fails() {
    let opsbook = tree(Opsbook::new()).file(
        "ops.yaml",
        "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    config:\n      paths: [app]\n      verify: { runbook: check.yaml }\n",
    )
    .file(
        "nightly.yaml",
        "name: nightly drill\nsteps:\n  - name: drill config\n    drill: { set: \"{{ set }}\" }\nvars:\n  set: config\n",
    );
    let dir = opsbook.dir().to_path_buf();
    let app = crate::common::stored(&dir, "app");
    std::fs::write(
        dir.join("check.yaml"),
        format!("name: config drill\nsteps:\n  - name: config restored\n    file: {{ path: \"{{{{ restore_dir }}}}/{app}/conf/app.yaml\", contains: postgres }}\n"),
    )
    .unwrap();
    let drilled = || {
        let text = std::fs::read_to_string(dir.join("state/backup-verified.json")).unwrap();
        let records: serde_json::Value = serde_json::from_str(&text).unwrap();
        records["config"]["drilled_id"].as_str().map(String::from)
    };
    ops(&dir, &["backup", "create"]).expect_exit(0);
    let first = crate::common::only_backup(&dir);
    let first = first.file_name().unwrap().to_string_lossy().into_owned();
    ops(&dir, &["run", "nightly.yaml"])
        .expect_exit(0)
        .stdout_contains(&format!("{first}: verified, 5 files match the manifest; restore test passed: 5 files restored, runbook config drill passed"));
    assert_eq!(drilled().as_deref(), Some(first.as_str()));
    // A newer backup without the file the check reads fails its drill: the step is
    // critical, names the failing check, and the record keeps the last passed drill.
    std::fs::remove_file(dir.join("app/conf/app.yaml")).unwrap();
    ops(&dir, &["backup", "create"]).expect_exit(0);
    ops(&dir, &["run", "nightly.yaml"])
        .expect_exit(2)
        .stdout_contains("restore test: runbook config drill failed: config restored:");
    assert_eq!(drilled().as_deref(), Some(first.as_str()));
    // An unknown set is said with the sets there are.
    ops(&dir, &["run", "nightly.yaml", "--var", "set=confg"])
        .expect_exit(3)
        .stdout_contains("no set \"confg\" in `backup.sets`");
}

#[test]
fn a_held_set_lock_stops_create_prune_and_restore_with_exit_75_and_fails_the_step() {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let opsbook = tree(Opsbook::new()).file("ops.yaml", &config("gzip")).file(
        "make.yaml",
        "name: make\nsteps:\n  - name: back up\n    backup: { set: config }\n",
    );
    let dir = opsbook.dir().to_path_buf();
    ops(&dir, &["backup", "create"]).expect_exit(0);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir.join("state/locks"))
        .unwrap();
    let held = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(dir.join("state/locks/backup-config.lock"))
        .unwrap();
    held.lock().unwrap();
    let locked = "backup set \"config\" is locked by another run";
    for args in [
        &["backup", "create"][..],
        &["backup", "prune"],
        &["restore", "latest", "--to", "out"],
    ] {
        ops(&dir, args).expect_exit(75).stderr_contains(locked);
    }
    assert!(!dir.join("out").exists());
    ops(&dir, &["run", "make.yaml"])
        .expect_exit(2)
        .stdout_contains(locked);
    drop(held);
    ops(&dir, &["backup", "prune"]).expect_exit(0);
}

#[test]
fn a_drill_runs_its_runbook_check_from_every_command_and_never_two_at_once() {
    let opsbook = tree(Opsbook::new())
        .file(
            "ops.yaml",
            "state_dir: state\nrunbooks: { dirs: [runbooks] }\nbackup:\n  destination: dest\n  sets:\n    config:\n      paths: [app/conf]\n      verify: { runbook: check }\n    nested:\n      paths: [app/main.py]\n      verify: { runbook: inner }\nincident:\n  dir: incidents\n  diagnosis: { api-unavailable: diagnose }\n",
        )
        .file(
            "runbooks/diagnose.yaml",
            "name: diagnose\nsteps:\n  - name: drill config\n    drill: { set: config }\n",
        )
        .file(
            "runbooks/inner.yaml",
            "name: inner\nsteps:\n  - name: drill config too\n    drill: { set: config }\n",
        );
    let dir = opsbook.dir().to_path_buf();
    let conf = crate::common::stored(&dir, "app/conf/app.yaml");
    std::fs::write(
        dir.join("runbooks/check.yaml"),
        format!("name: check\nsteps:\n  - name: config restored\n    file: {{ path: \"{{{{ restore_dir }}}}/{conf}\", contains: postgres }}\n"),
    )
    .unwrap();
    ops(&dir, &["backup", "create"]).expect_exit(0);
    // An incident's diagnosis runs the drill with its runbook check, as `run` does.
    ops(
        &dir,
        &[
            "incident",
            "declare",
            "--severity",
            "SEV-2",
            "--title",
            "down",
            "--type",
            "api-unavailable",
        ],
    )
    .expect_exit(0);
    let id = std::fs::read_dir(dir.join("incidents"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("INC-"))
        .unwrap();
    ops(&dir, &["incident", "collect", &id]).expect_exit(0);
    let bundle = std::fs::read_dir(dir.join("incidents").join(&id))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .unwrap();
    let listed = std::process::Command::new("tar")
        .arg("-xzOf")
        .arg(&bundle)
        .arg("--wildcards")
        .arg("*/diagnosis-*.json")
        .output()
        .unwrap();
    let diagnosis = String::from_utf8_lossy(&listed.stdout);
    assert!(
        diagnosis.contains("runbook check passed"),
        "the diagnosis ran the drill without its runbook check: {diagnosis}"
    );
    // A drill inside a drill's runbook check is refused, not run beside it (their
    // interrupt handling is the process's): the outer drill fails saying so.
    ops(&dir, &["backup", "create", "nested"]).expect_exit(0);
    ops(
        &dir,
        &[
            "backup",
            "verify",
            "latest",
            "--set",
            "nested",
            "--restore-test",
        ],
    )
    .expect_exit(1)
    .stderr_contains("another restore drill is running in this process");
}
