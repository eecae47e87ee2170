//! One idea, one file: `process`: a program is running, found by name (as `ps` shows it),
//! by a regex over its command line, or by a pid file, with a minimum and optional maximum
//! count (seed 002's `ps aux | grep python`), and its resident memory, CPU % over a sample
//! and open files graded (seed 004's `ps aux | grep floyo` for a memory leak). Read through
//! sysinfo.

use super::http::Pattern;
use super::threshold::{Levels, Which, grade_by, levels_from, note, trim};
use super::{Env, Error, Probe};
use crate::model::{BoxFuture, Data, Outcome, Status, round};
use crate::values::{ByteSize, Duration, Invalid, Text};
use serde::{Deserialize, Serialize};

/// `process: { name: floyo, rss: { warn: 512M, crit: 1G }, cpu: { crit: 95 } }`.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(try_from = "RawProcessSpec")]
pub struct ProcessSpec {
    pub name: Option<Text>,
    pub cmdline: Option<Pattern>,
    pub pid_file: Option<Text>,
    pub min: u32,
    pub max: Option<u32>,
    pub rss: Option<SizeLevels>,
    pub cpu: Option<Levels>,
    pub open_files: Option<Levels>,
    pub sample: Duration,
}

/// The settings as written; `ProcessSpec` checks them together.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProcessSpec {
    /// The program's name: its `comm`, or the file name of its first argument.
    name: Option<Text>,
    /// A regex searched in the command line, its arguments joined by spaces.
    cmdline: Option<Pattern>,
    /// A file holding the pid of the process.
    pid_file: Option<Text>,
    /// At least this many must run (default 1).
    #[serde(default = "one", deserialize_with = "crate::values::whole")]
    #[schemars(with = "crate::values::number::WholeOrText")]
    min: u32,
    #[serde(default, deserialize_with = "crate::values::whole_opt")]
    #[schemars(with = "Option<crate::values::number::WholeOrText>")]
    max: Option<u32>,
    /// Resident memory of each match: `{ warn: 512M, crit: 1G }`.
    rss: Option<SizeLevels>,
    /// CPU busy over `sample`, in percent of one CPU (two busy CPUs read 200).
    cpu: Option<Levels>,
    /// Open file descriptors of each match (/proc/PID/fd).
    open_files: Option<Levels>,
    /// How long CPU is measured, for `cpu` (at least and by default 1s).
    sample: Option<Duration>,
}

fn one() -> u32 {
    1
}

impl TryFrom<RawProcessSpec> for ProcessSpec {
    type Error = Invalid;

    fn try_from(raw: RawProcessSpec) -> Result<Self, Invalid> {
        let given = [
            raw.name.is_some(),
            raw.cmdline.is_some(),
            raw.pid_file.is_some(),
        ];
        match given.iter().filter(|g| **g).count() {
            0 => {
                return Err(Invalid(
                    "process: give one of `name`, `cmdline` or `pid_file`".to_string(),
                ));
            }
            1 => {}
            _ => {
                return Err(Invalid(
                    "process: give only one of `name`, `cmdline` or `pid_file`".to_string(),
                ));
            }
        }
        if let Some(max) = raw.max
            && max < raw.min
        {
            return Err(Invalid(format!(
                "process: max {max} is below min {}",
                raw.min
            )));
        }
        let sample = match (raw.sample, &raw.cpu) {
            (Some(_), None) => {
                return Err(Invalid("process: `sample` is how long `cpu` is measured: give `cpu` too, or leave `sample` out".to_string()));
            }
            (Some(s), Some(_)) if s.0 < super::cpu::MIN_SAMPLE => {
                return Err(Invalid(format!(
                    "process `sample: {}` is too short: sample over at least 1s, or one busy moment reads as a busy process",
                    humantime::format_duration(s.0)
                )));
            }
            (Some(s), Some(_)) => s,
            (None, _) => Duration(super::cpu::MIN_SAMPLE),
        };
        Ok(ProcessSpec {
            name: raw.name,
            cmdline: raw.cmdline,
            pid_file: raw.pid_file,
            min: raw.min,
            max: raw.max,
            rss: raw.rss,
            cpu: raw.cpu,
            open_files: raw.open_files,
            sample,
        })
    }
}

/// Warn/crit levels written as sizes (`512M`, `1G`); one alone is a one-level threshold.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(try_from = "RawSizeLevels")]
pub struct SizeLevels {
    pub warn: Option<ByteSize>,
    pub crit: Option<ByteSize>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSizeLevels {
    warn: Option<ByteSize>,
    crit: Option<ByteSize>,
}

impl TryFrom<RawSizeLevels> for SizeLevels {
    type Error = Invalid;

