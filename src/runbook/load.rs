//! Loading a runbook: find it (a path, a name in the runbook dirs, or a built-in), read its
//! `vars` (with `${ENV:-default}` and `--var` overrides), parse every step with `{{ var }}`
//! expanded, splice `include`s, and validate names, `needs` and conditions. Every problem
//! found is reported with file, line and column, all at once, before anything runs.

use super::builtin;
use super::parse::parse_items;
use super::refs::{Located, Missing, error_at, validate};
use super::spots::{Outline, StepSpots};
use crate::engine::registry::{Item, KindSpec, StepSpec};
use crate::error::ConfigError;
use crate::values::{Duration, Text};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// A runbook ready to run: includes spliced in, variables resolved.
#[derive(Clone, Debug, Serialize)]
pub struct Runbook {
    pub name: String,
    pub description: String,
    /// What the runbook is for, as `runbook list` groups them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    /// `notify: true`: every `opsbook run` of it tells the configured channels what
    /// started failing and what recovered (as `--notify` does).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub notify: bool,
    /// Where it came from: a path, or `built-in:NAME`.
    pub source: String,
    pub vars: BTreeMap<String, Text>,
    pub defaults: Defaults,
    pub steps: Vec<Item>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub on_failure: Vec<StepSpec>,
}

/// What a runbook is for (`kind:`), as `runbook list` groups them.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Routine upkeep on a schedule: daily, weekly, monthly, quarterly.
    Maintenance,
    /// Before, during and after a deployment.
    Deploy,
    /// Gathers the picture when something is wrong, for an incident.
    Diagnosis,
    /// Confirms a state: after a start, a shutdown, a restore, a renewal.
    Verification,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// A whole number, or text such as `"{{ retries }}"` that becomes one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::values::whole_opt"
    )]
    #[schemars(with = "Option<crate::values::number::WholeOrText>")]
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
    // A file whose name is not UTF-8 goes by its name as shown (`caf\u{FFFD}`).
    if let Some((_, path)) = runbook_files(dirs).into_iter().find(|(n, _)| n == wanted) {
        return read(&path);
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
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::whole_file(path, format!("cannot read the runbook: {e}")))?;
    let text = crate::values::utf8_text(path, bytes)?;
    Ok(Source {
        label: path.to_path_buf(),
        text,
        dir: path.parent().map(Path::to_path_buf),
    })
}

/// Runbook names found in `dirs` (files ending in .yaml or .yml); a name that is not
/// UTF-8 is shown with U+FFFD for its bad bytes, and `find` finds it by that name.
pub fn list_dir_names(dirs: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> = runbook_files(dirs).into_iter().map(|(n, _)| n).collect();
    names.sort();
    names.dedup();
    names
}

