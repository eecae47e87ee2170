//! `restore`: restore a backup (or a hand-made archive) into a directory, as
//! `opsbook restore` does, every entry checked before anything is written: an action step.

use super::backup::critical;
use crate::engine::{Check, Context};
use crate::model::{BoxFuture, Data, Outcome, Status};
use crate::values::Text;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A restore step's settings: `archive`, or `id`/`set`, never both (checked as it is
/// parsed, so `runbook validate` finds it).
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct RestoreSpec(RestoreFields);

impl<'de> Deserialize<'de> for RestoreSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = RestoreFields::deserialize(deserializer)?;
        if fields.archive.is_some() && (fields.id.is_some() || fields.set.is_some()) {
            return Err(serde::de::Error::custom(
                "a restore step takes `archive` or `id`/`set`, not both",
            ));
        }
        Ok(RestoreSpec(fields))
    }
}

impl std::ops::Deref for RestoreSpec {
    type Target = RestoreFields;
    fn deref(&self) -> &RestoreFields {
        &self.0
    }
}

impl schemars::JsonSchema for RestoreSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RestoreSpec".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut schema = RestoreFields::json_schema(generator);
        schema.insert(
            "allOf".into(),
            serde_json::json!([
                { "not": { "required": ["archive", "id"] } },
                { "not": { "required": ["archive", "set"] } }
            ]),
        );
        schema
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreFields {
    /// A backup id, or `latest` (the default; with `set`, that set's newest).
    #[serde(default)]
    pub id: Option<Text>,
    /// With `latest`: the newest backup of this set.
    #[serde(default)]
    pub set: Option<Text>,
    /// A tar, tar.gz or tar.zst made by hand, instead of a backup.
    #[serde(default)]
    pub archive: Option<Text>,
    /// The directory to restore into (created if missing).
    pub to: Text,
    /// Restore only the paths matching these globs (`app/conf/**`).
    #[serde(default)]
    pub include: Vec<String>,
    /// Check everything and say what would be restored, write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Overwrite files that already exist in the target.
    #[serde(default)]
    pub force: bool,
    /// Restore everything as the caller, not as the owners stored.
    #[serde(default)]
    pub no_owner: bool,
}

pub struct RestoreCheck {
    pub spec: RestoreSpec,
}

impl Check for RestoreCheck {
    fn kind(&self) -> &'static str {
        "restore"
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Outcome> {
        let spec = self.spec.clone();
        let config = ctx.config.clone();
        crate::model::blocking(move || match restore(&spec, &config) {
            Ok(restored) => {
                let lines: Vec<&str> = restored.text.lines().collect();
                Outcome::new(Status::Ok, lines.join("; "), Data::None)
            }
            Err(e) => {
                let refused = match &e {
                    crate::backup::Error::Refused { entries, .. } => {
                        format!(": refused {}", entries.join("; "))
                    }
                    _ => String::new(),
                };
                let message = format!("{e}{refused}");
                match e.kind() {
                    crate::error::Kind::Usage => Outcome::unknown(message),
                    _ => critical(message),
                }
            }
        })
    }
}

fn restore(
    spec: &RestoreSpec,
    config: &crate::engine::Settings,
) -> Result<crate::backup::Restored, crate::backup::Error> {
    let asked = crate::backup::Asked {
        id: spec.id.as_ref().map(Text::as_str),
        set: spec.set.as_ref().map(Text::as_str),
        archive: spec.archive.as_ref().map(|a| Path::new(a.as_str())),
        to: PathBuf::from(spec.to.as_str()),
        include: &spec.include,
        include_what: "include",
        force: spec.force,
        dry_run: spec.dry_run,
        no_owner: spec.no_owner,
    };
    let state_dir = config.state_dir();
    crate::backup::restore_asked(&asked, &config.backup, &state_dir, || config.backup.store())
}
