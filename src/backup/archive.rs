//! Writing a backup (tar through zstd or gzip, hashing every file on the way) and checking
//! one against its manifest by streaming the archive, without extracting it.
//!
//! Member names are each source's path relative to `/` (`etc/app/x.conf`), as `tar -czf x
//! /etc/app` stores them, byte for byte: two paths with the same last name never collide,
//! and a name that is not UTF-8 is kept exact (tar's GNU long names carry raw bytes; the
//! manifest adds the bytes in hex, see [`super::encode_name`]).

use super::{BackupSet, FileEntry, Manifest, OtherEntry};
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
) -> Result<Made, String> {
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
        return Err(format!(
            "cannot rename {} to {}: {e}",
            partial.display(),
            done.display()
        ));
    }
    crate::fsutil::sync_dir(&done);
    Ok(made)
}

/// Create the new directory `dir` with mode 0700, set explicitly: the umask only ever
/// takes bits away, and an odd one could leave the owner without some.
fn private_dir(dir: &Path) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("cannot create {}: {e}", dir.display());
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(failed)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)
}

/// A new file, mode 0600 whatever the umask, for writing.
fn private_file(path: &Path) -> Result<std::fs::File, String> {
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
) -> Result<Made, String> {
    if set.paths.is_empty() && set.command.0.is_empty() {
        return Err("the set has neither `paths` nor `command`: nothing to back up".to_string());
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
                .and_then(|stderr| {
                    let shown = source.run.shown();
                    for line in stderr.lines().map(str::trim).filter(|l| !l.is_empty()) {
                        if reports_error(line) {
                            return Err(format!(
                                "`{shown}` exited 0 but reported an error: {}",
                                crate::redact::mask(line)
                            ));
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
            return Err(e);
        }
        let member = PathBuf::from(source.member());
        let entry = adder.add_file(&dump, &member, None);
        let _ = std::fs::remove_file(&dump);
        let Some(entry) = entry? else {
            return Err(format!("command source {}: its dump vanished", source.file));
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
        return Err(format!(
            "{}: {archive_bytes} bytes on disk, {written} written: the archive is incomplete",
            archive_path.display()
        ));
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
        return Err(format!(
            "{}: not the {} bytes written",
            manifest_path.display(),
            text.len()
        ));
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
fn check_dump(path: &Path) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let mut file = std::fs::File::open(path).map_err(failed)?;
    let len = file.metadata().map_err(failed)?.len();
    if len == 0 {
        return Err("the command printed nothing: an empty dump is not a backup".to_string());
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
        return Err(format!(
            "the SQLite dump did not complete (it ends with `{last}`): it would not restore"
        ));
    }
    if head.contains("-- PostgreSQL database dump")
        && !tail.contains("PostgreSQL database dump complete")
    {
        return Err("the PostgreSQL dump did not complete: it would not restore".to_string());
    }
    Ok(())
}

/// The first bytes of every SQLite 3 database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Adds entries to the archive and lists them for the manifest.
struct Adder<'a> {
    tar: tar::Builder<Encoder>,
    partial: &'a Path,
    progress: &'a dyn Fn(u64),
    files: Vec<FileEntry>,
    others: Vec<OtherEntry>,
    warnings: Vec<String>,
    /// Every member name so far: two sources reaching one name would make a backup that
    /// cannot be restored.
    members: HashSet<PathBuf>,
    /// SQLite databases stored through the online backup: their `-wal`, `-shm` and
    /// `-journal` files are in the snapshot and are left out.
    snapshots: HashSet<PathBuf>,
    sqlite_seen: u64,
}

impl Adder<'_> {
    fn claim(&mut self, member: &Path, path: &Path) -> Result<(), String> {
        if self.members.insert(member.to_path_buf()) {
            return Ok(());
        }
        Err(format!(
            "{} would be stored as {} a second time: two of the set's paths (or a path and a \
             command source) reach it; list each place once",
            path.display(),
            member.display()
        ))
    }

    fn is_snapshot_companion(&self, path: &Path) -> bool {
        let Some(name) = path.file_name().map(OsStrExt::as_bytes) else {
            return false;
        };
        [&b"-wal"[..], b"-shm", b"-journal"].iter().any(|suffix| {
            name.strip_suffix(*suffix).is_some_and(|base| {
                self.snapshots
                    .contains(&path.with_file_name(OsStr::from_bytes(base)))
            })
        })
    }

    /// A directory, as opened by the walk (`meta` is the directory's own).
    fn add_dir(
        &mut self,
        meta: &std::fs::Metadata,
        path: &Path,
        member: &Path,
    ) -> Result<(), String> {
        self.claim(member, path)?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata(meta);
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        self.tar
            .append_data(&mut header, member, std::io::empty())
            .map_err(|e| format!("cannot add {}: {e}", path.display()))?;
        self.push_other(member, None, None, meta);
        Ok(())
    }

    /// The symlink `name` in the directory `dir` (stored as a link, never followed).
    fn add_link(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        path: &Path,
        member: &Path,
    ) -> Result<(), String> {
        let failed = |e: std::io::Error| format!("cannot add {}: {e}", path.display());
        self.claim(member, path)?;
        // The link itself, opened once (`O_PATH`): its metadata and target come from it, so
        // a link changed in between never makes a listing that does not match the archive.
        let link = match open_at(dir, name, libc::O_PATH | libc::O_NOFOLLOW) {
            Ok(link) => link,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.warnings.push(format!(
                    "{}: removed since its directory was read; not stored",
                    path.display()
                ));
                return Ok(());
            }
            Err(e) => return Err(failed(e)),
        };
        let meta = std::fs::File::from(link.try_clone().map_err(failed)?)
            .metadata()
            .map_err(failed)?;
        if !meta.file_type().is_symlink() {
            self.warnings.push(format!(
                "{}: replaced by something that is not a symlink since its directory was \
                 read; not stored",
                path.display()
            ));
            return Ok(());
        }
        let target = read_link_at(link.as_fd(), c"").map_err(failed)?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata(&meta);
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        self.tar
            .append_link(&mut header, member, &target)
            .map_err(failed)?;
        let (text, hex) = super::encode_name(target.as_os_str().as_bytes());
        self.push_other(member, Some(text), hex, &meta);
        Ok(())
    }

    fn push_other(
        &mut self,
        member: &Path,
        target: Option<String>,
        target_hex: Option<String>,
        meta: &std::fs::Metadata,
    ) {
        let (name, name_hex) = super::encode_name(member.as_os_str().as_bytes());
        self.others.push(OtherEntry {
            path: name,
            path_hex: name_hex,
            target,
            target_hex,
            mode: meta.mode() & 0o7777,
            mtime: meta.mtime(),
        });
    }

    /// Add a regular file, hashing it as it streams into the archive: the size it had when
    /// opened is what is stored (a file that grew is a warning, as with tar; one that
    /// shrank fails the backup). A SQLite database (found by the walk) is stored through SQLite's
    /// online backup, a consistent copy even while it is written.
    ///
    /// A file found by the walk (`found`: the directory it was listed in, held open, and its
    /// name there) is opened from that directory without following a link and without
    /// blocking: one removed since its directory was read, or replaced by a symlink, a FIFO
    /// or anything but a regular file, is left out with a warning (as tar does), never read
    /// through the link nor waited on; `None` then.
    fn add_file(
        &mut self,
        path: &Path,
        member: &Path,
        found: Option<(BorrowedFd<'_>, &CStr)>,
    ) -> Result<Option<FileEntry>, String> {
        let unreadable = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
        self.claim(member, path)?;
        let detect = found.is_some();
        let opened = match found {
            // From the directory the walk holds open: no part of the path is looked up again.
            Some((dir, name)) => open_at(
                dir,
                name,
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
            )
            .map(std::fs::File::from),
            None => std::fs::File::open(path),
        };
        let changed = |what: &str| {
            format!(
                "{}: {what} since its directory was read; not stored",
                path.display()
            )
        };
        let mut file = match opened {
            Ok(file) => file,
            Err(e) if detect && e.kind() == std::io::ErrorKind::NotFound => {
                self.warnings.push(changed("removed"));
                return Ok(None);
            }
            Err(e) if detect && e.raw_os_error() == Some(libc::ELOOP) => {
                self.warnings
                    .push(changed("replaced by a symlink (never read through)"));
                return Ok(None);
            }
            Err(e) => return Err(unreadable(e)),
        };
        let meta = file.metadata().map_err(unreadable)?;
        if detect && !meta.is_file() {
            self.warnings
                .push(changed("replaced by something that is not a regular file"));
            return Ok(None);
        }
        stop_at("backup-file-opened");
        let mut snapshot = None;
        let mut size = meta.len();
        if detect && size >= 100 {
            let mut magic = [0u8; 16];
            file.read_exact(&mut magic).map_err(unreadable)?;
            if &magic == SQLITE_MAGIC {
                let copy = self.sqlite_snapshot(path)?;
                file = std::fs::File::open(&copy).map_err(unreadable)?;
                size = file.metadata().map_err(unreadable)?.len();
                snapshot = Some(copy);
            } else {
                file.rewind().map_err(unreadable)?;
            }
        }
        let added = self.append(file, size, &meta, path, member);
        if let Some(copy) = snapshot {
            let _ = std::fs::remove_file(copy);
            self.snapshots.insert(path.to_path_buf());
        }
        let entry = added?;
        self.files.push(entry.clone());
        Ok(Some(entry))
    }

    fn append(
        &mut self,
        file: std::fs::File,
        size: u64,
        meta: &std::fs::Metadata,
        path: &Path,
        member: &Path,
    ) -> Result<FileEntry, String> {
        let mut header = tar::Header::new_gnu();
        header.set_metadata(meta);
        header.set_size(size);
        let mut exact = Exact {
            inner: file,
            left: size,
            progress: self.progress,
        };
        let mut reader = HashingReader::sized(&mut exact, size);
        self.tar
            .append_data(&mut header, member, &mut reader)
            .map_err(|e| format!("cannot add {}: {e}", path.display()))?;
        let (stored, sha256) = reader.finish();
        let mut more = [0u8; 1];
        if exact.inner.read(&mut more).is_ok_and(|n| n > 0) {
            self.warnings.push(format!(
                "{}: file grew while it was backed up; stored its first {stored} bytes (its \
                 size when opened)",
                path.display()
            ));
        }
        let (name, name_hex) = super::encode_name(member.as_os_str().as_bytes());
        Ok(FileEntry {
            path: name,
            path_hex: name_hex,
            size: stored,
            mode: meta.mode() & 0o7777,
            mtime: meta.mtime(),
            sha256,
        })
    }

    /// A consistent copy of the SQLite database `db` in the partial directory, made by
    /// `sqlite3 DB .backup` (waiting up to a second for a writer's lock).
    fn sqlite_snapshot(&mut self, db: &Path) -> Result<PathBuf, String> {
        self.sqlite_seen += 1;
        let name = format!(".sqlite-{}.db", self.sqlite_seen);
        let copy = self.partial.join(&name);
        let db_abs =
            std::path::absolute(db).map_err(|e| format!("cannot read {}: {e}", db.display()))?;
        // The copy's name is ours and plain; the database goes as an argument, never
        // inside the dot-command, so no quoting is involved.
        let out = std::process::Command::new("sqlite3")
            .arg("-bail")
            .arg(&db_abs)
            .arg(".timeout 1000")
            .arg(format!(".backup {name}"))
            .current_dir(self.partial)
            .stdin(std::process::Stdio::null())
            .output();
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                let _ = std::fs::remove_file(&copy);
                return Err(format!(
                    "{} is a SQLite database and needs `sqlite3` for a consistent copy: {e}",
                    db.display()
                ));
            }
        };
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if !out.status.success() || !stderr.is_empty() {
            let _ = std::fs::remove_file(&copy);
            return Err(format!(
                "{}: SQLite online backup failed ({}): {stderr}",
                db.display(),
                out.status
            ));
        }
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot write {}: {e}", copy.display()))?;
        Ok(copy)
    }
}

/// Reads exactly `left` bytes (the size a file had when opened), reporting progress; a
/// file that ends sooner is an error, not a short tar entry.
struct Exact<'a> {
    inner: std::fs::File,
    left: u64,
    progress: &'a dyn Fn(u64),
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "the file shrank while it was read ({} bytes missing)",
                    self.left
                ),
            ));
        }
        self.left -= n as u64;
        (self.progress)(n as u64);
        Ok(n)
    }
}

