//! `command`: run a program (no shell unless `shell: true`) with a timeout that kills its
//! whole process group; judge the exit code, optionally the output, and optionally grade
//! a number read from stdout (`value: { warn: 100, crit: 1000 }`, seed 001's queue length).

use super::http::Pattern;
use super::threshold::{Levels, grade, note, trim};
use super::{Env, Probe};
use crate::model::{BoxFuture, Data, Outcome, Status};
use crate::process::Keep;
use crate::values::{Duration, Text};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Instant;

/// The most of each of stdout and stderr kept; the rest is read and dropped.
const KEEP: usize = 64 * 1024;
/// After the command exits, how long its output may take to close (a background child
/// that inherited the pipes keeps them open).
const DRAIN: std::time::Duration = std::time::Duration::from_millis(500);

/// A command that cannot be set up, run, or read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Template(#[from] crate::values::text::Error),
    #[error("cannot split {0:?} into words: check its quotes")]
    Split(String),
    #[error(transparent)]
    Process(#[from] crate::process::Error),
    #[error("cannot run `{program}`: directory {dir} does not exist")]
    NoDirectory { program: String, dir: String },
    #[error("stdout {seen:?} does not match /{pattern}/")]
    NoMatch { seen: String, pattern: String },
    #[error("no number in stdout {0:?}")]
    NoNumber(String),
    #[error("{0:?} (from stdout) is not a number")]
    NotANumber(String),
}

#[derive(Clone, Debug, Serialize)]
pub struct CommandSpec {
    /// The words to run: `run` split as a POSIX shell would, or `argv` as given.
    pub argv: Vec<Text>,
    /// How to show the command (`run` as written, secrets masked).
    pub shown: String,
    pub shell: bool,
    pub env: BTreeMap<String, Text>,
    pub dir: Option<Text>,
    pub timeout: Option<Duration>,
    pub exit: Vec<i32>,
    pub stdout_contains: Option<Text>,
    pub stdout_regex: Option<Pattern>,
    pub stderr_contains: Option<Text>,
    pub value: Option<ValueSpec>,
}

/// A number read from stdout: the first number, or the first capture group of `pattern`.
#[derive(Clone, Debug, Serialize)]
pub struct ValueSpec {
    pub pattern: Option<Pattern>,
    pub levels: Levels,
}

impl<'de> Deserialize<'de> for ValueSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            pattern: Option<Pattern>,
            warn: Option<super::threshold::Number>,
            crit: Option<super::threshold::Number>,
            #[serde(default)]
            below: bool,
        }
        let raw = Raw::deserialize(deserializer)?;
        let levels = super::threshold::levels_of(raw.warn, raw.crit, raw.below)
            .map_err(serde::de::Error::custom)?;
        Ok(ValueSpec {
            pattern: raw.pattern,
            levels,
        })
    }
}

impl<'de> Deserialize<'de> for CommandSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Codes {
            One(crate::values::WholeNumber<i32>),
            Many(Vec<crate::values::WholeNumber<i32>>),
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            /// Kept as written: split into words first, then each word substituted.
            run: Option<String>,
            argv: Option<Vec<Text>>,
            #[serde(default)]
            shell: bool,
            #[serde(default)]
            env: BTreeMap<String, Text>,
            dir: Option<Text>,
            timeout: Option<Duration>,
            exit: Option<Codes>,
            stdout_contains: Option<Text>,
            stdout_regex: Option<Pattern>,
            stderr_contains: Option<Text>,
            value: Option<ValueSpec>,
        }
        let raw = Raw::deserialize(deserializer)?;
        let custom = |m: &dyn std::fmt::Display| <D::Error as serde::de::Error>::custom(m);
        // `run: "{{ var }}"` whose value is empty loads (a `when:` may skip the step; the
        // runbook's validation refuses it without one); any other empty command does not.
        let from_variable = !raw.shell
            && raw
                .run
                .as_deref()
                .is_some_and(crate::values::text::is_one_reference);
        let (argv, shown) = match (raw.run, raw.argv, raw.shell) {
            (Some(run), None, true) => {
                let run = Text::from_shell_template(&run).map_err(|e| custom(&e))?;
                let shown = run.shown().to_string();
                (vec![Text::plain("/bin/sh"), Text::plain("-c"), run], shown)
            }
            (Some(run), None, false) => split_run(&run).map_err(|e| custom(&e))?,
            (None, Some(argv), false) => {
                let shown = argv
                    .iter()
                    .map(|a| a.shown().to_string())
                    .collect::<Vec<_>>()
                    .join(" ");
                (argv, shown)
            }
            (None, Some(_), true) => {
                return Err(custom(&"`shell: true` needs `run`, not `argv`"));
            }
            (Some(_), Some(_), _) => {
                return Err(custom(&"give `run` or `argv`, not both"));
            }
            (None, None, _) => {
                return Err(custom(&"give the command as `run` or `argv`"));
            }
        };
        if argv.is_empty() && !from_variable {
            return Err(custom(&"the command is empty"));
        }
        Ok(CommandSpec {
            argv,
            shown,
            shell: raw.shell,
            env: raw.env,
            dir: raw.dir,
            timeout: raw.timeout,
            exit: match raw.exit {
                None => vec![0],
                Some(Codes::One(c)) => vec![c.0],
                Some(Codes::Many(c)) => c.into_iter().map(|c| c.0).collect(),
            },
            stdout_contains: raw.stdout_contains,
            stdout_regex: raw.stdout_regex,
            stderr_contains: raw.stderr_contains,
            value: raw.value,
        })
    }
}

