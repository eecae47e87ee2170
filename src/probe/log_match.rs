//! `log_match`: how many lines of a log (a `path`, a `glob`, or a log `set` with its
//! rotated and compressed history) match a literal (`contains`) or a `regex` in the last
//! `since`, graded by the count (`warn`/`crit`) or by the rate per minute
//! (`per_minute: { warn, crit }`); `below: true` where too few is the problem (a
//! processing rate that dropped to zero).

use super::threshold::{Levels, Number, grade, note, trim};
use super::{Env, Probe};
use crate::logs::scan::Scanned;
use crate::logs::search::Matcher;
use crate::logs::source::Source;
use crate::model::{BoxFuture, Data, Outcome};
use crate::values::{Duration, Invalid, Text};
use serde::{Deserialize, Serialize};

/// The step as written (kept to be shown back by `runbook show`).
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogMatchRaw {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<Text>,
    /// Every file the pattern matches, in name order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    glob: Option<Text>,
    /// A configured log set: its files with their rotated and compressed history.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::values::text::templated_opt"
    )]
    set: Option<String>,
    /// A literal the line contains.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::values::text::templated_opt"
    )]
    contains: Option<String>,
    /// A regular expression the line matches (`^` and `$` are the line's ends).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::values::text::templated_opt"
    )]
    regex: Option<String>,
    /// Only lines from this far back (their times as `log_errors` reads them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<Duration>,
    /// The count of matching lines above which (below, with `below`) the step warns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<NumberOrText>")]
    warn: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<NumberOrText>")]
    crit: Option<Number>,
    /// Fewer is worse: a count under `warn`/`crit` trips them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    below: bool,
    /// Grade matching lines per minute of `since` instead of their count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    per_minute: Option<Levels>,
}

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(try_from = "LogMatchRaw", into = "LogMatchRaw")]
pub struct LogMatchSpec {
    pub source: Source,
    /// The literal or regex, as written.
    pub pattern: String,
    pub regex: bool,
    pub since: Option<Duration>,
    pub grade: Grade,
    written: LogMatchRaw,
}

#[derive(Clone, Copy, Debug)]
pub enum Grade {
    Count(Levels),
    PerMinute(Levels),
}

/// The schema of a threshold number: plain, or quoted (from a `{{ var }}`).
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only its schema is used
enum NumberOrText {
    Number(f64),
    Text(String),
}

impl From<LogMatchSpec> for LogMatchRaw {
    fn from(spec: LogMatchSpec) -> Self {
        spec.written
    }
}

impl TryFrom<LogMatchRaw> for LogMatchSpec {
    type Error = Invalid;

