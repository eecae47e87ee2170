//! `cpu`: CPU busy time over a sample, against percent thresholds. A runbook samples over
//! at least a second: a shorter sample is one scheduler tick of a compile job, not a
//! machine's state.

use super::threshold::{Levels, grade, note};
use super::{Env, Probe};
use crate::model::{BoxFuture, Data, Outcome, round};
use std::time::Duration;

/// `cpu: { warn: 90, crit: 95, sample: 1s }` in a runbook.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CpuSpec {
    pub sample: crate::values::Duration,
    pub threshold: crate::values::PercentLevels<90, 95>,
}

impl<'de> serde::Deserialize<'de> for CpuSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(default = "default_sample")]
            sample: crate::values::Duration,
            warn: Option<crate::values::Percent>,
            crit: Option<crate::values::Percent>,
        }
        let raw = Raw::deserialize(deserializer)?;
        if raw.sample.0 < MIN_SAMPLE {
            return Err(serde::de::Error::custom(format!(
                "cpu `sample: {}` is too short: sample over at least 1s, or one busy moment reads as a busy machine",
                humantime::format_duration(raw.sample.0)
            )));
        }
        let threshold = crate::values::PercentLevels::from_parts(raw.warn, raw.crit)
            .map_err(serde::de::Error::custom)?;
        Ok(CpuSpec {
            sample: raw.sample,
            threshold,
        })
    }
}

/// The shortest (and the default) sample in a runbook.
pub const MIN_SAMPLE: Duration = Duration::from_secs(1);

fn default_sample() -> crate::values::Duration {
    crate::values::Duration(MIN_SAMPLE)
}

pub struct CpuCheck {
    pub levels: Levels,
    pub sample: Duration,
}

impl Probe for CpuCheck {
    fn kind(&self) -> &'static str {
        "cpu"
    }

    fn run<'a>(&'a self, ctx: &'a Env) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            // Sampling sleeps; keep it off the runtime so probes run meanwhile.
            let resources = ctx.resources.clone();
            let sample = self.sample;
            let reading = match tokio::task::spawn_blocking(move || resources.cpu(sample)).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return Outcome::unknown(e.to_string()),
                Err(e) => return Outcome::unknown(format!("cpu sampling failed: {e}")),
            };
            let used = round(reading.percent, 1);
            let (status, crossed) = grade(used, self.levels, "%");
            let message = format!(
                "cpu {used}% busy{} over {} ms, {} CPUs",
                note(crossed),
                sample.as_millis(),
                reading.count,
            );
            let data = Data::Cpu {
                percent_used: used,
                cpu_count: reading.count,
            };
            Outcome::new(status, message, data)
        })
    }
}
