//! Telling people what `health --watch`/`--serve` see: each endpoint's counted changes in
//! its own scope (`health:NAME`), the machine's readings in `health:machine`, all handed
//! to `notify::settle` by one task, one at a time and in the order they happened (a
//! recovery never lands before the failure it ends).
//!
//! Besides the changes, a steady tick ([`Teller::endpoints`]) hands over the endpoints
//! this monitor counts down: nothing new is sent for them, but a `repeat:` that has come
//! due is; and messages left undelivered are retried when their turn comes. The tick
//! never says an endpoint is up (only a counted change does), so a second monitor on the
//! same state directory, which has not counted the failure yet, never ends a problem the
//! first one told; and a tick waiting to be settled is not queued again, so a slow channel
//! never piles ticks up. On stop, [`Teller::finish`] settles what was handed over before
//! it returns; when hurried (a second Ctrl-C) it records the changes left without sending
//! them, so the next run sends them.

use super::{HealthConfig, Monitor, Transition};
use crate::notify::{NotifyConfig, Problem, Scope, Severity};
use jiff::Timestamp;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// What the task is handed.
enum Told {
    /// A counted change, or the machine's readings: what fails now in one scope.
    Change(Timestamp, String, Vec<Problem>),
    /// The tick: the scopes of the endpoints counted down, with their problems.
    Tick(Timestamp, Vec<(String, Vec<Problem>)>),
    /// The machine's latest readings are waiting in [`Teller::machine`]'s slot.
    Machine,
}

/// The machine's latest failing readings, when not settled yet.
type Slot = Arc<std::sync::Mutex<Option<(Timestamp, Vec<Problem>)>>>;