/// `run:` as words: split as a POSIX shell would, THEN each word substituted, so a
/// `{{ var }}` or `${VAR}` value is always exactly one argument whatever it holds
/// (blanks, quotes). A `run:` that is nothing but one reference is a command line kept
/// in a variable: its value is split into words.
fn split_run(run: &str) -> Result<(Vec<Text>, String), Error> {
    if crate::values::text::is_one_reference(run) {
        let whole = Text::from_template(run)?;
        let words = crate::process::split(whole.as_str())
            .ok_or_else(|| Error::Split(whole.shown().to_string()))?;
        // Split the shown form the same way so secrets stay masked per word.
        let shown_words = crate::process::split(whole.shown()).unwrap_or_default();
        let argv = words
            .into_iter()
            .enumerate()
            .map(|(i, w)| match shown_words.get(i) {
                Some(s) if *s != w => Text::masked(w, s),
                _ => Text::plain(w),
            })
            .collect();
        return Ok((argv, whole.shown().to_string()));
    }
    let argv = crate::values::text::split_words(run)?
        .iter()
        .map(|word| Text::from_template(word))
        .collect::<Result<Vec<_>, _>>()?;
    let shown = crate::values::text::join_shown(argv.iter().map(Text::shown));
    Ok((argv, shown))
}

pub struct CommandCheck {
    pub spec: CommandSpec,
    /// Used when the spec gives no timeout (the step's or the runbook's default).
    pub default_timeout: std::time::Duration,
}

/// What a finished (or killed) command left.
struct Finished {
    code: Option<i32>,
    timed_out: bool,
    stdout: String,
    stderr: String,
}

impl Probe for CommandCheck {
    fn kind(&self) -> &'static str {
        "command"
    }

    fn run<'a>(&'a self, _ctx: &'a Env) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let spec = &self.spec;
            let timeout = spec.timeout.map_or(self.default_timeout, |t| t.0);
            if spec.argv.is_empty() {
                let message =
                    "nothing was run: the command is empty (`run` is a variable with no value)";
                return Outcome::new(Status::Critical, message, Data::None);
            }
            let started = Instant::now();
            let mut finished = match self.execute(timeout).await {
                Ok(finished) => finished,
                Err(e) => return Outcome::unknown(e.to_string()),
            };
            // Masked whole, before any line is picked or any tail cut: a secret split
            // across lines or cut in half would no longer be found.
            crate::redact::mask_in_place(&mut finished.stdout);
            crate::redact::mask_in_place(&mut finished.stderr);
            let took = started.elapsed();
            let (status, message, value) = judge(spec, &finished, timeout, took);
            let data = Data::Command {
                command: spec.shown.clone(),
                exit_code: finished.code,
                stdout: tail(&finished.stdout),
                stderr: tail(&finished.stderr),
                value,
            };
            Outcome::new(status, message, data)
        })
    }
}

fn judge(
    spec: &CommandSpec,
    finished: &Finished,
    timeout: std::time::Duration,
    took: std::time::Duration,
) -> (Status, String, Option<f64>) {
    let last_line = |text: &str| {
        text.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| format!(": {}", l.trim()))
            .unwrap_or_default()
    };
    if finished.timed_out {
        let message = format!(
            "timed out after {}; its process group was killed",
            humantime::format_duration(timeout)
        );
        return (Status::Critical, message, None);
    }
    let Some(code) = finished.code else {
        return (
            Status::Critical,
            format!("killed by a signal{}", last_line(&finished.stderr)),
            None,
        );
    };
    if !spec.exit.contains(&code) {
        let wanted = spec
            .exit
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(" or ");
        let why = if finished.stderr.trim().is_empty() {
            last_line(&finished.stdout)
        } else {
            last_line(&finished.stderr)
        };
        return (
            Status::Critical,
            format!("exit {code}, expected {wanted}{why}"),
            None,
        );
    }
    if let Some(needle) = &spec.stdout_contains
        && !finished.stdout.contains(needle.as_str())
    {
        let message = format!("stdout does not contain {:?}", needle.shown());
        return (Status::Critical, message, None);
    }
    if let Some(pattern) = &spec.stdout_regex
        && !pattern.0.is_match(&finished.stdout)
    {
        let message = format!("stdout does not match /{}/", pattern.0.as_str());
        return (Status::Critical, message, None);
    }
    if let Some(needle) = &spec.stderr_contains
        && !finished.stderr.contains(needle.as_str())
    {
        let message = format!("stderr does not contain {:?}", needle.shown());
        return (Status::Critical, message, None);
    }
    let Some(value) = &spec.value else {
        let message = format!("exit {code} in {}", super::latency::seconds(took));
        return (Status::Ok, message, None);
    };
    match read_number(&finished.stdout, value.pattern.as_ref()) {
        // Nothing to grade is not a crossed level: the reading is unknown.
        Err(why) => (Status::Unknown, why.to_string(), None),
        Ok(number) => {
            let (status, crossed) = grade(number, value.levels, "");
            (
                status,
                format!("value {}{}", trim(number), note(crossed)),
                Some(number),
            )
        }
    }
}

