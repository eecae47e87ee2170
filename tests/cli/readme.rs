//! The README's walk-through is a test: every line of each ```` ```sh example ```` block runs,
//! in order, in one fresh directory, with `opsbook` on PATH. A trailing comment
//! (`  # exit 1: "text", "more"`) gives the expected exit code (default 0) and text that
//! stdout or stderr must contain; `export K=V …` lines set the environment of the lines
//! after them; `<<'EOF'` here-documents run as part of their line.

use std::path::Path;

struct Line {
    /// Where it is in README.md (1-based), for the failure message.
    number: usize,
    command: String,
    exit: i32,
    expect: Vec<String>,
}

/// The lines of every `sh example` block, in order.
fn example_lines(readme: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut in_block = false;
    let mut text = readme.lines().enumerate();
    while let Some((index, raw)) = text.next() {
        if !in_block {
            in_block = raw.trim_end() == "```sh example";
            continue;
        }
        if raw.starts_with("```") {
            in_block = false;
            continue;
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (command, comment) = match raw.find("  # ") {
            Some(at) => (raw[..at].trim_end().to_string(), &raw[at + 4..]),
            None => (raw.to_string(), ""),
        };
        let mut command = command;
        if let Some(start) = command.find("<<'") {
            let word = command[start + 3..]
                .split('\'')
                .next()
                .unwrap_or_default()
                .to_string();
            loop {
                let (_, more) = text
                    .next()
                    .unwrap_or_else(|| panic!("README.md:{}: no {word} line", index + 1));
                command.push('\n');
                command.push_str(more);
                if more == word {
                    break;
                }
            }
        }
        let exit = comment
            .strip_prefix("exit ")
            .map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits
                    .parse()
                    .unwrap_or_else(|_| panic!("README.md:{}: bad exit code", index + 1))
            })
            .unwrap_or(0);
        let expect = comment
            .split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        lines.push(Line {
            number: index + 1,
            command,
            exit,
            expect,
        });
    }
    assert!(!in_block, "README.md: an `sh example` block is not closed");
    lines
}

#[test]
fn every_readme_example_runs_as_written() {
    let readme = include_str!("../../README.md");
    let lines = example_lines(readme);
    let commands = lines
        .iter()
        .filter(|l| l.command.starts_with("opsbook "))
        .count();
    assert!(commands >= 25, "only {commands} opsbook commands found");

    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_opsbook"), bin.join("opsbook")).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut env: Vec<(String, String)> = Vec::new();
    let mut checked = 0;
    for line in &lines {
        if let Some(assignments) = line.command.strip_prefix("export ") {
            for pair in assignments.split_whitespace() {
                let (key, value) = pair
                    .split_once('=')
                    .unwrap_or_else(|| panic!("README.md:{}: export {pair}", line.number));
                env.push((key.to_string(), value.to_string()));
            }
            continue;
        }
        let out = run(&line.command, &work, &path, &env);
        let code = out.status.code();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            code,
            Some(line.exit),
            "README.md:{}: `{}` exited {code:?}, the README says {}\n--- stdout\n{stdout}--- stderr\n{stderr}",
            line.number,
            line.command,
            line.exit
        );
        assert!(
            !format!("{stdout}{stderr}").to_lowercase().contains("seed"),
            "README.md:{}: `{}` printed a word a reader cannot follow (seed)\n{stdout}{stderr}",
            line.number,
            line.command
        );
        for text in &line.expect {
            assert!(
                stdout.contains(text.as_str()) || stderr.contains(text.as_str()),
                "README.md:{}: `{}` did not print {text:?}\n--- stdout\n{stdout}--- stderr\n{stderr}",
                line.number,
                line.command
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} expected texts checked");
}

fn run(command: &str, dir: &Path, path: &str, env: &[(String, String)]) -> std::process::Output {
    let mut cmd = std::process::Command::new("bash");
    cmd.args(["-c", command])
        .current_dir(dir)
        .env("PATH", path)
        .stdin(std::process::Stdio::null());
    crate::common::clean_env(&mut cmd);
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().expect("run bash")
}

#[test]
fn the_readme_example_parser_reads_codes_texts_and_here_documents() {
    let text = "```sh example\n# a comment\ncat > f <<'EOF'\na: 1\nEOF\nopsbook x  # exit 78: \"one\", \"two\"\nopsbook y\n```\n```sh\nopsbook not-an-example\n```\n";
    let lines = example_lines(text);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0].command, "cat > f <<'EOF'\na: 1\nEOF");
    assert_eq!(lines[1].command, "opsbook x");
    assert_eq!(lines[1].exit, 78);
    assert_eq!(lines[1].expect, ["one", "two"]);
    assert_eq!((lines[2].exit, lines[2].expect.len()), (0, 0));
    assert_eq!(lines[2].number, 7);
}

/// Every test the README's Safety section names as the proof of a guarantee exists, so a
/// renamed or removed test cannot leave a promise backed by nothing.
#[test]
fn every_test_the_safety_section_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let start = readme.find("\n## Safety\n").expect("a Safety section");
    let section = &readme[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut named = 0;
    for quoted in section.split('`').skip(1).step_by(2) {
        let Some((module, test)) = quoted.split_once("::") else {
            continue;
        };
        let is_name = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if !is_name(module) || !is_name(test) {
            continue;
        }
        let file = root.join("tests/cli").join(format!("{module}.rs"));
        let source = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("Safety names {quoted}, but {}: {e}", file.display()));
        assert!(
            source.contains(&format!("fn {test}(")),
            "the README's Safety section names {quoted}, which {} does not define",
            file.display()
        );
        named += 1;
    }
    assert!(
        named >= 40,
        "only {named} tests named in the Safety section"
    );
}
