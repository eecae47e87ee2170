//! One idea, one file: the second pass of a restore: the target resolved, a staging tree
//! made beside it, and every planned entry written there (files checked against the
//! manifest), small files by writer threads.

use super::*;

/// Where a restore writes: the directory `--to` names, with symlinks on the way to it
/// resolved (replacing the target replaces that directory, not a symlink to it).
pub(super) struct Target {
    pub(super) path: PathBuf,
    pub(super) parent: PathBuf,
    pub(super) name: OsString,
    pub(super) exists: bool,
    /// The target cannot be renamed (`/`, or a mount point): the staging directory is
    /// inside it and each root of the restore is switched on its own.
    pub(super) in_place: bool,
    /// The caller works inside the target: replacing it whole would leave the caller (a
    /// shell that ran `cd DIR && opsbook restore`) in the old, removed tree, so each root
    /// of the restore is switched on its own (the one holding the caller entry by entry).
    pub(super) in_use: bool,
}

impl Target {
    pub(super) fn resolve(to: &Path) -> Result<Target, Error> {
        let shown = to.display();
        if std::fs::symlink_metadata(to).is_ok() {
            let path =
                std::fs::canonicalize(to).map_err(|e| format!("cannot resolve {shown}: {e}"))?;
            if !path.is_dir() {
                return Err(Error::Failed(format!("{shown} is not a directory")));
            }
            let parent = path.parent().map(Path::to_path_buf);
            let name = path.file_name().map(OsStr::to_os_string);
            let (in_place, parent, name) = match (parent, name) {
                (Some(parent), Some(name)) => {
                    let dev = |p: &Path| {
                        use std::os::unix::fs::MetadataExt;
                        std::fs::metadata(p).map(|m| m.dev()).ok()
                    };
                    let mount = at::open_root(&parent)
                        .and_then(|fd| at::is_mount_root(fd.as_fd(), &name))
                        .unwrap_or(true);
                    (mount || dev(&parent) != dev(&path), parent, name)
                }
                _ => (true, path.clone(), OsString::new()),
            };
            let in_use = std::env::current_dir()
                .and_then(std::fs::canonicalize)
                .is_ok_and(|cwd| cwd.starts_with(&path));
            return Ok(Target {
                path,
                parent,
                name,
                exists: true,
                in_place,
                in_use,
            });
        }
        let parent = match to.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        let parent = std::fs::canonicalize(&parent)
            .map_err(|e| format!("cannot resolve {}: {e}", parent.display()))?;
        let name = to
            .file_name()
            .ok_or_else(|| format!("{shown}: not a directory name to restore into"))?
            .to_os_string();
        Ok(Target {
            path: parent.join(&name),
            parent,
            name,
            exists: false,
            in_place: false,
            in_use: false,
        })
    }
}

/// The staging directory (`.NAME.opsbook-restore-PID`, mode 0700): `tree/` becomes the
/// target, `dumps/` holds command sources' dumps for their restore commands.
pub(super) struct Staging {
    pub(super) path: PathBuf,
    pub(super) dir: OwnedFd,
    pub(super) tree: OwnedFd,
    pub(super) dumps: OwnedFd,
}

