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
    let held = hold_lock(&opsbook.path("state/locks/logs-rotate-app.lock"));
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

/// Hold the lock file `path` as another run would, recording `pid 4242` as its holder.
fn hold_lock(path: &Path) -> std::fs::File {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, "pid 4242 since 2026-01-01T00:00:00Z").unwrap();
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    held.try_lock().unwrap();
    held
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

/// A writer appends numbered lines while rotation runs again and again; it reopens its log
/// on HUP. Afterwards every line is there exactly once. Paced by rotations, not time: the
/// writer writes a batch, then waits on a FIFO for a token the test sends after each
/// rotation, so it can never finish before many rotations have happened, however loaded
/// the machine (while it writes a batch, rotations run concurrently).
#[test]
fn create_mode_with_a_writer_that_reopens_on_hup_loses_nothing() {
    use std::io::Write;
    const LINES: usize = 100_000;
    const BATCHES: usize = 20;
    let opsbook = Opsbook::new()
        .file(
            "ops.yaml",
            &config(
                "      paths: [\"logs/app.log\"]\n      keep: 10000\n      signal: HUP\n      pid_file: writer.pid\n",
            ),
        )
        .file(
            "writer.sh",
            &format!(
                "trap 'exec 3>>logs/app.log' HUP\nexec 3>>logs/app.log\nexec 4<go\necho $$ > writer.pid.tmp && mv writer.pid.tmp writer.pid\n\
                 for ((b=0;b<{BATCHES};b++)); do\n  for ((j=0;j<{per};j++)); do echo \"line $((b*{per}+j))\" >&3; done\n  \
                 if ((b+1<{BATCHES})); then read -r -u 4 token || exit 3; fi\ndone\n",
                per = LINES / BATCHES
            ),
        );
    let dir = opsbook.dir().to_path_buf();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let fifo = std::ffi::CString::new(dir.join("go").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let mut writer = std::process::Command::new("bash")
        .arg("writer.sh")
        .current_dir(&dir)
        .spawn()
        .unwrap();
    // Opening the FIFO waits for the writer to open its end: an event, not a delay.
    let mut tokens = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("go"))
        .unwrap();
    let started = Instant::now();
    let mut rotations = 0;
    loop {
        let done = writer.try_wait().unwrap().is_some();
        if rotate_once(&dir).contains("rotated 1 file") {
            rotations += 1;
            let _ = tokens.write_all(b"go\n");
        }
        if done {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "writer did not finish"
        );
    }
    assert!(writer.wait().unwrap().success());
    assert!(
        rotations >= BATCHES,
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
    let opsbook = history(Opsbook::new());
    let dir = opsbook.dir().to_path_buf();
    let run = opsbook
        .args(["logs", "search", "WARNING", "logs/app.log", "-C", "1"])
        .run_in(&dir)
        .expect_exit(0);
    let dir = &dir;
    // `file:line:text` like `grep -Hn`, for one file too.
    assert_eq!(
        run.stdout,
        "logs/app.log-5-2025-01-15 10:32:00,005 - app - INFO - Performance: pattern_load took 1200.50ms\n\
         logs/app.log:6:2025-01-15 11:15:00,006 - app - WARNING - disk 85% full\n\
         logs/app.log-7-2025-01-15 11:16:00,007 - app - ERROR - Failed to load pattern 7 after 20ms\n"
    );
    let grep = std::process::Command::new("grep")
        .args(["-Hn", "-C", "1", "WARNING", "logs/app.log"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(run.stdout, String::from_utf8_lossy(&grep.stdout));
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
        .stdout_contains("10 lines in 1 file: CRITICAL 1, ERROR 2, WARNING 1, INFO 4")
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

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
}

fn mode_of(path: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions())
        & 0o7777
}

fn rotate_in(dir: &Path) -> crate::common::Run {
    Opsbook::new()
        .args([
            "--config",
            dir.join("ops.yaml").to_str().unwrap(),
            "logs",
            "rotate",
        ])
        .run_in(dir)
}

/// A log that is a symlink (to a file elsewhere) or has a second hard link is refused in
/// every mode: named, exit 1, and nothing is touched, neither the log nor what it links to.
#[test]
fn a_log_that_is_a_symlink_or_has_hard_links_is_refused_in_every_mode() {
    for mode in ["create", "copytruncate"] {
        let opsbook = Opsbook::new()
            .file(
                "ops.yaml",
                &config(&format!(
                    "      paths: [\"logs/*.log\"]\n      mode: {mode}\n"
                )),
            )
            .file("victim/secret.conf", "password: hunter2\n")
            .file("other/keep.log", "kept\n");
        let dir = opsbook.dir().to_path_buf();
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        std::os::unix::fs::symlink("../victim/secret.conf", dir.join("logs/app.log")).unwrap();
        let run = rotate_in(&dir).expect_exit(1).stderr_contains(
            "logs/app.log is a symbolic link (to ../victim/secret.conf): refusing to touch it",
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("victim/secret.conf")).unwrap(),
            "password: hunter2\n",
            "{mode}: {}",
            run.stderr
        );
        assert_eq!(
            names(&dir.join("logs")),
            BTreeSet::from(["app.log".to_string()])
        );
        assert_eq!(
            names(&dir.join("victim")),
            BTreeSet::from(["secret.conf".to_string()])
        );

        std::fs::remove_file(dir.join("logs/app.log")).unwrap();
        std::fs::hard_link(dir.join("other/keep.log"), dir.join("logs/app.log")).unwrap();
        rotate_in(&dir)
            .expect_exit(1)
            .stderr_contains("logs/app.log has 2 hard links: refusing to touch it");
        assert_eq!(
            std::fs::read_to_string(dir.join("other/keep.log")).unwrap(),
            "kept\n"
        );
        assert_eq!(
            names(&dir.join("logs")),
            BTreeSet::from(["app.log".to_string()])
        );
    }
}

/// A log directory others can write to (world-writable, sticky or not, or group-writable
/// by a group other than root's) is refused before anything moves.
#[test]
fn a_log_directory_others_can_write_to_is_refused() {
    for (mode, group, said) in [
        (0o1777, 0, "(mode 1777) is writable by every user"),
        (0o0777, 0, "(mode 0777) is writable by every user"),
        (0o0775, 1000, "(mode 0775) is writable by group 1000"),
    ] {
        let opsbook = Opsbook::new()
            .file("ops.yaml", &config("      paths: [\"logs/app.log\"]\n"))
            .file("logs/app.log", "line\n");
        let dir = opsbook.dir().to_path_buf();
        std::os::unix::fs::chown(dir.join("logs"), None, Some(group)).unwrap();
        set_mode(&dir.join("logs"), mode);
        rotate_in(&dir).expect_exit(1).stderr_contains(said);
        assert_eq!(
            names(&dir.join("logs")),
            BTreeSet::from(["app.log".to_string()])
        );
    }
    // Group-writable by root's group is fine: only root can write there.
    let opsbook = Opsbook::new()
        .file("ops.yaml", &config("      paths: [\"logs/app.log\"]\n"))
        .file("logs/app.log", "line\n");
    let dir = opsbook.dir().to_path_buf();
    std::os::unix::fs::chown(dir.join("logs"), None, Some(0)).unwrap();
    set_mode(&dir.join("logs"), 0o775);
    rotate_in(&dir)
        .expect_exit(0)
        .stdout_contains("app: rotated 1 file");
}

/// `dateext`: five rotations within one second never reuse a name (a counter follows the
/// time), and `keep: 2` keeps the two newest.
#[test]
fn dateext_never_renames_onto_a_name_and_keep_applies_to_dated_names() {
    let opsbook = Opsbook::new().file(
        "ops.yaml",
        &config("      paths: [\"logs/app.log\"]\n      dateext: true\n      keep: 2\n"),
    );
    let dir = opsbook.dir().to_path_buf();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    for round in 1..=5 {
        std::fs::write(dir.join("logs/app.log"), format!("round {round}\n")).unwrap();
        Opsbook::new()
            .env("TZ", "UTC")
            .env("OPSBOOK_NOW", "2025-01-15T10:30:00Z")
            .args(["--config", "ops.yaml", "logs", "rotate"])
            .run_in(&dir)
            .expect_exit(0)
            .stdout_contains("app: rotated 1 file");
    }
    let expected: BTreeSet<String> = [
        "app.log",
        "app.log-20250115-103000-3.gz",
        "app.log-20250115-103000-4.gz",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(names(&dir.join("logs")), expected);
    let mut kept = all_lines(&dir.join("logs"));
    kept.sort();
    assert_eq!(kept, ["round 4", "round 5"]);
}

/// A stray `app.log.1.gz` beside opsbook's own `app.log.1` (delaycompress): both are kept,
/// the stray is named, the log is not rotated, exit 1. Before, the stray was shifted to
/// `.2.gz` and overwritten when `.2` was compressed.
#[test]
fn a_name_in_the_way_is_kept_and_that_log_is_not_rotated() {
    let stray = {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, b"stray\n").unwrap();
        gz.finish().unwrap()
    };
    let opsbook = Opsbook::new()
        .file(
            "ops.yaml",
            &config("      paths: [\"logs/app.log\"]\n      delaycompress: true\n"),
        )
        .file("logs/app.log", "current\n")
        .file("logs/app.log.1", "previous\n");
    let dir = opsbook.dir().to_path_buf();
    std::fs::write(dir.join("logs/app.log.1.gz"), &stray).unwrap();
    let run = rotate_in(&dir)
        .expect_exit(1)
        .stderr_contains("logs/app.log.1 and logs/app.log.1.gz are all rotation 1 of logs/app.log")
        .stderr_contains("logs/app.log not rotated");
    assert!(
        run.stdout.contains("app: rotated 0 files, 1 error\n"),
        "{}",
        run.stdout
    );
    assert_eq!(std::fs::read(dir.join("logs/app.log.1.gz")).unwrap(), stray);
    assert_eq!(
        std::fs::read_to_string(dir.join("logs/app.log.1")).unwrap(),
        "previous\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("logs/app.log")).unwrap(),
        "current\n"
    );
    assert_eq!(names(&dir.join("logs")).len(), 3);
}

#[test]
fn keep_zero_keeps_no_rotated_file() {
    let opsbook = Opsbook::new()
        .file(
            "ops.yaml",
            &config("      paths: [\"logs/app.log\"]\n      keep: 0\n"),
        )
        .file("logs/app.log", "gone\n")
        .file("logs/app.log.1.gz", "older");
    let dir = opsbook.dir().to_path_buf();
    rotate_in(&dir)
        .expect_exit(0)
        .stdout_contains("app: rotated 1 file");
    assert_eq!(
        names(&dir.join("logs")),
        BTreeSet::from(["app.log".to_string()])
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("logs/app.log")).unwrap(),
        ""
    );
}

