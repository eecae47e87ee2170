//! `health --watch` and `--serve` grade each endpoint on its own `interval`, as gatus
//! does: a reading adds to a streak of failures or of successes, and only a streak that
//! reaches the endpoint's `failure_threshold` (or `success_threshold`) changes its counted
//! state. Each counted change is a [`Transition`]: one audit line, then one [`Hook`] call
//! (where notifications plug in).

use super::HealthConfig;
use crate::engine::{Context, Step, run_step};
use crate::model::{CheckResult, Status};
use jiff::Timestamp;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Failures in a row before an endpoint counts as down: gatus's default.
pub const FAILURE_THRESHOLD: u32 = 3;
/// Successes in a row before a down endpoint counts as up again: gatus's default.
pub const SUCCESS_THRESHOLD: u32 = 2;
/// How often `--serve` probes an endpoint that sets no `interval` (gatus's default).
pub const SERVE_INTERVAL: Duration = Duration::from_secs(60);

/// An endpoint's counted state. Every endpoint starts up: nothing is reported until
/// `failure_threshold` failures in a row say otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Up,
    Down,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Down => "down",
        }
    }
}

/// How one endpoint is graded, its defaults filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grading {
    pub interval: Duration,
    pub failure_threshold: u32,
    pub success_threshold: u32,
}

/// What one endpoint's readings have counted up to.
#[derive(Clone, Debug)]
pub struct Tally {
    pub state: State,
    pub consecutive_failures: u32,
    pub consecutive_successes: u32,
    /// When the state last changed (none yet: it has been up since the start).
    pub last_change: Option<Timestamp>,
    /// The latest reading and when it was taken.
    pub last_reading: Option<(Timestamp, CheckResult)>,
    /// The message of the latest failing reading: what a down endpoint is said to fail with,
    /// even when its latest reading already succeeded (a recovery not yet counted).
    pub last_failure: Option<String>,
    pub readings: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            state: State::Up,
            consecutive_failures: 0,
            consecutive_successes: 0,
            last_change: None,
            last_reading: None,
            last_failure: None,
            readings: 0,
        }
    }
}

/// A failure is what makes `/health` unhealthy: critical or unknown. A skipped reading
/// (its `when:` did not hold) counts neither way.
fn is_failure(status: Status) -> Option<bool> {
    match status {
        Status::Critical | Status::Unknown => Some(true),
        Status::Skipped => None,
        Status::Ok | Status::Warning => Some(false),
    }
}

impl Tally {
    /// Count one reading taken `at`; the state it left when this reading completed a
    /// streak that changes it (once: the next reading starts a streak of its own).
    pub fn count(
        &mut self,
        reading: CheckResult,
        at: Timestamp,
        grading: Grading,
    ) -> Option<State> {
        self.readings += 1;
        let failure = is_failure(reading.status);
        if failure == Some(true) {
            self.last_failure = Some(reading.message.clone());
        }
        self.last_reading = Some((at, reading));
        if failure? {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.consecutive_successes = 0;
        } else {
            self.consecutive_successes = self.consecutive_successes.saturating_add(1);
            self.consecutive_failures = 0;
        }
        let next = match self.state {
            State::Up if self.consecutive_failures >= grading.failure_threshold => State::Down,
            State::Down if self.consecutive_successes >= grading.success_threshold => State::Up,
            _ => return None,
        };
        let from = self.state;
        self.state = next;
        self.last_change = Some(at);
        Some(from)
    }

    /// What the counted state says now: `Some(None)` up, `Some(Some(message))` down and
    /// failing with `message`; `None` while unknown (no reading yet, or counted down by an
    /// earlier monitor and read only succeeding since: its recovery is not counted yet).
    pub fn failing(&self) -> Option<Option<String>> {
        match self.state {
            State::Up if self.readings > 0 => Some(None),
            State::Up => None,
            State::Down => self.last_failure.clone().map(Some),
        }
    }

    /// The streak that holds the current state.
    fn streak(&self) -> u32 {
        match self.state {
            State::Up => self.consecutive_successes,
            State::Down => self.consecutive_failures,
        }
    }
}

/// A counted change of one endpoint's state: what a notification is about.
#[derive(Clone, Debug)]
pub struct Transition {
    /// What changed: always `health` here.
    pub scope: &'static str,
    /// The endpoint's name.
    pub name: String,
    pub from: State,
    pub to: State,
    pub at: Timestamp,
    /// How many readings in a row made the change count.
    pub streak: u32,
    /// The reading that completed the streak (its status, message and data).
    pub reading: CheckResult,
    /// Every endpoint counted down once this change is made, with its latest message:
    /// the problems still open.
    pub down: Vec<(String, String)>,
}

