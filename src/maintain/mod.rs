//! Scheduled maintenance (config `maintain:`): named schedules, each a runbook run under a
//! lock, with a state file of last runs, a Prometheus textfile, and the crontab lines or
//! systemd units that run them. A use case: it runs runbooks through the runbook runner
//! and takes everything from the command line as values.

mod emit;
mod run;
mod state;

pub use emit::{Invocation, command, crontab, shell_word, systemd, write_units};
pub use run::{Finished, RunOptions, plan_schedule, readings_never_stop, run_schedule};
pub use state::{LastRun, StatusRow, load_state, overdue, record, state_path, status};

use crate::error::{ConfigError, Kind};
use crate::values::Duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintainConfig {
    /// Added to (or replacing) the built-in daily, weekly, monthly and quarterly schedules.
    #[serde(deserialize_with = "crate::values::named_sets")]
    pub schedules: BTreeMap<String, Schedule>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// A runbook file, or a name in the runbook dirs or built in.
    pub runbook: String,
    /// How often it should run: later than this (plus an hour's grace) is overdue.
    #[serde(default)]
    pub every: Option<Duration>,
    /// When cron runs it (five fields).
    #[serde(default)]
    pub cron: Option<String>,
    /// When the systemd timer runs it (`OnCalendar=`).
    #[serde(default)]
    pub calendar: Option<String>,
    /// Runbook variables (`log_set`, `backup_set` for the shipped daily runbook).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// A cron monitor told when the schedule starts, succeeds and fails.
    #[serde(default)]
    pub ping: Option<crate::notify::ping::Ping>,
}

fn builtin(name: &str, days: u64, cron: &str, calendar: &str) -> Schedule {
    Schedule {
        runbook: name.to_string(),
        every: Some(Duration(std::time::Duration::from_secs(days * 86_400))),
        cron: Some(cron.to_string()),
        calendar: Some(calendar.to_string()),
        vars: BTreeMap::new(),
        ping: None,
    }
}

impl MaintainConfig {
    /// The built-in schedules (the shipped daily, weekly, monthly and quarterly runbooks, run at
    /// quiet hours), overridden and extended by config.
    pub fn schedules(&self) -> BTreeMap<String, Schedule> {
        let mut all = BTreeMap::from([
            (
                "daily".to_string(),
                builtin("daily", 1, "15 2 * * *", "*-*-* 02:15:00"),
            ),
            (
                "weekly".to_string(),
                builtin("weekly", 7, "30 3 * * 0", "Sun *-*-* 03:30:00"),
            ),
            (
                "monthly".to_string(),
                builtin("monthly", 31, "45 4 1 * *", "*-*-01 04:45:00"),
            ),
            (
                "quarterly".to_string(),
                builtin(
                    "quarterly",
                    92,
                    "0 5 1 1,4,7,10 *",
                    "*-01,04,07,10-01 05:00:00",
                ),
            ),
        ]);
        for (name, schedule) in &self.schedules {
            let mut schedule = schedule.clone();
            if let Some(default) = all.get(name) {
                schedule.every = schedule.every.or(default.every);
                schedule.cron = schedule.cron.or_else(|| default.cron.clone());
                schedule.calendar = schedule.calendar.or_else(|| default.calendar.clone());
            }
            all.insert(name.clone(), schedule);
        }
        all
    }
}

/// What can go wrong in maintenance. The messages are the ones the command prints; the
/// ones about `maintain.schedules` are configuration errors (exit 78).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no maintenance schedule {name:?} (known: {known}){hint}")]
    UnknownSchedule {
        name: String,
        /// The schedules there are, comma separated.
        known: String,
        /// `; did you mean "daily"?`, or empty.
        hint: String,
    },
    /// The schedule's runbook is not found (or not readable).
    #[error("maintain.schedules.{schedule}: runbook {runbook:?}: {problem}")]
    Runbook {
        schedule: String,
        runbook: String,
        problem: Box<ConfigError>,
    },
    #[error("schedule {name:?} has no `cron` time: add one under maintain.schedules.{name}")]
    NoCron { name: String },
    #[error("maintain.schedules.{name}.cron: {cron:?} is not five fields")]
    CronFields { name: String, cron: String },
    #[error("schedule {name:?} has no `calendar` time: add one under maintain.schedules.{name}")]
    NoCalendar { name: String },
    /// The runbook is invalid: the error names its file, line and field.
    #[error(transparent)]
    Load(crate::error::Error),
    /// The schedule's lock is held by another run (or cannot be taken); the whole chain
    /// of causes is in the message.
    #[error("{0:#}")]
    Lock(anyhow::Error),
    /// The state file, the metrics textfile or a unit file (or its directory) could not
    /// be written; the message names the file.
    #[error(transparent)]
    Write(#[from] crate::fsutil::Error),
    /// The state file's lock could not be taken.
    #[error(transparent)]
    StateLock(#[from] crate::lock::Error),
}

impl Error {
    /// Whether this is about a setting under `maintain.schedules` (the caller names the
    /// config file in use), rather than about a file of its own or the machine.
    pub fn is_setting(&self) -> bool {
        matches!(
            self,
            Error::UnknownSchedule { .. }
                | Error::Runbook { .. }
                | Error::NoCron { .. }
                | Error::CronFields { .. }
                | Error::NoCalendar { .. }
        )
    }

    pub fn kind(&self) -> Kind {
        match self {
            _ if self.is_setting() => Kind::Config,
            Error::Load(e) => e.kind(),
            Error::Lock(e) => crate::error::kind_in(e.as_ref()),
            Error::Write(e) => crate::error::kind_in(e),
            Error::StateLock(e) => crate::error::kind_in(e),
            _ => Kind::Failure,
        }
    }
}

#[cfg(test)]
mod error_tests {
    use super::{Error, Kind};

    #[test]
    fn file_and_lock_failures_keep_their_type_their_words_and_their_exit_code() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let link = dir.path().join("maintain.json");
        std::os::unix::fs::symlink("/etc/passwd", &link).expect("a link");
        let refused = crate::fsutil::write_state(&link, b"{}").expect_err("through a link");
        let shown = refused.to_string();
        let e = Error::from(refused);
        assert!(matches!(e, Error::Write(_)), "{e:?}");
        assert_eq!(e.to_string(), shown, "the file error's words");
        assert_eq!(e.kind(), Kind::Failure);
        let lock = crate::lock::Error::Lock {
            path: dir.path().join("maintain.json.lock"),
            error: std::io::Error::from_raw_os_error(libc::ENOLCK),
        };
        let shown = lock.to_string();
        let e = Error::from(lock);
        assert_eq!(e.to_string(), shown);
        assert_eq!(e.kind(), Kind::Failure);
        // A held lock, however deep in the causes, stays busy (exit 75).
        let held = anyhow::Error::from(crate::error::Error::LockHeld {
            what: "schedule \"daily\"".into(),
            holder: "pid 1".into(),
        })
        .context("cannot start the schedule");
        assert_eq!(Error::Lock(held).kind(), Kind::Busy);
    }
}
