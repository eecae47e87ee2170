//! The crontab lines and systemd units that run the schedules with the configuration
//! the operator used.

use super::{Error, Schedule};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Quote a word for a shell command line (crontab, `ExecStart=`, a message's rerun
/// command), when it needs it: `'...'`, with a `'` written `'\''`.
pub fn shell_word(word: &str) -> String {
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
    let mut words = vec![shell_word(&how.binary.to_string_lossy())];
    if let Some(env) = &how.env {
        words.push("--env".to_string());
        words.push(shell_word(env));
    }
    if let Some(config) = &how.config {
        words.push("--config".to_string());
        words.push(shell_word(&config.to_string_lossy()));
    }
    words.extend(["maintain", "run"].map(String::from));
    words.push(shell_word(schedule));
    words.join(" ")
}

/// Crontab lines, one per schedule with a `cron` time: `cd DIR &&`, the config dir in
/// the environment, then the command. `%` is a newline to cron, so it is escaped.
pub fn crontab(schedules: &BTreeMap<String, Schedule>, how: &Invocation) -> Result<String, Error> {
    let mut out =
        String::from("# opsbook maintenance (from `opsbook maintain schedule --emit cron`)\n");
    let mut prefix = format!("cd {} && ", shell_word(&how.dir.to_string_lossy()));
    if let Some(dir) = &how.config_dir {
        prefix.push_str(&format!(
            "OPSBOOK_CONFIG_DIR={} ",
            shell_word(&dir.to_string_lossy())
        ));
    }
    for (name, schedule) in schedules {
        let Some(cron) = &schedule.cron else {
            return Err(Error::NoCron { name: name.clone() });
        };
        if cron.split_whitespace().count() != 5 {
            return Err(Error::CronFields {
                name: name.clone(),
                cron: cron.clone(),
            });
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
) -> Result<Vec<(String, String)>, Error> {
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
            return Err(Error::NoCalendar { name: name.clone() });
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

/// Write `units` (from [`systemd`]) into `dir`, creating it, each file replaced atomically.
pub fn write_units(dir: &Path, units: &[(String, String)]) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|error| crate::fsutil::Error::Io {
        what: "cannot create",
        path: dir.to_path_buf(),
        error,
    })?;
    for (name, text) in units {
        crate::fsutil::write_atomically(&dir.join(name), text.as_bytes())?;
    }
    Ok(())
}
