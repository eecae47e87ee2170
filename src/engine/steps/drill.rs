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
                match crate::backup::drill(job, latest_of(&spec.set), clock.as_ref(), runbook) {
                    Ok(done) => {
                        let drilled = done.drilled.as_deref().unwrap_or_default();
                        let message = format!("{}; restore test passed: {drilled}", done.summary());
                        Outcome::new(Status::Ok, message, Data::None)
                    }
                    Err(e) => critical(failure(&e, &spec.set, job.store)),
                }
            })
        })
    }
}
