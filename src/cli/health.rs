//! `opsbook health`: run the health runbook and print it in the format asked.

use super::{Session, check_context, runtime};
use crate::report::{Format, render};
use clap::Args;

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// How many endpoint probes run at once [default: health.concurrency, 64]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: Option<u16>,
}

pub fn exec(args: &HealthArgs, session: &Session) -> anyhow::Result<u8> {
    let format = session.format(Format::Text)?;
    let ctx = check_context()?;
    let mut config = session.loaded.config.health.clone();
    if let Some(n) = args.concurrency {
        config.concurrency = usize::from(n);
    }
    let report = runtime()?.block_on(crate::health::check(&config, &ctx));
    let rendered = render(&report, format, session.printer.style());
    match format {
        Format::Text => session.printer.human(&rendered),
        _ => session.printer.data(&rendered),
    }
    Ok(report.status().exit_code())
}