impl Staging {
    /// A fresh staging directory on the target's filesystem (beside it, or inside it when
    /// it cannot be renamed). Leftovers of restores that were killed are removed first.
    pub(super) fn create(target: &Target) -> Result<Staging, Error> {
        let place = if target.in_place {
            &target.path
        } else {
            &target.parent
        };
        let mut prefix = Vec::new();
        if !target.in_place {
            prefix.extend_from_slice(b".");
            prefix.extend_from_slice(target.name.as_bytes());
        }
        prefix.extend_from_slice(b".opsbook-restore-");
        for leftover in std::fs::read_dir(place).into_iter().flatten().flatten() {
            let file = leftover.file_name();
            if let Some(pid) = file.as_bytes().strip_prefix(prefix.as_slice())
                && !pid.is_empty()
                && pid.iter().all(u8::is_ascii_digit)
                && !Path::new("/proc").join(OsStr::from_bytes(pid)).exists()
            {
                let _ = std::fs::remove_dir_all(leftover.path());
            }
        }
        prefix.extend_from_slice(std::process::id().to_string().as_bytes());
        let path = place.join(OsStr::from_bytes(&prefix));
        let failed = |e: std::io::Error| format!("cannot create {}: {e}", path.display());
        let _ = std::fs::remove_dir_all(&path);
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(failed)?;
        let dir = at::open_root(&path).map_err(failed)?;
        let sub = |name: &str| {
            at::mkdir(dir.as_fd(), OsStr::new(name), 0o700)
                .and_then(|()| at::open_dir(dir.as_fd(), OsStr::new(name)))
                .map_err(failed)
        };
        let tree = sub("tree")?;
        let dumps = sub("dumps")?;
        Ok(Staging {
            path,
            dir,
            tree,
            dumps,
        })
    }
}

/// Who restored entries belong to: the owners stored (by user and group name when this
/// system knows the name, else by number, as GNU tar does), or nobody in particular with
/// `--no-owner` (they stay the caller's).
pub(super) struct Owners {
    pub(super) keep: bool,
    pub(super) users: std::sync::Mutex<HashMap<Vec<u8>, Option<u32>>>,
    pub(super) groups: std::sync::Mutex<HashMap<Vec<u8>, Option<u32>>>,
}

impl Owners {
    pub(super) fn new(no_owner: bool) -> Owners {
        Owners {
            keep: !no_owner,
            users: std::sync::Mutex::default(),
            groups: std::sync::Mutex::default(),
        }
    }

    /// The (uid, gid) to give an entry with `header`, if any.
    fn of(&self, header: &tar::Header) -> Option<(u32, u32)> {
        if !self.keep {
            return None;
        }
        let by_name = |cache: &std::sync::Mutex<HashMap<Vec<u8>, Option<u32>>>,
                       name: Option<&[u8]>,
                       user: bool| {
            let name = name.filter(|n| !n.is_empty())?;
            let mut cache = cache.lock().ok()?;
            *cache
                .entry(name.to_vec())
                .or_insert_with(|| lookup_id(name, user))
        };
        let uid = by_name(&self.users, header.username_bytes(), true)
            .or_else(|| header.uid().ok().and_then(|u| u32::try_from(u).ok()))?;
        let gid = by_name(&self.groups, header.groupname_bytes(), false)
            .or_else(|| header.gid().ok().and_then(|g| u32::try_from(g).ok()))?;
        Some((uid, gid))
    }
}

/// The id of the user (or group) called `name` on this system.
pub(super) fn lookup_id(name: &[u8], user: bool) -> Option<u32> {
    let c = CString::new(name).ok()?;
    if user {
        // SAFETY: getpwnam_r with valid pointers and the buffer's true length.
        by_name_r(
            |p: &mut libc::passwd, buf, len, out| unsafe {
                libc::getpwnam_r(c.as_ptr(), p, buf, len, out)
            },
            |pwd| pwd.pw_uid,
        )
    } else {
        // SAFETY: getgrnam_r with valid pointers and the buffer's true length.
        by_name_r(
            |g: &mut libc::group, buf, len, out| unsafe {
                libc::getgrnam_r(c.as_ptr(), g, buf, len, out)
            },
            |grp| grp.gr_gid,
        )
    }
}

/// One `get*nam_r` call on a `passwd` or `group`: the id `read` takes from the entry
/// found, if any (read while the entry's strings, which point into the buffer, are valid).
fn by_name_r<T>(
    call: impl FnOnce(&mut T, *mut libc::c_char, usize, *mut *mut T) -> libc::c_int,
    read: impl FnOnce(&T) -> u32,
) -> Option<u32> {
    let mut buf = vec![0 as libc::c_char; 1 << 16];
    // SAFETY: all-zero is a valid `passwd` or `group` (pointers null, ids 0); the call
    // fills it, using `buf` for its strings.
    let mut entry: T = unsafe { std::mem::zeroed() };
    let mut result = std::ptr::null_mut();
    let rc = call(&mut entry, buf.as_mut_ptr(), buf.len(), &mut result);
    (rc == 0 && !result.is_null()).then(|| read(&entry))
}

