//! Finding, parsing and layering config files. Each file is parsed on its own first, so
//! an error names the file, line and column; the files are then merged key by key
//! (mappings merge, everything else — lists included — is replaced by the later file).

use super::{Config, ENVIRONMENTS, Level, parse_bool};
use crate::error::{ConfigError, Error};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--env` or `$ENVIRONMENT`; `development` when neither is given.
    pub env: Option<String>,
    /// `--config FILE`.
    pub file: Option<PathBuf>,
    /// Where `<env>.yaml` files live: `$OPSBOOK_CONFIG_DIR`, else `./config`.
    pub config_dir: PathBuf,
}

#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    pub env: String,
    /// The files that were read, in the order they were layered.
    pub sources: Vec<PathBuf>,
}

pub fn load(options: &LoadOptions) -> Result<Loaded, Error> {
    let env = options
        .env
        .clone()
        .unwrap_or_else(|| "development".to_string());
    let env_file = options.config_dir.join(format!("{env}.yaml"));
    let valid_name = !env.is_empty()
        && env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_name || (!ENVIRONMENTS.contains(&env.as_str()) && !env_file.is_file()) {
        return Err(Error::Usage(format!(
            "unknown environment {env:?}: use development, staging or production \
             (or add {})",
            env_file.display()
        )));
    }

    let mut layers = Vec::new();
    if env_file.is_file() {
        layers.push(env_file);
    }
    if let Some(file) = &options.file {
        layers.push(file.clone());
    }

    let mut merged = Value::Object(Default::default());
    for path in &layers {
        let text = read(path)?;
        // Typed first: this is where every error gets its line and column.
        parse_yaml::<Config>(path, &text)?;
        let value = parse_yaml::<Value>(path, &text)?;
        merge(&mut merged, value);
    }
    let mut config: Config = serde_json::from_value(merged).map_err(|e| {
        let blame = layers.last().cloned().unwrap_or_default();
        ConfigError::whole_file(blame, format!("the layered configuration is invalid: {e}"))
    })?;
    apply_environment(&mut config, |name| std::env::var(name).ok())?;
    Ok(Loaded {
        config,
        env,
        sources: layers,
    })
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::whole_file(path, format!("cannot read: {e}")).into())
}

/// Parse YAML into `T`, turning any parse or validation error into a located `ConfigError`.
pub fn parse_yaml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
    };
    let text = if text.trim().is_empty() { "{}" } else { text };
    serde_saphyr::from_str_with_options::<T>(text, options).map_err(|e| {
        let plain = e.without_snippet().to_string();
        match e.location() {
            Some(loc) if loc.line() > 0 => {
                let suffix = format!(" at line {}, column {}", loc.line(), loc.column());
                let message = crate::error::suggest(plain.strip_suffix(&suffix).unwrap_or(&plain))
                    .replace(
                        ", set DuplicateKeyPolicy in Options if acceptable",
                        ": each key may appear only once",
                    );
                ConfigError::at(path, text, loc.line(), loc.column(), message)
            }
            _ => ConfigError::whole_file(path, crate::error::suggest(&plain)),
        }
    })
}

/// Deep-merge `overlay` into `base`: mappings merge key by key, anything else replaces.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (_, Value::Null) => {}
        (slot, value) => *slot = value,
    }
}

/// Seed 000's variables override the files.
fn apply_environment(
    config: &mut Config,
    var: impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let bad = |name: &str, message: String| ConfigError::whole_file(format!("${name}"), message);
    if let Some(level) = var("LOG_LEVEL") {
        config.logging.level = Level::parse(&level).map_err(|m| bad("LOG_LEVEL", m))?;
    }
    if let Some(dir) = var("LOG_DIR") {
        config.logging.dir = super::Text::plain(dir);
    }
    if let Some(on) = var("LOG_TO_FILE") {
        config.logging.to_file = parse_bool(&on).map_err(|m| bad("LOG_TO_FILE", m))?;
    }
    if let Some(on) = var("LOG_TO_CONSOLE") {
        config.logging.to_console = parse_bool(&on).map_err(|m| bad("LOG_TO_CONSOLE", m))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_is_deep_for_mappings_and_replaces_lists() {
        let mut base = json!({"health": {"thresholds": {"memory": {"warn": 70}}, "disks": ["/"]}});
        merge(
            &mut base,
            json!({"health": {"thresholds": {"memory": {"crit": 80}}, "disks": ["/data"]}}),
        );
        assert_eq!(
            base,
            json!({"health": {"thresholds": {"memory": {"warn": 70, "crit": 80}}, "disks": ["/data"]}})
        );
    }

    #[test]
    fn parse_errors_carry_file_line_and_column() {
        let err = parse_yaml::<Config>(
            Path::new("x.yaml"),
            "health:\n  thresholds:\n    memry: {}\n",
        )
        .unwrap_err();
        assert_eq!((err.line, err.column), (3, 5));
        assert!(
            err.message.contains("unknown field `memry`"),
            "{}",
            err.message
        );
        assert!(err.to_string().starts_with("x.yaml:3:5: unknown field"));
    }

    #[test]
    fn warn_above_crit_is_located() {
        let err = parse_yaml::<Config>(
            Path::new("x.yaml"),
            "health:\n  thresholds:\n    disk: { warn: 95 }\n",
        )
        .unwrap_err();
        assert_eq!(err.line, 3);
        assert!(
            err.message
                .contains("warn 95 is above crit 90 (the default)"),
            "{}",
            err.message
        );
    }

    #[test]
    fn environment_overrides_logging() {
        let mut config = Config::default();
        apply_environment(&mut config, |name| match name {
            "LOG_LEVEL" => Some("debug".into()),
            "LOG_TO_FILE" => Some("true".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.logging.level, Level::Debug);
        assert!(config.logging.to_file);
        let err = apply_environment(&mut config, |name| {
            (name == "LOG_TO_CONSOLE").then(|| "sometimes".to_string())
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("$LOG_TO_CONSOLE: "), "{err}");
    }
}