/// copytruncate keeps the log's own mode (0600 stays 0600 under a 022 umask), and so do the
/// compressed rotated files and the archive.
#[test]
fn rotated_compressed_and_archived_files_keep_the_logs_mode() {
    for (mode, compress, rotated) in [
        ("copytruncate", "none", "app.log.1"),
        ("copytruncate", "gzip", "app.log.1.gz"),
        ("create", "zstd", "app.log.1.zst"),
    ] {
        let opsbook = Opsbook::new()
            .file(
                "ops.yaml",
                &config(&format!(
                    "      paths: [\"logs/app.log\"]\n      mode: {mode}\n      compress: {compress}\n      archive_after: 1s\n      archive_dir: archive\n"
                )),
            )
            .file("logs/app.log", "secret line\n");
        let dir = opsbook.dir().to_path_buf();
        set_mode(&dir.join("logs/app.log"), 0o600);
        rotate_in(&dir).expect_exit(0);
        assert_eq!(mode_of(&dir.join("logs/app.log")), 0o600, "{mode}");
        assert_eq!(
            mode_of(&dir.join("logs").join(rotated)),
            0o600,
            "{mode} {rotated}"
        );
        let old = std::time::SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(dir.join("logs").join(rotated))
            .unwrap()
            .set_modified(old)
            .unwrap();
        Opsbook::new()
            .args(["--config", "ops.yaml", "logs", "archive"])
            .run_in(&dir)
            .expect_exit(0);
        let archives: Vec<String> = names(&dir.join("archive")).into_iter().collect();
        assert_eq!(archives.len(), 1, "{archives:?}");
        assert_eq!(mode_of(&dir.join("archive").join(&archives[0])), 0o600);
    }
}

