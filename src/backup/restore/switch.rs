//! One idea, one file: putting a staged restore in place: the whole target exchanged with
//! the new tree in one `renameat2(RENAME_EXCHANGE)`, or, where the target cannot be
//! switched whole (`/`, a mount point, the working directory), one root of the restore at a
//! time.

use super::*;

/// Put the staged tree in place: a new target is the tree renamed; an existing one gets
/// the entries of its own the archive does not hold hard-linked into the tree, which is
/// then exchanged with it in one `renameat2(RENAME_EXCHANGE)` and the old tree removed
/// once the exchange is on disk. A target that cannot be renamed (`/`, a mount point, or
/// holding one), or that the caller works in, is switched one root of the restore at a
/// time instead ([`switch_roots`]).
pub(super) fn switch(target: &Target, staging: &Staging, planned: &[Planned]) -> Result<(), Error> {
    let tree_name = OsStr::new("tree");
    let shown = target.path.display();
    let failed = |e: std::io::Error| format!("cannot restore into {shown}: {e}");
    if target.in_place || target.in_use {
        return switch_roots(target, staging, planned);
    }
    let parent = at::open_root(&target.parent).map_err(failed)?;
    let tree = std::fs::File::from(staging.tree.try_clone().map_err(failed)?);
    if !target.exists {
        // SAFETY: umask(2) only swaps the process's mask; it is put back at once.
        let mask = unsafe {
            let mask = libc::umask(0o022);
            libc::umask(mask);
            mask
        };
        settle(&tree, None, 0o777 & !mask).map_err(failed)?;
        at::rename(
            staging.dir.as_fd(),
            tree_name,
            parent.as_fd(),
            &target.name,
            libc::RENAME_NOREPLACE,
        )
        .map_err(failed)?;
        seam("restore-switched");
        std::fs::File::from(parent).sync_all().map_err(failed)?;
        return Ok(());
    }
    // A symlink swapped in for the target fails here; the target's own handle from now on.
    let old = at::open_dir(parent.as_fd(), &target.name).map_err(failed)?;
    let root = at::fstat(old.as_fd()).map_err(failed)?;
    match fill(
        old.as_fd(),
        staging.tree.as_fd(),
        Path::new(""),
        root.st_dev,
    ) {
        Ok(()) => {}
        Err(Fill::Mount) => return switch_roots(target, staging, planned),
        Err(Fill::Failed(e)) => return Err(e),
    }
    let all: Vec<&Planned> = planned.iter().filter(|p| !p.dump).collect();
    retime(staging.tree.as_fd(), Path::new(""), &all)?;
    copy_meta(&tree, &root).map_err(failed)?;
    at::syncfs(tree.as_fd()).map_err(failed)?;
    seam("restore-filled");
    let exchanged = at::rename(
        staging.dir.as_fd(),
        tree_name,
        parent.as_fd(),
        &target.name,
        libc::RENAME_EXCHANGE,
    );
    match exchanged {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EBUSY | libc::EXDEV | libc::EINVAL)
            ) =>
        {
            return switch_roots(target, staging, planned);
        }
        Err(e) => return Err(Error::Failed(failed(e))),
    }
    seam("restore-switched");
    std::fs::File::from(parent).sync_all().map_err(failed)?;
    let _ = std::fs::remove_dir_all(staging.path.join(tree_name));
    Ok(())
}

/// A root of the restore made ready beside its place: its staged tree renamed to a hidden
/// name in the same parent directory (and filled with the old tree's other entries), so
/// one rename switches it.
struct Ready {
    /// Copied across from the staging directory on another filesystem, not renamed.
    copied: bool,
    /// The root's path under the target (its parent is opened anew beneath the target for
    /// each step, so that a restore of many roots holds no descriptor per root).
    rel: PathBuf,
    name: OsString,
    hidden: OsString,
    /// Nothing was there: the tree is renamed into place rather than exchanged.
    fresh: bool,
}

