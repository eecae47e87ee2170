//! `disk`: the filesystem holding a path, used space against percent thresholds.

use super::threshold::{Levels, grade, note};
use super::{Env, Probe};
use crate::model::{BoxFuture, Data, Outcome, gb, percent};
use std::path::PathBuf;

/// `disk: { path: /, warn: 80%, crit: 90% }` in a runbook.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DiskSpec {
    pub path: crate::values::Text,
    pub threshold: crate::values::PercentLevels<80, 90>,
}

impl<'de> serde::Deserialize<'de> for DiskSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(default = "root")]
            path: crate::values::Text,
            warn: Option<crate::values::Percent>,
            crit: Option<crate::values::Percent>,
        }
        let raw = Raw::deserialize(deserializer)?;
        let threshold = crate::values::PercentLevels::from_parts(raw.warn, raw.crit)
            .map_err(serde::de::Error::custom)?;
        Ok(DiskSpec {
            path: raw.path,
            threshold,
        })
    }
}

fn root() -> crate::values::Text {
    crate::values::Text::plain("/")
}

pub struct DiskCheck {
    pub path: PathBuf,
    pub levels: Levels,
}

impl Probe for DiskCheck {
    fn kind(&self) -> &'static str {
        "disk"
    }

    fn run<'a>(&'a self, ctx: &'a Env) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let reading = match ctx.resources.disk(&self.path) {
                Ok(r) if r.total > 0 => r,
                Ok(r) => return Outcome::unknown(format!("{} reports a size of 0", r.mount)),
                Err(e) => return Outcome::unknown(e.to_string()),
            };
            let used = percent(reading.used(), reading.used() + reading.available);
            let (status, crossed) = grade(used, self.levels, "%");
            let message = format!(
                "{} {used}% used{}, {:.2} of {:.2} GB free",
                reading.mount,
                note(crossed),
                gb(reading.available),
                gb(reading.total),
            );
            let data = Data::Disk {
                path: self.path.display().to_string(),
                mount: reading.mount,
                percent_used: used,
                total_gb: gb(reading.total),
                free_gb: gb(reading.available),
            };
            Outcome::new(status, message, data)
        })
    }
}
