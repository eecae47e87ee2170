//! `opsbook maintain run|status|schedule`: scheduled maintenance that cron, systemd timers
//! and CI can trust — one lock per schedule, a state file, a metrics textfile, exit codes
//! by the worst status, one line on stdout when nobody watches.

use super::{Session, check_context, config_error, runtime};
use crate::maintain::{self, Schedule};
use crate::report::{Format, render};
use clap::{Args, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum MaintainCommand {
    /// Run a schedule's runbook under its lock (exit 0 ok, 1 warning, 2 critical, 3 unknown, 75 locked, 78 invalid)
    Run(RunArgs),
    /// Each schedule's last run, result, and whether it is overdue (exit 1 if one is)
    Status,
    /// Print the crontab lines or systemd units that run the schedules
    Schedule(ScheduleArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// daily, weekly, monthly, quarterly, or a schedule of config `maintain.schedules`
    pub schedule: String,
    /// Write a Prometheus textfile (node_exporter's textfile collector), atomically
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Print the plan with the schedule's variables (the files a cleanup would remove) and
    /// run nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    #[arg(long, value_enum)]
    pub emit: Emit,
    /// systemd: write the unit files into DIR instead of printing them
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    Cron,
    Systemd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum StatusFormat {
    Text,
    Json,
}

pub fn exec(command: &MaintainCommand, session: &Session) -> anyhow::Result<u8> {
    let schedules = session.loaded.config.maintain.schedules();
    match command {
        MaintainCommand::Run(args) => run(args, session, &schedules),
        MaintainCommand::Status => status(session, &schedules),
        MaintainCommand::Schedule(args) => schedule(args, session, &schedules),
    }
}

/// A maintenance error as the command reports it: one about `maintain.schedules` names
/// the config file in use (exit 78); the others keep their own kind.
fn failed(session: &Session, e: maintain::Error) -> anyhow::Error {
    if e.is_setting() {
        config_error(session, e.to_string())
    } else {
        e.into()
    }
}

fn schedule(
    args: &ScheduleArgs,
    session: &Session,
    schedules: &BTreeMap<String, Schedule>,
) -> anyhow::Result<u8> {
    let invocation = invocation(session)?;
    match args.emit {
        Emit::Cron => {
            let text = maintain::crontab(schedules, &invocation).map_err(|e| failed(session, e))?;
            session.printer.data(&text);
        }
        Emit::Systemd => {
            let units =
                maintain::systemd(schedules, &invocation).map_err(|e| failed(session, e))?;
            match &args.dir {
                Some(dir) => {
                    maintain::write_units(dir, &units).map_err(|e| failed(session, e))?;
                    session.printer.human(&format!(
                        "wrote {} units into {}\n",
                        units.len(),
                        dir.display()
                    ));
                }
                None => {
                    let mut out = String::new();
                    for (name, text) in &units {
                        out.push_str(&format!("# --- {name}\n{text}\n"));
                    }
                    session.printer.data(&out);
                }
            }
        }
    }
    Ok(0)
}

/// How the emitted jobs run opsbook: this binary, in this directory, with the
/// environment and every config file this command read, as absolute paths — cron starts
/// in `$HOME`, where `config/` is not found.
fn invocation(session: &Session) -> anyhow::Result<maintain::Invocation> {
    let absolute = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let binary = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot tell where this binary is: {e}"))?;
    let dir = std::env::current_dir()
        .map_err(|e| anyhow::anyhow!("cannot tell the working directory: {e}"))?;
    let config = session.global.config.as_deref().map(absolute);
    // The env file that was read (not the `--config` one), found again by its directory.
    let config_dir = session
        .loaded
        .sources
        .iter()
        .find(|p| Some(absolute(p)) != config)
        .and_then(|p| p.parent())
        .map(absolute);
    // The environment goes into the job when it was asked for or its file was read.
    let env =
        (session.global.env.is_some() || config_dir.is_some()).then(|| session.loaded.env.clone());
    Ok(maintain::Invocation {
        binary,
        dir,
        env,
        config,
        config_dir,
    })
}

fn run(
    args: &RunArgs,
    session: &Session,
    schedules: &BTreeMap<String, Schedule>,
) -> anyhow::Result<u8> {
    let dirs = super::run::dirs(session);
    let ctx = super::step_context(session)?;
    let options = maintain::RunOptions {
        schedule: &args.schedule,
        dirs: &dirs,
        vars: super::run::session_vars(session),
        settings: (*ctx.config).clone(),
        metrics: args.metrics.as_deref(),
        notify: Some(&session.loaded.config.notify),
        rerun: format!(
            "{} maintain run {}",
            super::run::invoked(session).join(" "),
            maintain::shell_word(&args.schedule)
        ),
    };
    if args.dry_run {
        let plan = maintain::plan_schedule(schedules, &options).map_err(|e| failed(session, e))?;
        session.printer.data(&plan);
        return Ok(0);
    }
    let finished = runtime()?
        .block_on(maintain::run_schedule(schedules, options, ctx))
        .map_err(|e| failed(session, e))?;
    let report = &finished.report;
    if std::io::stdout().is_terminal() {
        session
            .printer
            .human(&render(report, Format::Text, session.printer.style()));
    }
    for warning in &finished.warnings {
        session.printer.warn(warning);
    }
    let line = crate::report::maintenance::one_line(&args.schedule, report, finished.took);
    session.printer.data(&format!("{line}\n"));
    Ok(report.status().exit_code())
}

fn status(session: &Session, schedules: &BTreeMap<String, Schedule>) -> anyhow::Result<u8> {
    let format = session.format(StatusFormat::Text)?;
    let now = check_context()?.clock.now();
    let config = &session.loaded.config;
    let rows = maintain::status(schedules, &config.state_dir(), now);
    let actions = crate::incident::overdue_actions(&config.incident, &config.state_dir(), now);
    match format {
        StatusFormat::Json => {
            let text = serde_json::to_string_pretty(&rows).unwrap_or_default();
            session.printer.data(&format!("{text}\n"));
        }
        StatusFormat::Text => {
            let mut out = String::new();
            for row in &rows {
                out.push_str(&format!(
                    "{:<10} last {:<22} {:<9}{}\n",
                    row.schedule,
                    row.last_start.as_deref().unwrap_or("never"),
                    row.outcome.as_deref().unwrap_or("-"),
                    if row.overdue { "  OVERDUE" } else { "" }
                ));
            }
            for a in &actions {
                let owner = if a.owner.is_empty() { "-" } else { &a.owner };
                out.push_str(&format!(
                    "action     {} #{} due {} {owner}: {}  OVERDUE\n",
                    a.incident, a.n, a.due, a.action
                ));
            }
            session.printer.data(&out);
        }
    }
    Ok(u8::from(
        rows.iter().any(|row| row.overdue) || !actions.is_empty(),
    ))
}