fn take(slot: &Slot) -> Option<(Timestamp, Vec<Problem>)> {
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// Said for each warning a settle gives (an undelivered message, a state file problem).
pub type Warn = Arc<dyn Fn(&str) + Send + Sync>;

/// The scope of the machine's own readings (memory, disk, CPU…).
pub const MACHINE: &str = "health:machine";

/// How long a hurried stop may take to record the changes left, all of them (the lock
/// another process may hold): past it, they are said lost rather than the stop held.
const HURRIED: Duration = Duration::from_secs(5);

/// The one task that settles notifications for a monitor.
pub struct Teller {
    tx: mpsc::UnboundedSender<Told>,
    /// A tick is waiting to be settled: the next one is not queued.
    ticking: Arc<AtomicBool>,
    machine: Slot,
    stopping: Arc<Notify>,
    hurry: Arc<Notify>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// What the task needs besides its queue.
struct Settler {
    config: NotifyConfig,
    state_dir: PathBuf,
    rerun: String,
    warn: Warn,
    ticking: Arc<AtomicBool>,
    machine: Slot,
}

impl Teller {
    /// Start the task on the current runtime; `None` when `notify:` names no channel.
    /// `rerun` is the command said in every message (`opsbook --config … health`).
    pub fn start(
        config: &NotifyConfig,
        state_dir: &Path,
        rerun: String,
        warn: Warn,
    ) -> Option<Teller> {
        if !config.is_configured() {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel::<Told>();
        let ticking = Arc::new(AtomicBool::new(false));
        let machine = Slot::default();
        let (stopping, hurry) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let settler = Settler {
            config: config.clone(),
            state_dir: state_dir.to_path_buf(),
            rerun,
            warn,
            ticking: Arc::clone(&ticking),
            machine: Arc::clone(&machine),
        };
        let task = tokio::spawn(settler.run(rx, Arc::clone(&stopping), Arc::clone(&hurry)));
        Some(Teller {
            tx,
            ticking,
            machine,
            stopping,
            hurry,
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
        let _ = self.tx.send(Told::Change(transition.at, scope, problems));
    }

    /// The tick: hand over the endpoints this monitor counts down, unless the last tick
    /// is still waiting.
    pub fn endpoints(&self, monitor: &Monitor, at: Timestamp) {
        if self.ticking.swap(true, Ordering::AcqRel) {
            return;
        }
        let down = monitor
            .counted()
            .into_iter()
            .filter_map(|(name, failing)| {
                let problem = endpoint_problem(&name, &failing?);
                Some((format!("health:{name}"), vec![problem]))
            })
            .collect();
        if self.tx.send(Told::Tick(at, down)).is_err() {
            self.ticking.store(false, Ordering::Release);
        }
    }

    /// Hand over the machine's failing readings of one report: they replace readings not
    /// settled yet (only the latest matters), so a slow channel never piles reports up.
    pub fn machine(&self, at: Timestamp, problems: Vec<Problem>) {
        let waiting = self
            .machine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .replace((at, problems))
            .is_some();
        if !waiting {
            let _ = self.tx.send(Told::Machine);
        }
    }

    /// Settle everything handed over so far, then end (what is handed over later is
    /// dropped: the monitor is stopping). When `again` resolves first (a second Ctrl-C),
    /// the delivery on its way is left queued and the changes left are recorded without
    /// sending. Once: a second call returns at once.
    pub async fn finish(&self, again: impl Future<Output = ()>) {
        self.stopping.notify_one();
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(mut task) = task else {
            return;
        };
        tokio::select! {
            _ = &mut task => {}
            () = again => {
                self.hurry.notify_one();
                let _ = task.await;
            }
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

impl Settler {
    async fn run(
        self,
        mut rx: mpsc::UnboundedReceiver<Told>,
        stopping: Arc<Notify>,
        hurry: Arc<Notify>,
    ) {
        let mut hurried: Option<tokio::time::Instant> = None;
        let mut left = 0usize;
        loop {
            tokio::select! {
                biased;
                told = rx.recv() => match told {
                    Some(told) => left += usize::from(!self.handle(told, &hurry, &mut hurried).await),
                    None => return,
                },
                () = stopping.notified() => break,
            }
        }
        rx.close();
        while let Some(told) = rx.recv().await {
            left += usize::from(!self.handle(told, &hurry, &mut hurried).await);
        }
        if left > 0 {
            (self.warn)(&format!(
                "health: {} could not be recorded before the stop (the notification lock stayed taken); a restarted monitor counts them again",
                crate::plural::count(left, "change", "changes")
            ));
        }
    }

    /// Settle one thing handed over, or once hurried (since `hurried`), record it without
    /// sending; false when it could not even be recorded in time.
    async fn handle(
        &self,
        told: Told,
        hurry: &Notify,
        hurried: &mut Option<tokio::time::Instant>,
    ) -> bool {
        let deadline = match *hurried {
            Some(deadline) => deadline,
            None => {
                tokio::select! {
                    () = self.settle(&told) => return true,
                    () = hurry.notified() => {}
                }
                *hurried.insert(tokio::time::Instant::now() + HURRIED)
            }
        };
        let (at, name, problems) = match told {
            Told::Change(at, name, problems) => (at, name, problems),
            Told::Machine => match take(&self.machine) {
                Some((at, problems)) => (at, MACHINE.to_string(), problems),
                None => return true,
            },
            Told::Tick(..) => {
                self.ticking.store(false, Ordering::Release);
                return true; // a tick keeps problems open: nothing to record
            }
        };
        let scope = self.scope(&name);
        let recorded = crate::notify::record(&self.config, &self.state_dir, at, &scope, &problems);
        match tokio::time::timeout_at(deadline, recorded).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                (self.warn)(&format!("notifications not recorded: {e}"));
                false
            }
            Err(_) => false,
        }
    }

    fn scope<'a>(&'a self, name: &'a str) -> Scope<'a> {
        Scope {
            name,
            rerun: &self.rerun,
            unseen: &[],
        }
    }

    async fn settle(&self, told: &Told) {
        match told {
            Told::Change(at, name, problems) => self.one(*at, name, problems).await,
            Told::Machine => {
                if let Some((at, problems)) = take(&self.machine) {
                    self.one(at, MACHINE, &problems).await;
                }
            }
            Told::Tick(at, down) => {
                self.ticking.store(false, Ordering::Release);
                for (name, problems) in down {
                    self.one(*at, name, problems).await;
                }
                match crate::notify::retry(&self.config, &self.state_dir, *at).await {
                    Ok(told) => told.all_warnings().for_each(|w| (self.warn)(w)),
                    Err(e) => (self.warn)(&format!("notifications not retried: {e}")),
                }
            }
        }
    }

    async fn one(&self, at: Timestamp, name: &str, problems: &[Problem]) {
        let scope = self.scope(name);
        match crate::notify::settle(&self.config, &self.state_dir, at, &scope, problems).await {
            Ok(told) => told.all_warnings().for_each(|w| (self.warn)(w)),
            Err(e) => (self.warn)(&format!("notifications not sent: {e}")),
        }
    }
}

/// What earlier monitors left open, as a starting monitor finds it (one read of the
/// notification state; nothing without channels).
#[derive(Debug, Default)]
pub struct LeftOpen {
    /// The endpoints an earlier monitor said failed and never said recovered: they start
    /// down, so their recovery is counted and told.
    pub down: Vec<String>,
    /// One line per problem left open for an endpoint no longer configured (renamed or
    /// removed): it stays open, since nothing watches it to say it recovered; the line
    /// says how to forget it.
    pub orphans: Vec<String>,
}

pub fn left_open(config: &HealthConfig, notify: &NotifyConfig, state_dir: &Path) -> LeftOpen {
    let mut left = LeftOpen::default();
    if !notify.is_configured() {
        return left;
    }
    let names: Vec<&str> = config
        .endpoints
        .iter()
        .map(|e| e.step.name.as_str())
        .collect();
    for (scope, keys) in crate::notify::open_scopes(state_dir, "health") {
        let name = scope.strip_prefix("health:").unwrap_or(&scope);
        if names.contains(&name) {
            if keys.iter().any(|k| k == name) {
                left.down.push(name.to_string());
            }
        } else if scope != MACHINE {
            left.orphans.push(format!(
                "health: {scope} was told failing by an earlier monitor and its endpoint is no longer configured: it stays open, with no recovery to tell (delete its file in {} to forget it)",
                state_dir.join("notify").display()
            ));
        }
    }
    left
}

/// How often `--serve` ticks: the endpoints' shortest interval, within a second and a
/// minute.
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
