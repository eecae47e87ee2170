//! `opsbook health`: run the health runbook and print it in the format asked; or keep
//! running it (`--watch`), serve it over HTTP (`--serve`), or wait for it to pass
//! (`--retry-timeout`, the deploy gate).

use super::{Session, duration_arg, runtime, stop_signal};
use crate::engine::Context;
use crate::health::{HealthConfig, Hook, Monitor, Transition, check, gate, serve, watched};
use crate::model::Report;
use crate::report::{Format, render};
use clap::Args;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// How many endpoint probes run at once [default: health.concurrency, 64]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: Option<u16>,
    /// Re-run every DUR and redraw, until Ctrl-C
    #[arg(long, value_name = "DUR", value_parser = duration_arg,
          conflicts_with_all = ["serve", "retry_timeout"])]
    pub watch: Option<Duration>,
    /// Serve /health, /health/ready, /health/detailed and /metrics on ADDR (e.g. 127.0.0.1:9090)
    #[arg(long, value_name = "ADDR", conflicts_with = "retry_timeout")]
    pub serve: Option<SocketAddr>,
    /// Re-run until every check is ok or DUR has passed: a deploy gate
    #[arg(long, value_name = "DUR", value_parser = duration_arg)]
    pub retry_timeout: Option<Duration>,
    /// Pause between the attempts of --retry-timeout
    #[arg(long, value_name = "DUR", value_parser = duration_arg, default_value = "5s",
          requires = "retry_timeout")]
    pub sleep: Duration,
}

pub fn exec(args: &HealthArgs, session: &Session) -> anyhow::Result<u8> {
    let format = session.format(Format::Text)?;
    let ctx = super::step_context(session)?;
    let mut config = session.loaded.config.health.clone();
    if let Some(n) = args.concurrency {
        config.concurrency = usize::from(n);
    }
    let rt = runtime()?;
    if let Some(address) = args.serve {
        return rt.block_on(serve_on(address, config, ctx, session));
    }
    if let Some(every) = args.watch {
        return rt.block_on(watch(every, &config, &ctx, format, session));
    }
    let report = match args.retry_timeout {
        Some(limit) => {
            let progress = |line: &str| session.printer.progress(line);
            rt.block_on(gate(&config, &ctx, limit, args.sleep, &progress))
        }
        None => rt.block_on(check(&config, &ctx)),
    };
    print(&report, format, session);
    Ok(report.status().exit_code())
}

fn print(report: &Report, format: Format, session: &Session) {
    let rendered = render(report, format, session.printer.style());
    match format {
        Format::Text => session.printer.human(&rendered),
        _ => session.printer.data(&rendered),
    }
}

/// Each counted change of an endpoint's state, on stderr (its audit line is written by
/// the monitor): `health: api: up → down after 3 failures in a row: status 503, …`; and,
/// when `notify:` names channels, handed to `notify::settle` in the endpoint's own scope
/// (`health:NAME`), in the order the changes happened. Only a change this process counted
/// is said: a restarted monitor never calls an endpoint it has not graded yet recovered.
fn transitions(session: &Session, tell: Option<Teller>) -> Hook {
    let printer = session.printer;
    Arc::new(move |transition: &Transition| {
        printer.progress(&format!("health: {}", transition.describe()));
        if let Some(tell) = &tell {
            let problems = transition
                .down
                .iter()
                .filter(|(name, _)| *name == transition.name)
                .map(|(name, message)| crate::notify::Problem {
                    key: name.clone(),
                    what: name.clone(),
                    severity: crate::notify::Severity::Critical,
                    detail: message.clone(),
                })
                .collect();
            let scope = format!("health:{}", transition.name);
            let _ = tell.send((transition.at, scope, problems));
        }
    })
}

/// The machine's own failing readings (memory, disk, CPU…) of a report, for scope
/// `health:machine`: endpoints are said by their counted changes instead.
fn machine_problems(config: &HealthConfig, report: &Report) -> Vec<crate::notify::Problem> {
    let endpoints: Vec<&str> = config
        .endpoints
        .0
        .iter()
        .map(|e| e.step.name.as_str())
        .collect();
    crate::notify::Problem::from_report(report)
        .into_iter()
        .filter(|p| !endpoints.contains(&p.key.as_str()))
        .collect()
}

