//! The shipped-runbook harness: a runbook run green against fixtures of a healthy system,
//! and each of its check steps driven to warning or critical by its own broken fixture
//! (a mutation: the same vars with one changed). [`Book::done`] makes sure no check step
//! of a runbook (any step but `manual` and `include`: readings, actions and commands) is
//! left without its mutation, so a check that cannot fail does not ship.

use super::Opsbook;
use serde_json::Value;
use std::path::Path;

/// A runbook (a built-in name or a file) run in `dir` with these vars:
/// `run NAME --format json --yes --var K=V …`, with `setup` adding env, config or readings.
/// Returns the exit code and the JSON report.
pub fn run_book(
    dir: &Path,
    book: &str,
    vars: &[(&str, String)],
    setup: impl FnOnce(Opsbook) -> Opsbook,
) -> (i32, Value) {
    let mut args = vec![
        "run".to_string(),
        book.to_string(),
        "--format".into(),
        "json".into(),
        "--yes".into(),
    ];
    for (key, value) in vars {
        args.push("--var".into());
        args.push(format!("{key}={value}"));
    }
    let run = setup(Opsbook::new().args(args)).run_in(dir);
    let report: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "{book}: the report is not JSON ({e})\nstdout: {}\nstderr: {}",
            run.stdout, run.stderr
        )
    });
    (run.code.unwrap_or(-1), report)
}

/// The severity of step `name` in a JSON run report (`ok`, `warning`, `critical`,
/// `unknown`, `skipped`).
pub fn severity(report: &Value, name: &str) -> String {
    report["checks"][name]["severity"]
        .as_str()
        .unwrap_or_else(|| panic!("no step {name:?} in the report: {report:#}"))
        .to_string()
}

/// The runbook runs green: exit 0, and no step ended other than ok or skipped.
pub fn green(
    dir: &Path,
    book: &str,
    vars: &[(&str, String)],
    setup: impl FnOnce(Opsbook) -> Opsbook,
) -> Value {
    let (code, report) = run_book(dir, book, vars, setup);
    let bad: Vec<String> = report["checks"]
        .as_object()
        .map(|checks| {
            checks
                .iter()
                .filter(|(_, c)| !matches!(c["severity"].as_str(), Some("ok" | "skipped")))
                .map(|(name, c)| format!("{name}: {} ({})", c["severity"], c["message"]))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        code == 0 && bad.is_empty(),
        "{book} is not green on a healthy system (exit {code}): {bad:#?}\n{report:#}"
    );
    report
}

/// With `vars` changed by `broken`, step `step` ends `want` (warning or critical) and the
/// run's exit code says so.
pub fn mutant(
    dir: &Path,
    book: &str,
    vars: &[(&str, String)],
    broken: &[(&str, String)],
    setup: impl FnOnce(Opsbook) -> Opsbook,
    step: &str,
    want: &str,
) {
    let mut changed: Vec<(&str, String)> = vars
        .iter()
        .filter(|(k, _)| !broken.iter().any(|(b, _)| b == k))
        .cloned()
        .collect();
    changed.extend(broken.iter().cloned());
    let (code, report) = run_book(dir, book, &changed, setup);
    let got = severity(&report, step);
    assert_eq!(
        got, want,
        "{book}: step {step:?} with {broken:?} should be {want}: {report:#}"
    );
    assert_ne!(code, 0, "{book}: a {want} step {step:?} must not exit 0");
}

/// The names of a runbook's check steps (every role but `runbook` in `runbook show`:
/// readings, actions, commands), groups flattened, `on_failure` and undo steps left out.
pub fn check_steps(book: &str) -> Vec<String> {
    let shown = Opsbook::new()
        .args(["runbook", "show", book, "--format", "yaml"])
        .run();
    assert_eq!(shown.code, Some(0), "runbook show {book}: {}", shown.stderr);
    let doc: Value = serde_saphyr::from_str(&shown.stdout)
        .unwrap_or_else(|e| panic!("runbook show {book} is not YAML: {e}"));
    let mut names = Vec::new();
    for item in doc["steps"].as_array().into_iter().flatten() {
        let steps = match item["parallel"].as_array() {
            Some(group) => group.clone(),
            None => vec![item.clone()],
        };
        for step in steps {
            if step["role"] != "runbook" {
                names.push(step["name"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    names
}

/// One shipped runbook under test: its healthy vars, the steps its mutations broke, and at
/// the end ([`Book::done`]) the proof that no check step was left without a mutation.
pub struct Book<'a> {
    dir: &'a Path,
    name: &'a str,
    vars: Vec<(&'a str, String)>,
    broken: Vec<String>,
}

impl<'a> Book<'a> {
    /// Runbook `name` run in `dir` with `vars` (the healthy system's).
    pub fn new(dir: &'a Path, name: &'a str, vars: &[(&'a str, String)]) -> Self {
        Book {
            dir,
            name,
            vars: vars.to_vec(),
            broken: Vec::new(),
        }
    }

    /// It runs green on the healthy system (see [`green`]).
    pub fn green(&self, setup: impl FnOnce(Opsbook) -> Opsbook) -> Value {
        green(self.dir, self.name, &self.vars, setup)
    }

    /// With `broken` over the healthy vars (and `setup`), step `step` ends `want`.
    pub fn mutant(
        &mut self,
        broken: &[(&str, String)],
        setup: impl FnOnce(Opsbook) -> Opsbook,
        step: &str,
        want: &str,
    ) -> &mut Self {
        mutant(self.dir, self.name, &self.vars, broken, setup, step, want);
        self.broken.push(step.to_string());
        self
    }

    /// Every check step of the runbook was driven to failure by a mutation.
    pub fn done(&self) {
        let missing: Vec<String> = check_steps(self.name)
            .into_iter()
            .filter(|name| !self.broken.contains(name))
            .collect();
        assert!(
            missing.is_empty(),
            "{}: check steps without a mutation test: {missing:?}",
            self.name
        );
    }
}
