//! `log_latency`: percentiles (p50, p90, p95, p99), mean and max of a duration written in
//! log lines, over a `path`, a `glob` or a log `set` (with its rotated history), in the
//! last `since`, each graded by durations (`p95: { warn: 300ms, crit: 500ms }`). The
//! duration comes from a `regex` with a `(?P<ms>…)`, `(?P<s>…)` or `(?P<us>…)` group, or
//! from a built-in `format`: the application's `Performance: NAME took Nms`, nginx's
//! `$request_time` and Apache's `%D` as the last field of an access-log line, and
//! PostgreSQL's `duration: N ms`. Percentiles are nearest-rank: the value at position
//! ⌈p·n/100⌉ of the sorted samples, as `sort -n` and picking that line gives.

use super::latency::LatencyLevels;
use super::log_match::{read, window};
use super::threshold::{Levels, Which, grade_by, trim};
use super::{Env, Probe};
use crate::logs::search::Matcher;
use crate::logs::source::Source;
use crate::model::{BoxFuture, Data, Outcome, Status};
use crate::values::{Duration, Invalid, Text};
use serde::{Deserialize, Serialize};

/// The built-in line shapes.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LatencyFormat {
    /// `Performance: NAME took 123.45ms` (the application's own log).
    Application,
    /// `$request_time` (seconds, `0.123`) as the last field of an nginx access-log line.
    Nginx,
    /// `%D` (microseconds) as the last field of an Apache access-log line.
    Apache,
    /// `duration: 12.345 ms` (PostgreSQL with `log_min_duration_statement`).
    Postgresql,
}

/// The step as written (kept to be shown back by `runbook show`).
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogLatencyRaw {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    glob: Option<Text>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::values::text::templated_opt"
    )]
    set: Option<String>,
    /// A regex with a `(?P<ms>…)`, `(?P<s>…)` or `(?P<us>…)` group holding the duration.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::values::text::templated_opt"
    )]
    regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<LatencyFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p50: Option<LatencyLevels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p90: Option<LatencyLevels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p95: Option<LatencyLevels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p99: Option<LatencyLevels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mean: Option<LatencyLevels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max: Option<LatencyLevels>,
}

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(try_from = "LogLatencyRaw", into = "LogLatencyRaw")]
pub struct LogLatencySpec {
    pub source: Source,
    pub extract: Extract,
    pub since: Option<Duration>,
    /// The graded statistics, in the order shown: (name, levels).
    pub levels: Vec<(&'static str, LatencyLevels)>,
    written: LogLatencyRaw,
}

/// How a duration is read from a line.
#[derive(Clone, Debug)]
pub enum Extract {
    /// A regex and the unit of its group, in milliseconds (`ms` 1, `s` 1000, `us` 0.001).
    Regex(regex::bytes::Regex, &'static str, f64),
    Format(LatencyFormat),
}

impl From<LogLatencySpec> for LogLatencyRaw {
    fn from(spec: LogLatencySpec) -> Self {
        spec.written
    }
}

impl TryFrom<LogLatencyRaw> for LogLatencySpec {
    type Error = Invalid;

