//! Loading a runbook: find it (a path, a name in the runbook dirs, or a built-in), read its
//! `vars` (with `${ENV:-default}` and `--var` overrides), parse every step with `{{ var }}`
//! expanded, splice `include`s, and validate names, `needs` and conditions. Every problem
//! found is reported with file, line and column, all at once, before anything runs.

use super::builtin;
use crate::engine::condition;
use crate::engine::registry::{Item, KindSpec, StepSpec};
use crate::error::ConfigError;
use crate::values::parse_yaml;
use crate::values::{Duration, Text};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// A runbook ready to run: includes spliced in, variables resolved.
#[derive(Clone, Debug, Serialize)]
pub struct Runbook {
    pub name: String,
    pub description: String,
    /// Where it came from: a path, or `built-in:NAME`.
    pub source: String,
    pub vars: BTreeMap<String, Text>,
    pub defaults: Defaults,
    pub steps: Vec<Item>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub on_failure: Vec<StepSpec>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
}

impl Runbook {
    /// The main steps in order, groups flattened.
    pub fn main_steps(&self) -> impl Iterator<Item = &StepSpec> {
        self.steps.iter().flat_map(|item| match item {
            Item::Step(step) => std::slice::from_ref(step),
            Item::Parallel { parallel } => parallel.as_slice(),
        })
    }

    /// Every step in the order a failed run can reach it: the main steps, their `undo`s,
    /// then `on_failure`.
    pub fn all_steps(&self) -> impl Iterator<Item = &StepSpec> {
        self.main_steps()
            .chain(self.main_steps().flat_map(|s| &s.options.undo))
            .chain(&self.on_failure)
    }
}

/// Where runbook text comes from.
#[derive(Clone, Debug)]
pub struct Source {
    /// The path shown in errors (`runbooks/daily.yaml` or `built-in:daily`).
    pub label: PathBuf,
    pub text: String,
    /// The directory includes are resolved against.
    pub dir: Option<PathBuf>,
}

/// Find `wanted`: an existing path; else `NAME.yaml` in `dirs`; else a built-in runbook.
pub fn find(wanted: &str, dirs: &[PathBuf]) -> Result<Source, ConfigError> {
    let as_path = Path::new(wanted);
    if as_path.is_file() || wanted.contains('/') {
        return read(as_path);
    }
    // `daily` or `daily.yaml`: a runbook dir's file, else the built-in.
    let wanted = wanted
        .strip_suffix(".yaml")
        .or_else(|| wanted.strip_suffix(".yml"))
        .unwrap_or(wanted);
    for dir in dirs {
        for ext in ["yaml", "yml"] {
            let candidate = dir.join(format!("{wanted}.{ext}"));
            if candidate.is_file() {
                return read(&candidate);
            }
        }
    }
    if let Some(text) = builtin::get(wanted) {
        return Ok(Source {
            label: PathBuf::from(format!("built-in:{wanted}")),
            text: text.to_string(),
            dir: None,
        });
    }
    let mut names: Vec<String> = builtin::names().map(str::to_string).collect();
    names.extend(list_dir_names(dirs));
    let known: Vec<&str> = names.iter().map(String::as_str).collect();
    let hint = crate::error::did_you_mean(wanted, &known)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
    let searched = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(ConfigError::whole_file(
        wanted,
        format!("no such runbook: not a file, not in {searched}, not built in{hint}"),
    ))
}

fn read(path: &Path) -> Result<Source, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::whole_file(path, format!("cannot read the runbook: {e}")))?;
    Ok(Source {
        label: path.to_path_buf(),
        text,
        dir: path.parent().map(Path::to_path_buf),
    })
}

