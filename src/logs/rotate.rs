//! `logs rotate`: rotate each file of a set that is due (size, age, or both), keep N,
//! compress, tell the writer. The order is chosen so nothing is lost:
//!
//! 1. older rotated files shift up (`.1` → `.2` …) and those past `keep` go;
//! 2. create mode renames the live file and creates a fresh one with the same mode and
//!    owner; copytruncate copies it (fsynced) and truncates it in place;
//! 3. once every file is rotated, `postrotate` runs or the writer gets its signal;
//! 4. a rotated file is compressed only once no process holds it open any more (checked in
//!    `/proc/*/fd`, waiting a bounded time), and only the verified copy replaces it.
//!
//! The state file is saved after each file. `--dry-run` prints every step and does none.

use super::compress::{self, with_suffix};
use super::set::{Compression, LogSet, RotateMode};
use super::state::State;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long to wait for a writer to let go of a rotated file before compressing it.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// What a rotation did (or, in a dry run, would do).
#[derive(Debug, Default, serde::Serialize)]
pub struct Outcome {
    pub actions: Vec<String>,
    pub rotated: usize,
    pub errors: Vec<String>,
}

pub struct Rotation<'a> {
    pub name: &'a str,
    pub set: &'a LogSet,
    pub state_dir: &'a Path,
    pub now: jiff::Timestamp,
    pub dry_run: bool,
    /// Rotate whether due or not.
    pub force: bool,
}

