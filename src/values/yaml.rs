//! YAML in, a typed value out, with the error located at its line and column.

use crate::error::ConfigError;
use serde::de::DeserializeOwned;
use std::path::Path;

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
