//! The one report model: how a step ended (`Status`), what it found (`Outcome`, `Data`),
//! what running it gave (`CheckResult`) and a whole run (`Report`). Everything above
//! reads and writes these; nothing here knows how a step runs or how a report is shown.

use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future, as step kinds and probes return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a step ended. Ordered by how bad it is for the report: critical > unknown >
/// warning > ok, and skipped counts as ok.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Critical,
    Unknown,
    Skipped,
}

impl Status {
    fn rank(self) -> u8 {
        match self {
            Status::Ok | Status::Skipped => 0,
            Status::Warning => 1,
            Status::Unknown => 2,
            Status::Critical => 3,
        }
    }

    /// The worse of two statuses.
    pub fn worst(self, other: Status) -> Status {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    /// Nagios plugin convention: 0 ok, 1 warning, 2 critical, 3 unknown.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok | Status::Skipped => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Unknown => "unknown",
            Status::Skipped => "skipped",
        }
    }

    /// Seed 000's words: ok → healthy, warning → degraded, critical/unknown → unhealthy.
    pub fn health_word(self) -> &'static str {
        match self {
            Status::Ok | Status::Skipped => "healthy",
            Status::Warning => "degraded",
            Status::Critical | Status::Unknown => "unhealthy",
        }
    }
}

/// What a check found: a status, a one-line message a person can act on, and data.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub status: Status,
    pub message: String,
    pub data: Data,
}

impl Outcome {
    pub fn new(status: Status, message: impl Into<String>, data: Data) -> Self {
        Outcome {
            status,
            message: message.into(),
            data,
        }
    }

    /// The check could not take its reading at all.
    pub fn unknown(message: impl Into<String>) -> Self {
        Outcome::new(Status::Unknown, message, Data::None)
    }
}

/// Kind-specific readings, kept typed so every renderer (JSON, Prometheus gauges…)
/// reads the same numbers. Field names follow seed 000's health JSON.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Data {
    None,
    Application {
        version: &'static str,
        pid: u32,
    },
    Memory {
        percent_used: f64,
        total_gb: f64,
        available_gb: f64,
    },
    Swap {
        percent_used: f64,
        total_gb: f64,
        free_gb: f64,
    },
    Disk {
        path: String,
        mount: String,
        percent_used: f64,
        total_gb: f64,
        free_gb: f64,
    },
    Cpu {
        percent_used: f64,
        cpu_count: usize,
    },
    Http {
        url: String,
        status_code: Option<u16>,
        latency_ms: f64,
        bytes: u64,
    },
    Tcp {
        address: String,
        latency_ms: f64,
    },
    Dns {
        name: String,
        server: Option<String>,
        addresses: Vec<String>,
        latency_ms: f64,
    },
    Command {
        command: String,
        exit_code: Option<i32>,
        stdout: String,
        stderr: String,
        value: Option<f64>,
    },
    File {
        path: String,
        size_bytes: u64,
    },
    Backup {
        set: String,
        newest_age_seconds: Option<u64>,
        drill_age_seconds: Option<u64>,
    },
    Directory {
        path: String,
        entries: u64,
        size_bytes: u64,
    },
    LogErrors {
        path: String,
        lines: u64,
        matched: u64,
        rate_percent: f64,
    },
    /// `log_match`: lines matching in the window, and their rate when graded by it.
    LogMatch {
        source: String,
        matched: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        per_minute: Option<f64>,
    },
    /// `log_latency`: nearest-rank percentiles, mean and max of the durations found.
    LogLatency {
        source: String,
        samples: u64,
        p50_ms: f64,
        p90_ms: f64,
        p95_ms: f64,
        p99_ms: f64,
        mean_ms: f64,
        max_ms: f64,
    },
    Process {
        process: String,
        count: u32,
        pids: Vec<u32>,
        /// The graded readings of the worst match, when asked for.
        #[serde(skip_serializing_if = "Option::is_none")]
        rss_bytes: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cpu_percent: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        open_files: Option<u64>,
    },
    Service {
        unit: String,
        state: String,
    },
    Port {
        port: u16,
        listening: bool,
    },
    TlsCert {
        address: String,
        days_left: i64,
        not_after: String,
        /// `not_after` as a unix time, for the Prometheus gauge.
        #[serde(skip)]
        not_after_unix: i64,
        subject: String,
        issuer: String,
        chain: Vec<CertInfo>,
    },
    Load {
        load1: f64,
        load5: f64,
        load15: f64,
        cpu_count: usize,
    },
}

/// Run blocking work (files, locks, subprocesses) off the async threads.
pub fn blocking<'a>(work: impl FnOnce() -> Outcome + Send + 'static) -> BoxFuture<'a, Outcome> {
    Box::pin(async move {
        tokio::task::spawn_blocking(work)
            .await
            .unwrap_or_else(|_| Outcome::unknown("the step crashed"))
    })
}

/// Bytes → GiB rounded to two decimals, as seed 000 reports sizes.
pub fn gb(bytes: u64) -> f64 {
    round(bytes as f64 / (1024.0 * 1024.0 * 1024.0), 2)
}

/// `used / total` in percent, rounded to one decimal: the number shown is the number graded.
pub fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    round(used as f64 * 100.0 / total as f64, 1)
}

pub fn round(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

/// What one certificate of the chain says about itself.
#[derive(Clone, Debug, Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
}

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
            Data::LogMatch { source, .. } | Data::LogLatency { source, .. } => m(source),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_status_orders_critical_unknown_warning_ok() {
        use Status::*;
        assert_eq!(Ok.worst(Warning), Warning);
        assert_eq!(Warning.worst(Unknown), Unknown);
        assert_eq!(Unknown.worst(Critical), Critical);
        assert_eq!(Critical.worst(Unknown), Critical);
        assert_eq!(Skipped.worst(Ok), Skipped);
        assert_eq!(Ok.worst(Skipped), Ok);
    }

    #[test]
    fn exit_codes_follow_nagios() {
        let codes: Vec<u8> = [
            Status::Ok,
            Status::Warning,
            Status::Critical,
            Status::Unknown,
            Status::Skipped,
        ]
        .iter()
        .map(|s| s.exit_code())
        .collect();
        assert_eq!(codes, [0, 1, 2, 3, 0]);
    }

    #[test]
    fn percent_and_gb_round_as_shown() {
        assert_eq!(percent(3, 4), 75.0);
        assert_eq!(percent(1, 3), 33.3);
        assert_eq!(percent(5, 0), 0.0);
        assert_eq!(gb(16 * 1024 * 1024 * 1024), 16.0);
    }
}
