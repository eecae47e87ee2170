//! Directory handles and the `*at` calls every write of a restore goes through: a name is
//! always one component inside a directory held open, never a path the kernel would
//! resolve again.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Component;
use std::path::Path;

fn name(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a name with a NUL byte"))
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn exists(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EEXIST)
}

/// The directory `path` (a root the user named), its last component not followed.
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    let c = name(path.as_os_str())?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: a valid C string; the descriptor returned is ours alone.
    let fd = cvt(unsafe { libc::open(c.as_ptr(), flags) })?;
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The directory `entry` in `dir`; a symlink there is an error, never followed.
pub fn open_dir(dir: BorrowedFd, entry: &OsStr) -> io::Result<OwnedFd> {
    let c = name(entry)?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: a valid C string and a descriptor we hold.
    let fd = cvt(unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags) })?;
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The directory `rel` beneath `root`, opened one component at a time without
/// following symlinks; missing components are created (as `mkdir -p` would, the
/// umask applying) when `create`.
pub fn beneath(root: BorrowedFd, rel: &Path, create: bool) -> io::Result<OwnedFd> {
    let mut at = root.try_clone_to_owned()?;
    for component in rel.components() {
        let Component::Normal(part) = component else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a clean relative path",
            ));
        };
        let next = match open_dir(at_fd(&at), part) {
            Err(e) if create && e.raw_os_error() == Some(libc::ENOENT) => {
                mkdir(at_fd(&at), part, 0o777)?;
                open_dir(at_fd(&at), part)?
            }
            other => other?,
        };
        at = next;
    }
    Ok(at)
}

fn at_fd(fd: &OwnedFd) -> BorrowedFd<'_> {
    std::os::fd::AsFd::as_fd(fd)
}

/// `mkdirat`; an existing directory is fine (a symlink or file in the way is not).
pub fn mkdir(dir: BorrowedFd, entry: &OsStr, mode: u32) -> io::Result<()> {
    let c = name(entry)?;
    // SAFETY: a valid C string and a descriptor we hold.
    match cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode) }) {
        Err(e) if exists(&e) => match stat(dir, entry) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => Ok(()),
            _ => Err(e),
        },
        other => other.map(drop),
    }
}

/// A new file `entry` in `dir` (an earlier one of that name is replaced, as GNU tar
/// does; a symlink there is removed, never written through).
pub fn create(dir: BorrowedFd, entry: &OsStr) -> io::Result<std::fs::File> {
    let c = name(entry)?;
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: a valid C string and a descriptor we hold.
    let open = || cvt(unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags, 0o600) });
    let fd = match open() {
        Err(e) if exists(&e) => {
            unlink(dir, entry)?;
            open()?
        }
        other => other?,
    };
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// The regular file `entry` in `dir`, for reading; a symlink there is not followed.
pub fn open_file(dir: BorrowedFd, entry: &OsStr) -> io::Result<std::fs::File> {
    let c = name(entry)?;
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: a valid C string and a descriptor we hold.
    let fd = cvt(unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags) })?;
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// What the symlink `entry` in `dir` holds.
pub fn readlink(dir: BorrowedFd, entry: &OsStr) -> io::Result<std::ffi::OsString> {
    use std::os::unix::ffi::OsStringExt;
    let c = name(entry)?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: a valid C string, a descriptor we hold and a buffer of that length.
        let n = unsafe {
            libc::readlinkat(
                dir.as_raw_fd(),
                c.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        if n < buf.len() {
            buf.truncate(n);
            return Ok(std::ffi::OsString::from_vec(buf));
        }
        buf.resize(buf.len() * 2, 0);
    }
}

/// Remove the non-directory `entry` of `dir`.
pub fn unlink(dir: BorrowedFd, entry: &OsStr) -> io::Result<()> {
    let c = name(entry)?;
    // SAFETY: a valid C string and a descriptor we hold.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) }).map(drop)
}

/// A symlink `entry` in `dir` holding `target` as it is (replacing an earlier entry).
pub fn symlink(target: &OsStr, dir: BorrowedFd, entry: &OsStr) -> io::Result<()> {
    let t = name(target)?;
    let c = name(entry)?;
    // SAFETY: valid C strings and a descriptor we hold.
    let make = || cvt(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), c.as_ptr()) });
    match make() {
        Err(e) if exists(&e) => {
            unlink(dir, entry)?;
            make().map(drop)
        }
        other => other.map(drop),
    }
}

