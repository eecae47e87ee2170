//! One run at a time: an exclusive `flock` on a file in the state directory. The kernel
//! drops it when the holder exits, however it exits, so a lock left by a killed run is
//! taken over by the next one. The file records who holds it, for the message a second
//! run prints (exit 75).

use crate::error::Error;
use std::io::{Read, Seek, Write};
use std::path::Path;

pub struct Lock {
    _file: std::fs::File,
}

impl Lock {
    /// Take the lock `name` under `state_dir`, or fail saying who holds it.
    pub fn acquire(state_dir: &Path, name: &str, what: &str) -> anyhow::Result<Lock> {
        use anyhow::Context as _;
        let dir = state_dir.join("locks");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the lock directory {}", dir.display()))?;
        let path = dir.join(format!("{name}.lock"));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open the lock {}", path.display()))?;
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
                return Err(Error::LockHeld {
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
