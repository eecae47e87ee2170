//! Latency thresholds shared by network probes: `latency: { warn: 500ms, crit: 1s }`.

use super::threshold::{Levels, Which, grade_by};
use crate::model::Status;
use crate::values::Duration;
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencyLevels {
    // A level left out is not shown (`runbook show` printed `warn: null`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warn: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crit: Option<Duration>,
}

impl<'de> Deserialize<'de> for LatencyLevels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            warn: Option<Duration>,
            crit: Option<Duration>,
        }
        let raw = Raw::deserialize(deserializer)?;
        if let (Some(warn), Some(crit)) = (raw.warn, raw.crit)
            && warn > crit
        {
            return Err(serde::de::Error::custom(format!(
                "latency warn {} is above crit {}: warn must not exceed crit",
                humantime::format_duration(warn.0),
                humantime::format_duration(crit.0)
            )));
        }
        Ok(LatencyLevels {
            warn: raw.warn,
            crit: raw.crit,
        })
    }
}

impl LatencyLevels {
    /// `(status, "latency 1.30 s > crit 1s")`; strict like every threshold.
    pub fn grade(&self, took: std::time::Duration) -> (Status, Option<String>) {
        let secs = |d: Option<Duration>| d.map(|d| d.0.as_secs_f64());
        let levels = Levels {
            warn: secs(self.warn),
            crit: secs(self.crit),
            below: false,
        };
        let (status, crossed) = grade_by(took.as_secs_f64(), levels);
        let described = crossed.map(|c| {
            let level = match c.which {
                Which::Warn => self.warn,
                Which::Crit => self.crit,
            };
            let level = humantime::format_duration(level.map(|l| l.0).unwrap_or_default());
            format!("latency {} {}", seconds(took), c.describe(level))
        });
        (status, described)
    }
}

/// `1.30 s` above a second, `35 ms` below.
pub fn seconds(d: std::time::Duration) -> String {
    if d.as_secs_f64() >= 1.0 {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as Std;

    #[test]
    fn grades_strictly_and_says_by_how_much() {
        let levels = LatencyLevels {
            warn: Some(Duration(Std::from_millis(500))),
            crit: Some(Duration(Std::from_secs(1))),
        };
        assert_eq!(levels.grade(Std::from_millis(500)).0, Status::Ok);
        assert_eq!(levels.grade(Std::from_millis(700)).0, Status::Warning);
        assert_eq!(
            levels.grade(Std::from_millis(1300)),
            (Status::Critical, Some("latency 1.30 s > crit 1s".into()))
        );
    }
}