    fn try_from(raw: RawSizeLevels) -> Result<Self, Invalid> {
        let bytes = |b: Option<ByteSize>| b.map(|b| b.0 as f64);
        match levels_from(bytes(raw.warn), bytes(raw.crit), false) {
            Err(Error::WarnAboveCrit { .. }) => Err(Invalid(format!(
                "warn {} is above crit {}: warn must not exceed crit",
                size(raw.warn.map_or(0, |b| b.0)),
                size(raw.crit.map_or(0, |b| b.0))
            ))),
            Err(e) => Err(Invalid(e.to_string())),
            Ok(_) => Ok(SizeLevels {
                warn: raw.warn,
                crit: raw.crit,
            }),
        }
    }
}

impl SizeLevels {
    fn levels(&self) -> Levels {
        Levels {
            warn: self.warn.map(|b| b.0 as f64),
            crit: self.crit.map(|b| b.0 as f64),
            below: false,
        }
    }
}

/// `640M`, `1.5G`, `812K`: powers of 1024, written as runbooks write sizes.
pub fn size(bytes: u64) -> String {
    let units = [
        (1u64 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
    ];
    for (scale, unit) in units {
        if bytes >= scale {
            return format!("{}{unit}", trim(round(bytes as f64 / scale as f64, 1)));
        }
    }
    format!("{bytes}B")
}

/// One running process as read from the machine (or fixed in a readings file).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProcessReading {
    pub pid: u32,
    /// As `ps` shows it (`comm`).
    #[serde(default)]
    pub name: String,
    /// The arguments, the program first.
    #[serde(default)]
    pub cmdline: Vec<String>,
    /// Resident memory in bytes.
    #[serde(default)]
    pub rss: u64,
    /// Busy over the sample, in percent of one CPU; read only when a sample was asked.
    pub cpu: Option<f64>,
    /// Open file descriptors; `None` when /proc/PID/fd cannot be read.
    pub open_files: Option<u64>,
}

/// Which processes a reading keeps.
pub type Wanted<'a> = dyn Fn(&ProcessReading) -> bool + 'a;

/// The machine's processes that `wanted` keeps (this process and zombies left out), with
/// resident memory and open files; with `sample`, CPU % from the CPU time each used over
/// it. A process that ends during the sample is no longer running, and not listed.
pub fn read_system(
    wanted: &Wanted<'_>,
    sample: Option<std::time::Duration>,
) -> Result<Vec<ProcessReading>, Error> {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, UpdateKind};
    let mut sys = sysinfo::System::new().map_err(Error::refused("cannot read the process list"))?;
    let kind = ProcessRefreshKind::nothing()
        .with_memory()
        .with_cpu()
        .with_cmd(UpdateKind::Always);
    sys.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
    let me = std::process::id();
    let mut found: Vec<(ProcessReading, u64)> = sys
        .processes()
        .values()
        // Threads are listed as tasks too: only processes count.
        .filter(|p| {
            p.pid().as_u32() != me
                && p.status() != ProcessStatus::Zombie
                && p.thread_kind().is_none()
        })
        .map(|p| {
            let reading = ProcessReading {
                pid: p.pid().as_u32(),
                name: p.name().to_string_lossy().into_owned(),
                cmdline: p
                    .cmd()
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
                rss: p.memory(),
                cpu: None,
                open_files: None,
            };
            (reading, p.accumulated_cpu_time())
        })
        .filter(|(reading, _)| wanted(reading))
        .collect();
    if let Some(sample) = sample
        && !found.is_empty()
    {
        let pids: Vec<Pid> = found.iter().map(|(r, _)| Pid::from_u32(r.pid)).collect();
        let started = std::time::Instant::now();
        std::thread::sleep(sample);
        sys.refresh_processes_specifics(ProcessesToUpdate::Some(&pids), true, kind);
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        found.retain_mut(|(reading, before)| {
            let Some(p) = sys.process(Pid::from_u32(reading.pid)) else {
                return false;
            };
            let used_ms = p.accumulated_cpu_time().saturating_sub(*before) as f64;
            reading.cpu = Some(round(used_ms * 100.0 / elapsed_ms, 1));
            reading.rss = p.memory();
            p.status() != ProcessStatus::Zombie
        });
    }
    for (reading, _) in &mut found {
        reading.open_files = sys
            .process(Pid::from_u32(reading.pid))
            .and_then(|p| p.open_files())
            .map(|n| n as u64);
    }
    Ok(found.into_iter().map(|(reading, _)| reading).collect())
}

pub struct ProcessCheck {
    pub spec: ProcessSpec,
}

