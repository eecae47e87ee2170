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
    let before = std::fs::metadata(&dir).unwrap().ino();
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
    // A directory that holds restored entries is restored into, not replaced; so is the
    // working directory (`--to .`, the default) under the caller.
    assert_eq!(std::fs::metadata(&dir).unwrap().ino(), before);
    opsbook(&dir, &["restore", "latest", "--force"]).expect_exit(0);
    assert_eq!(std::fs::metadata(&dir).unwrap().ino(), before);
    assert!(dir.join(&conf).exists());
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
    while !staged().is_some_and(|s| s.join("tree").join(&app).join("0.bin").exists()) {
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
    // Symlinks are data, wherever they point, but only as the archive holds them.
    let climb = format!("{}etc/passwd", "../".repeat(current.split('/').count()));
    retarget(&climb);
    opsbook(&dir, &["restore", "latest", "--to", "out3"])
        .expect_exit(1)
        .stderr_contains(&format!("{current}: not what the manifest lists"));
    assert!(!dir.join("out3").exists());
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

/// GNU tar run in `dir`, which must succeed.
fn gnu_tar(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("tar")
        .args(args)
        .current_dir(dir)
        .status()
        .expect("GNU tar");
    assert!(status.success(), "tar {args:?}");
}

/// The one entry called `name` somewhere under `root` (symlinks not followed).
fn find_named(root: &Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(root).ok()?.flatten() {
        let path = entry.path();
        if entry.file_name() == name {
            return Some(path);
        }
        if entry.file_type().unwrap().is_dir()
            && let Some(found) = find_named(&path, name)
        {
            return Some(found);
        }
    }
    None
}

/// A virtualenv's `bin/python -> /usr/bin/python3`, a `current -> /opt/app/releases/42`
/// deploy link and a link climbing out are data: they come back exactly as stored, from a
/// GNU tar archive and from opsbook's own backup.
#[test]
fn absolute_and_outside_symlinks_come_back_exactly_as_stored() {
    let ops = Opsbook::new().file(
        "ops.yaml",
        "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    app:\n      paths: [src]\n",
    );
    let dir = ops.dir().to_path_buf();
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("venv/bin")).unwrap();
    std::fs::create_dir_all(src.join("app/releases/42")).unwrap();
    std::fs::write(src.join("app/releases/42/run.sh"), "echo 42\n").unwrap();
    let links = [
        ("venv/bin/python", "/usr/bin/python3"),
        ("app/current", "/opt/app/releases/42"),
        ("app/up", "../../../etc/hostname"),
    ];
    for (link, target) in links {
        std::os::unix::fs::symlink(target, src.join(link)).unwrap();
    }
    gnu_tar(&dir, &["-czf", "links.tar.gz", "-C", "src", "."]);
    Opsbook::new()
        .args(["restore", "--archive", "links.tar.gz", "--to", "out"])
        .run_in(&dir)
        .expect_exit(0)
        .stdout_contains("1 file, 5 directories, 3 symlinks");
    for (link, target) in links {
        assert_eq!(
            std::fs::read_link(dir.join("out").join(link)).unwrap(),
            Path::new(target)
        );
    }
    // The same tree through a backup (wherever the backup puts it inside the target).
    opsbook(&dir, &["backup", "create"]).expect_exit(0);
    opsbook(&dir, &["restore", "latest", "--to", "restored"]).expect_exit(0);
    for (link, target) in links {
        let name = link.rsplit('/').next().unwrap();
        let found = find_named(&dir.join("restored"), name).expect(link);
        assert_eq!(std::fs::read_link(found).unwrap(), Path::new(target));
    }
}

