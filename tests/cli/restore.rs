//! `opsbook restore`: backups and hand-made archives restored byte-identical, and hostile
//! archives refused entry by entry with nothing written anywhere.

use crate::common::Opsbook;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const CONFIG: &str =
    "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    app:\n      paths: [app]\n";
/// The same set, stored with gzip (a flipped byte lands in incompressible data).
const GZIP_CONFIG: &str = "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    app:\n      paths: [app]\n      compress: gzip\n";

fn app_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("app/conf")).unwrap();
    std::fs::write(dir.join("app/conf/app.yaml"), "port: 8000\n").unwrap();
    std::fs::write(dir.join("app/run.sh"), "#!/bin/sh\necho run\n").unwrap();
    std::fs::set_permissions(dir.join("app/run.sh"), PermissionsExt::from_mode(0o750)).unwrap();
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    std::fs::File::options()
        .write(true)
        .open(dir.join("app/conf/app.yaml"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    std::os::unix::fs::symlink("conf/app.yaml", dir.join("app/current.yaml")).unwrap();
}

fn opsbook(dir: &Path, args: &[&str]) -> crate::common::Run {
    let mut all = vec!["--config", "ops.yaml"];
    all.extend_from_slice(args);
    Opsbook::new().args(all).run_in(dir)
}

#[test]
fn a_backup_restores_byte_identical_with_modes_mtimes_and_links() {
    let ops = Opsbook::new().file("ops.yaml", CONFIG);
    let dir = ops.dir().to_path_buf();
    app_tree(&dir);
    opsbook(&dir, &["backup", "create"]).expect_exit(0);
    opsbook(&dir, &["restore", "latest", "--to", "out"])
        .expect_exit(0)
        .stdout_contains("restored 2 files, 2 directories, 1 symlink into out");
    let out = |rel: &str| dir.join("out").join(crate::common::stored(&dir, rel));
    for file in ["app/conf/app.yaml", "app/run.sh"] {
        assert_eq!(
            std::fs::read(out(file)).unwrap(),
            std::fs::read(dir.join(file)).unwrap()
        );
    }
    let run = std::fs::metadata(out("app/run.sh")).unwrap();
    assert_eq!(run.mode() & 0o7777, 0o750);
    let conf = std::fs::metadata(out("app/conf/app.yaml")).unwrap();
    assert_eq!(conf.mtime(), 1_600_000_000);
    assert_eq!(
        std::fs::read_link(out("app/current.yaml")).unwrap(),
        Path::new("conf/app.yaml")
    );
    // No staging directory is left beside the target.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("opsbook-restore")),
        "{names:?}"
    );
}

#[test]
fn existing_files_are_kept_without_force_and_include_picks_paths() {
    let ops = Opsbook::new().file("ops.yaml", CONFIG);
    let dir = ops.dir().to_path_buf();
    app_tree(&dir);
    opsbook(&dir, &["backup", "create"]).expect_exit(0);
    std::fs::write(dir.join("app/conf/app.yaml"), "port: 9999 # edited\n").unwrap();
    std::fs::write(dir.join("app/new.txt"), "not in the backup\n").unwrap();
    let conf = crate::common::stored(&dir, "app/conf/app.yaml");
    // Restoring over the original tree (members are paths relative to /): refused file by
    // file, nothing changed.
    opsbook(&dir, &["restore", "latest", "--to", "/"])
        .expect_exit(1)
        .stderr_contains(&format!(
            "refused {conf}: exists on disk (--force overwrites it)"
        ))
        .stderr_contains("nothing restored");
    assert_eq!(
        std::fs::read_to_string(dir.join("app/conf/app.yaml")).unwrap(),
        "port: 9999 # edited\n"
    );
    opsbook(
        &dir,
        &["restore", "latest", "--to", "/", "--dry-run", "--force"],
    )
    .expect_exit(0)
    .stdout_contains(&format!("would restore {conf}"));
    assert_eq!(
        std::fs::read_to_string(dir.join("app/conf/app.yaml")).unwrap(),
        "port: 9999 # edited\n"
    );
    let include = crate::common::stored(&dir, "app/conf/*");
    opsbook(
        &dir,
        &[
            "restore",
            "latest",
            "--to",
            "/",
            "--force",
            "--include",
            &include,
        ],
    )
    .expect_exit(0)
    .stdout_contains("restored 1 file,");
    assert_eq!(
        std::fs::read_to_string(dir.join("app/conf/app.yaml")).unwrap(),
        "port: 8000\n"
    );
    // Files the backup does not hold are left alone.
    assert!(dir.join("app/new.txt").exists());
}

