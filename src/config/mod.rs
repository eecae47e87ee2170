//! The configuration: built-in defaults < `config/<env>.yaml` < `--config FILE` <
//! environment variables < flags. Every section is optional; unknown keys are errors.

mod load;

pub use crate::values::parse_yaml;
pub use load::{LoadOptions, Loaded, Unresolved, errors_in, load, unresolved_in};

use crate::values::{Duration, Text, Threshold};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The environments the seeds describe, each with a shipped `config/<env>.yaml`.
pub const ENVIRONMENTS: [&str; 3] = ["development", "staging", "production"];

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Locks, rotation and schedule state, verification records.
    pub state_dir: Option<Text>,
    pub logging: crate::logging::LoggingConfig,
    pub health: HealthConfig,
    pub runbooks: RunbooksConfig,
    pub logs: crate::logs::LogsConfig,
    pub backup: crate::backup::BackupConfig,
    pub incident: crate::incident::IncidentConfig,
    pub maintain: crate::maintain::MaintainConfig,
}

/// Where `opsbook run NAME` looks for `NAME.yaml` before the built-in runbooks.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunbooksConfig {
    pub dirs: Vec<Text>,
}

impl Default for RunbooksConfig {
    fn default() -> Self {
        RunbooksConfig {
            dirs: vec![Text::plain("runbooks")],
        }
    }
}

impl Config {
    /// The narrow view action steps get: state dir, log sets, backup sets.
    pub fn step_settings(&self) -> crate::engine::Settings {
        crate::engine::Settings {
            state_dir: self.state_dir(),
            logs: self.logs.clone(),
            backup: self.backup.clone(),
            runbook: crate::backup::RunbookRunner::default(),
        }
    }

    /// `/var/lib/opsbook` as root, else `$XDG_STATE_HOME/opsbook` (or `~/.local/state/opsbook`).
    pub fn state_dir(&self) -> PathBuf {
        if let Some(dir) = &self.state_dir {
            return PathBuf::from(dir.as_str());
        }
        if is_root() {
            return PathBuf::from("/var/lib/opsbook");
        }
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("opsbook")
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    pub thresholds: Thresholds,
    /// Paths whose filesystems are checked; the first is `checks.disk`, the rest `disk:<path>`.
    pub disks: Vec<Text>,
    /// How long CPU usage is sampled.
    pub cpu_sample: Duration,
    /// Services to probe, each a runbook step (`http`, `tcp`), all run concurrently.
    pub endpoints: Endpoints,
    /// How many endpoint probes run at once (`--concurrency`).
    pub concurrency: usize,
    /// How long `health --serve` reuses a result before running the checks again.
    pub serve_cache: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            thresholds: Thresholds::default(),
            disks: vec![Text::plain("/")],
            cpu_sample: Duration(std::time::Duration::from_millis(250)),
            endpoints: Endpoints::default(),
            concurrency: 64,
            serve_cache: Duration(std::time::Duration::from_secs(5)),
        }
    }
}

/// Resource thresholds in percent (seed 000's defaults).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    pub memory: Threshold<75, 90>,
    pub disk: Threshold<80, 90>,
    pub cpu: Threshold<90, 95>,
    /// Swap is reported but never graded unless levels are set here.
    pub swap: Threshold<100, 100>,
}

/// `health.endpoints`: probes with names unique among themselves and the built-in checks,
/// since names key the JSON report.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(transparent)]
pub struct Endpoints(pub Vec<crate::engine::registry::StepSpec>);

/// Names the health report gives its own checks.
pub const BUILT_IN_CHECKS: [&str; 6] = ["application", "memory", "swap", "disk", "cpu", "load"];

impl<'de> Deserialize<'de> for Endpoints {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let endpoints = Vec::<crate::engine::registry::StepSpec>::deserialize(deserializer)?;
        let mut seen = std::collections::HashSet::new();
        for endpoint in &endpoints {
            let name = endpoint.name.as_str();
            if BUILT_IN_CHECKS.contains(&name) || name.starts_with("disk:") {
                return Err(serde::de::Error::custom(format!(
                    "endpoint name {name:?} is a built-in check's name: choose another"
                )));
            }
            if endpoint.kind.is_action()
                || matches!(
                    endpoint.kind,
                    crate::engine::registry::KindSpec::Include(_)
                        | crate::engine::registry::KindSpec::Manual(_)
                )
            {
                return Err(serde::de::Error::custom(format!(
                    "endpoint {name:?}: `{}` steps belong in runbooks, not in health.endpoints",
                    endpoint.kind_name()
                )));
            }
            if !seen.insert(name) {
                return Err(serde::de::Error::custom(format!(
                    "endpoint name {name:?} is used twice: names must be unique"
                )));
            }
        }
        Ok(Endpoints(endpoints))
    }
}

impl std::ops::Deref for Endpoints {
    type Target = [crate::engine::registry::StepSpec];

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}
