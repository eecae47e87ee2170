//! Reading the machine: memory, swap, filesystems, CPU and load. Checks read through the
//! `Resources` trait, so threshold logic is tested with fixed numbers
//! (`FixedResources`, also loadable from a JSON file named by `$OPSBOOK_READINGS`).

use super::Error;
use super::process::{ProcessReading, Wanted};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MemoryReading {
    pub total: u64,
    pub available: u64,
    #[serde(default)]
    pub swap_total: u64,
    #[serde(default)]
    pub swap_used: u64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DiskReading {
    /// The mount point of the filesystem holding the path.
    pub mount: String,
    pub total: u64,
    /// Space an unprivileged user can still write.
    pub available: u64,
    /// Space in use; without it, `total - available`. Space reserved for root is
    /// neither, so the percentage is `used / (used + available)`, as `df` computes it.
    #[serde(default)]
    pub used: Option<u64>,
}

impl DiskReading {
    pub fn used(&self) -> u64 {
        self.used
            .unwrap_or_else(|| self.total.saturating_sub(self.available))
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CpuReading {
    pub percent: f64,
    pub count: usize,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoadReading {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

pub trait Resources: Send + Sync {
    fn memory(&self) -> Result<MemoryReading, Error>;
    fn disk(&self, path: &Path) -> Result<DiskReading, Error>;
    /// Blocks for `sample` while CPU time is measured.
    fn cpu(&self, sample: Duration) -> Result<CpuReading, Error>;
    fn load(&self) -> Result<LoadReading, Error>;
    /// The running processes `wanted` keeps, as `process::read_system` reads them.
    fn processes(
        &self,
        wanted: &Wanted<'_>,
        sample: Option<Duration>,
    ) -> Result<Vec<ProcessReading>, Error>;
}

/// The real machine, through sysinfo and statvfs.
#[derive(Default)]
pub struct SystemResources;

impl Resources for SystemResources {
    fn memory(&self) -> Result<MemoryReading, Error> {
        let mut sys = system()?;
        sys.refresh_memory();
        Ok(MemoryReading {
            total: sys.total_memory(),
            available: sys.available_memory(),
            swap_total: sys.total_swap(),
            swap_used: sys.used_swap(),
        })
    }

    fn disk(&self, path: &Path) -> Result<DiskReading, Error> {
        let stats =
            fs4::statvfs(path).map_err(Error::io(format!("cannot stat {}", path.display())))?;
        let canonical = path
            .canonicalize()
            .map_err(Error::io(format!("cannot resolve {}", path.display())))?;
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mount = mount_point_of(&canonical, &mounts)
            .map(|m| m.display().to_string())
            .unwrap_or_else(|| "/".to_string());
        Ok(DiskReading {
            mount,
            total: stats.total_space(),
            available: stats.available_space(),
            used: Some(stats.total_space().saturating_sub(stats.free_space())),
        })
    }

    fn cpu(&self, sample: Duration) -> Result<CpuReading, Error> {
        let mut sys = system()?;
        sys.refresh_cpu_usage();
        std::thread::sleep(sample.max(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL));
        sys.refresh_cpu_usage();
        let count = sys.cpus().len();
        if count == 0 {
            return Err(Error::NoCpus);
        }
        Ok(CpuReading {
            percent: f64::from(sys.global_cpu_usage()),
            count,
        })
    }

    fn load(&self) -> Result<LoadReading, Error> {
        let load = sysinfo::System::load_average()
            .map_err(Error::refused("cannot read the load average"))?;
        Ok(LoadReading {
            one: load.one,
            five: load.five,
            fifteen: load.fifteen,
        })
    }

    fn processes(
        &self,
        wanted: &Wanted<'_>,
        sample: Option<Duration>,
    ) -> Result<Vec<ProcessReading>, Error> {
        super::process::read_system(wanted, sample)
    }
}

fn system() -> Result<sysinfo::System, Error> {
    sysinfo::System::new().map_err(Error::refused("cannot read system information"))
}

/// The longest mount point in `/proc/self/mounts` text that contains `path`.
pub fn mount_point_of(path: &Path, mounts: &str) -> Option<PathBuf> {
    mounts
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .map(|field| PathBuf::from(unescape_mount(field)))
        .filter(|mount| path.starts_with(mount))
        .max_by_key(|mount| mount.components().count())
}

/// The kernel writes space, tab, newline and backslash in mount points as `\040` etc.
fn unescape_mount(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Some(code) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|digits| u8::from_str_radix(digits, 8).ok())
        {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Readings fixed in advance, for tests and for `$OPSBOOK_READINGS`. A section left
/// out reads as an error, so a check on it reports `unknown`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedResources {
    pub memory: Option<MemoryReading>,
    /// Readings by path; a path not listed falls back to the entry for `/`.
    #[serde(default)]
    pub disks: std::collections::BTreeMap<String, DiskReading>,
    pub cpu: Option<CpuReading>,
    pub load: Option<LoadReading>,
    /// Fixed process readings; left out, the machine's real processes are read (tests
    /// start real ones), so a readings file never hides a process that runs.
    pub processes: Option<Vec<ProcessReading>>,
}

impl FixedResources {
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(Error::io(format!(
            "cannot read readings file {}",
            path.display()
        )))?;
        serde_json::from_str(&text).map_err(|e| Error::Readings {
            path: path.to_path_buf(),
            why: e.to_string(),
        })
    }
}

impl Resources for FixedResources {
    fn memory(&self) -> Result<MemoryReading, Error> {
        self.memory.ok_or(Error::NoReading("memory"))
    }

    fn disk(&self, path: &Path) -> Result<DiskReading, Error> {
        let key = path.display().to_string();
        self.disks
            .get(&key)
            .or_else(|| self.disks.get("/"))
            .cloned()
            .ok_or(Error::NoDiskReading(key))
    }

    fn cpu(&self, _sample: Duration) -> Result<CpuReading, Error> {
        self.cpu.ok_or(Error::NoReading("cpu"))
    }

    fn load(&self) -> Result<LoadReading, Error> {
        self.load.ok_or(Error::NoReading("load"))
    }

    fn processes(
        &self,
        wanted: &Wanted<'_>,
        sample: Option<Duration>,
    ) -> Result<Vec<ProcessReading>, Error> {
        match &self.processes {
            Some(fixed) => Ok(fixed.iter().filter(|p| wanted(p)).cloned().collect()),
            None => super::process::read_system(wanted, sample),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "overlay / overlay rw 0 0\n\
        /dev/vdb /data ext4 rw 0 0\n\
        /dev/vdc /data/with\\040space ext4 rw 0 0\n";

    #[test]
    fn the_longest_containing_mount_wins() {
        assert_eq!(
            mount_point_of(Path::new("/data/x"), MOUNTS),
            Some("/data".into())
        );
        assert_eq!(
            mount_point_of(Path::new("/database"), MOUNTS),
            Some("/".into())
        );
        assert_eq!(
            mount_point_of(Path::new("/data/with space/f"), MOUNTS),
            Some("/data/with space".into())
        );
    }

    #[test]
    fn the_real_machine_reads_sensible_shapes() {
        let sys = SystemResources;
        let memory = sys.memory().unwrap();
        assert!(memory.total > 0 && memory.available <= memory.total);
        let disk = sys.disk(Path::new("/")).unwrap();
        assert_eq!(disk.mount, "/");
        assert!(disk.total >= disk.available);
        let cpu = sys.cpu(Duration::from_millis(200)).unwrap();
        assert!(cpu.count >= 1 && (0.0..=100.0).contains(&cpu.percent));
    }

    #[test]
    fn a_missing_path_is_an_error_not_a_panic() {
        let err = SystemResources
            .disk(Path::new("/no/such/dir"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/no/such/dir"), "{err}");
    }
}
