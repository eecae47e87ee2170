//! The step kind trait and what a step may reach outside itself (`Context`).

use crate::clock::{Clock, SystemClock};
use crate::model::{BoxFuture, Outcome};
use crate::probe::{Env, Probe, resources};
use std::path::PathBuf;
use std::sync::Arc;

/// A step kind. `run` never panics and never outlives its own timeout: whatever goes
/// wrong becomes an `Outcome` with a message.
pub trait Check: Send + Sync {
    /// The kind's name as written in runbooks: `memory`, `disk`, `http`, …
    fn kind(&self) -> &'static str;
    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Outcome>;
}

/// What checks may reach outside themselves. Tests swap in fixed readings and a fixed clock.
#[derive(Clone)]
pub struct Context {
    pub resources: Arc<dyn resources::Resources>,
    pub clock: Arc<dyn Clock>,
    /// Whether a `manual` step can ask a person.
    pub interaction: Interaction,
    /// The part of the configuration action steps act on (a narrow view, not the whole).
    pub config: Arc<Settings>,
}

/// What action steps may read of the configuration: where state lives, the log sets and
/// the backup sets. Built by the settings loader; steps never see the rest.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub state_dir: PathBuf,
    pub logs: crate::logs::LogsConfig,
    pub backup: crate::backup::BackupConfig,
    /// Runs a drill's `verify: { runbook: NAME }` (the runbook runner sits above the engine).
    pub runbook: crate::backup::RunbookRunner,
}

impl Settings {
    /// Where locks, rotation state and backup records live.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone()
    }
}

/// Who answers a `manual` step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interaction {
    /// `--yes`: every prompt is confirmed.
    Yes,
    /// A person at a terminal is asked.
    Ask,
    /// Nobody can answer (cron, CI, a pipe): the step is `unknown`.
    None,
    /// Scheduled maintenance: the step is reported as a to-do item (`skipped`), never
    /// waited on and never failing the run.
    Todo,
}

/// A step that cannot run, saying why (a bug guard; never built from valid input).
pub struct Unrunnable(pub String);

impl Check for Unrunnable {
    fn kind(&self) -> &'static str {
        "invalid"
    }

    fn run<'a>(&'a self, _ctx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { Outcome::unknown(self.0.clone()) })
    }
}

/// A step naming a set the config does not have: unknown, with a did-you-mean.
pub fn unknown_set<'k>(
    section: &str,
    name: &str,
    known: impl Iterator<Item = &'k String>,
) -> Outcome {
    let known: Vec<&str> = known.map(String::as_str).collect();
    let hint = crate::error::hint(name, &known);
    Outcome::unknown(format!("no set {name:?} in `{section}`{hint}"))
}

impl Context {
    /// What a probe may read: the machine, the clock and the configured log sets.
    pub fn env(&self) -> Env {
        Env {
            resources: Arc::clone(&self.resources),
            clock: Arc::clone(&self.clock),
            log_sets: Arc::new(self.config.logs.sets.clone()),
        }
    }

    /// The real machine and the real clock.
    pub fn system() -> Self {
        Context {
            resources: Arc::new(resources::SystemResources),
            clock: Arc::new(SystemClock),
            interaction: Interaction::None,
            config: Arc::default(),
        }
    }
}

/// Every probe is a step kind: it reads through the context's machine and clock.
impl<P: Probe> Check for P {
    fn kind(&self) -> &'static str {
        Probe::kind(self)
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let env = ctx.env();
            Probe::run(self, &env).await
        })
    }
}
