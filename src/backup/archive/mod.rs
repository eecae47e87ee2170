//! Writing a backup (tar through zstd or gzip, hashing every file on the way) and checking
//! one against its manifest by streaming the archive, without extracting it.
//!
//! Member names are each source's path relative to `/` (`etc/app/x.conf`), as `tar -czf x
//! /etc/app` stores them, byte for byte: two paths with the same last name never collide,
//! and a name that is not UTF-8 is kept exact (tar's GNU long names carry raw bytes; the
//! manifest adds the bytes in hex, see [`super::encode_name`]).

use super::{BackupSet, Error, FileEntry, Manifest, OtherEntry};
use crate::digest::{HashingReader, sha256_of};
use std::collections::{BTreeMap, HashSet};
use std::ffi::{CStr, CString, OsStr};
use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// What a backup made: its manifest, and warnings (a file that grew while it was read, a
/// command source's stderr) that did not fail it.
pub struct Made {
    pub manifest: Manifest,
    pub warnings: Vec<String>,
}

/// Make backup `id` of `set` in the directory `dest`; visible (renamed from `ID.partial`)
/// only when complete. Directories are 0700 and files 0600 whatever the umask: a backup
/// holds secrets.
pub fn create(
    name: &str,
    set: &BackupSet,
    dest: &Path,
    id: &str,
    now: jiff::Timestamp,
    progress: &dyn Fn(u64),
) -> Result<Made, Error> {
    let partial = dest.join(format!("{id}.partial"));
    private_dir(&partial)?;
    let result = write_backup(name, set, id, &partial, now, progress);
    let made = match result {
        Ok(made) => made,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    let done = dest.join(id);
    if let Err(e) = std::fs::rename(&partial, &done) {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(Error::Failed(format!(
            "cannot rename {} to {}: {e}",
            partial.display(),
            done.display()
        )));
    }
    crate::fsutil::sync_dir(&done);
    Ok(made)
}

/// Create the new directory `dir` with mode 0700, set explicitly: the umask only ever
/// takes bits away, and an odd one could leave the owner without some.
fn private_dir(dir: &Path) -> Result<(), Error> {
    let failed = |e: std::io::Error| format!("cannot create {}: {e}", dir.display());
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(failed)?;
    Ok(std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)?)
}

/// A new file, mode 0600 whatever the umask, for writing.
fn private_file(path: &Path) -> Result<std::fs::File, Error> {
    let failed = |e: std::io::Error| format!("cannot create {}: {e}", path.display());
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(failed)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(failed)?;
    Ok(file)
}

/// Test seam: with `OPSBOOK_TEST_STOP_AT=<point>` the process stops itself (SIGSTOP) at
/// that named point, so a test can change the world there and continue it (SIGCONT).
/// One environment lookup when unset.
fn stop_at(point: &str) {
    if std::env::var_os("OPSBOOK_TEST_STOP_AT").is_some_and(|p| p == point) {
        // SAFETY: raise(3) on our own process has no memory effects.
        unsafe {
            libc::raise(libc::SIGSTOP);
        }
    }
}

/// A writer that counts the bytes the layer below accepted.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

type Sink = std::io::BufWriter<Counting<std::fs::File>>;

/// The compressor, finished explicitly: dropping one would swallow its last write's error.
type Encoder = crate::codec::Encoder<Sink>;

/// End the compressed stream, flush every buffer, fsync: the file and the count of bytes
/// written to it, every error reported.
fn finish(encoder: Encoder) -> std::io::Result<(std::fs::File, u64)> {
    let counting = encoder.finish()?.into_inner().map_err(|e| e.into_error())?;
    counting.inner.sync_all()?;
    Ok((counting.inner, counting.written))
}