impl Rotation<'_> {
    pub fn run(&self) -> Outcome {
        let mut out = Outcome::default();
        let files = match self.set.files() {
            Ok(files) => files,
            Err(e) => {
                out.errors.push(format!("{}: {e}", self.name));
                return out;
            }
        };
        let mut state = match State::load(self.state_dir, self.name) {
            Ok(state) => state,
            Err(e) => {
                out.errors.push(e);
                return out;
            }
        };
        let mut to_compress = Vec::new();
        for file in &files {
            match self.rotate_file(file, &mut state, &mut out) {
                Ok(Some(rotated)) => {
                    out.rotated += 1;
                    to_compress.extend(rotated);
                }
                Ok(None) => {}
                Err(e) => out.errors.push(e),
            }
        }
        if out.rotated > 0
            && let Err(e) = self.notify(&mut out)
        {
            out.errors.push(e);
        }
        for path in to_compress {
            self.compress(&path, &mut out);
        }
        for file in &files {
            self.expire(file, &mut out);
        }
        out
    }

    fn act(&self, out: &mut Outcome, what: String) {
        tracing::info!(target: crate::logging::RESULTS, set = self.name, dry_run = self.dry_run, "{what}");
        out.actions.push(what);
    }

    /// Rotate `file` if it is due; the rotated file to compress, if any.
    fn rotate_file(
        &self,
        file: &Path,
        state: &mut State,
        out: &mut Outcome,
    ) -> Result<Option<Option<PathBuf>>, String> {
        let set = self.set;
        let shown = file.display();
        let meta = match std::fs::metadata(file) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && set.missingok => return Ok(None),
            Err(e) => return Err(format!("cannot read {shown}: {e}")),
        };
        if !meta.is_file() {
            return Err(format!("{shown} is not a regular file"));
        }
        let key = file.display().to_string();
        let now = self.now.as_second();
        let last = state.rotated.get(&key).copied();
        if set.notifempty && meta.len() == 0 && !self.force {
            return Ok(None);
        }
        let by_size = set.size.is_some_and(|size| meta.len() > size.0);
        let by_age = match (set.age, last) {
            (Some(age), Some(last)) => now - last >= age.0.as_secs() as i64,
            // The first sighting starts the clock.
            (Some(_), None) => false,
            (None, _) => false,
        };
        let untriggered = set.size.is_none() && set.age.is_none();
        if !(self.force || by_size || by_age || untriggered) {
            if set.age.is_some() && last.is_none() && !self.dry_run {
                state.rotated.insert(key, now);
                state.save()?;
            }
            return Ok(None);
        }
        let target = if set.dateext {
            self.dated_name(file)
        } else {
            self.shift(file, out)?;
            numbered(file, 1)
        };
        match set.mode {
            RotateMode::Create => {
                self.act(out, format!("rename {shown} → {}", target.display()));
                self.act(out, format!("create {shown}"));
                if !self.dry_run {
                    std::fs::rename(file, &target)
                        .map_err(|e| format!("cannot rename {shown}: {e}"))?;
                    recreate(file, &meta, set.create_mode.map(|m| m.0))?;
                }
            }
            RotateMode::Copytruncate => {
                self.act(out, format!("copy {shown} → {}", target.display()));
                self.act(out, format!("truncate {shown}"));
                if !self.dry_run {
                    copy_then_truncate(file, &target)?;
                }
            }
        }
        if !self.dry_run {
            state.rotated.insert(key, now);
            state.save()?;
            crate::logging::audit::record(
                "logs.rotate",
                "ok",
                Some(&format!("{shown} → {}", target.display())),
            );
        }
        if set.compress == Compression::None {
            return Ok(Some(None));
        }
        // With delaycompress the newest stays plain one more round; the one before goes.
        let candidate = if set.delaycompress {
            if set.dateext {
                self.set
                    .rotated(file)
                    .into_iter()
                    .rfind(|p| p != &target && !is_compressed(p))
            } else {
                Some(numbered(file, 2)).filter(|p| p.exists() || self.dry_run)
            }
        } else {
            Some(target)
        };
        Ok(Some(candidate))
    }

    /// `.N` → `.N+1` from the oldest down; those past `keep` are deleted.
    fn shift(&self, file: &Path, out: &mut Outcome) -> Result<(), String> {
        let mut actions = Vec::new();
        let result = shift_numbered(file, self.set.keep, self.dry_run, &mut |a| actions.push(a));
        for action in actions {
            self.act(out, action);
        }
        result
    }

    /// `app.log-20250115`, or with the time if that exists already.
    fn dated_name(&self, file: &Path) -> PathBuf {
        let zoned = jiff::tz::TimeZone::system().to_datetime(self.now);
        let day = with_suffix(file, &zoned.strftime("-%Y%m%d").to_string());
        let taken = |p: &Path| {
            [Compression::None, Compression::Gzip, Compression::Zstd]
                .iter()
                .any(|c| with_suffix(p, c.extension()).exists())
        };
        if taken(&day) {
            with_suffix(file, &zoned.strftime("-%Y%m%d-%H%M%S").to_string())
        } else {
            day
        }
    }

    fn notify(&self, out: &mut Outcome) -> Result<(), String> {
        let set = self.set;
        if let (Some(signal), Some(pid_file)) = (set.signal, &set.pid_file) {
            let text = std::fs::read_to_string(pid_file.as_str())
                .map_err(|e| format!("cannot read pid file {}: {e}", pid_file.shown()))?;
            let pid: i32 = text.trim().parse().map_err(|_| {
                format!(
                    "pid file {} does not hold a pid: {:?}",
                    pid_file.shown(),
                    text.trim()
                )
            })?;
            self.act(out, format!("signal {signal:?} to pid {pid}"));
            // SAFETY: kill(2) only sends a signal.
            if !self.dry_run && unsafe { libc::kill(pid, signal.number()) } != 0 {
                let error = std::io::Error::last_os_error();
                if error.raw_os_error() == Some(libc::ESRCH) {
                    // No writer any more: nobody holds the old file, nothing to reopen.
                    self.act(out, format!("pid {pid} is not running: nothing to signal"));
                } else {
                    return Err(format!("cannot signal pid {pid}: {error}"));
                }
            }
        }
        if let Some(command) = &set.postrotate {
            self.act(out, format!("run postrotate: {}", command.shown()));
            if !self.dry_run {
                let status = std::process::Command::new("/bin/sh")
                    .args(["-c", command.as_str()])
                    .stdin(std::process::Stdio::null())
                    .status()
                    .map_err(|e| format!("cannot run postrotate: {e}"))?;
                if !status.success() {
                    return Err(format!("postrotate {:?} failed: {status}", command.shown()));
                }
            }
        }
        Ok(())
    }

    fn compress(&self, path: &Path, out: &mut Outcome) {
        let codec = self.set.compress;
        let dst = with_suffix(path, codec.extension());
        self.act(
            out,
            format!("compress {} → {}", path.display(), dst.display()),
        );
        if self.dry_run {
            return;
        }
        if self.set.mode == RotateMode::Create && !released(path) {
            out.errors.push(format!(
                "{} is still open in another process after {}s; left uncompressed for the next run",
                path.display(),
                RELEASE_WAIT.as_secs()
            ));
            return;
        }
        if let Err(e) = compress::compress(path, codec) {
            out.errors.push(e);
        }
    }

    /// Rotated files older than `max_age` go, whatever `keep` says.
    fn expire(&self, file: &Path, out: &mut Outcome) {
        let Some(max_age) = self.set.max_age else {
            return;
        };
        let cutoff = self.now.as_second() - max_age.0.as_secs() as i64;
        for path in self.set.rotated(file) {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.mtime() < cutoff {
                self.act(
                    out,
                    format!("delete {} (older than max_age)", path.display()),
                );
                if !self.dry_run
                    && let Err(e) = std::fs::remove_file(&path)
                {
                    out.errors
                        .push(format!("cannot delete {}: {e}", path.display()));
                }
            }
        }
    }
}