#[test]
fn a_tar_czf_archive_made_by_gnu_tar_restores() {
    let ops = Opsbook::new();
    let dir = ops.dir().to_path_buf();
    app_tree(&dir);
    let status = std::process::Command::new("tar")
        .args(["-czf", "config_backup_20250115.tar.gz", "app"])
        .current_dir(&dir)
        .status()
        .expect("GNU tar");
    assert!(status.success());
    Opsbook::new()
        .args([
            "restore",
            "--archive",
            "config_backup_20250115.tar.gz",
            "--to",
            "restored",
        ])
        .run_in(&dir)
        .expect_exit(0)
        .stdout_contains("restored 2 files");
    assert_eq!(
        std::fs::read(dir.join("restored/app/run.sh")).unwrap(),
        std::fs::read(dir.join("app/run.sh")).unwrap()
    );
    let conf = std::fs::metadata(dir.join("restored/app/conf/app.yaml")).unwrap();
    assert_eq!(conf.mtime(), 1_600_000_000);
}

/// One raw entry: name, type, link name, contents.
type Raw<'a> = (&'a str, tar::EntryType, &'a str, &'a [u8]);

/// An archive written header by header, so it can hold what no honest tool writes.
fn hostile(entries: &[Raw]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        let mut header = tar::Header::new_gnu();
        let raw = header.as_gnu_mut().unwrap();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

#[test]
fn hostile_archives_are_refused_entry_by_entry_and_nothing_is_written() {
    let ops = Opsbook::new();
    let dir = ops.dir().to_path_buf();
    let outside = dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "keep me\n").unwrap();
    let abs = format!("{}/abs.txt", outside.display());
    let outside_text = outside.display().to_string();
    use tar::EntryType::*;
    let cases: Vec<(&str, Vec<Raw>, &str)> = vec![
        (
            "traversal",
            vec![("../evil.txt", Regular, "", b"pwned\n")],
            "refused ../evil.txt: a `..` path",
        ),
        (
            "absolute",
            vec![(abs.as_str(), Regular, "", b"pwned\n")],
            "an absolute path (would write outside the target)",
        ),
        (
            "symlink-then-file",
            vec![
                ("link", Symlink, outside_text.as_str(), b""),
                ("link/owned.txt", Regular, "", b"pwned\n"),
            ],
            "refused link/owned.txt: goes through the symlink link in the archive",
        ),
        (
            "relative-symlink",
            vec![
                ("a/up", Symlink, "../..", b""),
                ("a/up/owned.txt", Regular, "", b"pwned\n"),
            ],
            "refused a/up: symlink to ../.. leads outside the target",
        ),
        (
            "hardlink-out",
            vec![("hl", Link, "../outside/secret", b"")],
            "refused hl: hardlink to ../outside/secret: a `..` path",
        ),
        (
            "hardlink-missing",
            vec![("hl", Link, "etc/passwd", b"")],
            "which is not a file in the archive",
        ),
        (
            "device",
            vec![
                ("dev/sda", Block, "", b""),
                ("ok.txt", Regular, "", b"fine\n"),
            ],
            "refused dev/sda: a device file",
        ),
    ];
    for (name, entries, message) in &cases {
        let archive = dir.join(format!("{name}.tar"));
        std::fs::write(&archive, hostile(entries)).unwrap();
        let target = dir.join(format!("target-{name}"));
        Opsbook::new()
            .args(["restore", "--archive"])
            .args([archive.to_str().unwrap(), "--to", target.to_str().unwrap()])
            .run_in(&dir)
            .expect_exit(1)
            .stderr_contains(message)
            .stderr_contains("nothing restored");
        assert!(!target.exists(), "{name}: the target was created");
    }
    // Every refused entry is reported, not just the first.
    let all: Vec<_> = cases.iter().flat_map(|(_, e, _)| e.clone()).collect();
    std::fs::write(dir.join("all.tar"), hostile(&all)).unwrap();
    let run = Opsbook::new()
        .args(["restore", "--archive", "all.tar", "--to", "target-all"])
        .run_in(&dir)
        .expect_exit(1);
    for (_, _, message) in &cases {
        assert!(run.stderr.contains(message), "{message}\n{}", run.stderr);
    }
    // Nothing anywhere outside the targets.
    assert!(!dir.join("evil.txt").exists());
    assert!(!outside.join("abs.txt").exists());
    assert!(!outside.join("owned.txt").exists());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    assert_eq!(
        std::fs::read_to_string(outside.join("secret")).unwrap(),
        "keep me\n"
    );
    assert!(!dir.join("target-all").exists());
}