fn write_backup(
    name: &str,
    set: &BackupSet,
    id: &str,
    partial: &Path,
    now: jiff::Timestamp,
    progress: &dyn Fn(u64),
) -> Result<Made, Error> {
    if set.paths.is_empty() && set.command.0.is_empty() {
        return Err(Error::Failed(
            "the set has neither `paths` nor `command`: nothing to back up".to_string(),
        ));
    }
    let excluded = globs(&set.exclude, "exclude")?;
    let archive_path = partial.join(set.compress.file_name());
    let failed = |e: std::io::Error| format!("cannot write {}: {e}", archive_path.display());
    let out = private_file(&archive_path)?;
    let out = std::io::BufWriter::with_capacity(
        1 << 20,
        Counting {
            inner: out,
            written: 0,
        },
    );
    let encoder =
        Encoder::new(set.compress.codec(), out, crate::codec::Threads::All).map_err(failed)?;
    let mut adder = Adder {
        tar: tar::Builder::new(encoder),
        partial,
        progress,
        files: Vec::new(),
        others: Vec::new(),
        warnings: Vec::new(),
        members: HashSet::new(),
        snapshots: HashSet::new(),
        sqlite_seen: 0,
    };
    adder.tar.follow_symlinks(false);
    // Command sources first: a failing one fails the backup before the long part.
    let mut command_entries = Vec::new();
    for source in &set.command.0 {
        let dump = partial.join(format!(".{}.dump", source.file));
        let out = private_file(&dump)?;
        let stderr =
            super::commands::run_source(&source.run, source.shell, std::process::Stdio::from(out))
                .map_err(Error::Command)
                .and_then(|stderr| {
                    let shown = source.run.shown();
                    for line in stderr.lines().map(str::trim).filter(|l| !l.is_empty()) {
                        if reports_error(line) {
                            return Err(Error::Failed(format!(
                                "`{shown}` exited 0 but reported an error: {}",
                                crate::redact::mask(line)
                            )));
                        }
                        adder
                            .warnings
                            .push(format!("`{shown}`: {}", crate::redact::mask(line)));
                    }
                    check_dump(&dump)
                })
                .map_err(|e| format!("command source {}: {e}", source.file));
        if let Err(e) = stderr {
            let _ = std::fs::remove_file(&dump);
            return Err(Error::Failed(e));
        }
        let member = PathBuf::from(source.member());
        let entry = adder.add_file(&dump, &member, None);
        let _ = std::fs::remove_file(&dump);
        let Some(entry) = entry? else {
            return Err(Error::Failed(format!(
                "command source {}: its dump vanished",
                source.file
            )));
        };
        command_entries.push(super::commands::CommandEntry {
            file: source.file.clone(),
            path: entry.path.clone(),
            command: source.run.shown().to_string(),
            exit_status: 0,
            size: entry.size,
            sha256: entry.sha256.clone(),
        });
    }
    // The directory the backup is written in (the destination, or S3's staging) is never
    // backed up: a destination inside a backed-up path would otherwise take every earlier
    // backup, and this one's own unfinished archive, into each new one.
    let destination = partial
        .parent()
        .and_then(|d| std::fs::metadata(d).ok())
        .map(|m| (m.dev(), m.ino()));
    for root in &set.paths {
        if std::fs::symlink_metadata(root.as_str()).is_ok_and(|m| m.file_type().is_symlink()) {
            adder.warnings.push(format!(
                "{} is a symlink: stored as a link, what it points to is not backed up (list \
                 the target, or {}/, to back that up)",
                root.shown(),
                root.shown()
            ));
        }
    }
    walk(set, &excluded, destination, |found| match found {
        Found::File {
            dir,
            name,
            path,
            member,
        } => {
            if !adder.is_snapshot_companion(path) {
                adder.add_file(path, member, Some((dir, name)))?;
            }
            Ok(())
        }
        Found::Dir { meta, path, member } => adder.add_dir(meta, path, member),
        Found::Link {
            dir,
            name,
            path,
            member,
        } => adder.add_link(dir, name, path, member),
        Found::Changed { path, what } => {
            adder.warnings.push(format!(
                "{}: {what} since its directory was read; not stored",
                path.display()
            ));
            Ok(())
        }
    })?;
    let Adder {
        tar,
        files,
        others,
        warnings,
        ..
    } = adder;
    let (archive, written) = tar.into_inner().and_then(finish).map_err(failed)?;
    let archive_bytes = archive.metadata().map_err(failed)?.len();
    if archive_bytes != written || written == 0 {
        return Err(Error::Failed(format!(
            "{}: {archive_bytes} bytes on disk, {written} written: the archive is incomplete",
            archive_path.display()
        )));
    }
    let manifest = Manifest {
        id: id.to_string(),
        set: name.to_string(),
        created: now.to_string(),
        host: hostname(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        compression: set.compress,
        archive: set.compress.file_name().to_string(),
        archive_bytes,
        files,
        commands: command_entries,
        others,
        listing: true,
    };
    // Data first, manifest last: a backup without a manifest is not a backup.
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| format!("cannot write the manifest of {id}: {e}"))?;
    let manifest_path = partial.join("manifest.json");
    crate::fsutil::write_atomically(&manifest_path, text.as_bytes())?;
    let on_disk = std::fs::metadata(&manifest_path).map(|m| m.len());
    if on_disk.as_ref().ok() != Some(&(text.len() as u64)) {
        return Err(Error::Failed(format!(
            "{}: not the {} bytes written",
            manifest_path.display(),
            text.len()
        )));
    }
    std::fs::set_permissions(&manifest_path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot write {}: {e}", manifest_path.display()))?;
    Ok(Made { manifest, warnings })
}

/// A line of a command source's stderr that says it failed (`Error: database is locked`,
/// `pg_dump: error: …`, `FATAL: …`, `Runtime error near line 1`, `mysqldump: Got error:
/// …`, `thread 'main' panicked`): one of its first three words is `error`, `fatal`,
/// `panic` or `panicked`. Other lines are warnings: a verbose dump naming a table
/// (`pg_dump: dumping contents of table "public.error_log"`) is not a failure.
fn reports_error(line: &str) -> bool {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
        .take(3)
        .any(|word| {
            ["error", "fatal", "panic", "panicked"]
                .iter()
                .any(|bad| word.eq_ignore_ascii_case(bad))
        })
}

/// A dump the restore command could not read fails the backup: an empty one, a SQLite
/// `.dump` that rolled back (`ROLLBACK; -- due to errors`, what a locked database gives,
/// exit status 0) or did not reach its `COMMIT;`, a plain `pg_dump` without its closing
/// line. Only the head and tail are read.
fn check_dump(path: &Path) -> Result<(), Error> {
    let failed = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let mut file = std::fs::File::open(path).map_err(failed)?;
    let len = file.metadata().map_err(failed)?.len();
    if len == 0 {
        return Err(Error::Failed(
            "the command printed nothing: an empty dump is not a backup".to_string(),
        ));
    }
    let mut head = vec![0u8; 64.min(len as usize)];
    file.read_exact(&mut head).map_err(failed)?;
    let tail_len = 256.min(len);
    file.seek(std::io::SeekFrom::End(-(tail_len as i64)))
        .map_err(failed)?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    file.read_to_end(&mut tail).map_err(failed)?;
    let head = String::from_utf8_lossy(&head);
    let tail = String::from_utf8_lossy(&tail);
    let tail = tail.trim_end();
    let sqlite =
        head.starts_with("PRAGMA foreign_keys=OFF;") || head.starts_with("BEGIN TRANSACTION;");
    if sqlite && (tail.contains("ROLLBACK; -- due to errors") || !tail.ends_with("COMMIT;")) {
        let last = tail.lines().last().unwrap_or_default();
        return Err(Error::Failed(format!(
            "the SQLite dump did not complete (it ends with `{last}`): it would not restore"
        )));
    }
    if head.contains("-- PostgreSQL database dump")
        && !tail.contains("PostgreSQL database dump complete")
    {
        return Err(Error::Failed(
            "the PostgreSQL dump did not complete: it would not restore".to_string(),
        ));
    }
    Ok(())
}

/// The bytes of the files `set` backs up (for a progress bar's total).
pub fn measure(set: &BackupSet) -> Result<u64, Error> {
    let excluded = globs(&set.exclude, "exclude")?;
    let mut total = 0;
    walk(set, &excluded, None, |found| {
        if let Found::File { dir, name, .. } = found {
            total += stat_at(dir, name).map_or(0, |st| u64::try_from(st.st_size).unwrap_or(0));
        }
        Ok(())
    })?;
    Ok(total)
}

/// A set of globs (`exclude`, `--include`); an invalid one is named with `what`.
pub fn globs(patterns: &[String], what: &str) -> Result<globset::GlobSet, Error> {
    let mut builder = globset::GlobSetBuilder::new();
    for pattern in patterns {
        let glob = globset::Glob::new(pattern).map_err(|error| Error::Glob {
            what: what.to_string(),
            pattern: pattern.clone(),
            error,
        })?;
        builder.add(glob);
    }
    builder.build().map_err(Error::Globs)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

mod adder;
mod verify;
mod walk;

use adder::*;
pub use verify::verify;
pub use walk::stored_name;
use walk::*;

#[cfg(test)]
mod reports_error_tests {
    use super::reports_error;

    #[test]
    fn errors_are_told_from_lines_that_name_an_error_table() {
        for line in [
            "ERROR: connection lost",
            "Error: database is locked",
            "pg_dump: error: connection to server failed",
            "psql: FATAL: password authentication failed",
            "Runtime error near line 1: database is locked (5)",
            "mysqldump: Got error: 1045: Access denied",
            "thread 'main' panicked at src/main.rs:3:5",
        ] {
            assert!(reports_error(line), "{line}");
        }
        for line in [
            "pg_dump: dumping contents of table \"public.error_log\"",
            "pg_dump: dumping contents of table \"public.errors\"",
            "pg_dump: reading policies for table \"public.fatal_events\"",
            "mysqldump: [Warning] Using a password on the command line interface can be insecure.",
        ] {
            assert!(!reports_error(line), "{line}");
        }
    }
}
