//! Walking a set's paths for a backup: one directory descriptor per level, entries opened
//! beneath it without following links, so a tree changed while it is walked is never
//! walked through a swapped-in symlink.

use super::*;

/// Where a source path is stored: its real location relative to `/` (a relative path is
/// taken from the working directory; `.` is the directory's real path). The last component
/// is kept as named (a symlink given as a path is not resolved); its parents are resolved.
pub fn stored_name(root: &Path) -> Result<PathBuf, Error> {
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
pub(super) enum Found<'a> {
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
pub(super) enum Kind {
    File,
    Dir,
    Link,
    Other,
}

pub(super) fn kind_of(mode: libc::mode_t) -> Kind {
    match mode & libc::S_IFMT {
        libc::S_IFREG => Kind::File,
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFLNK => Kind::Link,
        _ => Kind::Other,
    }
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`.
pub(super) fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> std::io::Result<libc::stat> {
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
pub(super) fn open_at(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: libc::c_int,
) -> std::io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated; the returned descriptor is ours alone.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Open the directory `name` in `dir`, never through a link.
pub(super) fn open_dir_at(dir: BorrowedFd<'_>, name: &CStr) -> std::io::Result<OwnedFd> {
    open_at(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
    )
}

/// The target of the symlink `name` in `dir`, read once.
pub(super) fn read_link_at(dir: BorrowedFd<'_>, name: &CStr) -> std::io::Result<PathBuf> {
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
pub(super) fn list(dir: BorrowedFd<'_>) -> std::io::Result<Vec<(CString, Option<Kind>)>> {
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
pub(super) struct Place {
    pub(super) path: PathBuf,
    pub(super) member: PathBuf,
    pub(super) relative: PathBuf,
}

/// Visit everything `set` backs up, in order, excludes left out (see [`Found`]).
///
/// No link is ever followed: each set path is opened once (its parents resolved, its own
/// name not), and everything under it is opened from its directory's descriptor with
/// `O_NOFOLLOW`, so a directory replaced by a symlink after its parent was listed is left
/// out with a warning, never walked through. One descriptor is held per level.
pub(super) fn walk(
    set: &BackupSet,
    excluded: &globset::GlobSet,
    skip: Option<(u64, u64)>,
    mut visit: impl FnMut(Found<'_>) -> Result<(), Error>,
) -> Result<(), Error> {
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
            return Err(Error::Failed(format!(
                "{} is the backup destination itself: nothing of it would be backed up; put \
                 the destination outside it (or in a directory of it)",
                root.shown()
            )));
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
pub(super) fn walk_dir(
    dir: BorrowedFd<'_>,
    place: &mut Place,
    excluded: &globset::GlobSet,
    skip: Option<(u64, u64)>,
    visit: &mut impl FnMut(Found<'_>) -> Result<(), Error>,
) -> Result<(), Error> {
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

pub(super) fn walk_entry(
    dir: BorrowedFd<'_>,
    name: &CStr,
    kind: Option<Kind>,
    place: &mut Place,
    excluded: &globset::GlobSet,
    skip: Option<(u64, u64)>,
    visit: &mut impl FnMut(Found<'_>) -> Result<(), Error>,
) -> Result<(), Error> {
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
            Err(e) => {
                return Err(Error::Failed(format!(
                    "cannot read {}: {e}",
                    place.path.display()
                )));
            }
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
                Err(e) => {
                    return Err(Error::Failed(format!(
                        "cannot read {}: {e}",
                        place.path.display()
                    )));
                }
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