impl Transition {
    /// One line for people and the audit log, secrets masked:
    /// `api: up → down after 3 failures in a row: status 503, expected 2xx`.
    pub fn describe(&self) -> String {
        let (one, many) = match self.to {
            State::Down => ("failure", "failures"),
            State::Up => ("success", "successes"),
        };
        let line = format!(
            "{}: {} → {} after {} in a row: {}",
            self.name,
            self.from.as_str(),
            self.to.as_str(),
            crate::plural::count(self.streak, one, many),
            self.reading.message
        );
        crate::redact::mask(&line).into_owned()
    }
}

/// Hears every counted change, after its audit line is written.
pub type Hook = Arc<dyn Fn(&Transition) + Send + Sync>;

/// One endpoint as shown: its name, how it is graded and what it counted.
#[derive(Clone, Debug)]
pub struct Watched {
    pub name: String,
    pub grading: Grading,
    pub tally: Tally,
}

/// The endpoints of a health config, each graded on its own interval.
pub struct Monitor {
    endpoints: Vec<(Arc<Step>, Grading)>,
    tallies: Mutex<Vec<Tally>>,
    changed: tokio::sync::Notify,
    hook: Hook,
    concurrency: usize,
}

impl Monitor {
    /// `default_interval` for endpoints that set none (the watch period, or a minute).
    /// `down`: the endpoints an earlier process counted down and never saw recover (from
    /// the notification state); they start down, so their recovery is counted and said.
    pub fn new(
        config: &HealthConfig,
        default_interval: Duration,
        hook: Hook,
        down: &[String],
    ) -> Arc<Monitor> {
        let endpoints: Vec<(Arc<Step>, Grading)> = config
            .endpoints
            .iter()
            .map(|endpoint| {
                let written = &endpoint.grading;
                let grading = Grading {
                    interval: written.interval.map_or(default_interval, |i| i.0.0),
                    failure_threshold: written.failure_threshold.map_or(FAILURE_THRESHOLD, |s| s.0),
                    success_threshold: written.success_threshold.map_or(SUCCESS_THRESHOLD, |s| s.0),
                };
                (
                    Arc::new(endpoint.step.build(super::ENDPOINT_TIMEOUT)),
                    grading,
                )
            })
            .collect();
        let tallies = config
            .endpoints
            .iter()
            .map(|endpoint| Tally {
                state: if down.contains(&endpoint.step.name) {
                    State::Down
                } else {
                    State::Up
                },
                ..Tally::default()
            })
            .collect();
        Arc::new(Monitor {
            tallies: Mutex::new(tallies),
            endpoints,
            changed: tokio::sync::Notify::new(),
            hook,
            concurrency: config.concurrency.max(1),
        })
    }