/// Runbook names found in `dirs` (files ending in .yaml or .yml).
pub fn list_dir_names(dirs: &[PathBuf]) -> Vec<String> {
    let mut names = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            {
                names.push(stem.to_string());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Load `source`, with `overrides` (from `--var`, or an including runbook) winning over
/// the file's own `vars`.
pub fn load(
    source: &Source,
    overrides: &BTreeMap<String, Text>,
    dirs: &[PathBuf],
) -> Result<Runbook, crate::Error> {
    let mut stack = Vec::new();
    let mut vars = builtin_vars();
    vars.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
    load_nested(source, &vars, dirs, &mut stack).map_err(|mut errors| {
        if errors.len() == 1 {
            crate::Error::Config(errors.remove(0))
        } else {
            crate::Error::Configs(errors)
        }
    })
}

/// Variables every runbook has, so a step can run opsbook itself with the configuration
/// of the run (`{{ opsbook }}`, `{{ opsbook_config }}`, `{{ opsbook_env }}`); the
/// commands fill in the last two, and `--var` wins over all three.
pub fn builtin_vars() -> BTreeMap<String, Text> {
    let binary = std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "opsbook".to_string());
    BTreeMap::from([
        ("opsbook".to_string(), Text::plain(binary)),
        ("opsbook_config".to_string(), Text::plain("")),
        ("opsbook_env".to_string(), Text::plain("")),
    ])
}

/// The top-level keys, read leniently to learn the variables and where each step starts.
#[derive(Deserialize)]
struct Outline {
    #[serde(default)]
    vars: BTreeMap<String, Text>,
    #[serde(default)]
    steps: Vec<serde_saphyr::Spanned<serde::de::IgnoredAny>>,
    #[serde(default)]
    on_failure: Vec<serde_saphyr::Spanned<serde::de::IgnoredAny>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    #[allow(dead_code)] // read by the outline; here only so the key is allowed
    vars: BTreeMap<String, serde::de::IgnoredAny>,
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    steps: Vec<Item>,
    #[serde(default)]
    on_failure: Vec<StepSpec>,
}

fn load_nested(
    source: &Source,
    overrides: &BTreeMap<String, Text>,
    dirs: &[PathBuf],
    stack: &mut Vec<PathBuf>,
) -> Result<Runbook, Vec<ConfigError>> {
    let file = &source.label;
    let text = &source.text;
    let outline: Outline = parse_yaml(file, text).map_err(|e| vec![e])?;
    let mut vars = outline.vars;
    for (key, value) in overrides {
        vars.insert(key.clone(), value.clone());
    }
    let plain: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().to_string()))
        .collect();
    let parse = |text: &str| {
        crate::values::text::with_vars(&vars, || {
            condition::with_vars(plain.clone(), || parse_yaml::<Document>(file, text))
        })
    };
    let document = match parse(text) {
        Ok(document) => document,
        Err(first) => {
            // Say everything that is wrong, not only the first thing: parse each step
            // on its own and report each one's error at its place in the file.
            let mut errors = Vec::new();
            for spanned in outline.steps.iter().chain(&outline.on_failure) {
                if let Some(e) = item_error(source, &vars, &plain, spanned.referenced) {
                    errors.push(e);
                }
            }
            if !errors.iter().any(|e| e.line == first.line) {
                errors.insert(0, first);
            }
            errors.sort_by_key(|e| (e.line, e.column));
            return Err(errors);
        }
    };

    let canonical = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
    stack.push(canonical);
    let mut errors = Vec::new();
    let mut steps = Vec::new();
    for item in document.steps {
        match item {
            Item::Step(StepSpec {
                kind: KindSpec::Include(target),
                ..
            }) => match include(source, &target, &vars, dirs, stack) {
                Ok(included) => steps.extend(included.steps),
                Err(mut e) => errors.append(&mut e),
            },
            Item::Parallel { parallel }
                if parallel
                    .iter()
                    .any(|s| matches!(s.kind, KindSpec::Include(_))) =>
            {
                errors.push(locate(
                    source,
                    "include:",
                    "`include` cannot be inside a `parallel:` group",
                ));
            }
            other => steps.push(other),
        }
    }
    stack.pop();
    if document
        .on_failure
        .iter()
        .any(|s| matches!(s.kind, KindSpec::Include(_)))
    {
        errors.push(locate(
            source,
            "include:",
            "`include` cannot be used in `on_failure`",
        ));
    }
    if document
        .on_failure
        .iter()
        .any(|s| !s.options.undo.is_empty())
    {
        errors.push(locate(
            source,
            "undo:",
            "`undo` cannot be used in `on_failure`: write the rollback there as steps",
        ));
    }
    let name = document.name.unwrap_or_else(|| {
        file.file_stem().and_then(|s| s.to_str()).map_or_else(
            || "runbook".to_string(),
            |s| s.trim_start_matches("built-in:").to_string(),
        )
    });
    let runbook = Runbook {
        name,
        description: document.description,
        source: file.display().to_string(),
        vars,
        defaults: document.defaults,
        steps,
        on_failure: document.on_failure,
    };
    errors.extend(validate(source, &runbook));
    if errors.is_empty() {
        Ok(runbook)
    } else {
        Err(errors)
    }
}

