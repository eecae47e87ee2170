//! Running a runbook, with SPEC.md's semantics: steps in order; a `parallel:` group runs
//! its steps concurrently; a step that ends critical or unknown without
//! `continue_on_failure` stops the run (later steps are `skipped` with the reason, `always`
//! steps still run); `needs` and `when` skip a step, saying why; when any step failed,
//! `on_failure` runs. A warning never stops a run.

use super::load::Runbook;
use crate::engine::Context;
use crate::engine::registry::{Item, StepSpec};
use crate::engine::run_step;
use crate::model::{CheckResult, Report};
use crate::model::{Data, Status};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A step with no timeout of its own, in a runbook with no default, gets this much (an
/// action gets none: it runs to its end).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Kinds that bound themselves get this much longer before the engine steps in, so their
/// own message (and a command's process-group kill) comes first.
const MARGIN: Duration = Duration::from_secs(2);

/// Which steps `--only` and `--skip` select, by name or tag.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

impl Selection {
    /// `None` when the step runs; else why not.
    pub fn excludes(&self, step: &StepSpec) -> Option<String> {
        let matches = |list: &[String]| {
            list.iter()
                .find(|w| **w == step.name || step.options.tags.contains(w))
                .cloned()
        };
        if let Some(hit) = matches(&self.skip) {
            return Some(format!("skipped by --skip {hit}"));
        }
        if !self.only.is_empty() && matches(&self.only).is_none() {
            return Some(format!("not selected by --only {}", self.only.join(",")));
        }
        None
    }

    /// Each `--only`/`--skip` word that names no step and no tag of `book`, with the
    /// closest name: a typo must not silently select nothing.
    pub fn unknown(&self, book: &Runbook) -> Vec<String> {
        let mut known: Vec<&str> = Vec::new();
        for step in book.main_steps().chain(book.on_failure.iter()) {
            known.push(step.name.as_str());
            known.extend(step.options.tags.iter().map(String::as_str));
        }
        self.only
            .iter()
            .chain(self.skip.iter())
            .filter(|w| !known.contains(&w.as_str()))
            .map(|w| format!("{w:?}{}", crate::error::hint(w, &known)))
            .collect()
    }
}

struct State<'a> {
    statuses: HashMap<String, Status>,
    /// Main steps that completed (ok or warning), in the order they finished.
    completed: Vec<&'a StepSpec>,
    /// How many of `completed` a later step's failure makes undoable: a step is undone
    /// only if one after it (or beside it, in its parallel group) failed, never for a
    /// failure before it (a `continue_on_failure` check early in the run).
    undoable: usize,
    /// The step whose failure stopped the run.
    stopped_by: Option<String>,
    any_failed: bool,
    selection: &'a Selection,
}

fn failed(status: Status) -> bool {
    matches!(status, Status::Critical | Status::Unknown)
}

impl<'a> State<'a> {
    /// Why `step` does not run now, if it does not.
    fn blocked(&self, step: &StepSpec) -> Option<String> {
        if let Some(why) = self.selection.excludes(step) {
            return Some(why);
        }
        if let Some(culprit) = &self.stopped_by
            && !step.options.always
        {
            return Some(format!("not run: step {culprit:?} failed"));
        }
        for needed in &step.options.needs {
            match self.statuses.get(needed) {
                Some(Status::Ok | Status::Warning) => {}
                Some(status) => {
                    return Some(format!("needs {needed:?}, which is {}", status.as_str()));
                }
                None => return Some(format!("needs {needed:?}, which did not run")),
            }
        }
        self.condition_fails(step)
    }

    /// Why `step`'s `when` keeps it from running, if it does.
    fn condition_fails(&self, step: &StepSpec) -> Option<String> {
        let when = step.options.when.as_ref()?;
        let status = |name: &str| {
            self.statuses
                .get(name)
                .map(|s| s.as_str().to_string())
                .unwrap_or_default()
        };
        (!when.holds(&status)).then(|| format!("condition `{}` is false", when.source()))
    }

    fn record(&mut self, step: &StepSpec, result: &CheckResult) {
        self.statuses.insert(step.name.clone(), result.status);
        if failed(result.status) {
            self.any_failed = true;
            let stops = !step.options.continue_on_failure && step.kind_name() != "cpu";
            if stops && self.stopped_by.is_none() {
                self.stopped_by = Some(step.name.clone());
            }
        }
    }
}

