//! How a log set's lines are read. `auto` (the default) recognises Python-logging lines,
//! JSON lines and access logs by themselves (see `line`); `python`, `json` and `access`
//! name those for the reader of the config. A set whose lines look like none of them gives
//! a regex with named groups: `level`, `time` (parsed with `time_format`, strftime-style,
//! or as ISO 8601 without one) and optionally `message`.

use super::line;
use crate::values::Level;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Debug, Default)]
pub enum LineFormat {
    #[default]
    Auto,
    Named(&'static str),
    Regex {
        regex: regex::Regex,
        time_format: Option<String>,
    },
}

const NAMES: [&str; 4] = ["auto", "python", "json", "access"];

impl<'de> Deserialize<'de> for LineFormat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Custom {
            regex: String,
            time_format: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Custom(Custom),
        }
        let custom = serde::de::Error::custom;
        match Raw::deserialize(deserializer)? {
            Raw::Name(name) => match NAMES.iter().find(|n| **n == name) {
                Some(&"auto") => Ok(LineFormat::Auto),
                Some(known) => Ok(LineFormat::Named(known)),
                None => {
                    let hint = crate::error::did_you_mean(&name, &NAMES)
                        .map(|s| format!("; did you mean {s:?}?"))
                        .unwrap_or_default();
                    Err(custom(format!(
                        "unknown log format {name:?}: write auto, python, json, access, or {{ regex: '…', time_format: '…' }}{hint}"
                    )))
                }
            },
            Raw::Custom(c) => {
                let regex = regex::Regex::new(&c.regex)
                    .map_err(|e| custom(format!("invalid regex {:?}: {e}", c.regex)))?;
                let groups: Vec<&str> = regex.capture_names().flatten().collect();
                if !groups.iter().any(|g| *g == "level" || *g == "time") {
                    return Err(custom(format!(
                        "the regex {:?} has neither a `level` nor a `time` group: name them (?P<level>…), (?P<time>…)",
                        c.regex
                    )));
                }
                Ok(LineFormat::Regex {
                    regex,
                    time_format: c.time_format,
                })
            }
        }
    }
}

impl Serialize for LineFormat {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            LineFormat::Auto => serializer.serialize_str("auto"),
            LineFormat::Named(name) => serializer.serialize_str(name),
            LineFormat::Regex { regex, .. } => serializer.serialize_str(regex.as_str()),
        }
    }
}

impl LineFormat {
    pub fn level(&self, text: &str) -> Option<Level> {
        match self {
            LineFormat::Regex { regex, .. } => {
                let found = regex.captures(text)?.name("level")?;
                Level::parse(found.as_str()).ok()
            }
            _ => line::level(text),
        }
    }

    pub fn time(&self, text: &str, zone: &jiff::tz::TimeZone) -> Option<jiff::Timestamp> {
        match self {
            LineFormat::Regex { regex, time_format } => {
                let found = regex.captures(text)?.name("time")?.as_str();
                match time_format {
                    Some(format) => jiff::Timestamp::strptime(format, found).ok().or_else(|| {
                        let civil = jiff::civil::DateTime::strptime(format, found).ok()?;
                        zone.to_timestamp(civil).ok()
                    }),
                    None => line::time(found, zone),
                }
            }
            _ => line::time(text, zone),
        }
    }

    /// The message part, when the format names one.
    pub fn message<'a>(&self, text: &'a str) -> Option<&'a str> {
        match self {
            LineFormat::Regex { regex, .. } => {
                Some(regex.captures(text)?.name("message")?.as_str())
            }
            _ => None,
        }
    }

    /// The warning for a file of `lines` lines of which `levelled` had a level this format
    /// could read: none of them means the format is not one opsbook recognises, and every
    /// count by level would be a silent zero.
    pub fn unrecognised(&self, file: &str, lines: u64, levelled: u64) -> Option<String> {
        if lines == 0 || levelled > 0 {
            return None;
        }
        let said = if lines == 1 {
            "its 1 line"
        } else {
            "its lines"
        };
        Some(match self {
            LineFormat::Regex { .. } => format!(
                "{file}: none of {said} ({lines}) matches the `format:` regex with a level: no level was read"
            ),
            _ => format!(
                "{file}: none of {said} ({lines}) is in a format opsbook recognises (Python logging, JSON lines, access logs): \
                 no level was read; set `format:` (a regex with `level` and `time` groups)"
            ),
        })
    }

    pub fn is_auto(&self) -> bool {
        !matches!(self, LineFormat::Regex { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(yaml: &str) -> Result<LineFormat, String> {
        crate::config::parse_yaml(std::path::Path::new("t.yaml"), yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn names_and_custom_regexes() {
        assert!(format("auto").unwrap().is_auto());
        assert!(format("access").unwrap().is_auto());
        let err = format("acess").unwrap_err();
        assert!(err.contains("unknown log format \"acess\""), "{err}");
        assert!(err.contains("did you mean \"access\"?"), "{err}");
        let custom = format(
            "{ regex: '^(?P<time>\\S+ \\S+) <(?P<level>\\w+)> (?P<message>.*)$', time_format: '%d.%m.%Y %H:%M:%S' }",
        )
        .unwrap();
        let line = "15.01.2025 10:30:00 <error> disk full";
        assert_eq!(custom.level(line), Some(Level::Error));
        assert_eq!(custom.message(line), Some("disk full"));
        let utc = jiff::tz::TimeZone::UTC;
        assert_eq!(
            custom.time(line, &utc).map(|t| t.as_second()),
            Some(1736937000)
        );
        assert!(
            format("{ regex: '^(.*)$' }")
                .unwrap_err()
                .contains("neither a `level` nor a `time`")
        );
    }
}
