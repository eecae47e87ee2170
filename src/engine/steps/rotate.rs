//! `rotate`: rotate a log set (config `logs.sets`) through `logs::rotate_set`, as
//! `opsbook logs rotate SET` does: an action step, for maintenance runbooks.

use crate::engine::{Check, Context};
use crate::model::{BoxFuture, Data, Outcome, Status};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSpec {
    /// A set of config `logs.sets`.
    #[serde(deserialize_with = "crate::values::text::templated")]
    pub set: String,
    /// Rotate whether due or not.
    #[serde(default)]
    pub force: bool,
}

pub struct RotateCheck {
    pub spec: RotateSpec,
}

impl Check for RotateCheck {
    fn kind(&self) -> &'static str {
        "rotate"
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Outcome> {
        let spec = self.spec.clone();
        let config = ctx.config.clone();
        let now = ctx.clock.now();
        crate::model::blocking(move || {
            let Some(set) = config.logs.sets.get(&spec.set) else {
                return crate::engine::unknown_set("logs.sets", &spec.set, config.logs.sets.keys());
            };
            let options = crate::logs::RotateOptions {
                dry_run: false,
                force: spec.force,
            };
            let outcome =
                match crate::logs::rotate_set(&spec.set, set, &config.state_dir(), now, options) {
                    Ok(outcome) => outcome,
                    Err(e) => return failed(e),
                };
            if outcome.errors.is_empty() {
                let rotated = crate::plural::count(outcome.rotated, "file", "files");
                let message = format!("log set {}: rotated {rotated}", spec.set);
                Outcome::new(Status::Ok, message, Data::None)
            } else {
                Outcome::new(Status::Critical, outcome.errors.join("; "), Data::None)
            }
        })
    }
}

/// A log set action that could not run (its lock held elsewhere: the message names the
/// holder): a critical outcome.
pub fn failed(e: crate::logs::Error) -> Outcome {
    let message = format!("{:#}", anyhow::Error::from(e));
    Outcome::new(Status::Critical, message, Data::None)
}
