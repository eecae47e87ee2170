//! `run --dry-run`: the plan of a runbook as text — what would run, in order, what the
//! selection leaves out, and what would undo each step — without running anything.

use super::load::Runbook;
use super::run::Selection;
use crate::engine::registry::{Item, KindSpec, StepSpec};

/// What would run, in order, and what the selection leaves out: each step's kind, name
/// and conditions, then what it would do with its variables resolved (secrets masked),
/// and under it what would undo it.
pub fn plan(book: &Runbook, selection: &Selection) -> String {
    use std::fmt::Write;
    let mut out = format!("{} ({}): {}\n", book.name, book.source, book.description);
    let mut line = |step: &StepSpec, prefix: &str| {
        let mut notes = Vec::new();
        if let Some(why) = selection.excludes(step) {
            notes.push(why);
        }
        let o = &step.options;
        if !o.needs.is_empty() {
            notes.push(format!("needs {}", o.needs.join(", ")));
        }
        if let Some(when) = &o.when {
            notes.push(format!("when {}", when.source()));
        }
        if o.always {
            notes.push("always".into());
        }
        if o.continue_on_failure {
            notes.push("continue_on_failure".into());
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!("  ({})", notes.join("; "))
        };
        let _ = writeln!(out, "{prefix}{:<10} {}{notes}", step.kind_name(), step.name);
        let last_line = prefix.rsplit('\n').next().unwrap_or(prefix);
        let indent = " ".repeat(last_line.chars().count() + 11);
        let _ = writeln!(out, "{indent}{}", what(step));
        for undo in &o.undo {
            let when = undo
                .options
                .when
                .as_ref()
                .map(|w| format!("  (when {})", w.source()))
                .unwrap_or_default();
            let _ = writeln!(out, "{indent}{:<10} {}{when}", undo.kind_name(), undo.name);
            let _ = writeln!(out, "{indent}           {}", what(undo));
        }
    };
    for item in &book.steps {
        match item {
            Item::Step(step) => line(step, "  "),
            Item::Parallel { parallel } => {
                for step in parallel {
                    line(step, "  ‖ ");
                }
            }
        }
    }
    for (i, step) in book.on_failure.iter().enumerate() {
        line(step, if i == 0 { "on failure:\n  " } else { "  " });
    }
    out
}

/// One line saying what a step would do: a command as it would run (`$ …`), otherwise its
/// settings. Values print as they do everywhere else, secrets masked.
fn what(step: &StepSpec) -> String {
    match &step.kind {
        KindSpec::Command(spec) => {
            let mut text = format!("$ {}", spec.shown);
            if let Some(dir) = &spec.dir {
                text.push_str(&format!("   (in {})", dir.shown()));
            }
            text
        }
        KindSpec::Manual(prompt) => format!("asks: {}", prompt.shown()),
        KindSpec::Cleanup(spec) => crate::engine::steps::cleanup::preview(spec),
        KindSpec::Http(spec) => {
            let method = serde_json::to_value(spec.method)
                .ok()
                .and_then(|m| m.as_str().map(str::to_string))
                .unwrap_or_default();
            format!("{method} {}", spec.url.0.shown())
        }
        kind => match serde_json::to_value(kind) {
            Ok(serde_json::Value::Object(map)) => map
                .into_iter()
                .map(|(_, mut settings)| {
                    prune(&mut settings);
                    settings.to_string()
                })
                .collect::<Vec<_>>()
                .join(" "),
            Ok(other) => other.to_string(),
            Err(e) => format!("(cannot show: {e})"),
        },
    }
}

/// Leave out settings that say nothing (null, false, empty).
fn prune(value: &mut serde_json::Value) {
    if let serde_json::Value::Object(map) = value {
        map.retain(|_, v| {
            prune(v);
            !matches!(v, serde_json::Value::Null | serde_json::Value::Bool(false))
                && v.as_object().is_none_or(|o| !o.is_empty())
                && v.as_array().is_none_or(|a| !a.is_empty())
        });
    }
}