/// Names are bytes: two names differing only in bytes that are not UTF-8 stay two files,
/// byte-exact, from GNU tar's archive and from a manifest that lists them in hex.
#[test]
fn names_that_are_not_utf8_restore_byte_exact() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let ops = Opsbook::new().file("ops.yaml", CONFIG);
    let dir = ops.dir().to_path_buf();
    let names: [(&[u8], &str); 2] = [(b"bad\xffname", "ff\n"), (b"bad\xfename", "fe\n")];
    std::fs::create_dir_all(dir.join("src/names")).unwrap();
    for (name, text) in names {
        std::fs::write(dir.join("src/names").join(OsStr::from_bytes(name)), text).unwrap();
    }
    gnu_tar(&dir, &["-cf", "names.tar", "-C", "src", "names"]);
    Opsbook::new()
        .args(["restore", "--archive", "names.tar", "--to", "out"])
        .run_in(&dir)
        .expect_exit(0)
        .stdout_contains("restored 2 files, 1 directory");
    let listed = |root: &Path| {
        let mut found: Vec<Vec<u8>> = std::fs::read_dir(root.join("names"))
            .unwrap()
            .map(|e| e.unwrap().file_name().as_bytes().to_vec())
            .collect();
        found.sort();
        found
    };
    assert_eq!(
        listed(&dir.join("out")),
        vec![b"bad\xfename".to_vec(), b"bad\xffname".to_vec()]
    );
    for (name, text) in names {
        let file = dir.join("out/names").join(OsStr::from_bytes(name));
        assert_eq!(std::fs::read_to_string(file).unwrap(), text);
    }
    // A backup whose manifest lists the names in hex (`path_hex`), checked file by file.
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(dir.join("app/x"), "x\n").unwrap();
    opsbook(&dir, &["backup", "create"]).expect_exit(0);
    let backup = crate::common::only_backup(&dir);
    let path = backup.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let archive = manifest["archive"].as_str().unwrap().to_string();
    std::fs::copy(dir.join("names.tar"), backup.join(&archive)).unwrap();
    let sha256 = |file: &Path| {
        let out = std::process::Command::new("sha256sum")
            .arg(file)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)[..64].to_string()
    };
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let files: Vec<serde_json::Value> = names
        .iter()
        .map(|(name, text)| {
            let mut full = b"names/".to_vec();
            full.extend_from_slice(name);
            serde_json::json!({
                "path": String::from_utf8_lossy(&full),
                "path_hex": hex(&full),
                "size": text.len(),
                "mode": 0o644,
                "mtime": 0,
                "sha256": sha256(&dir.join("src").join(OsStr::from_bytes(&full))),
            })
        })
        .collect();
    manifest["files"] = files.into();
    manifest["others"] = serde_json::json!([{ "path": "names", "mode": 0o755, "mtime": 0 }]);
    manifest["listing"] = true.into();
    std::fs::write(&path, serde_json::to_string(&manifest).unwrap()).unwrap();
    opsbook(&dir, &["restore", "latest", "--to", "from-backup"])
        .expect_exit(0)
        .stdout_contains("restored 2 files, 1 directory");
    assert_eq!(listed(&dir.join("from-backup")), listed(&dir.join("out")));
    // One file's content swapped for the other's is caught against the manifest.
    manifest["files"][0]["sha256"] = manifest["files"][1]["sha256"].clone();
    std::fs::write(&path, serde_json::to_string(&manifest).unwrap()).unwrap();
    opsbook(&dir, &["restore", "latest", "--to", "tampered"])
        .expect_exit(1)
        .stderr_contains("does not match the manifest");
    assert!(!dir.join("tampered").exists());
}

/// An archive restoring `app/new.txt` and `app/conf/c.yaml` made by GNU tar in `dir`.
fn app_archive(dir: &Path) {
    std::fs::create_dir_all(dir.join("src/app/conf")).unwrap();
    std::fs::write(dir.join("src/app/new.txt"), "new\n").unwrap();
    std::fs::write(dir.join("src/app/conf/c.yaml"), "new: true\n").unwrap();
    gnu_tar(dir, &["-cf", "app.tar", "-C", "src", "app"]);
}

/// A directory of the target swapped for a symlink to elsewhere while the restore has
/// staged (stopped there by the test seam) cannot carry a write outside `--to`: the
/// switch goes through handles, not paths. Both for a target that can be exchanged whole
/// and for a mount point, where entries are renamed in one by one.
#[test]
fn a_directory_swapped_for_a_symlink_during_a_restore_cannot_lead_it_outside() {
    let ops = Opsbook::new();
    let dir = ops.dir().to_path_buf();
    app_archive(&dir);
    std::fs::create_dir_all(dir.join("mnt")).unwrap();
    let _mounted = crate::common::Mounted::tmpfs(&dir.join("mnt"), "8m");
    for target in ["live", "mnt"] {
        let outside = dir.join(format!("outside-{target}"));
        std::fs::create_dir_all(&outside).unwrap();
        let live = dir.join(target);
        std::fs::create_dir_all(live.join("app/conf")).unwrap();
        std::fs::write(live.join("app/kept.txt"), "kept\n").unwrap();
        let running = Opsbook::new()
            .env("OPSBOOK_TEST_STOP_AT", "restore-staged")
            .args(["restore", "--archive", "app.tar", "--to", target])
            .spawn_in(&dir);
        crate::common::wait_stopped(running.child.id());
        std::fs::rename(live.join("app"), live.join("moved")).unwrap();
        std::os::unix::fs::symlink(&outside, live.join("app")).unwrap();
        running.signal(libc::SIGCONT);
        let run = running.finish(std::time::Duration::from_secs(60));
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "{target}: written outside the target: {}",
            run.stderr
        );
        match run.code {
            Some(0) => {
                let app = std::fs::symlink_metadata(live.join("app")).unwrap();
                assert!(app.is_dir(), "{target}: app is not the restored directory");
                assert_eq!(
                    std::fs::read_to_string(live.join("app/new.txt")).unwrap(),
                    "new\n"
                );
                assert_eq!(
                    std::fs::read_to_string(live.join("app/conf/c.yaml")).unwrap(),
                    "new: true\n"
                );
            }
            Some(1) => assert!(run.stderr.contains("cannot"), "{}", run.stderr),
            other => panic!("{target}: exit {other:?}: {}", run.stderr),
        }
    }
}