/// Where a source path is stored: its real location relative to `/` (a relative path is
/// taken from the working directory; `.` is the directory's real path). The last component
/// is kept as named (a symlink given as a path is not resolved); its parents are resolved.
pub fn stored_name(root: &Path) -> Result<PathBuf, String> {
    let failed = |e: std::io::Error| format!("cannot read {}: {e}", root.display());
    let absolute = std::path::absolute(root).map_err(failed)?;
    let real = match absolute.components().next_back() {
        Some(Component::Normal(name)) => {
            let parent = absolute.parent().unwrap_or(Path::new("/"));
            std::fs::canonicalize(parent).map_err(failed)?.join(name)
        }
        _ => std::fs::canonicalize(&absolute).map_err(failed)?,
    };
    Ok(real.strip_prefix("/").unwrap_or(&real).to_path_buf())
}

/// One thing the walk found, with what is needed to read it without resolving a path again:
/// the directory it was listed in, held open, and its name there.
enum Found<'a> {
    /// A regular file (as listed; it is opened with `O_NOFOLLOW` from `dir`).
    File {
        dir: BorrowedFd<'a>,
        name: &'a CStr,
        path: &'a Path,
        member: &'a Path,
    },
    /// A directory, already opened: `meta` is that of the directory walked.
    Dir {
        meta: &'a std::fs::Metadata,
        path: &'a Path,
        member: &'a Path,
    },
    /// A symlink, stored as a link.
    Link {
        dir: BorrowedFd<'a>,
        name: &'a CStr,
        path: &'a Path,
        member: &'a Path,
    },
    /// Listed, but gone or replaced (by a link, or by something else) before it was opened:
    /// left out, `what` says why.
    Changed { path: &'a Path, what: &'static str },
}

