//! What rotation and archiving need to never write where they did not mean to: opening
//! without following a planted symlink, refusing a log that is a link or has other names,
//! refusing a directory others can plant names in, and renaming without replacing.
//!
//! Also the test seam of rotation: named stop points where the process kills itself.

use std::fs::{File, Metadata};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::OnceLock;

/// Every named point where a test can stop a rotation (`OPSBOOK_TEST_STOP_AT=<point>` makes
/// the process SIGKILL itself the first time it gets there). A run killed at any of them
/// is completed or rolled back by the next run: every line of the log stays in exactly one
/// file.
pub const STOP_POINTS: &[&str] = &[
    // one older rotated file shifted up (`.N` → `.N+1`) or deleted past `keep`
    "shifted",
    // the intent record of one file's rotation is on disk; nothing of the file moved yet
    "intent-saved",
    // create: the log renamed to its rotated name, no fresh log yet
    "renamed",
    // create: the fresh log created, the intent not yet marked done
    "created",
    // copytruncate: the copy written and fsynced under its temporary name
    "copy-written",
    // copytruncate: the copy has its rotated name, the log is not truncated yet
    "copy-renamed",
    // copytruncate: the log truncated, the intent not yet marked done
    "truncated",
    // the writer signalled / postrotate run, the intent not yet cleared
    "notified",
    // the rotation state saved
    "state-saved",
    // a compressed copy written and verified under its temporary name
    "compress-written",
    // the compressed copy has its name, the plain file is not removed yet
    "compress-renamed",
    // one rotated file compressed
    "compressed",
    // one rotated file past `keep` or `max_age` deleted at the end of a run
    "expired",
];

/// Test seam: SIGKILL this process if `OPSBOOK_TEST_STOP_AT` names `point` (one of
/// [`STOP_POINTS`]). Reads the environment once; costs a comparison when unset.
pub fn stop_at(point: &str) {
    static WANTED: OnceLock<Option<String>> = OnceLock::new();
    let wanted = WANTED.get_or_init(|| std::env::var("OPSBOOK_TEST_STOP_AT").ok());
    if wanted.as_deref() == Some(point) {
        debug_assert!(STOP_POINTS.contains(&point), "unlisted stop point {point}");
        // SAFETY: raise(3) on our own process; SIGKILL cannot be caught, nothing returns.
        unsafe {
            libc::raise(libc::SIGKILL);
        }
    }
}

/// Open an existing file for reading (or writing) without following a symlink in its last
/// component.
pub fn open_nofollow(path: &Path, write: bool) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// A new file that must not exist yet (`O_EXCL`: never through a planted link), with
/// exactly `mode` whatever the umask, and, when given, that owner.
pub fn create_new(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    if let Some((uid, gid)) = owner {
        // Owners other than ours need root; as another user the file stays ours.
        let _ = std::os::unix::fs::fchown(&file, Some(uid), Some(gid));
    }
    Ok(file)
}

/// The metadata of a log to rotate, or why it must not be touched: a symlink, something
/// other than a regular file, or a file with more than one name.
pub fn check_log(path: &Path) -> std::io::Result<Result<Metadata, super::Error>> {
    let meta = std::fs::symlink_metadata(path)?;
    let shown = path.display();
    if meta.file_type().is_symlink() {
        let to = std::fs::read_link(path)
            .map(|t| format!(" (to {})", t.display()))
            .unwrap_or_default();
        return Ok(Err(super::Error::Refused(format!(
            "{shown} is a symbolic link{to}: refusing to touch it; name the file itself"
        ))));
    }
    if !meta.is_file() {
        return Ok(Err(super::Error::Refused(format!(
            "{shown} is not a regular file: refusing to touch it"
        ))));
    }
    if meta.nlink() > 1 {
        return Ok(Err(super::Error::Refused(format!(
            "{shown} has {} hard links: refusing to touch it (its other names would change too)",
            meta.nlink()
        ))));
    }
    Ok(Ok(meta))
}

/// Whether `file` (opened) is still the file `meta` describes (no swap in between).
pub fn same_file(file: &File, meta: &Metadata) -> bool {
    file.metadata()
        .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino() && m.is_file())
}

/// Refuse a directory that users other than its owner and root can write to (world
/// writable, sticky or not, or writable by a group other than root's): anyone there could
/// plant a link or a name where a rotation or an archive is about to write.
pub fn check_dir(dir: &Path) -> Result<(), super::Error> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let meta = std::fs::metadata(dir).map_err(|e| super::Error::io("read", dir, e))?;
    let mode = meta.mode() & 0o7777;
    let others = mode & 0o002 != 0;
    let group = mode & 0o020 != 0 && meta.gid() != 0;
    if others || group {
        let who = if others {
            "every user".to_string()
        } else {
            format!("group {}", meta.gid())
        };
        return Err(super::Error::Refused(format!(
            "{} (mode {mode:04o}) is writable by {who}: refusing to rotate or archive there; \
             let only its owner and root write to it",
            dir.display()
        )));
    }
    Ok(())
}

pub use crate::fsutil::{parent, rename_noreplace};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "b").unwrap();
        let err = rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "b");
        std::fs::remove_file(&b).unwrap();
        rename_noreplace(&a, &b).unwrap();
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "a");
    }
}
