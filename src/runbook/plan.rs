//! `run --dry-run`: the plan of a runbook as text — what would run, in order, what the
//! selection leaves out, and what would undo each step — without running anything; and
//! `runbook show`: the whole resolved plan, every variable and every command line.

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
        let mut notes: Vec<String> = selection.excludes(step).into_iter().collect();
        notes.extend(run_notes(step));
        let notes = parenthesized(&notes);
        let o = &step.options;
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
                    settings_line(&settings)
                })
                .collect::<Vec<_>>()
                .join(" "),
            Ok(other) => settings_line(&other),
            Err(e) => format!("(cannot show: {e})"),
        },
    }
}

/// Settings as a person reads them: `path /, warn 80, crit 90`: each key and its value,
/// a nested group's settings among its parent's, a list as `[a, b]`, a value with a
/// comma, a space or a bracket quoted.
fn settings_line(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(key, value)| match value {
                Value::Object(_) => settings_line(value),
                _ => format!("{key} {}", settings_line(value)),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(settings_line).collect();
            format!("[{}]", items.join(", "))
        }
        Value::String(text) if text.is_empty() || text.contains([',', ' ', '[', ']']) => {
            format!("{text:?}")
        }
        Value::String(text) => text.clone(),
        other => other.to_string(),
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

/// `runbook show`: the runbook with its variables resolved (a secret, or a variable whose
/// name says it holds one, as `***`), then every step in order (includes spliced in) with
/// its kind, its role, its options, and what it would do — a command as the exact words
/// it would run — with its undo steps under it, then the `on_failure` steps.
pub fn show(book: &Runbook) -> String {
    use std::fmt::Write;
    for (name, value) in &book.vars {
        if crate::redact::is_secret_name(name) {
            crate::redact::register(value.as_str());
        }
    }
    let mut out = format!("{} ({}): {}\n", book.name, book.source, book.description);
    if let Some(kind) = book.kind {
        let _ = writeln!(out, "kind: {}", text_of(kind));
    }
    if let Some(timeout) = &book.defaults.timeout {
        let _ = writeln!(out, "default timeout: {}", text_of(timeout));
    }
    // `{{ opsbook }}` is this binary: its path says nothing about the plan.
    let vars: Vec<_> = book.vars.iter().filter(|(k, _)| *k != "opsbook").collect();
    if !vars.is_empty() {
        out.push_str("\nvars:\n");
        for (name, value) in vars {
            let shown = if crate::redact::is_secret_name(name) && !value.as_str().is_empty() {
                crate::redact::MASK
            } else {
                value.shown()
            };
            let _ = writeln!(out, "  {name} = {shown}");
        }
    }
    out.push_str("\nsteps:\n");
    let mut number = 0;
    for item in &book.steps {
        match item {
            Item::Step(step) => {
                number += 1;
                shown_step(&mut out, step, &format!("{number:>3}. "));
            }
            Item::Parallel { parallel } => {
                number += 1;
                let _ = writeln!(out, "{number:>3}. in parallel:");
                for step in parallel {
                    shown_step(&mut out, step, "     ‖ ");
                }
            }
        }
    }
    if !book.on_failure.is_empty() {
        out.push_str("\non failure:\n");
        for step in &book.on_failure {
            shown_step(&mut out, step, "     ");
        }
    }
    crate::redact::mask(&out).into_owned()
}

/// One step of `runbook show`: `PREFIX kind  role  name  (options)`, what it does under
/// it, then its undo steps, indented.
fn shown_step(out: &mut String, step: &StepSpec, prefix: &str) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "{prefix}{:<10} {:<8} {}{}",
        step.kind_name(),
        text_of(step.kind.role()),
        step.name,
        options(step)
    );
    let indent = " ".repeat(prefix.chars().count() + 4);
    for line in does(step) {
        let _ = writeln!(out, "{indent}{line}");
    }
    for undo in &step.options.undo {
        // An undo step's name already says `undo: …`.
        shown_step(out, undo, &indent);
    }
}

/// The options that decide whether a step runs: `needs A`, `when x`, `always`,
/// `continue_on_failure`.
fn run_notes(step: &StepSpec) -> Vec<String> {
    let o = &step.options;
    let mut notes = Vec::new();
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
    notes
}

