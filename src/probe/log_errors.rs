//! `log_errors`: no more than N lines at or above a level in the last DURATION of a log
//! file, or no more than a rate (seed 001: error rate > 1 % warning, > 5 % critical).
//! Lines without a time of their own (tracebacks) belong to the line before.

use super::threshold::{Levels, grade, note, trim};
use super::{Env, Probe};
use crate::model::{BoxFuture, Data, Outcome, Status};
use crate::values::{Duration, Level, Text};
use serde::{Deserialize, Deserializer, Serialize};
use std::io::BufRead;

#[derive(Clone, Debug, Serialize)]
pub struct LogErrorsSpec {
    pub path: Text,
    /// Lines at this level or above count (default ERROR).
    pub level: Level,
    /// Only lines from this far back (default: the whole file).
    pub since: Option<Duration>,
    /// How the count is judged.
    pub limit: Limit,
    /// How lines are read (default: auto-detected), as a log set's `format:`.
    pub format: crate::logs::format::LineFormat,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub enum Limit {
    /// More than this many lines is critical.
    Max(u64),
    /// Counted lines as a percentage of all levelled lines in the window.
    Rate(Levels),
    /// The count graded against levels.
    Count(Levels),
}

impl<'de> Deserialize<'de> for LogErrorsSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            path: Text,
            level: Option<Level>,
            since: Option<Duration>,
            #[serde(default, deserialize_with = "crate::values::whole_opt")]
            max: Option<u64>,
            warn: Option<Limitless>,
            crit: Option<Limitless>,
            #[serde(default)]
            format: crate::logs::format::LineFormat,
        }
        /// A count (`10`) or a rate (`"1%"`).
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Limitless {
            Number(f64),
            Text(String),
        }
        let custom = |m: String| <D::Error as serde::de::Error>::custom(m);
        let raw = Raw::deserialize(deserializer)?;
        let read = |l: Option<Limitless>| -> Result<Option<(f64, bool)>, D::Error> {
            Ok(match l {
                None => None,
                Some(Limitless::Number(n)) => Some((n, false)),
                Some(Limitless::Text(t)) => {
                    // `warn: "{{ error_warn }}"`: substituted before it is read.
                    let t = Text::from_template(&t)
                        .map_err(|e| custom(e.to_string()))?
                        .as_str()
                        .to_string();
                    let percent = t.trim().ends_with('%');
                    let n: f64 = t.trim().trim_end_matches('%').trim().parse().map_err(|_| {
                        custom(format!(
                            "{t:?} is not a count or a rate (write 10 or \"1%\")"
                        ))
                    })?;
                    Some((n, percent))
                }
            })
        };
        let (warn, crit) = (read(raw.warn)?, read(raw.crit)?);
        let limit = match (raw.max, warn, crit) {
            (Some(max), None, None) => Limit::Max(max),
            (None, None, None) => Limit::Max(0),
            (Some(_), _, _) => {
                return Err(custom("give `max`, or `warn`/`crit`, not both".to_string()));
            }
            (None, w, c) => {
                let rates: Vec<bool> = [w, c].iter().flatten().map(|(_, p)| *p).collect();
                if rates.iter().any(|p| *p) != rates.iter().all(|p| *p) {
                    return Err(custom(
                        "`warn` and `crit` must both be rates (\"1%\") or both counts".to_string(),
                    ));
                }
                let levels = super::threshold::levels_from(w.map(|x| x.0), c.map(|x| x.0), false)
                    .map_err(|e| custom(e.to_string()))?;
                if rates.iter().any(|p| *p) {
                    Limit::Rate(levels)
                } else {
                    Limit::Count(levels)
                }
            }
        };
        Ok(LogErrorsSpec {
            path: raw.path,
            level: raw.level.unwrap_or(Level::Error),
            since: raw.since,
            limit,
            format: raw.format,
        })
    }
}

pub struct LogErrorsCheck {
    pub spec: LogErrorsSpec,
}

impl Probe for LogErrorsCheck {
    fn kind(&self) -> &'static str {
        "log_errors"
    }

    fn run<'a>(&'a self, ctx: &'a Env) -> BoxFuture<'a, Outcome> {
        let spec = self.spec.clone();
        let now = ctx.clock.now();
        crate::model::blocking(move || scan(&spec, now))
    }
}

fn scan(spec: &LogErrorsSpec, now: jiff::Timestamp) -> Outcome {
    let shown = spec.path.shown();
    let file = match std::fs::File::open(spec.path.as_str()) {
        Ok(file) => file,
        Err(e) => return Outcome::unknown(format!("cannot read {shown}: {e}")),
    };
    let cutoff = spec.since.and_then(|since| {
        now.checked_sub(jiff::SignedDuration::try_from(since.0).ok()?)
            .ok()
    });
    let zone = jiff::tz::TimeZone::system();
    let (mut entries, mut matched) = (0u64, 0u64);
    // Every line and every line with a level, window or not: none with a level means the
    // file is in a format the scanner does not know, and a count of 0 would be a false ok.
    let (mut all, mut levelled) = (0u64, 0u64);
    let mut in_window = cutoff.is_none();
    let mut reader = std::io::BufReader::new(file);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Outcome::unknown(format!("cannot read {shown}: {e}")),
        }
        let text = String::from_utf8_lossy(&buf);
        let level = spec.format.level(&text);
        all += 1;
        levelled += u64::from(level.is_some());
        if let (Some(cutoff), Some(at)) = (cutoff, spec.format.time(&text, &zone)) {
            in_window = at >= cutoff;
        }
        if !in_window {
            continue;
        }
        if let Some(level) = level {
            entries += 1;
            if level >= spec.level {
                matched += 1;
            }
        }
    }
    if let Some(why) = spec.format.unrecognised(shown, all, levelled) {
        return Outcome::unknown(why.replace("set `format:`", "set the step's `format:`"));
    }
    let rate = if entries == 0 {
        0.0
    } else {
        crate::model::round(matched as f64 * 100.0 / entries as f64, 2)
    };
    let window = spec
        .since
        .map(|s| format!(" in the last {}", humantime::format_duration(s.0)))
        .unwrap_or_default();
    let level = spec.level.name();
    let data = Data::LogErrors {
        path: shown.to_string(),
        lines: entries,
        matched,
        rate_percent: rate,
    };
    let (status, message) = match spec.limit {
        Limit::Max(max) => {
            let status = if matched > max {
                Status::Critical
            } else {
                Status::Ok
            };
            let over = if matched > max {
                format!(" (> max {max})")
            } else {
                String::new()
            };
            (
                status,
                format!("{matched} {level}+ lines of {entries}{window}{over}"),
            )
        }
        Limit::Count(levels) => {
            let (status, crossed) = grade(matched as f64, levels, "");
            (
                status,
                format!(
                    "{matched} {level}+ lines of {entries}{window}{}",
                    note(crossed)
                ),
            )
        }
        Limit::Rate(levels) => {
            let (status, crossed) = grade(rate, levels, "%");
            (
                status,
                format!(
                    "{level}+ rate {}% ({matched} of {entries} lines){window}{}",
                    trim(rate),
                    note(crossed)
                ),
            )
        }
    };
    Outcome::new(status, message, data)
}