/// `restore --force` killed at each step of the switch leaves the target wholly old or
/// wholly new (the target being the `--to` directory itself), and the next restore
/// completes and cleans up.
#[test]
fn a_restore_killed_at_each_step_of_the_switch_leaves_the_old_tree_or_the_new() {
    let ops = Opsbook::new();
    let dir = ops.dir().to_path_buf();
    app_archive(&dir);
    let live = dir.join("live");
    let reset = || {
        let _ = std::fs::remove_dir_all(&live);
        std::fs::create_dir_all(live.join("app/conf")).unwrap();
        std::fs::write(live.join("app/new.txt"), "old\n").unwrap();
        std::fs::write(live.join("app/conf/c.yaml"), "old: true\n").unwrap();
        std::fs::write(live.join("app/kept.txt"), "not in the archive\n").unwrap();
    };
    let state = || {
        let read = |p: &str| std::fs::read_to_string(live.join(p)).unwrap();
        assert_eq!(read("app/kept.txt"), "not in the archive\n");
        match (
            read("app/new.txt").as_str(),
            read("app/conf/c.yaml").as_str(),
        ) {
            ("old\n", "old: true\n") => "old",
            ("new\n", "new: true\n") => "new",
            other => panic!("a mix of old and new: {other:?}"),
        }
    };
    let restore = |kill_at: Option<&str>| {
        let mut run = Opsbook::new();
        if let Some(point) = kill_at {
            run = run.env("OPSBOOK_TEST_KILL_AT", point);
        }
        run.args(["restore", "--archive", "app.tar", "--to", "live", "--force"])
            .run_in(&dir)
    };
    for (point, expected) in [
        ("restore-staged", "old"),
        ("restore-filled", "old"),
        ("restore-switched", "new"),
    ] {
        reset();
        let killed = restore(Some(point));
        assert_eq!(killed.code, None, "{point}: not killed: {}", killed.stderr);
        assert_eq!(state(), expected, "killed at {point}");
        restore(None).expect_exit(0);
        assert_eq!(state(), "new", "after {point}");
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("opsbook-restore"))
            .collect();
        assert!(left.is_empty(), "{point}: {left:?}");
    }
}

/// An archive member owned by uid 1000 with mode 4755: as root it comes back owned by
/// 1000 with its bits (as GNU tar restores it); with `--no-owner`, or restored by a user
/// who cannot give it away, it is the caller's and loses setuid/setgid.
#[test]
fn no_setuid_file_is_ever_given_to_someone_the_archive_did_not_name() {
    let ops = Opsbook::new();
    let dir = ops.dir().to_path_buf();
    let mut builder = tar::Builder::new(Vec::new());
    for (name, mode, uid, user) in [
        ("bin/tool", 0o4755, 1000, ""),
        ("bin/group-tool", 0o2755, 1000, ""),
        ("bin/named", 0o755, 4242, "nobody"),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_path(name).unwrap();
        header.set_mode(mode);
        header.set_uid(uid);
        header.set_gid(1000);
        header.set_username(user).unwrap();
        header.set_size(3);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, &b"#!\n"[..]).unwrap();
    }
    std::fs::write(dir.join("tools.tar"), builder.into_inner().unwrap()).unwrap();
    let restore = |to: &str, extra: &[&str]| {
        Opsbook::new()
            .args(["restore", "--archive", "tools.tar", "--to", to])
            .args(extra.iter().copied())
            .run_in(&dir)
            .expect_exit(0);
    };
    let meta = |p: &str| std::fs::metadata(dir.join(p)).unwrap();
    restore("as-root", &[]);
    assert_eq!(meta("as-root/bin/tool").uid(), 1000);
    assert_eq!(meta("as-root/bin/tool").mode() & 0o7777, 0o4755);
    assert_eq!(meta("as-root/bin/group-tool").mode() & 0o7777, 0o2755);
    // By name when this system knows it (as GNU tar does), not by the number stored.
    assert_eq!(meta("as-root/bin/named").uid(), 65534);
    // A directory the archive does not list is made as `mkdir -p` would.
    assert_eq!(meta("as-root/bin").mode() & 0o7777, 0o755);
    restore("no-owner", &["--no-owner"]);
    for tool in ["no-owner/bin/tool", "no-owner/bin/group-tool"] {
        assert_eq!(meta(tool).uid(), 0);
        assert_eq!(meta(tool).mode() & 0o7777, 0o755, "{tool}");
    }
    // Restored by `nobody`, who cannot make a file belong to uid 1000.
    std::fs::create_dir_all(dir.join("by-nobody")).unwrap();
    std::os::unix::fs::chown(dir.join("by-nobody"), Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&dir, PermissionsExt::from_mode(0o755)).unwrap();
    let status = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_opsbook"))
        .args(["restore", "--archive", "tools.tar", "--to", "by-nobody/out"])
        .current_dir(&dir)
        .env("HOME", &dir)
        .env_remove("LOG_DIR")
        .env_remove("LOG_TO_FILE")
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(meta("by-nobody/out/bin/tool").uid(), 65534);
    assert_eq!(meta("by-nobody/out/bin/tool").mode() & 0o7777, 0o755);
}

