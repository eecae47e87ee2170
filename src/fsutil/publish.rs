//! The one all-or-nothing write: a temporary file beside the target, fsync, rename,
//! fsync of the directory; state files and atomic writes go through it.

use super::{
    Error, PRIVATE_DIR, PRIVATE_FILE, check_dir_private, create_dir_private, parent, read_nofollow,
    sync_dir, with_suffix,
};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A state file (schedule runs, verifications, rotations): its directory must be private,
/// and a link or anything but a regular file in its place is refused rather than replaced.
pub fn write_state(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    stage_state(path, bytes)?.commit()
}

/// [`write_state`] in two steps: written and synced under a temporary name now, made
/// visible by [`Staged::commit`].
pub fn stage_state(path: &Path, bytes: &[u8]) -> Result<Staged, Error> {
    create_dir_private(parent(path), PRIVATE_DIR)?;
    refuse_non_regular(path)?;
    stage(path, bytes, PRIVATE_FILE)
}

/// A state file's bytes (`None` when missing), under the same rules as [`write_state`].
pub fn read_state(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    if parent(path).is_dir() {
        check_dir_private(parent(path))?;
    }
    read_nofollow(path)
}

fn refuse_non_regular(path: &Path) -> Result<(), Error> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(Error::ReplaceLink(path.to_path_buf())),
        Ok(meta) if !meta.file_type().is_file() => Err(Error::NotRegular(path.to_path_buf())),
        _ => Ok(()),
    }
}

/// [`write_atomically_mode`] with the owner-only mode.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_atomically_mode(path, bytes, PRIVATE_FILE)
}

/// Write `bytes` to `path` all or nothing, the file getting exactly `mode`.
pub fn write_atomically_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    stage(path, bytes, mode)?.commit()
}

/// Write `bytes` beside `path` (mode `mode`) without making them visible yet.
pub fn stage(path: &Path, bytes: &[u8], mode: u32) -> Result<Staged, Error> {
    let dir = parent(path);
    std::fs::create_dir_all(dir).map_err(Error::io("cannot create", dir))?;
    let how = Publish::replacing().unique();
    let write = |temp: &Path| {
        let mut file = create_temp(temp, mode).map_err(Error::io("cannot write", path))?;
        file.write_all(bytes)
            .map_err(Error::io("cannot write", path))
    };
    stage_with(path, &how, write)
        .map(|((), staged)| staged)
        .map_err(PublishError::flatten)
}

/// Create `temp` for writing: a new file (never an existing one, never through a link)
/// with exactly `mode`, whatever the umask.
pub fn create_temp(temp: &Path, mode: u32) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(temp)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(file)
}

/// How [`publish`] names its temporary file and whether it may replace the target.
#[derive(Clone, Debug)]
pub struct Publish {
    temp: Temp,
    replace: bool,
    sync: bool,
}

#[derive(Clone, Debug)]
enum Temp {
    Beside,
    Unique,
    Named(PathBuf),
}

impl Publish {
    /// Replace whatever file is at the target. The temporary is `TARGET.opsbook-tmp`, one
    /// fixed name that a later run recognises as a killed run's leftover: the caller holds
    /// the lock that makes it the only writer.
    pub fn replacing() -> Self {
        Publish {
            temp: Temp::Beside,
            replace: true,
            sync: true,
        }
    }

    /// Never replace: a target already there is [`Error::InTheWay`] and is left alone.
    pub fn keeping() -> Self {
        Publish {
            temp: Temp::Beside,
            replace: false,
            sync: true,
        }
    }

    /// A temporary name no other writer uses (`.NAME.PID-N.tmp`), for files that several
    /// runs may write at once.
    pub fn unique(mut self) -> Self {
        self.temp = Temp::Unique;
        self
    }

    /// The writer fsyncs the file itself before it returns (it reads it back, or finishes
    /// a stream onto it): no second fsync, which on some disks still flushes the cache.
    pub fn writer_syncs(mut self) -> Self {
        self.sync = false;
        self
    }

    /// This temporary, in the target's directory (a name its readers skip).
    pub fn temp(mut self, temp: PathBuf) -> Self {
        self.temp = Temp::Named(temp);
        self
    }

    fn temp_for(&self, target: &Path) -> PathBuf {
        static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        match &self.temp {
            Temp::Beside => with_suffix(target, ".opsbook-tmp"),
            Temp::Named(temp) => temp.clone(),
            Temp::Unique => {
                let n = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let name = target.file_name().unwrap_or_default().to_string_lossy();
                parent(target).join(format!(".{name}.{}-{n}.tmp", std::process::id()))
            }
        }
    }
}