/// The first number in `text`, or the first capture group of `pattern`.
fn read_number(text: &str, pattern: Option<&Pattern>) -> Result<f64, Error> {
    static NUMBER: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let found = match pattern {
        Some(p) => {
            p.0.captures(text)
                .and_then(|c| c.get(1).or_else(|| c.get(0)))
                .map(|m| m.as_str().to_string())
        }
        // A number standing on its own: not the tail of a word (`worker-3`, `v2`), a
        // minus sign only where the number starts, thousands separated by commas read
        // whole (`1,234`); a unit may follow (`350ms`).
        None => NUMBER
            .get_or_init(|| {
                regex::Regex::new(
                    r"(?:^|[^\w.-])(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?)",
                )
                .ok()
            })
            .as_ref()
            .and_then(|re| re.captures(text))
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().replace(',', "")),
    };
    let seen: String = text.trim().chars().take(60).collect();
    let Some(found) = found else {
        return Err(match pattern {
            Some(p) => Error::NoMatch {
                seen,
                pattern: p.0.as_str().to_string(),
            },
            None => Error::NoNumber(seen),
        });
    };
    // NaN and infinities cross no level: not a reading to grade.
    found
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| Error::NotANumber(found.clone()))
}

/// The last lines of an output, for the report.
fn tail(text: &str) -> String {
    const LINES: usize = 20;
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(LINES);
    lines[from..].join("\n")
}

impl CommandCheck {
    /// Run the command in a blocking thread (the one runner, `crate::process`), its
    /// process group killed at `timeout`.
    async fn execute(&self, timeout: std::time::Duration) -> Result<Finished, Error> {
        let spec = &self.spec;
        let mut command = std::process::Command::new(spec.argv[0].as_str());
        command
            .args(spec.argv[1..].iter().map(Text::as_str))
            .stdin(Stdio::null());
        for (key, value) in &spec.env {
            command.env(key, value.as_str());
        }
        if let Some(dir) = &spec.dir {
            command.current_dir(dir.as_str());
        }
        let program = spec.argv[0].shown().to_string();
        let shown = spec.shown.clone();
        let ran = tokio::task::spawn_blocking(move || {
            crate::process::Run::new(command, &program)
                .timeout(timeout)
                .drain(DRAIN)
                .stdout(crate::process::Stdout::Capture(Keep::Head(KEEP)))
                .stderr(Keep::Head(KEEP))
                .run()
        })
        .await;
        let finished = match ran {
            Ok(Ok(finished)) => finished,
            Ok(Err(crate::process::Error::Spawn { shown, error })) => {
                return Err(match &spec.dir {
                    Some(dir) if !std::path::Path::new(dir.as_str()).is_dir() => {
                        Error::NoDirectory {
                            program: shown,
                            dir: dir.shown().to_string(),
                        }
                    }
                    _ => Error::Process(crate::process::Error::Spawn { shown, error }),
                });
            }
            Ok(Err(crate::process::Error::Wait { error, .. })) => {
                return Err(Error::Process(crate::process::Error::Wait { shown, error }));
            }
            Err(e) => {
                let error = std::io::Error::other(e);
                return Err(Error::Process(crate::process::Error::Wait { shown, error }));
            }
        };
        Ok(Finished {
            code: finished.code,
            timed_out: finished.timed_out,
            stdout: String::from_utf8_lossy(&finished.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&finished.stderr).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_from_stdout() {
        assert_eq!(read_number("queue length: 150\n", None).unwrap(), 150.0);
        assert_eq!(read_number("-2.5 degrees", None).unwrap(), -2.5);
        let p = Pattern(regex::Regex::new(r"used_memory:(\d+)").unwrap());
        assert_eq!(
            read_number(
                "# Memory\nused_memory:1048576\nused_memory_human:1M",
                Some(&p)
            )
            .unwrap(),
            1_048_576.0
        );
        assert!(
            read_number("none here", None)
                .unwrap_err()
                .to_string()
                .contains("no number")
        );
    }

    #[test]
    fn the_first_number_stands_on_its_own() {
        let read = |t: &str| read_number(t, None).ok();
        assert_eq!(read("worker-3: 500 pending"), Some(500.0));
        assert_eq!(read("1,234 rows"), Some(1234.0));
        assert_eq!(read("took 350ms"), Some(350.0));
        assert_eq!(read("used_memory:1048576"), Some(1_048_576.0));
        assert_eq!(read("delta -5"), Some(-5.0));
        assert_eq!(read("v2 has 7 workers"), Some(7.0));
        assert_eq!(read("no digits"), None);
    }
}
