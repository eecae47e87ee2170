use crate::common::Opsbook;

#[test]
fn help_lists_the_commands() {
    let run = Opsbook::new().args(["--help"]).run().expect_exit(0);
    for command in ["health", "config", "completions", "man"] {
        assert!(
            run.stdout.contains(command),
            "{command} missing:\n{}",
            run.stdout
        );
    }
}

#[test]
fn version_prints_the_crate_version() {
    Opsbook::new()
        .args(["--version"])
        .run()
        .expect_exit(0)
        .stdout_contains(env!("CARGO_PKG_VERSION"));
}

#[test]
fn usage_errors_exit_64() {
    Opsbook::new()
        .args(["frobnicate"])
        .run()
        .expect_exit(64)
        .stderr_contains("frobnicate");
    Opsbook::new()
        .run()
        .expect_exit(64)
        .stderr_contains("Usage");
    Opsbook::new()
        .args(["health", "--format", "xml"])
        .run()
        .expect_exit(64)
        .stderr_contains("unknown format \"xml\"");
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let run = Opsbook::new()
            .args(["completions", shell])
            .run()
            .expect_exit(0);
        assert!(
            run.stdout.contains("health"),
            "{shell} completions lack health"
        );
    }
    Opsbook::new()
        .args(["man"])
        .run()
        .expect_exit(0)
        .stdout_contains(".TH opsbook");
}

#[test]
fn completions_work_even_with_a_broken_config() {
    Opsbook::new()
        .file("bad.yaml", "health: [\n")
        .args(["--config", "bad.yaml", "completions", "bash"])
        .run()
        .expect_exit(0);
}