    fn try_from(raw: LogLatencyRaw) -> Result<Self, Invalid> {
        let written = raw.clone();
        let source = Source::one_of(raw.path, raw.glob, raw.set)?;
        let extract = match (raw.regex, raw.format) {
            (Some(pattern), None) => {
                let regex = regex::bytes::Regex::new(&pattern)
                    .map_err(|e| super::regex_error(&format!("invalid regex {pattern:?}: {e}")))?;
                let unit = [("ms", 1.0), ("s", 1000.0), ("us", 0.001)]
                    .into_iter()
                    .find(|(name, _)| regex.capture_names().flatten().any(|n| n == *name));
                let Some((group, unit)) = unit else {
                    return Err(Invalid(format!(
                        "the regex {pattern:?} has no duration group: name it (?P<ms>…), (?P<s>…) or (?P<us>…)"
                    )));
                };
                Extract::Regex(regex, group, unit)
            }
            (None, Some(format)) => Extract::Format(format),
            (None, None) => {
                return Err(Invalid(
                    "give `format` (application, nginx, apache, postgresql) or `regex` with a (?P<ms>…) group"
                        .to_string(),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(Invalid("give `format` or `regex`, not both".to_string()));
            }
        };
        let levels: Vec<(&'static str, LatencyLevels)> = [
            ("p50", raw.p50),
            ("p90", raw.p90),
            ("p95", raw.p95),
            ("p99", raw.p99),
            ("mean", raw.mean),
            ("max", raw.max),
        ]
        .into_iter()
        .filter_map(|(name, levels)| Some((name, levels?)))
        .filter(|(_, l)| l.warn.is_some() || l.crit.is_some())
        .collect();
        if levels.is_empty() {
            return Err(Invalid("grade at least one of p50, p90, p95, p99, mean, max: `p95: { warn: 300ms, crit: 500ms }`".to_string()));
        }
        Ok(LogLatencySpec {
            source,
            extract,
            since: raw.since,
            levels,
            written,
        })
    }
}

impl Extract {
    /// Lines worth reading: those holding the format's literal (all for a last field).
    fn matcher(&self) -> Option<Matcher> {
        let literal = match self {
            Extract::Regex(regex, _, _) => return Matcher::new(regex.as_str(), true).ok(),
            Extract::Format(LatencyFormat::Application) => "Performance:",
            Extract::Format(LatencyFormat::Postgresql) => "duration: ",
            Extract::Format(LatencyFormat::Nginx | LatencyFormat::Apache) => return None,
        };
        Matcher::new(literal, false).ok()
    }

    /// The duration in `line`, in milliseconds.
    fn millis(&self, line: &[u8]) -> Option<f64> {
        let (text, unit) = match self {
            Extract::Regex(regex, group, unit) => {
                (regex.captures(line)?.name(group)?.as_bytes(), *unit)
            }
            Extract::Format(LatencyFormat::Application) => {
                let text = String::from_utf8_lossy(line);
                let ms = crate::logs::summary::performance(&text)?.1;
                return (ms.is_finite() && ms >= 0.0).then_some(ms);
            }
            Extract::Format(LatencyFormat::Postgresql) => {
                let rest = after(line, b"duration: ")?;
                (number_before(rest, b" ms")?, 1.0)
            }
            Extract::Format(format) => {
                let line = line.trim_ascii_end();
                let start = line
                    .iter()
                    .rposition(|c| c.is_ascii_whitespace())
                    .map_or(0, |i| i + 1);
                let unit = if *format == LatencyFormat::Nginx {
                    1000.0
                } else {
                    0.001
                };
                (&line[start..], unit)
            }
        };
        let value: f64 = std::str::from_utf8(text).ok()?.trim().parse().ok()?;
        (value.is_finite() && value >= 0.0).then_some(value * unit)
    }
}

/// What follows the first `needle` in `line`.
fn after<'a>(line: &'a [u8], needle: &[u8]) -> Option<&'a [u8]> {
    let at = memchr::memmem::find(line, needle)?;
    Some(&line[at + needle.len()..])
}

/// The number at the start of `text` when `unit` follows it directly.
fn number_before<'a>(text: &'a [u8], unit: &[u8]) -> Option<&'a [u8]> {
    let end = text
        .iter()
        .position(|c| !(c.is_ascii_digit() || *c == b'.'))
        .unwrap_or(text.len());
    (end > 0 && text[end..].starts_with(unit)).then_some(&text[..end])
}

pub struct LogLatencyCheck {
    pub spec: LogLatencySpec,
}

impl Probe for LogLatencyCheck {
    fn kind(&self) -> &'static str {
        "log_latency"
    }

    fn run<'a>(&'a self, env: &'a Env) -> BoxFuture<'a, Outcome> {
        let spec = self.spec.clone();
        let env = env.clone();
        crate::model::blocking(move || measure(&spec, &env))
    }
}

/// The statistics of a set of samples (milliseconds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub samples: u64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub mean: f64,
    pub max: f64,
}

/// Nearest-rank percentiles, mean and max; `None` without a sample.
pub fn stats(samples: &mut [f64]) -> Option<Stats> {
    let n = samples.len();
    if n == 0 {
        return None;
    }
    samples.sort_unstable_by(f64::total_cmp);
    let rank = |p| crate::logs::summary::nearest_rank(samples, p);
    Some(Stats {
        samples: n as u64,
        p50: rank(50),
        p90: rank(90),
        p95: rank(95),
        p99: rank(99),
        mean: samples.iter().sum::<f64>() / n as f64,
        max: samples[n - 1],
    })
}