/// The hidden name beside `name` a root is staged under (`.NAME.opsbook-restore-PID`).
fn hidden_name(name: &OsStr, pid: &[u8]) -> OsString {
    let mut hidden = b".".to_vec();
    hidden.extend_from_slice(name.as_bytes());
    hidden.extend_from_slice(b".opsbook-restore-");
    hidden.extend_from_slice(pid);
    OsString::from_vec(hidden)
}

/// Remove what restores killed before their end left beside `name` in `dir` (a staged
/// tree not yet switched, or an old tree not yet removed), as a path through the handle.
fn clear_leftovers(dir: BorrowedFd, name: &OsStr) {
    let prefix = hidden_name(name, b"");
    let Ok(names) = at::names(dir) else {
        return;
    };
    for leftover in names {
        if let Some(pid) = leftover.as_bytes().strip_prefix(prefix.as_bytes())
            && !pid.is_empty()
            && pid.iter().all(u8::is_ascii_digit)
            && !Path::new("/proc").join(OsStr::from_bytes(pid)).exists()
        {
            let _ = std::fs::remove_dir_all(through(dir, &leftover));
        }
    }
}

/// `name` in the directory held open as `dir`, as a path that does not depend on where
/// that directory is now (nothing on the way to it can be swapped).
fn through(dir: BorrowedFd, name: &OsStr) -> PathBuf {
    use std::os::fd::AsRawFd;
    Path::new(&format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name)
}

/// Stage the root `rel` beside its place for a switch in one rename (renamed there from
/// the staging directory, or copied where its parent is on another filesystem); `None`
/// when it cannot be switched whole (a mount point at or beneath it), to be restored entry
/// by entry. `dirs`: the root's directories, whose mtimes the fill moves.
fn prepare(
    top: BorrowedFd,
    staging: &Staging,
    rel: &Path,
    dirs: &[&Planned],
) -> Result<Option<Ready>, Error> {
    let failed = |e: std::io::Error| format!("cannot restore {}: {e}", rel.display());
    let Some(name) = rel.file_name() else {
        return Ok(None);
    };
    let parent_rel = parent_of(rel);
    let parent = at::beneath(top, parent_rel, true).map_err(failed)?;
    let staged_in = at::beneath(staging.tree.as_fd(), parent_rel, false).map_err(failed)?;
    clear_leftovers(parent.as_fd(), name);
    let old = match at::open_dir(parent.as_fd(), name) {
        Ok(old) => Some(old),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
        // A symlink or a file swapped in since the check: never followed, never replaced.
        Err(e) => return Err(Error::Failed(failed(e))),
    };
    let old_stat = match &old {
        Some(old) => {
            let st = at::fstat(old.as_fd()).map_err(failed)?;
            let up = at::fstat(parent.as_fd()).map_err(failed)?;
            if st.st_dev != up.st_dev || at::is_mount_root(parent.as_fd(), name).map_err(failed)? {
                return Ok(None);
            }
            Some(st)
        }
        None => None,
    };
    let hidden = hidden_name(name, std::process::id().to_string().as_bytes());
    let moved = at::rename(
        staged_in.as_fd(),
        name,
        parent.as_fd(),
        &hidden,
        libc::RENAME_NOREPLACE,
    );
    // A parent on another filesystem than the staging directory (`/srv` a mount of its
    // own for `srv/app`): the staged tree is copied beside its place instead.
    let copied = match moved {
        // A name too long to stage under a longer one: entry by entry.
        Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let mut seen = HashMap::new();
            let made = copy_tree(staged_in.as_fd(), name, parent.as_fd(), &hidden, &mut seen);
            if let Err(e) = made {
                let _ = std::fs::remove_dir_all(through(parent.as_fd(), &hidden));
                return Err(Error::Failed(failed(e)));
            }
            true
        }
        other => {
            other.map_err(failed)?;
            false
        }
    };
    let ready = Ready {
        copied,
        rel: rel.to_path_buf(),
        name: name.to_os_string(),
        hidden,
        fresh: old.is_none(),
    };
    let filled = match (old, old_stat) {
        (Some(old), Some(st)) => at::open_dir(parent.as_fd(), &ready.hidden)
            .map_err(|e| Fill::Failed(Error::Failed(failed(e))))
            .and_then(|new| {
                fill(old.as_fd(), new.as_fd(), rel, st.st_dev)?;
                retime(new.as_fd(), rel, dirs).map_err(Fill::Failed)
            }),
        _ => Ok(()),
    };
    // The copy (and what is linked into it) on disk with the rest of the staging.
    let flushed = filled.and_then(|()| match ready.copied {
        true => at::syncfs(parent.as_fd()).map_err(|e| Fill::Failed(Error::Failed(failed(e)))),
        false => Ok(()),
    });
    match flushed {
        Ok(()) => Ok(Some(ready)),
        Err(Fill::Mount) => {
            put_back(top, staging, &ready).map_err(failed)?;
            Ok(None)
        }
        Err(Fill::Failed(e)) => {
            let _ = std::fs::remove_dir_all(through(parent.as_fd(), &ready.hidden));
            Err(e)
        }
    }
}

