//! Latency thresholds shared by network probes: `latency: { warn: 500ms, crit: 1s }`.

use super::Status;
use crate::config::Duration;
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencyLevels {
    pub warn: Option<Duration>,
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
    /// `(status, "latency 1.30 s > crit 1 s")`; strict like every threshold.
    pub fn grade(&self, took: std::time::Duration) -> (Status, Option<String>) {
        let shown = |d: std::time::Duration| humantime::format_duration(d).to_string();
        if let Some(crit) = self.crit
            && took > crit.0
        {
            return (
                Status::Critical,
                Some(format!(
                    "latency {} > crit {}",
                    seconds(took),
                    shown(crit.0)
                )),
            );
        }
        if let Some(warn) = self.warn
            && took > warn.0
        {
            return (
                Status::Warning,
                Some(format!(
                    "latency {} > warn {}",
                    seconds(took),
                    shown(warn.0)
                )),
            );
        }
        (Status::Ok, None)
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