#[test]
fn a_symlink_on_disk_in_the_target_is_not_followed() {
    let ops = Opsbook::new();
    let dir = ops.dir().to_path_buf();
    std::fs::create_dir_all(dir.join("outside")).unwrap();
    std::fs::create_dir_all(dir.join("target")).unwrap();
    std::os::unix::fs::symlink(dir.join("outside"), dir.join("target/app")).unwrap();
    let archive = hostile(&[("app/owned.txt", tar::EntryType::Regular, "", b"pwned\n")]);
    std::fs::write(dir.join("a.tar"), archive).unwrap();
    Opsbook::new()
        .args(["restore", "--archive", "a.tar", "--to", "target", "--force"])
        .run_in(&dir)
        .expect_exit(1)
        .stderr_contains("is a symlink on disk; restoring through it could write outside");
    assert!(!dir.join("outside/owned.txt").exists());
}

#[test]
fn a_truncated_gzip_is_refused_before_anything_is_written() {
    let ops = Opsbook::new();
    let dir = ops.dir().to_path_buf();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/a.bin"), crate::common::noise(512 * 1024)).unwrap();
    std::fs::write(dir.join("data/b.bin"), crate::common::noise(512 * 1024)).unwrap();
    let status = std::process::Command::new("tar")
        .args(["-czf", "full.tar.gz", "data"])
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(dir.join("full.tar.gz")).unwrap();
    std::fs::write(dir.join("cut.tar.gz"), &bytes[..bytes.len() * 3 / 4]).unwrap();
    Opsbook::new()
        .args(["restore", "--archive", "cut.tar.gz", "--to", "out"])
        .run_in(&dir)
        .expect_exit(1)
        .stderr_contains("cut.tar.gz is damaged or truncated");
    assert!(!dir.join("out").exists());
}

#[test]
fn a_tampered_backup_is_not_restored_and_the_target_keeps_its_state() {
    let ops = Opsbook::new().file("ops.yaml", GZIP_CONFIG);
    let dir = ops.dir().to_path_buf();
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(dir.join("app/blob.bin"), crate::common::noise(256 * 1024)).unwrap();
    opsbook(&dir, &["backup", "create"]).expect_exit(0);
    let backup = crate::common::only_backup(&dir);
    let archive = backup.join("data.tar.gz");
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&archive, bytes).unwrap();
    let blob = dir
        .join("target")
        .join(crate::common::stored(&dir, "app/blob.bin"));
    std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
    std::fs::write(&blob, "old state\n").unwrap();
    let run = Opsbook::new()
        .env("LOG_TO_FILE", "true")
        .env("LOG_DIR", "logs")
        .args(["--config", "ops.yaml", "restore", "latest"])
        .args(["--to", "target", "--force"])
        .run_in(&dir)
        .expect_exit(1);
    assert!(
        run.stderr.contains("app/blob.bin") || run.stderr.contains("damaged"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&blob).unwrap(), "old state\n");
    let audit = std::fs::read_to_string(dir.join("logs/audit.log")).unwrap();
    assert!(
        audit.contains("restore") && audit.contains("failed"),
        "{audit}"
    );
}