impl Probe for ProcessCheck {
    fn kind(&self) -> &'static str {
        "process"
    }

    fn run<'a>(&'a self, env: &'a Env) -> BoxFuture<'a, Outcome> {
        let spec = self.spec.clone();
        let resources = env.resources.clone();
        crate::model::blocking(move || look(&spec, resources.as_ref()))
    }
}

fn look(spec: &ProcessSpec, resources: &dyn super::resources::Resources) -> Outcome {
    let (what, wanted): (String, Box<Wanted<'_>>) = match (&spec.name, &spec.cmdline) {
        (Some(name), _) => {
            let name = name.as_str().to_string();
            let shown = spec.name.as_ref().map_or("", |n| n.shown()).to_string();
            (shown, Box::new(move |p| is_named(p, &name)))
        }
        (None, Some(pattern)) => {
            let pattern = pattern.0.clone();
            let shown = format!("cmdline /{}/", pattern.as_str());
            (
                shown,
                Box::new(move |p| pattern.is_match(&p.cmdline.join(" "))),
            )
        }
        (None, None) => match pid_from_file(spec) {
            Ok((what, pid)) => (what, Box::new(move |p| p.pid == pid)),
            Err(why) => return Outcome::new(Status::Critical, why.0, Data::None),
        },
    };
    let sample = spec.cpu.is_some().then_some(spec.sample.0);
    let found = match resources.processes(wanted.as_ref(), sample) {
        Ok(found) => found,
        Err(e) => return Outcome::unknown(format!("{what}: {e}")),
    };
    grade_found(spec, &what, found)
}

/// `comm` is `name`, or the file name of the first argument is (`ps` shows either).
fn is_named(p: &ProcessReading, name: &str) -> bool {
    p.name == name
        || p.cmdline
            .first()
            .is_some_and(|argv0| argv0.rsplit('/').next() == Some(name))
}

/// The pid a pid file names, or why there is none (critical: nothing can be running).
fn pid_from_file(spec: &ProcessSpec) -> Result<(String, u32), Invalid> {
    let Some(file) = &spec.pid_file else {
        return Err(Invalid("give `name`, `cmdline` or `pid_file`".to_string()));
    };
    let text = std::fs::read_to_string(file.as_str())
        .map_err(|e| format!("cannot read pid file {}: {e}", file.shown()))?;
    match text.trim().parse::<u32>() {
        Ok(pid) if pid > 0 => Ok((format!("pid {pid} (from {})", file.shown()), pid)),
        _ => Err(Invalid(format!(
            "{} does not hold a pid: {:?}",
            file.shown(),
            text.trim()
        ))),
    }
}

/// The count against min/max, then each reading of each match: the worst one decides,
/// and the message names its pid.
fn grade_found(spec: &ProcessSpec, what: &str, mut found: Vec<ProcessReading>) -> Outcome {
    found.sort_by_key(|p| p.pid);
    let count = found.len() as u32;
    let mut data = Data::Process {
        process: what.to_string(),
        count,
        pids: found.iter().take(20).map(|p| p.pid).collect(),
        rss_bytes: None,
        cpu_percent: None,
        open_files: None,
    };
    let expected = match spec.max {
        Some(max) if max == spec.min => format!("expected {max}"),
        Some(max) => format!("expected {}–{max}", spec.min),
        None => format!("expected at least {}", spec.min),
    };
    if count < spec.min || spec.max.is_some_and(|max| count > max) {
        let message = format!("{what}: {count} running, {expected}");
        return Outcome::new(Status::Critical, message, data);
    }
    let mut status = Status::Ok;
    let mut parts = Vec::new();
    let metrics: [(Option<Levels>, Metric); 3] = [
        (spec.rss.map(|l| l.levels()), Metric::Rss),
        (spec.cpu, Metric::Cpu),
        (spec.open_files, Metric::OpenFiles),
    ];
    for (levels, metric) in metrics {
        let Some(levels) = levels else { continue };
        let Some(worst) = worst_of(&found, levels, metric) else {
            continue;
        };
        let (s, part) = match worst {
            Worst::Unread(pid) => (
                Status::Unknown,
                format!("pid {pid} {} cannot be read", metric.label()),
            ),
            Worst::Read { pid, value, status } => {
                metric.record(&mut data, value);
                let crossed = grade_by(value, levels).1.map(|c| {
                    let level = match c.which {
                        Which::Warn => levels.warn,
                        Which::Crit => levels.crit,
                    };
                    c.describe(metric.level(level.unwrap_or_default()))
                });
                (
                    status,
                    format!("pid {pid} {}{}", metric.show(value), note(crossed)),
                )
            }
        };
        status = status.worst(s);
        parts.push(part);
    }
    let mut message = format!("{what}: {count} running");
    if !parts.is_empty() {
        message.push_str("; ");
        message.push_str(&parts.join(", "));
    }
    Outcome::new(status, message, data)
}

