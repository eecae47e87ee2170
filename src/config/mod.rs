//! The configuration: built-in defaults < `config/<env>.yaml` < `--config FILE` <
//! environment variables < flags. Every section is optional; unknown keys are errors.

mod booleans;
mod load;
mod validate;

pub use crate::values::parse_yaml;
pub use load::{LoadOptions, Loaded, Unresolved, errors_in, load, unresolved_in};
pub use validate::{FileCheck, check_file};

use crate::values::Text;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The environments the seeds describe, each with a shipped `config/<env>.yaml`.
pub const ENVIRONMENTS: [&str; 3] = ["development", "staging", "production"];

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Locks, rotation and schedule state, verification records.
    pub state_dir: Option<Text>,
    pub logging: crate::logging::LoggingConfig,
    pub health: crate::health::HealthConfig,
    pub runbooks: RunbooksConfig,
    pub logs: crate::logs::LogsConfig,
    pub backup: crate::backup::BackupConfig,
    pub incident: crate::incident::IncidentConfig,
    pub maintain: crate::maintain::MaintainConfig,
    pub notify: crate::notify::NotifyConfig,
}

/// Where `opsbook run NAME` looks for `NAME.yaml` before the built-in runbooks, and the
/// variables every runbook run gets (a runbook's own `vars` < these < a schedule's `vars`
/// < `--var`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunbooksConfig {
    pub dirs: Vec<Text>,
    pub vars: BTreeMap<VarName, Text>,
}

impl Default for RunbooksConfig {
    fn default() -> Self {
        RunbooksConfig {
            dirs: vec![Text::plain("runbooks")],
            vars: BTreeMap::new(),
        }
    }
}

/// A runbook variable's name as `{{ name }}` can use it: letters, digits and `_`, not
/// starting with a digit. Checked while parsing, so a bad one is placed at its line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct VarName(String);

impl VarName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for VarName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            Ok(VarName(name))
        } else {
            Err(serde::de::Error::custom(format!(
                "runbook variable name {name:?} cannot be used as `{{{{ name }}}}`: \
                 use letters, digits and `_`, not starting with a digit"
            )))
        }
    }
}

impl LoadOptions {
    /// The environment and `--config` asked for; the config dir is `$OPSBOOK_CONFIG_DIR`,
    /// else `./config`.
    pub fn new(env: Option<String>, file: Option<PathBuf>) -> Self {
        LoadOptions {
            env,
            file,
            config_dir: std::env::var_os("OPSBOOK_CONFIG_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("config")),
        }
    }
}

/// An environment asked for by name whose `<env>.yaml` is missing runs on other
/// settings: the warning that says so (under cron that is silent unless said).
pub fn missing_env_warning(options: &LoadOptions, loaded: &Loaded) -> Option<String> {
    let env_file = options.config_dir.join(format!("{}.yaml", loaded.env));
    if options.env.is_none() || loaded.sources.contains(&env_file) {
        return None;
    }
    Some(format!(
        "environment {:?} was asked for, but {} was not found: using {} only",
        loaded.env,
        env_file.display(),
        if loaded.sources.is_empty() {
            "the built-in defaults"
        } else {
            "the built-in defaults and --config"
        }
    ))
}

impl RunbooksConfig {
    /// The variables every runbook run gets, by name.
    pub fn vars(&self) -> BTreeMap<String, Text> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.clone()))
            .collect()
    }

    /// The runbook dirs, as paths.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|d| PathBuf::from(d.as_str()))
            .collect()
    }
}

impl Config {
    /// The narrow view action steps get: state dir, log sets, backup sets.
    pub fn step_settings(&self) -> crate::engine::Settings {
        crate::engine::Settings {
            state_dir: self.state_dir(),
            logs: self.logs.clone(),
            backup: self.backup.clone(),
            runbook: crate::backup::RunbookRunner::default(),
        }
    }

    /// `/var/lib/opsbook` as root, else `$XDG_STATE_HOME/opsbook` (or `~/.local/state/opsbook`).
    pub fn state_dir(&self) -> PathBuf {
        if let Some(dir) = &self.state_dir {
            return PathBuf::from(dir.as_str());
        }
        if is_root() {
            return PathBuf::from("/var/lib/opsbook");
        }
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("opsbook")
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(env: &str, sources: &[&str]) -> Loaded {
        Loaded {
            config: Config::default(),
            env: env.to_string(),
            sources: sources.iter().map(PathBuf::from).collect(),
            unresolved: Vec::new(),
        }
    }

    fn options(env: Option<&str>) -> LoadOptions {
        LoadOptions {
            env: env.map(str::to_string),
            file: None,
            config_dir: PathBuf::from("cfg"),
        }
    }

    #[test]
    fn a_missing_env_file_is_said_only_when_the_env_was_asked_for() {
        assert_eq!(
            missing_env_warning(&options(None), &loaded("development", &[])),
            None
        );
        assert_eq!(
            missing_env_warning(&options(Some("qa")), &loaded("qa", &["cfg/qa.yaml"])),
            None
        );
        assert_eq!(
            missing_env_warning(&options(Some("qa")), &loaded("qa", &[])).as_deref(),
            Some(
                "environment \"qa\" was asked for, but cfg/qa.yaml was not found: \
                 using the built-in defaults only"
            )
        );
        assert_eq!(
            missing_env_warning(&options(Some("qa")), &loaded("qa", &["mine.yaml"])).as_deref(),
            Some(
                "environment \"qa\" was asked for, but cfg/qa.yaml was not found: \
                 using the built-in defaults and --config only"
            )
        );
    }
}
