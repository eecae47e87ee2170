use crate::common::Opsbook;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[test]
fn log_to_file_writes_application_errors_and_audit_logs() {
    let test = Opsbook::new()
        .readings(10.0, 10.0, 1.0)
        .env("LOG_TO_FILE", "true")
        .env("LOG_DIR", "var/logs")
        .env("LOG_LEVEL", "DEBUG")
        .env("LOG_TO_CONSOLE", "false")
        .args(["health"]);
    let dir = test.path("var/logs");
    let run = test.run().expect_exit(0);
    assert!(
        !run.stderr.contains("configuration loaded"),
        "console is off"
    );
    let application =
        std::fs::read_to_string(dir.join("application.log")).expect("application.log");
    assert!(
        application.contains("configuration loaded"),
        "{application}"
    );
    assert!(dir.join("errors.log").is_file());
    assert!(dir.join("audit.log").is_file());
    let errors = std::fs::read_to_string(dir.join("errors.log")).expect("errors.log");
    assert!(
        !errors.contains("DEBUG"),
        "errors.log holds WARN and above only"
    );
}

#[test]
fn an_unusable_log_dir_warns_and_the_command_still_runs() {
    Opsbook::new()
        .readings(10.0, 10.0, 1.0)
        .file("blocker", "a file, not a directory")
        .env("LOG_TO_FILE", "1")
        .env("LOG_DIR", "blocker/logs")
        .args(["health"])
        .run()
        .expect_exit(0)
        .stderr_contains("warning: cannot write logs to blocker/logs")
        .stdout_contains("health: healthy");
}

#[test]
fn verbose_shows_debug_on_stderr_and_bad_log_level_is_78() {
    Opsbook::new()
        .readings(10.0, 10.0, 1.0)
        .args(["health", "-vv"])
        .run()
        .expect_exit(0)
        .stderr_contains("configuration loaded");
    Opsbook::new()
        .env("LOG_LEVEL", "LOUD")
        .args(["health"])
        .run()
        .expect_exit(78)
        .stderr_contains("$LOG_LEVEL: unknown log level \"LOUD\"");
}

/// Run opsbook in `dir` under `umask`, set in the child only (the test process's umask is
/// shared by every test thread), with the builder's clean environment plus `env`.
pub fn run_with_umask(
    dir: &Path,
    umask: u32,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_opsbook"));
    cmd.current_dir(dir)
        .args(args)
        .stdin(std::process::Stdio::null());
    crate::common::clean_env(&mut cmd);
    cmd.envs(env.iter().copied());
    // SAFETY: umask(2) is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(umask as libc::mode_t);
            Ok(())
        });
    }
    cmd.output().expect("run opsbook")
}

pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o7777
}

