//! Scheduled maintenance (config `maintain:`): named schedules, each a runbook run under a
//! lock, with a state file of last runs, a Prometheus textfile, and the crontab lines or
//! systemd units that run them.

use crate::model::Report;
use crate::values::Duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintainConfig {
    /// Added to (or replacing) the built-in daily, weekly and monthly schedules.
    #[serde(deserialize_with = "crate::values::named_sets")]
    pub schedules: BTreeMap<String, Schedule>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// A runbook file, or a name in the runbook dirs or built in.
    pub runbook: String,
    /// How often it should run: later than this (plus an hour's grace) is overdue.
    #[serde(default)]
    pub every: Option<Duration>,
    /// When cron runs it (five fields).
    #[serde(default)]
    pub cron: Option<String>,
    /// When the systemd timer runs it (`OnCalendar=`).
    #[serde(default)]
    pub calendar: Option<String>,
    /// Runbook variables (`log_set`, `backup_set` for the shipped daily runbook).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

fn builtin(name: &str, days: u64, cron: &str, calendar: &str) -> Schedule {
    Schedule {
        runbook: name.to_string(),
        every: Some(Duration(std::time::Duration::from_secs(days * 86_400))),
        cron: Some(cron.to_string()),
        calendar: Some(calendar.to_string()),
        vars: BTreeMap::new(),
    }
}

impl MaintainConfig {
    /// The built-in schedules (the shipped daily, weekly and monthly runbooks, run at
    /// quiet hours), overridden and extended by config.
    pub fn schedules(&self) -> BTreeMap<String, Schedule> {
        let mut all = BTreeMap::from([
            (
                "daily".to_string(),
                builtin("daily", 1, "15 2 * * *", "*-*-* 02:15:00"),
            ),
            (
                "weekly".to_string(),
                builtin("weekly", 7, "30 3 * * 0", "Sun *-*-* 03:30:00"),
            ),
            (
                "monthly".to_string(),
                builtin("monthly", 31, "45 4 1 * *", "*-*-01 04:45:00"),
            ),
        ]);
        for (name, schedule) in &self.schedules {
            let mut schedule = schedule.clone();
            if let Some(default) = all.get(name) {
                schedule.every = schedule.every.or(default.every);
                schedule.cron = schedule.cron.or_else(|| default.cron.clone());
                schedule.calendar = schedule.calendar.or_else(|| default.calendar.clone());
            }
            all.insert(name.clone(), schedule);
        }
        all
    }
}

/// The last run of each schedule (`STATE_DIR/maintain.json`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct LastRun {
    pub started: Option<String>,
    pub ended: Option<String>,
    /// ok, warning, critical, unknown; `running` while it runs (or if it was killed).
    pub outcome: Option<String>,
    pub duration_ms: Option<u64>,
}

pub fn state_path(state_dir: &Path) -> PathBuf {
    state_dir.join("maintain.json")
}

pub fn load_state(state_dir: &Path) -> BTreeMap<String, LastRun> {
    crate::fsutil::read_state(&state_path(state_dir))
        .ok()
        .flatten()
        .and_then(|t| serde_json::from_slice(&t).ok())
        .unwrap_or_default()
}

/// Record `run` for `schedule` (temporary file, fsync, rename). Two schedules may finish
/// at once in two processes, so the file is re-read and rewritten under its own lock.
pub fn record(state_dir: &Path, schedule: &str, run: LastRun) -> Result<(), String> {
    let _turn = crate::lock::Lock::wait(&state_dir.join("maintain.json.lock"))?;
    let mut state = load_state(state_dir);
    state.insert(schedule.to_string(), run);
    let text = serde_json::to_string_pretty(&state).unwrap_or_default();
    crate::fsutil::write_state(&state_path(state_dir), text.as_bytes()).map_err(String::from)
}

