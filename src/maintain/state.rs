//! The state file of last runs (`STATE_DIR/maintain.json`) and what `maintain status`
//! reads from it: each schedule's last run and whether it is overdue.

use super::{Error, Schedule};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The last run of each schedule (`STATE_DIR/maintain.json`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct LastRun {
    pub started: Option<String>,
    pub ended: Option<String>,
    /// ok, warning, critical, unknown; `running` while it runs (or if it was killed).
    pub outcome: Option<String>,
    pub duration_ms: Option<u64>,
}

pub fn state_path(state_dir: &Path) -> PathBuf {
    state_dir.join("maintain.json")
}

pub fn load_state(state_dir: &Path) -> BTreeMap<String, LastRun> {
    crate::fsutil::read_state(&state_path(state_dir))
        .ok()
        .flatten()
        .and_then(|t| serde_json::from_slice(&t).ok())
        .unwrap_or_default()
}

/// Record `run` for `schedule` (temporary file, fsync, rename). Two schedules may finish
/// at once in two processes, so the file is re-read and rewritten under its own lock.
pub fn record(state_dir: &Path, schedule: &str, run: LastRun) -> Result<(), Error> {
    let _turn = crate::lock::Lock::wait(&state_dir.join("maintain.json.lock"))?;
    let mut state = load_state(state_dir);
    state.insert(schedule.to_string(), run);
    let text = serde_json::to_string_pretty(&state).unwrap_or_default();
    Ok(crate::fsutil::write_state(
        &state_path(state_dir),
        text.as_bytes(),
    )?)
}

/// Whether a schedule is overdue at `now`: never run, or last started longer ago than
/// `every` plus an hour's grace.
pub fn overdue(schedule: &Schedule, last: Option<&LastRun>, now: jiff::Timestamp) -> bool {
    let Some(every) = schedule.every else {
        return false;
    };
    let Some(started) = last
        .and_then(|l| l.started.as_deref())
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
    else {
        return true;
    };
    let grace = 3600;
    now.as_second() - started.as_second() > every.0.as_secs() as i64 + grace
}

/// One schedule as `maintain status` shows it (the JSON keys, in this order).
#[derive(Clone, Debug, Serialize)]
pub struct StatusRow {
    pub schedule: String,
    pub runbook: String,
    /// `every`, as `1day`, `7days`, `1h`.
    pub every: Option<String>,
    pub last_start: Option<String>,
    pub last_end: Option<String>,
    pub outcome: Option<String>,
    pub overdue: bool,
}

/// Every schedule's last run (from the state file under `state_dir`) and whether it is
/// overdue at `now`, in name order.
pub fn status(
    schedules: &BTreeMap<String, Schedule>,
    state_dir: &Path,
    now: jiff::Timestamp,
) -> Vec<StatusRow> {
    let state = load_state(state_dir);
    schedules
        .iter()
        .map(|(name, schedule)| {
            let last = state.get(name);
            StatusRow {
                schedule: name.clone(),
                runbook: schedule.runbook.clone(),
                every: schedule
                    .every
                    .map(|e| humantime::format_duration(e.0).to_string()),
                last_start: last.and_then(|l| l.started.clone()),
                last_end: last.and_then(|l| l.ended.clone()),
                outcome: last.and_then(|l| l.outcome.clone()),
                overdue: overdue(schedule, last, now),
            }
        })
        .collect()
}
