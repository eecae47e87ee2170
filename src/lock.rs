//! One run at a time: an exclusive `flock` on a file in the state directory. The kernel
//! drops it when the holder exits, however it exits, so a lock left by a killed run is
//! taken over by the next one. The file records who holds it, for the message a second
//! run prints (exit 75). Lock files live in private directories and are never opened
//! through a link (a planted `x.lock -> /etc/passwd` would otherwise be truncated).

use crate::error::Error as Refused;
use crate::fsutil;
use std::io::{Read, Seek, Write};
use std::path::Path;

pub struct Lock {
    _file: std::fs::File,
}

/// A lock that could not be taken (not one another run holds: that is
/// [`crate::error::Error::LockHeld`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Dir(#[from] fsutil::Error),
    #[error("cannot take the lock: {0}")]
    File(fsutil::Error),
    #[error("cannot lock {}: {error}", .path.display())]
    Lock {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
}

/// The lock file at `path` (created if missing) for [`Lock::wait`] and
/// [`Lock::wait_async`]: its directory made private, the file opened without following a
/// link.
fn open_lock_file(path: &Path) -> Result<std::fs::File, Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fsutil::create_dir_private(dir, fsutil::PRIVATE_DIR)?;
    }
    fsutil::open_nofollow_rw(path, fsutil::PRIVATE_FILE).map_err(Error::File)
}

impl Lock {
    /// A log set's lock: rotation and archiving of one set never overlap, whether run by
    /// `logs rotate`/`logs archive` or by a runbook step.
    pub fn log_set(state_dir: &Path, set: &str) -> anyhow::Result<Lock> {
        Lock::acquire(
            state_dir,
            &format!("logs-rotate-{set}"),
            &format!("log set {set:?}"),
        )
    }

    /// A backup set's lock: create, prune and restore of one set never overlap.
    pub fn backup_set(state_dir: &Path, set: &str) -> anyhow::Result<Lock> {
        Lock::acquire(
            state_dir,
            &format!("backup-{set}"),
            &format!("backup set {set:?}"),
        )
    }

    /// Wait for the lock on `path` (created if missing): for short read-modify-write
    /// updates of a shared file (a state file, an incident record) by several processes.
    /// Its directory must be private and the lock file a regular file, never a link.
    pub fn wait(path: &Path) -> Result<Lock, Error> {
        let file = open_lock_file(path)?;
        file.lock().map_err(|error| Error::Lock {
            path: path.to_path_buf(),
            error,
        })?;
        Ok(Lock { _file: file })
    }

    /// [`Lock::wait`] for async code: the lock is tried and, while another process holds
    /// it, tried again after a pause, so waiting never blocks a thread and dropping the
    /// future stops the wait at once (a stopping monitor is never held by a lock).
    pub async fn wait_async(path: &Path) -> Result<Lock, Error> {
        let file = open_lock_file(path)?;
        let mut pause = std::time::Duration::from_millis(5);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Lock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(200));
                }
                Err(std::fs::TryLockError::Error(error)) => {
                    return Err(Error::Lock {
                        path: path.to_path_buf(),
                        error,
                    });
                }
            }
        }
    }

    /// Take the lock `name` under `state_dir`, or fail saying who holds it.
    pub fn acquire(state_dir: &Path, name: &str, what: &str) -> anyhow::Result<Lock> {
        use anyhow::Context as _;
        let dir = state_dir.join("locks");
        fsutil::create_dir_private(state_dir, fsutil::PRIVATE_DIR)
            .and_then(|()| fsutil::create_dir_private(&dir, fsutil::PRIVATE_DIR))
            .map_err(anyhow::Error::msg)?;
        let path = dir.join(format!("{name}.lock"));
        let mut file =
            fsutil::open_nofollow_rw(&path, fsutil::PRIVATE_FILE).map_err(Error::File)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "unknown holder"
                } else {
                    holder
                };
                return Err(Refused::LockHeld {
                    what: what.to_string(),
                    holder: format!("{holder}; lock file {}", path.display()),
                }
                .into());
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        let started = jiff::Timestamp::now();
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "pid {} since {started}", std::process::id());
        let _ = file.flush();
        Ok(Lock { _file: file })
    }
}
