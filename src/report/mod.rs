//! One report model, many renderers: each format is a file that turns the same `Report`
//! into text. Rendering never re-runs or re-decides anything.
//!
//! Secrets are masked in the model, before any renderer escapes anything: every entry
//! point here renders `Report::masked`, so a secret holding `"`, `\`, `<`, `&` or a
//! newline is found as it is, not as JSON, XML or a Prometheus label wrote it.

mod json;
mod junit;
mod nagios;
mod prometheus;
mod tap;
mod text;

pub use text::Style;

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

impl Report {
    /// A copy with every registered secret masked in every string it holds.
    pub fn masked(&self) -> Report {
        let mut report = self.clone();
        crate::redact::mask_in_place(&mut report.title);
        for result in &mut report.results {
            result.mask();
        }
        report
    }
}

impl CheckResult {
    /// A copy with every registered secret masked in every string it holds.
    pub fn masked(&self) -> CheckResult {
        let mut result = self.clone();
        result.mask();
        result
    }

    fn mask(&mut self) {
        use crate::redact::mask_in_place as m;
        m(&mut self.name);
        m(&mut self.kind);
        m(&mut self.message);
        // Every variant listed, so a new one with text cannot skip masking unnoticed.
        match &mut self.data {
            Data::None
            | Data::Application { .. }
            | Data::Memory { .. }
            | Data::Swap { .. }
            | Data::Cpu { .. }
            | Data::Port { .. }
            | Data::Load { .. } => {}
            Data::Disk { path, mount, .. } => {
                m(path);
                m(mount);
            }
            Data::Http { url, .. } => m(url),
            Data::Tcp { address, .. } => m(address),
            Data::Dns {
                name,
                server,
                addresses,
                ..
            } => {
                m(name);
                server.iter_mut().for_each(m);
                addresses.iter_mut().for_each(m);
            }
            Data::Command {
                command,
                stdout,
                stderr,
                ..
            } => {
                m(command);
                m(stdout);
                m(stderr);
            }
            Data::File { path, .. }
            | Data::Directory { path, .. }
            | Data::LogErrors { path, .. } => m(path),
            Data::Backup { set, .. } => m(set),
            Data::Process { process, .. } => m(process),
            Data::Service { unit, state } => {
                m(unit);
                m(state);
            }
            Data::TlsCert {
                address,
                not_after,
                subject,
                issuer,
                chain,
                ..
            } => {
                m(address);
                m(not_after);
                m(subject);
                m(issuer);
                for cert in chain {
                    m(&mut cert.subject);
                    m(&mut cert.issuer);
                    m(&mut cert.not_before);
                    m(&mut cert.not_after);
                }
            }
        }
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
