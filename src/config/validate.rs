//! `config validate`: every error of one config file, and the `${VAR}`s it uses that are
//! not set here, without loading it into the settings in use.

use super::load::{Unresolved, errors_in, unresolved_in};
use crate::error::ConfigError;
use crate::values::parse_yaml;
use std::path::Path;

/// What checking one config file found.
#[derive(Debug, Default)]
pub struct FileCheck {
    /// Every error, in the order of the file (empty: the file is valid).
    pub errors: Vec<ConfigError>,
    /// `${VAR}`s not set here: worth a warning only, since they may be set where the
    /// file is used.
    pub unset: Vec<Unresolved>,
}

/// Read and check `file`; an unreadable file is its one error.
pub fn check_file(file: &Path) -> FileCheck {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            return FileCheck {
                errors: vec![ConfigError::whole_file(file, format!("cannot read: {e}"))],
                unset: Vec::new(),
            };
        }
    };
    let unset = parse_yaml::<serde_json::Value>(file, &text)
        .map(|value| unresolved_in(file, &text, &value))
        .unwrap_or_default();
    FileCheck {
        errors: errors_in(file, &text),
        unset,
    }
}