/// Give an open file or directory its owner (when there is one to give), then its mode:
/// setuid and setgid are dropped whenever the owner could not be set, so a restore never
/// makes a set-id file belonging to someone the archive did not name.
pub(super) fn settle(
    file: &std::fs::File,
    owner: Option<(u32, u32)>,
    mode: u32,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let owned = owner
        .is_some_and(|(uid, gid)| std::os::unix::fs::fchown(file, Some(uid), Some(gid)).is_ok());
    let mode = if owned { mode } else { mode & !0o6000 };
    file.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
}

pub(super) fn epoch(mtime: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime)
}

/// Files up to this size are read into memory and written by the writer threads; bigger
/// ones stream straight from the archive.
pub(super) const SMALL: u64 = 1 << 20;
/// Small files in flight between the reader and the writers (at most 16 MiB).
pub(super) const IN_FLIGHT: usize = 16;
/// Threads creating small files: creating a file costs the kernel more than writing a few
/// KiB into it, and creations in different directories run in parallel.
pub(super) const WRITERS: usize = 2;

/// A small file read whole, waiting to be written into the directory `dir`.
pub(super) struct Job {
    pub(super) dir: Arc<OwnedFd>,
    pub(super) name: OsString,
    pub(super) shown: PathBuf,
    pub(super) data: Vec<u8>,
    pub(super) mode: u32,
    pub(super) mtime: u64,
    pub(super) owner: Option<(u32, u32)>,
}

/// The second pass: write every planned entry under the staging tree (dumps under
/// `dumps/`), checking files against the manifest. The calling thread reads the archive;
/// small files go to writer threads.
pub(super) fn stage(
    archive: &Path,
    manifest: Option<&Manifest>,
    listed: Option<&HashSet<PathBuf>>,
    planned: &[Planned],
    staging: &Staging,
    owners: &Owners,
) -> Result<(), Error> {
    let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(IN_FLIGHT);
    let queue = std::sync::Mutex::new(queue);
    let trouble: std::sync::Mutex<Option<Error>> = std::sync::Mutex::new(None);
    let done = std::sync::atomic::AtomicBool::new(false);
    let read = std::thread::scope(|scope| {
        // Write back while the archive decodes, so the flush at the end finds little left.
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(100));
                let _ = at::syncfs(staging.tree.as_fd());
            }
        });
        for _ in 0..WRITERS {
            scope.spawn(|| {
                loop {
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    let written = write_file(
                        job.dir.as_fd(),
                        &job.name,
                        &job.shown,
                        &mut job.data.as_slice(),
                        (job.mode, job.mtime, job.owner),
                    );
                    if let Err(e) = written
                        && let Ok(mut trouble) = trouble.lock()
                    {
                        trouble.get_or_insert(e);
                    }
                }
            });
        }
        // Dropping `jobs` when reading ends lets the writers finish.
        let read = read_entries(archive, manifest, listed, planned, staging, owners, jobs);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        read
    });
    let (hardlinks, dir_owners) = read?;
    if let Some(e) = trouble.lock().ok().and_then(|mut t| t.take()) {
        return Err(e);
    }
    let tree = staging.tree.as_fd();
    // Hardlinks last: their targets are all written by now.
    for (dst, target) in hardlinks {
        let failed = |e: std::io::Error| format!("cannot write {}: {e}", dst.display());
        let (Some(from), Some(to)) = (target.file_name(), dst.file_name()) else {
            continue;
        };
        let from_dir = at::beneath(tree, parent_of(&target), false).map_err(failed)?;
        let to_dir = at::beneath(tree, parent_of(&dst), true).map_err(failed)?;
        at::link(from_dir.as_fd(), from, to_dir.as_fd(), to).map_err(failed)?;
    }
    // Directories get their owners, modes and times last, deepest first (writing into one
    // changes its mtime).
    for p in planned.iter().rev().filter(|p| !p.dump) {
        if let Kind::Dir { mode, mtime } = p.kind {
            let failed = |e: std::io::Error| format!("cannot write {}: {e}", p.path.display());
            let dir = std::fs::File::from(at::beneath(tree, &p.path, false).map_err(failed)?);
            let owner = dir_owners.get(&p.path).copied().flatten();
            settle(&dir, owner, mode).map_err(failed)?;
            dir.set_modified(epoch(mtime)).map_err(failed)?;
        }
    }
    // One flush of the whole filesystem instead of an fsync per file: everything staged
    // is on disk before any of it is moved into place.
    Ok(at::syncfs(tree)
        .map_err(|e| format!("cannot flush {} to disk: {e}", staging.path.display()))?)
}

