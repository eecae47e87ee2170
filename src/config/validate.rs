//! `config validate`: every error of one config file, and the `${VAR}`s it uses that are
//! not set here, without loading it into the settings in use.

use super::load::{Unresolved, errors_in, unresolved_in};
use crate::error::ConfigError;
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
    let read = std::fs::read(file)
        .map_err(|e| ConfigError::whole_file(file, format!("cannot read: {e}")))
        .and_then(|bytes| crate::values::utf8_text(file, bytes));
    let text = match read {
        Ok(text) => text,
        Err(e) => {
            return FileCheck {
                errors: vec![e],
                unset: Vec::new(),
            };
        }
    };
    let unset = unresolved_in(file, &text);
    FileCheck {
        errors: errors_in(file, &text),
        unset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_file_is_its_one_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("staging.yaml");
        let found = check_file(&missing);
        assert_eq!(found.errors.len(), 1);
        assert!(
            found.errors[0].to_string().contains("cannot read"),
            "{}",
            found.errors[0]
        );
        assert!(found.unset.is_empty());
    }

    #[test]
    fn an_unset_variable_is_a_warning_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        std::fs::write(
            &file,
            "incident:\n  webhook: { url: \"${OPSBOOK_TEST_SURELY_UNSET_HOOK}\" }\n",
        )
        .unwrap();
        let found = check_file(&file);
        assert!(found.errors.is_empty(), "{:?}", found.errors);
        assert_eq!(found.unset.len(), 1);
        assert_eq!(found.unset[0].var, "OPSBOOK_TEST_SURELY_UNSET_HOOK");
        assert_eq!(found.unset[0].key, "incident.webhook.url");
        assert_eq!((found.unset[0].line, found.unset[0].column), (2, 20));
    }

    #[test]
    fn an_unset_variable_is_located_in_its_value_not_in_a_comment_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        std::fs::write(
            &file,
            "# the hook is ${OPSBOOK_TEST_SURELY_UNSET_HOOK}, set per host\nincident:\n  webhook: { url: \"https://x/${OPSBOOK_TEST_SURELY_UNSET_HOOK}\" }\n",
        )
        .unwrap();
        let found = check_file(&file);
        assert_eq!(found.unset.len(), 1, "{:?}", found.unset);
        assert_eq!((found.unset[0].line, found.unset[0].column), (3, 30));
    }

    #[test]
    fn every_error_of_a_file_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        std::fs::write(&file, "health:\n  nope: 1\nlogs:\n  also_nope: 2\n").unwrap();
        let found = check_file(&file);
        assert_eq!(found.errors.len(), 2, "{:?}", found.errors);
    }
}
