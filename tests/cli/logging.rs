use crate::common::Opsbook;

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
