//! The tool's own diagnostics through tracing: human lines on stderr, and with
//! `LOG_TO_FILE` on, `application.log` (everything at the configured level),
//! `errors.log` (WARN and above) and `audit.log` in `LOG_DIR`, rotated by size.

pub mod audit;
pub mod rotating;

use crate::values::{Level as ConfigLevel, Level, Text};
use rotating::RotatingFile;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::Mutex;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::prelude::*;

/// How chatty stderr should be, from the command line.
#[derive(Clone, Copy, Debug, Default)]
pub struct Verbosity {
    pub verbose: u8,
    pub quiet: bool,
}

/// The tracing target of step results (`engine::run_step`): logged to the files at INFO,
/// kept off the console unless `-v`, where the report already says the same.
pub const RESULTS: &str = "opsbook::results";

/// Install the subscriber. Returns a warning to show when the log directory cannot be
/// used: the command still runs, logging to stderr only.
pub fn init(config: &LoggingConfig, verbosity: Verbosity, color: bool) -> Option<String> {
    let file_level = filter(config.level);
    let console_level = match (verbosity.quiet, verbosity.verbose) {
        (true, _) => LevelFilter::ERROR,
        (false, 0) => file_level,
        (false, 1) => LevelFilter::INFO.max(file_level),
        (false, 2) => LevelFilter::DEBUG.max(file_level),
        (false, _) => LevelFilter::TRACE,
    };
    // Step results are the report itself at a terminal; they show on stderr only with -v.
    let results_on_console = verbosity.verbose > 0 && !verbosity.quiet;
    let console = config.to_console.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(|| MaskedStderr)
            .with_ansi(color)
            .with_target(false)
            .without_time()
            .with_filter(console_level)
            .with_filter(tracing_subscriber::filter::filter_fn(move |meta| {
                results_on_console || meta.target() != RESULTS
            }))
    });

    let mut warning = None;
    let files = if config.to_file {
        match open_files(config) {
            Ok((application, errors, audit_file)) => {
                audit::install(audit_file);
                // Step results reach application.log whatever the level: they are the
                // details behind a cron run's one line.
                let application = tracing_subscriber::fmt::layer()
                    .with_writer(Mutex::new(application))
                    .with_ansi(false)
                    .with_filter(tracing_subscriber::filter::filter_fn(move |meta| {
                        *meta.level() <= file_level
                            || (meta.target() == RESULTS && *meta.level() <= tracing::Level::INFO)
                    }));
                let errors = tracing_subscriber::fmt::layer()
                    .with_writer(Mutex::new(errors))
                    .with_ansi(false)
                    .with_filter(LevelFilter::WARN.min(file_level));
                Some(application.and_then(errors))
            }
            Err(e) => {
                warning = Some(format!(
                    "cannot write logs to {}: {e}; logging to stderr only",
                    config.dir
                ));
                None
            }
        }
    } else {
        None
    };

    let _ = tracing_subscriber::registry()
        .with(console)
        .with(files)
        .try_init();
    warning
}

fn open_files(
    config: &LoggingConfig,
) -> std::io::Result<(RotatingFile, RotatingFile, RotatingFile)> {
    let dir = std::path::Path::new(config.dir.as_str());
    crate::fsutil::create_dir_private(dir, crate::fsutil::LOG_DIR)
        .map_err(std::io::Error::other)?;
    let open = |name: &str| RotatingFile::open(&dir.join(name), config.max_bytes, config.keep);
    Ok((
        open("application.log")?,
        open("errors.log")?,
        open("audit.log")?,
    ))
}

/// CRITICAL has no tracing level of its own: it is logged as ERROR.
fn filter(level: ConfigLevel) -> LevelFilter {
    match level {
        ConfigLevel::Trace => LevelFilter::TRACE,
        ConfigLevel::Debug => LevelFilter::DEBUG,
        ConfigLevel::Info => LevelFilter::INFO,
        ConfigLevel::Warning => LevelFilter::WARN,
        ConfigLevel::Error | ConfigLevel::Critical => LevelFilter::ERROR,
    }
}

struct MaskedStderr;

impl Write for MaskedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(crate::redact::mask(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// The tool's own logs (seed 000): application.log, errors.log, audit.log.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// `LOG_LEVEL`: the least severe level written.
    pub level: Level,
    /// `LOG_DIR`: where the log files go when `to_file` is on.
    pub dir: Text,
    /// `LOG_TO_FILE`.
    pub to_file: bool,
    /// `LOG_TO_CONSOLE`: diagnostics on stderr.
    pub to_console: bool,
    /// Rotate a log file once it reaches this many bytes (seed 000: 10 MB).
    pub max_bytes: u64,
    /// Rotated files kept (seed 000: 5).
    pub keep: u32,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: Level::Warning,
            dir: Text::plain("logs"),
            to_file: false,
            to_console: true,
            max_bytes: 10 * 1024 * 1024,
            keep: 5,
        }
    }
}