/// Wait (on a pidfd, no polling) until the process `pid` has ended; whether it did
/// within `limit`.
fn ended(pid: i32, limit: std::time::Duration) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    }
    let fd = fd as i32;
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; the descriptor is closed right after.
    let ready = unsafe { libc::poll(&mut poll, 1, limit.as_millis() as i32) };
    // SAFETY: closing the descriptor pidfd_open gave us.
    unsafe { libc::close(fd) };
    ready == 1
}

/// A set whose drill check records its pid, says it runs, then sleeps in the restored
/// directory: a drill to interrupt.
fn sleeping_drill(dir: &Path) -> String {
    let pid = dir.join("check.pid");
    format!(
        "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    app:\n      paths: [app]\n      verify:\n        run: \"echo $$$$ > {}; echo drill-running >&2; exec sleep 300 >/dev/null\"\n        shell: true\n",
        pid.display()
    )
}

/// A [`sleeping_drill`] set in `dir`, backed up once: the directory its drills' scratch
/// goes into (their `$TMPDIR`).
fn backed_up_drill(dir: &Path) -> std::path::PathBuf {
    std::fs::write(dir.join("ops.yaml"), sleeping_drill(dir)).unwrap();
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(dir.join("app/x.conf"), "x\n").unwrap();
    opsbook(dir, &["backup", "create"]).expect_exit(0);
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    tmp
}