/// `.N` → `.N+1` (compressed or not), oldest first, deleting those past `keep`; each step
/// is told to `act` first and done unless `dry_run`. Used by `logs rotate` and by the tool's
/// own log files, so both rotate the same way.
pub fn shift_numbered(
    file: &Path,
    keep: usize,
    dry_run: bool,
    act: &mut dyn FnMut(String),
) -> Result<(), String> {
    let numbered_only = LogSet {
        dateext: false,
        ..LogSet::for_file(file)
    };
    let mut existing: Vec<(usize, PathBuf)> = numbered_only
        .rotated(file)
        .into_iter()
        .filter_map(|p| number_of(file, &p).map(|n| (n, p)))
        .collect();
    existing.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    for (n, path) in existing {
        if n >= keep {
            act(format!("delete {}", path.display()));
            if !dry_run {
                std::fs::remove_file(&path)
                    .map_err(|e| format!("cannot delete {}: {e}", path.display()))?;
            }
            continue;
        }
        let suffix = path
            .to_string_lossy()
            .strip_prefix(&*numbered(file, n).to_string_lossy())
            .unwrap_or_default()
            .to_string();
        let next = with_suffix(&numbered(file, n + 1), &suffix);
        act(format!("rename {} → {}", path.display(), next.display()));
        if !dry_run {
            std::fs::rename(&path, &next)
                .map_err(|e| format!("cannot rename {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

pub fn numbered(file: &Path, n: usize) -> PathBuf {
    with_suffix(file, &format!(".{n}"))
}

/// `app.log.3.gz` → 3.
fn number_of(file: &Path, rotated: &Path) -> Option<usize> {
    let base = file.to_string_lossy();
    let name = rotated.to_string_lossy();
    let rest = name.strip_prefix(&*base)?.strip_prefix('.')?;
    rest.split('.').next()?.parse().ok()
}

fn is_compressed(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".gz") || name.ends_with(".zst")
}

/// A fresh empty file with the old one's owner and mode (or `mode`).
fn recreate(file: &Path, old: &std::fs::Metadata, mode: Option<u32>) -> Result<(), String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mode = mode.unwrap_or(old.mode() & 0o7777);
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(file)
        .map_err(|e| format!("cannot create {}: {e}", file.display()))?;
    // The umask may have narrowed the mode; set it exactly.
    let _ = created.set_permissions(std::fs::Permissions::from_mode(mode));
    let _ = std::os::unix::fs::fchown(&created, Some(old.uid()), Some(old.gid()));
    crate::fsutil::sync_dir(file);
    Ok(())
}

/// Copy, then truncate the original in place. Lines the writer appends between the end of
/// the copy and the truncation are lost — copytruncate's nature — so the window is kept as
/// short as it can be: the slow part (the bulk copy and its fsync) comes first, then a
/// last catch-up copy of whatever arrived meanwhile, and the truncation right after it.
fn copy_then_truncate(file: &Path, target: &Path) -> Result<(), String> {
    let failed = |e: std::io::Error| {
        format!(
            "cannot copy {} to {}: {e}",
            file.display(),
            target.display()
        )
    };
    let mut source =
        std::fs::File::open(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let live = std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    let mut copy = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(target)
        .map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    std::io::copy(&mut source, &mut copy)
        .and_then(|_| copy.sync_all())
        .map_err(failed)?;
    std::io::copy(&mut source, &mut copy).map_err(failed)?;
    live.set_len(0)
        .map_err(|e| format!("cannot truncate {}: {e}", file.display()))?;
    copy.sync_all().map_err(failed)?;
    Ok(())
}

/// Whether no process holds `path` open, waiting up to `RELEASE_WAIT` for that.
fn released(path: &Path) -> bool {
    let Ok(target) = std::fs::canonicalize(path) else {
        return true;
    };
    let deadline = std::time::Instant::now() + RELEASE_WAIT;
    loop {
        if !held_open(&target) {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn held_open(target: &Path) -> bool {
    let me = std::process::id().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    for proc_entry in procs.flatten() {
        let pid = proc_entry.file_name();
        let pid = pid.to_string_lossy();
        if !pid.chars().all(|c| c.is_ascii_digit()) || pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|link| link == target) {
                return true;
            }
        }
    }
    false
}
