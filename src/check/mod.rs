//! The check engine's vocabulary: a step kind implements `Check`, running it gives an
//! `Outcome`, and the engine (`engine.rs`) turns named steps into `CheckResult`s.
//! Every kind lives in its own file here and is built in one place (`health::steps`,
//! and later the runbook loader).

mod application;
pub mod archive;
pub mod backup;
pub mod command;
pub mod cpu;
pub mod disk;
pub mod dns;
pub mod file;
pub mod http;
pub mod latency;
mod load;
pub mod log_errors;
pub mod manual;
mod memory;
pub mod port;
pub mod process;
pub mod prune;
pub mod resolve;
pub mod resources;
pub mod rotate;
pub mod service;
pub mod spec;
mod swap;
pub mod tcp;
pub mod threshold;
pub mod tls_cert;
pub mod verify;

pub use application::ApplicationCheck;
pub use cpu::CpuCheck;
pub use disk::DiskCheck;
pub use dns::DnsCheck;
pub use http::HttpCheck;
pub use load::LoadCheck;
pub use memory::MemoryCheck;
pub use spec::{Item, StepSpec};
pub use swap::SwapCheck;
pub use tcp::TcpCheck;
pub use tls_cert::TlsCertCheck;

use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

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
    Process {
        process: String,
        count: u32,
        pids: Vec<u32>,
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
        chain: Vec<tls_cert::CertInfo>,
    },
    Load {
        load1: f64,
        load5: f64,
        load15: f64,
        cpu_count: usize,
    },
}

/// A step kind. `run` never panics and never outlives its own timeout: whatever goes
/// wrong becomes an `Outcome` with a message.
pub trait Check: Send + Sync {
    /// The kind's name as written in runbooks: `memory`, `disk`, `http`, …
    fn kind(&self) -> &'static str;
    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Outcome>;
}

/// What checks may reach outside themselves. Tests swap in fixed readings and a fixed clock.
#[derive(Clone)]
pub struct Context {
    pub resources: Arc<dyn resources::Resources>,
    pub clock: Arc<dyn Clock>,
    /// Whether a `manual` step can ask a person.
    pub interaction: Interaction,
    /// The loaded configuration (backup steps read their destination and records).
    pub config: Arc<crate::config::Config>,
}

/// Who answers a `manual` step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interaction {
    /// `--yes`: every prompt is confirmed.
    Yes,
    /// A person at a terminal is asked.
    Ask,
    /// Nobody can answer (cron, CI, a pipe): the step is `unknown`.
    None,
    /// Scheduled maintenance: the step is reported as a to-do item (`skipped`), never
    /// waited on and never failing the run.
    Todo,
}

/// A step that cannot run, saying why (a bug guard; never built from valid input).
pub struct Unrunnable(pub String);

impl Check for Unrunnable {
    fn kind(&self) -> &'static str {
        "invalid"
    }

    fn run<'a>(&'a self, _ctx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { Outcome::unknown(self.0.clone()) })
    }
}

/// Run blocking work (an action step: files, locks, subprocesses) off the async threads.
pub fn blocking<'a>(work: impl FnOnce() -> Outcome + Send + 'static) -> BoxFuture<'a, Outcome> {
    Box::pin(async move {
        tokio::task::spawn_blocking(work)
            .await
            .unwrap_or_else(|_| Outcome::unknown("the step crashed"))
    })
}

/// A step naming a set the config does not have: unknown, with a did-you-mean.
pub fn unknown_set<'k>(
    section: &str,
    name: &str,
    known: impl Iterator<Item = &'k String>,
) -> Outcome {
    let known: Vec<&str> = known.map(String::as_str).collect();
    let hint = crate::error::hint(name, &known);
    Outcome::unknown(format!("no set {name:?} in `{section}`{hint}"))
}

impl Context {
    /// The real machine and the real clock.
    pub fn system() -> Self {
        Context {
            resources: Arc::new(resources::SystemResources),
            clock: Arc::new(SystemClock),
            interaction: Interaction::None,
            config: Arc::default(),
        }
    }
}

pub trait Clock: Send + Sync {
    fn now(&self) -> jiff::Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

/// A clock that always says the same time.
pub struct FixedClock(pub jiff::Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> jiff::Timestamp {
        self.0
    }
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
