//! `opsbook health`: run the health runbook and print it in the format asked; or keep
//! running it (`--watch`), serve it over HTTP (`--serve`), or wait for it to pass
//! (`--retry-timeout`, the deploy gate).

use super::{Session, duration_arg, runtime, stop_signal};
use crate::engine::Context;
use crate::health::monitor::SERVE_INTERVAL;
use crate::health::tell::{self, Teller};
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
/// the monitor): `health: api: up → down after 3 failures in a row: status 503, …`; and
/// handed to the teller, when there is one.
fn transitions(session: &Session, teller: Option<&Arc<Teller>>) -> Hook {
    let printer = session.printer;
    let teller = teller.cloned();
    Arc::new(move |transition: &Transition| {
        printer.progress(&format!("health: {}", transition.describe()));
        if let Some(teller) = &teller {
            teller.transition(transition);
        }
    })
}

/// The notifier for `--watch`/`--serve` (none without channels), and the endpoints an
/// earlier monitor left down.
fn teller(config: &HealthConfig, session: &Session) -> (Option<Arc<Teller>>, Vec<String>) {
    let notify = &session.loaded.config.notify;
    let state_dir = session.loaded.config.state_dir();
    let printer = session.printer;
    let warn: tell::Warn = Arc::new(move |line: &str| printer.warn(line));
    let rerun = format!("{} health", super::run::invoked(session).join(" "));
    let teller = Teller::start(notify, &state_dir, rerun, warn).map(Arc::new);
    let left = tell::left_open(config, notify, &state_dir);
    for line in &left.orphans {
        printer.warn(line);
    }
    (teller, left.down)
}

/// How long a stop settles notifications before it stops without sending: a minute
/// (test seam: `OPSBOOK_TEST_STOP_LIMIT`, in seconds).
fn stop_limit() -> Duration {
    std::env::var("OPSBOOK_TEST_STOP_LIMIT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(60), Duration::from_secs)
}

/// Settle what the teller was handed before the process ends; a second Ctrl-C leaves
/// what is on its way queued, and the changes left recorded, for the next run.
async fn finish(teller: Option<Arc<Teller>>, session: &Session) -> anyhow::Result<()> {
    let Some(teller) = teller else {
        return Ok(());
    };
    let again = stop_signal()?;
    let printer = session.printer;
    printer.progress("health: stopping: settling the notifications handed over (Ctrl-C again to keep them for the next run)");
    teller
        .finish(async move {
            // A stop never waits longer than a service manager does (a lock another
            // process keeps, a channel that hangs): then it is hurried as by a second Ctrl-C.
            tokio::select! {
                () = again => {}
                () = tokio::time::sleep(stop_limit()) => {}
            }
            printer
                .warn("health: stopping without sending: recording what is left for the next run");
        })
        .await;
    Ok(())
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
    let (teller, down) = teller(config, session);
    let monitor = Monitor::new(config, every, transitions(session, teller.as_ref()), &down);
    let code = watching(
        every,
        config,
        ctx,
        format,
        session,
        &monitor,
        teller.as_deref(),
    )
    .await;
    finish(teller, session).await?;
    code
}

async fn watching(
    every: Duration,
    config: &HealthConfig,
    ctx: &Context,
    format: Format,
    session: &Session,
    monitor: &Arc<Monitor>,
    teller: Option<&Teller>,
) -> anyhow::Result<u8> {
    let stop = stop_signal()?;
    tokio::pin!(stop);
    let grading = Arc::clone(monitor).run(ctx.clone());
    tokio::pin!(grading);
    let mut code = 0;
    loop {
        let report = tokio::select! {
            report = watched(config, ctx, monitor) => report,
            () = &mut grading => return Ok(code),
            () = &mut stop => return Ok(code),
        };
        code = report.status().exit_code();
        if let Some(teller) = teller {
            let now = ctx.clock.now();
            teller.machine(now, tell::machine_problems(config, &report));
            teller.endpoints(monitor, now);
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
    let (teller, down) = teller(&config, session);
    let hook = transitions(session, teller.as_ref());
    let monitor = Monitor::new(&config, SERVE_INTERVAL, hook, &down);
    let serving = serve::run(
        address,
        config,
        ctx.clone(),
        Arc::clone(&monitor),
        stop_signal()?,
        &started,
    );
    let served = match teller.as_deref() {
        Some(teller) => tokio::select! {
            served = serving => served,
            () = ticking(teller, &monitor, &ctx) => Ok(()),
        },
        None => serving.await,
    };
    finish(teller, session).await?;
    served?;
    session.printer.progress("health: server stopped");
    Ok(0)
}

/// Hand the endpoints' states to the teller on a steady tick, for repeats and retries
/// (never ends by itself).
async fn ticking(teller: &Teller, monitor: &Monitor, ctx: &Context) {
    let every = tell::tick(monitor);
    loop {
        tokio::time::sleep(every).await;
        teller.endpoints(monitor, ctx.clock.now());
    }
}
