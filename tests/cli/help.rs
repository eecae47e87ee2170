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

/// The subcommands `opsbook PATH --help` lists (without clap's `help`).
fn subcommands(path: &[String]) -> Vec<String> {
    let run = Opsbook::new()
        .args(path.iter().cloned())
        .args(["--help"])
        .run()
        .expect_exit(0);
    run.stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every command that takes no subcommand, as its words.
fn leaf_commands() -> Vec<Vec<String>> {
    let mut leaves = Vec::new();
    let mut todo = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        let subs = subcommands(&path);
        if subs.is_empty() {
            leaves.push(path);
            continue;
        }
        for sub in subs {
            let mut next = path.clone();
            next.push(sub);
            todo.push(next);
        }
    }
    leaves.sort();
    leaves
}

/// The `--format` line of a command's help, joined across its wrapped lines.
fn format_help(path: &[String]) -> String {
    let run = Opsbook::new()
        .args(path.iter().cloned())
        .args(["--help"])
        .run()
        .expect_exit(0);
    let mut lines = run
        .stdout
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("--format <FORMAT>"));
    let mut text = lines.next().unwrap_or_default().to_string();
    for more in lines.take_while(|l| l.starts_with("          ")) {
        text.push(' ');
        text.push_str(more.trim());
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn every_command_help_names_its_own_formats_and_the_command_agrees() {
    // The commands with formats, with the arguments that get them as far as reading
    // --format. A command whose help claims formats must be here, and each one must
    // refuse a bogus format by listing exactly the formats its help names.
    let with_formats: [(&str, &[&str]); 12] = [
        ("health", &[]),
        ("run", &["daily"]),
        ("runbook list", &[]),
        ("runbook show", &["daily"]),
        ("backup list", &[]),
        ("incident list", &[]),
        ("incident show", &["INC-20260101-1"]),
        ("incident actions", &[]),
        ("logs rotate", &[]),
        ("logs summary", &[]),
        ("maintain status", &[]),
        ("config show", &[]),
    ];
    let leaves = leaf_commands();
    assert!(leaves.len() > 30, "too few commands found: {leaves:?}");
    let mut without = Vec::new();
    for leaf in &leaves {
        let name = leaf.join(" ");
        let help = format_help(leaf);
        match with_formats.iter().find(|(n, _)| *n == name) {
            Some((_, args)) => {
                let listed = help
                    .split("Output format: ")
                    .nth(1)
                    .and_then(|rest| rest.split(" (default").next())
                    .unwrap_or_else(|| panic!("{name}: no format list in {help:?}"))
                    .to_string();
                let run = Opsbook::new()
                    .file("config/development.yaml", "backup: { destination: dest }\n")
                    .args(leaf.iter().cloned())
                    .args(args.iter().copied())
                    .args(["--format", "bogus"])
                    .run()
                    .expect_exit(64);
                assert!(
                    run.stderr.contains(&format!("use {listed}\n")),
                    "{name}: help says {listed:?}, the command says {}",
                    run.stderr
                );
            }
            None => {
                assert!(
                    help.contains("Not accepted here"),
                    "{name} is not in this test's table but its help says {help:?}"
                );
                without.push(name);
            }
        }
    }
    assert_eq!(leaves.len(), with_formats.len() + without.len());
}

#[test]
fn format_on_a_command_without_formats_is_a_usage_error() {
    for args in [
        &["backup", "create", "--format", "json"][..],
        &["--format", "json", "maintain", "run", "daily"],
        &["logs", "search", "x", "--format", "json"],
    ] {
        Opsbook::new()
            .args(args.iter().copied())
            .run()
            .expect_exit(64)
            .stderr_contains("has no --format (asked for \"json\")");
    }
    // Global flags still reach the commands that have formats, before or after them.
    let run = Opsbook::new()
        .readings(10.0, 10.0, 10.0)
        .args(["--format", "json", "health"])
        .run();
    assert!(run.json()["checks"].is_object(), "{}", run.stdout);
}

#[test]
fn group_helps_name_every_subcommand() {
    for group in [
        "incident", "logs", "backup", "maintain", "runbook", "config",
    ] {
        let run = Opsbook::new().args(["--help"]).run().expect_exit(0);
        // The group's line, and the lines clap wrapped it onto (indented deeper).
        let lines: Vec<&str> = run.stdout.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.trim_start().starts_with(&format!("{group} ")))
            .unwrap_or_else(|| panic!("{group} missing from --help"));
        let about = lines[at..]
            .iter()
            .take_while(|l| **l == lines[at] || l.starts_with("               "))
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join(" ");
        for sub in subcommands(&[group.to_string()]) {
            assert!(
                about.contains(&sub),
                "`opsbook --help` says {about:?} for {group}, without {sub}"
            );
        }
    }
}

