//! One schedule's run: its runbook found, loaded and run through the runbook runner under
//! the schedule's lock, the state file written before and after, the metrics textfile,
//! the audit line.

use super::{Error, LastRun, Schedule, record};
use crate::engine::{Context, Interaction, Item, Settings, StepSpec};
use crate::model::{CheckResult, Report, Status};
use crate::notify::ping::Phase;
use crate::runbook::Runbook;
use crate::values::Text;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a schedule run needs from the caller: the schedule, where runbooks are found,
/// the settings its steps see, and where the textfile goes.
pub struct RunOptions<'a> {
    /// The schedule's name (a key of the schedules given).
    pub schedule: &'a str,
    /// The runbook directories (config `runbooks.dirs`).
    pub dirs: &'a [PathBuf],
    /// Variables every runbook of the run gets (`opsbook_config`, `opsbook_env`); the
    /// schedule's own `vars` win over them.
    pub vars: BTreeMap<String, Text>,
    /// What the steps see of the configuration (the state dir, the log and backup sets).
    pub settings: Settings,
    /// Write a Prometheus textfile here (world-readable, replaced atomically).
    pub metrics: Option<&'a Path>,
    /// Tell the configured channels what started failing and what recovered.
    pub notify: Option<&'a crate::notify::NotifyConfig>,
    /// The command that reruns the schedule with the same configuration, said in every
    /// message (`opsbook --config /etc/opsbook.yaml maintain run daily`).
    pub rerun: String,
}

/// A finished run: the report of its steps and how long it took.
pub struct Finished {
    pub report: Report,
    pub took: std::time::Duration,
    /// What did not work around the run without failing it: a cron-monitor ping, a
    /// notification left for the next run.
    pub warnings: Vec<String>,
}

/// Run the schedule `options.schedule` of `schedules`: a missing schedule is an error
/// before anything runs, and a schedule whose lock another run holds is left to that run.
/// Otherwise the run holds the schedule's lock; its cron monitor (if any) hears `start`,
/// then `fail` for anything that failed it (a runbook that is missing or does not load, a
/// state file or textfile that cannot be written, a critical or unknown end) or success.
/// The runbook runs with `ctx`'s machine and clock (manual steps become to-do items,
/// readings never stop it), recorded as `running` in the state file, then with its
/// outcome, in the textfile if asked, and in the audit log.
/// The problem key of a schedule that could not run at all (its runbook did not load, its
/// state could not be written): no step can be named so.
const NOT_RUN: &str = "(schedule)";

pub async fn run_schedule(
    schedules: &BTreeMap<String, Schedule>,
    options: RunOptions<'_>,
    mut ctx: Context,
) -> Result<Finished, Error> {
    let name = options.schedule;
    let ping = schedule(schedules, name)?.ping.clone();
    let state_dir = options.settings.state_dir();
    let _lock = crate::lock::Lock::acquire(
        &state_dir,
        &format!("maintain-{name}"),
        &format!("maintenance schedule {name:?}"),
    )
    .map_err(Error::Lock)?;
    let notify = options.notify;
    let rerun = options.rerun.clone();
    let mut warnings = Vec::new();
    if let Some(ping) = &ping {
        warnings.extend(crate::notify::ping::ping(ping, Phase::Start).await.err());
    }
    let ran = run_locked(schedules, options, &mut ctx).await;
    if let Some(ping) = &ping {
        // A warning is upkeep that ran and reported; only critical and unknown fail it.
        let phase = match &ran {
            Ok((report, _)) if !matches!(report.status(), Status::Critical | Status::Unknown) => {
                Phase::Success
            }
            _ => Phase::Fail,
        };
        let warning = crate::notify::ping::ping(ping, phase).await.err();
        match (&ran, warning) {
            (Ok(_), warning) => warnings.extend(warning),
            // The run's error is what the command says; the ping's is said beside it.
            (Err(_), Some(warning)) => tracing::warn!("{warning}"),
            (Err(_), None) => {}
        }
    }
    if let Some(config) = notify.filter(|c| c.is_configured()) {
        let scope = format!("maintain:{name}");
        let (problems, unseen) = match &ran {
            Ok((report, _)) => (
                crate::notify::Problem::from_report(report),
                crate::notify::Problem::unseen_in(report),
            ),
            // A schedule that could not run at all is a problem of its own; what it
            // found failing before is not known to be better.
            Err(e) => (
                vec![crate::notify::Problem {
                    key: NOT_RUN.to_string(),
                    what: format!("schedule {name}"),
                    severity: crate::notify::Severity::Critical,
                    detail: format!("could not run: {e}"),
                }],
                crate::notify::open_in(&state_dir, &scope),
            ),
        };
        let scope = crate::notify::Scope {
            name: &scope,
            rerun: &rerun,
            unseen: &unseen,
        };
        let now = ctx.clock.now();
        let told = crate::notify::settle(config, &state_dir, now, &scope, &problems).await;
        let said: Vec<String> = match told {
            Ok(told) => told.all_warnings().cloned().collect(),
            Err(e) => vec![format!("notifications not sent: {e}")],
        };
        match &ran {
            Ok(_) => warnings.extend(said),
            Err(_) => said.iter().for_each(|w| tracing::warn!("{w}")),
        }
    }
    let (report, took) = ran?;
    Ok(Finished {
        report,
        took,
        warnings,
    })
}

