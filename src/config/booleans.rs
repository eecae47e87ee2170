//! Words YAML reads as booleans where a setting takes text. A file read on its own is
//! typed: a channel, set or severity named `y`, `yes`, `on` or `no` reads as the text
//! written. Layered files are merged untyped, where YAML 1.1 reads those words (and `true`,
//! `false`) as booleans, and the merged configuration then refuses a boolean for a name.
//! Rather than a bare "invalid type: boolean" for the whole configuration, each such word
//! is an error at its file, line and key that says to quote it.

use super::Config;
use crate::error::ConfigError;
use crate::values::StringAt;
use std::path::Path;

/// The words of `text` that YAML 1.1 reads as booleans (`y`, `yes`, `on`, `no`, `off`…)
/// where the setting takes text. The file is read again with only `true` and `false` as
/// booleans, where such a word is the text written: the parser stops at the first word a
/// boolean setting refuses, which is then written as `true` or `false`, and so on until
/// the file reads. The words left are the ones the settings took as text.
pub fn meant_as_text(path: &Path, text: &str) -> Vec<ConfigError> {
    let mut spots: Vec<StringAt> = crate::values::boolean_spans(text)
        .into_iter()
        .filter(|at| !matches!(at.value.to_ascii_lowercase().as_str(), "true" | "false"))
        .collect();
    // An alias's word is where its anchor is written: once.
    spots.sort_by_key(|at| at.bytes.as_ref().map(|r| r.start));
    spots.dedup_by(|a, b| a.bytes == b.bytes);
    let mut boolean = vec![false; spots.len()];
    // Each round settles one word, so this ends; the bound is for the unforeseen.
    for _ in 0..=spots.len() {
        let Some((rewritten, places)) = rewrite(text, &spots, &boolean) else {
            return Vec::new();
        };
        let (typed, _) = crate::values::text::lenient::run(|| {
            crate::values::parse_runbook_yaml::<Config>(path, &rewritten)
        });
        let Err(e) = typed else {
            return spots
                .iter()
                .zip(boolean)
                .filter(|(_, boolean)| !boolean)
                .map(|(at, _)| located(path, text, at))
                .collect();
        };
        match places.iter().position(|&p| p == (e.line, e.column)) {
            Some(i) if !boolean[i] => boolean[i] = true,
            // Refused for another reason: nothing to place here.
            _ => return Vec::new(),
        }
    }
    Vec::new()
}

/// Whether YAML 1.1 reads `word` as true.
fn reads_true(word: &str) -> bool {
    matches!(word.to_ascii_lowercase().as_str(), "y" | "yes" | "on")
}

/// `text` with the words known to be booleans written `true` or `false`, and where each
/// word then is (line, column).
fn rewrite(text: &str, spots: &[StringAt], boolean: &[bool]) -> Option<(String, Vec<(u64, u64)>)> {
    let mut out = String::new();
    let mut places = Vec::new();
    let (mut from, mut line, mut shift) = (0, 0, 0i64);
    for (at, &boolean) in spots.iter().zip(boolean) {
        let range = at.bytes.clone()?;
        out.push_str(text.get(from..range.start)?);
        if at.line != line {
            (line, shift) = (at.line, 0);
        }
        places.push((at.line, at.column.checked_add_signed(shift)?));
        let word = match boolean {
            true if reads_true(&at.value) => "true",
            true => "false",
            false => &at.value,
        };
        out.push_str(word);
        shift += word.len() as i64 - at.value.len() as i64;
        from = range.end;
    }
    out.push_str(text.get(from..)?);
    Some((out, places))
}

/// The error for a word meant as text.
fn located(path: &Path, text: &str, at: &StringAt) -> ConfigError {
    let message = format!(
        "{}: {} reads as the boolean {} in YAML; to mean the name or text, quote it: \"{}\"",
        at.key,
        at.value,
        reads_true(&at.value),
        at.value
    );
    ConfigError::at(path, text, at.line, at.column, message)
}

#[cfg(test)]
mod tests {
    use super::meant_as_text;
    use std::path::Path;

    #[test]
    fn only_booleans_where_text_is_wanted_are_named() {
        let text = "notify:\n  channels:\n    y: { slack: { url: \"http://127.0.0.1:9/x\" } }\n  routes:\n    - { channels: [y] }\nlogging:\n  to_file: yes\n  to_console: true\n";
        let found = meant_as_text(Path::new("ops.yaml"), text);
        assert_eq!(found.len(), 1, "{found:?}");
        let e = &found[0];
        assert_eq!((e.line, e.column), (5, 20), "{e:?}");
        assert!(
            e.message
                .starts_with("notify.routes[0].channels[0]: y reads as the boolean true"),
            "{}",
            e.message
        );
        assert!(e.message.contains("quote it: \"y\""), "{}", e.message);
    }
}