    fn try_from(raw: LogMatchRaw) -> Result<Self, Invalid> {
        let written = raw.clone();
        let source = Source::one_of(raw.path, raw.glob, raw.set)?;
        let (pattern, regex) = match (raw.contains, raw.regex) {
            (Some(text), None) => (text, false),
            (None, Some(regex)) => (regex, true),
            (None, None) => {
                return Err(Invalid(
                    "give `contains: TEXT` or `regex: PATTERN`".to_string(),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(Invalid("give `contains` or `regex`, not both".to_string()));
            }
        };
        if pattern.is_empty() {
            return Err(Invalid(
                "the pattern is empty: every line would match".to_string(),
            ));
        }
        Matcher::new(&pattern, regex).map_err(|e| super::regex_error(&e.to_string()))?;
        let grade = match (raw.per_minute, raw.warn, raw.crit) {
            (Some(_), None, None) if raw.below => {
                return Err(Invalid(
                    "`below` goes inside `per_minute: { …, below: true }`".to_string(),
                ));
            }
            (Some(_), None, None) if raw.since.is_none() => {
                return Err(Invalid(
                    "`per_minute` needs `since`: the window the rate is taken over".to_string(),
                ));
            }
            (Some(levels), None, None) => Grade::PerMinute(levels),
            (Some(_), _, _) => {
                return Err(Invalid(
                    "grade by `warn`/`crit` (a count) or by `per_minute`, not both".to_string(),
                ));
            }
            (None, None, None) if raw.below => {
                return Err(Invalid("`below: true` needs `warn` or `crit`".to_string()));
            }
            // Without levels any matching line is critical.
            (None, None, None) => Grade::Count(Levels {
                warn: None,
                crit: Some(0.0),
                below: false,
            }),
            (None, warn, crit) => Grade::Count(
                super::threshold::levels_of(warn, crit, raw.below)
                    .map_err(|e| Invalid(e.to_string()))?,
            ),
        };
        Ok(LogMatchSpec {
            source,
            pattern,
            regex,
            since: raw.since,
            grade,
            written,
        })
    }
}

pub struct LogMatchCheck {
    pub spec: LogMatchSpec,
}

impl Probe for LogMatchCheck {
    fn kind(&self) -> &'static str {
        "log_match"
    }

    fn run<'a>(&'a self, env: &'a Env) -> BoxFuture<'a, Outcome> {
        let spec = self.spec.clone();
        let env = env.clone();
        crate::model::blocking(move || count(&spec, &env))
    }
}

fn count(spec: &LogMatchSpec, env: &Env) -> Outcome {
    let matcher = match Matcher::new(&spec.pattern, spec.regex) {
        Ok(matcher) => matcher,
        Err(e) => return Outcome::unknown(e.to_string()),
    };
    let scanned = match read(&spec.source, Some(&matcher), spec.since, env, &mut |_| {}) {
        Ok(scanned) => scanned,
        Err(outcome) => return *outcome,
    };
    let n = scanned.lines;
    let source = spec.source.shown();
    let what = format!(
        "{n} {} matching {:?} in {source}{}",
        if n == 1 { "line" } else { "lines" },
        spec.pattern,
        window(spec.since)
    );
    let (status, message, per_minute) = match spec.grade {
        Grade::Count(levels) => {
            let (status, crossed) = grade(n as f64, levels, "");
            (status, format!("{what}{}", note(crossed)), None)
        }
        Grade::PerMinute(levels) => {
            let minutes = spec.since.map_or(1.0, |s| s.0.as_secs_f64() / 60.0);
            let rate = crate::model::round(n as f64 / minutes.max(f64::MIN_POSITIVE), 2);
            let (status, crossed) = grade(rate, levels, "/min");
            let message = format!("{}/min ({what}){}", trim(rate), note(crossed));
            (status, message, Some(rate))
        }
    };
    let data = Data::LogMatch {
        source,
        matched: n,
        per_minute,
    };
    Outcome::new(status, message, data)
}

/// ` in the last 1h`, or nothing without a window.
pub(super) fn window(since: Option<Duration>) -> String {
    since
        .map(|s| format!(" in the last {}", humantime::format_duration(s.0)))
        .unwrap_or_default()
}

/// The lines of `source` that `matcher` matches (all without one) in the last `since`,
/// each handed to `each`. Unreadable input, or no line with a time when a window is
/// asked for, is the `unknown` outcome to report: never a count of 0.
pub(super) fn read(
    source: &Source,
    matcher: Option<&Matcher>,
    since: Option<Duration>,
    env: &Env,
    each: &mut dyn FnMut(&[u8]),
) -> Result<Scanned, Box<Outcome>> {
    let shown = source.shown();
    let inputs = source
        .inputs(&env.log_sets)
        .map_err(|e| Box::new(Outcome::unknown(e.to_string())))?;
    let cutoff = match since {
        None => None,
        Some(since) => {
            let back = jiff::SignedDuration::try_from(since.0)
                .ok()
                .and_then(|d| env.clock.now().checked_sub(d).ok());
            // A window longer than the calendar reaches back to its start: everything.
            Some(back.unwrap_or(jiff::Timestamp::MIN))
        }
    };
    let scanned = crate::logs::scan::matching_lines(&inputs, matcher, cutoff, each)
        .map_err(|e| Box::new(Outcome::unknown(e.to_string())))?;
    if since.is_some() && !scanned.timed {
        return Err(Box::new(Outcome::unknown(format!(
            "no line of {shown} has a time opsbook can read, so none can be placed{}",
            window(since)
        ))));
    }
    Ok(scanned)
}