/// The error of the step that starts at `at`, parsed on its own.
fn item_error(
    source: &Source,
    vars: &BTreeMap<String, Text>,
    plain: &BTreeMap<String, String>,
    at: serde_saphyr::Location,
) -> Option<ConfigError> {
    let (line, column) = (
        usize::try_from(at.line()).ok()?,
        usize::try_from(at.column()).ok()?,
    );
    if line == 0 || column == 0 {
        return None;
    }
    let lines: Vec<&str> = source.text.lines().collect();
    let indent = column - 1;
    let mut snippet = Vec::new();
    for (i, text) in lines.iter().enumerate().skip(line - 1) {
        let leading = text.len() - text.trim_start().len();
        if i > line - 1 && !text.trim().is_empty() && leading < indent {
            break;
        }
        let body: String = if i == line - 1 {
            text.chars().skip(indent).collect()
        } else {
            text.get(indent.min(leading)..)
                .unwrap_or_default()
                .to_string()
        };
        snippet.push(body);
    }
    let piece = snippet.join("\n");
    let parsed = crate::values::text::with_vars(vars, || {
        condition::with_vars(plain.clone(), || parse_yaml::<Item>(&source.label, &piece))
    });
    let e = parsed.err()?;
    if e.line == 0 {
        return Some(ConfigError::at(
            &source.label,
            &source.text,
            at.line(),
            at.column(),
            e.message,
        ));
    }
    let line_no = at.line() + e.line - 1;
    let col = if e.line == 1 {
        e.column + at.column() - 1
    } else {
        e.column + indent as u64
    };
    Some(ConfigError::at(
        &source.label,
        &source.text,
        line_no,
        col,
        e.message,
    ))
}

fn include(
    source: &Source,
    target: &Text,
    vars: &BTreeMap<String, Text>,
    dirs: &[PathBuf],
    stack: &mut Vec<PathBuf>,
) -> Result<Runbook, Vec<ConfigError>> {
    let wanted = target.as_str();
    let relative = source.dir.as_ref().map(|d| d.join(wanted));
    let found = match relative.filter(|p| p.is_file()) {
        Some(path) => read(&path),
        None => find(wanted, dirs),
    };
    let included = found.map_err(|e| {
        vec![locate(
            source,
            wanted,
            &format!("include {wanted}: {}", e.message),
        )]
    })?;
    let canonical =
        std::fs::canonicalize(&included.label).unwrap_or_else(|_| included.label.clone());
    if stack.contains(&canonical) {
        let chain: Vec<String> = stack
            .iter()
            .chain(std::iter::once(&canonical))
            .map(|p| p.display().to_string())
            .collect();
        return Err(vec![locate(
            source,
            wanted,
            &format!("include cycle: {}", chain.join(" → ")),
        )]);
    }
    load_nested(&included, vars, dirs, stack)
}

/// Names unique; `needs` and `status("…")` name earlier steps.
fn validate(source: &Source, runbook: &Runbook) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut position: HashMap<&str, usize> = HashMap::new();
    let mut seen_count: HashMap<&str, usize> = HashMap::new();
    for (i, step) in runbook.all_steps().enumerate() {
        let n = seen_count.entry(step.name.as_str()).or_default();
        *n += 1;
        if *n > 1 {
            errors.push(locate_nth(
                source,
                &step.name,
                *n,
                &format!(
                    "step name {:?} is used twice: names must be unique",
                    step.name
                ),
            ));
        } else {
            position.insert(step.name.as_str(), i);
        }
    }
    let names: Vec<&str> = position.keys().copied().collect();
    for (i, step) in runbook.all_steps().enumerate() {
        let mut refer = |other: &str, how: &str| match position.get(other) {
            None => {
                let hint = crate::error::did_you_mean(other, &names)
                    .map(|s| format!("; did you mean {s:?}?"))
                    .unwrap_or_default();
                errors.push(locate(
                    source,
                    other,
                    &format!(
                        "step {:?} {how} {other:?}, but no step has that name{hint}",
                        step.name
                    ),
                ));
            }
            Some(j) if *j >= i => errors.push(locate(
                source,
                other,
                &format!(
                    "step {:?} {how} {other:?}, which does not run before it",
                    step.name
                ),
            )),
            Some(_) => {}
        };
        for needed in &step.options.needs {
            refer(needed, "needs");
        }
        if let Some(when) = &step.options.when {
            for other in when.steps() {
                refer(&other, "has a condition on");
            }
        }
    }
    errors
}

/// An error at the first line of `source` that contains `needle` (the whole file if none).
fn locate(source: &Source, needle: &str, message: &str) -> ConfigError {
    locate_nth(source, needle, 1, message)
}

fn locate_nth(source: &Source, needle: &str, nth: usize, message: &str) -> ConfigError {
    let hit = source
        .text
        .lines()
        .enumerate()
        .filter_map(|(i, line)| line.find(needle).map(|col| (i, col)))
        .nth(nth.saturating_sub(1));
    match hit {
        Some((line, col)) => ConfigError::at(
            &source.label,
            &source.text,
            line as u64 + 1,
            source
                .text
                .lines()
                .nth(line)
                .map_or(1, |l| l[..col].chars().count() as u64 + 1),
            message,
        ),
        None => ConfigError::whole_file(&source.label, message),
    }
}
