//! Directories opsbook keeps its own files in: every folder on the way from `/` owned by
//! root or the running user and writable by no one else, so nothing can be swapped for a
//! link under it.

use super::{Error, parent};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

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
pub(super) const MAX_LINKS: usize = 40;

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

#[cfg(test)]
mod tests {
    use super::super::PRIVATE_DIR;
    use super::*;

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