pub(super) fn parent_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new(""))
}

/// What the reading pass leaves for later: hardlinks (link, target) and directories'
/// owners.
pub(super) type Read2 = (
    Vec<(PathBuf, PathBuf)>,
    HashMap<PathBuf, Option<(u32, u32)>>,
);

/// Read the archive, creating directories and symlinks, writing big files, handing small
/// ones to `jobs`.
pub(super) fn read_entries(
    archive: &Path,
    manifest: Option<&Manifest>,
    listed: Option<&HashSet<PathBuf>>,
    planned: &[Planned],
    staging: &Staging,
    owners: &Owners,
    jobs: std::sync::mpsc::SyncSender<Job>,
) -> Result<Read2, Error> {
    let expected: BTreeMap<PathBuf, &FileEntry> = manifest
        .map(|m| {
            m.files
                .iter()
                .filter_map(|f| Some((relative(&path_of(&f.path_bytes()?)).ok()??, f)))
                .collect()
        })
        .unwrap_or_default();
    let reader = open(archive)?;
    let mut tar = tar::Archive::new(reader);
    let damaged = |e: std::io::Error| format!("{} is damaged or truncated: {e}", archive.display());
    let mut next = planned.iter().peekable();
    let by_path: HashMap<&Path, &Planned> = planned.iter().map(|p| (p.path.as_path(), p)).collect();
    let mut seen = 0;
    // The directory the last entry went into (archives list a directory's files together).
    let mut last: Option<(PathBuf, bool, Arc<OwnedFd>)> = None;
    let mut hardlinks = Vec::new();
    let mut dir_owners = HashMap::new();
    for (index, entry) in tar.entries().map_err(damaged)?.enumerate() {
        let mut entry = entry.map_err(damaged)?;
        let p = match listed {
            None => next.next_if(|p| p.index == index),
            Some(listed) => {
                let raw = path_of(&entry.path_bytes());
                let shown = raw.display();
                match relative(&raw) {
                    Ok(None) => None,
                    Ok(Some(path)) if listed.contains(&path) => {
                        let p = by_path.get(path.as_path()).copied();
                        if let Some(p) = p
                            && !same_kind(p, &entry)
                        {
                            return Err(Error::Failed(format!(
                                "{shown}: not what the manifest lists; nothing restored"
                            )));
                        }
                        p
                    }
                    _ => {
                        return Err(Error::Failed(format!(
                            "{shown}: in the archive but not in the manifest; nothing restored"
                        )));
                    }
                }
            }
        };
        let Some(p) = p else {
            continue;
        };
        seen += 1;
        let failed = |e: std::io::Error| format!("cannot write {}: {e}", p.path.display());
        let Some(name) = p.path.file_name() else {
            continue;
        };
        let parent = parent_of(&p.path);
        let dir = match &last {
            Some((at, dump, dir)) if at == parent && *dump == p.dump => dir.clone(),
            _ => {
                let root = if p.dump {
                    staging.dumps.as_fd()
                } else {
                    staging.tree.as_fd()
                };
                let dir = Arc::new(at::beneath(root, parent, true).map_err(failed)?);
                last = Some((parent.to_path_buf(), p.dump, dir.clone()));
                dir
            }
        };
        let owner = owners.of(entry.header());
        match &p.kind {
            Kind::Dir { .. } => {
                at::mkdir(dir.as_fd(), name, 0o700).map_err(failed)?;
                dir_owners.insert(p.path.clone(), owner);
            }
            Kind::Symlink(target) => {
                at::symlink(target.as_os_str(), dir.as_fd(), name).map_err(failed)?;
                if let Some((uid, gid)) = owner {
                    let _ = at::lchown(dir.as_fd(), name, uid, gid);
                }
            }
            Kind::Hardlink(target) => hardlinks.push((p.path.clone(), target.clone())),
            Kind::File { mode, mtime } => {
                let member = p.path.display();
                let size = entry.size();
                let mut hashing = HashingReader::sized(&mut entry, size);
                if size <= SMALL {
                    let mut data = Vec::with_capacity(size as usize);
                    hashing
                        .read_to_end(&mut data)
                        .map_err(|e| format!("cannot restore {member}: {e}"))?;
                    check_against(&expected, &p.path, hashing.finish())?;
                    let job = Job {
                        dir,
                        name: name.to_os_string(),
                        shown: p.path.clone(),
                        data,
                        mode: *mode,
                        mtime: *mtime,
                        owner,
                    };
                    if jobs.send(job).is_err() {
                        return Err(Error::Failed(failed(std::io::Error::other(
                            "the writers stopped",
                        ))));
                    }
                } else {
                    let meta = (*mode, *mtime, owner);
                    write_file(dir.as_fd(), name, &p.path, &mut hashing, meta)?;
                    check_against(&expected, &p.path, hashing.finish())?;
                }
            }
        }
    }
    if seen != planned.len() {
        return Err(Error::Failed(format!(
            "{}: {} listed entries are missing from the archive; nothing restored",
            archive.display(),
            planned.len() - seen
        )));
    }
    Ok((hardlinks, dir_owners))
}