/// Watches a run as it goes (streamed output, a spinner).
pub trait Observer {
    /// These steps are about to run (several for a `parallel:` group).
    fn started(&mut self, _steps: &[&StepSpec]) {}
    /// A step's result, as soon as it is known.
    fn finished(&mut self, result: &CheckResult);
}

impl<F: FnMut(&CheckResult)> Observer for F {
    fn finished(&mut self, result: &CheckResult) {
        self(result);
    }
}

/// Run `book`, telling `observer` about each step as it starts and finishes.
pub async fn run(
    book: &Runbook,
    ctx: &Context,
    selection: &Selection,
    observer: &mut dyn Observer,
) -> Report {
    let started = Instant::now();
    let timestamp = ctx.clock.now();
    let mut state = State {
        statuses: HashMap::new(),
        completed: Vec::new(),
        undoable: 0,
        stopped_by: None,
        any_failed: false,
        selection,
    };
    let mut results = Vec::new();
    for item in &book.steps {
        let group: &[StepSpec] = match item {
            Item::Step(step) => std::slice::from_ref(step),
            Item::Parallel { parallel } => parallel,
        };
        // A group's steps are all judged before any of them runs.
        let plans: Vec<Option<String>> = group.iter().map(|s| state.blocked(s)).collect();
        let starting: Vec<&StepSpec> = group
            .iter()
            .zip(&plans)
            .filter(|(_, why)| why.is_none())
            .map(|(step, _)| step)
            .collect();
        if !starting.is_empty() {
            observer.started(&starting);
        }
        let runs = group
            .iter()
            .zip(&plans)
            .filter(|(_, why)| why.is_none())
            .map(|(step, _)| execute(book, step, ctx));
        let mut finished = futures_join(runs).await.into_iter();
        let mut group_failed = false;
        for (step, why) in group.iter().zip(plans) {
            let result = match why {
                Some(why) => skipped(step, why),
                None => match finished.next() {
                    Some(result) => result,
                    None => skipped(step, "not run".to_string()),
                },
            };
            state.record(step, &result);
            if matches!(result.status, Status::Ok | Status::Warning) {
                state.completed.push(step);
            }
            group_failed |= failed(result.status);
            observer.finished(&result);
            results.push(result);
        }
        if group_failed {
            state.undoable = state.completed.len();
        }
    }
    if state.any_failed {
        // Undo what completed, newest first; every undo is tried, whatever the one
        // before it did, and none of them is undone in turn.
        let mut completed = std::mem::take(&mut state.completed);
        completed.truncate(state.undoable);
        for done in completed.iter().rev() {
            for undo in &done.options.undo {
                let result = match state.condition_fails(undo) {
                    Some(why) => skipped(undo, why),
                    None => {
                        observer.started(&[undo]);
                        execute(book, undo, ctx).await
                    }
                };
                let result = CheckResult {
                    name: undo_label(&result.name),
                    ..result
                };
                // Recorded for `on_failure`'s conditions, never stopping the other undos.
                state.statuses.insert(result.name.clone(), result.status);
                state.any_failed |= failed(result.status);
                observer.finished(&result);
                results.push(result);
            }
        }
        // The rollback runs whatever stopped the main steps.
        state.stopped_by = None;
        for step in &book.on_failure {
            let result = match state.blocked(step) {
                Some(why) => skipped(step, why),
                None => {
                    observer.started(&[step]);
                    execute(book, step, ctx).await
                }
            };
            state.record(step, &result);
            observer.finished(&result);
            results.push(result);
        }
    }
    Report {
        title: book.name.clone(),
        kind: crate::model::ReportKind::Runbook,
        timestamp,
        duration: started.elapsed(),
        results,
    }
}

/// How an undo step's result is named in every report: `undo: NAME`, so a reader (or a
/// CI parser) tells a rollback from the step it reverses.
pub fn undo_label(name: &str) -> String {
    if name.starts_with("undo: ") {
        name.to_string()
    } else {
        format!("undo: {name}")
    }
}

