//! `opsbook health`: run the health runbook and print it in the format asked.

use super::{Session, check_context, runtime};
use crate::report::{Format, render};
use clap::Args;

#[derive(Debug, Args)]
pub struct HealthArgs {}

pub fn exec(_args: &HealthArgs, session: &Session) -> anyhow::Result<u8> {
    let format = session.format(Format::Text)?;
    let ctx = check_context()?;
    let report = runtime()?.block_on(crate::health::check(&session.loaded.config.health, &ctx));
    let rendered = render(&report, format, session.printer.style());
    match format {
        Format::Text => session.printer.human(&rendered),
        _ => session.printer.data(&rendered),
    }
    Ok(report.status().exit_code())
}
