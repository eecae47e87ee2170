//! Typed config values that validate themselves while parsing, so a bad value is
//! reported at its own line and column: percentages, durations, threshold pairs, levels,
//! and templated text (`text`).

pub mod number;
pub mod text;
mod yaml;

pub use number::{Whole, WholeNumber, templated, whole, whole_opt};
pub use text::{Text, substitute};
pub use yaml::{
    StringAt, boolean_spans, parse_runbook_yaml, parse_yaml, parse_yaml_first_key_wins,
    string_spans, utf8_text,
};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value that cannot be used as written; what it says names the value and how to write it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("{0:?} is not a percentage (write 80 or \"80%\")")]
    NotPercent(String),
    #[error("{0} is outside 0–100 %")]
    OutsidePercent(f64),
    #[error("{text:?} is not a duration ({why}); write e.g. 500ms, 5s, 10m, 1h")]
    NotDuration { text: String, why: String },
    #[error("{0} is not a duration: it must be 0 or more")]
    NegativeDuration(f64),
    #[error("{0:?} is not a size (write e.g. 512K, 10MB, 1G)")]
    NotSize(String),
    #[error("{text:?} is not a size: unknown unit {unit:?} (use K, M, G or T)")]
    SizeUnit { text: String, unit: String },
    #[error(
        "warn {warn}{} is above crit {crit}{}: warn must not exceed crit",
        default_note(*.warn_given),
        default_note(*.crit_given)
    )]
    WarnAboveCrit {
        warn: f64,
        warn_given: bool,
        crit: f64,
        crit_given: bool,
    },
    #[error("unknown log level {0:?}: use DEBUG, INFO, WARNING, ERROR or CRITICAL")]
    Level(String),
    #[error("{0:?} is not a boolean (use true or false)")]
    NotBool(String),
    #[error("{text:?} is not a whole number ({min} to {max})")]
    NotWhole { text: String, min: i128, max: i128 },
    #[error(transparent)]
    Text(#[from] text::Error),
}

/// After a threshold half the user did not write.
fn default_note(given: bool) -> &'static str {
    if given { "" } else { " (the default)" }
}

/// A percentage in 0–100, written `75`, `75.5` or `"75%"`.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Percent(pub f64);

impl Percent {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let number = text.trim().strip_suffix('%').unwrap_or(text.trim()).trim();
        let value: f64 = number
            .parse()
            .map_err(|_| Error::NotPercent(text.to_string()))?;
        Self::checked(value)
    }

    fn checked(value: f64) -> Result<Self, Error> {
        if !(0.0..=100.0).contains(&value) {
            return Err(Error::OutsidePercent(value));
        }
        Ok(Percent(value))
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        let parsed = match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Percent::checked(n),
            Raw::Text(t) => templated(&t, Percent::parse),
        };
        parsed.map_err(serde::de::Error::custom)
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0)
    }
}

/// A duration written as `200ms`, `5s`, `1m 30s`, `2h`, `30d` (humantime), or a number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub fn parse(text: &str) -> Result<Self, Error> {
        humantime::parse_duration(text.trim())
            .map(Duration)
            .map_err(|e| Error::NotDuration {
                text: text.to_string(),
                why: e.to_string(),
            })
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(f64),
            Text(String),
        }
        let parsed = match Raw::deserialize(deserializer)? {
            Raw::Seconds(s) if s.is_finite() && s >= 0.0 => {
                Ok(Duration(std::time::Duration::from_secs_f64(s)))
            }
            Raw::Seconds(s) => Err(Error::NegativeDuration(s)),
            Raw::Text(t) => templated(&t, Duration::parse),
        };
        parsed.map_err(serde::de::Error::custom)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

/// A size in bytes: `1048576`, `512K`, `10MB`, `1.5G` (K, M, G, T are powers of 1024,
/// as logrotate reads them; `KiB`/`KB`/`k` all mean the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let number: f64 = number
            .parse()
            .map_err(|_| Error::NotSize(text.to_string()))?;
        let scale = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1u64,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            "t" | "tb" | "tib" => 1 << 40,
            other => {
                return Err(Error::SizeUnit {
                    text: text.to_string(),
                    unit: other.to_string(),
                });
            }
        };
        Ok(ByteSize((number * scale as f64).round() as u64))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Bytes(b) => Ok(ByteSize(b)),
            Raw::Text(t) => templated(&t, ByteSize::parse).map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

/// A warn/crit pair of percentages. A half left out keeps its default (`W`, `C`), so
/// `memory: { warn: 70 }` keeps the critical level at 90. Grading is strict: a reading
/// above the level trips it, a reading equal to it does not.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Threshold<const W: u8, const C: u8> {
    pub warn: Percent,
    pub crit: Percent,
}

