//! `opsbook health`: the health runbook built from config — application, memory, swap,
//! each configured disk, CPU and load — run through the engine into one report; under
//! `--watch` and `--serve` the endpoints are graded on their own intervals (`monitor`).

use crate::engine::Context;
use crate::engine::{Step, run_concurrently};
use crate::model::Report;
use crate::model::Status;
use crate::probe::threshold::Levels;
use crate::probe::{ApplicationCheck, CpuCheck, DiskCheck, LoadCheck, MemoryCheck, SwapCheck};
use crate::values::Threshold;
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod config;
pub mod monitor;
pub mod serve;
mod state;
pub mod tell;

pub use config::{BUILT_IN_CHECKS, Endpoint, Endpoints, HealthConfig, Thresholds};
pub use monitor::{Hook, Monitor, State, Transition};

/// How long a program an endpoint runs may take when neither it nor its step says.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(30);

/// What can stop `health` itself (a check that fails is a report, not an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--serve` on an address that cannot be bound.
    #[error("cannot listen on {address}")]
    Listen {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The health runbook: the steps `opsbook health` runs, in report order.
pub fn steps(config: &HealthConfig) -> Vec<Step> {
    let mut steps = built_in_steps(config);
    steps.extend(
        config
            .endpoints
            .iter()
            .map(|endpoint| endpoint.step.build(ENDPOINT_TIMEOUT)),
    );
    steps
}

/// The machine's own checks (everything but the endpoints), in report order.
fn built_in_steps(config: &HealthConfig) -> Vec<Step> {
    let t = &config.thresholds;
    let mut steps = vec![
        Step::new("application", ApplicationCheck),
        Step::new(
            "memory",
            MemoryCheck {
                levels: levels(&t.memory),
            },
        ),
        Step::new(
            "swap",
            SwapCheck {
                levels: levels(&t.swap),
            },
        ),
    ];
    for (i, path) in config.disks.iter().enumerate() {
        // Seed 000 calls the first disk `disk`; the others are told apart by path.
        let name = if i == 0 {
            "disk".to_string()
        } else {
            format!("disk:{}", path.shown())
        };
        let check = DiskCheck {
            path: PathBuf::from(path.as_str()),
            levels: levels(&t.disk),
        };
        steps.push(Step::new(name, check));
    }
    steps.push(Step::new(
        "cpu",
        CpuCheck {
            levels: levels(&t.cpu),
            sample: config.cpu_sample.0,
        },
    ));
    steps.push(Step::new("load", LoadCheck));
    steps
}

fn levels<const W: u8, const C: u8>(threshold: &Threshold<W, C>) -> Levels {
    Levels::new(threshold.warn.0, threshold.crit.0)
}

/// Run the health runbook once.
pub async fn check(config: &HealthConfig, ctx: &Context) -> Report {
    run(steps(config), config, ctx).await
}

/// The report under `--watch` and `--serve`: the machine's own checks, run now, and each
/// endpoint's latest graded reading (waiting for the first of each).
pub async fn watched(config: &HealthConfig, ctx: &Context, monitor: &Monitor) -> Report {
    let (report, endpoints) = tokio::join!(machine(config, ctx), monitor.readings());
    with_endpoints(&report, endpoints)
}

/// The machine's own checks alone.
async fn machine(config: &HealthConfig, ctx: &Context) -> Report {
    run(built_in_steps(config), config, ctx).await
}

/// `report` (the machine's checks) followed by the endpoints' readings.
fn with_endpoints(report: &Report, endpoints: Vec<crate::model::CheckResult>) -> Report {
    let mut report = report.clone();
    report.results.extend(endpoints);
    report
}

async fn run(steps: Vec<Step>, config: &HealthConfig, ctx: &Context) -> Report {
    let started = Instant::now();
    let timestamp = ctx.clock.now();
    let results = run_concurrently(steps, ctx, config.concurrency).await;
    Report {
        title: "health".to_string(),
        kind: crate::model::ReportKind::Health,
        timestamp,
        duration: started.elapsed(),
        results,
    }
}

/// The deploy gate (`--retry-timeout`): run the health runbook until it is ok or `limit`
/// has passed, pausing `pause` between attempts, and return the last report. `progress`
/// hears of each failed attempt and, when it took more than one, of the outcome.
pub async fn gate(
    config: &HealthConfig,
    ctx: &Context,
    limit: Duration,
    pause: Duration,
    progress: &dyn Fn(&str),
) -> Report {
    let deadline = Instant::now() + limit;
    let mut attempt = 1;
    loop {
        let report = check(config, ctx).await;
        let status = report.status();
        let left = deadline.saturating_duration_since(Instant::now());
        if matches!(status, Status::Ok | Status::Skipped) || left.is_zero() {
            if attempt > 1 {
                progress(&format!(
                    "health: {} after {attempt} attempts",
                    status.health_word()
                ));
            }
            return report;
        }
        let failing: Vec<&str> = report
            .results
            .iter()
            .filter(|r| !matches!(r.status, Status::Ok | Status::Skipped))
            .map(|r| r.name.as_str())
            .collect();
        let wait = Duration::from_millis(pause.min(left).as_millis() as u64);
        progress(&format!(
            "health: {} (attempt {attempt}: {}); again in {}, {} left",
            status.health_word(),
            failing.join(", "),
            humantime::format_duration(wait),
            humantime::format_duration(Duration::from_secs(left.as_secs_f64().ceil() as u64)),
        ));
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::probe::resources::{
        CpuReading, DiskReading, FixedResources, LoadReading, MemoryReading,
    };
    use std::sync::Arc;

    const GIB: u64 = 1024 * 1024 * 1024;

    fn ctx(memory_used_percent: u64, disk_used_percent: u64, cpu: f64) -> Context {
        let mut disks = std::collections::BTreeMap::new();
        disks.insert(
            "/".to_string(),
            DiskReading {
                mount: "/".into(),
                total: 100 * GIB,
                available: (100 - disk_used_percent) * GIB,
                used: None,
            },
        );
        let fixed = FixedResources {
            memory: Some(MemoryReading {
                total: 100 * GIB,
                available: (100 - memory_used_percent) * GIB,
                swap_total: 0,
                swap_used: 0,
            }),
            disks,
            cpu: Some(CpuReading {
                percent: cpu,
                count: 8,
            }),
            load: Some(LoadReading {
                one: 0.5,
                five: 0.4,
                fifteen: 0.3,
            }),
            processes: None,
        };
        Context {
            resources: Arc::new(fixed),
            clock: Arc::new(FixedClock("2024-01-01T12:00:00Z".parse().unwrap())),
            interaction: crate::engine::Interaction::None,
            config: Arc::default(),
        }
    }

    fn run(ctx: Context) -> Report {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(check(&HealthConfig::default(), &ctx))
    }

    fn status_of(report: &Report, name: &str) -> Status {
        report
            .results
            .iter()
            .find(|r| r.name == name)
            .unwrap()
            .status
    }

    #[test]
    fn seed_thresholds_at_their_edges() {
        let report = run(ctx(75, 80, 90.0));
        assert_eq!(report.status(), Status::Ok, "exactly at warn is ok");
        let report = run(ctx(76, 80, 50.0));
        assert_eq!(status_of(&report, "memory"), Status::Warning);
        assert_eq!(report.status(), Status::Warning);
        let report = run(ctx(50, 91, 50.0));
        assert_eq!(status_of(&report, "disk"), Status::Critical);
        assert_eq!(report.status(), Status::Critical);
        let report = run(ctx(50, 50, 95.5));
        assert_eq!(status_of(&report, "cpu"), Status::Critical);
    }

    #[test]
    fn report_order_and_names() {
        let report = run(ctx(10, 10, 10.0));
        let names: Vec<&str> = report.results.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["application", "memory", "swap", "disk", "cpu", "load"]
        );
        assert_eq!(report.timestamp.to_string(), "2024-01-01T12:00:00Z");
    }

    #[test]
    fn a_failed_reading_is_unknown_not_ok() {
        let ctx = Context {
            resources: Arc::new(FixedResources::default()),
            clock: Arc::new(FixedClock("2024-01-01T12:00:00Z".parse().unwrap())),
            interaction: crate::engine::Interaction::None,
            config: Arc::default(),
        };
        let report = run(ctx);
        assert_eq!(status_of(&report, "memory"), Status::Unknown);
        assert_eq!(report.status(), Status::Unknown);
    }

    #[test]
    fn the_gate_returns_at_once_when_ok_or_out_of_time() {
        let heard = std::cell::RefCell::new(Vec::<String>::new());
        let progress = |line: &str| heard.borrow_mut().push(line.to_string());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let config = HealthConfig::default();
        let gate_on = |ctx: Context| {
            rt.block_on(gate(
                &config,
                &ctx,
                Duration::ZERO,
                Duration::from_secs(3600),
                &progress,
            ))
        };
        assert_eq!(gate_on(ctx(10, 10, 10.0)).status(), Status::Ok);
        assert_eq!(gate_on(ctx(50, 95, 10.0)).status(), Status::Critical);
        assert!(heard.borrow().is_empty(), "{:?}", heard.borrow());
    }
}
