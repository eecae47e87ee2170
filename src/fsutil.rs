//! The files opsbook writes for itself — locks, its own logs, state files, incident
//! records — opened so that a planted link, FIFO or hard link is refused, created with an
//! explicit mode whatever the umask, and kept in directories no one else can write to.
//! Also the one all-or-nothing write: a temporary file beside the target, fsync, rename,
//! fsync of the directory.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

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
        "cannot resolve {}: more than {MAX_LINKS} symbolic links on its path (a loop?)",
        .0.display()
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

/// Until every caller has an error enum of its own, a `String` error takes these as they are.
impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
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

/// Refuse a directory for state, logs or incidents that someone other than its owner and
/// root could plant files in, or swap for another: the directory must be owned by root or
/// by the user running opsbook, not writable by others, and writable by its group only
/// when that group is root's; and so must every folder on its path from `/` (see
/// [`check_path_private`]).
pub fn check_dir_private(dir: &Path) -> Result<(), Error> {
    let real = check_path_private(dir)?;
    let meta = std::fs::symlink_metadata(&real).map_err(Error::io("cannot inspect", dir))?;
    if !meta.is_dir() {
        return Err(Error::NotDirectory(dir.to_path_buf()));
    }
    let mode = meta.mode() & 0o7777;
    let problem = if !trusted_owner(meta.uid()) {
        Some(format!("it is owned by uid {}", meta.uid()))
    } else if mode & 0o002 != 0 {
        Some(format!("anyone can write to it (mode {mode:04o})"))
    } else if mode & 0o020 != 0 && meta.gid() != 0 {
        Some(format!(
            "group {} can write to it (mode {mode:04o})",
            meta.gid()
        ))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(Error::OpenDirectory {
            dir: dir.to_path_buf(),
            problem,
        }),
    }
}

/// Links followed on one path before giving up, as the kernel's own limit (ELOOP).
const MAX_LINKS: usize = 40;

/// Root or the user running opsbook.
fn trusted_owner(uid: u32) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    uid == 0 || uid == unsafe { libc::geteuid() }
}

/// Walk every component of `path` from `/` (a relative path starts at the working
/// directory) with `lstat`, the way ssh's StrictModes and the kernel's protected_symlinks
/// reason, and return the path with every link resolved. Each folder passed through must
/// be owned by root or the running user and writable by no one else (by its group only
/// when that group is root's), so no one else can rename or replace what is inside it;
/// a sticky folder others can write to (`/tmp`) is accepted when the entry taken inside
/// it is owned by root or the running user, since others cannot rename or replace what
/// they do not own there. A symbolic link is followed only when it is owned by root or
/// the running user (and its folder passes the rule above); its target is then walked
/// the same way. The last component itself is not judged here, only reached.
pub fn check_path_private(path: &Path) -> Result<std::path::PathBuf, Error> {
    use std::collections::VecDeque;
    use std::path::{Component, PathBuf};
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(Error::io("cannot resolve", path))?
            .join(path)
    };
    let owned = |c: Component| c.as_os_str().to_os_string();
    let mut todo: VecDeque<std::ffi::OsString> = absolute.components().map(owned).collect();
    // `current` never holds a link, so `..` is taken lexically.
    let mut current = PathBuf::from("/");
    let mut links = 0;
    while let Some(part) = todo.pop_front() {
        match Path::new(&part).components().next() {
            None | Some(Component::RootDir) | Some(Component::CurDir) => continue,
            Some(Component::ParentDir) => {
                current.pop();
                continue;
            }
            _ => {}
        }
        let next = current.join(&part);
        let meta = std::fs::symlink_metadata(&next).map_err(Error::io("cannot inspect", &next))?;
        check_container(&current, meta.uid(), &next, path)?;
        if meta.file_type().is_symlink() {
            if !trusted_owner(meta.uid()) {
                return Err(Error::ForeignLink {
                    path: path.to_path_buf(),
                    link: next,
                    uid: meta.uid(),
                });
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(Error::TooManyLinks(path.to_path_buf()));
            }
            let target =
                std::fs::read_link(&next).map_err(Error::io("cannot read the link", &next))?;
            if target.is_absolute() {
                current = PathBuf::from("/");
            }
            for c in target.components().rev() {
                todo.push_front(owned(c));
            }
        } else if meta.is_dir() || todo.is_empty() {
            current = next;
        } else {
            return Err(Error::NotDirectoryOnPath {
                path: path.to_path_buf(),
                part: next,
            });
        }
    }
    Ok(current)
}

