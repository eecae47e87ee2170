//! The one engine: runs named steps (a `Check` each) and times them into `CheckResult`s.
//! Health, runbooks, maintenance and incident diagnosis all come through here.

mod check;
pub mod condition;
pub mod registry;
pub mod steps;

pub use check::{Check, Context, Interaction, Settings, Unrunnable, unknown_set};
pub use registry::{Item, StepSpec};

use crate::model::CheckResult;
use std::sync::Arc;
use std::time::Instant;

/// A named unit of work of one kind.
pub struct Step {
    pub name: String,
    pub check: Box<dyn Check>,
}

impl Step {
    pub fn new(name: impl Into<String>, check: impl Check + 'static) -> Self {
        Step {
            name: name.into(),
            check: Box::new(check),
        }
    }
}

/// Run one step and time it.
pub async fn run_step(step: &Step, ctx: &Context) -> CheckResult {
    let started = Instant::now();
    let outcome = step.check.run(ctx).await;
    tracing::info!(
        target: crate::logging::RESULTS,
        step = %step.name,
        kind = step.check.kind(),
        status = outcome.status.as_str(),
        duration_ms = started.elapsed().as_millis() as u64,
        "{}",
        outcome.message
    );
    CheckResult {
        name: step.name.clone(),
        kind: step.check.kind().to_string(),
        status: outcome.status,
        message: outcome.message,
        duration: started.elapsed(),
        data: outcome.data,
    }
}

/// Run every step concurrently, at most `limit` at a time; results keep the steps' order.
pub async fn run_concurrently(steps: Vec<Step>, ctx: &Context, limit: usize) -> Vec<CheckResult> {
    let permits = Arc::new(tokio::sync::Semaphore::new(limit.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let steps: Vec<Arc<Step>> = steps.into_iter().map(Arc::new).collect();
    for (index, step) in steps.iter().enumerate() {
        let step = Arc::clone(step);
        let ctx = ctx.clone();
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (index, run_step(&step, &ctx).await)
        });
    }
    let mut results: Vec<Option<CheckResult>> = (0..steps.len()).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, result)) = joined {
            results[index] = Some(result);
        }
    }
    // A task can only be missing if it panicked; report it rather than drop it.
    results
        .into_iter()
        .zip(&steps)
        .map(|(result, step)| {
            result.unwrap_or_else(|| CheckResult {
                name: step.name.clone(),
                kind: step.check.kind().to_string(),
                status: crate::model::Status::Unknown,
                message: "the check crashed (a bug in opsbook: please report it)".to_string(),
                duration: std::time::Duration::ZERO,
                data: crate::model::Data::None,
            })
        })
        .collect()
}
