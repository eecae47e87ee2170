//! `opsbook maintain run|status|schedule`: scheduled maintenance that cron, systemd timers
//! and CI can trust — one lock per schedule, a state file, a metrics textfile, exit codes
//! by the worst status, one line on stdout when nobody watches.

use super::{Session, check_context, config_error, runtime};
use crate::engine::Interaction;
use crate::maintain::{self, LastRun};
use crate::report::{Format, render};
use clap::{Args, Subcommand, ValueEnum};
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
    /// daily, weekly, monthly, or a schedule of config `maintain.schedules`
    pub schedule: String,
    /// Write a Prometheus textfile (node_exporter's textfile collector), atomically
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
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
        MaintainCommand::Schedule(args) => {
            let invocation = invocation(session)?;
            match args.emit {
                Emit::Cron => {
                    let text = maintain::crontab(&schedules, &invocation)
                        .map_err(|e| config_error(session, e))?;
                    session.printer.data(&text);
                }
                Emit::Systemd => {
                    let units = maintain::systemd(&schedules, &invocation)
                        .map_err(|e| config_error(session, e))?;
                    match &args.dir {
                        Some(dir) => {
                            std::fs::create_dir_all(dir).map_err(|e| {
                                anyhow::anyhow!("cannot create {}: {e}", dir.display())
                            })?;
                            for (name, text) in &units {
                                crate::fsutil::write_atomically(&dir.join(name), text.as_bytes())
                                    .map_err(anyhow::Error::msg)?;
                            }
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
    }
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
    schedules: &std::collections::BTreeMap<String, maintain::Schedule>,
) -> anyhow::Result<u8> {
    let name = &args.schedule;
    let Some(schedule) = schedules.get(name) else {
        let known: Vec<&str> = schedules.keys().map(String::as_str).collect();
        let hint = crate::error::hint(name, &known);
        return Err(config_error(
            session,
            format!(
                "no maintenance schedule {name:?} (known: {}){hint}",
                known.join(", ")
            ),
        ));
    };
    // A missing or invalid runbook is exit 78 naming it, before anything runs.
    let dirs = super::run::dirs(session);
    let source = crate::runbook::find(&schedule.runbook, &dirs).map_err(|e| {
        config_error(
            session,
            format!(
                "maintain.schedules.{name}: runbook {:?}: {e}",
                schedule.runbook
            ),
        )
    })?;
    let mut vars = super::run::session_vars(session);
    vars.extend(
        schedule
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), crate::values::Text::plain(v.clone()))),
    );
    let mut book = crate::runbook::load(&source, &vars, &dirs)?;
    // Upkeep is never gated by a reading: a full disk or a busy CPU is reported, and the
    // rotation, backup and prune run all the same.
    maintain::readings_never_stop(&mut book);
    let state_dir = session.loaded.config.state_dir();
    let _lock = crate::lock::Lock::acquire(
        &state_dir,
        &format!("maintain-{name}"),
        &format!("maintenance schedule {name:?}"),
    )?;
    let mut ctx = check_context()?;
    ctx.config = std::sync::Arc::new(super::backup::step_settings(session));
    ctx.interaction = Interaction::Todo;
    let started = ctx.clock.now();
    let clock = std::time::Instant::now();
    maintain::record(
        &state_dir,
        name,
        LastRun {
            started: Some(started.to_string()),
            outcome: Some("running".to_string()),
            ..LastRun::default()
        },
    )
    .map_err(anyhow::Error::msg)?;
    tracing::info!(target: crate::logging::RESULTS, schedule = %name, runbook = %book.name, "maintenance started");
    let report = runtime()?.block_on(crate::runbook::run(
        &book,
        &ctx,
        &crate::runbook::Selection::default(),
        &mut |result: &crate::model::CheckResult| {
            tracing::info!(
                target: crate::logging::RESULTS,
                schedule = %name,
                step = %result.name,
                status = result.status.as_str(),
                message = %result.message,
                "step finished"
            );
        },
    ));
    let took = clock.elapsed();
    let ended = started
        .checked_add(jiff::SignedDuration::try_from(took).unwrap_or_default())
        .unwrap_or(started);
    let status = report.status();
    maintain::record(
        &state_dir,
        name,
        LastRun {
            started: Some(started.to_string()),
            ended: Some(ended.to_string()),
            outcome: Some(status.as_str().to_string()),
            duration_ms: Some(took.as_millis() as u64),
        },
    )
    .map_err(anyhow::Error::msg)?;
    if let Some(path) = &args.metrics {
        let text = maintain::metrics(name, &report, ended, took.as_secs_f64());
        // node_exporter runs as its own user: the textfile must be world-readable.
        crate::fsutil::write_atomically_mode(path, text.as_bytes(), 0o644)
            .map_err(anyhow::Error::msg)?;
    }
    crate::logging::audit::record(
        &format!("maintain.{name}"),
        status.as_str(),
        Some(&format!(
            "{} in {:.1}s",
            crate::plural::count(report.results.len(), "step", "steps"),
            took.as_secs_f64()
        )),
    );
    tracing::info!(target: crate::logging::RESULTS, schedule = %name, status = status.as_str(), "maintenance finished");
    if std::io::stdout().is_terminal() {
        session
            .printer
            .human(&render(&report, Format::Text, session.printer.style()));
    }
    session
        .printer
        .data(&format!("{}\n", one_line(name, &report, took)));
    Ok(status.exit_code())
}

