//! What the diagnosis tests share: the machine as fixed readings, log lines, fixture
//! folders, and the two shapes of mutation (a machine reading, a var).

use crate::common::library::Book;
use crate::common::{GIB, Opsbook};
use serde_json::json;
use std::path::Path;

/// The machine as the readings file fixes it: percents used, and the processes running
/// (name, pid, resident bytes); `disks` adds a reading for a path other than `/`.
#[derive(Clone)]
pub(super) struct Machine {
    pub(super) memory: f64,
    pub(super) swap: f64,
    pub(super) disk: f64,
    pub(super) cpu: f64,
    pub(super) disks: Vec<(String, f64)>,
    pub(super) processes: Vec<(&'static str, u32, u64)>,
}

impl Default for Machine {
    fn default() -> Self {
        Machine {
            memory: 40.0,
            swap: 5.0,
            disk: 10.0,
            cpu: 5.0,
            disks: Vec::new(),
            processes: Vec::new(),
        }
    }
}

impl Machine {
    /// This machine with one reading changed.
    pub(super) fn but(&self, change: impl FnOnce(&mut Machine)) -> Machine {
        let mut changed = self.clone();
        change(&mut changed);
        changed
    }

    /// `ob` reading this machine (`$OPSBOOK_READINGS`), swap and processes included.
    pub(super) fn on(&self, ob: Opsbook) -> Opsbook {
        let total = 100 * GIB;
        let left = |used: f64| ((100.0 - used) / 100.0 * total as f64) as u64;
        let mut disks = serde_json::Map::new();
        disks.insert(
            "/".into(),
            json!({"mount": "/", "total": total, "available": left(self.disk)}),
        );
        for (path, used) in &self.disks {
            disks.insert(
                path.clone(),
                json!({"mount": path, "total": total, "available": left(*used)}),
            );
        }
        let processes: Vec<serde_json::Value> = self
            .processes
            .iter()
            .map(|(name, pid, rss)| {
                json!({"pid": pid, "name": name, "cmdline": [format!("/usr/bin/{name}")],
                       "rss": rss, "open_files": 12})
            })
            .collect();
        let readings = json!({
            "memory": {
                "total": total,
                "available": left(self.memory),
                "swap_total": total,
                "swap_used": (self.swap / 100.0 * total as f64) as u64,
            },
            "disks": disks,
            "cpu": {"percent": self.cpu, "count": 4},
            "load": {"one": 0.5, "five": 0.25, "fifteen": 0.125},
            "processes": processes,
        });
        let path = ob.path("readings.json");
        ob.file("readings.json", &readings.to_string())
            .env("OPSBOOK_READINGS", path.display().to_string())
    }
}

/// Log lines in Python logging's shape (`2026-01-10 09:50:00,000 - app - ERROR - text`):
/// for each `(seconds ago, level, text, count)`, `count` lines a second apart going back.
pub(super) fn log(parts: &[(i64, &str, &str, usize)]) -> String {
    // Zone-less times are read in the machine's zone, so they are written in it.
    let zone = jiff::tz::TimeZone::system();
    let now = jiff::Timestamp::now();
    let mut out = String::new();
    for (ago, level, text, count) in parts {
        for i in 0..*count {
            let at = zone.to_datetime(now - jiff::SignedDuration::from_secs(ago + i as i64));
            out.push_str(&format!(
                "{} - app - {level} - {text}\n",
                at.strftime("%Y-%m-%d %H:%M:%S,000")
            ));
        }
    }
    out
}

pub(super) fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(path, text).expect("write fixture");
}

/// A directory holding `files` small files.
pub(super) fn folder(dir: &Path, name: &str, files: usize) {
    std::fs::create_dir_all(dir.join(name)).expect("mkdir");
    for i in 0..files {
        write(dir, &format!("{name}/file-{i}.x12"), "ISA*00*\n");
    }
}

/// A directory whose one (sparse) file is `bytes` long.
pub(super) fn big(dir: &Path, name: &str, bytes: u64) {
    std::fs::create_dir_all(dir.join(name)).expect("mkdir");
    std::fs::File::create(dir.join(name).join("big.bin"))
        .expect("create")
        .set_len(bytes)
        .expect("set_len");
}

/// A machine reading that breaks one resource step, by the step's name.
pub(super) type Reading = (&'static str, fn(&mut Machine));

pub(super) const MEMORY: Reading = ("Memory", |m| m.memory = 95.0);
pub(super) const CPU: Reading = ("CPU", |m| m.cpu = 99.0);

pub(super) fn full_disk(machine: &mut Machine) {
    machine.disk = 95.0;
}

/// Each reading, on the calm machine (through `env`), makes its step critical.
pub(super) fn readings_fail(
    book: &mut Book,
    calm: &Machine,
    readings: &[Reading],
    env: &dyn Fn(Opsbook) -> Opsbook,
) {
    for (step, change) in readings {
        book.mutant(&[], |ob| env(calm.but(change).on(ob)), step, "critical");
    }
}

/// Each `(var, value, step, severity)`: with that one var changed, on the calm machine
/// (through `env`), the step ends with that severity.
pub(super) fn vars_fail(
    book: &mut Book,
    calm: &Machine,
    env: &dyn Fn(Opsbook) -> Opsbook,
    cases: &[(&str, String, &str, &str)],
) {
    for (var, value, step, want) in cases {
        book.mutant(&[(var, value.clone())], |ob| env(calm.on(ob)), step, want);
    }
}

/// The run as the calm machine sets it up, nothing added.
pub(super) fn as_is(ob: Opsbook) -> Opsbook {
    ob
}

pub(super) fn port_of(url: &str) -> String {
    url.rsplit(':').next().expect("a port").to_string()
}

pub(super) fn text(value: &str) -> String {
    value.to_string()
}