/// What a directory listing says an entry is (`DT_UNKNOWN` is asked with `fstatat`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Link,
    Other,
}

fn kind_of(mode: libc::mode_t) -> Kind {
    match mode & libc::S_IFMT {
        libc::S_IFREG => Kind::File,
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFLNK => Kind::Link,
        _ => Kind::Other,
    }
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`.
fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> std::io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `name` is NUL-terminated, `st` is written by the kernel on success only.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fstatat succeeded, so it filled `st`.
    Ok(unsafe { st.assume_init() })
}

/// `openat(dir, name, flags | O_CLOEXEC)`.
fn open_at(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> std::io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated; the returned descriptor is ours alone.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Open the directory `name` in `dir`, never through a link.
fn open_dir_at(dir: BorrowedFd<'_>, name: &CStr) -> std::io::Result<OwnedFd> {
    open_at(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
    )
}

/// The target of the symlink `name` in `dir`, read once.
fn read_link_at(dir: BorrowedFd<'_>, name: &CStr) -> std::io::Result<PathBuf> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: `buf` is valid for `buf.len()` bytes; readlinkat writes at most that.
        let n = unsafe {
            libc::readlinkat(
                dir.as_raw_fd(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        let Ok(n) = usize::try_from(n) else {
            return Err(std::io::Error::last_os_error());
        };
        if n < buf.len() {
            buf.truncate(n);
            return Ok(PathBuf::from(OsStr::from_bytes(&buf)));
        }
        // Possibly cut short: try again with more room.
        buf.resize(buf.len() * 2, 0);
    }
}

/// The entries of the open directory `dir` (not `.` and `..`), sorted by name byte for
/// byte, each with the type its listing gives (`None`: ask). Read through a duplicate of
/// `dir`, closed before this returns: a walk holds one descriptor per level.
fn list(dir: BorrowedFd<'_>) -> std::io::Result<Vec<(CString, Option<Kind>)>> {
    let dup = dir.try_clone_to_owned()?;
    // The duplicate shares the offset with `dir`; start from the beginning.
    // SAFETY: lseek on a descriptor we own.
    if unsafe { libc::lseek(dup.as_raw_fd(), 0, libc::SEEK_SET) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fdopendir takes the descriptor over (closedir closes it) on success only.
    let stream = unsafe { libc::fdopendir(dup.as_raw_fd()) };
    if stream.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    let _ = dup.into_raw_fd();
    let mut entries = Vec::new();
    let result = loop {
        // SAFETY: errno is thread-local; readdir sets it only on an error.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `stream` is an open directory stream, used by this thread only.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            let e = std::io::Error::last_os_error();
            break if e.raw_os_error() == Some(0) {
                Ok(())
            } else {
                Err(e)
            };
        }
        // SAFETY: readdir returned a valid entry, alive until the next readdir.
        let (name, kind) = unsafe {
            let entry = &*entry;
            let name = CStr::from_ptr(entry.d_name.as_ptr());
            let kind = match entry.d_type {
                libc::DT_REG => Some(Kind::File),
                libc::DT_DIR => Some(Kind::Dir),
                libc::DT_LNK => Some(Kind::Link),
                libc::DT_UNKNOWN => None,
                _ => Some(Kind::Other),
            };
            (name, kind)
        };
        if name.to_bytes() != b"." && name.to_bytes() != b".." {
            entries.push((name.to_owned(), kind));
        }
    };
    // SAFETY: `stream` is open; this closes it and the duplicate descriptor.
    unsafe { libc::closedir(stream) };
    result?;
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(entries)
}

/// The walk's place: the path shown in messages, the name in the archive and the path
/// relative to the set path (for excludes), each grown and shrunk as the walk goes.
struct Place {
    path: PathBuf,
    member: PathBuf,
    relative: PathBuf,
}

/// Visit everything `set` backs up, in order, excludes left out (see [`Found`]).
///
/// No link is ever followed: each set path is opened once (its parents resolved, its own
/// name not), and everything under it is opened from its directory's descriptor with
/// `O_NOFOLLOW`, so a directory replaced by a symlink after its parent was listed is left
/// out with a warning, never walked through. One descriptor is held per level.
fn walk(
    set: &BackupSet,
    excluded: &globset::GlobSet,
    skip: Option<(u64, u64)>,
    mut visit: impl FnMut(Found<'_>) -> Result<(), String>,
) -> Result<(), String> {
    for root in &set.paths {
        let root_path = PathBuf::from(root.as_str());
        let cannot = |e: std::io::Error| format!("cannot read {}: {e}", root.shown());
        let base = stored_name(&root_path)?;
        let mut place = Place {
            path: root_path.clone(),
            member: base,
            relative: PathBuf::new(),
        };
        // `app/` (or `app/.`) names what `app` points to, as with `ls`: opened as named.
        let bytes = root_path.as_os_str().as_bytes();
        let through = bytes.ends_with(b"/") || bytes.ends_with(b"/.");
        let (parent, name) = match root_path.components().next_back() {
            Some(Component::Normal(name)) if !through => {
                let parent = root_path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let parent = std::fs::File::open(parent).map_err(cannot)?;
                let name = CString::new(name.as_bytes())
                    .map_err(|_| format!("cannot read {}: a NUL byte in its name", root.shown()))?;
                (Some(OwnedFd::from(parent)), name)
            }
            // `/`, `.`, `..`, `app/`: a directory, opened as named.
            _ => (None, CString::default()),
        };
        let dir = match &parent {
            Some(parent) => {
                let st = stat_at(parent.as_fd(), &name).map_err(cannot)?;
                match kind_of(st.st_mode) {
                    Kind::Dir => open_dir_at(parent.as_fd(), &name).map_err(cannot)?,
                    // A file, or a symlink (stored as a link, as tar does: descending
                    // through it would store entries under a link, which no restore
                    // writes through).
                    Kind::File => {
                        visit(Found::File {
                            dir: parent.as_fd(),
                            name: &name,
                            path: &place.path,
                            member: &place.member,
                        })?;
                        continue;
                    }
                    Kind::Link => {
                        visit(Found::Link {
                            dir: parent.as_fd(),
                            name: &name,
                            path: &place.path,
                            member: &place.member,
                        })?;
                        continue;
                    }
                    // Sockets, fifos and devices are not backed up.
                    Kind::Other => continue,
                }
            }
            None => OwnedFd::from(
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECTORY)
                    .open(&root_path)
                    .map_err(cannot)?,
            ),
        };
        drop(parent);
        let dir = std::fs::File::from(dir);
        let meta = dir.metadata().map_err(cannot)?;
        if skip == Some((meta.dev(), meta.ino())) {
            return Err(format!(
                "{} is the backup destination itself: nothing of it would be backed up; put \
                 the destination outside it (or in a directory of it)",
                root.shown()
            ));
        }
        // `/` itself has no name in an archive; what is under it does.
        if !place.member.as_os_str().is_empty() {
            visit(Found::Dir {
                meta: &meta,
                path: &place.path,
                member: &place.member,
            })?;
        }
        walk_dir(dir.as_fd(), &mut place, excluded, skip, &mut visit)?;
    }
    Ok(())
}

/// Visit what is in the open directory `dir` (at `place`), depth first, sorted by name.
fn walk_dir(
    dir: BorrowedFd<'_>,
    place: &mut Place,
    excluded: &globset::GlobSet,
    skip: Option<(u64, u64)>,
    visit: &mut impl FnMut(Found<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let entries = list(dir).map_err(|e| format!("cannot read {}: {e}", place.path.display()))?;
    for (name, kind) in entries {
        let os_name = OsStr::from_bytes(name.as_bytes());
        place.path.push(os_name);
        place.member.push(os_name);
        place.relative.push(os_name);
        let result = walk_entry(dir, &name, kind, place, excluded, skip, visit);
        place.path.pop();
        place.member.pop();
        place.relative.pop();
        result?;
    }
    Ok(())
}

fn walk_entry(
    dir: BorrowedFd<'_>,
    name: &CStr,
    kind: Option<Kind>,
    place: &mut Place,
    excluded: &globset::GlobSet,
    skip: Option<(u64, u64)>,
    visit: &mut impl FnMut(Found<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let os_name = OsStr::from_bytes(name.to_bytes());
    if !excluded.is_empty() && (excluded.is_match(os_name) || excluded.is_match(&place.relative)) {
        return Ok(());
    }
    let kind = match kind {
        Some(kind) => kind,
        None => match stat_at(dir, name) {
            Ok(st) => kind_of(st.st_mode),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return visit(Found::Changed {
                    path: &place.path,
                    what: "removed",
                });
            }
            Err(e) => return Err(format!("cannot read {}: {e}", place.path.display())),
        },
    };
    match kind {
        Kind::File => visit(Found::File {
            dir,
            name,
            path: &place.path,
            member: &place.member,
        }),
        Kind::Link => visit(Found::Link {
            dir,
            name,
            path: &place.path,
            member: &place.member,
        }),
        // Sockets, fifos and devices are not backed up.
        Kind::Other => Ok(()),
        Kind::Dir => {
            let sub = match open_dir_at(dir, name) {
                Ok(sub) => std::fs::File::from(sub),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return visit(Found::Changed {
                        path: &place.path,
                        what: "removed",
                    });
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                    return visit(Found::Changed {
                        path: &place.path,
                        what: "replaced by a symlink or something that is not a directory \
                               (never walked through)",
                    });
                }
                Err(e) => return Err(format!("cannot read {}: {e}", place.path.display())),
            };
            let meta = sub
                .metadata()
                .map_err(|e| format!("cannot read {}: {e}", place.path.display()))?;
            if skip == Some((meta.dev(), meta.ino())) {
                return Ok(());
            }
            visit(Found::Dir {
                meta: &meta,
                path: &place.path,
                member: &place.member,
            })?;
            walk_dir(sub.as_fd(), place, excluded, skip, visit)
        }
    }
}

/// The bytes of the files `set` backs up (for a progress bar's total).
pub fn measure(set: &BackupSet) -> Result<u64, String> {
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
pub fn globs(patterns: &[String], what: &str) -> Result<globset::GlobSet, String> {
    let mut builder = globset::GlobSetBuilder::new();
    for pattern in patterns {
        let glob = globset::Glob::new(pattern)
            .map_err(|e| format!("{what} {pattern:?} is not a valid glob: {e}"))?;
        builder.add(glob);
    }
    builder
        .build()
        .map_err(|e| format!("cannot use the exclude globs: {e}"))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Stream the archive of `manifest` in `dir` and compare every file with the manifest: the
/// problems found, each naming its file (empty when the backup checks out).
pub fn verify(dir: &Path, manifest: &Manifest) -> Vec<String> {
    let path = dir.join(&manifest.archive);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) => return vec![format!("cannot read {}: {e}", path.display())],
    };
    let file = std::io::BufReader::with_capacity(1 << 20, file);
    let reader = match crate::codec::decoder(manifest.compression.codec(), file) {
        Ok(reader) => reader,
        Err(e) => return vec![format!("{} is damaged: {e}", path.display())],
    };
    let mut expected: BTreeMap<Vec<u8>, &FileEntry> = BTreeMap::new();
    let mut problems = Vec::new();
    for f in &manifest.files {
        match f.path_bytes() {
            Some(bytes) => {
                expected.insert(bytes, f);
            }
            None => problems.push(format!("{}: the manifest's path_hex is malformed", f.path)),
        }
    }
    // Directories and symlinks too, when the manifest lists them (every backup made since
    // it does): a changed link target or an extra entry would pass here and then make
    // the restore refuse the whole backup.
    let mut expected_others: BTreeMap<Vec<u8>, &OtherEntry> = BTreeMap::new();
    if manifest.listing {
        for o in &manifest.others {
            match o.path_bytes() {
                Some(bytes) => {
                    expected_others.insert(bytes, o);
                }
                None => {
                    problems.push(format!("{}: the manifest's path_hex is malformed", o.path));
                }
            }
        }
    }
    let mut archive = tar::Archive::new(reader);
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(e) => return vec![format!("{} is damaged: {e}", path.display())],
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                problems.push(format!("{} is damaged: {e}", path.display()));
                break;
            }
        };
        let kind = entry.header().entry_type();
        if kind != tar::EntryType::Regular {
            if manifest.listing {
                let mut bytes = entry.path_bytes().into_owned();
                while bytes.len() > 1 && bytes.ends_with(b"/") {
                    bytes.pop();
                }
                let name = String::from_utf8_lossy(&bytes).into_owned();
                let target = entry.link_name_bytes().map(|t| t.into_owned());
                match expected_others.remove(&bytes) {
                    None => {
                        problems.push(format!("{name}: in the archive but not in the manifest"))
                    }
                    Some(want) => {
                        let same = match kind {
                            tar::EntryType::Directory => want.target.is_none(),
                            tar::EntryType::Symlink => {
                                want.target.is_some() && target == want.target_bytes()
                            }
                            _ => false,
                        };
                        if !same {
                            problems.push(format!(
                                "{name}: does not match the manifest (kind or link target)"
                            ));
                        }
                    }
                }
            }
            continue;
        }
        // Names compare byte for byte; the lossy text is only for messages.
        let bytes = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&bytes).into_owned();
        let (len, digest) = match sha256_of(&mut entry) {
            Ok(found) => found,
            Err(e) => {
                problems.push(format!("{name}: cannot be read from the archive: {e}"));
                continue;
            }
        };
        match expected.remove(&bytes) {
            None => problems.push(format!("{name}: in the archive but not in the manifest")),
            Some(want) if want.size != len || want.sha256 != digest => {
                problems.push(format!(
                    "{name}: does not match the manifest (size or SHA-256)"
                ));
            }
            Some(_) => {}
        }
    }
    for missing in expected.values() {
        problems.push(format!(
            "{}: in the manifest but missing from the archive",
            missing.path
        ));
    }
    for missing in expected_others.values() {
        problems.push(format!(
            "{}: in the manifest but missing from the archive",
            missing.path
        ));
    }
    problems
}

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
