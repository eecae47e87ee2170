//! Telling people what `health --watch`/`--serve` see: each endpoint's counted changes in
//! its own scope (`health:NAME`), the machine's readings in `health:machine`, all handed
//! to `notify::settle` by one task, one at a time and in the order they happened (a
//! recovery never lands before the failure it ends).
//!
//! Besides the changes, the endpoints' open problems are handed over again on a steady
//! tick ([`Teller::endpoints`]): nothing new is sent for them, but a `repeat:` that has
//! come due is, and messages an earlier call left undelivered are retried. On stop,
//! [`Teller::finish`] settles what was handed over before it returns, so a stopped
//! monitor has recorded every message a channel took.

use super::{HealthConfig, Monitor, Transition};
use crate::notify::{NotifyConfig, Problem, Scope, Severity};
use jiff::Timestamp;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// What to settle: when, the scope, what is failing in it now.
type Told = (Timestamp, String, Vec<Problem>);

/// Said for each warning a settle gives (an undelivered message, a state file problem).
pub type Warn = Arc<dyn Fn(&str) + Send + Sync>;

/// The scope of the machine's own readings (memory, disk, CPU…).
pub const MACHINE: &str = "health:machine";

/// The one task that settles notifications for a monitor.
pub struct Teller {
    tx: mpsc::UnboundedSender<Told>,
    stopping: Arc<Notify>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Teller {
    /// Start the task on the current runtime; `None` when `notify:` names no channel.
    pub fn start(config: &NotifyConfig, state_dir: &Path, warn: Warn) -> Option<Teller> {
        if !config.is_configured() {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel::<Told>();
        let stopping = Arc::new(Notify::new());
        let task = tokio::spawn(settling(
            config.clone(),
            state_dir.to_path_buf(),
            rx,
            Arc::clone(&stopping),
            warn,
        ));
        Some(Teller {
            tx,
            stopping,
            task: std::sync::Mutex::new(Some(task)),
        })
    }

    /// Hand over a counted change: the endpoint's problem when it went down, none when it
    /// came back up.
    pub fn transition(&self, transition: &Transition) {
        let problems = transition
            .down
            .iter()
            .filter(|(name, _)| *name == transition.name)
            .map(|(name, message)| endpoint_problem(name, message))
            .collect();
        let scope = format!("health:{}", transition.name);
        let _ = self.tx.send((transition.at, scope, problems));
    }

    /// Hand over every graded endpoint's counted state as it is now (the tick).
    pub fn endpoints(&self, monitor: &Monitor, at: Timestamp) {
        for (name, failing) in monitor.counted() {
            let problems = failing
                .iter()
                .map(|message| endpoint_problem(&name, message))
                .collect();
            let _ = self.tx.send((at, format!("health:{name}"), problems));
        }
    }

    /// Hand over the machine's failing readings of one report.
    pub fn machine(&self, at: Timestamp, problems: Vec<Problem>) {
        let _ = self.tx.send((at, MACHINE.to_string(), problems));
    }

    /// Settle everything handed over so far, then end (what is handed over later is
    /// dropped: the monitor is stopping). Once: a second call returns at once.
    pub async fn finish(&self) {
        self.stopping.notify_one();
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

fn endpoint_problem(name: &str, message: &str) -> Problem {
    Problem {
        key: name.to_string(),
        what: name.to_string(),
        severity: Severity::Critical,
        detail: message.to_string(),
    }
}

async fn settling(
    config: NotifyConfig,
    state_dir: PathBuf,
    mut rx: mpsc::UnboundedReceiver<Told>,
    stopping: Arc<Notify>,
    warn: Warn,
) {
    let settle = async |(at, name, problems): Told| {
        let scope = Scope {
            name: &name,
            rerun: "opsbook health",
            unseen: &[],
        };
        match crate::notify::settle(&config, &state_dir, at, &scope, &problems).await {
            Ok(told) => told.all_warnings().for_each(|w| warn(w)),
            Err(e) => warn(&format!("notifications not sent: {e}")),
        }
    };
    loop {
        tokio::select! {
            biased;
            told = rx.recv() => match told {
                Some(told) => settle(told).await,
                None => return,
            },
            () = stopping.notified() => break,
        }
    }
    rx.close();
    while let Some(told) = rx.recv().await {
        settle(told).await;
    }
}

/// The endpoints whose problem an earlier monitor said and never said recovered: they
/// start down, so their recovery is counted and told (none without channels).
pub fn still_down(config: &HealthConfig, notify: &NotifyConfig, state_dir: &Path) -> Vec<String> {
    if !notify.is_configured() {
        return Vec::new();
    }
    config
        .endpoints
        .iter()
        .map(|e| e.step.name.clone())
        .filter(|name| crate::notify::open_in(state_dir, &format!("health:{name}")).contains(name))
        .collect()
}

/// How often `--serve` hands the endpoints' states over again: their shortest interval,
/// within a second and a minute.
pub fn tick(monitor: &Monitor) -> Duration {
    monitor
        .watched()
        .iter()
        .map(|w| w.grading.interval)
        .min()
        .unwrap_or(super::monitor::SERVE_INTERVAL)
        .clamp(Duration::from_secs(1), super::monitor::SERVE_INTERVAL)
}

/// The machine's own failing readings of a report: endpoints are told by their counted
/// changes instead.
pub fn machine_problems(config: &HealthConfig, report: &crate::model::Report) -> Vec<Problem> {
    let endpoints: Vec<&str> = config
        .endpoints
        .iter()
        .map(|e| e.step.name.as_str())
        .collect();
    Problem::from_report(report)
        .into_iter()
        .filter(|p| !endpoints.contains(&p.key.as_str()))
        .collect()
}
