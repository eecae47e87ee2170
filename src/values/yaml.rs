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

/// `bytes` read from `path` as text, or an error at the line and column of the first byte
/// that is not UTF-8 (YAML files are UTF-8; the parser reads nothing else).
pub fn utf8_text(path: &Path, bytes: Vec<u8>) -> Result<String, ConfigError> {
    let e = match String::from_utf8(bytes) {
        Ok(text) => return Ok(text),
        Err(e) => e,
    };
    let bytes = e.as_bytes();
    let offset = e.utf8_error().valid_up_to();
    let valid = String::from_utf8_lossy(&bytes[..offset]);
    let line_start = valid.rfind('\n').map_or(0, |i| i + 1);
    let line = valid.matches('\n').count() as u64 + 1;
    let column = valid[line_start..].chars().count() as u64 + 1;
    let bad: Vec<String> = bytes[offset..]
        .iter()
        .take(e.utf8_error().error_len().unwrap_or(bytes.len() - offset).max(1))
        .map(|b| format!("0x{b:02X}"))
        .collect();
    Err(ConfigError::at(
        path,
        &String::from_utf8_lossy(bytes),
        line,
        column,
        format!(
            "the file is not UTF-8: byte {} cannot start a character here (save the file as UTF-8)",
            bad.join(" ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_utf8_is_located_at_its_first_bad_byte() {
        let path = Path::new("rb.yaml");
        assert_eq!(utf8_text(path, b"a: 1\n".to_vec()).unwrap(), "a: 1\n");
        let e = utf8_text(path, b"a: 1\nb: \"\xc3\xa9t\xe9\"\n".to_vec()).unwrap_err();
        assert_eq!((e.line, e.column), (2, 7), "{e}");
        assert!(e.message.contains("0xE9"), "{e}");
        // A character cut short at the end of the file.
        let e = utf8_text(path, b"x\xc3".to_vec()).unwrap_err();
        assert_eq!((e.line, e.column), (1, 2), "{e}");
    }
}
