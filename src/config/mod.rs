//! The configuration: built-in defaults < `config/<env>.yaml` < `--config FILE` <
//! environment variables < flags. Every section is optional; unknown keys are errors.

mod load;
pub mod text;
mod values;

pub use load::{LoadOptions, Loaded, Unresolved, errors_in, load, parse_yaml, unresolved_in};
pub use text::{Text, substitute};
pub use values::{
    ByteSize, Duration, Level, Percent, Threshold, is_set_name, named_sets, parse_bool,
};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The environments the seeds describe, each with a shipped `config/<env>.yaml`.
pub const ENVIRONMENTS: [&str; 3] = ["development", "staging", "production"];

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Locks, rotation and schedule state, verification records.
    pub state_dir: Option<Text>,
    pub logging: LoggingConfig,
    pub health: HealthConfig,
    pub runbooks: RunbooksConfig,
    pub logs: LogsConfig,
    pub backup: crate::backup::BackupConfig,
    pub incident: crate::incident::IncidentConfig,
    pub maintain: crate::maintain::MaintainConfig,
}

/// Named log sets: their files and policies.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    #[serde(deserialize_with = "named_sets")]
    pub sets: std::collections::BTreeMap<String, crate::logs::set::LogSet>,
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

/// The tool's own logs (seed 000): application.log, errors.log, audit.log.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// `LOG_LEVEL`: the least severe level written.
    pub level: Level,
    /// `LOG_DIR`: where the log files go when `to_file` is on.
    pub dir: Text,
    /// `LOG_TO_FILE`.
    pub to_file: bool,
    /// `LOG_TO_CONSOLE`: diagnostics on stderr.
    pub to_console: bool,
    /// Rotate a log file once it reaches this many bytes (seed 000: 10 MB).
    pub max_bytes: u64,
    /// Rotated files kept (seed 000: 5).
    pub keep: u32,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: Level::Warning,
            dir: Text::plain("logs"),
            to_file: false,
            to_console: true,
            max_bytes: 10 * 1024 * 1024,
            keep: 5,
        }
    }
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
pub struct Endpoints(pub Vec<crate::check::StepSpec>);

/// Names the health report gives its own checks.
pub const BUILT_IN_CHECKS: [&str; 6] = ["application", "memory", "swap", "disk", "cpu", "load"];

impl<'de> Deserialize<'de> for Endpoints {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let endpoints = Vec::<crate::check::StepSpec>::deserialize(deserializer)?;
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
                    crate::check::spec::KindSpec::Include(_)
                        | crate::check::spec::KindSpec::Manual(_)
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
    type Target = [crate::check::StepSpec];

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}
