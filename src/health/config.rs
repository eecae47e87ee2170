//! `health:` in the config: resource thresholds, the disks to check, the endpoints to
//! probe and how `health --serve` caches. Health owns its section; the root settings
//! struct only holds it.

use crate::engine::registry::StepSpec;
use crate::values::{Duration, Text, Threshold};
use serde::{Deserialize, Serialize};

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
pub struct Endpoints(pub Vec<StepSpec>);

/// Names the health report gives its own checks.
pub const BUILT_IN_CHECKS: [&str; 6] = ["application", "memory", "swap", "disk", "cpu", "load"];

impl<'de> Deserialize<'de> for Endpoints {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let endpoints = Vec::<StepSpec>::deserialize(deserializer)?;
        let mut seen = std::collections::HashSet::new();
        for endpoint in &endpoints {
            let name = endpoint.name.as_str();
            if BUILT_IN_CHECKS.contains(&name) || name.starts_with("disk:") {
                return Err(serde::de::Error::custom(format!(
                    "endpoint name {name:?} is a built-in check's name: choose another"
                )));
            }
            if !endpoint.kind.in_health() {
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
    type Target = [StepSpec];

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}