/// Whether `dir` may hold an entry owned by `entry_uid` that opsbook relies on (`entry`,
/// on the way to `wanted`): see [`check_path_private`].
fn check_container(dir: &Path, entry_uid: u32, entry: &Path, wanted: &Path) -> Result<(), Error> {
    let meta = std::fs::symlink_metadata(dir).map_err(Error::io("cannot inspect", dir))?;
    let mode = meta.mode() & 0o7777;
    let others_write = mode & 0o002 != 0 || (mode & 0o020 != 0 && meta.gid() != 0);
    let sticky_and_ours = mode & 0o1000 != 0 && trusted_owner(entry_uid);
    let mut fix = format!(
        "chown root {0} and chmod go-w {0}, or choose a directory outside it",
        dir.display()
    );
    let problem = if !trusted_owner(meta.uid()) {
        format!(
            "its folder {} is owned by uid {} (mode {mode:04o}), not by root or the user \
             running opsbook, so its owner could swap {} for a link",
            dir.display(),
            meta.uid(),
            entry.display()
        )
    } else if others_write && !sticky_and_ours {
        let who = if mode & 0o002 != 0 {
            "anyone".to_string()
        } else {
            format!("group {}", meta.gid())
        };
        let sticky = if mode & 0o1000 != 0 {
            fix = format!(
                "remove {} and let opsbook create it, or choose a directory outside {}",
                entry.display(),
                dir.display()
            );
            format!(
                " and {} in it is owned by uid {}, not by root or the user running opsbook",
                entry.display(),
                entry_uid
            )
        } else {
            String::new()
        };
        format!(
            "its folder {} (owner uid {}, mode {mode:04o}) can be written to by {who}{sticky}, \
             so {} could be swapped for a link",
            dir.display(),
            meta.uid(),
            entry.display()
        )
    } else {
        return Ok(());
    };
    Err(Error::OpenFolder {
        wanted: wanted.to_path_buf(),
        problem,
        fix,
    })
}

/// Create `dir` and any missing parent with exactly `mode` (not the umask's idea of it),
/// then check it with [`check_dir_private`]. The deepest folder that already exists is
/// checked first (its path, and that an entry of opsbook's own may be made in it), so
/// nothing is created through a folder someone else controls.
pub fn create_dir_private(dir: &Path, mode: u32) -> Result<(), Error> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(path) = at.filter(|p| !p.as_os_str().is_empty()) {
        if std::fs::symlink_metadata(path).is_ok() {
            break;
        }
        missing.push(path);
        at = path.parent();
    }
    if let Some(first) = missing.last() {
        let existing = parent(first);
        let real = check_path_private(existing)?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        check_container(&real, me, first, dir)?;
    }
    for path in missing.into_iter().rev() {
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(mode).create(path) {
            Ok(()) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(Error::io("cannot set the mode of", path))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("cannot create", path)(e)),
        }
    }
    check_dir_private(dir)
}

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

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
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
        }
    }

    /// Never replace: a target already there is [`Error::InTheWay`] and is left alone.
    pub fn keeping() -> Self {
        Publish {
            temp: Temp::Beside,
            replace: false,
        }
    }

    /// A temporary name no other writer uses (`.NAME.PID-N.tmp`), for files that several
    /// runs may write at once.
    pub fn unique(mut self) -> Self {
        self.temp = Temp::Unique;
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
    // The writer may have synced already; a second fsync of a clean file costs nothing.
    File::open(&staged.temp)
        .and_then(|file| file.sync_all())
        .map_err(Error::io("cannot write", target))?;
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
            std::fs::rename(&self.temp, &self.target)
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
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let (src, dst) = (c(from)?, c(to)?);
    // SAFETY: two NUL-terminated paths that live across the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            src.as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let error = std::io::Error::last_os_error();
    if error.raw_os_error() != Some(libc::EINVAL) {
        return Err(error);
    }
    // A file system without RENAME_NOREPLACE: a hard link fails if `to` exists.
    std::fs::hard_link(from, to)?;
    std::fs::remove_file(from)
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

/// The rotated siblings of `file`: `file<sep>N` or `file<sep>DATE`, compressed or not,
/// sorted by name (`.opsbook-tmp` leftovers are not siblings).
pub fn rotated_siblings(file: &Path, separator: &str) -> Vec<PathBuf> {
    let Some(dir) = file.parent() else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let base = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!("{base}{separator}");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".opsbook-tmp") {
                return None;
            }
            let rest = name.strip_prefix(&prefix)?;
            let stem = rest.trim_end_matches(".gz").trim_end_matches(".zst");
            let ok = !stem.is_empty() && stem.chars().all(|c| c.is_ascii_digit() || c == '-');
            ok.then(|| file.with_file_name(&name))
        })
        .collect();
    found.sort();
    found
}