/// `  (a; b)`, or nothing for no notes.
fn parenthesized(notes: &[String]) -> String {
    if notes.is_empty() {
        String::new()
    } else {
        format!("  ({})", notes.join("; "))
    }
}

/// A step's options that change when or how it runs, as `  (needs A; when x; …)`.
fn options(step: &StepSpec) -> String {
    let o = &step.options;
    let mut notes = run_notes(step);
    if let Some(retries) = o.retries {
        notes.push(format!("retries {retries}"));
    }
    if let Some(timeout) = &o.timeout {
        notes.push(format!("timeout {}", text_of(timeout)));
    }
    if !o.tags.is_empty() {
        notes.push(format!("tags {}", o.tags.join(", ")));
    }
    parenthesized(&notes)
}

/// What a step would do, line by line: a command's exact words (as JSON strings, so a
/// space or a quote inside a word is plain), its directory and environment; any other
/// step's settings.
fn does(step: &StepSpec) -> Vec<String> {
    let KindSpec::Command(spec) = &step.kind else {
        return vec![what(step)];
    };
    let words: Vec<String> = spec
        .argv
        .iter()
        .map(|w| serde_json::Value::from(w.shown()).to_string())
        .collect();
    let mut lines = vec![format!("argv: [{}]", words.join(", "))];
    if let Some(dir) = &spec.dir {
        lines.push(format!("dir: {}", dir.shown()));
    }
    for (name, value) in &spec.env {
        let shown = if crate::redact::is_secret_name(name) && !value.as_str().is_empty() {
            crate::redact::MASK
        } else {
            value.shown()
        };
        lines.push(format!("env: {name}={shown}"));
    }
    lines
}

/// A value as its serialized text: a string bare, anything else as JSON.
fn text_of(value: impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        Ok(other) => other.to_string(),
        Err(e) => format!("(cannot show: {e})"),
    }
}

/// `runbook show --format yaml|json`: the runbook as data, each step (in groups, undo and
/// `on_failure` too) with its `role` beside its kind: reads, acts, runs or runbook.
pub fn data(book: &Runbook) -> Result<serde_json::Value, serde_json::Error> {
    let mut value = serde_json::to_value(book)?;
    let steps = book.steps.iter().flat_map(|item| match item {
        Item::Step(step) => std::slice::from_ref(step),
        Item::Parallel { parallel } => parallel.as_slice(),
    });
    let mut shown: Vec<&mut serde_json::Value> = Vec::new();
    for item in value["steps"].as_array_mut().into_iter().flatten() {
        if item
            .get("parallel")
            .is_some_and(serde_json::Value::is_array)
        {
            if let Some(group) = item["parallel"].as_array_mut() {
                shown.extend(group.iter_mut());
            }
        } else {
            shown.push(item);
        }
    }
    for (step, shown) in steps.zip(shown) {
        with_role(step, shown);
    }
    if let Some(shown) = value.get_mut("on_failure").and_then(|v| v.as_array_mut()) {
        for (step, shown) in book.on_failure.iter().zip(shown.iter_mut()) {
            with_role(step, shown);
        }
    }
    Ok(value)
}

/// `role` on one step's data, and on its undo steps'.
fn with_role(step: &StepSpec, shown: &mut serde_json::Value) {
    if let Some(map) = shown.as_object_mut() {
        let role = serde_json::to_value(step.kind.role()).unwrap_or_default();
        map.insert("role".to_string(), role);
    }
    if let Some(undo) = shown.get_mut("undo").and_then(|v| v.as_array_mut()) {
        for (step, shown) in step.options.undo.iter().zip(undo.iter_mut()) {
            with_role(step, shown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::settings_line;

    #[test]
    fn settings_read_as_words_not_json() {
        let value = serde_json::json!({
            "path": "/", "threshold": { "warn": 80, "crit": 90 },
            "hosts": ["a", "b c"], "empty": ""
        });
        assert_eq!(
            settings_line(&value),
            r#"path /, warn 80, crit 90, hosts [a, "b c"], empty """#
        );
    }
}
