//! Parsing a runbook's text into its items: the whole file at once, or, when that fails,
//! each step on its own, so every broken step is reported at its place in the file and the
//! steps that parse are still checked for references.

use super::load::{Defaults, Kind, Source};
use super::spots::Outline;
use crate::engine::condition;
use crate::engine::registry::{Item, StepSpec};
use crate::error::ConfigError;
use crate::values::{Text, parse_runbook_yaml};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    name: Option<String>,
    #[serde(default)]
    description: String,
    kind: Option<Kind>,
    #[serde(default)]
    notify: bool,
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

/// What a runbook says of itself, above its steps.
#[derive(Default)]
pub(super) struct Head {
    pub name: Option<String>,
    pub description: String,
    pub kind: Option<Kind>,
    pub notify: bool,
    pub defaults: Defaults,
}

/// The document's items as parsed: the whole file at once, or (when that fails) each step
/// on its own, `None` for a step with errors of its own (already in `errors`).
pub(super) struct Parsed {
    pub head: Option<Head>,
    pub steps: Vec<Option<Item>>,
    pub on_failure: Vec<Option<StepSpec>>,
    pub errors: Vec<ConfigError>,
}

pub(super) fn parse_items(
    source: &Source,
    outline: &Outline,
    vars: &BTreeMap<String, Text>,
    plain: &BTreeMap<String, String>,
) -> Parsed {
    let parse = |text: &str| {
        crate::values::text::with_vars(vars, || {
            condition::with_vars(plain.clone(), || {
                parse_runbook_yaml::<Document>(&source.label, text)
            })
        })
    };
    let first = match parse(&source.text) {
        Ok(d) => {
            return Parsed {
                head: Some(Head {
                    name: d.name,
                    description: d.description,
                    kind: d.kind,
                    notify: d.notify,
                    defaults: d.defaults,
                }),
                steps: d.steps.into_iter().map(Some).collect(),
                on_failure: d.on_failure.into_iter().map(Some).collect(),
                errors: Vec::new(),
            };
        }
        Err(first) => first,
    };
    // Say everything that is wrong, not only the first thing: parse each step on its own
    // and report each one's error at its place in the file; the steps that parse are
    // still checked for references.
    let mut errors = Vec::new();
    let mut one = |at| match item_parse(source, vars, plain, at) {
        Some(Ok(item)) => Some(item),
        Some(Err(e)) => {
            errors.push(e);
            None
        }
        None => None,
    };
    let steps: Vec<Option<Item>> = outline.starts_of_steps().map(&mut one).collect();
    let on_failure: Vec<Option<StepSpec>> = outline
        .starts_of_on_failure()
        .map(|at| match one(at)? {
            Item::Step(step) => Some(step),
            Item::Parallel { .. } => None,
        })
        .collect();
    if !errors.iter().any(|e| e.line == first.line) {
        errors.push(first);
    }
    Parsed {
        head: None,
        steps,
        on_failure,
        errors,
    }
}

/// The step that starts at `at`, parsed on its own (`None` when `at` is not a place).
fn item_parse(
    source: &Source,
    vars: &BTreeMap<String, Text>,
    plain: &BTreeMap<String, String>,
    at: serde_saphyr::Location,
) -> Option<Result<Item, ConfigError>> {
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
        condition::with_vars(plain.clone(), || {
            parse_runbook_yaml::<Item>(&source.label, &piece)
        })
    });
    let e = match parsed {
        Ok(item) => return Some(Ok(item)),
        Err(e) => e,
    };
    if e.line == 0 {
        return Some(Err(ConfigError::at(
            &source.label,
            &source.text,
            at.line(),
            at.column(),
            e.message,
        )));
    }
    let line_no = at.line() + e.line - 1;
    let col = if e.line == 1 {
        e.column + at.column() - 1
    } else {
        e.column + indent as u64
    };
    Some(Err(ConfigError::at(
        &source.label,
        &source.text,
        line_no,
        col,
        e.message,
    )))
}