/// `backup verify --restore-test` of a [`sleeping_drill`] with scratch under `tmp`, once
/// its check runs: the running opsbook and the check's pid.
fn start_drill(dir: &Path, tmp: &Path) -> (crate::common::Running, i32) {
    let mut running = Opsbook::new()
        .env("TMPDIR", tmp.to_str().unwrap())
        .args([
            "--config",
            "ops.yaml",
            "backup",
            "verify",
            "latest",
            "--restore-test",
        ])
        .spawn_in(dir);
    running.stderr_line("drill-running");
    let check: i32 = std::fs::read_to_string(dir.join("check.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (running, check)
}

/// SIGTERM during `backup verify --restore-test` kills the check's whole process group
/// and removes the scratch directory; a drill killed outright (SIGKILL) leaves both, and
/// `backup prune` removes them.
#[test]
fn an_interrupted_restore_test_leaves_no_process_and_no_scratch() {
    let ops = Opsbook::new();
    let dir = ops.dir().to_path_buf();
    let tmp = backed_up_drill(&dir);
    let scratch = || std::fs::read_dir(&tmp).unwrap().count();
    let limit = std::time::Duration::from_secs(30);
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGKILL] {
        let _ = std::fs::remove_file(dir.join("check.pid"));
        let (running, check) = start_drill(&dir, &tmp);
        running.signal(signal);
        let run = running.finish(limit);
        assert_eq!(run.code, None, "{signal}: {}", run.stderr);
        if signal == libc::SIGKILL {
            assert_eq!(scratch(), 1, "a killed drill cannot clean up");
            assert!(
                !ended(check, std::time::Duration::ZERO),
                "the check died too"
            );
            Opsbook::new()
                .env("TMPDIR", tmp.to_str().unwrap())
                .args(["--config", "ops.yaml", "backup", "prune"])
                .run_in(&dir)
                .expect_exit(0)
                .stdout_contains("(left by a killed restore test)");
        }
        assert!(ended(check, limit), "{signal}: the check is still running");
        assert_eq!(scratch(), 0, "{signal}: the scratch was left");
    }
}

/// A drill whose `test_restore` names a database that does not exist makes it, restores
/// into it, runs the check there, and drops it.
#[test]
fn the_restore_test_makes_and_drops_its_own_scratch_database() {
    let pg = crate::common::postgres::Postgres::start();
    pg.sql("postgres", "CREATE DATABASE app");
    pg.sql(
        "app",
        "CREATE TABLE users (id int); INSERT INTO users SELECT generate_series(1, 42);",
    );
    let url = |db: &str| format!("postgresql://postgres@127.0.0.1:{}/{db}", pg.port);
    let config = format!(
        "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    db:\n      command:\n        run: \"pg_dump {app}\"\n        test_restore: \"psql -X -q -v ON_ERROR_STOP=1 {scratch}\"\n        file: app.sql\n      verify:\n        run: \"test $(psql -X -tA -c 'SELECT count(*) FROM users' {scratch}) -eq 42\"\n        shell: true\n",
        app = url("app"),
        scratch = url("test_restore"),
    );
    let ops = Opsbook::new().file("ops.yaml", &config);
    let dir = ops.dir().to_path_buf();
    opsbook(&dir, &["backup", "create"]).expect_exit(0);
    opsbook(&dir, &["backup", "verify", "latest", "--restore-test"])
        .expect_exit(0)
        .stdout_contains("restore test passed");
    let left = "SELECT count(*) FROM pg_database WHERE datname = 'test_restore'";
    assert_eq!(pg.sql("postgres", left), "0");
    // A failing check drops it too.
    pg.sql("app", "INSERT INTO users VALUES (43)");
    opsbook(&dir, &["backup", "create"]).expect_exit(0);
    opsbook(&dir, &["backup", "verify", "latest", "--restore-test"])
        .expect_exit(1)
        .stderr_contains("restore test: `test $(psql");
    assert_eq!(pg.sql("postgres", left), "0");
}

/// A target holding a mount point cannot be switched whole: its entries are renamed into
/// place, and those beneath the mount copied across (each whole), the mount left as it is.
#[test]
fn a_target_holding_a_mount_point_restores_entry_by_entry_across_it() {
    let ops = Opsbook::new();
    let dir = ops.dir().to_path_buf();
    std::fs::create_dir_all(dir.join("src/data")).unwrap();
    std::fs::create_dir_all(dir.join("src/app")).unwrap();
    std::fs::write(dir.join("src/app/a.txt"), "app\n").unwrap();
    std::fs::write(dir.join("src/data/d.txt"), "data\n").unwrap();
    std::os::unix::fs::symlink("/srv/elsewhere", dir.join("src/data/link")).unwrap();
    gnu_tar(&dir, &["-cf", "t.tar", "-C", "src", "app", "data"]);
    let live = dir.join("live");
    std::fs::create_dir_all(live.join("data")).unwrap();
    let _mounted = crate::common::Mounted::tmpfs(&live.join("data"), "8m");
    std::fs::write(live.join("data/kept.txt"), "on the mount\n").unwrap();
    Opsbook::new()
        .args(["restore", "--archive", "t.tar", "--to", "live"])
        .run_in(&dir)
        .expect_exit(0)
        .stdout_contains("restored 2 files, 2 directories, 1 symlink");
    assert_eq!(
        std::fs::read_to_string(live.join("app/a.txt")).unwrap(),
        "app\n"
    );
    assert_eq!(
        std::fs::read_to_string(live.join("data/d.txt")).unwrap(),
        "data\n"
    );
    assert_eq!(
        std::fs::read_link(live.join("data/link")).unwrap(),
        Path::new("/srv/elsewhere")
    );
    assert_eq!(
        std::fs::read_to_string(live.join("data/kept.txt")).unwrap(),
        "on the mount\n"
    );
    let mut names: Vec<_> = std::fs::read_dir(live.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["d.txt", "kept.txt", "link"]);
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("opsbook-restore"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Names a killed restore leaves at `dir` (`.opsbook-restore-PID` or `.NAME.opsbook-restore-
/// PID`) whose process is gone: what the next restore must have removed. A name is counted
/// only if it is still there once its process is known to be gone, so a restore running in
/// parallel and tidying up is never mistaken for a leftover.
fn dead_leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (_, pid) = name.split_once("opsbook-restore-")?;
            let dead = !pid.is_empty()
                && pid.bytes().all(|b| b.is_ascii_digit())
                && !Path::new("/proc").join(pid).exists();
            (dead && std::fs::symlink_metadata(e.path()).is_ok()).then_some(name)
        })
        .collect()
}

