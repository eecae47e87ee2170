//! `prune`: apply a backup set's retention and remove leftovers of interrupted runs, as
//! `opsbook backup prune SET` does, under the same lock: an action step.

use super::backup::{critical, on_set};
use crate::engine::{Check, Context};
use crate::model::{BoxFuture, Data, Outcome, Status};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PruneSpec {
    /// A set of config `backup.sets`.
    #[serde(deserialize_with = "crate::values::text::templated")]
    pub set: String,
}

pub struct PruneCheck {
    pub spec: PruneSpec,
}

impl Check for PruneCheck {
    fn kind(&self) -> &'static str {
        "prune"
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Outcome> {
        let spec = self.spec.clone();
        let config = ctx.config.clone();
        crate::model::blocking(move || {
            on_set(&config, &spec.set, "", |job, set| {
                let zone = jiff::tz::TimeZone::system();
                match crate::backup::prune_set(job, &spec.set, set, &zone, false) {
                    Ok(p) if p.errors.is_empty() => {
                        let mut message = format!(
                            "backup set {}: kept {}, removed {}",
                            spec.set,
                            p.kept.len(),
                            p.removed.len()
                        );
                        for line in &p.scratch {
                            message.push_str(&format!("; {line}"));
                        }
                        Outcome::new(Status::Ok, message, Data::None)
                    }
                    Ok(p) => critical(p.errors.join("; ")),
                    Err(e) => critical(e.to_string()),
                }
            })
        })
    }
}
