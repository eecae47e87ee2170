//! A log set (config `logs.sets.NAME`): the files it names and how they rotate and archive.

use crate::values::{ByteSize, Duration, Text};
use serde::{Deserialize, Deserializer, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSet {
    /// Files or globs (`/var/log/app/*.log`).
    pub paths: Vec<Text>,
    /// Rotate once a file is bigger than this.
    pub size: Option<ByteSize>,
    /// Rotate once this long has passed since the last rotation: `daily`, `weekly`,
    /// `monthly`, or a duration.
    pub age: Option<Age>,
    /// Rotated files kept (default 5, seed 000).
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// Rotated files older than this are deleted whatever `keep` says.
    pub max_age: Option<Duration>,
    #[serde(default)]
    pub compress: Compression,
    /// Leave the newest rotated file uncompressed until the next rotation.
    #[serde(default)]
    pub delaycompress: bool,
    /// Name rotated files `app.log-20250115` instead of `app.log.1`.
    #[serde(default)]
    pub dateext: bool,
    /// A missing file or a glob matching nothing is not an error.
    #[serde(default)]
    pub missingok: bool,
    /// An empty file is not rotated.
    #[serde(default = "yes")]
    pub notifempty: bool,
    #[serde(default)]
    pub mode: RotateMode,
    /// Permissions of the fresh file in create mode (default: the old file's).
    pub create_mode: Option<crate::values::Mode>,
    /// Run after the set rotated (through `/bin/sh -c`), e.g. `systemctl reload app`.
    pub postrotate: Option<Text>,
    /// Or send a signal to the pid in `pid_file` so the writer reopens its log.
    pub signal: Option<Signal>,
    pub pid_file: Option<Text>,
    /// `logs archive`: files older than this go into one verified archive per run.
    pub archive_after: Option<Duration>,
    /// Where archives go (default: beside the files).
    pub archive_dir: Option<Text>,
    /// How lines are read by search, summary and tail (default: auto-detected).
    #[serde(default)]
    pub format: super::format::LineFormat,
}

fn default_keep() -> usize {
    5
}

fn yes() -> bool {
    true
}

/// How rotated files are compressed (config `compress`: gzip, the default, zstd or none).
pub use crate::codec::Compression;

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RotateMode {
    /// Rename the file, then create a fresh one; the writer must reopen it.
    #[default]
    Create,
    /// Copy the file, then truncate it in place (for writers that cannot reopen).
    Copytruncate,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Signal {
    Hup,
    Usr1,
    Usr2,
}

impl Signal {
    pub fn number(self) -> i32 {
        match self {
            Signal::Hup => libc::SIGHUP,
            Signal::Usr1 => libc::SIGUSR1,
            Signal::Usr2 => libc::SIGUSR2,
        }
    }
}

/// How often age-triggered rotation happens.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct Age(pub std::time::Duration);

impl<'de> Deserialize<'de> for Age {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let day = 86_400;
        let seconds = match text.trim() {
            "daily" => day,
            "weekly" => 7 * day,
            "monthly" => 30 * day,
            other => {
                return Duration::parse(other).map(|d| Age(d.0)).map_err(|e| {
                    serde::de::Error::custom(format!("{e}, or daily, weekly, monthly"))
                });
            }
        };
        Ok(Age(std::time::Duration::from_secs(seconds)))
    }
}

impl LogSet {
    /// A set of one file with every policy at its default.
    pub fn for_file(file: &Path) -> LogSet {
        LogSet {
            paths: vec![Text::plain(file.display().to_string())],
            size: None,
            age: None,
            keep: default_keep(),
            max_age: None,
            compress: Compression::default(),
            delaycompress: false,
            dateext: false,
            missingok: false,
            notifempty: true,
            mode: RotateMode::default(),
            create_mode: None,
            postrotate: None,
            signal: None,
            pid_file: None,
            archive_after: None,
            archive_dir: None,
            format: super::format::LineFormat::Auto,
        }
    }

    /// The files the set names now, sorted; a pattern matching nothing is an error unless
    /// `missingok`.
    pub fn files(&self) -> Result<Vec<PathBuf>, super::Error> {
        let mut files = Vec::new();
        for pattern in &self.paths {
            let matches = glob::glob(pattern.as_str()).map_err(|e| {
                super::Error::Paths(format!("{:?} is not a valid glob: {e}", pattern.shown()))
            })?;
            let mut found = 0;
            for entry in matches {
                let path = entry.map_err(|e| {
                    let path = e.path().to_path_buf();
                    super::Error::io("read", &path, e.into())
                })?;
                if path.is_dir() {
                    return Err(super::Error::Paths(format!(
                        "{} is a directory: name the log files (e.g. {}/*.log)",
                        path.display(),
                        path.display()
                    )));
                }
                found += 1;
                files.push(path);
            }
            if found == 0 && !self.missingok {
                return Err(super::Error::Paths(format!(
                    "{} matches no file (set `missingok: true` if that is expected)",
                    pattern.shown()
                )));
            }
        }
        files.sort();
        files.dedup();
        Ok(files)
    }

    /// The rotated siblings of `file` (`app.log.3.gz`, or `app.log-20250115`), sorted by
    /// name; temporaries of an interrupted compression are not among them.
    pub fn rotated(&self, file: &Path) -> Vec<PathBuf> {
        crate::fsutil::rotated_siblings(file, if self.dateext { "-" } else { "." })
    }

    /// Every file of the set, oldest first: for each live file its rotated files (highest
    /// number, or earliest date, first), then the file itself.
    pub fn history(&self) -> Result<Vec<PathBuf>, super::Error> {
        let mut all = Vec::new();
        for file in self.files()? {
            let mut rotated = self.rotated(&file);
            if self.dateext {
                // `-20250115-103000-10` after `-20250115-103000-2`: by number, not by name.
                rotated.sort_by_key(|p| super::rotate::date_key(&file, p));
            } else {
                rotated.sort_by_key(|p| {
                    std::cmp::Reverse(
                        p.to_string_lossy()
                            .strip_prefix(&*format!("{}.", file.display()))
                            .and_then(|r| r.split('.').next()?.parse::<u64>().ok())
                            .unwrap_or(0),
                    )
                });
            }
            all.extend(rotated);
            all.push(file);
        }
        Ok(all)
    }
}