/// `restore ID --to / --force` killed at each step of the switch: `/` cannot be exchanged,
/// so the restored source path (a tree beneath this test's directory) is switched on its
/// own, in one rename, and is left wholly old or wholly new; the next restore completes
/// and removes what the killed one left, beside the tree and in `/`.
#[test]
fn a_restore_to_the_root_killed_at_each_step_leaves_the_source_path_old_or_new() {
    let ops = Opsbook::new().file("ops.yaml", CONFIG);
    let dir = ops.dir().to_path_buf();
    std::fs::create_dir_all(dir.join("app/conf")).unwrap();
    std::fs::write(dir.join("app/new.txt"), "new\n").unwrap();
    std::fs::write(dir.join("app/conf/c.yaml"), "new: true\n").unwrap();
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    for d in ["app", "app/conf"] {
        std::fs::File::open(dir.join(d))
            .unwrap()
            .set_modified(when)
            .unwrap();
    }
    opsbook(&dir, &["backup", "create"]).expect_exit(0);
    let live = dir.join("app");
    let reset = || {
        std::fs::remove_dir_all(&live).unwrap();
        std::fs::create_dir_all(live.join("conf")).unwrap();
        std::fs::write(live.join("new.txt"), "old\n").unwrap();
        std::fs::write(live.join("conf/c.yaml"), "old: true\n").unwrap();
        std::fs::write(live.join("kept.txt"), "not in the backup\n").unwrap();
        std::fs::metadata(&live).unwrap().ino()
    };
    let state = || {
        let read = |p: &str| std::fs::read_to_string(live.join(p)).unwrap();
        assert_eq!(read("kept.txt"), "not in the backup\n");
        match (read("new.txt").as_str(), read("conf/c.yaml").as_str()) {
            ("old\n", "old: true\n") => "old",
            ("new\n", "new: true\n") => "new",
            other => panic!("a mix of old and new: {other:?}"),
        }
    };
    let restore = |kill_at: Option<&str>| {
        let mut run = Opsbook::new();
        if let Some(point) = kill_at {
            run = run.env("OPSBOOK_TEST_KILL_AT", point);
        }
        run.args([
            "--config", "ops.yaml", "restore", "latest", "--to", "/", "--force",
        ])
        .run_in(&dir)
    };
    for (point, expected) in [
        ("restore-staged", "old"),
        ("restore-filled", "old"),
        ("restore-switched", "new"),
    ] {
        let before = reset();
        let killed = restore(Some(point));
        assert_eq!(killed.code, None, "{point}: not killed: {}", killed.stderr);
        assert_eq!(state(), expected, "killed at {point}");
        restore(None).expect_exit(0);
        assert_eq!(state(), "new", "after {point}");
        // The archive's mtimes, though the old tree's `kept.txt` was linked in.
        for d in ["", "conf"] {
            assert_eq!(
                std::fs::metadata(live.join(d)).unwrap().mtime(),
                1_600_000_000
            );
        }
        // Switched whole (a new directory in its place), not written into entry by entry.
        assert_ne!(std::fs::metadata(&live).unwrap().ino(), before, "{point}");
        assert_eq!(dead_leftovers(&dir), Vec::<String>::new(), "{point}");
        assert_eq!(
            dead_leftovers(Path::new("/")),
            Vec::<String>::new(),
            "{point}"
        );
    }
}

/// Two source paths with the same last name (`a/app`, `b/app`) restored `--to /`: each is
/// staged beside its own place and switched on its own, neither mixed with the other; a
/// kill once both are staged leaves both old, and the next restore switches both.
#[test]
fn two_source_paths_of_the_same_name_restore_to_the_root_each_switched_whole() {
    let config = "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    app:\n      paths: [a/app, b/app]\n";
    let ops = Opsbook::new().file("ops.yaml", config);
    let dir = ops.dir().to_path_buf();
    for side in ["a", "b"] {
        std::fs::create_dir_all(dir.join(side).join("app")).unwrap();
        std::fs::write(dir.join(side).join("app/x.conf"), format!("{side} new\n")).unwrap();
    }
    opsbook(&dir, &["backup", "create"]).expect_exit(0);
    for side in ["a", "b"] {
        std::fs::write(dir.join(side).join("app/x.conf"), format!("{side} old\n")).unwrap();
        std::fs::write(dir.join(side).join("app/kept"), side).unwrap();
    }
    let read = |side: &str, name: &str| {
        std::fs::read_to_string(dir.join(side).join("app").join(name)).unwrap()
    };
    let restore = |kill_at: Option<&str>| {
        let mut run = Opsbook::new();
        if let Some(point) = kill_at {
            run = run.env("OPSBOOK_TEST_KILL_AT", point);
        }
        run.args([
            "--config", "ops.yaml", "restore", "latest", "--to", "/", "--force",
        ])
        .run_in(&dir)
    };
    let killed = restore(Some("restore-filled"));
    assert_eq!(killed.code, None, "not killed: {}", killed.stderr);
    for side in ["a", "b"] {
        assert_eq!(read(side, "x.conf"), format!("{side} old\n"));
        let staged: Vec<_> = std::fs::read_dir(dir.join(side))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".app.opsbook-restore-"))
            .collect();
        assert_eq!(
            staged.len(),
            1,
            "{side}: staged beside its place: {staged:?}"
        );
    }
    restore(None)
        .expect_exit(0)
        .stdout_contains("restored 2 files, 2 directories");
    for side in ["a", "b"] {
        assert_eq!(read(side, "x.conf"), format!("{side} new\n"));
        assert_eq!(read(side, "kept"), side);
        assert_eq!(dead_leftovers(&dir.join(side)), Vec::<String>::new());
    }
}