/// The directory holding the root `ready`, opened beneath the target `top` one component
/// at a time without following symlinks.
fn parent_of_root(top: BorrowedFd, ready: &Ready) -> std::io::Result<OwnedFd> {
    at::beneath(top, parent_of(&ready.rel), false)
}

/// Copy the staged `name` of `from` (a directory tree, a file or a symlink) to `to` in
/// `into` on another filesystem, owners, modes and mtimes kept; files linked together in
/// the tree (`seen`: by device and inode) stay linked together.
fn copy_tree(
    from: BorrowedFd,
    name: &OsStr,
    into: BorrowedFd,
    to: &OsStr,
    seen: &mut HashMap<(u64, u64), (OwnedFd, OsString)>,
) -> std::io::Result<()> {
    let st = at::stat(from, name)?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            at::mkdir(into, to, 0o700)?;
            let source = at::open_dir(from, name)?;
            let dest = at::open_dir(into, to)?;
            for entry in at::names(source.as_fd())? {
                copy_tree(source.as_fd(), &entry, dest.as_fd(), &entry, seen)?;
            }
            copy_meta(&std::fs::File::from(dest), &st)
        }
        libc::S_IFREG => {
            let key = (st.st_dev, st.st_ino);
            if let Some((dir, first)) = seen.get(&key) {
                return at::link(dir.as_fd(), first, into, to);
            }
            let mut source = at::open_file(from, name)?;
            let mut out = at::create(into, to)?;
            std::io::copy(&mut source, &mut out)?;
            copy_meta(&out, &st)?;
            if st.st_nlink > 1 {
                seen.insert(key, (into.try_clone_to_owned()?, to.to_os_string()));
            }
            Ok(())
        }
        libc::S_IFLNK => {
            let target = at::readlink(from, name)?;
            at::symlink(&target, into, to)?;
            let _ = at::lchown(into, to, st.st_uid, st.st_gid);
            Ok(())
        }
        _ => Err(std::io::Error::from_raw_os_error(libc::EXDEV)),
    }
}

/// Return a root's staged tree to the staging directory (for the entry-by-entry path); a
/// copy is removed, the staging directory still holding the tree.
fn put_back(top: BorrowedFd, staging: &Staging, ready: &Ready) -> std::io::Result<()> {
    let parent = parent_of_root(top, ready)?;
    if ready.copied {
        return std::fs::remove_dir_all(through(parent.as_fd(), &ready.hidden));
    }
    let staged_in = at::beneath(staging.tree.as_fd(), parent_of(&ready.rel), false)?;
    at::rename(
        parent.as_fd(),
        &ready.hidden,
        staged_in.as_fd(),
        &ready.name,
        libc::RENAME_NOREPLACE,
    )
}

