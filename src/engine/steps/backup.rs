//! `backup`: with `max_age`, a check: the newest backup of a set is no older than that,
//! and (with `max_drill_age`) its last passed restore test no older than that — so
//! `health` catches a backup job, or a drill, that silently stopped. Without, an action:
//! back the set up, as `opsbook backup create SET` does, under the same lock.

use crate::engine::{Check, Context};
use crate::model::{BoxFuture, Data, Outcome, Status};
use crate::values::Duration;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupSpec {
    /// A set of config `backup.sets`.
    #[serde(deserialize_with = "crate::values::text::templated")]
    pub set: String,
    /// The newest backup may be at most this old (`26h` for a daily job). Without it
    /// (and without `max_drill_age`) the step makes a backup instead.
    #[serde(default)]
    pub max_age: Option<Duration>,
    /// The last passed `backup verify --restore-test` may be at most this old.
    #[serde(default)]
    pub max_drill_age: Option<Duration>,
}

pub struct BackupCheck {
    pub spec: BackupSpec,
}

impl Check for BackupCheck {
    fn kind(&self) -> &'static str {
        "backup"
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Outcome> {
        let spec = self.spec.clone();
        let config = ctx.config.clone();
        let now = ctx.clock.now();
        if spec.max_age.is_none() && spec.max_drill_age.is_none() {
            return crate::model::blocking(move || create(&spec.set, &config, now));
        }
        crate::model::blocking(move || inspect(&spec, &config, now))
    }
}

fn inspect(spec: &BackupSpec, config: &crate::engine::Settings, now: jiff::Timestamp) -> Outcome {
    let set = &spec.set;
    let store = match config.backup.store() {
        Ok(store) => store,
        Err(e) => return Outcome::unknown(e.to_string()),
    };
    if !config.backup.sets.contains_key(set) {
        return crate::engine::unknown_set("backup.sets", set, config.backup.sets.keys());
    }
    let age_of = |when: &str| -> Option<u64> {
        let at: jiff::Timestamp = when.parse().ok()?;
        Some(now.as_second().saturating_sub(at.as_second()).max(0) as u64)
    };
    let backups = match store.list() {
        Ok(backups) => backups,
        Err(e) => return Outcome::unknown(e.to_string()),
    };
    let newest = backups.into_iter().rev().find(|m| &m.set == set);
    let records = crate::backup::state::load(&config.state_dir());
    let drilled_at = records.get(set).and_then(|r| r.drilled_at.clone());
    let drill_age = drilled_at.as_deref().and_then(age_of);
    let data = |age: Option<u64>| Data::Backup {
        set: set.clone(),
        newest_age_seconds: age,
        drill_age_seconds: drill_age,
    };
    let shown = |secs: u64| humantime::format_duration(std::time::Duration::from_secs(secs));
    let Some(newest) = newest else {
        return Outcome::new(
            Status::Critical,
            format!("no backup of set {set} in {}", store.shown()),
            data(None),
        );
    };
    let Some(age) = age_of(&newest.created) else {
        return Outcome::unknown(format!("{}: unreadable creation time", newest.id));
    };
    if let Some(max_age) = spec.max_age
        && age > max_age.0.as_secs()
    {
        return Outcome::new(
            Status::Critical,
            format!(
                "the newest backup of {set} ({}) is {} old, more than {}",
                newest.id,
                shown(age),
                humantime::format_duration(max_age.0)
            ),
            data(Some(age)),
        );
    }
    let mut message = format!("newest backup of {set} is {} old", shown(age));
    if let Some(max) = spec.max_drill_age {
        match drill_age {
            None => {
                return Outcome::new(
                    Status::Critical,
                    format!("{message}, but it has never passed a restore test"),
                    data(Some(age)),
                );
            }
            Some(drill) if drill > max.0.as_secs() => {
                return Outcome::new(
                    Status::Critical,
                    format!(
                        "{message}, but the last passed restore test is {} old, more than {}",
                        shown(drill),
                        humantime::format_duration(max.0)
                    ),
                    data(Some(age)),
                );
            }
            Some(drill) => {
                message.push_str(&format!("; last restore test {} ago", shown(drill)));
            }
        }
    }
    Outcome::new(Status::Ok, message, data(Some(age)))
}

/// Run `act` on a step's backup set with the job it works in (the set's store, the state
/// directory), or say why it cannot: an unknown set, or a destination that cannot be used
/// (that message after `prefix`).
pub fn on_set(
    config: &crate::engine::Settings,
    set: &str,
    prefix: &str,
    act: impl FnOnce(&crate::backup::Job, &crate::backup::BackupSet) -> Outcome,
) -> Outcome {
    let Some(spec) = config.backup.sets.get(set) else {
        let known = config.backup.sets.keys();
        return crate::engine::unknown_set("backup.sets", set, known);
    };
    let store = match config.backup.store() {
        Ok(store) => store,
        Err(e) => return critical(format!("{prefix}{e}")),
    };
    let state_dir = config.state_dir();
    act(
        &crate::backup::Job::new(&config.backup, &store, &state_dir),
        spec,
    )
}

/// A critical outcome saying `message`.
pub fn critical(message: String) -> Outcome {
    Outcome::new(Status::Critical, message, Data::None)
}

/// The action: one backup of `set`, under its lock.
fn create(set: &str, config: &crate::engine::Settings, now: jiff::Timestamp) -> Outcome {
    let prefix = format!("backup set {set}: ");
    on_set(
        config,
        set,
        &prefix,
        |job, spec| match crate::backup::create_set(job, set, spec, now, &|_| {}) {
            Ok(made) if made.warnings.is_empty() => {
                Outcome::new(Status::Ok, format!("created {}", made.what), Data::None)
            }
            Ok(made) => Outcome::new(
                Status::Warning,
                format!("created {}; {}", made.what, made.warnings.join("; ")),
                Data::None,
            ),
            Err(e @ crate::backup::Error::Lock(_)) => critical(e.to_string()),
            Err(e) => critical(format!("{prefix}{e}")),
        },
    )
}