/// A source path whose parent is a mount of its own (`/srv` for `srv/app`) restored `--to
/// /`: its tree is copied beside it on that filesystem and switched in one exchange, so a
/// kill before the switch leaves it old and the next restore switches it whole (files
/// linked together in the archive still linked together). The archive is GNU tar's
/// (`tar -C / -cf t.tar PATH`), which keeps hard links.
#[test]
fn a_source_path_on_another_filesystem_than_the_root_is_still_switched_whole() {
    let ops = Opsbook::new();
    let dir = ops.dir().to_path_buf();
    let _mounted = crate::common::Mounted::tmpfs(&dir.join("mnt"), "8m");
    let live = dir.join("mnt/app");
    std::fs::create_dir_all(live.join("conf")).unwrap();
    std::fs::write(live.join("conf/c.yaml"), "new: true\n").unwrap();
    std::fs::write(live.join("one"), "linked\n").unwrap();
    std::fs::hard_link(live.join("one"), live.join("two")).unwrap();
    let stored = crate::common::stored(&dir, "mnt/app");
    let archive = dir.join("t.tar");
    let archive = archive.to_str().unwrap();
    gnu_tar(&dir, &["-C", "/", "-cf", archive, &stored]);
    std::fs::write(live.join("conf/c.yaml"), "old: true\n").unwrap();
    std::fs::write(live.join("kept.txt"), "not in the backup\n").unwrap();
    let before = std::fs::metadata(&live).unwrap().ino();
    let restore = |kill_at: Option<&str>| {
        let mut run = Opsbook::new();
        if let Some(point) = kill_at {
            run = run.env("OPSBOOK_TEST_KILL_AT", point);
        }
        run.args(["restore", "--archive", archive, "--to", "/", "--force"])
            .run_in(&dir)
    };
    let killed = restore(Some("restore-filled"));
    assert_eq!(killed.code, None, "not killed: {}", killed.stderr);
    let read = |p: &str| std::fs::read_to_string(live.join(p)).unwrap();
    assert_eq!(read("conf/c.yaml"), "old: true\n");
    restore(None).expect_exit(0);
    assert_eq!(read("conf/c.yaml"), "new: true\n");
    assert_eq!(read("kept.txt"), "not in the backup\n");
    assert_ne!(std::fs::metadata(&live).unwrap().ino(), before);
    let one = std::fs::metadata(live.join("one")).unwrap();
    assert_eq!(
        one.ino(),
        std::fs::metadata(live.join("two")).unwrap().ino()
    );
    assert_eq!(dead_leftovers(&dir.join("mnt")), Vec::<String>::new());
}

/// `restore --to /` run from inside a source path: that path holds the caller's working
/// directory, so it is restored entry by entry into the same directory, never replaced
/// under the caller; a sibling source path is still switched whole.
#[test]
fn a_source_path_holding_the_working_directory_is_restored_into_not_replaced() {
    let ops = Opsbook::new();
    let dir = ops.dir().to_path_buf();
    // Paths absolute: the restore runs from inside a source path.
    let d = dir.display();
    let config = format!(
        "state_dir: {d}/state\nbackup:\n  destination: {d}/dest\n  sets:\n    app:\n      paths: [{d}/here, {d}/there]\n"
    );
    std::fs::write(dir.join("ops.yaml"), config).unwrap();
    for side in ["here", "there"] {
        std::fs::create_dir_all(dir.join(side).join("sub")).unwrap();
        std::fs::write(dir.join(side).join("sub/x.conf"), "new\n").unwrap();
    }
    opsbook(&dir, &["backup", "create"]).expect_exit(0);
    for side in ["here", "there"] {
        std::fs::write(dir.join(side).join("sub/x.conf"), "old\n").unwrap();
    }
    let ino = |side: &str| std::fs::metadata(dir.join(side)).unwrap().ino();
    let (here, there) = (ino("here"), ino("there"));
    let config = dir.join("ops.yaml");
    Opsbook::new()
        .args(["--config", config.to_str().unwrap()])
        .args(["restore", "latest", "--to", "/", "--force"])
        .run_in(&dir.join("here/sub"))
        .expect_exit(0);
    for side in ["here", "there"] {
        let x = std::fs::read_to_string(dir.join(side).join("sub/x.conf")).unwrap();
        assert_eq!(x, "new\n", "{side}");
    }
    assert_eq!(
        ino("here"),
        here,
        "the working directory's tree was replaced"
    );
    assert_ne!(
        ino("there"),
        there,
        "the other source path was not switched whole"
    );
}