/// A full disk while the archive is finished (the whole compressed stream still sits in
/// the write buffer, a 64 KiB tmpfs): no archive under any name, originals kept, exit 1.
/// Before, the buffered error was dropped and an empty archive got its final name.
#[test]
fn archive_on_a_full_disk_leaves_no_archive_and_keeps_the_originals() {
    let opsbook = Opsbook::new().file(
        "ops.yaml",
        &config("      paths: [\"logs/app.log\"]\n      archive_after: 30d\n      archive_dir: archive\n"),
    )
    .file("logs/app.log", "live\n");
    let dir = opsbook.dir().to_path_buf();
    let _mounted = crate::common::Mounted::tmpfs(&dir.join("archive"), "64k");
    set_mode(&dir.join("archive"), 0o755);
    let data = crate::common::noise(100 * 1024);
    let old = std::time::SystemTime::now() - Duration::from_secs(40 * 86_400);
    for name in ["logs/app.log.1", "logs/app.log.2"] {
        std::fs::write(dir.join(name), &data).unwrap();
        std::fs::File::options()
            .write(true)
            .open(dir.join(name))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let run = Opsbook::new()
        .args(["--config", "ops.yaml", "logs", "archive"])
        .run_in(&dir)
        .expect_exit(1)
        .stderr_contains("No space left on device")
        .stderr_contains("the originals are kept");
    assert_eq!(
        names(&dir.join("archive")),
        BTreeSet::new(),
        "{}",
        run.stderr
    );
    for name in ["logs/app.log.1", "logs/app.log.2"] {
        assert_eq!(std::fs::read(dir.join(name)).unwrap(), data);
    }
}

/// `logs archive` never reads through a planted link: a rotated name that is a symlink to
/// a secret is refused, nothing is archived or deleted.
#[test]
fn archive_refuses_a_rotated_name_that_is_a_symlink() {
    let opsbook = Opsbook::new()
        .file(
            "ops.yaml",
            &config("      paths: [\"logs/app.log\"]\n      archive_after: 1s\n      archive_dir: archive\n"),
        )
        .file("logs/app.log", "live\n")
        .file("secret", "root only\n");
    let dir = opsbook.dir().to_path_buf();
    std::os::unix::fs::symlink(dir.join("secret"), dir.join("logs/app.log.1")).unwrap();
    Opsbook::new()
        .args(["--config", "ops.yaml", "logs", "archive"])
        .run_in(&dir)
        .expect_exit(1)
        .stderr_contains("logs/app.log.1 is a symbolic link");
    assert!(!dir.join("archive").exists() || names(&dir.join("archive")).is_empty());
    assert_eq!(
        std::fs::read_to_string(dir.join("secret")).unwrap(),
        "root only\n"
    );
    assert!(std::fs::symlink_metadata(dir.join("logs/app.log.1")).is_ok());
}

/// copytruncate on a full disk (a 1 MiB tmpfs, a 700 KiB log): the copy fails, no torn
/// `app.log.1` is left to duplicate the log's lines at the next rotation, the log is whole.
#[test]
fn copytruncate_on_a_full_disk_leaves_no_torn_copy() {
    let opsbook = Opsbook::new().file(
        "ops.yaml",
        &config("      paths: [\"fs/app.log\"]\n      mode: copytruncate\n      compress: none\n"),
    );
    let dir = opsbook.dir().to_path_buf();
    let fs = dir.join("fs");
    let _mounted = crate::common::Mounted::tmpfs(&fs, "1m");
    set_mode(&fs, 0o755);
    let data = crate::common::noise(700 * 1024);
    std::fs::write(fs.join("app.log"), &data).unwrap();
    rotate_in(&dir)
        .expect_exit(1)
        .stderr_contains("No space left on device");
    assert_eq!(names(&fs), BTreeSet::from(["app.log".to_string()]));
    assert_eq!(std::fs::read(fs.join("app.log")).unwrap(), data);
}

/// The state file cannot be saved (strace makes its rename fail): the run says so and exits
/// 1, but counts the rotation and still compresses it.
#[test]
fn a_state_file_that_cannot_be_saved_is_reported_and_the_rotation_finishes() {
    let opsbook = Opsbook::new()
        .file("ops.yaml", &config("      paths: [\"logs/app.log\"]\n"))
        .file("logs/app.log", "kept line\n");
    let dir = opsbook.dir().to_path_buf();
    let run = std::process::Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-P",
            "state/logs-app.json",
            "-e",
            "trace=rename,renameat,renameat2",
            "-e",
            "inject=rename,renameat,renameat2:error=EROFS",
            env!("CARGO_BIN_EXE_opsbook"),
            "--config",
            "ops.yaml",
            "logs",
            "rotate",
        ])
        .current_dir(&dir)
        .output()
        .expect("strace");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert_eq!(run.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("app: rotated 1 file, 1 error\n"),
        "{stdout}"
    );
    assert!(
        stderr.contains("the rotation state was not saved")
            && stderr.contains("Read-only file system"),
        "{stderr}"
    );
    assert_eq!(
        names(&dir.join("logs")),
        ["app.log", "app.log.1.gz"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    assert_eq!(all_lines(&dir.join("logs")), ["kept line"]);
}

/// Kill `logs rotate` at each named stop point (both modes), run it again twice: every
/// line of the original log, and of the older rotated files, is in exactly one file.
#[test]
fn a_rotation_killed_at_every_stop_point_keeps_every_line_exactly_once() {
    let points = [
        ("create", "shifted"),
        ("create", "intent-saved"),
        ("create", "renamed"),
        ("create", "created"),
        ("create", "notified"),
        ("create", "state-saved"),
        ("create", "compress-written"),
        ("create", "compress-renamed"),
        ("create", "compressed"),
        ("create", "expired"),
        ("copytruncate", "shifted"),
        ("copytruncate", "intent-saved"),
        ("copytruncate", "copy-written"),
        ("copytruncate", "copy-renamed"),
        ("copytruncate", "truncated"),
        ("copytruncate", "notified"),
        ("copytruncate", "state-saved"),
        ("copytruncate", "compress-written"),
        ("copytruncate", "compress-renamed"),
        ("copytruncate", "compressed"),
        ("copytruncate", "expired"),
    ];
    let gz = |text: String| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
        gz.finish().unwrap()
    };
    for (mode, point) in points {
        let opsbook = Opsbook::new().file(
            "ops.yaml",
            &config(&format!(
                "      paths: [\"logs/app.log\"]\n      mode: {mode}\n      keep: 5\n      max_age: 30d\n"
            )),
        );
        let dir = opsbook.dir().to_path_buf();
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let live: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(logs.join("app.log"), &live).unwrap();
        let older: String = (0..100).map(|i| format!("old {i}\n")).collect();
        std::fs::write(logs.join("app.log.2.gz"), gz(older)).unwrap();
        // Past max_age: deleted by the run (its lines may go).
        std::fs::write(logs.join("app.log.3.gz"), gz("ancient\n".to_string())).unwrap();
        std::fs::File::options()
            .write(true)
            .open(logs.join("app.log.3.gz"))
            .unwrap()
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(40 * 86_400))
            .unwrap();
        let killed = Opsbook::new()
            .env("OPSBOOK_TEST_STOP_AT", point)
            .args(["--config", "ops.yaml", "logs", "rotate"])
            .run_in(&dir);
        assert_eq!(
            killed.code, None,
            "{mode}: the run did not stop at {point}:\n{}\n{}",
            killed.stdout, killed.stderr
        );
        for again in 1..=2 {
            let run = rotate_in(&dir);
            assert_eq!(
                run.code,
                Some(0),
                "{mode} killed at {point}, run {again}:\n{}\n{}",
                run.stdout,
                run.stderr
            );
        }
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for line in all_lines(&logs) {
            *counts.entry(line).or_default() += 1;
        }
        for i in 0..1000 {
            assert_eq!(
                counts.get(&format!("line {i}")),
                Some(&1),
                "{mode} killed at {point}: line {i}"
            );
        }
        for i in 0..100 {
            assert_eq!(
                counts.get(&format!("old {i}")),
                Some(&1),
                "{mode} killed at {point}: old {i}"
            );
        }
        assert!(counts.get("ancient").is_none_or(|n| *n == 1));
        let left: Vec<String> = names(&logs)
            .into_iter()
            .filter(|n| n.ends_with(".opsbook-tmp"))
            .collect();
        assert!(left.is_empty(), "{mode} killed at {point}: {left:?}");
        assert!(!dir.join("state/logs-app.intent.json").exists());
    }
}