/// The endpoints whose problem an earlier monitor said and never said recovered: they
/// start down here, so their recovery is counted and told (none without channels).
fn still_down(config: &HealthConfig, session: &Session) -> Vec<String> {
    if !session.loaded.config.notify.is_configured() {
        return Vec::new();
    }
    let state_dir = session.loaded.config.state_dir();
    config
        .endpoints
        .0
        .iter()
        .map(|e| e.step.name.clone())
        .filter(|name| crate::notify::open_in(&state_dir, &format!("health:{name}")).contains(name))
        .collect()
}

/// A change for the notifier: when, the endpoint's scope, what is failing in it.
type Told = (jiff::Timestamp, String, Vec<crate::notify::Problem>);
type Teller = tokio::sync::mpsc::UnboundedSender<Told>;

/// One task that settles the endpoints' notifications one change at a time (so a later
/// change never lands before an earlier one); `None` without channels.
fn teller(session: &Session) -> Option<Teller> {
    let config = session.loaded.config.notify.clone();
    if !config.is_configured() {
        return None;
    }
    let state_dir = session.loaded.config.state_dir();
    let printer = session.printer;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Told>();
    tokio::spawn(async move {
        while let Some((at, name, problems)) = rx.recv().await {
            let scope = crate::notify::Scope {
                name: &name,
                rerun: "opsbook health",
                unseen: &[],
            };
            match crate::notify::settle(&config, &state_dir, at, &scope, &problems).await {
                Ok(told) => told.all_warnings().for_each(|w| printer.warn(w)),
                Err(e) => printer.warn(&format!("notifications not sent: {e}")),
            }
        }
    });
    Some(tx)
}

/// Run, print, wait, until Ctrl-C or SIGTERM, while the endpoints are graded on their own
/// intervals (`every` for those that set none); the exit code is the last report's.
async fn watch(
    every: Duration,
    config: &HealthConfig,
    ctx: &Context,
    format: Format,
    session: &Session,
) -> anyhow::Result<u8> {
    let stop = stop_signal()?;
    tokio::pin!(stop);
    let tell = teller(session);
    let down = still_down(config, session);
    let monitor = Monitor::new(config, every, transitions(session, tell.clone()), &down);
    let grading = Arc::clone(&monitor).run(ctx.clone());
    tokio::pin!(grading);
    let mut code = 0;
    loop {
        let report = tokio::select! {
            report = watched(config, ctx, &monitor) => report,
            () = &mut grading => return Ok(code),
            () = &mut stop => return Ok(code),
        };
        code = report.status().exit_code();
        if let Some(tell) = &tell {
            let problems = machine_problems(config, &report);
            let _ = tell.send((ctx.clock.now(), "health:machine".to_string(), problems));
        }
        if session.printer.redraws() {
            session.printer.data("\x1b[H\x1b[2J");
        }
        print(&report, format, session);
        if format == Format::Text {
            session.printer.human(&format!(
                "every {} · Ctrl-C to stop\n",
                humantime::format_duration(every)
            ));
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = &mut grading => return Ok(code),
            () = &mut stop => return Ok(code),
        }
    }
}

async fn serve_on(
    address: SocketAddr,
    config: HealthConfig,
    ctx: Context,
    session: &Session,
) -> anyhow::Result<u8> {
    let cache = humantime::format_duration(config.serve_cache.0).to_string();
    let started = |bound: SocketAddr| {
        session.printer.progress(&format!(
            "health: serving http://{bound}/health (/health/ready, /health/detailed, /metrics); machine checks cached for {cache}, endpoints probed on their intervals; Ctrl-C to stop"
        ));
    };
    let hook = transitions(session, teller(session));
    let down = still_down(&config, session);
    serve::run(address, config, ctx, stop_signal()?, &started, hook, &down).await?;
    session.printer.progress("health: server stopped");
    Ok(0)
}