/// Remove the hidden tree of `ready` (the staged one, or the old one once switched out).
fn remove_hidden(top: BorrowedFd, ready: &Ready) {
    if let Ok(parent) = parent_of_root(top, ready) {
        let _ = std::fs::remove_dir_all(through(parent.as_fd(), &ready.hidden));
    }
}

/// Switch a target that cannot be replaced whole one root of the restore at a time. The
/// roots are its topmost entries (`etc/app`, `srv/app` for `--to /`): each directory is
/// staged beside its place, filled with the old tree's entries the archive does not hold,
/// and exchanged with one `renameat2(RENAME_EXCHANGE)` (renamed in when new), its parent
/// flushed, then the old tree removed; each file or symlink is one rename. A root with a
/// mount point at or beneath it, or holding the caller's working directory, is restored
/// entry by entry. A kill leaves each root wholly old or wholly new.
fn switch_roots(target: &Target, staging: &Staging, planned: &[Planned]) -> Result<(), Error> {
    let shown = target.path.display();
    let failed = |e: std::io::Error| format!("cannot restore into {shown}: {e}");
    let paths: HashSet<&Path> = planned
        .iter()
        .filter(|p| !p.dump)
        .map(|p| p.path.as_path())
        .collect();
    let root_of = |p: &Path| -> PathBuf {
        p.ancestors()
            .filter(|a| paths.contains(a))
            .last()
            .unwrap_or(p)
            .to_path_buf()
    };
    // Each root's directories, in archive order.
    let mut dirs_of: HashMap<PathBuf, Vec<&Planned>> = HashMap::new();
    for p in planned.iter().filter(|p| !p.dump) {
        if let Kind::Dir { .. } = p.kind {
            dirs_of.entry(root_of(&p.path)).or_default().push(p);
        }
    }
    let cwd = std::env::current_dir().and_then(std::fs::canonicalize).ok();
    let top = at::open_root(&target.path).map_err(failed)?;
    let mut by_entry: HashSet<PathBuf> = HashSet::new();
    let mut ready: Vec<Ready> = Vec::new();
    let prepared = (|| {
        for p in planned.iter().filter(|p| !p.dump) {
            if root_of(&p.path) != p.path {
                continue;
            }
            let holds_cwd = cwd
                .as_ref()
                .is_some_and(|c| c.starts_with(target.path.join(&p.path)));
            if !matches!(p.kind, Kind::Dir { .. }) || holds_cwd {
                by_entry.insert(p.path.clone());
                continue;
            }
            let dirs = dirs_of.get(p.path.as_path()).map_or(&[][..], Vec::as_slice);
            match prepare(top.as_fd(), staging, &p.path, dirs)? {
                Some(r) => ready.push(r),
                None => {
                    by_entry.insert(p.path.clone());
                }
            }
        }
        Ok::<(), Error>(())
    })();
    let undo = |ready: &[Ready]| {
        for r in ready {
            remove_hidden(top.as_fd(), r);
        }
    };
    if let Err(e) = prepared {
        undo(&ready);
        return Err(e);
    }
    if !ready.is_empty() {
        // The fills (links, directories) on disk before any root is switched.
        if let Err(e) = at::syncfs(staging.tree.as_fd()) {
            undo(&ready);
            return Err(Error::Failed(failed(e)));
        }
        seam("restore-filled");
    }
    let mut switched = Vec::new();
    for r in ready {
        let flags = if r.fresh {
            libc::RENAME_NOREPLACE
        } else {
            libc::RENAME_EXCHANGE
        };
        let parent = parent_of_root(top.as_fd(), &r).map_err(failed)?;
        match at::rename(parent.as_fd(), &r.hidden, parent.as_fd(), &r.name, flags) {
            Ok(()) => {}
            // This filesystem cannot exchange: entry by entry after all.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && !r.fresh => {
                put_back(top.as_fd(), staging, &r).map_err(failed)?;
                by_entry.insert(r.rel.clone());
                continue;
            }
            Err(e) => return Err(Error::Failed(failed(e))),
        }
        std::fs::File::from(parent).sync_all().map_err(failed)?;
        switched.push(r);
    }
    if !switched.is_empty() {
        seam("restore-switched");
    }
    let rest: Vec<&Planned> = planned
        .iter()
        .filter(|p| !p.dump && by_entry.contains(&root_of(&p.path)))
        .collect();
    let moved = if rest.is_empty() {
        Ok(())
    } else {
        move_entries(target, staging, &rest)
    };
    // The old trees, switched out and on disk as such.
    for r in switched.iter().filter(|r| !r.fresh) {
        remove_hidden(top.as_fd(), r);
    }
    moved
}