/// `tail -f`: a line appended just before `mv app.log app.log.1` and a new `app.log` is
/// shown (the old file is drained first), then the new file's. Paced by the lines read.
#[test]
fn tail_follow_drains_the_renamed_file_before_switching() {
    use std::io::BufRead;
    let opsbook = Opsbook::new().file("app.log", "first\n");
    let dir = opsbook.dir().to_path_buf();
    let mut running = Opsbook::new()
        .args(["logs", "tail", "-f", dir.join("app.log").to_str().unwrap()])
        .spawn();
    let mut stdout = std::io::BufReader::new(running.child.stdout.take().unwrap());
    let (done, watchdog) = std::sync::mpsc::channel::<()>();
    let pid = running.child.id() as i32;
    std::thread::spawn(move || {
        if watchdog.recv_timeout(Duration::from_secs(30)).is_err() {
            // SAFETY: kill(2) on our child, which has not been reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut next = || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        line
    };
    assert_eq!(next(), "first\n");
    for round in 0..3 {
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(dir.join("app.log"))
                .unwrap();
            f.write_all(format!("appended {round}\n").as_bytes())
                .unwrap();
        }
        std::fs::rename(dir.join("app.log"), dir.join(format!("app.log.{round}"))).unwrap();
        std::fs::write(dir.join("app.log"), format!("new {round}\n")).unwrap();
        assert_eq!(next(), format!("appended {round}\n"));
        assert_eq!(next(), format!("new {round}\n"));
    }
    let _ = done.send(());
    running.signal(libc::SIGTERM);
    running.finish(Duration::from_secs(5)).expect_exit(0);
}

/// A huge `-C` is clamped with a warning, not an abort.
#[test]
fn search_with_a_huge_context_does_not_abort() {
    let log: String = (0..50).map(|i| format!("line {i}\n")).collect();
    let run = Opsbook::new()
        .file("app.log", &log)
        .args([
            "logs",
            "search",
            "line 25",
            "app.log",
            "-C",
            "18446744073709551615",
        ])
        .run()
        .expect_exit(0)
        .stderr_contains("showing at most 10000 lines of context");
    assert_eq!(run.stdout.lines().count(), 50);
    assert!(
        run.stdout.contains("app.log:26:line 25\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.starts_with("app.log-1-line 0\n"),
        "{}",
        run.stdout
    );
}

const SYSLOG: &str = "\
Jan 15 10:30:00 web1 sshd[812]: Failed password for root from 10.0.0.9 port 52113 ssh2
Jan 15 10:30:02 web1 sshd[812]: Connection closed by authenticating user root 10.0.0.9
Jan 15 10:31:00 web1 kernel: [12345.678] Out of memory: Killed process 4242 (python3)
";

const APACHE_ERRORS: &str = "\
[Wed Jan 15 10:30:00.123456 2025] [core:error] [pid 35708:tid 4328636416] [client 10.0.0.9:52113] File does not exist: /var/www/favicon.ico
[Wed Jan 15 10:31:00.123456 2025] [proxy:error] [pid 35708:tid 4328636416] AH00957: HTTP: attempt to connect to 127.0.0.1:8080 failed
";

/// Files in no format opsbook recognises (syslog, Apache's error log): `logs summary` and
/// `logs search --level` say so on stderr, and the `log_errors` step is unknown, saying to
/// set `format:`, instead of a false "0 ERROR+ lines" ok. With `format:` it counts.
#[test]
fn files_in_an_unrecognised_format_are_unknown_not_ok() {
    for (name, text) in [("syslog", SYSLOG), ("error.log", APACHE_ERRORS)] {
        Opsbook::new()
            .file(name, text)
            .args(["logs", "summary", name])
            .run()
            .expect_exit(0)
            .stderr_contains(&format!("{name}: none of its lines"))
            .stderr_contains("set `format:`");
        Opsbook::new()
            .file(name, text)
            .args(["logs", "search", "1", name, "--level", "ERROR"])
            .run()
            .expect_exit(1)
            .stderr_contains(&format!("{name}: none of its lines"))
            .stderr_contains("set `format:`");
    }
    let step = |name: &str, spec: &str| {
        let run = Opsbook::new()
            .file(
                "rb.yaml",
                &format!("steps:\n  - name: {name}\n    log_errors:\n{spec}"),
            )
            .file("syslog", SYSLOG)
            .file("error.log", APACHE_ERRORS)
            .args(["run", "rb.yaml", "--yes", "--format", "json"])
            .run();
        let json = run.json();
        (
            json["checks"][name]["severity"]
                .as_str()
                .unwrap_or("missing")
                .to_string(),
            json["checks"][name]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    for (name, path) in [("syslog errors", "syslog"), ("apache errors", "error.log")] {
        let (severity, message) = step(name, &format!("      path: {path}\n"));
        assert_eq!(severity, "unknown", "{message}");
        assert!(message.contains("set the step's `format:`"), "{message}");
    }
    let (severity, message) = step(
        "apache with a format",
        "      path: error.log\n      max: 5\n      format: { regex: '^\\[(?P<time>[^]]+)\\] \\[\\w+:(?P<level>\\w+)\\]' }\n",
    );
    assert_eq!(severity, "ok", "{message}");
    assert!(message.starts_with("2 ERROR+ lines of 2"), "{message}");
}

/// `logs --help` and `opsbook --help` describe `logs` as a whole; each subcommand has its
/// own line.
#[test]
fn logs_help_describes_each_subcommand() {
    let run = Opsbook::new().args(["logs", "--help"]).run().expect_exit(0);
    assert!(!run.stdout.contains("Rotate log sets"), "{}", run.stdout);
    for line in [
        "rotate   Rotate the log sets that are due",
        "archive  Put rotated files older than",
        "search   Lines matching PATTERN",
        "tail     The last lines of a log",
        "summary  Levels, top errors",
    ] {
        assert!(run.stdout.contains(line), "{line}: {}", run.stdout);
    }
    let top = Opsbook::new().args(["--help"]).run().expect_exit(0);
    assert!(
        top.stdout
            .contains("Log sets and files: rotate, archive, search, tail, summary"),
        "{}",
        top.stdout
    );
}

/// The fresh log cannot be created after the rename (strace fails its `openat`): the run
/// reports it and exits 1, the other log of the set still rotates, and the intent record
/// survives that other rotation, so the next run recreates the missing log.
#[test]
fn a_log_that_could_not_be_recreated_is_recreated_by_the_next_run() {
    let opsbook = Opsbook::new()
        .file("ops.yaml", &config("      paths: [\"logs/*.log\"]\n"))
        .file("logs/a.log", "a line\n")
        .file("logs/b.log", "b line\n");
    let dir = opsbook.dir().to_path_buf();
    let run = std::process::Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-P",
            "logs/a.log",
            "-e",
            "trace=open,openat,openat2",
            "-e",
            "inject=open,openat,openat2:error=ENOSPC",
            env!("CARGO_BIN_EXE_opsbook"),
            "--config",
            "ops.yaml",
            "logs",
            "rotate",
        ])
        .current_dir(&dir)
        .output()
        .expect("strace");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot create logs/a.log"), "{stderr}");
    assert!(!dir.join("logs/a.log").exists());
    assert!(dir.join("state/logs-app.intent.json").exists());
    rotate_in(&dir).expect_exit(0).stdout_contains(
        "app: recreated logs/a.log, which an interrupted rotation had renamed to logs/a.log.1",
    );
    assert!(dir.join("logs/a.log").exists());
    assert!(!dir.join("state/logs-app.intent.json").exists());
    let mut lines = all_lines(&dir.join("logs"));
    lines.sort();
    assert_eq!(lines, ["a line", "b line"]);
}

/// `logs archive` and the `rotate` and `archive` runbook steps all go through the set's one
/// lock: held by another run, the command exits 75 and each step is critical, naming the
/// holder, and no file moves; once free, the step archives what the command would have.
#[test]
fn the_archive_command_and_the_rotate_and_archive_steps_share_the_sets_lock() {
    let opsbook = Opsbook::new()
        .file(
            "ops.yaml",
            &config("      paths: [\"logs/app.log\"]\n      archive_after: 30d\n"),
        )
        .file(
            "rotate.yaml",
            "name: rotate\nsteps:\n  - name: Rotate\n    rotate: { set: app, force: true }\n",
        )
        .file(
            "archive.yaml",
            "name: archive\nsteps:\n  - name: Archive\n    archive: { set: app }\n",
        )
        .file("logs/app.log", "live\n")
        .file("logs/app.log.1", "old\n");
    let dir = opsbook.dir().to_path_buf();
    let old = std::time::SystemTime::now() - Duration::from_secs(40 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(dir.join("logs/app.log.1"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let held = hold_lock(&opsbook.path("state/locks/logs-rotate-app.lock"));
    let before = BTreeSet::from(["app.log".to_string(), "app.log.1".to_string()]);
    let holder = "log set \"app\" is locked by another run (pid 4242 since 2026-01-01T00:00:00Z";
    Opsbook::new()
        .args(["--config", "ops.yaml", "logs", "archive"])
        .run_in(&dir)
        .expect_exit(75)
        .stderr_contains(holder);
    for runbook in ["rotate.yaml", "archive.yaml"] {
        let run = Opsbook::new()
            .args(["--config", "ops.yaml", "run", runbook])
            .run_in(&dir);
        assert_ne!(run.code, Some(0), "{}", run.stdout);
        assert_eq!(run.stdout.matches(holder).count(), 1, "{}", run.stdout);
    }
    assert_eq!(names(&dir.join("logs")), before);
    drop(held);
    let run = Opsbook::new()
        .args(["--config", "ops.yaml", "run", "archive.yaml"])
        .run_in(&dir)
        .expect_exit(0);
    assert!(
        run.stdout
            .contains("log set app: archived 1 file into logs/app-"),
        "{}",
        run.stdout
    );
    let left = names(&dir.join("logs"));
    assert!(!left.contains("app.log.1"), "{left:?}");
    assert_eq!(
        left.iter().filter(|n| n.ends_with(".tar.gz")).count(),
        1,
        "{left:?}"
    );
}

/// The age rule of archiving is one rule for the command and the step: the override, else
/// the set's `archive_after`, else a usage error that says how to give one (exit 64; an
/// unknown step), and nothing is archived.
#[test]
fn a_set_without_archive_after_is_refused_by_the_archive_command_and_step_alike() {
    let opsbook = Opsbook::new()
        .file("ops.yaml", &config("      paths: [\"logs/app.log\"]\n"))
        .file(
            "archive.yaml",
            "name: archive\nsteps:\n  - name: Rotate\n    rotate: { set: app, force: true }\n  - name: Archive\n    archive: { set: app }\n",
        )
        .file("logs/app.log", "live\n");
    let dir = opsbook.dir().to_path_buf();
    let missing = "log set \"app\" has no `archive_after`: give one, or";
    Opsbook::new()
        .args(["--config", "ops.yaml", "logs", "archive", "app"])
        .run_in(&dir)
        .expect_exit(64)
        .stderr_contains(&format!("{missing} --older-than"));
    Opsbook::new()
        .args(["--config", "ops.yaml", "run", "archive.yaml"])
        .run_in(&dir)
        .expect_exit(3)
        .stdout_contains(&format!("{missing} `older_than`"))
        .stdout_contains("log set app: rotated 1 file");
    let left = names(&dir.join("logs"));
    assert!(!left.iter().any(|n| n.ends_with(".tar.gz")), "{left:?}");
}
