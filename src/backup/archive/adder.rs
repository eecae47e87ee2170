//! Adding entries to a backup's tar stream (files read at their opened size and hashed,
//! directories, symlinks, SQLite databases through the online backup) and listing each for
//! the manifest.

use super::*;

/// The first bytes of every SQLite 3 database file.
pub(super) const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Adds entries to the archive and lists them for the manifest.
pub(super) struct Adder<'a> {
    pub(super) tar: tar::Builder<Encoder>,
    pub(super) partial: &'a Path,
    pub(super) progress: &'a dyn Fn(u64),
    pub(super) files: Vec<FileEntry>,
    pub(super) others: Vec<OtherEntry>,
    pub(super) warnings: Vec<String>,
    /// Every member name so far: two sources reaching one name would make a backup that
    /// cannot be restored.
    pub(super) members: HashSet<PathBuf>,
    /// SQLite databases stored through the online backup: their `-wal`, `-shm` and
    /// `-journal` files are in the snapshot and are left out.
    pub(super) snapshots: HashSet<PathBuf>,
    pub(super) sqlite_seen: u64,
}

impl Adder<'_> {
    pub(super) fn claim(&mut self, member: &Path, path: &Path) -> Result<(), Error> {
        if self.members.insert(member.to_path_buf()) {
            return Ok(());
        }
        Err(Error::Failed(format!(
            "{} would be stored as {} a second time: two of the set's paths (or a path and a \
             command source) reach it; list each place once",
            path.display(),
            member.display()
        )))
    }

    pub(super) fn is_snapshot_companion(&self, path: &Path) -> bool {
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
    pub(super) fn add_dir(
        &mut self,
        meta: &std::fs::Metadata,
        path: &Path,
        member: &Path,
    ) -> Result<(), Error> {
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
    pub(super) fn add_link(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        path: &Path,
        member: &Path,
    ) -> Result<(), Error> {
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
            Err(e) => return Err(Error::Failed(failed(e))),
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
        let (text, hex) = crate::backup::encode_name(target.as_os_str().as_bytes());
        self.push_other(member, Some(text), hex, &meta);
        Ok(())
    }

    pub(super) fn push_other(
        &mut self,
        member: &Path,
        target: Option<String>,
        target_hex: Option<String>,
        meta: &std::fs::Metadata,
    ) {
        let (name, name_hex) = crate::backup::encode_name(member.as_os_str().as_bytes());
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
    pub(super) fn add_file(
        &mut self,
        path: &Path,
        member: &Path,
        found: Option<(BorrowedFd<'_>, &CStr)>,
    ) -> Result<Option<FileEntry>, Error> {
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
            Err(e) => return Err(Error::Failed(unreadable(e))),
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

    pub(super) fn append(
        &mut self,
        file: std::fs::File,
        size: u64,
        meta: &std::fs::Metadata,
        path: &Path,
        member: &Path,
    ) -> Result<FileEntry, Error> {
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
        let (name, name_hex) = crate::backup::encode_name(member.as_os_str().as_bytes());
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
    pub(super) fn sqlite_snapshot(&mut self, db: &Path) -> Result<PathBuf, Error> {
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
                return Err(Error::Failed(format!(
                    "{} is a SQLite database and needs `sqlite3` for a consistent copy: {e}",
                    db.display()
                )));
            }
        };
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if !out.status.success() || !stderr.is_empty() {
            let _ = std::fs::remove_file(&copy);
            return Err(Error::Failed(format!(
                "{}: SQLite online backup failed ({}): {stderr}",
                db.display(),
                out.status
            )));
        }
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot write {}: {e}", copy.display()))?;
        Ok(copy)
    }
}

/// Reads exactly `left` bytes (the size a file had when opened), reporting progress; a
/// file that ends sooner is an error, not a short tar entry.
pub(super) struct Exact<'a> {
    pub(super) inner: std::fs::File,
    pub(super) left: u64,
    pub(super) progress: &'a dyn Fn(u64),
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