/// Why the target's own entries could not all be kept in the new tree.
enum Fill {
    /// A mount point inside the target: the tree cannot be switched whole.
    Mount,
    Failed(Error),
}

/// Hard-link every entry of the old tree `old` that the new tree `new` does not have
/// into it (directories are made anew with the old ones' owners, modes and times).
fn fill(old: BorrowedFd, new: BorrowedFd, rel: &Path, dev: u64) -> Result<(), Fill> {
    let failed = |e: std::io::Error, at: &Path| {
        Fill::Failed(Error::Failed(format!(
            "cannot keep {} in the restored tree: {e}",
            at.display()
        )))
    };
    let is_dir = |st: &libc::stat| st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let gone = |e: &std::io::Error| e.raw_os_error() == Some(libc::ENOENT);
    for name in at::names(old).map_err(|e| failed(e, rel))? {
        let path = rel.join(&name);
        let o = match at::stat(old, &name) {
            Ok(o) => o,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(failed(e, &path)),
        };
        if is_dir(&o)
            && (o.st_dev != dev || at::is_mount_root(old, &name).map_err(|e| failed(e, &path))?)
        {
            return Err(Fill::Mount);
        }
        match at::stat(new, &name) {
            Ok(n) if is_dir(&o) && is_dir(&n) => {
                let from = at::open_dir(old, &name).map_err(|e| failed(e, &path))?;
                let into = at::open_dir(new, &name).map_err(|e| failed(e, &path))?;
                fill(from.as_fd(), into.as_fd(), &path, dev)?;
            }
            // The archive's entry replaces the old one.
            Ok(_) => {}
            Err(e) if gone(&e) && is_dir(&o) => {
                at::mkdir(new, &name, 0o700).map_err(|e| failed(e, &path))?;
                let from = at::open_dir(old, &name).map_err(|e| failed(e, &path))?;
                let into = at::open_dir(new, &name).map_err(|e| failed(e, &path))?;
                fill(from.as_fd(), into.as_fd(), &path, dev)?;
                copy_meta(&std::fs::File::from(into), &o).map_err(|e| failed(e, &path))?;
            }
            Err(e) if gone(&e) => match at::link(old, &name, new, &name) {
                Err(e) if gone(&e) => {}
                other => other.map_err(|e| failed(e, &path))?,
            },
            Err(e) => return Err(failed(e, &path)),
        }
    }
    Ok(())
}

/// Put back the archive's mtimes on the restored directories of `planned` beneath `base`
/// (the tree staged for it, `tree`), deepest first: linking the old tree's entries into
/// them moved their mtimes.
fn retime(tree: BorrowedFd, base: &Path, planned: &[&Planned]) -> Result<(), Error> {
    for p in planned.iter().rev() {
        let (Kind::Dir { mtime, .. }, Ok(rel)) = (&p.kind, p.path.strip_prefix(base)) else {
            continue;
        };
        let failed = |e: std::io::Error| format!("cannot write {}: {e}", p.path.display());
        let dir = at::beneath(tree, rel, false).map_err(failed)?;
        std::fs::File::from(dir)
            .set_modified(epoch(*mtime))
            .map_err(failed)?;
    }
    Ok(())
}

