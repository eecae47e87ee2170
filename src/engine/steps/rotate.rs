//! `rotate`: rotate a log set (config `logs.sets`) as `opsbook logs rotate SET` does, under
//! the same lock: an action step, for maintenance runbooks.

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
            let state_dir = config.state_dir();
            let _lock = match lock(&config, &spec.set) {
                Ok(lock) => lock,
                Err(outcome) => return *outcome,
            };
            let outcome = crate::logs::rotate::Rotation {
                name: &spec.set,
                set,
                state_dir: &state_dir,
                now,
                dry_run: false,
                force: spec.force,
            }
            .run();
            if outcome.errors.is_empty() {
                let files = if outcome.rotated == 1 {
                    "file"
                } else {
                    "files"
                };
                Outcome::new(
                    Status::Ok,
                    format!("log set {}: rotated {} {files}", spec.set, outcome.rotated),
                    Data::None,
                )
            } else {
                Outcome::new(Status::Critical, outcome.errors.join("; "), Data::None)
            }
        })
    }
}

/// A log set's lock, as `logs rotate` and `logs archive` take it; held elsewhere → a
/// critical outcome naming the holder.
pub fn lock(
    config: &crate::engine::Settings,
    set: &str,
) -> Result<crate::lock::Lock, Box<Outcome>> {
    crate::lock::Lock::log_set(&config.state_dir(), set)
        .map_err(|e| Box::new(Outcome::new(Status::Critical, format!("{e:#}"), Data::None)))
}