/// Every runbook file in `dirs`, with its name as shown, in the order of the dirs.
fn runbook_files(dirs: &[PathBuf]) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut here: Vec<(String, PathBuf)> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .filter_map(|path| {
                let stem = path.file_stem()?.to_string_lossy().into_owned();
                Some((stem, path))
            })
            .collect();
        here.sort();
        files.extend(here);
    }
    files
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
    load_nested(source, &vars, dirs, &mut stack)
        .map(|(book, _)| book)
        .map_err(|mut errors| {
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

fn load_nested(
    source: &Source,
    overrides: &BTreeMap<String, Text>,
    dirs: &[PathBuf],
    stack: &mut Vec<PathBuf>,
) -> Result<(Runbook, Located), Vec<ConfigError>> {
    let file = &source.label;
    // Read past a repeated key: the parse of the steps reports it with every other error.
    let outline: Outline =
        crate::values::parse_yaml_first_key_wins(file, &source.text).map_err(|e| vec![e])?;
    let here = Rc::new(source.clone());
    let mut vars = outline.vars.clone();
    for (key, value) in overrides {
        vars.insert(key.clone(), value.clone());
    }
    let plain: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().to_string()))
        .collect();
    let parsed = parse_items(source, &outline, &vars, &plain);
    let mut errors = parsed.errors;
    let mut missing = Missing::default();
    let mut located = Located::default();

    let canonical = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
    stack.push(canonical);
    let mut steps = Vec::new();
    for (item, spot) in with_spots(parsed.steps, outline.steps(&here), &mut missing) {
        match item {
            Item::Step(StepSpec {
                kind: KindSpec::Include(target),
                ..
            }) => match include(source, &spot, &target, &vars, dirs, stack) {
                Ok((included, at)) => {
                    steps.extend(included.steps);
                    located.main.extend(at.main);
                }
                Err(Included {
                    errors: mut e,
                    cycle,
                }) => {
                    errors.append(&mut e);
                    // A cycle brings no steps that are not here already.
                    missing.unknown |= !cycle;
                }
            },
            Item::Parallel { parallel } => {
                let inner = |k: usize| spot.parallel.get(k);
                if let Some(k) = parallel
                    .iter()
                    .position(|s| matches!(s.kind, KindSpec::Include(_)))
                {
                    let at = inner(k).and_then(|s| s.include.as_ref().or(s.best()));
                    errors.push(error_at(
                        at.or(spot.best()),
                        source,
                        "`include` cannot be inside a `parallel:` group",
                    ));
                    missing.names.extend(parallel.into_iter().map(|s| s.name));
                    continue;
                }
                for k in 0..parallel.len() {
                    located
                        .main
                        .push(inner(k).cloned().unwrap_or_else(|| StepSpots {
                            at: spot.at.clone(),
                            ..StepSpots::default()
                        }));
                }
                steps.push(Item::Parallel { parallel });
            }
            step => {
                located.main.push(spot);
                steps.push(step);
            }
        }
    }
    stack.pop();
    let mut on_failure = Vec::new();
    for (step, spot) in with_spots(parsed.on_failure, outline.on_failure(&here), &mut missing) {
        if matches!(step.kind, KindSpec::Include(_)) {
            errors.push(error_at(
                spot.include.as_ref().or(spot.best()),
                source,
                "`include` cannot be used in `on_failure`",
            ));
        }
        if !step.options.undo.is_empty() {
            errors.push(error_at(
                spot.undo_at.as_ref().or(spot.best()),
                source,
                "`undo` cannot be used in `on_failure`: write the rollback there as steps",
            ));
        }
        on_failure.push(step);
        located.on_failure.push(spot);
    }
    let super::parse::Head {
        name,
        description,
        kind,
        notify,
        defaults,
    } = parsed.head.unwrap_or_default();
    let name = name.unwrap_or_else(|| {
        file.file_stem().and_then(|s| s.to_str()).map_or_else(
            || "runbook".to_string(),
            |s| s.trim_start_matches("built-in:").to_string(),
        )
    });
    let runbook = Runbook {
        name,
        description,
        kind,
        notify,
        source: file.display().to_string(),
        vars,
        defaults,
        steps,
        on_failure,
    };
    errors.extend(validate(source, &runbook, &located, &missing));
    errors.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    if errors.is_empty() {
        Ok((runbook, located))
    } else {
        Err(errors)
    }
}

/// The parsed items with where each is written; the names of those that did not parse
/// go to `missing`.
fn with_spots<T>(
    items: Vec<Option<T>>,
    spots: Vec<StepSpots>,
    missing: &mut Missing,
) -> Vec<(T, StepSpots)> {
    let mut spots = spots.into_iter();
    let mut out = Vec::new();
    for item in items {
        let spot = spots.next().unwrap_or_default();
        match item {
            Some(item) => out.push((item, spot)),
            None => missing.names.extend(spot.name_text),
        }
    }
    out
}

fn include(
    source: &Source,
    spot: &StepSpots,
    target: &Text,
    vars: &BTreeMap<String, Text>,
    dirs: &[PathBuf],
    stack: &mut Vec<PathBuf>,
) -> Result<(Runbook, Located), Included> {
    let at = spot.include.as_ref().or(spot.best());
    let wanted = target.as_str();
    let relative = source.dir.as_ref().map(|d| d.join(wanted));
    let found = match relative.filter(|p| p.is_file()) {
        Some(path) => read(&path),
        None => find(wanted, dirs),
    };
    let included = found.map_err(|e| Included {
        // An error inside the included file (not UTF-8) is shown there.
        errors: vec![if e.line > 0 {
            e
        } else {
            error_at(at, source, &format!("include {wanted}: {}", e.message))
        }],
        cycle: false,
    })?;
    let canonical =
        std::fs::canonicalize(&included.label).unwrap_or_else(|_| included.label.clone());
    if stack.contains(&canonical) {
        let chain: Vec<String> = stack
            .iter()
            .chain(std::iter::once(&canonical))
            .map(|p| p.display().to_string())
            .collect();
        return Err(Included {
            errors: vec![error_at(
                at,
                source,
                &format!("include cycle: {}", chain.join(" → ")),
            )],
            cycle: true,
        });
    }
    load_nested(&included, vars, dirs, stack).map_err(|errors| Included {
        errors,
        cycle: false,
    })
}

/// Why an include did not load: its errors, and whether it only closed a cycle.
struct Included {
    errors: Vec<ConfigError>,
    cycle: bool,
}