#[test]
fn postgres_is_backed_up_with_pg_dump_and_restored_with_psql() {
    let pg = crate::common::postgres::Postgres::start();
    pg.sql("postgres", "CREATE DATABASE app");
    pg.sql("postgres", "CREATE DATABASE app_drill");
    pg.sql(
        "app",
        "CREATE TABLE users (id int PRIMARY KEY, name text); \
         INSERT INTO users SELECT g, 'user' || g FROM generate_series(1, 250) g; \
         CREATE TABLE orders (id int, user_id int); \
         INSERT INTO orders SELECT g, g % 250 + 1 FROM generate_series(1, 1000) g;",
    );
    // The password is a secret (from the environment): it must never be shown.
    let url = |db: &str| {
        format!(
            "postgresql://postgres:${{DB_PASSWORD}}@127.0.0.1:{}/{db}",
            pg.port
        )
    };
    let config = format!(
        "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    db:\n      command:\n        run: \"pg_dump --clean --if-exists {app}\"\n        restore: \"psql -X -q -v ON_ERROR_STOP=1 {app}\"\n        test_restore: \"psql -X -q -v ON_ERROR_STOP=1 {drill}\"\n        file: app.sql\n      verify:\n        run: \"test $(psql -X -tA -c 'SELECT count(*) FROM users' {drill}) -eq 250\"\n        shell: true\n",
        app = url("app"),
        drill = url("app_drill"),
    );
    let ops = Opsbook::new().file("ops.yaml", &config);
    let dir = ops.dir().to_path_buf();
    let run = |args: &[&str]| {
        let mut all = vec!["--config", "ops.yaml"];
        all.extend_from_slice(args);
        Opsbook::new()
            .env("DB_PASSWORD", "canary-pg-secret")
            .args(all)
            .run_in(&dir)
    };
    let created = run(&["backup", "create"]).expect_exit(0);
    let backup = crate::common::only_backup(&dir);
    let manifest = std::fs::read_to_string(backup.join("manifest.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(parsed["commands"][0]["file"], "app.sql");
    assert_eq!(parsed["commands"][0]["exit_status"], 0);
    assert_eq!(parsed["commands"][0]["path"], "commands/app.sql");
    pg.sql(
        "app",
        "DROP TABLE users CASCADE; DELETE FROM orders WHERE id > 10",
    );
    let restored = run(&["restore", "latest", "--to", "unused"])
        .expect_exit(0)
        .stdout_contains("commands/app.sql restored by `psql");
    assert_eq!(pg.sql("app", "SELECT count(*) FROM users"), "250");
    assert_eq!(pg.sql("app", "SELECT count(*) FROM orders"), "1000");
    // The drill restores into the isolated database and counts rows there.
    let drilled = run(&["backup", "verify", "latest", "--restore-test"])
        .expect_exit(0)
        .stdout_contains("restore test passed")
        .stdout_contains("passed");
    assert_eq!(pg.sql("app_drill", "SELECT count(*) FROM orders"), "1000");
    let records = std::fs::read_to_string(dir.join("state/backup-verified.json")).unwrap();
    assert!(records.contains("drilled_at"), "{records}");
    for text in [
        &created.stdout,
        &created.stderr,
        &restored.stdout,
        &drilled.stdout,
        &manifest,
    ] {
        assert!(!text.contains("canary-pg-secret"), "{text}");
    }
    // A drill whose check fails is a failed verification, and not recorded.
    pg.sql("app", "DELETE FROM users WHERE id > 100");
    run(&["backup", "create"]).expect_exit(0);
    run(&["backup", "verify", "latest", "--restore-test"])
        .expect_exit(1)
        .stderr_contains("restore test: `test $(psql");
}

#[test]
fn sqlite_dumps_restore_and_a_failing_command_source_fails_the_whole_backup() {
    let ops = Opsbook::new().file(
        "ops.yaml",
        "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    db:\n      paths: [conf]\n      command: { run: \"sqlite3 app.db .dump\", restore: \"sqlite3 app.db\", file: app.sql }\n    broken:\n      paths: [conf]\n      command:\n        run: \"echo half a dump; echo disk full >&2; exit 3\"\n        shell: true\n        file: broken.sql\n",
    );
    let dir = ops.dir().to_path_buf();
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    std::fs::write(dir.join("conf/app.yaml"), "db: app.db\n").unwrap();
    let sqlite = |sql: &str| {
        let out = std::process::Command::new("sqlite3")
            .arg(dir.join("app.db"))
            .arg(sql)
            .output()
            .expect("sqlite3 (apt install sqlite3)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    sqlite(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) INSERT INTO items SELECT i, 'item ' || i FROM n;",
    );
    opsbook(&dir, &["backup", "create", "db"]).expect_exit(0);
    opsbook(&dir, &["backup", "create", "broken"])
        .expect_exit(1)
        .stderr_contains("command source broken.sql: `echo half a dump; echo disk full >&2; exit 3` exited with 3: disk full");
    // Nothing of the failed backup is visible or left behind.
    let names: Vec<_> = std::fs::read_dir(dir.join("dest"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with("db-"), "{names:?}");
    std::fs::remove_file(dir.join("app.db")).unwrap();
    opsbook(
        &dir,
        &[
            "restore",
            "latest",
            "--set",
            "db",
            "--to",
            "restored",
            "--dry-run",
        ],
    )
    .expect_exit(0)
    .stdout_contains("would run `sqlite3 app.db` < commands/app.sql");
    assert!(!dir.join("app.db").exists());
    opsbook(
        &dir,
        &["restore", "latest", "--set", "db", "--to", "restored"],
    )
    .expect_exit(0)
    .stdout_contains("restored 1 file, 1 directory");
    assert_eq!(sqlite("SELECT count(*) FROM items"), "500");
    assert!(
        dir.join("restored")
            .join(crate::common::stored(&dir, "conf/app.yaml"))
            .exists()
    );
    // The dump went to sqlite3, not into the target.
    assert!(!dir.join("restored/commands").exists());
}

#[test]
fn a_killed_restore_leaves_the_old_state_and_the_next_one_cleans_up() {
    let ops = Opsbook::new().file("ops.yaml", GZIP_CONFIG);
    let dir = ops.dir().to_path_buf();
    std::fs::create_dir_all(dir.join("app")).unwrap();
    for i in 0..8 {
        std::fs::write(
            dir.join(format!("app/{i}.bin")),
            crate::common::noise(1 << 20),
        )
        .unwrap();
    }
    opsbook(&dir, &["backup", "create"]).expect_exit(0);
    let app = crate::common::stored(&dir, "app");
    let live = dir.join("live").join(&app);
    std::fs::create_dir_all(&live).unwrap();
    for i in 0..8 {
        std::fs::write(live.join(format!("{i}.bin")), "old state\n").unwrap();
    }
    let staged = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().contains(".live.opsbook-restore-"))
    };
    let running = Opsbook::new()
        .args([
            "--config", "ops.yaml", "restore", "latest", "--to", "live", "--force",
        ])
        .spawn_in(&dir);
    let started = std::time::Instant::now();
    while !staged().is_some_and(|s| s.join(&app).join("0.bin").exists()) {
        assert!(started.elapsed().as_secs() < 60, "the restore never staged");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    running.signal(libc::SIGKILL);
    running.finish(std::time::Duration::from_secs(10));
    for i in 0..8 {
        assert_eq!(
            std::fs::read_to_string(live.join(format!("{i}.bin"))).unwrap(),
            "old state\n"
        );
    }
    opsbook(&dir, &["restore", "latest", "--to", "live", "--force"]).expect_exit(0);
    assert_eq!(
        std::fs::read(live.join("7.bin")).unwrap(),
        std::fs::read(dir.join("app/7.bin")).unwrap()
    );
    assert!(staged().is_none(), "the killed restore's staging was left");
}

/// A backup's manifest lists every entry, so a restore checks the listing instead of
/// reading the archive twice; the archive must then hold exactly what it lists.
#[test]
fn a_restore_trusts_the_listing_only_as_far_as_the_archive_matches_it() {
    let ops = Opsbook::new().file("ops.yaml", CONFIG);
    let dir = ops.dir().to_path_buf();
    app_tree(&dir);
    opsbook(&dir, &["backup", "create"]).expect_exit(0);
    let backup = crate::common::only_backup(&dir);
    let path = backup.join("manifest.json");
    let current = crate::common::stored(&dir, "app/current.yaml");
    let run_sh = crate::common::stored(&dir, "app/run.sh");
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(original["listing"], true);
    let others = original["others"].as_array().unwrap();
    assert!(
        others
            .iter()
            .any(|o| o["path"] == current.as_str() && o["target"] == "conf/app.yaml"),
        "{original}"
    );
    let edit = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut manifest = original.clone();
        change(&mut manifest);
        std::fs::write(&path, serde_json::to_string(&manifest).unwrap()).unwrap();
    };
    // A file the manifest does not list.
    edit(&|m| {
        let files = m["files"].as_array_mut().unwrap();
        files.retain(|f| f["path"] != run_sh.as_str());
    });
    opsbook(&dir, &["restore", "latest", "--to", "out1"])
        .expect_exit(1)
        .stderr_contains(&format!(
            "{run_sh}: in the archive but not in the manifest; nothing restored"
        ));
    assert!(!dir.join("out1").exists());
    let retarget = |target: &str| {
        edit(&|m| {
            for o in m["others"].as_array_mut().unwrap() {
                if o["path"] == current.as_str() {
                    o["target"] = target.into();
                }
            }
        })
    };
    // A symlink pointing elsewhere than listed.
    retarget("conf/other.yaml");
    opsbook(&dir, &["restore", "latest", "--to", "out2"])
        .expect_exit(1)
        .stderr_contains(&format!("{current}: not what the manifest lists"));
    // A listing that would leave the target is refused like an archive entry would be
    // (climbing one level more than the member is deep).
    let climb = format!("{}etc/passwd", "../".repeat(current.split('/').count()));
    retarget(&climb);
    opsbook(&dir, &["restore", "latest", "--to", "out3"])
        .expect_exit(1)
        .stderr_contains(&format!(
            "refused {current}: symlink to {climb} leads outside"
        ));
    // A backup made before listings: the archive is read twice, as for --archive.
    edit(&|m| {
        m["listing"] = false.into();
        m["others"] = serde_json::json!([]);
    });
    opsbook(&dir, &["restore", "latest", "--to", "out4"])
        .expect_exit(0)
        .stdout_contains("restored 2 files, 2 directories, 1 symlink");
    assert!(dir.join("out4").join(&run_sh).exists());
}

#[test]
fn a_missing_archive_or_backup_is_a_usage_error_naming_it() {
    let ops = Opsbook::new().file("ops.yaml", CONFIG);
    let dir = ops.dir().to_path_buf();
    Opsbook::new()
        .args(["restore", "--archive", "nope.tar.gz", "--to", "out"])
        .run_in(&dir)
        .expect_exit(64)
        .stderr_contains("no archive nope.tar.gz");
    opsbook(&dir, &["restore", "app-20200101T000000Z", "--to", "out"])
        .expect_exit(64)
        .stderr_contains("no backup \"app-20200101T000000Z\"")
        .stderr_contains("`opsbook backup list` shows the ids");
    assert!(!dir.join("out").exists());
}