/// Run all of `futures` concurrently, results in order.
async fn futures_join<F: std::future::Future<Output = CheckResult>>(
    futures: impl Iterator<Item = F>,
) -> Vec<CheckResult> {
    let futures: Vec<_> = futures.map(Box::pin).collect();
    let mut slots: Vec<Option<CheckResult>> = futures.iter().map(|_| None).collect();
    let mut pending: Vec<(usize, std::pin::Pin<Box<F>>)> =
        futures.into_iter().enumerate().collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(i, f)| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(result) => {
                slots[*i] = Some(result);
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    slots.into_iter().flatten().collect()
}

/// Run one step with its retries and its timeout.
async fn execute(book: &Runbook, step: &StepSpec, ctx: &Context) -> CheckResult {
    let timeout = step
        .options
        .timeout
        .or(book.defaults.timeout)
        .map_or(DEFAULT_TIMEOUT, |t| t.0);
    let retries = step.options.retries.or(book.defaults.retries).unwrap_or(0);
    let runnable = step.build(timeout);
    let bounded = is_bounded(book, step);
    let acts = step.kind.role() == crate::engine::registry::Role::Acts;
    let mut attempt = 0;
    let mut pause = Duration::from_millis(500);
    let started = Instant::now();
    loop {
        let outcome = if bounded {
            tokio::time::timeout(timeout + MARGIN, run_step(&runnable, ctx)).await
        } else {
            Ok(run_step(&runnable, ctx).await)
        };
        let mut result = outcome.unwrap_or_else(|_| CheckResult {
            name: step.name.clone(),
            kind: step.kind_name().to_string(),
            status: Status::Critical,
            message: if acts {
                format!(
                    "timed out after {} (the action may still be finishing: check before running it again)",
                    humantime::format_duration(timeout)
                )
            } else {
                format!("timed out after {}", humantime::format_duration(timeout))
            },
            duration: timeout,
            data: Data::None,
        });
        if !failed(result.status) || attempt >= retries {
            if attempt > 0 {
                result.message = format!("{} (after {} attempts)", result.message, attempt + 1);
                result.duration = started.elapsed();
            }
            return result;
        }
        attempt += 1;
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

/// Whether the engine cuts `step` off at its timeout. A `manual` step waits for its person;
/// an action (backup, rotate, archive, prune, drill, restore, cleanup) runs to its end
/// unless the runbook bounds it: cut off at the default, it would go on finishing in the
/// background while the run reports it failed (and skips what needs it).
fn is_bounded(book: &Runbook, step: &StepSpec) -> bool {
    let explicit = step.options.timeout.or(book.defaults.timeout).is_some();
    let acts = step.kind.role() == crate::engine::registry::Role::Acts;
    step.kind_name() != "manual" && (explicit || !acts)
}

fn skipped(step: &StepSpec, why: String) -> CheckResult {
    CheckResult {
        name: step.name.clone(),
        kind: step.kind_name().to_string(),
        status: Status::Skipped,
        message: why,
        duration: Duration::ZERO,
        data: Data::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(text: &str) -> Runbook {
        let source = super::super::Source {
            label: std::path::PathBuf::from("t.yaml"),
            text: text.to_string(),
            dir: None,
        };
        match super::super::load(&source, &Default::default(), &[]) {
            Ok(book) => book,
            Err(e) => panic!("{e}"),
        }
    }

    /// Actions run to their end unless a timeout is written; readings and commands are
    /// cut off at the default.
    #[test]
    fn only_a_written_timeout_bounds_an_action() {
        let steps = "steps:\n  - { name: b, backup: { set: s } }\n  - { name: c, command: { run: \"true\" } }\n  - { name: t, timeout: 1h, backup: { set: s } }\n";
        let open = book(steps);
        let main: Vec<&StepSpec> = open.main_steps().collect();
        assert!(!is_bounded(&open, main[0]));
        assert!(is_bounded(&open, main[1]));
        assert!(is_bounded(&open, main[2]));
        let with_default = book(&format!("defaults: {{ timeout: 2h }}\n{steps}"));
        let main: Vec<&StepSpec> = with_default.main_steps().collect();
        assert!(is_bounded(&with_default, main[0]));
    }
}
