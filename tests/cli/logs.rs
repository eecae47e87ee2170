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
        let run = Opsbook::new()
            .args([
                "--config",
                dir.join("ops.yaml").to_str().unwrap(),
                "logs",
                "rotate",
            ])
            .run_in(&dir)
            .expect_exit(0);
        assert!(run.stdout.contains("app: rotated 1 file"), "{}", run.stdout);
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
        let run = Opsbook::new()
            .args([
                "--config",
                dir.join("ops.yaml").to_str().unwrap(),
                "logs",
                "rotate",
            ])
            .run_in(&dir);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        if run.stdout.contains("rotated 1 file") {
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