/// Whether a schedule is overdue at `now`: never run, or last started longer ago than
/// `every` plus an hour's grace.
pub fn overdue(schedule: &Schedule, last: Option<&LastRun>, now: jiff::Timestamp) -> bool {
    let Some(every) = schedule.every else {
        return false;
    };
    let Some(started) = last
        .and_then(|l| l.started.as_deref())
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
    else {
        return true;
    };
    let grace = 3600;
    now.as_second() - started.as_second() > every.0.as_secs() as i64 + grace
}

/// A Prometheus label value, escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The textfile for node_exporter: last run time, duration and status of the schedule,
/// and the status of each step (0 ok, 1 warning, 2 critical, 3 unknown, -1 skipped).
pub fn metrics(schedule: &str, report: &Report, ended: jiff::Timestamp, took: f64) -> String {
    let s = label(schedule);
    let code = |status: crate::model::Status| match status {
        crate::model::Status::Skipped => -1,
        other => i32::from(other.exit_code()),
    };
    let mut out = String::new();
    out.push_str(
        "# HELP opsbook_maintain_last_run_timestamp_seconds When the schedule last finished.\n",
    );
    out.push_str("# TYPE opsbook_maintain_last_run_timestamp_seconds gauge\n");
    out.push_str(&format!(
        "opsbook_maintain_last_run_timestamp_seconds{{schedule=\"{s}\"}} {}\n",
        ended.as_second()
    ));
    out.push_str("# HELP opsbook_maintain_last_run_duration_seconds How long the last run took.\n");
    out.push_str("# TYPE opsbook_maintain_last_run_duration_seconds gauge\n");
    out.push_str(&format!(
        "opsbook_maintain_last_run_duration_seconds{{schedule=\"{s}\"}} {took:.3}\n"
    ));
    out.push_str("# HELP opsbook_maintain_last_run_status The last run's worst status: 0 ok, 1 warning, 2 critical, 3 unknown.\n");
    out.push_str("# TYPE opsbook_maintain_last_run_status gauge\n");
    out.push_str(&format!(
        "opsbook_maintain_last_run_status{{schedule=\"{s}\"}} {}\n",
        code(report.status())
    ));
    out.push_str("# HELP opsbook_maintain_step_status Each step's status in the last run: 0 ok, 1 warning, 2 critical, 3 unknown, -1 skipped or to do.\n");
    out.push_str("# TYPE opsbook_maintain_step_status gauge\n");
    for result in &report.results {
        out.push_str(&format!(
            "opsbook_maintain_step_status{{schedule=\"{s}\",step=\"{}\"}} {}\n",
            label(&result.name),
            code(result.status)
        ));
    }
    out
}

/// Quote a word for a shell command line (crontab, `ExecStart=`), when it needs it.
fn quoted(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,+@".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// How a scheduled job runs opsbook, so it reads the configuration the operator used:
/// this binary, from this directory, with the environment and config files named.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub binary: PathBuf,
    /// The working directory (relative log and runbook dirs resolve against it).
    pub dir: PathBuf,
    /// `--env`: the environment asked for, or whose file was read; `None` runs on the
    /// built-in development defaults, as the emitting command did.
    pub env: Option<String>,
    /// `--config`, absolute.
    pub config: Option<PathBuf>,
    /// Where `<env>.yaml` was found (`OPSBOOK_CONFIG_DIR`), absolute.
    pub config_dir: Option<PathBuf>,
}

/// The command that runs `schedule`, as words for a shell.
pub fn command(how: &Invocation, schedule: &str) -> String {
    let mut words = vec![quoted(&how.binary.to_string_lossy())];
    if let Some(env) = &how.env {
        words.push("--env".to_string());
        words.push(quoted(env));
    }
    if let Some(config) = &how.config {
        words.push("--config".to_string());
        words.push(quoted(&config.to_string_lossy()));
    }
    words.extend(["maintain", "run"].map(String::from));
    words.push(quoted(schedule));
    words.join(" ")
}