impl<const W: u8, const C: u8> Default for Threshold<W, C> {
    fn default() -> Self {
        Threshold {
            warn: Percent(f64::from(W)),
            crit: Percent(f64::from(C)),
        }
    }
}

/// `{ warn, crit }` as written, each optional: read into a `Threshold` or `PercentLevels`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WarnCrit {
    warn: Option<Percent>,
    crit: Option<Percent>,
}

impl<'de, const W: u8, const C: u8> Deserialize<'de> for Threshold<W, C> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = WarnCrit::deserialize(deserializer)?;
        Self::from_parts(raw.warn, raw.crit).map_err(serde::de::Error::custom)
    }
}

impl<const W: u8, const C: u8> Threshold<W, C> {
    /// A pair from the halves given, defaults for the rest; warn must not exceed crit.
    pub fn from_parts(warn: Option<Percent>, crit: Option<Percent>) -> Result<Self, Error> {
        let defaults = Self::default();
        let (given_warn, given_crit) = (warn.is_some(), crit.is_some());
        let warn = warn.unwrap_or(defaults.warn);
        let crit = crit.unwrap_or(defaults.crit);
        if warn > crit {
            return Err(Error::WarnAboveCrit {
                warn: warn.0,
                warn_given: given_warn,
                crit: crit.0,
                crit_given: given_crit,
            });
        }
        Ok(Threshold { warn, crit })
    }
}

/// Log level names as the seeds write them (Python logging), case-insensitive.
/// A runbook step's percent levels (`disk: { warn: 80%, crit: 90% }`). Both left out are
/// the kind's defaults `W` and `C`; one alone is a one-level threshold (`crit: 50%` alone
/// never warns), unlike config `health.thresholds`, where a half left out is filled from
/// its default and checked against it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PercentLevels<const W: u8, const C: u8> {
    pub warn: Option<Percent>,
    pub crit: Option<Percent>,
}

impl<const W: u8, const C: u8> Default for PercentLevels<W, C> {
    fn default() -> Self {
        PercentLevels {
            warn: Some(Percent(f64::from(W))),
            crit: Some(Percent(f64::from(C))),
        }
    }
}

impl<const W: u8, const C: u8> PercentLevels<W, C> {
    pub fn from_parts(warn: Option<Percent>, crit: Option<Percent>) -> Result<Self, Error> {
        match (warn, crit) {
            (None, None) => Ok(Self::default()),
            (Some(w), Some(c)) if w > c => Err(Error::WarnAboveCrit {
                warn: w.0,
                warn_given: true,
                crit: c.0,
                crit_given: true,
            }),
            _ => Ok(PercentLevels { warn, crit }),
        }
    }
}

impl<'de, const W: u8, const C: u8> Deserialize<'de> for PercentLevels<W, C> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = WarnCrit::deserialize(deserializer)?;
        Self::from_parts(raw.warn, raw.crit).map_err(serde::de::Error::custom)
    }
}

/// The levels as written: `crit: 90`, not `crit: 90.0`; a level left out is not shown.
impl<const W: u8, const C: u8> Serialize for PercentLevels<W, C> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        for (key, level) in [("warn", self.warn), ("crit", self.crit)] {
            if let Some(level) = level {
                map.serialize_entry(key, &written(level.0))?;
            }
        }
        map.end()
    }
}

/// A number as a person wrote it: `90` when it is whole, `75.5` otherwise.
pub fn written(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Value::from(n)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Level {
    Trace,
    Debug,
    #[default]
    Info,
    Warning,
    Error,
    Critical,
}

impl Level {
    pub fn parse(text: &str) -> Result<Self, Error> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "trace" => Level::Trace,
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warn" | "warning" => Level::Warning,
            "error" => Level::Error,
            "critical" | "fatal" => Level::Critical,
            _ => {
                return Err(Error::Level(text.to_string()));
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Text::deserialize(deserializer)?;
        Level::parse(text.as_str()).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Level {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// `true/false/1/0/yes/no/on/off`, for environment variables such as `LOG_TO_FILE`.
pub fn parse_bool(text: &str) -> Result<bool, Error> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(Error::NotBool(text.to_string())),
    }
}

/// Whether `name` can name a set, a schedule or anything else that becomes part of a
/// file name (locks, state, backups): `[A-Za-z0-9._-]+`, and not `.` or `..`.
pub fn is_set_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `deserialize_with` for named sets (`logs.sets`, `backup.sets`, `maintain.schedules`):
/// each name is checked where it is written, so the error has its line and column.
pub fn named_sets<'de, D, T>(
    deserializer: D,
) -> Result<std::collections::BTreeMap<String, T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    struct Visitor<T>(std::marker::PhantomData<T>);
    impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
        type Value = std::collections::BTreeMap<String, T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a mapping of names to settings")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = std::collections::BTreeMap::new();
            while let Some(name) = map.next_key::<String>()? {
                if !is_set_name(&name) {
                    return Err(serde::de::Error::custom(format!(
                        "{name:?} cannot be a name: names are letters, digits, `.`, `_` and `-` \
                         (they become parts of file names)"
                    )));
                }
                let value = map.next_value::<T>()?;
                out.insert(name, value);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Visitor(std::marker::PhantomData))
}