/// What failed in [`publish`]: the caller's writer, or putting the file in place. Either
/// way the temporary is gone and the target untouched.
#[derive(Debug, thiserror::Error)]
pub enum PublishError<E> {
    #[error("{0}")]
    Write(E),
    #[error(transparent)]
    Place(#[from] Error),
}

impl<E: From<Error>> PublishError<E> {
    /// The caller's own error, whichever step failed.
    pub fn flatten(self) -> E {
        match self {
            PublishError::Write(e) => e,
            PublishError::Place(e) => e.into(),
        }
    }
}

/// The one all-or-nothing write: `write` fills a temporary file beside `target` (it is
/// given the path, with nothing there, and creates the file, e.g. with [`create_temp`]);
/// the temporary is then fsynced, renamed onto `target` and the directory fsynced. On any
/// failure the temporary is removed and `target` is as it was. `write`'s value is
/// returned.
pub fn publish<T, E>(
    target: &Path,
    how: &Publish,
    write: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<T, PublishError<E>> {
    let (value, staged) = stage_with(target, how, write)?;
    staged.commit()?;
    Ok(value)
}

/// [`publish`] up to the rename: the file is written and synced under its temporary name,
/// made visible by [`Staged::commit`] (dropping it removes it).
pub fn stage_with<T, E>(
    target: &Path,
    how: &Publish,
    write: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<(T, Staged), PublishError<E>> {
    let temp = how.temp_for(target);
    // A leftover of a killed run (or anything planted there) goes.
    match std::fs::remove_file(&temp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::io("cannot remove", &temp)(e).into());
        }
        _ => {}
    }
    let staged = Staged {
        temp,
        target: target.to_path_buf(),
        replace: how.replace,
        done: false,
    };
    let value = write(&staged.temp).map_err(PublishError::Write)?;
    if how.sync {
        File::open(&staged.temp)
            .and_then(|file| file.sync_all())
            .map_err(Error::io("cannot write", target))?;
    }
    Ok((value, staged))
}

/// A file written and synced under a temporary name beside its target, not yet visible:
/// [`Staged::commit`] renames it into place; dropping it removes it.
pub struct Staged {
    temp: PathBuf,
    target: PathBuf,
    replace: bool,
    done: bool,
}

impl Staged {
    pub fn commit(mut self) -> Result<(), Error> {
        let renamed = if self.replace {
            rename_at(&self.temp, &self.target, 0)
        } else {
            rename_noreplace(&self.temp, &self.target)
        };
        match renamed {
            Ok(()) => {
                self.done = true;
                sync_dir(&self.target);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && !self.replace => {
                Err(Error::InTheWay {
                    temp: self.temp.clone(),
                    target: self.target.clone(),
                })
            }
            Err(error) => Err(Error::Rename {
                temp: self.temp.clone(),
                target: self.target.clone(),
                error,
            }),
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// `rename(from, to)` that fails with `AlreadyExists` instead of replacing `to`.
pub fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    let error = match rename_at(from, to, libc::RENAME_NOREPLACE) {
        Ok(()) => return Ok(()),
        Err(error) => error,
    };
    if error.raw_os_error() != Some(libc::EINVAL) {
        return Err(error);
    }
    // A file system without RENAME_NOREPLACE: a hard link fails if `to` exists.
    std::fs::hard_link(from, to)?;
    std::fs::remove_file(from)
}

/// `renameat` (flags 0), or `renameat2` with `flags`: the calls a fault injected on a
/// path's renames (strace -P) sees with both paths.
fn rename_at(from: &Path, to: &Path, flags: libc::c_uint) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let (src, dst) = (c(from)?, c(to)?);
    let (cwd, src, dst) = (libc::AT_FDCWD, src.as_ptr(), dst.as_ptr());
    // SAFETY: two NUL-terminated paths that live across the call.
    let rc = unsafe {
        if flags == 0 {
            libc::renameat(cwd, src, cwd, dst)
        } else {
            libc::renameat2(cwd, src, cwd, dst, flags)
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn publish_is_all_or_nothing_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("state.json");
        std::fs::write(&target, "old").unwrap();
        // A killed run's leftover at the fixed temporary name goes first.
        std::fs::write(with_suffix(&target, ".opsbook-tmp"), "stale").unwrap();
        let n = publish(&target, &Publish::replacing(), |temp: &Path| {
            let mut file = create_temp(temp, 0o640)?;
            file.write_all(b"new")?;
            Ok::<_, std::io::Error>(3)
        })
        .unwrap();
        assert_eq!(n, 3);
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        let meta = std::fs::metadata(&target).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o640);
        let names = |d: &Path| {
            let mut names: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(dir.path()), ["state.json"]);

        // A failing writer: the half-written temporary goes, the target is as it was.
        let failed = publish(&target, &Publish::replacing().unique(), |temp: &Path| {
            let mut file = create_temp(temp, 0o600).map_err(|e| e.to_string())?;
            file.write_all(b"half").map_err(|e| e.to_string())?;
            Err::<(), _>("disk full".to_string())
        });
        assert!(matches!(failed, Err(PublishError::Write(ref e)) if e == "disk full"));
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["state.json"]);

        // Keeping: a target already there is left alone, and said to be in the way.
        let kept = publish(&target, &Publish::keeping(), |temp: &Path| {
            create_temp(temp, 0o600).map(drop)
        });
        let err = kept.unwrap_err();
        assert!(
            matches!(err, PublishError::Place(Error::InTheWay { .. })),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            format!("{} is in the way", target.display())
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["state.json"]);

        // A named temporary; staged, nothing is visible until the commit.
        let fresh = dir.path().join("bundle.tar.gz");
        let partial = dir.path().join(".bundle.tar.gz.partial");
        let how = Publish::keeping().temp(partial.clone());
        let ((), staged) = stage_with(&fresh, &how, |temp: &Path| {
            create_temp(temp, 0o600).and_then(|mut f| f.write_all(b"gz"))
        })
        .unwrap();
        assert!(partial.exists() && !fresh.exists());
        staged.commit().unwrap();
        assert!(!partial.exists());
        assert_eq!(std::fs::read(&fresh).unwrap(), b"gz");
    }

    #[test]
    fn state_files_keep_their_messages_when_written_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        create_dir_private(&state, PRIVATE_DIR).unwrap();
        let real = dir.path().join("elsewhere.json");
        std::fs::write(&real, "x").unwrap();
        let path = state.join("s.json");
        std::os::unix::fs::symlink(&real, &path).unwrap();
        let err = write_state(&path, b"{}").unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "refusing to replace {}: it is a symbolic link, and opsbook never writes its \
                 own files through a link (remove the link)",
                path.display()
            )
        );
        assert_eq!(std::fs::read(&real).unwrap(), b"x");
    }
}
