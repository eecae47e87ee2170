//! One idea, one file: `logs rotate`'s crash-safe rotation of a set. Rotate each file that
//! is due (size, age, or both), keep N, compress, tell the writer. The order is chosen so
//! nothing is lost:
//!
//! 1. older rotated files shift up (`.1` → `.2` …) and those past `keep` go;
//! 2. create mode renames the live file and creates a fresh one with the same mode and
//!    owner; copytruncate copies it (fsynced, under a temporary name, then renamed) and
//!    truncates it in place;
//! 3. once every file is rotated, `postrotate` runs or the writer gets its signal;
//! 4. a rotated file is compressed only once no process holds it open any more (checked in
//!    `/proc/*/fd`, waiting a bounded time), and only the verified copy replaces it;
//! 5. rotated files past `keep` (numbered or dated) and past `max_age` go.
//!
//! Nothing is ever renamed over an existing name (`RENAME_NOREPLACE`): a name in the way
//! that opsbook did not make is kept and reported, and that log is not rotated. A log that
//! is a symlink, not a regular file, or has more than one hard link is refused, and so is a
//! directory users other than its owner and root can write to.
//!
//! Crash safety: before a file moves, an intent record (`state_dir/logs-SET.intent.json`)
//! names it and its rotated name; the next run reads it first and completes the step (a
//! renamed log gets its fresh file back, the writer is told) or rolls it back (a copy made
//! before the truncation is removed: the log still holds its lines). Compression and
//! deletion are derived from the files themselves: a plain rotated file is compressed on
//! every run until it is, and a plain file whose compressed copy decodes to exactly its
//! bytes (a kill between the rename and the removal) is removed. The named points where a
//! test can kill a run are listed in [`super::safe::STOP_POINTS`].
//!
//! The state file is saved after each file; if it cannot be, that is reported and the
//! rotation still finishes. `--dry-run` prints every step and does none.

use super::Error;
use super::compress;
use super::safe::{self, stop_at};
use super::set::{Compression, LogSet, RotateMode};
use super::state::State;
use crate::fsutil::{number_of, numbered, with_suffix};
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
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

/// The intent record: the one file rotation in progress, and whether the writer still has
/// to be told about rotations done. Paths are kept as their exact bytes.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Intent {
    rotating: Option<Pending>,
    notify: bool,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Pending {
    file: Vec<u8>,
    target: Vec<u8>,
    mode: RotateMode,
    create_mode: Option<u32>,
}

fn path_of(bytes: &[u8]) -> PathBuf {
    PathBuf::from(std::ffi::OsString::from_vec(bytes.to_vec()))
}

