//! The files opsbook writes for itself — locks, its own logs, state files, incident
//! records — opened so that a planted link, FIFO or hard link is refused, created with an
//! explicit mode whatever the umask, and kept in directories no one else can write to.
//! Also the one all-or-nothing write: a temporary file beside the target, fsync, rename,
//! fsync of the directory.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

mod names;
mod numbered;
mod private;
mod publish;

pub use names::{escape_name, percent_decode};
pub use numbered::{number_of, numbered, rotated_siblings, shift_numbered, with_suffix};
pub use private::{check_dir_private, check_path_private, create_dir_private};
pub use publish::{
    Publish, PublishError, Staged, create_temp, publish, read_state, rename_noreplace, stage,
    stage_state, stage_with, write_atomically, write_atomically_mode, write_state,
};

/// Why opsbook refuses or fails to use one of its own files or directories. What it says
/// names the path and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O step failed: `cannot open PATH: …`, `cannot write PATH: …` and so on.
    #[error("{what} {}: {error}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "refusing to open {}: it is a symbolic link, and opsbook never opens its own files \
         through a link (remove the link)",
        .0.display()
    )]
    Link(PathBuf),
    #[error(
        "refusing to replace {}: it is a symbolic link, and opsbook never writes its own \
         files through a link (remove the link)",
        .0.display()
    )]
    ReplaceLink(PathBuf),
    #[error("refusing to open {}: it is not a regular file (remove it)", .0.display())]
    NotRegular(PathBuf),
    #[error(
        "refusing to open {}: it has {links} hard links, so writing it would change another \
         file too (remove it)",
        .path.display()
    )]
    HardLinks { path: PathBuf, links: u64 },
    #[error("cannot open {}: it keeps appearing and disappearing", .0.display())]
    Flapping(PathBuf),
    #[error("{} is not a directory", .0.display())]
    NotDirectory(PathBuf),
    #[error("cannot use {}: {} is not a directory", .path.display(), .part.display())]
    NotDirectoryOnPath { path: PathBuf, part: PathBuf },
    /// The directory itself may be written by others.
    #[error(
        "refusing to use {}: {problem}; opsbook keeps its state, logs and incidents only \
         in directories that no one but their owner and root can write to \
         (chmod go-w {0}, or choose another directory)",
        .dir.display()
    )]
    OpenDirectory { dir: PathBuf, problem: String },
    /// A folder on the way may be written by others.
    #[error(
        "refusing to use {}: {problem}; every folder on the path to opsbook's state, logs and \
         incidents must be owned by root or the user running opsbook and writable by no one \
         else ({fix})",
        .wanted.display()
    )]
    OpenFolder {
        wanted: PathBuf,
        problem: String,
        fix: String,
    },
    #[error(
        "refusing to use {}: its path goes through the symbolic link {}, owned by \
         uid {uid}, not by root or the user running opsbook, so its owner decides \
         where opsbook writes (replace the link with the directory it should \
         point to, owned by root)",
        .path.display(),
        .link.display()
    )]
    ForeignLink {
        path: PathBuf,
        link: PathBuf,
        uid: u32,
    },
    #[error(
        "cannot resolve {}: more than {} symbolic links on its path (a loop?)",
        .0.display(),
        private::MAX_LINKS
    )]
    TooManyLinks(PathBuf),
    /// [`publish`] without replacing: something is already at the target.
    #[error("{} is in the way", .target.display())]
    InTheWay { temp: PathBuf, target: PathBuf },
    /// [`publish`]: the finished temporary could not be renamed into place.
    #[error("cannot write {}: {error}", .target.display())]
    Rename {
        temp: PathBuf,
        target: PathBuf,
        error: std::io::Error,
    },
}

impl Error {
    fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.to_path_buf();
        move |error| Error::Io { what, path, error }
    }
}

/// Incident records, timelines, evidence bundles, state files and locks: the owner only.
pub const PRIVATE_FILE: u32 = 0o600;
/// The tool's own logs: the owner writes, the file's group (an admin group) may read.
pub const LOG_FILE: u32 = 0o640;
/// Directories opsbook creates for its state and incidents.
pub const PRIVATE_DIR: u32 = 0o700;
/// The directory of the tool's own logs.
pub const LOG_DIR: u32 = 0o750;

/// Open `path` for appending, never through a symbolic link. A new file gets exactly
/// `mode`; an existing one keeps its mode narrowed to `mode` (an operator may have chosen
/// less, never more). Refused: a link, anything but a regular file, a file with other
/// hard links.
pub fn open_nofollow_append(path: &Path, mode: u32) -> Result<File, Error> {
    open_nofollow(path, mode, Access::Append)
}

/// Open (or create) `path` for reading and writing without truncating it, as a lock file
/// is; the same refusals as [`open_nofollow_append`].
pub fn open_nofollow_rw(path: &Path, mode: u32) -> Result<File, Error> {
    open_nofollow(path, mode, Access::ReadWrite)
}

/// The bytes of `path`, `None` when it does not exist; a link or anything but a regular
/// file is refused, as for writing.
pub fn read_nofollow(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(open_error(path, e)),
    };
    check_opened(path, &file)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(Error::io("cannot read", path))?;
    Ok(Some(bytes))
}

#[derive(Clone, Copy)]
enum Access {
    Append,
    ReadWrite,
}

