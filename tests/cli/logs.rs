//! `opsbook logs rotate` on real files, with a real writer process and real `zcat`.

use crate::common::Opsbook;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

fn config(set: &str) -> String {
    format!("state_dir: state\nlogs:\n  sets:\n    app:\n{set}")
}

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn size_rotation_keeps_n_compressed_files_that_zcat_reads() {
    let opsbook = Opsbook::new().file(
        "ops.yaml",
        &config("      paths: [\"logs/*.log\"]\n      size: 1K\n      keep: 2\n"),
    );
    let dir = opsbook.dir().to_path_buf();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    std::fs::write(dir.join("logs/small.log"), "tiny\n").unwrap();
    for round in 1..=3 {
        let text: String = (0..200)
            .map(|i| format!("round {round} line {i}\n"))
            .collect();
        std::fs::write(dir.join("logs/app.log"), text).unwrap();
        let stdout = rotate_once(&dir);
        assert!(stdout.contains("app: rotated 1 file"), "{stdout}");
    }
    let expected: BTreeSet<String> = ["app.log", "app.log.1.gz", "app.log.2.gz", "small.log"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(names(&dir.join("logs")), expected);
    assert_eq!(
        std::fs::read_to_string(dir.join("logs/app.log")).unwrap(),
        ""
    );
    let zcat = std::process::Command::new("zcat")
        .arg(dir.join("logs/app.log.1.gz"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&zcat.stdout);
    assert!(text.starts_with("round 3 line 0\n") && text.ends_with("round 3 line 199\n"));
    let zcat = std::process::Command::new("zcat")
        .arg(dir.join("logs/app.log.2.gz"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&zcat.stdout).starts_with("round 2 line 0\n"));
    // The state file records the rotation.
    let state = std::fs::read_to_string(dir.join("state/logs-app.json")).unwrap();
    assert!(state.contains("logs/app.log"), "{state}");
}

#[test]
fn dry_run_lists_every_step_and_changes_nothing() {
    let opsbook = Opsbook::new()
        .file(
            "ops.yaml",
            &config("      paths: [\"logs/app.log\"]\n      size: 10\n      keep: 1\n      compress: zstd\n"),
        )
        .file("logs/app.log", "more than ten bytes\n")
        .file("logs/app.log.1.zst", "old");
    let dir = opsbook.dir().to_path_buf();
    let before = names(&dir.join("logs"));
    let run = opsbook
        .args(["--config", "ops.yaml", "logs", "rotate", "--dry-run"])
        .run()
        .expect_exit(0);
    for line in [
        "app: would delete logs/app.log.1.zst",
        "app: would rename logs/app.log → logs/app.log.1",
        "app: would create logs/app.log",
        "app: would compress logs/app.log.1 → logs/app.log.1.zst",
        "app: would rotate 1 file",
    ] {
        assert!(
            run.stdout.contains(line),
            "{line:?} missing:\n{}",
            run.stdout
        );
    }
    assert_eq!(names(&dir.join("logs")), before);
    assert!(!dir.join("state/logs-app.json").exists());
}

#[test]
fn a_second_rotation_of_the_same_set_exits_75_naming_the_holder() {
    let opsbook = Opsbook::new()
        .file("ops.yaml", &config("      paths: [\"logs/app.log\"]\n"))
        .file("logs/app.log", "x\n");
    let lock_path = opsbook.path("state/locks/logs-rotate-app.lock");
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    std::fs::write(&lock_path, "pid 4242 since 2026-01-01T00:00:00Z").unwrap();
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock_path)
        .unwrap();
    held.try_lock().unwrap();
    let dir = opsbook.dir().to_path_buf();
    let _run = opsbook
        .args(["--config", "ops.yaml", "logs", "rotate"])
        .run()
        .expect_exit(75)
        .stderr_contains(
            "log set \"app\" is locked by another run (pid 4242 since 2026-01-01T00:00:00Z",
        );
    assert_eq!(
        names(&dir.join("logs")),
        BTreeSet::from(["app.log".to_string()])
    );
    drop(held);
}

/// Read every line of the set: the live file and every rotated file, compressed or not.
fn all_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for name in names(dir) {
        let path = dir.join(&name);
        let mut text = String::new();
        let file = std::fs::File::open(&path).unwrap();
        if name.ends_with(".gz") {
            flate2::read::MultiGzDecoder::new(file)
                .read_to_string(&mut text)
                .unwrap();
        } else {
            std::io::BufReader::new(file)
                .read_to_string(&mut text)
                .unwrap();
        }
        lines.extend(text.lines().map(str::to_string));
    }
    lines
}