/// Whether the archive's entry is the kind (and, for a symlink, the target) planned.
pub(super) fn same_kind<R: Read>(planned: &Planned, entry: &tar::Entry<'_, R>) -> bool {
    let kind = entry.header().entry_type();
    match &planned.kind {
        Kind::File { .. } => matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous),
        Kind::Dir { .. } => kind == tar::EntryType::Directory,
        Kind::Symlink(target) => {
            kind == tar::EntryType::Symlink
                && entry
                    .link_name_bytes()
                    .is_some_and(|b| b.as_ref() == target.as_os_str().as_bytes())
        }
        Kind::Hardlink(_) => kind == tar::EntryType::Link,
    }
}

/// A file as read from the archive (length and SHA-256) against its manifest entry.
pub(super) fn check_against(
    expected: &BTreeMap<PathBuf, &FileEntry>,
    member: &Path,
    (size, sha256): (u64, String),
) -> Result<(), Error> {
    match expected.get(member) {
        Some(want) if want.size != size || want.sha256 != sha256 => Err(Error::Failed(format!(
            "{}: does not match the manifest (size or SHA-256); nothing restored",
            member.display()
        ))),
        _ => Ok(()),
    }
}

/// Create `name` in `dir` (replacing an earlier entry of the same name, as GNU tar does)
/// with what `data` holds, then its owner, mode and mtime.
pub(super) fn write_file(
    dir: BorrowedFd,
    name: &OsStr,
    shown: &Path,
    data: &mut impl Read,
    (mode, mtime, owner): (u32, u64, Option<(u32, u32)>),
) -> Result<(), Error> {
    let failed = |e: std::io::Error| format!("cannot write {}: {e}", shown.display());
    let mut out = at::create(dir, name).map_err(failed)?;
    std::io::copy(data, &mut out).map_err(failed)?;
    settle(&out, owner, mode).map_err(failed)?;
    Ok(out.set_modified(epoch(mtime)).map_err(failed)?)
}