/// Permission bits written in octal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode(pub u32);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u32),
            Text(String),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Number(n) => n.to_string(),
            Raw::Text(t) => Text::from_template(&t)
                .map_err(serde::de::Error::custom)?
                .as_str()
                .to_string(),
        };
        u32::from_str_radix(text.trim().trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .map(Mode)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{text:?} is not an octal mode: write it quoted, e.g. \"0640\""
                ))
            })
    }
}

impl Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{:04o}", self.0))
    }
}

/// A setting that cannot work, said in words (a step's settings checked as a whole while
/// the file is read; the parser puts it at its line).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<String> for Invalid {
    fn from(message: String) -> Self {
        Invalid(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_levels_given_alone_are_one_level_and_neither_is_the_defaults() {
        let p = |n: f64| Some(Percent(n));
        let both = PercentLevels::<80, 90>::from_parts(None, None).unwrap();
        assert_eq!((both.warn, both.crit), (p(80.0), p(90.0)));
        let crit = PercentLevels::<80, 90>::from_parts(None, p(50.0)).unwrap();
        assert_eq!((crit.warn, crit.crit), (None, p(50.0)));
        let warn = PercentLevels::<75, 90>::from_parts(p(95.0), None).unwrap();
        assert_eq!((warn.warn, warn.crit), (p(95.0), None));
        let err = PercentLevels::<80, 90>::from_parts(p(60.0), p(50.0)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "warn 60 is above crit 50: warn must not exceed crit"
        );
        // Config thresholds still fill a half from its default, and check it.
        assert!(Threshold::<80, 90>::from_parts(None, p(50.0)).is_err());
    }

    #[test]
    fn percent_accepts_numbers_and_percent_strings_within_bounds() {
        assert_eq!(Percent::parse("80%").unwrap(), Percent(80.0));
        assert_eq!(Percent::parse(" 12.5 ").unwrap(), Percent(12.5));
        assert!(
            Percent::parse("101")
                .unwrap_err()
                .to_string()
                .contains("outside 0–100")
        );
        assert!(
            Percent::parse("-1%")
                .unwrap_err()
                .to_string()
                .contains("outside")
        );
        assert!(
            Percent::parse("lots")
                .unwrap_err()
                .to_string()
                .contains("not a percentage")
        );
    }

    #[test]
    fn durations_parse_humantime_and_reject_nonsense() {
        assert_eq!(
            Duration::parse("500ms").unwrap().0,
            std::time::Duration::from_millis(500)
        );
        assert_eq!(Duration::parse("1m 30s").unwrap().0.as_secs(), 90);
        assert!(Duration::parse("-5s").is_err());
        assert!(
            Duration::parse("soon")
                .unwrap_err()
                .to_string()
                .contains("not a duration")
        );
    }

    #[test]
    fn levels_accept_python_and_short_names() {
        assert_eq!(Level::parse("warning").unwrap(), Level::Warning);
        assert_eq!(Level::parse("WARN").unwrap(), Level::Warning);
        assert!(Level::parse("loud").is_err());
    }

    #[test]
    fn booleans() {
        assert!(parse_bool("On").unwrap());
        assert!(!parse_bool("0").unwrap());
        assert!(parse_bool("maybe").is_err());
    }

    #[test]
    fn value_errors_say_what_they_said_as_strings() {
        assert_eq!(
            Threshold::<80, 90>::from_parts(Some(Percent(95.0)), None)
                .unwrap_err()
                .to_string(),
            "warn 95 is above crit 90 (the default): warn must not exceed crit"
        );
        assert_eq!(
            ByteSize::parse("3 parsecs").unwrap_err().to_string(),
            "\"3 parsecs\" is not a size: unknown unit \"parsecs\" (use K, M, G or T)"
        );
        assert_eq!(
            parse_bool("maybe").unwrap_err().to_string(),
            "\"maybe\" is not a boolean (use true or false)"
        );
    }
}
