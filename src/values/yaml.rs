//! YAML in, a typed value out, with the error located at its line and column.

use crate::error::ConfigError;
use serde::de::DeserializeOwned;
use serde_saphyr::Spanned;
use std::path::Path;

/// Parse YAML into `T`, turning any parse or validation error into a located `ConfigError`.
pub fn parse_yaml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    parse_with(path, text, serde_saphyr::DuplicateKeyPolicy::Error, false)
}

/// `parse_yaml` for a runbook, whose JSON Schema says `boolean`: only `true` and `false`
/// are booleans (YAML 1.2), so `yes` or `"on"` is refused where the schema refuses it.
pub fn parse_runbook_yaml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    parse_with(path, text, serde_saphyr::DuplicateKeyPolicy::Error, true)
}

/// `parse_yaml` where a repeated key keeps its first value: for an outline that must read
/// past a duplicate key so the duplicate is reported with every other error.
pub fn parse_yaml_first_key_wins<T: DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    parse_with(
        path,
        text,
        serde_saphyr::DuplicateKeyPolicy::FirstWins,
        false,
    )
}

fn parse_with<T: DeserializeOwned>(
    path: &Path,
    text: &str,
    duplicate_keys: serde_saphyr::DuplicateKeyPolicy,
    strict_booleans: bool,
) -> Result<T, ConfigError> {
    let options = serde_saphyr::options! {
        duplicate_keys: duplicate_keys,
        strict_booleans: strict_booleans,
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
        .take(
            e.utf8_error()
                .error_len()
                .unwrap_or(bytes.len() - offset)
                .max(1),
        )
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

/// A string value and where it is written: its key path (`a.b`, `a.list[0]`), the byte
/// range of its text as written (quotes included), and its line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StringAt {
    pub key: String,
    pub value: String,
    pub bytes: Option<std::ops::Range<usize>>,
    pub line: u64,
    pub column: u64,
}

/// Every string value of the YAML `text` with where the parser read it (an alias's value
/// where its anchor is written), in document order; empty when the text does not parse.
pub fn string_spans(text: &str) -> Vec<StringAt> {
    scalar_spans(text, false)
}

/// Every value of the YAML `text` that reads as a boolean (`true`, and YAML 1.1's `y`,
/// `yes`, `on`, `no`, `off`…), as written (`value` is its text), in document order.
pub fn boolean_spans(text: &str) -> Vec<StringAt> {
    scalar_spans(text, true)
        .into_iter()
        .filter_map(|mut at| {
            at.value = text.get(at.bytes.clone()?)?.to_string();
            Some(at)
        })
        .collect()
}

/// The string values, or the boolean ones, of `text` with their spans.
fn scalar_spans(text: &str, booleans: bool) -> Vec<StringAt> {
    fn walk(key: &str, node: &Spanned<Tree>, booleans: bool, out: &mut Vec<StringAt>) {
        match &node.value {
            Tree::Str(value) | Tree::Bool(value)
                if booleans == matches!(node.value, Tree::Bool(_)) =>
            {
                let at = node.defined;
                let span = at.span();
                let bytes = span.byte_offset().zip(span.byte_len()).and_then(|(o, l)| {
                    let o = usize::try_from(o).ok()?;
                    Some(o..o.checked_add(usize::try_from(l).ok()?)?)
                });
                out.push(StringAt {
                    key: key.to_string(),
                    value: value.clone(),
                    bytes,
                    line: at.line(),
                    column: at.column(),
                });
            }
            Tree::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(&format!("{key}[{i}]"), item, booleans, out);
                }
            }
            Tree::Map(entries) => {
                for (name, item) in entries {
                    let key = if key.is_empty() {
                        name.clone()
                    } else {
                        format!("{key}.{name}")
                    };
                    walk(&key, item, booleans, out);
                }
            }
            Tree::Str(_) | Tree::Bool(_) | Tree::Other => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(tree) = serde_saphyr::from_str::<Spanned<Tree>>(text) {
        walk("", &tree, booleans, &mut out);
    }
    out
}

/// The shape of a YAML document, each node with its span.
enum Tree {
    Str(String),
    /// A boolean, as `true`/`false`.
    Bool(String),
    Seq(Vec<Spanned<Tree>>),
    Map(Vec<(String, Spanned<Tree>)>),
    Other,
}

impl<'de> serde::Deserialize<'de> for Tree {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Tree;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Tree, E> {
                Ok(Tree::Str(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Tree, E> {
                Ok(Tree::Bool(v.to_string()))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Tree, E> {
                Ok(Tree::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Tree, E> {
                Ok(Tree::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Tree, E> {
                Ok(Tree::Other)
            }
            fn visit_unit<E>(self) -> Result<Tree, E> {
                Ok(Tree::Other)
            }
            fn visit_none<E>(self) -> Result<Tree, E> {
                Ok(Tree::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Tree::Seq(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<serde_json::Value>()? {
                    let key = match key {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    entries.push((key, map.next_value()?));
                }
                Ok(Tree::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
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

    #[test]
    fn string_values_are_located_by_the_parser() {
        let text = "# a: \"${X}\"\na:\n  b: \"${X}\"\n  list: [one, &t 'two']\nc: *t\nn: 3\n";
        let found = string_spans(text);
        let keys: Vec<&str> = found.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["a.b", "a.list[0]", "a.list[1]", "c"]);
        assert_eq!(found[3].value, "two");
        let b = &found[0];
        assert_eq!((b.line, b.column), (3, 6));
        assert_eq!(&text[b.bytes.clone().unwrap()], "\"${X}\"");
        // An alias's value is where its anchor is written.
        assert_eq!(found[3].line, 4);
        assert!(string_spans("a: [").is_empty());
    }
}
