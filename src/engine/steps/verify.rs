//! `verify`: stream the newest backup of a set and compare every file with its manifest,
//! as `opsbook backup verify latest --set SET` does, recording the pass: an action step.

use crate::engine::{Check, Context};
use crate::model::{BoxFuture, Data, Outcome, Status};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifySpec {
    /// A set of config `backup.sets`.
    #[serde(deserialize_with = "crate::values::text::templated")]
    pub set: String,
}

pub struct VerifyCheck {
    pub spec: VerifySpec,
}

impl Check for VerifyCheck {
    fn kind(&self) -> &'static str {
        "verify"
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Outcome> {
        let spec = self.spec.clone();
        let config = ctx.config.clone();
        let now = ctx.clock.now();
        crate::model::blocking(move || {
            if !config.backup.sets.contains_key(&spec.set) {
                return crate::engine::unknown_set(
                    "backup.sets",
                    &spec.set,
                    config.backup.sets.keys(),
                );
            }
            let checked = config.backup.store().and_then(|store| {
                let backups = store.list()?;
                let Some(manifest) = crate::backup::find(&backups, "latest", Some(&spec.set))
                else {
                    return Err(format!(
                        "no backup of set {} in {}",
                        spec.set,
                        store.shown()
                    ));
                };
                let (dir, _fetched) = store.fetch(manifest)?;
                let problems = crate::backup::archive::verify(&dir, manifest);
                if !problems.is_empty() {
                    return Err(format!("{}: {}", manifest.id, problems.join("; ")));
                }
                crate::backup::state::record(
                    &config.state_dir(),
                    &spec.set,
                    &manifest.id,
                    now,
                    false,
                )?;
                Ok(format!(
                    "{}: verified, {} the manifest",
                    manifest.id,
                    crate::plural::count(manifest.files.len(), "file matches", "files match")
                ))
            });
            match checked {
                Ok(message) => Outcome::new(Status::Ok, message, Data::None),
                Err(e) => Outcome::new(Status::Critical, e, Data::None),
            }
        })
    }
}
