//! `verify`: stream the newest backup of a set and compare every file with its manifest,
//! as `opsbook backup verify latest --set SET` does, recording the pass: an action step.

use super::backup::{critical, on_set};
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
        let clock = std::sync::Arc::clone(&ctx.clock);
        crate::model::blocking(move || {
            on_set(&config, &spec.set, "", |job, _| {
                let pick = latest_of(&spec.set);
                match crate::backup::verify(job, pick, clock.as_ref()) {
                    Ok(verified) => Outcome::new(Status::Ok, verified.summary(), Data::None),
                    Err(e) => critical(failure(&e, &spec.set, job.store)),
                }
            })
        })
    }
}

/// The newest backup of `set`.
pub fn latest_of(set: &str) -> crate::backup::Pick<'_> {
    crate::backup::Pick {
        wanted: "latest",
        set: Some(set),
    }
}

/// Why a verify or drill step failed: a set with no backup is said as such.
pub fn failure(e: &crate::backup::Error, set: &str, store: &crate::backup::store::Store) -> String {
    match e {
        crate::backup::Error::NoBackup { .. } => {
            format!("no backup of set {set} in {}", store.shown())
        }
        e => e.to_string(),
    }
}
