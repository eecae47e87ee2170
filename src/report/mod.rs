//! One report model, many renderers: each format is a file that turns the same `Report`
//! into text. Rendering never re-runs or re-decides anything.

mod json;
mod junit;
mod nagios;
mod prometheus;
mod tap;
mod text;

pub use json::render as render_json;
pub use text::{Style, render as render_text, render_result, render_result_line, summary};

use crate::check::{Data, Status};
use std::time::Duration;

/// What running one step gave.
#[derive(Clone, Debug)]
pub struct CheckResult {
    pub name: String,
    pub kind: String,
    pub status: Status,
    pub message: String,
    pub duration: Duration,
    pub data: Data,
}

/// The results of one run: a health check, a runbook, a maintenance schedule.
#[derive(Clone, Debug)]
pub struct Report {
    pub title: String,
    /// What it is a report of: a health check (statuses read healthy/degraded/unhealthy,
    /// results are "checks") or a runbook run (ok/warning/critical, "steps").
    pub kind: ReportKind,
    pub timestamp: jiff::Timestamp,
    pub duration: Duration,
    pub results: Vec<CheckResult>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    Health,
    Runbook,
}

impl Report {
    /// The worst status of its results (an empty report is ok).
    pub fn status(&self) -> Status {
        self.results
            .iter()
            .fold(Status::Ok, |worst, r| worst.worst(r.status))
    }

    /// How many results ended in `status`.
    pub fn count(&self, status: Status) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }
}

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

pub fn render(report: &Report, format: Format, style: Style) -> String {
    match format {
        Format::Text => render_text(report, style),
        Format::Json => render_json(report),
        Format::Prometheus => prometheus::render(report),
        Format::Nagios => nagios::render(report),
        Format::Junit => junit::render(report),
        Format::Tap => tap::render(report),
    }
}

#[cfg(test)]
pub(crate) fn sample() -> Report {
    let result = |name: &str, status, message: &str, data| CheckResult {
        name: name.to_string(),
        kind: name.split(':').next().unwrap_or(name).to_string(),
        status,
        message: message.to_string(),
        duration: Duration::from_millis(12),
        data,
    };
    Report {
        title: "health".to_string(),
        kind: ReportKind::Health,
        timestamp: "2024-01-01T12:00:00Z".parse().expect("fixed timestamp"),
        duration: Duration::from_millis(260),
        results: vec![
            result(
                "memory",
                Status::Warning,
                "memory 80% used (> warn 75%)",
                Data::Memory {
                    percent_used: 80.0,
                    total_gb: 16.0,
                    available_gb: 3.2,
                },
            ),
            result(
                "disk:/data",
                Status::Ok,
                "/data 10% used",
                Data::Disk {
                    path: "/data".into(),
                    mount: "/data".into(),
                    percent_used: 10.0,
                    total_gb: 100.0,
                    free_gb: 90.0,
                },
            ),
        ],
    }
}