#[derive(Clone, Copy)]
enum Metric {
    Rss,
    Cpu,
    OpenFiles,
}

enum Worst {
    Read {
        pid: u32,
        value: f64,
        status: Status,
    },
    Unread(u32),
}

impl Metric {
    fn label(self) -> &'static str {
        match self {
            Metric::Rss => "rss",
            Metric::Cpu => "cpu",
            Metric::OpenFiles => "open files",
        }
    }

    fn value(self, p: &ProcessReading) -> Option<f64> {
        match self {
            Metric::Rss => Some(p.rss as f64),
            Metric::Cpu => p.cpu,
            Metric::OpenFiles => p.open_files.map(|n| n as f64),
        }
    }

    /// `rss 640M`, `cpu 97.5%`, `1030 open files`.
    fn show(self, value: f64) -> String {
        match self {
            Metric::Rss => format!("rss {}", size(value as u64)),
            Metric::Cpu => format!("cpu {}%", trim(value)),
            Metric::OpenFiles => format!("{} open files", trim(value)),
        }
    }

    /// A level as the user wrote it: `512M`, `95%`, `100`.
    fn level(self, level: f64) -> String {
        match self {
            Metric::Rss => size(level as u64),
            Metric::Cpu => format!("{}%", trim(level)),
            Metric::OpenFiles => trim(level),
        }
    }

    fn record(self, data: &mut Data, value: f64) {
        if let Data::Process {
            rss_bytes,
            cpu_percent,
            open_files,
            ..
        } = data
        {
            match self {
                Metric::Rss => *rss_bytes = Some(value as u64),
                Metric::Cpu => *cpu_percent = Some(value),
                Metric::OpenFiles => *open_files = Some(value as u64),
            }
        }
    }
}

/// The match whose reading grades worst (on a tie, the higher reading, or the lower with
/// `below`); one that cannot be read outranks any but a critical one, as `unknown` does.
fn worst_of(found: &[ProcessReading], levels: Levels, metric: Metric) -> Option<Worst> {
    let mut worst: Option<Worst> = None;
    for p in found {
        let candidate = match metric.value(p) {
            None => Worst::Unread(p.pid),
            Some(value) => Worst::Read {
                pid: p.pid,
                value,
                status: grade_by(value, levels).0,
            },
        };
        let rank = |w: &Worst| match w {
            Worst::Unread(_) => (Status::Unknown, 0.0),
            Worst::Read { value, status, .. } => {
                (*status, if levels.below { -value } else { *value })
            }
        };
        let better = match &worst {
            None => true,
            Some(current) => {
                let (new, old) = (rank(&candidate), rank(current));
                let worse = new.0.worst(old.0) != old.0;
                worse || (new.0 == old.0 && new.1 > old.1)
            }
        };
        if better {
            worst = Some(candidate);
        }
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(pid: u32, rss: u64, cpu: f64, open_files: Option<u64>) -> ProcessReading {
        ProcessReading {
            pid,
            name: "worker".into(),
            cmdline: vec!["/usr/bin/python3".into(), "main.py".into()],
            rss,
            cpu: Some(cpu),
            open_files,
        }
    }

    fn spec(yaml: &str) -> ProcessSpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn the_worst_match_decides_and_is_named() {
        let spec = spec("{ name: worker, rss: { warn: 512M, crit: 1G }, cpu: { crit: 95 } }");
        let found = vec![
            reading(10, 100 << 20, 99.0, Some(5)),
            reading(11, 700 << 20, 5.0, Some(5)),
        ];
        let outcome = grade_found(&spec, "worker", found);
        assert_eq!(outcome.status, Status::Critical);
        assert_eq!(
            outcome.message,
            "worker: 2 running; pid 11 rss 700M (> warn 512M), pid 10 cpu 99% (> crit 95%)"
        );
    }

    #[test]
    fn an_unreadable_reading_is_unknown_not_ok() {
        let spec = spec("{ name: worker, open_files: { crit: 100 } }");
        let found = vec![reading(10, 0, 0.0, Some(3)), reading(12, 0, 0.0, None)];
        let outcome = grade_found(&spec, "worker", found);
        assert_eq!(outcome.status, Status::Unknown);
        assert_eq!(
            outcome.message,
            "worker: 2 running; pid 12 open files cannot be read"
        );
    }

    #[test]
    fn sizes_read_as_written() {
        assert_eq!(size(512 << 20), "512M");
        assert_eq!(size(3 << 29), "1.5G");
        assert_eq!(size(900), "900B");
    }
}
