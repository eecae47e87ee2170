//! What every command handler shares: the session (printer, loaded config, global flags)
//! and the small set-ups they all need: the check context with its test seams, set picking,
//! the backup store, signals, the async runtime, and configuration errors naming the file.

use super::GlobalArgs;
use crate::cli::printer::Printer;
use crate::clock::FixedClock;
use crate::config::Loaded;
use crate::engine::Context;
use crate::error::Error;
use crate::probe::resources::FixedResources;
use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::Arc;

/// What every command gets: the printer, the loaded config, the global flags.
pub struct Session {
    pub printer: Printer,
    pub loaded: Loaded,
    pub global: GlobalArgs,
}

impl Session {
    /// The `--format` given, checked against what this command can render.
    pub fn format<F: clap::ValueEnum>(&self, default: F) -> anyhow::Result<F> {
        let Some(name) = &self.global.format else {
            return Ok(default);
        };
        F::from_str(name, true).map_err(|_| {
            let names: Vec<String> = F::value_variants()
                .iter()
                .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
                .collect();
            Error::Usage(format!(
                "unknown format {name:?} for this command: use {}",
                names.join(", ")
            ))
            .into()
        })
    }
}

/// The context runbook steps run in, the same for every command: the test seams, the
/// step settings, and the runner a drill uses for `verify: { runbook: NAME }`.
pub fn step_context(session: &Session) -> anyhow::Result<Context> {
    let mut ctx = check_context()?;
    let settings = session.loaded.config.step_settings();
    let dirs = session.loaded.config.runbooks.paths();
    let mut inner = ctx.clone();
    inner.config = Arc::new(settings.clone());
    ctx.config = Arc::new(crate::engine::Settings {
        runbook: crate::runbook::drill_runner(dirs, super::run::session_vars(session), inner),
        ..settings
    });
    Ok(ctx)
}

/// A problem in the configuration found after loading (a template, a schedule): exit 78,
/// naming the config file in use.
pub fn config_error(session: &Session, message: String) -> anyhow::Error {
    Error::Config(crate::error::ConfigError::whole_file(
        config_file(session),
        message,
    ))
    .into()
}

/// The config file in use, as a config error names it.
pub fn config_file(session: &Session) -> PathBuf {
    session
        .global
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("(built-in defaults)"))
}

/// A setting the command needs and no config gives: a configuration error (exit 78)
/// naming the key.
pub fn missing_setting(key: &str, what: &str) -> Error {
    Error::Config(crate::error::ConfigError::whole_file(
        "configuration",
        format!("missing setting `{key}`: {what}"),
    ))
}

/// The backup store; no `backup.destination` is a configuration error.
pub fn open_store(
    config: &crate::backup::BackupConfig,
) -> anyhow::Result<crate::backup::store::Store> {
    if config.destination.is_none() {
        return Err(missing_setting(
            "backup.destination",
            "where backups go (a directory, or s3://bucket/prefix)",
        )
        .into());
    }
    Ok(config.store().map_err(|e| Error::Usage(e.to_string()))?)
}

/// The checks' view of the world: the real machine, unless `$OPSBOOK_READINGS` names a
/// JSON file of fixed readings and `$OPSBOOK_NOW` a fixed time (for tests and demos).
pub fn check_context() -> anyhow::Result<Context> {
    let mut ctx = Context::system();
    if let Some(path) = std::env::var_os("OPSBOOK_READINGS") {
        let fixed = FixedResources::from_file(std::path::Path::new(&path))
            .map_err(|e| Error::Usage(e.to_string()))?;
        ctx.resources = Arc::new(fixed);
    }
    if let Ok(now) = std::env::var("OPSBOOK_NOW") {
        let at: jiff::Timestamp = now
            .parse()
            .with_context(|| format!("OPSBOOK_NOW={now:?} is not an RFC 3339 time"))
            .map_err(|e| Error::Usage(format!("{e:#}")))?;
        ctx.clock = Arc::new(FixedClock(at));
    }
    Ok(ctx)
}

/// The sets named on the command line (default: every configured one), each looked up in
/// config section `section`; an unknown name is a usage error with a did-you-mean, and no
/// set at all says where to add them.
pub fn pick_sets<'a, T>(
    asked: &[String],
    sets: &'a std::collections::BTreeMap<String, T>,
    section: &str,
) -> anyhow::Result<Vec<(&'a str, &'a T)>> {
    if sets.is_empty() {
        return Err(missing_setting(section, "no sets are configured: add them there").into());
    }
    if asked.is_empty() {
        return Ok(sets
            .iter()
            .map(|(name, set)| (name.as_str(), set))
            .collect());
    }
    let known: Vec<&str> = sets.keys().map(String::as_str).collect();
    asked
        .iter()
        .map(|name| {
            sets.get_key_value(name)
                .map(|(name, set)| (name.as_str(), set))
                .ok_or_else(|| {
                    let hint = crate::error::did_you_mean(name, &known)
                        .map(|s| format!("; did you mean {s:?}?"))
                        .unwrap_or_default();
                    Error::Usage(format!(
                        "no set {name:?} in `{section}` (sets: {}){hint}",
                        known.join(", ")
                    ))
                    .into()
                })
        })
        .collect()
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed when this is
/// called, so a signal that arrives before the future is first polled is not lost.
pub fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// A clap parser for durations written as `5s`, `2m`, `1h 30m`; zero is refused.
pub fn duration_arg(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be more than zero".to_string()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (write e.g. 500ms, 5s, 2m)")),
    }
}

/// A runtime for the async parts (probes, serve mode); file work stays on threads.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
