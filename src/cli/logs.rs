//! `opsbook logs rotate`: the sets of config `logs.sets`, one lock per set.

use super::{Session, check_context};
use crate::lock::Lock;
use crate::logs::rotate::{Outcome, Rotation};
use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Rotate the log sets that are due (exit 0 done, 1 failed, 75 locked)
    Rotate(RotateArgs),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Sets to rotate (default: every set in config)
    pub sets: Vec<String>,
    /// Print every rename, compression and deletion, and do none
    #[arg(long)]
    pub dry_run: bool,
    /// Rotate even if no trigger is due
    #[arg(long)]
    pub force: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ActionFormat {
    Text,
    Json,
}

pub fn exec(command: &LogsCommand, session: &Session) -> anyhow::Result<u8> {
    match command {
        LogsCommand::Rotate(args) => rotate(args, session),
    }
}

fn rotate(args: &RotateArgs, session: &Session) -> anyhow::Result<u8> {
    let format = session.format(ActionFormat::Text)?;
    let config = &session.loaded.config;
    let sets = &config.logs.sets;
    let names: Vec<String> = if args.sets.is_empty() {
        sets.keys().cloned().collect()
    } else {
        args.sets.clone()
    };
    if names.is_empty() {
        return Err(crate::Error::Usage(
            "no log sets: add them under `logs.sets` in the config".to_string(),
        )
        .into());
    }
    for name in &names {
        if !sets.contains_key(name) {
            let known: Vec<&str> = sets.keys().map(String::as_str).collect();
            let hint = crate::error::did_you_mean(name, &known)
                .map(|s| format!("; did you mean {s:?}?"))
                .unwrap_or_default();
            return Err(crate::Error::Usage(format!(
                "no log set {name:?} in the config (sets: {}){hint}",
                known.join(", ")
            ))
            .into());
        }
    }
    let state_dir = config.state_dir();
    let now = check_context()?.clock.now();
    let mut results = serde_json::Map::new();
    let mut failed = false;
    for name in &names {
        let Some(set) = sets.get(name) else { continue };
        let _lock = Lock::acquire(
            &state_dir,
            &format!("logs-rotate-{name}"),
            &format!("log set {name:?}"),
        )?;
        let outcome = Rotation {
            name,
            set,
            state_dir: &state_dir,
            now,
            dry_run: args.dry_run,
            force: args.force,
        }
        .run();
        failed |= !outcome.errors.is_empty();
        if format == ActionFormat::Text {
            session
                .printer
                .human(&describe(name, &outcome, args.dry_run));
        }
        for error in &outcome.errors {
            session.printer.error(&format!("log set {name}: {error}"));
        }
        results.insert(
            name.clone(),
            serde_json::to_value(&outcome).unwrap_or_default(),
        );
    }
    if format == ActionFormat::Json {
        let json = serde_json::json!({"dry_run": args.dry_run, "sets": results});
        session.printer.data(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        ));
    }
    Ok(u8::from(failed))
}

fn describe(name: &str, outcome: &Outcome, dry_run: bool) -> String {
    let mut out = String::new();
    let verb = if dry_run { "would " } else { "" };
    for action in &outcome.actions {
        out.push_str(&format!("{name}: {verb}{action}\n"));
    }
    let files = if outcome.rotated == 1 {
        "file"
    } else {
        "files"
    };
    out.push_str(&format!(
        "{name}: {} {} {files}{}\n",
        if dry_run { "would rotate" } else { "rotated" },
        outcome.rotated,
        if outcome.errors.is_empty() {
            String::new()
        } else {
            format!(", {} errors", outcome.errors.len())
        }
    ));
    out
}
