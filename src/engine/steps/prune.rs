//! `prune`: apply a backup set's retention and remove leftovers of interrupted runs, as
//! `opsbook backup prune SET` does, under the same lock: an action step.

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
            let Some(set) = config.backup.sets.get(&spec.set) else {
                return crate::engine::unknown_set(
                    "backup.sets",
                    &spec.set,
                    config.backup.sets.keys(),
                );
            };
            let _lock = match super::backup::lock(&config, &spec.set) {
                Ok(lock) => lock,
                Err(outcome) => return *outcome,
            };
            let records = crate::backup::state::load(&config.state_dir());
            let drilled = records.get(&spec.set).and_then(|r| r.drilled_id.as_deref());
            let pruned = config.backup.store().and_then(|store| {
                let listing = store.scan()?;
                let zone = jiff::tz::TimeZone::system();
                crate::backup::prune(&store, &spec.set, set, &listing, drilled, &zone, false)
            });
            match pruned {
                Ok(p) if p.errors.is_empty() => Outcome::new(
                    Status::Ok,
                    format!(
                        "backup set {}: kept {}, removed {}",
                        spec.set,
                        p.kept.len(),
                        p.removed.len()
                    ),
                    Data::None,
                ),
                Ok(p) => Outcome::new(Status::Critical, p.errors.join("; "), Data::None),
                Err(e) => Outcome::new(Status::Critical, e, Data::None),
            }
        })
    }
}