/// Crontab lines, one per schedule with a `cron` time: `cd DIR &&`, the config dir in
/// the environment, then the command. `%` is a newline to cron, so it is escaped.
pub fn crontab(schedules: &BTreeMap<String, Schedule>, how: &Invocation) -> Result<String, String> {
    let mut out =
        String::from("# opsbook maintenance (from `opsbook maintain schedule --emit cron`)\n");
    let mut prefix = format!("cd {} && ", quoted(&how.dir.to_string_lossy()));
    if let Some(dir) = &how.config_dir {
        prefix.push_str(&format!(
            "OPSBOOK_CONFIG_DIR={} ",
            quoted(&dir.to_string_lossy())
        ));
    }
    for (name, schedule) in schedules {
        let Some(cron) = &schedule.cron else {
            return Err(format!(
                "schedule {name:?} has no `cron` time: add one under maintain.schedules.{name}"
            ));
        };
        if cron.split_whitespace().count() != 5 {
            return Err(format!(
                "maintain.schedules.{name}.cron: {cron:?} is not five fields"
            ));
        }
        let line = format!("{prefix}{}", command(how, name)).replace('%', "\\%");
        out.push_str(&format!("{cron} {line}\n"));
    }
    Ok(out)
}

/// A value for a systemd `Environment=` line: `%` is a specifier there, so it is
/// doubled; quotes keep spaces.
fn systemd_value(text: &str) -> String {
    let text = text.replace('%', "%%");
    if text
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        text
    }
}

/// The systemd units: `(file name, contents)`, a `.service` and a `.timer` per schedule.
pub fn systemd(
    schedules: &BTreeMap<String, Schedule>,
    how: &Invocation,
) -> Result<Vec<(String, String)>, String> {
    let mut units = Vec::new();
    // WorkingDirectory= takes the path as it is (no quotes: systemd would keep them and
    // refuse the unit); only `%` is a specifier there.
    let mut setting = format!(
        "WorkingDirectory={}\n",
        how.dir.to_string_lossy().replace('%', "%%")
    );
    if let Some(dir) = &how.config_dir {
        setting.push_str(&format!(
            "Environment={}\n",
            systemd_value(&format!("OPSBOOK_CONFIG_DIR={}", dir.to_string_lossy()))
        ));
    }
    for (name, schedule) in schedules {
        let Some(calendar) = &schedule.calendar else {
            return Err(format!(
                "schedule {name:?} has no `calendar` time: add one under maintain.schedules.{name}"
            ));
        };
        let unit = format!("opsbook-maintain-{name}");
        units.push((
            format!("{unit}.service"),
            format!(
                "[Unit]\nDescription=opsbook {name} maintenance\nAfter=network-online.target\n\n[Service]\nType=oneshot\n{setting}ExecStart={}\n",
                command(how, name).replace('%', "%%")
            ),
        ));
        units.push((
            format!("{unit}.timer"),
            format!(
                "[Unit]\nDescription=Run opsbook {name} maintenance\n\n[Timer]\nOnCalendar={calendar}\nPersistent=true\nRandomizedDelaySec=5min\n\n[Install]\nWantedBy=timers.target\n"
            ),
        ));
    }
    Ok(units)
}

/// In a maintenance run every reading reports and none stops the run, so the actions
/// after it (rotate, archive, backup, prune) run whatever it said. A `backup` step is a
/// reading only with `max_age`/`max_drill_age`; otherwise it is the backup itself.
pub fn readings_never_stop(book: &mut crate::runbook::Runbook) {
    use crate::engine::registry::Item;
    let mark = |step: &mut crate::engine::registry::StepSpec| {
        if step.is_reading() {
            step.options.continue_on_failure = true;
        }
    };
    for item in &mut book.steps {
        match item {
            Item::Step(step) => mark(step),
            Item::Parallel { parallel } => parallel.iter_mut().for_each(mark),
        }
    }
}