/// A file outside everything opsbook owns, which a planted link points at.
fn precious(dir: &Path) -> PathBuf {
    let path = dir.join("precious");
    std::fs::write(&path, "precious\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn untouched(path: &Path) {
    assert_eq!(std::fs::read_to_string(path).unwrap(), "precious\n");
    assert_eq!(mode(path), 0o600);
}

#[test]
fn own_log_files_planted_as_links_are_refused_and_their_targets_untouched() {
    for name in ["application.log", "errors.log", "audit.log"] {
        for dangling in [false, true] {
            let test = Opsbook::new()
                .readings(10.0, 10.0, 1.0)
                .env("LOG_TO_FILE", "true")
                .env("LOG_DIR", "logs")
                .env("LOG_LEVEL", "DEBUG")
                .args(["health"]);
            let dir = test.dir().to_path_buf();
            std::fs::create_dir(dir.join("logs")).unwrap();
            let target = if dangling {
                dir.join("created-through-the-link")
            } else {
                precious(&dir)
            };
            std::os::unix::fs::symlink(&target, dir.join("logs").join(name)).unwrap();
            let run = test
                .run_in(&dir)
                .expect_exit(0)
                .stderr_contains(&format!(
                    "refusing to open logs/{name}: it is a symbolic link"
                ))
                .stderr_contains("logging to stderr only");
            if dangling {
                assert!(!target.exists(), "{name}: created through the link");
            } else {
                untouched(&target);
            }
            drop(run);
        }
    }
}

#[test]
fn a_log_directory_others_can_write_to_is_refused() {
    let test = Opsbook::new()
        .readings(10.0, 10.0, 1.0)
        .env("LOG_TO_FILE", "true")
        .env("LOG_DIR", "logs")
        .args(["health"]);
    let logs = test.path("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = test
        .run()
        .expect_exit(0)
        .stderr_contains("refusing to use logs: anyone can write to it (mode 0777)");
    assert!(!logs.join("audit.log").exists());
    drop(run);
}

const QUICK: &str = "state_dir: state\nlogs:\n  sets:\n    app: { paths: [app.log], size: 1K }\nbackup:\n  destination: dest\n  sets:\n    conf: { paths: [app.log] }\nmaintain:\n  schedules:\n    quick: { runbook: quick.yaml }\n";

fn quick() -> Opsbook {
    Opsbook::new()
        .file("ops.yaml", QUICK)
        .file(
            "quick.yaml",
            "name: quick\nsteps:\n  - name: true\n    command: { run: \"true\" }\n",
        )
        .file("app.log", &"a line to rotate\n".repeat(100))
}

#[test]
fn locks_and_state_files_planted_as_links_are_refused_and_their_targets_untouched() {
    let cases: [(&str, &[&str]); 5] = [
        (
            "state/locks/logs-rotate-app.lock",
            &["--config", "ops.yaml", "logs", "rotate", "app"],
        ),
        (
            "state/logs-app.json",
            &["--config", "ops.yaml", "logs", "rotate", "app"],
        ),
        (
            "state/backup-verified.json",
            &["--config", "ops.yaml", "backup", "verify", "latest"],
        ),
        (
            "state/maintain.json",
            &["--config", "ops.yaml", "maintain", "run", "quick"],
        ),
        (
            "state/maintain.json.lock",
            &["--config", "ops.yaml", "maintain", "run", "quick"],
        ),
    ];
    for (planted, args) in cases {
        let test = quick().args(args.iter().copied());
        let dir = test.dir().to_path_buf();
        if planted.contains("backup-verified") {
            Opsbook::new()
                .args(["--config", "ops.yaml", "backup", "create", "conf"])
                .run_in(&dir)
                .expect_exit(0);
        }
        std::fs::create_dir_all(dir.join("state/locks")).unwrap();
        let target = precious(&dir);
        std::os::unix::fs::symlink(&target, dir.join(planted)).unwrap();
        let run = test.run_in(&dir);
        assert_ne!(run.code, Some(0), "{planted}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("{planted}: it is a symbolic link")),
            "{planted}:\n{}",
            run.stderr
        );
        untouched(&target);
    }
}

#[test]
fn a_state_directory_others_can_write_to_is_refused() {
    let test = quick().args(["--config", "ops.yaml", "maintain", "run", "quick"]);
    let state = test.path("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let run = test
        .run()
        .stderr_contains("refusing to use state: anyone can write to it (mode 1777)");
    assert_ne!(run.code, Some(0));
    assert!(!state.join("maintain.json").exists());
}

#[test]
fn own_files_get_their_modes_whatever_the_umask() {
    for umask in [0o000, 0o077] {
        let test = quick();
        let dir = test.dir().to_path_buf();
        let out = run_with_umask(
            &dir,
            umask,
            &[
                "--config",
                "ops.yaml",
                "maintain",
                "run",
                "quick",
                "--metrics",
                "metrics/opsbook.prom",
            ],
            &[
                ("LOG_TO_FILE", "true"),
                ("LOG_DIR", "logs"),
                ("LOG_LEVEL", "DEBUG"),
            ],
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected: [(&str, u32); 9] = [
            // node_exporter reads the textfile as its own user.
            ("metrics/opsbook.prom", 0o644),
            ("logs", 0o750),
            ("logs/application.log", 0o640),
            ("logs/errors.log", 0o640),
            ("logs/audit.log", 0o640),
            ("state", 0o700),
            ("state/maintain.json", 0o600),
            ("state/maintain.json.lock", 0o600),
            ("state/locks", 0o700),
        ];
        for (name, wanted) in expected {
            assert_eq!(
                mode(&dir.join(name)),
                wanted,
                "{name} under umask {umask:03o}"
            );
        }
        drop(test);
    }
}

#[test]
fn a_state_dir_that_others_can_swap_for_a_link_is_refused() {
    let test = Opsbook::new().file(
        "ops.yaml",
        "state_dir: shared/state\nbackup:\n  destination: dest\n  sets:\n    conf:\n      paths: [ops.yaml]\n",
    );
    let dir = test.dir().to_path_buf();
    // A directory anyone can write to (no sticky bit), holding opsbook's private state.
    std::fs::create_dir(dir.join("shared")).unwrap();
    std::fs::set_permissions(dir.join("shared"), std::fs::Permissions::from_mode(0o777)).unwrap();
    // Anyone can put a link to a root-owned, private directory there (or rename the real
    // state directory away first).
    let elsewhere = dir.join("root-only");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.join("shared/state")).unwrap();
    let run = Opsbook::new()
        .args(["--config", "ops.yaml", "backup", "create", "conf"])
        .run_in(&dir);
    assert_ne!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("shared"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "its folder {} (owner uid 0, mode 0777) can be written to by anyone",
            dir.join("shared").display()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn a_state_dir_in_a_sticky_folder_is_used_only_when_root_owns_it() {
    let test = Opsbook::new().file(
        "ops.yaml",
        "state_dir: sticky/state\nbackup:\n  destination: dest\n  sets:\n    conf:\n      paths: [ops.yaml]\n",
    );
    let dir = test.dir().to_path_buf();
    // Let another user reach the sticky folder, as they reach /tmp.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sticky = dir.join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let backup = || {
        Opsbook::new()
            .args(["--config", "ops.yaml", "backup", "create", "conf"])
            .run_in(&dir)
    };
    // Created by opsbook (root) inside the sticky folder: others cannot rename or replace it.
    let run = backup();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(sticky.join("state/locks").is_dir());
    // The same name, planted as a link by another user before opsbook first runs.
    std::fs::remove_dir_all(sticky.join("state")).unwrap();
    let elsewhere = dir.join("root-only");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
    let ln = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "ln",
            "-s",
        ])
        .arg(&elsewhere)
        .arg(sticky.join("state"))
        .status()
        .expect("setpriv");
    assert!(ln.success());
    assert_eq!(
        std::fs::symlink_metadata(sticky.join("state"))
            .unwrap()
            .uid(),
        65534
    );
    let run = backup();
    assert_ne!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "its folder {} (owner uid 0, mode 1777) can be written to by anyone and {} in it \
             is owned by uid 65534",
            sticky.display(),
            sticky.join("state").display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "remove {} and let opsbook create it",
            sticky.join("state").display()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn an_argument_that_is_not_utf8_is_audited_not_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let test = Opsbook::new()
        .file("ops.yaml", "state_dir: state\n")
        .file("src/f", "hi\n");
    let dir = test.dir().to_path_buf();
    let archive = dir.join(std::ffi::OsStr::from_bytes(b"a\xff.tar"));
    let tar = std::process::Command::new("tar")
        .arg("-cf")
        .arg(&archive)
        .arg("src")
        .current_dir(&dir)
        .status()
        .expect("GNU tar");
    assert!(tar.success());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_opsbook"))
        .args(["--config", "ops.yaml", "restore", "--archive"])
        .arg(&archive)
        .arg("--to")
        .arg(std::ffi::OsStr::from_bytes(b"out\xff"))
        .current_dir(&dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LOG_TO_FILE", "true")
        .env("LOG_DIR", "ops-logs")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let restored = dir.join(std::ffi::OsStr::from_bytes(b"out\xff/src/f"));
    assert_eq!(std::fs::read_to_string(restored).unwrap(), "hi\n");
    let audit = std::fs::read_to_string(dir.join("ops-logs/audit.log")).unwrap();
    let line = audit.lines().last().unwrap();
    assert!(line.contains("restore --archive"), "{audit}");
    assert!(line.contains("a\u{fffd}.tar"), "{audit}");
}