/// A writer appends numbered lines as fast as it can while rotation runs again and again;
/// it reopens its log on HUP. Afterwards every line is there exactly once.
#[test]
fn create_mode_with_a_writer_that_reopens_on_hup_loses_nothing() {
    const LINES: usize = 100_000;
    let opsbook = Opsbook::new()
        .file(
            "ops.yaml",
            &config(
                "      paths: [\"logs/app.log\"]\n      size: 20K\n      keep: 10000\n      signal: HUP\n      pid_file: writer.pid\n",
            ),
        )
        .file(
            "writer.sh",
            &format!(
                "trap 'exec 3>>logs/app.log' HUP\nexec 3>>logs/app.log\necho $$ > writer.pid.tmp && mv writer.pid.tmp writer.pid\nfor ((i=0;i<{LINES};i++)); do echo \"line $i\" >&3; done\n"
            ),
        );
    let dir = opsbook.dir().to_path_buf();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let mut writer = std::process::Command::new("bash")
        .arg("writer.sh")
        .current_dir(&dir)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !dir.join("writer.pid").exists() {
        assert!(started.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut rotations = 0;
    loop {
        let done = writer.try_wait().unwrap().is_some();
        if rotate_once(&dir).contains("rotated 1 file") {
            rotations += 1;
        }
        if done {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "writer did not finish"
        );
    }
    assert!(
        rotations >= 3,
        "only {rotations} rotations happened while writing"
    );
    let lines = all_lines(&dir.join("logs"));
    let mut seen = vec![0u32; LINES];
    for line in &lines {
        let n: usize = line.strip_prefix("line ").unwrap().parse().unwrap();
        seen[n] += 1;
    }
    let lost = seen.iter().filter(|c| **c == 0).count();
    let doubled = seen.iter().filter(|c| **c > 1).count();
    assert_eq!(
        (lost, doubled),
        (0, 0),
        "{rotations} rotations: {lost} lost, {doubled} duplicated"
    );
}

#[test]
fn bad_sets_are_clear_and_nothing_is_touched() {
    Opsbook::new()
        .file(
            "ops.yaml",
            &config("      paths: [x.log]\n      size: 10XB\n"),
        )
        .args(["--config", "ops.yaml", "logs", "rotate"])
        .run()
        .expect_exit(78)
        .stderr_contains("ops.yaml:6:13")
        .stderr_contains("unknown unit \"xb\"");
    Opsbook::new()
        .file("ops.yaml", &config("      paths: [\"nothing/*.log\"]\n"))
        .args(["--config", "ops.yaml", "logs", "rotate"])
        .run()
        .expect_exit(1)
        .stderr_contains("nothing/*.log matches no file (set `missingok: true`");
    Opsbook::new()
        .file(
            "ops.yaml",
            &config("      paths: [\"nothing/*.log\"]\n      missingok: true\n"),
        )
        .args(["--config", "ops.yaml", "logs", "rotate"])
        .run()
        .expect_exit(0)
        .stdout_contains("app: rotated 0 files");
    Opsbook::new()
        .file("ops.yaml", &config("      paths: [logs]\n"))
        .file("logs/a.log", "x")
        .args(["--config", "ops.yaml", "logs", "rotate"])
        .run()
        .expect_exit(1)
        .stderr_contains("logs is a directory");
    Opsbook::new()
        .file("ops.yaml", &config("      paths: [a.log]\n"))
        .args(["--config", "ops.yaml", "logs", "rotate", "ap"])
        .run()
        .expect_exit(64)
        .stderr_contains("did you mean \"app\"?");
}

const SEED_LOG: &str = "\
2025-01-15 09:00:00,001 - app - INFO - started
2025-01-15 10:00:00,002 - app - ERROR - Failed to load pattern 12 after 1500ms
2025-01-15 10:30:00,003 - app - INFO - Performance: pattern_load took 100.00ms
2025-01-15 10:31:00,004 - app - INFO - Performance: pattern_load took 300.00ms
2025-01-15 10:32:00,005 - app - INFO - Performance: pattern_load took 1200.50ms
2025-01-15 11:15:00,006 - app - WARNING - disk 85% full
2025-01-15 11:16:00,007 - app - ERROR - Failed to load pattern 7 after 20ms
Traceback (most recent call last):
  File \"loader.py\", line 3
2025-01-15 11:45:00,008 - app - CRITICAL - Upload 0xdeadbeef rejected
";

/// A set whose history is a zstd file, a gzip file and the live file.
fn history(opsbook: Opsbook) -> Opsbook {
    let opsbook = opsbook
        .env("TZ", "UTC")
        .env("OPSBOOK_NOW", "2025-01-15T12:00:00Z")
        .file("ops.yaml", &config("      paths: [\"logs/app.log\"]\n"))
        .file("logs/app.log", SEED_LOG);
    let dir = opsbook.dir().to_path_buf();
    let old = "2025-01-14 08:00:00,000 - app - ERROR - Failed to load pattern 99 after 5ms\n";
    let older = "2025-01-13 08:00:00,000 - app - ERROR - oldest problem\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, old.as_bytes()).unwrap();
    std::fs::write(dir.join("logs/app.log.1.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(
        dir.join("logs/app.log.2.zst"),
        zstd::encode_all(older.as_bytes(), 3).unwrap(),
    )
    .unwrap();
    opsbook
}

#[test]
fn search_reads_a_sets_history_oldest_first_with_filters_and_context() {
    let run = history(Opsbook::new())
        .args([
            "--config", "ops.yaml", "logs", "search", "error", "-E", "--set", "app",
        ])
        .run()
        .expect_exit(1); // lower-case "error" is not in the file: grep's exit 1
    assert_eq!(run.stdout, "");
    let run = history(Opsbook::new())
        .args([
            "--config", "ops.yaml", "logs", "search", "Failed", "--set", "app",
        ])
        .run()
        .expect_exit(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(
        lines[0].starts_with("logs/app.log.1.gz:1:"),
        "{}",
        run.stdout
    );
    assert!(lines[1].starts_with("logs/app.log:2:"), "{}", run.stdout);
    let run = history(Opsbook::new())
        .args([
            "--config", "ops.yaml", "logs", "search", "-E", ".", "--set", "app", "--level",
            "ERROR", "--since", "1h", "--count",
        ])
        .run()
        .expect_exit(0);
    assert_eq!(
        run.stdout, "2\n",
        "11:16 ERROR and 11:45 CRITICAL are within the hour"
    );
    let run = history(Opsbook::new())
        .args(["logs", "search", "WARNING", "logs/app.log", "-C", "1"])
        .run()
        .expect_exit(0);
    assert_eq!(
        run.stdout,
        "5-2025-01-15 10:32:00,005 - app - INFO - Performance: pattern_load took 1200.50ms\n\
         6:2025-01-15 11:15:00,006 - app - WARNING - disk 85% full\n\
         7-2025-01-15 11:16:00,007 - app - ERROR - Failed to load pattern 7 after 20ms\n"
    );
}

#[test]
fn a_corrupt_archive_is_reported_and_the_rest_is_read() {
    let run = history(Opsbook::new())
        .file("logs/app.log.1.gz", "this is not gzip")
        .args([
            "--config", "ops.yaml", "logs", "search", "ERROR", "--set", "app", "--count",
        ])
        .run()
        .expect_exit(0)
        .stderr_contains("logs/app.log.1.gz");
    // The zstd file's error and the live file's two: the corrupt file adds none.
    assert_eq!(run.stdout, "3\n");
    let run = history(Opsbook::new())
        .file("logs/app.log.1.gz", "this is not gzip")
        .args([
            "--config", "ops.yaml", "logs", "summary", "--set", "app", "--format", "json",
        ])
        .run()
        .expect_exit(0)
        .stderr_contains("logs/app.log.1.gz");
    assert_eq!(run.json()["levels"]["ERROR"], 3);
}

#[test]
fn summary_groups_errors_and_computes_latency() {
    let run = history(Opsbook::new())
        .args([
            "--config",
            "ops.yaml",
            "logs",
            "summary",
            "logs/app.log",
            "--slow",
            "1s",
            "--format",
            "json",
        ])
        .run()
        .expect_exit(0);
    let json = run.json();
    assert_eq!(json["lines"], 10);
    assert_eq!(
        json["levels"],
        serde_json::json!({"CRITICAL": 1, "ERROR": 2, "WARNING": 1, "INFO": 4})
    );
    assert_eq!(
        json["top_errors"][0],
        serde_json::json!({"count": 2, "text": "Failed to load pattern <n> after <n>ms"})
    );
    assert_eq!(
        json["top_errors"][1],
        serde_json::json!({"count": 1, "text": "Upload <hex> rejected"})
    );
    assert_eq!(
        json["slow"],
        serde_json::json!([{"count": 1, "text": "pattern_load"}])
    );
    let op = &json["operations"][0];
    assert_eq!(op["operation"], "pattern_load");
    assert_eq!(op["count"], 3);
    assert_eq!(op["mean_ms"], 533.5);
    assert_eq!(op["p50_ms"], 300.0);
    assert_eq!(op["max_ms"], 1200.5);
    assert_eq!(
        json["errors_per_hour"],
        serde_json::json!({"2025-01-15 10:00": 1, "2025-01-15 11:00": 2})
    );
    history(Opsbook::new())
        .args(["logs", "summary", "logs/app.log"])
        .run()
        .expect_exit(0)
        .stdout_contains("10 lines in 1 files: CRITICAL 1, ERROR 2, WARNING 1, INFO 4")
        .stdout_contains("       2  Failed to load pattern <n> after <n>ms");
}

#[test]
fn a_writer_that_is_gone_is_noted_not_an_error() {
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    Opsbook::new()
        .file(
            "ops.yaml",
            &config(
                "      paths: [\"logs/app.log\"]\n      signal: HUP\n      pid_file: app.pid\n",
            ),
        )
        .file("app.pid", &pid.to_string())
        .file("logs/app.log", "x\n")
        .args(["--config", "ops.yaml", "logs", "rotate"])
        .run()
        .expect_exit(0)
        .stdout_contains(&format!("app: pid {pid} is not running: nothing to signal"));
}

#[test]
fn archive_puts_old_rotated_files_into_one_verified_tarball_gnu_tar_reads() {
    let opsbook = Opsbook::new()
        .file(
            "ops.yaml",
            &config("      paths: [\"logs/app.log\"]\n      archive_after: 30d\n      archive_dir: archive\n"),
        )
        .file("logs/app.log", "live\n")
        .file("logs/app.log.1", "recent\n")
        .file("logs/app.log.2", "old two\n")
        .file("logs/app.log.3", "old three\n");
    let dir = opsbook.dir().to_path_buf();
    let old = std::time::SystemTime::now() - Duration::from_secs(40 * 86_400);
    for name in ["logs/app.log.2", "logs/app.log.3"] {
        std::fs::File::options()
            .write(true)
            .open(dir.join(name))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let dry = Opsbook::new()
        .args([
            "--config",
            dir.join("ops.yaml").to_str().unwrap(),
            "logs",
            "archive",
            "--dry-run",
        ])
        .run_in(&dir)
        .expect_exit(0);
    assert!(
        dry.stdout.contains("app: would archive logs/app.log.2\n"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains("app: would archive 2 files older than 30days"),
        "{}",
        dry.stdout
    );
    assert!(dir.join("logs/app.log.2").exists());

    let run = Opsbook::new()
        .args([
            "--config",
            dir.join("ops.yaml").to_str().unwrap(),
            "logs",
            "archive",
        ])
        .run_in(&dir)
        .expect_exit(0);
    assert!(
        run.stdout
            .contains("app: archived 2 files (18 bytes) into archive/app-"),
        "{}",
        run.stdout
    );
    assert_eq!(
        names(&dir.join("logs")),
        ["app.log", "app.log.1"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    let archives: Vec<String> = names(&dir.join("archive")).into_iter().collect();
    assert_eq!(archives.len(), 1);
    assert!(archives[0].ends_with(".tar.gz"), "{archives:?}");
    let listing = std::process::Command::new("tar")
        .args(["-tzvf", &format!("archive/{}", archives[0])])
        .current_dir(&dir)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("app.log.2") && listing.contains("app.log.3"),
        "{listing}"
    );
    let content = std::process::Command::new("tar")
        .args(["-xzOf", &format!("archive/{}", archives[0]), "app.log.3"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&content.stdout), "old three\n");
    // Nothing left to do the second time.
    Opsbook::new()
        .args([
            "--config",
            dir.join("ops.yaml").to_str().unwrap(),
            "logs",
            "archive",
        ])
        .run_in(&dir)
        .expect_exit(0)
        .stdout_contains("app: nothing older than 30days");
}

#[test]
fn tail_follows_a_log_across_rotation_and_truncation() {
    use std::io::BufRead;
    let opsbook = Opsbook::new().file(
        "app.log",
        "2025-01-15 10:00:00,000 - app - INFO - old info\n2025-01-15 10:00:01,000 - app - ERROR - old error\n",
    );
    let dir = opsbook.dir().to_path_buf();
    let mut running = Opsbook::new()
        .args([
            "logs",
            "tail",
            "-f",
            "--level",
            "WARNING",
            dir.join("app.log").to_str().unwrap(),
        ])
        .spawn();
    let mut stdout = std::io::BufReader::new(running.child.stdout.take().unwrap());
    // A watchdog ends tail if the test stalls, so a failure is a failure, not a hang.
    let (done, watchdog) = std::sync::mpsc::channel::<()>();
    let pid = running.child.id() as i32;
    std::thread::spawn(move || {
        if watchdog.recv_timeout(Duration::from_secs(30)).is_err() {
            // SAFETY: kill(2) on our child, which has not been reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    // Each step waits until tail has shown the line before it, however slow the machine.
    let mut next = || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        line.trim_end().rsplit(" - ").next().unwrap().to_string()
    };
    let append = |text: &str| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("app.log"))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    assert_eq!(next(), "old error");
    append(
        "2025-01-15 10:00:02,000 - app - WARNING - before rotation\n2025-01-15 10:00:03,000 - app - INFO - quiet\n",
    );
    assert_eq!(next(), "before rotation");
    std::fs::rename(dir.join("app.log"), dir.join("app.log.1")).unwrap();
    std::fs::write(
        dir.join("app.log"),
        "2025-01-15 10:00:04,000 - app - ERROR - after rotation\n",
    )
    .unwrap();
    assert_eq!(next(), "after rotation");
    // copytruncate: the file is cut to nothing, then the writer goes on appending.
    std::fs::File::options()
        .write(true)
        .open(dir.join("app.log"))
        .unwrap()
        .set_len(0)
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    append("2025-01-15 10:00:05,000 - app - CRITICAL - after truncation\n");
    assert_eq!(next(), "after truncation");
    let _ = done.send(());
    running.signal(libc::SIGTERM);
    running.finish(Duration::from_secs(5)).expect_exit(0);
}

#[test]
fn access_logs_count_5xx_as_errors() {
    let line = |path: &str, status: u16| {
        format!(
            "10.0.0.1 - - [15/Jan/2025:10:30:00 +0000] \"GET {path} HTTP/1.1\" {status} 512 \"-\" \"curl/8\"\n"
        )
    };
    let log = [
        line("/api/files/1", 200),
        line("/api/files/2", 503),
        line("/api/files/3", 503),
        line("/missing", 404),
    ]
    .concat();
    let run = Opsbook::new()
        .env("TZ", "UTC")
        .file("access.log", &log)
        .args(["logs", "summary", "access.log", "--format", "json"])
        .run()
        .expect_exit(0);
    let json = run.json();
    assert_eq!(
        json["levels"],
        serde_json::json!({"ERROR": 2, "WARNING": 1, "INFO": 1})
    );
    assert_eq!(json["top_errors"][0]["count"], 2);
    assert_eq!(
        json["errors_per_hour"],
        serde_json::json!({"2025-01-15 10:00": 2})
    );
    Opsbook::new()
        .file("access.log", &log)
        .args([
            "logs",
            "search",
            "GET",
            "access.log",
            "--level",
            "ERROR",
            "--count",
        ])
        .run()
        .expect_exit(0)
        .stdout_contains("2\n");
}

/// A full disk while compressing (a 1 MiB tmpfs): the rotated original stays whole, no
/// partial `.gz` or temporary remains, and the run fails saying why.
#[test]
fn a_full_disk_during_compression_keeps_the_original() {
    let opsbook = Opsbook::new().file(
        "ops.yaml",
        "state_dir: state\nlogs:\n  sets:\n    app:\n      paths: [\"fs/app.log\"]\n      size: 1K\n",
    );
    let dir = opsbook.dir().to_path_buf();
    let fs = dir.join("fs");
    std::fs::create_dir_all(&fs).unwrap();
    let _mounted = crate::common::Mounted::tmpfs(&fs, "1m");
    // A tmpfs is 1777, which rotation refuses: only its owner writes here.
    std::fs::set_permissions(&fs, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // 700 KiB that gzip cannot shrink: the compressed copy does not fit beside it.
    let data = crate::common::noise(700 * 1024);
    std::fs::write(fs.join("app.log"), &data).unwrap();
    let run = Opsbook::new()
        .args([
            "--config",
            dir.join("ops.yaml").to_str().unwrap(),
            "logs",
            "rotate",
        ])
        .run_in(&dir)
        .expect_exit(1)
        .stderr_contains("No space left on device");
    assert_eq!(
        std::fs::read(fs.join("app.log.1")).unwrap(),
        data,
        "the original was damaged"
    );
    assert_eq!(
        names(&fs),
        ["app.log", "app.log.1"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        "{}",
        run.stderr
    );
}

/// A writer that cannot reopen appends numbered lines while rotation runs again and again
/// with copytruncate; returns (lines lost, rotations). `rotate` runs one rotation in `dir`.
fn copytruncate_workload(dir: &Path, rotate: &dyn Fn() -> bool) -> (usize, usize) {
    const LINES: usize = 100_000;
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    std::fs::write(
        dir.join("writer.sh"),
        // Paced (1,000 lines, then a pause) so even a busy machine sees many rotations.
        format!(
            "exec 3>>logs/app.log\nfor ((b=0;b<{};b++)); do for ((j=0;j<1000;j++)); do echo \"line $((b*1000+j))\" >&3; done; sleep 0.03; done\n",
            LINES / 1000
        ),
    )
    .unwrap();
    let mut writer = std::process::Command::new("bash")
        .arg("writer.sh")
        .current_dir(dir)
        .spawn()
        .unwrap();
    let mut rotations = 0;
    let started = Instant::now();
    while !dir.join("logs/app.log").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the writer did not start"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    loop {
        let done = writer.try_wait().unwrap().is_some();
        if rotate() {
            rotations += 1;
        }
        if done {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "writer did not finish"
        );
    }
    let mut seen = vec![false; LINES];
    for line in all_lines(&dir.join("logs")) {
        if let Some(n) = line
            .strip_prefix("line ")
            .and_then(|n| n.parse::<usize>().ok())
        {
            seen[n] = true;
        }
    }
    (seen.iter().filter(|s| !**s).count(), rotations)
}

/// copytruncate loses the lines written between the copy and the truncation, whoever does
/// it; opsbook keeps that window shorter than logrotate (Debian's) on the same workload.
#[test]
fn copytruncate_loses_no_more_than_logrotate() {
    let ours = Opsbook::new().file(
        "ops.yaml",
        &config("      paths: [\"logs/app.log\"]\n      size: 20K\n      keep: 100000\n      compress: none\n      mode: copytruncate\n"),
    );
    let ours_dir = ours.dir().to_path_buf();
    let (ours_lost, ours_rotations) = copytruncate_workload(&ours_dir, &|| {
        rotate_once(&ours_dir).contains("rotated 1 file")
    });

    let theirs = Opsbook::new();
    let theirs_dir = theirs.dir().to_path_buf();
    std::fs::write(
        theirs_dir.join("logrotate.conf"),
        format!(
            "{}/logs/app.log {{\n  copytruncate\n  size 20k\n  rotate 100000\n  missingok\n  notifempty\n  nocompress\n}}\n",
            theirs_dir.display()
        ),
    )
    .unwrap();
    let (theirs_lost, theirs_rotations) = copytruncate_workload(&theirs_dir, &|| {
        let before = names(&theirs_dir.join("logs")).len();
        let status = std::process::Command::new("logrotate")
            .args(["-s", "state", "logrotate.conf"])
            .current_dir(&theirs_dir)
            .status()
            .expect("logrotate (Debian package; scripts/test installs it)");
        assert!(status.success());
        names(&theirs_dir.join("logs")).len() > before
    });
    eprintln!(
        "copytruncate: opsbook lost {ours_lost} lines in {ours_rotations} rotations, \
         logrotate {theirs_lost} in {theirs_rotations}"
    );
    assert!(
        ours_rotations >= 3 && theirs_rotations >= 3,
        "too few rotations to compare"
    );
    let per = |lost: usize, n: usize| lost as f64 / n as f64;
    assert!(
        per(ours_lost, ours_rotations) <= per(theirs_lost, theirs_rotations),
        "opsbook lost {ours_lost} in {ours_rotations} rotations, logrotate {theirs_lost} in {theirs_rotations}"
    );
}

#[test]
fn a_set_with_its_own_line_format() {
    let set = "      paths: [\"edi.log\"]\n      format:\n        regex: '^(?P<time>\\S+ \\S+) <(?P<level>\\w+)> (?P<message>.*)$'\n        time_format: '%d.%m.%Y %H:%M:%S'\n";
    let log = "15.01.2025 10:30:00 <info> batch 1 received\n\
               15.01.2025 10:31:00 <error> batch 2 rejected: bad segment 17\n\
               15.01.2025 11:05:00 <error> batch 3 rejected: bad segment 4\n";
    let run = Opsbook::new()
        .env("TZ", "UTC")
        .file("ops.yaml", &config(set))
        .file("edi.log", log)
        .args([
            "--config", "ops.yaml", "logs", "summary", "--set", "app", "--format", "json",
        ])
        .run()
        .expect_exit(0);
    let json = run.json();
    assert_eq!(json["levels"], serde_json::json!({"ERROR": 2, "INFO": 1}));
    assert_eq!(
        json["top_errors"][0],
        serde_json::json!({"count": 2, "text": "batch <n> rejected: bad segment <n>"})
    );
    assert_eq!(
        json["errors_per_hour"],
        serde_json::json!({"2025-01-15 10:00": 1, "2025-01-15 11:00": 1})
    );
    Opsbook::new()
        .env("TZ", "UTC")
        .env("OPSBOOK_NOW", "2025-01-15T11:45:00Z")
        .file("ops.yaml", &config(set))
        .file("edi.log", log)
        .args([
            "--config", "ops.yaml", "logs", "search", "batch", "--set", "app", "--level", "ERROR",
            "--since", "1h", "--count",
        ])
        .run()
        .expect_exit(0)
        .stdout_contains("1\n");
    Opsbook::new()
        .file(
            "ops.yaml",
            &config("      paths: [\"edi.log\"]\n      format: nginx\n"),
        )
        .args(["--config", "ops.yaml", "logs", "summary", "--set", "app"])
        .run()
        .expect_exit(78)
        .stderr_contains("ops.yaml:6:15: unknown log format \"nginx\"");
}

#[test]
fn bad_search_and_tail_arguments_say_what_is_wrong() {
    Opsbook::new()
        .file("app.log", "x\n")
        .args(["logs", "search", "(", "-E", "app.log"])
        .run()
        .expect_exit(64)
        .stderr_contains("invalid regex \"(\"");
    Opsbook::new()
        .file("app.log", "x\n")
        .args(["logs", "search", "x", "app.log", "--level", "LOUD"])
        .run()
        .expect_exit(64)
        .stderr_contains("LOUD");
    Opsbook::new()
        .file("logs/app.log", "x\n")
        .args(["logs", "tail", "logs"])
        .run()
        .expect_exit(64)
        .stderr_contains("logs is a directory: name the log file");
}

/// `logs rotate` once with `dir/ops.yaml`, which must succeed: what it printed.
fn rotate_once(dir: &std::path::Path) -> String {
    let run = Opsbook::new()
        .args([
            "--config",
            dir.join("ops.yaml").to_str().unwrap(),
            "logs",
            "rotate",
        ])
        .run_in(dir);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    run.stdout
}
