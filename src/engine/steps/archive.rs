//! `archive`: a log set's rotated files older than its `archive_after` into one verified
//! archive, originals deleted, through `logs::archive_set` as `opsbook logs archive SET`
//! does: an action step.

use crate::engine::{Check, Context};
use crate::model::{BoxFuture, Data, Outcome, Status};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSpec {
    /// A set of config `logs.sets` (with `archive_after`, or give `older_than`).
    #[serde(deserialize_with = "crate::values::text::templated")]
    pub set: String,
    #[serde(default)]
    pub older_than: Option<crate::values::Duration>,
}

pub struct ArchiveCheck {
    pub spec: ArchiveSpec,
}

impl Check for ArchiveCheck {
    fn kind(&self) -> &'static str {
        "archive"
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Outcome> {
        let spec = self.spec.clone();
        let config = ctx.config.clone();
        let now = ctx.clock.now();
        crate::model::blocking(move || {
            let name = &spec.set;
            let Some(set) = config.logs.sets.get(name) else {
                return crate::engine::unknown_set("logs.sets", name, config.logs.sets.keys());
            };
            let asked = spec.older_than.map(|d| d.0);
            let older_than = match crate::logs::archive_age(name, set, asked, "`older_than`") {
                Ok(age) => age,
                Err(e) => return Outcome::unknown(e.to_string()),
            };
            let state_dir = config.state_dir();
            let outcome =
                match crate::logs::archive_set(name, set, &state_dir, older_than, now, false) {
                    Ok(crate::logs::Archived::Done(outcome)) => outcome,
                    Ok(_) => {
                        let message = format!("log set {name}: nothing to archive");
                        return Outcome::new(Status::Ok, message, Data::None);
                    }
                    Err(e) => return super::rotate::failed(e),
                };
            match (&outcome.archive, outcome.errors.is_empty()) {
                (Some(archive), true) => Outcome::new(
                    Status::Ok,
                    format!(
                        "log set {name}: archived {} into {archive}",
                        crate::plural::count(outcome.files.len(), "file", "files")
                    ),
                    Data::None,
                ),
                _ => Outcome::new(Status::Critical, outcome.errors.join("; "), Data::None),
            }
        })
    }
}