/// `.N` → `.N+1` (compressed or not), oldest first, deleting those past `keep`; each step
/// is told to `act` first and done unless `dry_run`. Used by `logs rotate` and by the tool's
/// own log files, so both rotate the same way.
pub fn shift_numbered(
    file: &Path,
    keep: usize,
    dry_run: bool,
    act: &mut dyn FnMut(String),
) -> Result<(), Error> {
    let mut existing: Vec<(usize, PathBuf)> = rotated_siblings(file, ".")
        .into_iter()
        .filter_map(|p| number_of(file, &p).map(|n| (n, p)))
        .collect();
    existing.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    for (n, path) in existing {
        if n >= keep {
            act(format!("delete {}", path.display()));
            if !dry_run {
                std::fs::remove_file(&path).map_err(Error::io("cannot delete", &path))?;
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
            std::fs::rename(&path, &next).map_err(Error::io("cannot rename", &path))?;
        }
    }
    Ok(())
}

pub fn numbered(file: &Path, n: usize) -> PathBuf {
    with_suffix(file, &format!(".{n}"))
}

/// `app.log.3.gz` → 3.
pub fn number_of(file: &Path, rotated: &Path) -> Option<usize> {
    let base = file.to_string_lossy();
    let name = rotated.to_string_lossy();
    let rest = name.strip_prefix(&*base)?.strip_prefix('.')?;
    rest.split('.').next()?.parse().ok()
}

pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn directories_others_can_write_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b");
        create_dir_private(&state, PRIVATE_DIR).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        for (bits, expected) in [(0o777, "anyone can write"), (0o1777, "anyone can write")] {
            std::fs::set_permissions(&state, std::fs::Permissions::from_mode(bits)).unwrap();
            let err = check_dir_private(&state).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o770)).unwrap();
        // Group-writable is fine for root's group only.
        let gid = std::fs::metadata(&state).unwrap().gid();
        assert_eq!(check_dir_private(&state).is_ok(), gid == 0);
        std::os::unix::fs::chown(&state, None, Some(4242)).unwrap();
        assert!(
            check_dir_private(&state)
                .unwrap_err()
                .to_string()
                .contains("group 4242")
        );
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&state, Some(4242), None).unwrap();
        assert!(
            check_dir_private(&state)
                .unwrap_err()
                .to_string()
                .contains("owned by uid 4242")
        );
    }

    #[test]
    fn every_folder_and_link_on_the_path_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let state = base.join("private/state");
        create_dir_private(&state, PRIVATE_DIR).unwrap();
        // A link owned by root in a private folder is followed, and its target walked.
        let link = base.join("private/link");
        std::os::unix::fs::symlink(&state, &link).unwrap();
        assert_eq!(check_path_private(&link).unwrap(), state);
        check_dir_private(&link).unwrap();
        // `..` after a link goes up from the link's target, as the kernel does.
        let up = base.join("private/link/../state");
        assert_eq!(check_path_private(&up).unwrap(), state);
        // A link owned by someone else is not followed, even in a private folder.
        std::os::unix::fs::lchown(&link, Some(4242), None).unwrap();
        let err = check_dir_private(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(err.contains("owned by uid 4242"), "{err}");
        // A target reached through a folder others can write to is refused.
        let open = base.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::create_dir(open.join("state")).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let to_open = base.join("private/to-open");
        std::os::unix::fs::symlink(open.join("state"), &to_open).unwrap();
        let err = check_dir_private(&to_open).unwrap_err().to_string();
        assert!(
            err.contains(&format!("its folder {}", open.display())),
            "{err}"
        );
        // A folder owned by another user is refused even when only its owner writes to it.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        check_dir_private(&to_open).unwrap();
        std::os::unix::fs::chown(&open, Some(4242), None).unwrap();
        let err = check_dir_private(&to_open).unwrap_err().to_string();
        assert!(err.contains("is owned by uid 4242 (mode 0755)"), "{err}");
        // Nothing is created beneath such a folder.
        assert!(create_dir_private(&open.join("new/deeper"), PRIVATE_DIR).is_err());
        assert!(!open.join("new").exists());
        // A loop of links ends in an error, not a hang.
        let a = base.join("private/a");
        std::os::unix::fs::symlink(base.join("private/b"), &a).unwrap();
        std::os::unix::fs::symlink(&a, base.join("private/b")).unwrap();
        let err = check_dir_private(&a).unwrap_err().to_string();
        assert!(err.contains("more than 40 symbolic links"), "{err}");
    }

    #[test]
    fn a_sticky_folder_is_accepted_only_for_entries_of_root_or_the_running_user() {
        let dir = tempfile::tempdir().unwrap();
        let sticky = dir.path().join("tmp");
        std::fs::create_dir(&sticky).unwrap();
        std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let state = sticky.join("state");
        create_dir_private(&state, PRIVATE_DIR).unwrap();
        check_dir_private(&state).unwrap();
        std::os::unix::fs::chown(&state, Some(4242), None).unwrap();
        let err = check_dir_private(&state).unwrap_err().to_string();
        assert!(err.contains("in it is owned by uid 4242"), "{err}");
        // Without the sticky bit, anyone could rename even root's entry away.
        std::os::unix::fs::chown(&state, Some(0), None).unwrap();
        std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_dir_private(&state).unwrap_err().to_string();
        assert!(err.contains("can be written to by anyone, so"), "{err}");
    }
}