/// `maintain daily: warning — 9 steps: 7 ok, 1 warning, 1 to do (3.2s)`.
fn one_line(name: &str, report: &crate::model::Report, took: std::time::Duration) -> String {
    use crate::model::Status;
    let count = |s: Status| report.results.iter().filter(|r| r.status == s).count();
    let mut parts = Vec::new();
    for (status, label) in [
        (Status::Ok, "ok"),
        (Status::Warning, "warning"),
        (Status::Critical, "critical"),
        (Status::Unknown, "unknown"),
        (Status::Skipped, "skipped or to do"),
    ] {
        let n = count(status);
        if n > 0 {
            parts.push(format!("{n} {label}"));
        }
    }
    let mut line = format!(
        "maintain {name}: {} — {}: {} ({:.1}s)",
        report.status().as_str(),
        crate::plural::count(report.results.len(), "step", "steps"),
        parts.join(", "),
        took.as_secs_f64()
    );
    let todo: Vec<&str> = report
        .results
        .iter()
        .filter(|r| r.status == Status::Skipped && r.message.starts_with("to do: "))
        .map(|r| r.name.as_str())
        .collect();
    if !todo.is_empty() {
        line.push_str(&format!("; to do: {}", todo.join(", ")));
    }
    let failed: Vec<&str> = report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Critical | Status::Unknown))
        .map(|r| r.name.as_str())
        .collect();
    if !failed.is_empty() {
        line.push_str(&format!("; failed: {}", failed.join(", ")));
    }
    line
}

fn status(
    session: &Session,
    schedules: &std::collections::BTreeMap<String, maintain::Schedule>,
) -> anyhow::Result<u8> {
    let format = session.format(StatusFormat::Text)?;
    let state = maintain::load_state(&session.loaded.config.state_dir());
    let now = check_context()?.clock.now();
    let mut rows = Vec::new();
    let mut any_overdue = false;
    for (name, schedule) in schedules {
        let last = state.get(name);
        let overdue = maintain::overdue(schedule, last, now);
        any_overdue |= overdue;
        rows.push(serde_json::json!({
            "schedule": name,
            "runbook": schedule.runbook,
            "every": schedule.every.map(|e| humantime::format_duration(e.0).to_string()),
            "last_start": last.and_then(|l| l.started.clone()),
            "last_end": last.and_then(|l| l.ended.clone()),
            "outcome": last.and_then(|l| l.outcome.clone()),
            "overdue": overdue,
        }));
    }
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
                    row["schedule"].as_str().unwrap_or(""),
                    row["last_start"].as_str().unwrap_or("never"),
                    row["outcome"].as_str().unwrap_or("-"),
                    if row["overdue"] == true {
                        "  OVERDUE"
                    } else {
                        ""
                    }
                ));
            }
            session.printer.data(&out);
        }
    }
    Ok(u8::from(any_overdue))
}