#[test]
fn man_dir_writes_every_page_the_pages_refer_to() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("man");
    Opsbook::new()
        .args(["man", "--dir"])
        .args([dir.display().to_string()])
        .run()
        .expect_exit(0)
        .stdout_contains("man pages in");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.contains(&"opsbook.1".to_string()), "{names:?}");
    for leaf in leaf_commands() {
        let page = format!("opsbook-{}.1", leaf.join("-"));
        assert!(names.contains(&page), "{page} missing: {names:?}");
    }
    // Every `opsbook-…(1)` a page refers to is a page that was written.
    let mut referred = 0;
    for name in &names {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{name}");
        for word in text.split_whitespace() {
            if let Some(page) = word.strip_suffix("(1)") {
                let file = format!("{}.1", page.replace("\\-", "-"));
                assert!(
                    names.contains(&file),
                    "{name} refers to {page}(1), not written"
                );
                referred += 1;
            }
        }
    }
    assert!(referred >= 10, "only {referred} references found");
    // Without --dir the top page still prints.
    Opsbook::new()
        .args(["man"])
        .run()
        .expect_exit(0)
        .stdout_contains(".TH opsbook");
}

#[test]
fn runbook_validate_reports_every_error_at_once_as_its_help_says() {
    Opsbook::new()
        .args(["runbook", "validate", "--help"])
        .run()
        .expect_exit(0)
        .stdout_contains("every step's schema and value errors together with every");
    // Two bad steps and a reference to a step that does not exist: all three in one run.
    let bad_steps = "steps:\n  - name: a\n    disk: { path: / }\n    colour: red\n  - name: b\n    memory: {}\n    size: 3\n  - name: c\n    memory: {}\n    needs: [nope]\n";
    Opsbook::new()
        .file("book.yaml", bad_steps)
        .args(["runbook", "validate", "./book.yaml"])
        .run()
        .expect_exit(78)
        .stderr_contains("book.yaml:4:")
        .stderr_contains("book.yaml:7:")
        .stderr_contains("book.yaml:10:13: step \"c\" needs \"nope\", but no step has that name")
        .stderr_contains("1 of 1 runbook is invalid");
}

/// Words a reader of a clone cannot follow: the project's private sources.
fn assert_stands_alone(what: &str, text: &str) {
    let lower = text.to_lowercase();
    for word in ["seed", "../shared", "spec.md"] {
        assert!(!lower.contains(word), "{what} mentions {word:?}");
    }
}

#[test]
fn readme_help_man_pages_and_runbooks_stand_alone() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_stands_alone(
        "README.md",
        &std::fs::read_to_string(root.join("README.md")).unwrap(),
    );
    let mut runbooks = 0;
    let examples = std::fs::read_dir(root.join("runbooks/examples"))
        .into_iter()
        .flatten();
    for entry in std::fs::read_dir(root.join("runbooks"))
        .unwrap()
        .chain(examples)
    {
        let path = entry.unwrap().path();
        if path.is_dir() {
            // runbooks/examples/: not shipped, but read by people all the same.
            for example in std::fs::read_dir(&path).unwrap() {
                let example = example.unwrap().path();
                let text = std::fs::read_to_string(&example).unwrap();
                assert_stands_alone(&example.display().to_string(), &text);
            }
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_stands_alone(&path.display().to_string(), &text);
        runbooks += 1;
    }
    assert!(runbooks >= 11, "{runbooks} runbooks");
    let list = Opsbook::new()
        .args(["runbook", "list", "--format", "json"])
        .run()
        .expect_exit(0);
    assert_stands_alone("runbook list", &list.stdout);
    for leaf in leaf_commands() {
        let run = Opsbook::new()
            .args(leaf.iter().cloned())
            .args(["--help"])
            .run()
            .expect_exit(0);
        assert_stands_alone(&format!("{} --help", leaf.join(" ")), &run.stdout);
    }
    let out = tempfile::tempdir().unwrap();
    Opsbook::new()
        .args(["man", "--dir"])
        .args([out.path().display().to_string()])
        .run()
        .expect_exit(0);
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let path = entry.unwrap().path();
        assert_stands_alone(
            &path.display().to_string(),
            &std::fs::read_to_string(&path).unwrap(),
        );
    }
}
