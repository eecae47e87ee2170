//! `drill`: verify the newest backup of a set and run its restore drill, as
//! `opsbook backup verify latest --set SET --restore-test` does, recording the pass: an
//! action step.

use super::backup::{critical, on_set};
use super::verify::{failure, latest_of};
use crate::engine::{Check, Context};
use crate::model::{BoxFuture, Data, Outcome, Status};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillSpec {
    /// A set of config `backup.sets`.
    #[serde(deserialize_with = "crate::values::text::templated")]
    pub set: String,
    /// The recovery time objective: a drill that takes longer is critical (the restore
    /// it rehearses would miss it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<crate::values::Duration>,
}

pub struct DrillCheck {
    pub spec: DrillSpec,
}

impl Check for DrillCheck {
    fn kind(&self) -> &'static str {
        "drill"
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Outcome> {
        let spec = self.spec.clone();
        let config = ctx.config.clone();
        let clock = std::sync::Arc::clone(&ctx.clock);
        crate::model::blocking(move || {
            on_set(&config, &spec.set, "", |job, _| {
                let runbook = config.runbook.check();
                let started = std::time::Instant::now();
                match crate::backup::drill(job, latest_of(&spec.set), clock.as_ref(), runbook) {
                    Ok(done) => {
                        let drilled = done.drilled.as_deref().unwrap_or_default();
                        let message = format!("{}; restore test passed: {drilled}", done.summary());
                        within_rto(message, started.elapsed(), spec.rto)
                    }
                    Err(e) => critical(failure(&e, &spec.set, job.store)),
                }
            })
        })
    }
}

/// A passed drill graded against the recovery time objective: over it is critical.
fn within_rto(
    message: String,
    took: std::time::Duration,
    rto: Option<crate::values::Duration>,
) -> Outcome {
    let shown = |d: std::time::Duration| {
        humantime::format_duration(std::time::Duration::from_millis(d.as_millis() as u64))
    };
    match rto {
        Some(rto) if took > rto.0 => Outcome::new(
            Status::Critical,
            format!(
                "{message}; the drill took {}, over the recovery time objective of {}",
                shown(took),
                humantime::format_duration(rto.0)
            ),
            Data::None,
        ),
        Some(rto) => Outcome::new(
            Status::Ok,
            format!(
                "{message}; took {}, within the RTO of {}",
                shown(took),
                humantime::format_duration(rto.0)
            ),
            Data::None,
        ),
        None => Outcome::new(Status::Ok, message, Data::None),
    }
}