impl Rotation<'_> {
    pub fn run(&self) -> Outcome {
        let mut out = Outcome::default();
        let mut state = match State::load(self.state_dir, self.name) {
            Ok(state) => state,
            Err(e) => {
                out.errors.push(e.to_string());
                return out;
            }
        };
        let mut notify = match self.recover(&mut state, &mut out) {
            Ok(notify) => notify,
            Err(e) => {
                out.errors.push(e.to_string());
                return out;
            }
        };
        let files = match self.set.files() {
            Ok(files) => files,
            Err(e) => {
                out.errors.push(format!("{}: {e}", self.name));
                Vec::new()
            }
        };
        let mut planned = Vec::new();
        // Files whose rotation was refused: nothing of theirs is touched this run.
        let mut refused = Vec::new();
        for file in &files {
            match self.rotate_file(file, &mut state, notify, &mut out) {
                Ok(Some(target)) => {
                    out.rotated += 1;
                    notify = true;
                    planned.push((file.clone(), target));
                }
                Ok(None) => {}
                Err(e) => {
                    out.errors.push(e.to_string());
                    refused.push(file.clone());
                    // A step left half done keeps its intent record for the next run,
                    // which one more file's record would overwrite: stop here.
                    if !self.dry_run && self.pending() {
                        break;
                    }
                }
            }
        }
        if notify {
            if let Err(e) = self.notify(&mut out) {
                out.errors.push(e.to_string());
            }
            if !self.dry_run {
                stop_at("notified");
                if !self.pending() {
                    self.clear_intent(&mut out);
                }
            }
        }
        if self.dry_run {
            for (file, target) in &planned {
                if let Some(path) = self.dry_candidate(file, target) {
                    self.compress(&path, &mut out);
                }
            }
            return out;
        }
        for file in files.iter().filter(|f| !refused.contains(f)) {
            self.trim(file, &mut out);
            for path in self.uncompressed(file) {
                self.compress(&path, &mut out);
            }
            self.expire(file, &mut out);
        }
        out
    }

    fn act(&self, out: &mut Outcome, what: String) {
        tracing::info!(target: crate::logging::RESULTS, set = self.name, dry_run = self.dry_run, "{what}");
        out.actions.push(what);
    }

    fn intent_path(&self) -> PathBuf {
        self.state_dir
            .join(format!("logs-{}.intent.json", self.name))
    }

    fn save_intent(&self, intent: &Intent) -> Result<(), Error> {
        let text = serde_json::to_string(intent).map_err(Error::Encode)?;
        Ok(crate::fsutil::write_atomically(
            &self.intent_path(),
            text.as_bytes(),
        )?)
    }

    /// Whether the intent record names a file rotation not finished.
    fn pending(&self) -> bool {
        std::fs::read(self.intent_path())
            .ok()
            .and_then(|text| serde_json::from_slice::<Intent>(&text).ok())
            .is_some_and(|intent| intent.rotating.is_some())
    }

    fn clear_intent(&self, out: &mut Outcome) {
        let path = self.intent_path();
        match std::fs::remove_file(&path) {
            Ok(()) => crate::fsutil::sync_dir(&path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => out
                .errors
                .push(format!("cannot remove {}: {e}", path.display())),
        }
    }

    /// Complete or roll back what a killed run left half done (its intent record); whether
    /// the writer must still be told of a rotation.
    fn recover(&self, state: &mut State, out: &mut Outcome) -> Result<bool, Error> {
        let path = self.intent_path();
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        let intent: Intent = serde_json::from_slice(&text).map_err(|error| Error::Unreadable {
            what: "the intent record",
            path: path.clone(),
            error,
            then: Some("check the set's files by hand, then remove it"),
        })?;
        if self.dry_run {
            if intent.rotating.is_some() || intent.notify {
                self.act(
                    out,
                    format!(
                        "finish the interrupted rotation recorded in {}",
                        path.display()
                    ),
                );
            }
            return Ok(false);
        }
        let mut notify = intent.notify;
        if let Some(pending) = intent.rotating {
            let (file, target) = (path_of(&pending.file), path_of(&pending.target));
            let (shown, to) = (file.display(), target.display());
            let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
            let _ = std::fs::remove_file(with_suffix(&target, ".opsbook-tmp"));
            // Whether the rotation now counts as done (the writer is told, the time kept).
            let done = match (pending.mode, exists(&target)) {
                (_, false) => {
                    self.act(
                        out,
                        format!(
                            "rolled back the interrupted rotation of {shown}: nothing had moved"
                        ),
                    );
                    false
                }
                (RotateMode::Create, true) if !exists(&file) => {
                    let meta = std::fs::symlink_metadata(&target)
                        .map_err(|e| Error::io("read", &target, e))?;
                    if !meta.is_file() {
                        return Err(Error::Refused(format!(
                            "{to} is not a regular file: not recreating {shown} from it; check both by hand"
                        )));
                    }
                    recreate(&file, &meta, pending.create_mode)?;
                    self.act(
                        out,
                        format!(
                            "recreated {shown}, which an interrupted rotation had renamed to {to}"
                        ),
                    );
                    true
                }
                (RotateMode::Copytruncate, true)
                    if starts_with(&file, &target)
                        .map_err(|e| Error::between("compare", &file, "with", &target, e))? =>
                {
                    // Not truncated: the copy goes, the file stays as it was.
                    std::fs::remove_file(&target).map_err(|e| Error::io("remove", &target, e))?;
                    crate::fsutil::sync_dir(&target);
                    self.act(
                        out,
                        format!("rolled back the interrupted rotation of {shown}: it was not truncated, removed its copy {to}"),
                    );
                    false
                }
                (RotateMode::Create | RotateMode::Copytruncate, true) => {
                    self.act(
                        out,
                        format!("finished the interrupted rotation of {shown} → {to}"),
                    );
                    true
                }
            };
            if done {
                notify = true;
                state
                    .rotated
                    .insert(file.display().to_string(), self.now.as_second());
            }
            if let Err(e) = state.save() {
                out.errors.push(format!("rotation state not saved: {e}"));
            }
        }
        if notify {
            self.save_intent(&Intent {
                rotating: None,
                notify,
            })?;
        } else {
            self.clear_intent(out);
        }
        Ok(notify)
    }

    /// Rotate `file` if it is due; its rotated name.
    fn rotate_file(
        &self,
        file: &Path,
        state: &mut State,
        notify: bool,
        out: &mut Outcome,
    ) -> Result<Option<PathBuf>, Error> {
        let set = self.set;
        let shown = file.display();
        let meta = match safe::check_log(file) {
            Ok(Ok(meta)) => meta,
            Ok(Err(refused)) => return Err(refused.then("; not rotated")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && set.missingok => return Ok(None),
            Err(e) => return Err(Error::io("read", file, e)),
        };
        safe::check_dir(safe::parent(file))
            .map_err(|e| e.then(format!("; {shown} not rotated")))?;
        if !self.dry_run {
            self.tidy(file, out);
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
        if !self.dry_run
            && let Some(there) = taken(&target)
        {
            return Err(Error::Refused(format!(
                "{} is in the way of {shown}'s rotation (opsbook did not make it): kept it; {shown} not rotated",
                there.display()
            )));
        }
        match set.mode {
            RotateMode::Create => {
                self.act(out, format!("rename {shown} → {}", target.display()));
                self.act(out, format!("create {shown}"));
            }
            RotateMode::Copytruncate => {
                self.act(out, format!("copy {shown} → {}", target.display()));
                self.act(out, format!("truncate {shown}"));
            }
        }
        if self.dry_run {
            return Ok(Some(target));
        }
        let pending = Pending {
            file: file.as_os_str().as_bytes().to_vec(),
            target: target.as_os_str().as_bytes().to_vec(),
            mode: set.mode,
            create_mode: set.create_mode.map(|m| m.0),
        };
        self.save_intent(&Intent {
            rotating: Some(pending),
            notify,
        })
        .map_err(|e| Error::NoIntent {
            error: Box::new(e),
            shown: shown.to_string(),
        })?;
        stop_at("intent-saved");
        let done = match set.mode {
            RotateMode::Create => safe::rename_noreplace(file, &target)
                .map_err(|e| Error::rename(file, &target, e))
                .and_then(|()| {
                    stop_at("renamed");
                    // If this fails, the intent record has the next run create it.
                    recreate(file, &meta, set.create_mode.map(|m| m.0))?;
                    stop_at("created");
                    Ok(())
                }),
            RotateMode::Copytruncate => copy_then_truncate(file, &target, &meta),
        };
        if let Err(e) = done {
            // Copytruncate undoes its own copy; a failed rename moved nothing. A renamed
            // log whose fresh file could not be created stays pending for the next run.
            if set.mode == RotateMode::Copytruncate || std::fs::symlink_metadata(&target).is_err() {
                let _ = self.save_intent(&Intent {
                    rotating: None,
                    notify,
                });
            }
            return Err(e);
        }
        if let Err(e) = self.save_intent(&Intent {
            rotating: None,
            notify: true,
        }) {
            // The next run finds the step done from the files themselves.
            out.errors
                .push(format!("cannot update the intent record: {e}"));
        }
        state.rotated.insert(key, now);
        match state.save() {
            Ok(()) => stop_at("state-saved"),
            Err(e) => out.errors.push(format!(
                "rotated {shown}, but the rotation state was not saved ({e}): its age trigger may fire early"
            )),
        }
        crate::logging::audit::record(
            "logs.rotate",
            "ok",
            Some(&format!("{shown} → {}", target.display())),
        );
        Ok(Some(target))
    }

    /// Before rotating `file`: temporaries of a killed run go, and a plain rotated file
    /// whose compressed copy decodes to exactly its bytes (killed between the rename and
    /// the removal) is removed.
    fn tidy(&self, file: &Path, out: &mut Outcome) {
        let dir = safe::parent(file);
        let Some(base) = file.file_name().map(|n| n.as_bytes().to_vec()) else {
            return;
        };
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let bytes = name.as_bytes();
            let ours = bytes.starts_with(&base)
                && matches!(bytes.get(base.len()), Some(b'.' | b'-'))
                && bytes.ends_with(b".opsbook-tmp");
            if ours && entry.file_type().is_ok_and(|t| t.is_file()) {
                let path = file.with_file_name(&name);
                if std::fs::remove_file(&path).is_ok() {
                    self.act(
                        out,
                        format!("removed {}, left by a killed run", path.display()),
                    );
                }
            }
        }
        for plain in self
            .set
            .rotated(file)
            .into_iter()
            .filter(|p| !is_compressed(p))
        {
            for codec in [Compression::Gzip, Compression::Zstd] {
                let packed = with_suffix(&plain, codec.extension());
                if !packed.exists() {
                    continue;
                }
                if compress::holds(&packed, &plain).unwrap_or(false)
                    && std::fs::remove_file(&plain).is_ok()
                {
                    self.act(
                        out,
                        format!(
                            "removed {}: {} holds exactly its lines (a killed run's compression)",
                            plain.display(),
                            packed.display()
                        ),
                    );
                    break;
                }
            }
        }
    }

    /// `.N` → `.N+1` from the oldest down; those past `keep` are deleted. Two files with the
    /// same number (`app.log.1` and a stray `app.log.1.gz`) stop it before anything moves.
    fn shift(&self, file: &Path, out: &mut Outcome) -> Result<(), Error> {
        let mut numbers: std::collections::BTreeMap<usize, Vec<PathBuf>> = Default::default();
        for path in self.set.rotated(file) {
            if let Some(n) = number_of(file, &path) {
                numbers.entry(n).or_default().push(path);
            }
        }
        if let Some((n, paths)) = numbers.iter().find(|(_, paths)| paths.len() > 1) {
            let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            return Err(Error::Refused(format!(
                "{} are all rotation {n} of {}: a name is in the way that opsbook did not make; \
                 kept them all, {} not rotated (move the stray away)",
                list.join(" and "),
                file.display(),
                file.display()
            )));
        }
        for (n, paths) in numbers.into_iter().rev() {
            for path in paths {
                if n >= self.set.keep {
                    self.act(out, format!("delete {}", path.display()));
                    if !self.dry_run {
                        std::fs::remove_file(&path).map_err(|e| Error::io("delete", &path, e))?;
                        stop_at("shifted");
                    }
                    continue;
                }
                let suffix = path
                    .as_os_str()
                    .as_bytes()
                    .get(numbered(file, n).as_os_str().len()..)
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .unwrap_or_default();
                let next = with_suffix(&numbered(file, n + 1), &suffix);
                self.act(
                    out,
                    format!("rename {} → {}", path.display(), next.display()),
                );
                if !self.dry_run {
                    safe::rename_noreplace(&path, &next).map_err(|e| {
                        Error::rename(&path, &next, e)
                            .then(format!("; {} not rotated", file.display()))
                    })?;
                    stop_at("shifted");
                }
            }
        }
        Ok(())
    }

    /// `app.log-20250115`, or with the time if that exists already, or with a counter
    /// after the time if that exists too: never the name of an existing file, and (the
    /// clock permitting) one that sorts after every rotated file there is, so `keep`
    /// always drops the oldest.
    fn dated_name(&self, file: &Path) -> PathBuf {
        let zoned = jiff::tz::TimeZone::system().to_datetime(self.now);
        let day = with_suffix(file, &zoned.strftime("-%Y%m%d").to_string());
        let second = with_suffix(file, &zoned.strftime("-%Y%m%d-%H%M%S").to_string());
        let newest = self.ordered(file).last().map(|p| date_key(file, p));
        let candidates = || {
            [day.clone(), second.clone()]
                .into_iter()
                .chain((2u64..).map(|n| with_suffix(&second, &format!("-{n}"))))
        };
        let later = |p: &PathBuf| newest.as_ref().is_none_or(|n| date_key(file, p) > *n);
        candidates()
            .take(100_000)
            .find(|p| later(p) && taken(p).is_none())
            // The clock went back: any free name.
            .or_else(|| candidates().find(|p| taken(p).is_none()))
            .unwrap_or(second)
    }

    /// The rotated files of `file`, oldest first.
    fn ordered(&self, file: &Path) -> Vec<PathBuf> {
        let mut rotated = self.set.rotated(file);
        if self.set.dateext {
            rotated.sort_by_key(|p| date_key(file, p));
        } else {
            rotated.sort_by_key(|p| std::cmp::Reverse(number_of(file, p).unwrap_or(0)));
        }
        rotated
    }

    /// Plain rotated files of `file` to compress now: all of them, but the newest while
    /// `delaycompress` holds it back one more round.
    fn uncompressed(&self, file: &Path) -> Vec<PathBuf> {
        if self.set.compress == Compression::None {
            return Vec::new();
        }
        let mut rotated = self.ordered(file);
        if self.set.delaycompress {
            rotated.pop();
        }
        rotated.retain(|p| !is_compressed(p));
        rotated
    }

    /// What a dry run would compress after rotating `file` to `target`.
    fn dry_candidate(&self, file: &Path, target: &Path) -> Option<PathBuf> {
        if self.set.compress == Compression::None {
            return None;
        }
        if !self.set.delaycompress {
            return Some(target.to_path_buf());
        }
        if self.set.dateext {
            self.ordered(file).into_iter().rfind(|p| !is_compressed(p))
        } else {
            Some(numbered(file, 1)).filter(|p| p.exists())
        }
    }

    /// Rotated files past `keep`, oldest first: numbered ones above `keep`, dated ones
    /// beyond the newest `keep`.
    fn trim(&self, file: &Path, out: &mut Outcome) {
        let rotated = self.ordered(file);
        let excess = rotated.len().saturating_sub(self.set.keep);
        let doomed: Vec<&PathBuf> = if self.set.dateext {
            rotated.iter().take(excess).collect()
        } else {
            rotated
                .iter()
                .filter(|p| number_of(file, p).is_some_and(|n| n > self.set.keep))
                .collect()
        };
        for path in doomed {
            self.act(
                out,
                format!("delete {} (past keep: {})", path.display(), self.set.keep),
            );
            match std::fs::remove_file(path) {
                Ok(()) => stop_at("expired"),
                Err(e) => out
                    .errors
                    .push(format!("cannot delete {}: {e}", path.display())),
            }
        }
    }

    fn notify(&self, out: &mut Outcome) -> Result<(), Error> {
        let set = self.set;
        if let (Some(signal), Some(pid_file)) = (set.signal, &set.pid_file) {
            let text = std::fs::read_to_string(pid_file.as_str())
                .map_err(|e| Error::io("read pid file", Path::new(pid_file.shown()), e))?;
            let pid: i32 = text.trim().parse().map_err(|_| {
                Error::Notify(format!(
                    "pid file {} does not hold a pid: {:?}",
                    pid_file.shown(),
                    text.trim()
                ))
            })?;
            self.act(out, format!("signal {signal:?} to pid {pid}"));
            // SAFETY: kill(2) only sends a signal.
            if !self.dry_run && unsafe { libc::kill(pid, signal.number()) } != 0 {
                let error = std::io::Error::last_os_error();
                if error.raw_os_error() == Some(libc::ESRCH) {
                    // No writer any more: nobody holds the old file, nothing to reopen.
                    self.act(out, format!("pid {pid} is not running: nothing to signal"));
                } else {
                    return Err(Error::Notify(format!("cannot signal pid {pid}: {error}")));
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
                    .map_err(|e| Error::Notify(format!("cannot run postrotate: {e}")))?;
                if !status.success() {
                    return Err(Error::Notify(format!(
                        "postrotate {:?} failed: {status}",
                        command.shown()
                    )));
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
        match compress::compress(path, codec) {
            Ok(_) => stop_at("compressed"),
            Err(e) => out.errors.push(e.to_string()),
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
                if !self.dry_run {
                    match std::fs::remove_file(&path) {
                        Ok(()) => stop_at("expired"),
                        Err(e) => out
                            .errors
                            .push(format!("cannot delete {}: {e}", path.display())),
                    }
                }
            }
        }
    }
}

/// `app.log-20250115-103000-2.gz` → [20250115, 103000, 2]: dated names in time order.
pub fn date_key(file: &Path, rotated: &Path) -> Vec<u64> {
    let base = file.to_string_lossy();
    let name = rotated.to_string_lossy();
    name.strip_prefix(&*base)
        .unwrap_or_default()
        .trim_end_matches(".gz")
        .trim_end_matches(".zst")
        .split('-')
        .filter(|part| !part.is_empty())
        .map(|part| part.parse().unwrap_or(u64::MAX))
        .collect()
}

fn is_compressed(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".gz") || name.ends_with(".zst")
}

/// The existing file that holds `name`, plain or compressed, if any.
fn taken(name: &Path) -> Option<PathBuf> {
    [Compression::None, Compression::Gzip, Compression::Zstd]
        .iter()
        .map(|c| with_suffix(name, c.extension()))
        .find(|p| std::fs::symlink_metadata(p).is_ok())
}

/// A fresh empty file with the old one's owner and mode (or `mode`), set exactly.
fn recreate(file: &Path, old: &std::fs::Metadata, mode: Option<u32>) -> Result<(), Error> {
    let mode = mode.unwrap_or(old.mode() & 0o7777);
    safe::create_new(file, mode, Some((old.uid(), old.gid())))
        .map_err(|e| Error::io("create", file, e))?;
    crate::fsutil::sync_dir(file);
    Ok(())
}

/// Copy, then truncate the original in place. Lines the writer appends between the end of
/// the copy and the truncation are lost — copytruncate's nature — so the window is kept as
/// short as it can be: the slow part (the bulk copy and its fsync, under a temporary name,
/// then the rename) comes first, then a last catch-up copy of whatever arrived meanwhile,
/// and the truncation right after it. Any failure before the truncation removes the copy:
/// the log still holds every line, and no torn copy is left to duplicate them later. The
/// copy has the log's own mode and owner.
fn copy_then_truncate(file: &Path, target: &Path, meta: &std::fs::Metadata) -> Result<(), Error> {
    let failed = |e: std::io::Error| Error::between("copy", file, "to", target, e);
    let temp = with_suffix(target, ".opsbook-tmp");
    let _ = std::fs::remove_file(&temp);
    let mut source = safe::open_nofollow(file, false).map_err(|e| Error::io("read", file, e))?;
    let live = safe::open_nofollow(file, true).map_err(|e| Error::io("open", file, e))?;
    if !safe::same_file(&source, meta) || !safe::same_file(&live, meta) {
        return Err(Error::Refused(format!(
            "{} was replaced while being rotated",
            file.display()
        )));
    }
    let mut copy = safe::create_new(&temp, meta.mode() & 0o7777, Some((meta.uid(), meta.gid())))
        .map_err(|e| Error::io("create", &temp, e))?;
    let bulk = std::io::copy(&mut source, &mut copy)
        .and_then(|_| copy.sync_all())
        .map_err(failed);
    if let Err(e) = bulk {
        drop(copy);
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    stop_at("copy-written");
    if let Err(e) = safe::rename_noreplace(&temp, target) {
        let _ = std::fs::remove_file(&temp);
        return Err(Error::rename(&temp, target, e));
    }
    stop_at("copy-renamed");
    let undo = |e: Error| {
        let _ = std::fs::remove_file(target);
        crate::fsutil::sync_dir(target);
        e
    };
    std::io::copy(&mut source, &mut copy).map_err(|e| undo(failed(e)))?;
    live.set_len(0)
        .map_err(|e| undo(Error::io("truncate", file, e)))?;
    stop_at("truncated");
    copy.sync_all().map_err(failed)?;
    crate::fsutil::sync_dir(target);
    Ok(())
}

/// Whether `file` still begins with every byte of `prefix` (a copytruncate copy whose log
/// was not truncated yet).
fn starts_with(file: &Path, prefix: &Path) -> std::io::Result<bool> {
    let mut a = std::io::BufReader::new(safe::open_nofollow(prefix, false)?);
    let mut b = std::io::BufReader::new(match safe::open_nofollow(file, false) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    });
    let (mut x, mut y) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = a.read(&mut x)?;
        if n == 0 {
            return Ok(true);
        }
        let mut got = 0;
        while got < n {
            let m = b.read(&mut y[got..n])?;
            if m == 0 {
                return Ok(false);
            }
            got += m;
        }
        if x[..n] != y[..n] {
            return Ok(false);
        }
    }
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