/// The part of a schedule's run its lock covers and its cron monitor times: the runbook
/// loaded and run, the state file, the textfile and the audit line.
async fn run_locked(
    schedules: &BTreeMap<String, Schedule>,
    options: RunOptions<'_>,
    ctx: &mut Context,
) -> Result<(Report, std::time::Duration), Error> {
    let name = options.schedule;
    let mut book = load_book(schedules, &options)?;
    // Upkeep is never gated by a reading: a full disk or a busy CPU is reported, and the
    // rotation, backup and prune run all the same.
    readings_never_stop(&mut book);
    let state_dir = options.settings.state_dir();
    ctx.config = Arc::new(options.settings);
    ctx.interaction = Interaction::Todo;
    let started = ctx.clock.now();
    let clock = std::time::Instant::now();
    let running = LastRun {
        started: Some(started.to_string()),
        outcome: Some("running".to_string()),
        ..LastRun::default()
    };
    record(&state_dir, name, running)?;
    tracing::info!(target: crate::logging::RESULTS, schedule = %name, runbook = %book.name, "maintenance started");
    let selection = crate::runbook::Selection::default();
    let mut observer = |result: &CheckResult| {
        tracing::info!(
            target: crate::logging::RESULTS,
            schedule = %name,
            step = %result.name,
            status = result.status.as_str(),
            message = %result.message,
            "step finished"
        );
    };
    let report = crate::runbook::run(&book, ctx, &selection, &mut observer).await;
    let took = clock.elapsed();
    let ended = started
        .checked_add(jiff::SignedDuration::try_from(took).unwrap_or_default())
        .unwrap_or(started);
    let status = report.status();
    let last = LastRun {
        started: Some(started.to_string()),
        ended: Some(ended.to_string()),
        outcome: Some(status.as_str().to_string()),
        duration_ms: Some(took.as_millis() as u64),
    };
    record(&state_dir, name, last)?;
    if let Some(path) = options.metrics {
        let text = crate::report::maintenance::textfile(name, &report, ended, took.as_secs_f64());
        // node_exporter runs as its own user: the textfile must be world-readable.
        crate::fsutil::write_atomically_mode(path, text.as_bytes(), 0o644)?;
    }
    crate::logging::audit::record(
        &format!("maintain.{name}"),
        status.as_str(),
        Some(&format!(
            "{} in {:.1}s",
            crate::plural::count(report.results.len(), "step", "steps"),
            took.as_secs_f64()
        )),
    );
    tracing::info!(target: crate::logging::RESULTS, schedule = %name, status = status.as_str(), "maintenance finished");
    Ok((report, took))
}

/// The schedule's runbook, found and loaded with the run's and the schedule's variables.
/// `maintain run NAME --dry-run`: the plan of the schedule's runbook with the schedule's
/// variables (what each action would do, the files a cleanup would remove), run nothing.
pub fn plan_schedule(
    schedules: &BTreeMap<String, Schedule>,
    options: &RunOptions<'_>,
) -> Result<String, Error> {
    let mut book = load_book(schedules, options)?;
    readings_never_stop(&mut book);
    Ok(crate::runbook::plan(
        &book,
        &crate::runbook::Selection::default(),
    ))
}

fn load_book(
    schedules: &BTreeMap<String, Schedule>,
    options: &RunOptions<'_>,
) -> Result<Runbook, Error> {
    let name = options.schedule;
    let schedule = schedule(schedules, name)?;
    let source = crate::runbook::find(&schedule.runbook, options.dirs).map_err(|problem| {
        Error::Runbook {
            schedule: name.to_string(),
            runbook: schedule.runbook.clone(),
            problem: Box::new(problem),
        }
    })?;
    let mut vars = options.vars.clone();
    vars.extend(
        schedule
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), Text::plain(v.clone()))),
    );
    crate::runbook::load(&source, &vars, options.dirs).map_err(Error::Load)
}

/// The schedule named `name`, or an error naming the ones there are.
fn schedule<'a>(
    schedules: &'a BTreeMap<String, Schedule>,
    name: &str,
) -> Result<&'a Schedule, Error> {
    schedules.get(name).ok_or_else(|| {
        let known: Vec<&str> = schedules.keys().map(String::as_str).collect();
        Error::UnknownSchedule {
            name: name.to_string(),
            known: known.join(", "),
            hint: crate::error::hint(name, &known),
        }
    })
}

/// In a maintenance run every reading reports and none stops the run, so the actions
/// after it (rotate, archive, backup, prune) run whatever it said. A `backup` step is a
/// reading only with `max_age`/`max_drill_age`; otherwise it is the backup itself.
pub fn readings_never_stop(book: &mut Runbook) {
    let mark = |step: &mut StepSpec| {
        if step.is_reading() {
            step.options.continue_on_failure = true;
        }
    };
    for item in &mut book.steps {
        match item {
            Item::Step(step) => mark(step),
            Item::Parallel { parallel } => parallel.iter_mut().for_each(mark),
        }
    }
}