fn open_nofollow(path: &Path, mode: u32, access: Access) -> Result<File, Error> {
    let options = |create: bool| {
        let mut options = OpenOptions::new();
        match access {
            Access::Append => options.append(true),
            Access::ReadWrite => options.read(true).write(true),
        };
        if create {
            // O_EXCL: a dangling link is not followed to create its target.
            options.create_new(true).mode(mode);
        }
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
        options
    };
    // Create it, or open the one that exists; a file removed in between is created again.
    for _ in 0..3 {
        match options(true).open(path) {
            Ok(file) => {
                check_opened(path, &file)?;
                // Exactly `mode`, whatever the umask took away.
                file.set_permissions(std::fs::Permissions::from_mode(mode))
                    .map_err(Error::io("cannot set the mode of", path))?;
                return Ok(file);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(open_error(path, e)),
        }
        match options(false).open(path) {
            Ok(file) => {
                let meta = check_opened(path, &file)?;
                let perm = meta.mode() & 0o7777;
                if perm & !mode != 0 {
                    file.set_permissions(std::fs::Permissions::from_mode(perm & mode))
                        .map_err(Error::io("cannot set the mode of", path))?;
                }
                return Ok(file);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(open_error(path, e)),
        }
    }
    Err(Error::Flapping(path.to_path_buf()))
}

fn open_error(path: &Path, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ELOOP) => Error::Link(path.to_path_buf()),
        // A FIFO without a reader, or a socket.
        Some(libc::ENXIO) | Some(libc::EOPNOTSUPP) => Error::NotRegular(path.to_path_buf()),
        _ => Error::io("cannot open", path)(e),
    }
}

/// What was opened is a regular file with one name; back to blocking mode.
fn check_opened(path: &Path, file: &File) -> Result<std::fs::Metadata, Error> {
    let meta = file.metadata().map_err(Error::io("cannot inspect", path))?;
    if !meta.file_type().is_file() {
        return Err(Error::NotRegular(path.to_path_buf()));
    }
    if meta.nlink() > 1 {
        return Err(Error::HardLinks {
            path: path.to_path_buf(),
            links: meta.nlink(),
        });
    }
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns; no memory is passed.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    Ok(meta)
}

/// Append `line` (one or more complete lines) with one `write`: it lands whole or not at
/// all. A short write (a full disk) is cut off again under the file's lock, so no reader
/// ever sees a torn line; the lock also keeps other processes' lines from landing after a
/// half-written one.
pub fn append_whole(file: &mut File, line: &[u8]) -> std::io::Result<()> {
    use std::io::Seek;
    file.lock()?;
    let written = (|| {
        let n = loop {
            match file.write(line) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        if n == line.len() {
            return Ok(());
        }
        // O_APPEND left the offset at the end of what landed: cut that part off again.
        let end = file.stream_position()?;
        file.set_len(end.saturating_sub(n as u64))?;
        Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            format!(
                "only {n} of {} bytes could be written (removed again)",
                line.len()
            ),
        ))
    })();
    let _ = file.unlock();
    written
}

/// Make a rename or a creation in `path`'s directory durable.
pub fn sync_dir(path: &Path) {
    if let Ok(dir) = File::open(parent(path)) {
        let _ = dir.sync_all();
    }
}

/// The directory `path` is in (`.` for a bare name).
pub fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_fifos_and_hard_links_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "precious\n").unwrap();
        let link = dir.path().join("link.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = open_nofollow_append(&link, LOG_FILE)
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let err = open_nofollow_rw(&link, PRIVATE_FILE)
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let err = read_nofollow(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let dangling = dir.path().join("dangling.log");
        std::os::unix::fs::symlink(dir.path().join("created"), &dangling).unwrap();
        assert!(open_nofollow_append(&dangling, LOG_FILE).is_err());
        assert!(!dir.path().join("created").exists());
        let hard = dir.path().join("hard.log");
        std::fs::hard_link(&target, &hard).unwrap();
        let err = open_nofollow_append(&hard, LOG_FILE)
            .unwrap_err()
            .to_string();
        assert!(err.contains("hard links"), "{err}");
        let fifo = dir.path().join("fifo.log");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = open_nofollow_append(&fifo, LOG_FILE)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular file"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    }

    #[test]
    fn modes_are_exact_and_existing_ones_only_narrowed() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.log");
        drop(open_nofollow_append(&new, LOG_FILE).unwrap());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&new), 0o640);
        let wide = dir.path().join("wide.log");
        std::fs::write(&wide, "").unwrap();
        std::fs::set_permissions(&wide, std::fs::Permissions::from_mode(0o666)).unwrap();
        drop(open_nofollow_append(&wide, LOG_FILE).unwrap());
        assert_eq!(mode(&wide), 0o640);
        let narrow = dir.path().join("narrow.log");
        std::fs::write(&narrow, "").unwrap();
        std::fs::set_permissions(&narrow, std::fs::Permissions::from_mode(0o600)).unwrap();
        drop(open_nofollow_append(&narrow, LOG_FILE).unwrap());
        assert_eq!(mode(&narrow), 0o600);
        let metrics = dir.path().join("metrics.prom");
        write_atomically_mode(&metrics, b"x 1\n", 0o644).unwrap();
        assert_eq!(mode(&metrics), 0o644);
    }
}