impl Stats {
    fn get(&self, name: &str) -> f64 {
        match name {
            "p50" => self.p50,
            "p90" => self.p90,
            "p95" => self.p95,
            "p99" => self.p99,
            "mean" => self.mean,
            _ => self.max,
        }
    }
}

/// `420 ms`, `1.3 s`: milliseconds to three significant places at most.
fn shown(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", trim(crate::model::round(ms / 1000.0, 2)))
    } else {
        format!("{} ms", trim(crate::model::round(ms, 1)))
    }
}

fn measure(spec: &LogLatencySpec, env: &Env) -> Outcome {
    let matcher = spec.extract.matcher();
    let mut samples = Vec::new();
    let read = read(
        &spec.source,
        matcher.as_ref(),
        spec.since,
        env,
        &mut |line| {
            samples.extend(spec.extract.millis(line));
        },
    );
    if let Err(outcome) = read {
        return *outcome;
    }
    let source = spec.source.shown();
    let Some(stats) = stats(&mut samples) else {
        return Outcome::unknown(format!(
            "no duration found in {source}{}: check `format`/`regex` against its lines",
            window(spec.since)
        ));
    };
    let mut status = Status::Ok;
    let mut parts = Vec::new();
    for (name, levels) in &spec.levels {
        let value = stats.get(name);
        let secs = |d: Option<Duration>| d.map(|d| d.0.as_secs_f64() * 1000.0);
        let graded = Levels {
            warn: secs(levels.warn),
            crit: secs(levels.crit),
            below: false,
        };
        let (this, crossed) = grade_by(value, graded);
        status = status.worst(this);
        let note = crossed.map_or_else(String::new, |c| {
            let level = match c.which {
                Which::Warn => levels.warn,
                Which::Crit => levels.crit,
            };
            let level = humantime::format_duration(level.map(|l| l.0).unwrap_or_default());
            format!(" ({})", c.describe(level))
        });
        parts.push(format!("{name} {}{note}", shown(value)));
    }
    let message = format!(
        "{} over {} {} in {source}{}",
        parts.join(", "),
        stats.samples,
        if stats.samples == 1 {
            "sample"
        } else {
            "samples"
        },
        window(spec.since)
    );
    let round = |ms: f64| crate::model::round(ms, 3);
    let data = Data::LogLatency {
        source,
        samples: stats.samples,
        p50_ms: round(stats.p50),
        p90_ms: round(stats.p90),
        p95_ms: round(stats.p95),
        p99_ms: round(stats.p99),
        mean_ms: round(stats.mean),
        max_ms: round(stats.max),
    };
    Outcome::new(status, message, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_formats_read_their_durations() {
        let ms = |format, line: &str| Extract::Format(format).millis(line.as_bytes());
        use LatencyFormat::*;
        assert_eq!(
            ms(
                Application,
                "2025-01-15 10:00:00,1 - app - INFO - Performance: upload took 12.5ms"
            ),
            Some(12.5)
        );
        assert_eq!(ms(Application, "Performance: upload took ms"), None);
        assert_eq!(
            ms(
                Postgresql,
                "2025-01-15 10:00:00.123 UTC [7] LOG:  duration: 250.125 ms  statement: SELECT 1"
            ),
            Some(250.125)
        );
        assert_eq!(
            ms(
                Nginx,
                "1.2.3.4 - - [15/Jan/2025:10:00:00 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"curl\" 0.250\n"
            ),
            Some(250.0)
        );
        assert_eq!(
            ms(
                Nginx,
                "1.2.3.4 - - [15/Jan/2025:10:00:00 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"curl\""
            ),
            None
        );
        assert_eq!(ms(Apache, "x \"GET / HTTP/1.1\" 200 5 1500"), Some(1.5));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples: Vec<f64> = (1..=20).map(f64::from).rev().collect();
        let s = stats(&mut samples).unwrap();
        assert_eq!(
            (s.p50, s.p90, s.p95, s.p99, s.max),
            (10.0, 18.0, 19.0, 20.0, 20.0)
        );
        assert_eq!(s.mean, 10.5);
        assert_eq!(stats(&mut []), None);
    }
}
