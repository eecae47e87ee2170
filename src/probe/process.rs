//! `process`: a program is running, found by name (as `ps` shows it) or by a pid file,
//! with a minimum and optional maximum count (seed 002's `ps aux | grep`).

use super::{Env, Probe};
use crate::model::{BoxFuture, Data, Outcome, Status};
use crate::values::Text;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    /// The program's name: its `comm`, or the file name of its first argument.
    pub name: Option<Text>,
    /// A file holding the pid of the process.
    pub pid_file: Option<Text>,
    #[serde(default = "one")]
    pub min: u32,
    pub max: Option<u32>,
}

fn one() -> u32 {
    1
}

pub struct ProcessCheck {
    pub spec: ProcessSpec,
}

impl Probe for ProcessCheck {
    fn kind(&self) -> &'static str {
        "process"
    }

    fn run<'a>(&'a self, _ctx: &'a Env) -> BoxFuture<'a, Outcome> {
        let spec = self.spec.clone();
        crate::model::blocking(move || look(&spec))
    }
}

fn look(spec: &ProcessSpec) -> Outcome {
    let (what, pids) = match (&spec.name, &spec.pid_file) {
        (_, Some(file)) => match std::fs::read_to_string(file.as_str()) {
            Ok(text) => match text.trim().parse::<u32>() {
                Ok(pid) if std::path::Path::new(&format!("/proc/{pid}")).exists() => {
                    (format!("pid {pid} (from {})", file.shown()), vec![pid])
                }
                Ok(pid) => (format!("pid {pid} (from {})", file.shown()), vec![]),
                Err(_) => {
                    return Outcome::new(
                        Status::Critical,
                        format!("{} does not hold a pid: {:?}", file.shown(), text.trim()),
                        Data::None,
                    );
                }
            },
            Err(e) => {
                return Outcome::new(
                    Status::Critical,
                    format!("cannot read pid file {}: {e}", file.shown()),
                    Data::None,
                );
            }
        },
        (Some(name), None) => (name.shown().to_string(), by_name(name.as_str())),
        (None, None) => return Outcome::unknown("give `name` or `pid_file`"),
    };
    let count = pids.len() as u32;
    let data = Data::Process {
        process: what.clone(),
        count,
        pids: pids.iter().take(20).copied().collect(),
    };
    let status = if count < spec.min || spec.max.is_some_and(|max| count > max) {
        Status::Critical
    } else {
        Status::Ok
    };
    let expected = match spec.max {
        Some(max) if max == spec.min => format!("expected {max}"),
        Some(max) => format!("expected {}–{max}", spec.min),
        None => format!("expected at least {}", spec.min),
    };
    let message = match status {
        Status::Ok => format!("{what}: {count} running"),
        _ => format!("{what}: {count} running, {expected}"),
    };
    Outcome::new(status, message, data)
}

/// Pids whose `comm` or first argument's file name is `name`; this process excluded.
fn by_name(name: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim_end() == name {
                return true;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            let argv0 = String::from_utf8_lossy(argv0);
            argv0.rsplit('/').next() == Some(name)
        })
        .collect();
    pids.sort_unstable();
    pids
}
