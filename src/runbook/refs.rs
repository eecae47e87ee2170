//! The reference checks of a loaded runbook: step names unique, and every `needs` entry and
//! `status("…")` in a `when` naming a step that runs earlier. Each error is placed where
//! the parser saw the name (a duplicate at its second use, with a note at the first).

use super::load::{Runbook, Source};
use super::spots::{Spot, StepSpots};
use crate::engine::registry::{Item, KindSpec, StepSpec};
use crate::error::ConfigError;
use std::collections::HashMap;

/// Where the steps of a runbook are written, in the order of `Runbook::main_steps` and
/// `on_failure` (an included runbook's steps point into its own file).
#[derive(Clone, Debug, Default)]
pub struct Located {
    pub main: Vec<StepSpots>,
    pub on_failure: Vec<StepSpots>,
}

/// Steps that exist but could not be loaded, so a reference to them is not reported as
/// naming no step.
#[derive(Debug, Default)]
pub struct Missing {
    /// Names of steps whose own settings are invalid (reported on their own).
    pub names: Vec<String>,
    /// An include failed to load: any name may be one of its steps.
    pub unknown: bool,
}

/// An error at `spot`, or about the whole of `source` when the place is not known.
pub fn error_at(spot: Option<&Spot>, source: &Source, message: &str) -> ConfigError {
    spot.map_or_else(
        || ConfigError::whole_file(&source.label, message),
        |s| s.error(message),
    )
}

/// Every step in the order of `Runbook::all_steps`, with where it is written.
fn steps_with_spots<'a>(
    book: &'a Runbook,
    located: &'a Located,
) -> Vec<(&'a StepSpec, Option<&'a StepSpots>)> {
    let mut out: Vec<_> = book
        .main_steps()
        .enumerate()
        .map(|(i, step)| (step, located.main.get(i)))
        .collect();
    for (i, step) in book.main_steps().enumerate() {
        for (k, undo) in step.options.undo.iter().enumerate() {
            out.push((undo, located.main.get(i).and_then(|s| s.undo.get(k))));
        }
    }
    for (i, step) in book.on_failure.iter().enumerate() {
        out.push((step, located.on_failure.get(i)));
    }
    out
}

/// Names unique; `needs` and `status("…")` name earlier steps.
pub fn validate(
    source: &Source,
    book: &Runbook,
    located: &Located,
    missing: &Missing,
) -> Vec<ConfigError> {
    let steps = steps_with_spots(book, located);
    let mut errors = Vec::new();
    let mut first: HashMap<&str, (usize, Option<&Spot>)> = HashMap::new();
    for (i, (step, spots)) in steps.iter().enumerate() {
        let here = spots.and_then(|s| s.best());
        match first.get(step.name.as_str()) {
            Some((_, there)) => {
                let note = there
                    .map(|t| format!(" (first used at {})", t.seen_from(here)))
                    .unwrap_or_default();
                errors.push(error_at(
                    here,
                    source,
                    &format!(
                        "step name {:?} is used twice: names must be unique{note}",
                        step.name
                    ),
                ));
            }
            None => {
                first.insert(step.name.as_str(), (i, here));
            }
        }
    }
    // A command from an empty variable runs nothing: it needs a `when:` that skips it.
    for (step, spots) in &steps {
        if let KindSpec::Command(command) = &step.kind
            && command.argv.is_empty()
            && step.options.when.is_none()
        {
            errors.push(error_at(
                spots.and_then(|s| s.best()),
                source,
                &format!(
                    "step {:?}: the command is empty (`run` is a variable with no value): give it one, or a `when:` that skips the step while it is empty",
                    step.name
                ),
            ));
        }
    }
    let names: Vec<&str> = first.keys().copied().collect();
    // The `parallel:` group of each main step (steps are numbered as `steps_with_spots`
    // numbers them, main steps first): two steps of one group run at the same time.
    let groups: Vec<Option<usize>> = book
        .steps
        .iter()
        .enumerate()
        .flat_map(|(g, item)| match item {
            Item::Step(_) => vec![None],
            Item::Parallel { parallel } => vec![Some(g); parallel.len()],
        })
        .collect();
    let group = |i: usize| groups.get(i).copied().flatten();
    for (i, (step, spots)) in steps.iter().enumerate() {
        let mut refer = |other: &str, how: &str, at: Option<&Spot>| {
            let message = match first.get(other) {
                None if missing.unknown || missing.names.iter().any(|n| n == other) => return,
                None => {
                    let hint = crate::error::did_you_mean(other, &names)
                        .map(|s| format!("; did you mean {s:?}?"))
                        .unwrap_or_default();
                    format!(
                        "step {:?} {how} {other:?}, but no step has that name{hint}",
                        step.name
                    )
                }
                Some((j, _)) if group(i).is_some() && group(i) == group(*j) => format!(
                    "step {:?} {how} {other:?}, but both are in the same `parallel:` group and run concurrently: move {other:?} before the group",
                    step.name
                ),
                Some((j, _)) if *j >= i => format!(
                    "step {:?} {how} {other:?}, which does not run before it",
                    step.name
                ),
                Some(_) => return,
            };
            errors.push(error_at(
                at.or(spots.and_then(|s| s.best())),
                source,
                &message,
            ));
        };
        for (k, needed) in step.options.needs.iter().enumerate() {
            let at = spots.and_then(|s| s.needs.get(k)).and_then(Option::as_ref);
            refer(needed, "needs", at);
        }
        if let Some(when) = &step.options.when {
            for other in when.steps() {
                refer(
                    &other,
                    "has a condition on",
                    spots.and_then(|s| s.when.as_ref()),
                );
            }
        }
    }
    errors
}