/// Give `dir` the owner, mode and mtime `st` describes.
fn copy_meta(dir: &std::fs::File, st: &libc::stat) -> std::io::Result<()> {
    settle(dir, Some((st.st_uid, st.st_gid)), st.st_mode)?;
    let when = std::time::UNIX_EPOCH
        + std::time::Duration::new(
            u64::try_from(st.st_mtime).unwrap_or(0),
            u32::try_from(st.st_mtime_nsec).unwrap_or(0),
        );
    dir.set_modified(when)
}

/// Put the staged `name` of `from` into `into` on another filesystem: copied under a
/// temporary name beside its place (owner, mode and mtime kept), flushed, then renamed
/// over it, so each entry still appears whole or not at all.
fn copy_across(from: BorrowedFd, into: BorrowedFd, name: &OsStr) -> std::io::Result<()> {
    let st = at::stat(from, name)?;
    let temp = OsString::from(format!(".opsbook-restore-{}.tmp", std::process::id()));
    let copied = match st.st_mode & libc::S_IFMT {
        libc::S_IFLNK => {
            let target = at::readlink(from, name)?;
            at::symlink(&target, into, &temp)
                .map(|()| drop(at::lchown(into, &temp, st.st_uid, st.st_gid)))
        }
        libc::S_IFREG => (|| {
            let mut source = at::open_file(from, name)?;
            let mut out = at::create(into, &temp)?;
            std::io::copy(&mut source, &mut out)?;
            copy_meta(&out, &st)?;
            out.sync_all()
        })(),
        _ => return Err(std::io::Error::from_raw_os_error(libc::EXDEV)),
    };
    if let Err(e) = copied.and_then(|()| at::rename(into, &temp, into, name, 0)) {
        let _ = at::unlink(into, &temp);
        return Err(e);
    }
    Ok(())
}

/// Rename each staged entry into the target, through directory handles opened beneath
/// it without following symlinks; then directories' owners, modes and times.
fn move_entries(target: &Target, staging: &Staging, planned: &[&Planned]) -> Result<(), Error> {
    let failed = |at: &Path, e: std::io::Error| {
        format!(
            "cannot restore {} into {}: {e}",
            at.display(),
            target.path.display()
        )
    };
    let root = at::open_root(&target.path).map_err(|e| failed(Path::new("."), e))?;
    let tree = staging.tree.as_fd();
    for p in planned.iter().filter(|p| !p.dump) {
        let Some(name) = p.path.file_name() else {
            continue;
        };
        match p.kind {
            Kind::Dir { .. } => {
                at::beneath(root.as_fd(), &p.path, true).map_err(|e| failed(&p.path, e))?;
            }
            _ => {
                let parent = parent_of(&p.path);
                let into =
                    at::beneath(root.as_fd(), parent, true).map_err(|e| failed(&p.path, e))?;
                let from = at::beneath(tree, parent, false).map_err(|e| failed(&p.path, e))?;
                match at::rename(from.as_fd(), name, into.as_fd(), name, 0) {
                    // Beneath a mount point inside the target: copied across instead.
                    Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                        copy_across(from.as_fd(), into.as_fd(), name)
                    }
                    other => other,
                }
                .map_err(|e| failed(&p.path, e))?;
            }
        }
    }
    for p in planned.iter().rev().filter(|p| !p.dump) {
        if let Kind::Dir { .. } = p.kind {
            let staged = at::beneath(tree, &p.path, false).map_err(|e| failed(&p.path, e))?;
            let st = at::fstat(staged.as_fd()).map_err(|e| failed(&p.path, e))?;
            let dir = at::beneath(root.as_fd(), &p.path, false).map_err(|e| failed(&p.path, e))?;
            copy_meta(&std::fs::File::from(dir), &st).map_err(|e| failed(&p.path, e))?;
        }
    }
    Ok(at::syncfs(root.as_fd()).map_err(|e| failed(Path::new("."), e))?)
}