    /// Probe every endpoint on its own interval, at most `health.concurrency` at once,
    /// until this future is dropped (it never ends by itself).
    pub async fn run(self: Arc<Self>, ctx: Context) {
        let permits = Arc::new(tokio::sync::Semaphore::new(self.concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..self.endpoints.len() {
            let monitor = Arc::clone(&self);
            let ctx = ctx.clone();
            let permits = Arc::clone(&permits);
            tasks.spawn(async move { monitor.grade(index, &ctx, &permits).await });
        }
        while tasks.join_next().await.is_some() {}
        std::future::pending::<()>().await;
    }

    async fn grade(&self, index: usize, ctx: &Context, permits: &tokio::sync::Semaphore) {
        let Some((step, grading)) = self.endpoints.get(index) else {
            return;
        };
        loop {
            // The next probe starts an interval after this one started (or at once when
            // this one took longer): a steady pace that never overlaps itself.
            let next = tokio::time::Instant::now() + grading.interval;
            let reading = {
                let _permit = permits.acquire().await;
                run_step(step, ctx).await
            };
            self.record(index, reading, ctx.clock.now());
            tokio::time::sleep_until(next).await;
        }
    }

    /// Count a reading; a counted change is audited and handed to the hook before the
    /// endpoint's next probe can start.
    fn record(&self, index: usize, reading: CheckResult, at: Timestamp) {
        let transition = {
            let mut tallies = self.lock();
            let Some(&(_, grading)) = self.endpoints.get(index) else {
                return;
            };
            let Some(tally) = tallies.get_mut(index) else {
                return;
            };
            let shown = reading.clone();
            let from = tally.count(reading, at, grading);
            let (to, streak) = (tally.state, tally.streak());
            from.map(|from| Transition {
                scope: "health",
                name: shown.name.clone(),
                from,
                to,
                at,
                streak,
                reading: shown,
                down: down(&tallies),
            })
        };
        self.changed.notify_waiters();
        if let Some(transition) = transition {
            crate::logging::audit::record(
                "health.endpoint",
                transition.to.as_str(),
                Some(&transition.describe()),
            );
            (self.hook)(&transition);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Tally>> {
        self.tallies.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The latest reading of every endpoint, in config order, once each has one.
    pub async fn readings(&self) -> Vec<CheckResult> {
        loop {
            // Registered before looking, so a reading recorded in between still wakes it.
            let changed = self.changed.notified();
            {
                let tallies = self.lock();
                let latest: Option<Vec<CheckResult>> = tallies
                    .iter()
                    .map(|t| t.last_reading.as_ref().map(|(_, r)| r.clone()))
                    .collect();
                if let Some(latest) = latest {
                    return latest;
                }
            }
            changed.await;
        }
    }

    /// Every endpoint whose counted state is known, in config order, with what it fails
    /// with while it is counted down (`None` while up): the endpoints' open problems now.
    pub fn counted(&self) -> Vec<(String, Option<String>)> {
        let tallies = self.lock();
        self.endpoints
            .iter()
            .zip(tallies.iter())
            .filter_map(|((step, _), tally)| Some((step.name.clone(), tally.failing()?)))
            .collect()
    }

    /// Every endpoint's name, grading and tally, in config order.
    pub fn watched(&self) -> Vec<Watched> {
        let tallies = self.lock();
        self.endpoints
            .iter()
            .zip(tallies.iter())
            .map(|((step, grading), tally)| Watched {
                name: step.name.clone(),
                grading: *grading,
                tally: tally.clone(),
            })
            .collect()
    }
}

fn down(tallies: &[Tally]) -> Vec<(String, String)> {
    tallies
        .iter()
        .filter(|t| t.state == State::Down)
        .filter_map(|t| t.last_reading.as_ref())
        .map(|(_, r)| (r.name.clone(), r.message.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Data;

    fn reading(status: Status) -> CheckResult {
        CheckResult {
            name: "api".into(),
            kind: "http".into(),
            status,
            message: format!("{status:?}"),
            duration: Duration::ZERO,
            data: Data::None,
        }
    }

    /// The states a run of readings leaves, and the changes it counted, in order.
    fn run(statuses: &[Status], failure_threshold: u32, success_threshold: u32) -> Vec<String> {
        let grading = Grading {
            interval: Duration::from_secs(1),
            failure_threshold,
            success_threshold,
        };
        let mut tally = Tally::default();
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        statuses
            .iter()
            .map(|&s| match tally.count(reading(s), at, grading) {
                Some(from) => format!("{}>{}", from.as_str(), tally.state.as_str()),
                None => tally.state.as_str().to_string(),
            })
            .collect()
    }

    #[test]
    fn a_change_counts_once_when_its_streak_reaches_the_threshold() {
        use Status::{Critical as C, Ok as O, Skipped as S, Unknown as U, Warning as W};
        assert_eq!(
            run(&[C, C, C, C, O, C, O, O, O], 3, 2),
            [
                "up", "up", "up>down", "down", "down", "down", "down", "down>up", "up"
            ]
        );
        // A success breaks a failure streak; a warning is a success; unknown fails;
        // a skipped reading neither counts nor breaks a streak.
        assert_eq!(
            run(&[C, C, W, U, S, C, U], 3, 2),
            ["up", "up", "up", "up", "up", "up", "up>down"]
        );
        assert_eq!(run(&[C, O, C], 1, 1), ["up>down", "down>up", "up>down"]);
    }

    /// An endpoint a restarted monitor starts down is not said to be up (nor failing)
    /// until its readings count: a success short of the threshold leaves it unknown.
    #[test]
    fn a_tally_started_down_is_unknown_until_a_reading_counts() {
        let grading = Grading {
            interval: Duration::from_secs(1),
            failure_threshold: 3,
            success_threshold: 2,
        };
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut tally = Tally {
            state: State::Down,
            ..Tally::default()
        };
        assert_eq!(tally.failing(), None);
        tally.count(reading(Status::Ok), at, grading);
        assert_eq!(tally.failing(), None, "one success of two");
        tally.count(reading(Status::Critical), at, grading);
        assert_eq!(tally.failing(), Some(Some("Critical".to_string())));
        tally.count(reading(Status::Ok), at, grading);
        assert_eq!(tally.failing(), Some(Some("Critical".to_string())));
        tally.count(reading(Status::Ok), at, grading);
        assert_eq!(tally.failing(), Some(None), "recovery counted");
        assert_eq!(Tally::default().failing(), None, "no reading yet");
    }
}