#[test]
fn a_restore_step_restores_a_backup_byte_exact_from_a_runbook() {
    let ops = Opsbook::new().file("ops.yaml", CONFIG).file(
        "restore.yaml",
        "name: restore app\nvars:\n  to: out\nsteps:\n  - name: plan\n    restore: { set: app, to: planned, dry_run: true }\n  - name: restore app\n    restore: { id: latest, set: app, to: \"{{ to }}\" }\n",
    );
    let dir = ops.dir().to_path_buf();
    app_tree(&dir);
    opsbook(&dir, &["backup", "create"]).expect_exit(0);
    let conf = crate::common::stored(&dir, "app/conf/app.yaml");
    opsbook(&dir, &["run", "restore.yaml"])
        .expect_exit(0)
        .stdout_contains(&format!("would restore {conf}"))
        .stdout_contains("restored 2 files, 2 directories, 1 symlink into out");
    assert!(!dir.join("planned").join(&conf).exists());
    let out = |rel: &str| dir.join("out").join(crate::common::stored(&dir, rel));
    for file in ["app/conf/app.yaml", "app/run.sh"] {
        assert_eq!(
            std::fs::read(out(file)).unwrap(),
            std::fs::read(dir.join(file)).unwrap()
        );
    }
    assert_eq!(
        std::fs::metadata(out("app/run.sh")).unwrap().mode() & 0o7777,
        0o750
    );
    assert_eq!(
        std::fs::metadata(out("app/conf/app.yaml")).unwrap().mtime(),
        1_600_000_000
    );
    assert_eq!(
        std::fs::read_link(out("app/current.yaml")).unwrap(),
        Path::new("conf/app.yaml")
    );
    // Over files that exist, without `force`: refused entry by entry, nothing changed.
    std::fs::write(out("app/conf/app.yaml"), "edited\n").unwrap();
    opsbook(&dir, &["run", "restore.yaml"])
        .expect_exit(2)
        .stdout_contains("nothing restored: refused")
        .stdout_contains(&format!("{conf}: exists on disk"));
    assert_eq!(
        std::fs::read_to_string(out("app/conf/app.yaml")).unwrap(),
        "edited\n"
    );
    // A hand-made archive restores as `opsbook restore --archive` does.
    gnu_tar(&dir, &["-czf", "hand.tar.gz", "app"]);
    std::fs::write(
        dir.join("hand.yaml"),
        "name: hand\nsteps:\n  - name: unpack\n    restore: { archive: hand.tar.gz, to: unpacked }\n",
    )
    .unwrap();
    opsbook(&dir, &["run", "hand.yaml"]).expect_exit(0);
    assert_eq!(
        std::fs::read(dir.join("unpacked/app/run.sh")).unwrap(),
        std::fs::read(dir.join("app/run.sh")).unwrap()
    );
}

#[test]
fn a_restore_step_with_both_an_archive_and_a_backup_is_refused_when_validated() {
    let ops = Opsbook::new().file(
        "both.yaml",
        "name: both\nsteps:\n  - name: put back\n    restore: { archive: hand.tar, id: latest, to: out }\n",
    );
    ops.args(["runbook", "validate", "both.yaml"])
        .run()
        .expect_exit(78)
        .stderr_contains("both.yaml:4:")
        .stderr_contains("a restore step takes `archive` or `id`/`set`, not both");
}

/// A runbook `prune` step cleans up as `backup prune` does: the scratch directory a drill
/// killed outright left behind goes, with the check still running in it, and the step
/// says so.
#[test]
fn a_prune_step_removes_the_scratch_a_killed_restore_test_left() {
    let ops = Opsbook::new().file(
        "prune.yaml",
        "name: prune\nsteps:\n  - name: prune app\n    prune: { set: app }\n",
    );
    let dir = ops.dir().to_path_buf();
    let tmp = backed_up_drill(&dir);
    let scratch = || std::fs::read_dir(&tmp).unwrap().count();
    let (running, check) = start_drill(&dir, &tmp);
    running.signal(libc::SIGKILL);
    let limit = std::time::Duration::from_secs(30);
    assert_eq!(running.finish(limit).code, None);
    assert_eq!(scratch(), 1, "a killed drill cannot clean up");
    let run = Opsbook::new()
        .env("TMPDIR", tmp.to_str().unwrap())
        .args(["--config", "ops.yaml", "run", "prune.yaml"])
        .run_in(&dir)
        .expect_exit(0)
        .stdout_contains("backup set app: kept 1, removed 0; removed ")
        .stdout_contains("(left by a killed restore test)");
    assert!(run.stdout.contains(tmp.to_str().unwrap()), "{}", run.stdout);
    assert!(ended(check, limit), "the check is still running");
    assert_eq!(scratch(), 0, "the scratch was left");
}

/// `opsbook restore` and a `restore` step build their options in one place: an include
/// that is not a glob is named with how it was given, before any store is opened (none
/// is configured here), as a usage error: exit 64, and an unknown step.
#[test]
fn an_invalid_include_glob_is_a_usage_error_for_the_command_and_the_step() {
    let ops = Opsbook::new()
        .file("ops.yaml", "state_dir: state\n")
        .file(
            "restore.yaml",
            "name: restore\nsteps:\n  - name: conf only\n    restore: { set: app, to: out, include: [\"app/[conf\"] }\n",
        );
    let dir = ops.dir().to_path_buf();
    opsbook(
        &dir,
        &["restore", "latest", "--to", "out", "--include", "app/[conf"],
    )
    .expect_exit(64)
    .stderr_contains("--include \"app/[conf\" is not a valid glob: ");
    opsbook(&dir, &["run", "restore.yaml"])
        .expect_exit(3)
        .stdout_contains("include \"app/[conf\" is not a valid glob: ");
    assert!(!dir.join("out").exists());
}
