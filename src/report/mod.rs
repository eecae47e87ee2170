//! One report model, many renderers: each format is a file that turns the same `Report`
//! into text. Rendering never re-runs or re-decides anything.
//!
//! Secrets are masked in the model, before any renderer escapes anything: every entry
//! point here renders `Report::masked`, so a secret holding `"`, `\`, `<`, `&` or a
//! newline is found as it is, not as JSON, XML or a Prometheus label wrote it.

mod json;
mod junit;
pub mod maintenance;
mod nagios;
mod prometheus;
mod tap;
mod text;

pub use prometheus::escape as prometheus_label;
pub use text::Style;

use crate::model::{CheckResult, Report};

/// The output formats every report can be rendered in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Prometheus,
    Nagios,
    Junit,
    Tap,
}

/// `report` in `format`, its secrets masked first.
pub fn render(report: &Report, format: Format, style: Style) -> String {
    let report = &report.masked();
    match format {
        Format::Text => text::render(report, style),
        Format::Json => json::render(report),
        Format::Prometheus => prometheus::render(report),
        Format::Nagios => nagios::render(report),
        Format::Junit => junit::render(report),
        Format::Tap => tap::render(report),
    }
}

pub fn render_text(report: &Report, style: Style) -> String {
    text::render(&report.masked(), style)
}

pub fn render_json(report: &Report) -> String {
    json::render(&report.masked())
}

/// One result's lines as the text report shows them (streamed while a runbook runs).
pub fn render_result(result: &CheckResult, name_width: usize, style: Style) -> String {
    text::render_result(&result.masked(), name_width, style)
}

pub fn render_result_line(result: &CheckResult, name_width: usize, style: Style) -> String {
    text::render_result_line(&result.masked(), name_width, style)
}

pub fn summary(report: &Report, style: Style) -> String {
    let mut report = report.clone();
    crate::redact::mask_in_place(&mut report.title);
    text::summary(&report, style)
}