/// A hard link `to_dir/to` of `from_dir/from` (a symlink there is linked, not followed).
pub fn link(from_dir: BorrowedFd, from: &OsStr, to_dir: BorrowedFd, to: &OsStr) -> io::Result<()> {
    let f = name(from)?;
    let t = name(to)?;
    // SAFETY: valid C strings and descriptors we hold; flags 0 follows no symlink.
    let make = || {
        cvt(unsafe {
            libc::linkat(
                from_dir.as_raw_fd(),
                f.as_ptr(),
                to_dir.as_raw_fd(),
                t.as_ptr(),
                0,
            )
        })
    };
    match make() {
        Err(e) if exists(&e) => {
            unlink(to_dir, to)?;
            make().map(drop)
        }
        other => other.map(drop),
    }
}

/// `renameat2` with `flags` (`RENAME_EXCHANGE`, `RENAME_NOREPLACE` or 0).
pub fn rename(
    from_dir: BorrowedFd,
    from: &OsStr,
    to_dir: BorrowedFd,
    to: &OsStr,
    flags: libc::c_uint,
) -> io::Result<()> {
    let f = name(from)?;
    let t = name(to)?;
    // SAFETY: valid C strings and descriptors we hold.
    cvt(unsafe {
        libc::renameat2(
            from_dir.as_raw_fd(),
            f.as_ptr(),
            to_dir.as_raw_fd(),
            t.as_ptr(),
            flags,
        )
    })
    .map(drop)
}

/// `lstat` of `entry` in `dir`.
pub fn stat(dir: BorrowedFd, entry: &OsStr) -> io::Result<libc::stat> {
    let c = name(entry)?;
    // SAFETY: an all-zero `stat` is valid; the kernel fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string, a descriptor we hold and a `stat` to fill.
    cvt(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(st)
}

/// `fstat` of an open descriptor.
pub fn fstat(fd: BorrowedFd) -> io::Result<libc::stat> {
    // SAFETY: an all-zero `stat` is valid; the kernel fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a descriptor we hold and a `stat` to fill.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// Whether the directory `entry` of `dir` is the root of a mount.
pub fn is_mount_root(dir: BorrowedFd, entry: &OsStr) -> io::Result<bool> {
    let c = name(entry)?;
    // SAFETY: an all-zero `statx` is valid; the kernel fills it.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string, a descriptor we hold and a `statx` to fill.
    cvt(unsafe {
        libc::statx(
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_BASIC_STATS,
            &mut stx,
        )
    })?;
    let bit = libc::STATX_ATTR_MOUNT_ROOT as u64;
    Ok(stx.stx_attributes_mask & bit != 0 && stx.stx_attributes & bit != 0)
}

/// Lchown `entry` in `dir` (a symlink itself, never what it points to).
pub fn lchown(dir: BorrowedFd, entry: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
    let c = name(entry)?;
    // SAFETY: a valid C string and a descriptor we hold.
    cvt(unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            c.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// Everything a directory holds but `.` and `..`.
pub fn names(dir: BorrowedFd) -> io::Result<Vec<std::ffi::OsString>> {
    // The descriptor's own directory, whatever path it was opened by.
    let path = format!("/proc/self/fd/{}", dir.as_raw_fd());
    std::fs::read_dir(path)?
        .map(|e| e.map(|e| e.file_name()))
        .collect()
}

/// `syncfs` on the filesystem holding `fd`.
pub fn syncfs(fd: BorrowedFd) -> io::Result<()> {
    // SAFETY: syncfs on a descriptor we hold; no memory is shared with the kernel.
    cvt(unsafe { libc::syncfs(fd.as_raw_fd()) }).map(drop)
}
