//! Restoring a tar archive (an opsbook backup, or a plain tar / tar.gz / tar.zst made by
//! hand) into a target directory without ever writing outside it.
//!
//! Two passes over the archive. The first only reads: every entry's path and type, every
//! link's target, and what is already on disk are checked, and every refused entry is
//! reported; if any is refused, nothing at all is written. The second writes a whole new
//! tree into a staging directory beside the target (hashing each file against the manifest
//! when there is one); the target's entries the archive does not hold are hard-linked into
//! it, and one `renameat2(RENAME_EXCHANGE)` switches the old tree for the new one. A
//! restore killed at any point therefore leaves the target wholly old or wholly new. A
//! target that cannot be switched whole (`/`, a mount point, the caller's working
//! directory) is switched one root of the restore at a time (`etc/app`, `srv/app`), each
//! the same way, so each is left wholly old or wholly new.
//!
//! Every write is made relative to a directory handle opened beneath the staging or target
//! root one component at a time with `O_NOFOLLOW`: nothing is ever written through a
//! symlink, whatever is swapped in while the restore runs. Symlinks themselves are data and
//! come back exactly as stored (absolute, or pointing anywhere); names are raw bytes.

use super::{FileEntry, Manifest};
use crate::digest::HashingReader;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{CString, OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Links are followed at most this deep when checking where they lead (as Linux does).
const MAX_LINK_DEPTH: usize = 40;

pub struct Options {
    pub to: PathBuf,
    pub include: Option<globset::GlobSet>,
    pub force: bool,
    pub dry_run: bool,
    /// Restore as the caller, never the owners stored (setuid/setgid bits are dropped).
    pub no_owner: bool,
}

/// What a restore did (or, with `--dry-run`, would do).
#[derive(Debug, Default)]
pub struct Outcome {
    /// Every entry that was refused, with why; when not empty, nothing was written.
    pub refused: Vec<String>,
    /// Relative paths restored (or that would be), in archive order.
    pub restored: Vec<String>,
    /// Command-source dumps, staged and waiting for their restore command: (member, file).
    pub dumps: Vec<(String, PathBuf)>,
    pub files: usize,
    pub dirs: usize,
    pub links: usize,
    /// The staging directory still holding the dumps; removed by [`Outcome::finish`].
    staging: Option<PathBuf>,
}

impl Outcome {
    /// Remove what is left of the staging directory (the dumps, once restored).
    pub fn finish(&mut self) {
        if let Some(staging) = self.staging.take() {
            let _ = std::fs::remove_dir_all(staging);
        }
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        self.finish();
    }
}

#[derive(Debug)]
enum Kind {
    File { mode: u32, mtime: u64 },
    Dir { mode: u32, mtime: u64 },
    Symlink(PathBuf),
    Hardlink(PathBuf),
}

/// One entry that passed the checks, by its position in the archive.
#[derive(Debug)]
struct Planned {
    index: usize,
    path: PathBuf,
    kind: Kind,
    /// A command source's dump: staged, not moved into the target.
    dump: bool,
}

/// Test seam: `OPSBOOK_TEST_STOP_AT=POINT` makes the process stop itself (SIGSTOP) and
/// `OPSBOOK_TEST_KILL_AT=POINT` kill itself (SIGKILL) at the named point, so a test can
/// swap files there or check what a kill at that very step leaves. Unset, it costs two
/// environment lookups.
pub fn seam(point: &str) {
    for (var, signal) in [
        ("OPSBOOK_TEST_STOP_AT", libc::SIGSTOP),
        ("OPSBOOK_TEST_KILL_AT", libc::SIGKILL),
    ] {
        if std::env::var_os(var).is_some_and(|v| v == point) {
            // SAFETY: raise(3) has no memory effects; SIGSTOP/SIGKILL act on the process.
            unsafe {
                libc::raise(signal);
            }
        }
    }
}

/// A name's bytes as a path (names in archives and manifests are bytes, not text).
fn path_of(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(bytes.to_vec()))
}

/// Open an archive, telling gzip, zstd and plain tar apart by their first bytes.
pub fn open(path: &Path) -> Result<Box<dyn Read>, String> {
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        match file.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        }
    }
    let head = std::io::Cursor::new(magic[..got].to_vec());
    let reader = std::io::BufReader::with_capacity(1 << 20, head.chain(file));
    match crate::codec::Codec::sniff(&magic[..got]) {
        Some(codec) => crate::codec::decoder(codec, reader)
            .map(|r| r as Box<dyn Read>)
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        None => Ok(Box::new(reader)),
    }
}

/// Restore `archive` into `options.to`. With a manifest, every file is checked against it
/// and command sources' dumps (`dumps`: member paths) are staged rather than restored.
pub fn restore(
    archive: &Path,
    manifest: Option<&Manifest>,
    dumps: &[String],
    options: &Options,
) -> Result<Outcome, String> {
    let full = manifest.filter(|m| m.listing);
    let listing = match full {
        Some(m) => listing_from_manifest(m),
        None => listing_from_archive(archive)?,
    };
    // With a full listing, the writing pass matches entries by path and refuses any
    // entry of the archive the listing does not have.
    let listed: Option<HashSet<PathBuf>> = full.map(|m| {
        let others = m.others.iter().filter_map(|o| o.path_bytes());
        let files = m.files.iter().filter_map(|f| f.path_bytes());
        others
            .chain(files)
            .filter_map(|p| relative(&path_of(&p)).ok().flatten())
            .collect()
    });
    let planned = check(listing, dumps, options);
    let mut outcome = Outcome::default();
    outcome.refused = planned.refused;
    for p in &planned.entries {
        outcome.restored.push(p.path.to_string_lossy().into_owned());
        match p.kind {
            Kind::File { .. } if p.dump => {}
            Kind::File { .. } | Kind::Hardlink(_) => outcome.files += 1,
            Kind::Dir { .. } => outcome.dirs += 1,
            Kind::Symlink(_) => outcome.links += 1,
        }
    }
    if !outcome.refused.is_empty() || options.dry_run {
        return Ok(outcome);
    }
    let target = Target::resolve(&options.to)?;
    let staging = Staging::create(&target)?;
    let owners = Owners::new(options.no_owner);
    let written = stage(
        archive,
        manifest,
        listed.as_ref(),
        &planned.entries,
        &staging,
        &owners,
    )
    .and_then(|()| {
        seam("restore-staged");
        switch(&target, &staging, &planned.entries)
    });
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&staging.path);
        return Err(e);
    }
    outcome.dumps = planned
        .entries
        .iter()
        .filter(|p| p.dump)
        .map(|p| {
            let file = staging.path.join("dumps").join(&p.path);
            (p.path.to_string_lossy().into_owned(), file)
        })
        .collect();
    if outcome.dumps.is_empty() {
        let _ = std::fs::remove_dir_all(&staging.path);
    } else {
        outcome.staging = Some(staging.path.clone());
    }
    Ok(outcome)
}

struct Checked {
    entries: Vec<Planned>,
    refused: Vec<String>,
}

/// Every entry to restore as (position, path as stored, kind), and the entries refused
/// for their type alone.
type Listing = (Vec<(usize, PathBuf, Kind)>, Vec<String>);

/// The first pass over a hand-made archive (or a backup without a full listing): read
/// every entry, write nothing.
fn listing_from_archive(archive: &Path) -> Result<Listing, String> {
    let reader = open(archive)?;
    let mut tar = tar::Archive::new(reader);
    let damaged = |e: std::io::Error| format!("{} is damaged or truncated: {e}", archive.display());
    let mut listing = Vec::new();
    let mut refused = Vec::new();
    for (index, entry) in tar.entries().map_err(damaged)?.enumerate() {
        let entry = entry.map_err(damaged)?;
        let raw = path_of(&entry.path_bytes());
        let shown = raw.display();
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let mtime = header.mtime().unwrap_or(0);
        let link = || {
            entry
                .link_name_bytes()
                .map(|b| path_of(&b))
                .unwrap_or_default()
        };
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File { mode, mtime },
            tar::EntryType::Directory => Kind::Dir { mode, mtime },
            tar::EntryType::Symlink => Kind::Symlink(link()),
            tar::EntryType::Link => Kind::Hardlink(link()),
            tar::EntryType::Char | tar::EntryType::Block => {
                refused.push(format!("{shown}: a device file (never restored)"));
                continue;
            }
            tar::EntryType::Fifo => {
                refused.push(format!("{shown}: a fifo (never restored)"));
                continue;
            }
            other => {
                refused.push(format!("{shown}: unsupported entry type {other:?}"));
                continue;
            }
        };
        listing.push((index, raw, kind));
    }
    Ok((listing, refused))
}

/// A backup's own full listing (its manifest): no pass over the archive needed before
/// writing; the writing pass then checks that the archive holds exactly this.
fn listing_from_manifest(manifest: &Manifest) -> Listing {
    let mut refused = Vec::new();
    let mut listing = Vec::new();
    let malformed = |what: &str, path: &str| {
        format!("{path}: the manifest's {what} is not valid hex (a damaged or forged manifest)")
    };
    for o in &manifest.others {
        let Some(path) = o.path_bytes() else {
            refused.push(malformed("path_hex", &o.path));
            continue;
        };
        let kind = match (&o.target, o.target_bytes()) {
            (None, _) => Kind::Dir {
                mode: o.mode,
                mtime: o.mtime.max(0) as u64,
            },
            (Some(_), Some(target)) => Kind::Symlink(path_of(&target)),
            (Some(_), None) => {
                refused.push(malformed("target_hex", &o.path));
                continue;
            }
        };
        listing.push((listing.len(), path_of(&path), kind));
    }
    for f in &manifest.files {
        let Some(path) = f.path_bytes() else {
            refused.push(malformed("path_hex", &f.path));
            continue;
        };
        let kind = Kind::File {
            mode: f.mode,
            mtime: f.mtime.max(0) as u64,
        };
        listing.push((listing.len(), path_of(&path), kind));
    }
    (listing, refused)
}

/// Judge every entry of `listing` — paths, link targets, what is on disk — writing
/// nothing: what to restore, and every refusal with its reason.
///
/// A symlink is restored as stored, wherever it points: it is data, and no entry is ever
/// written through one. An archive that puts entries beneath one of its own symlinks is
/// hostile: those entries are refused, and so is the symlink when it leads outside.
fn check(listing: Listing, dumps: &[String], options: &Options) -> Checked {
    let (listing, mut refused) = listing;
    let mut entries = Vec::new();
    // Every path and what it is, for link checks once all are known.
    let mut symlinks: HashMap<PathBuf, PathBuf> = HashMap::new();
    let mut files: HashSet<PathBuf> = HashSet::new();
    let mut all: Vec<PathBuf> = Vec::new();
    for (index, raw, kind) in listing {
        let path = match relative(&raw) {
            Ok(Some(path)) => path,
            Ok(None) => continue, // `./`: the target itself
            Err(why) => {
                refused.push(format!("{}: {why}", raw.display()));
                continue;
            }
        };
        match &kind {
            Kind::Symlink(target) => {
                symlinks.insert(path.clone(), target.clone());
            }
            Kind::File { .. } => {
                files.insert(path.clone());
            }
            _ => {}
        }
        all.push(path.clone());
        if let Some(include) = &options.include
            && !matches!(kind, Kind::Dir { .. })
            && !include.is_match(&path)
        {
            continue;
        }
        let dump = dumps.iter().any(|d| Path::new(d) == path);
        entries.push(Planned {
            index,
            path,
            kind,
            dump,
        });
    }
    // The archive's symlinks that some of its entries lie beneath.
    let traversed: HashSet<&Path> = all
        .iter()
        .flat_map(|p| p.ancestors().skip(1))
        .filter(|a| symlinks.contains_key(*a))
        .collect();
    // Directories are kept only when something included lies in them (or all is included).
    if options.include.is_some() {
        let needed: HashSet<PathBuf> = entries
            .iter()
            .filter(|p| !matches!(p.kind, Kind::Dir { .. }))
            .flat_map(|p| p.path.ancestors().skip(1).map(Path::to_path_buf))
            .collect();
        entries.retain(|p| !matches!(p.kind, Kind::Dir { .. }) || needed.contains(&p.path));
    }
    let included: HashSet<&Path> = entries.iter().map(|p| p.path.as_path()).collect();
    for p in &entries {
        let shown = p.path.display();
        if let Some(through) = p
            .path
            .ancestors()
            .skip(1)
            .find(|a| symlinks.contains_key(*a))
        {
            refused.push(format!(
                "{shown}: goes through the symlink {} in the archive",
                through.display()
            ));
            continue;
        }
        match &p.kind {
            Kind::Symlink(target) if traversed.contains(p.path.as_path()) => {
                if let Err(why) = resolve(&p.path, target, &symlinks, 0) {
                    refused.push(format!("{shown}: symlink to {} {why}", target.display()));
                    continue;
                }
            }
            Kind::Hardlink(target) => {
                let raw = target.display();
                match relative(target) {
                    Err(why) => {
                        refused.push(format!("{shown}: hardlink to {raw}: {why}"));
                        continue;
                    }
                    Ok(None) => {
                        refused.push(format!("{shown}: hardlink to the target directory"));
                        continue;
                    }
                    Ok(Some(t)) if !files.contains(&t) => {
                        refused.push(format!(
                            "{shown}: hardlink to {raw}, which is not a file in the archive (it would link a file outside the target)"
                        ));
                        continue;
                    }
                    Ok(Some(t)) if !included.contains(t.as_path()) => {
                        refused.push(format!(
                            "{shown}: hardlink to {raw}, which --include leaves out"
                        ));
                        continue;
                    }
                    Ok(Some(_)) => {}
                }
            }
            _ => {}
        }
        if !p.dump
            && let Some(why) = on_disk(&options.to, &p.path, &p.kind, options.force)
        {
            refused.push(format!("{shown}: {why}"));
        }
    }
    // Hardlink targets, normalized, for the writing pass.
    for p in &mut entries {
        if let Kind::Hardlink(target) = &mut p.kind
            && let Ok(Some(t)) = relative(target)
        {
            *target = t;
        }
    }
    Checked { entries, refused }
}

/// A member path made relative and clean, or why it is refused; `None` for the root.
fn relative(raw: &Path) -> Result<Option<PathBuf>, &'static str> {
    let mut clean = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("a `..` path (would leave the target)"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("an absolute path (would write outside the target)");
            }
        }
    }
    Ok((!clean.as_os_str().is_empty()).then_some(clean))
}

/// Where the symlink at `link` pointing to `target` leads, following the archive's other
/// symlinks; an error when it leaves the target.
fn resolve(
    link: &Path,
    target: &Path,
    symlinks: &HashMap<PathBuf, PathBuf>,
    depth: usize,
) -> Result<PathBuf, &'static str> {
    if depth > MAX_LINK_DEPTH {
        return Err("goes round in a loop of symlinks");
    }
    if target.is_absolute() {
        return Err("leads outside the target (an absolute path)");
    }
    let mut at = link.parent().map(Path::to_path_buf).unwrap_or_default();
    for component in target.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !at.pop() {
                    return Err("leads outside the target");
                }
            }
            Component::Normal(part) => {
                at.push(part);
                if let Some(next) = symlinks.get(&at)
                    && at != link
                {
                    at = resolve(&at, next, symlinks, depth + 1)?;
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err("leads outside the target (an absolute path)");
            }
        }
    }
    Ok(at)
}

/// Why writing `path` into `to` is refused given what is on disk there, if it is.
fn on_disk(to: &Path, path: &Path, kind: &Kind, force: bool) -> Option<String> {
    // A symlink already on disk in the way would carry the write outside the target.
    let mut at = to.to_path_buf();
    let parents: Vec<_> = path
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    for part in parents {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Some(format!(
                    "{} is a symlink on disk; restoring through it could write outside the target",
                    at.display()
                ));
            }
            Ok(meta) if !meta.is_dir() => {
                return Some(format!(
                    "{} is a file on disk, not a directory",
                    at.display()
                ));
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    let existing = std::fs::symlink_metadata(to.join(path)).ok()?;
    match kind {
        Kind::Dir { .. } if existing.is_dir() => None,
        Kind::Dir { .. } => Some("exists on disk and is not a directory".to_string()),
        _ if existing.is_dir() => Some("exists on disk as a directory".to_string()),
        _ if !force => Some("exists on disk (--force overwrites it)".to_string()),
        _ => None,
    }
}

/// Where a restore writes: the directory `--to` names, with symlinks on the way to it
/// resolved (replacing the target replaces that directory, not a symlink to it).
struct Target {
    path: PathBuf,
    parent: PathBuf,
    name: OsString,
    exists: bool,
    /// The target cannot be renamed (`/`, or a mount point): the staging directory is
    /// inside it and each root of the restore is switched on its own.
    in_place: bool,
    /// The caller works inside the target: replacing it whole would leave the caller (a
    /// shell that ran `cd DIR && opsbook restore`) in the old, removed tree, so each root
    /// of the restore is switched on its own (the one holding the caller entry by entry).
    in_use: bool,
}

impl Target {
    fn resolve(to: &Path) -> Result<Target, String> {
        let shown = to.display();
        if std::fs::symlink_metadata(to).is_ok() {
            let path =
                std::fs::canonicalize(to).map_err(|e| format!("cannot resolve {shown}: {e}"))?;
            if !path.is_dir() {
                return Err(format!("{shown} is not a directory"));
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
struct Staging {
    path: PathBuf,
    dir: OwnedFd,
    tree: OwnedFd,
    dumps: OwnedFd,
}

impl Staging {
    /// A fresh staging directory on the target's filesystem (beside it, or inside it when
    /// it cannot be renamed). Leftovers of restores that were killed are removed first.
    fn create(target: &Target) -> Result<Staging, String> {
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
struct Owners {
    keep: bool,
    users: std::sync::Mutex<HashMap<Vec<u8>, Option<u32>>>,
    groups: std::sync::Mutex<HashMap<Vec<u8>, Option<u32>>>,
}

impl Owners {
    fn new(no_owner: bool) -> Owners {
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
fn lookup_id(name: &[u8], user: bool) -> Option<u32> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 1 << 16];
    let mut found: bool = false;
    let mut id = 0;
    if user {
        // SAFETY: all-zero is a valid `passwd`; getpwnam_r fills it using `buf`.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result = std::ptr::null_mut();
        // SAFETY: valid pointers and the buffer's true length.
        let rc = unsafe {
            libc::getpwnam_r(
                c.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == 0 && !result.is_null() {
            (found, id) = (true, pwd.pw_uid);
        }
    } else {
        // SAFETY: all-zero is a valid `group`; getgrnam_r fills it using `buf`.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result = std::ptr::null_mut();
        // SAFETY: valid pointers and the buffer's true length.
        let rc = unsafe {
            libc::getgrnam_r(
                c.as_ptr(),
                &mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == 0 && !result.is_null() {
            (found, id) = (true, grp.gr_gid);
        }
    }
    found.then_some(id)
}

/// Give an open file or directory its owner (when there is one to give), then its mode:
/// setuid and setgid are dropped whenever the owner could not be set, so a restore never
/// makes a set-id file belonging to someone the archive did not name.
fn settle(file: &std::fs::File, owner: Option<(u32, u32)>, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let owned = owner
        .is_some_and(|(uid, gid)| std::os::unix::fs::fchown(file, Some(uid), Some(gid)).is_ok());
    let mode = if owned { mode } else { mode & !0o6000 };
    file.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
}

fn epoch(mtime: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime)
}

/// Files up to this size are read into memory and written by the writer threads; bigger
/// ones stream straight from the archive.
const SMALL: u64 = 1 << 20;
/// Small files in flight between the reader and the writers (at most 16 MiB).
const IN_FLIGHT: usize = 16;
/// Threads creating small files: creating a file costs the kernel more than writing a few
/// KiB into it, and creations in different directories run in parallel.
const WRITERS: usize = 2;

/// A small file read whole, waiting to be written into the directory `dir`.
struct Job {
    dir: Arc<OwnedFd>,
    name: OsString,
    shown: PathBuf,
    data: Vec<u8>,
    mode: u32,
    mtime: u64,
    owner: Option<(u32, u32)>,
}

/// The second pass: write every planned entry under the staging tree (dumps under
/// `dumps/`), checking files against the manifest. The calling thread reads the archive;
/// small files go to writer threads.
fn stage(
    archive: &Path,
    manifest: Option<&Manifest>,
    listed: Option<&HashSet<PathBuf>>,
    planned: &[Planned],
    staging: &Staging,
    owners: &Owners,
) -> Result<(), String> {
    let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(IN_FLIGHT);
    let queue = std::sync::Mutex::new(queue);
    let trouble: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
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
    at::syncfs(tree).map_err(|e| format!("cannot flush {} to disk: {e}", staging.path.display()))
}

fn parent_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new(""))
}

/// What the reading pass leaves for later: hardlinks (link, target) and directories'
/// owners.
type Read2 = (
    Vec<(PathBuf, PathBuf)>,
    HashMap<PathBuf, Option<(u32, u32)>>,
);

/// Read the archive, creating directories and symlinks, writing big files, handing small
/// ones to `jobs`.
fn read_entries(
    archive: &Path,
    manifest: Option<&Manifest>,
    listed: Option<&HashSet<PathBuf>>,
    planned: &[Planned],
    staging: &Staging,
    owners: &Owners,
    jobs: std::sync::mpsc::SyncSender<Job>,
) -> Result<Read2, String> {
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
                            return Err(format!(
                                "{shown}: not what the manifest lists; nothing restored"
                            ));
                        }
                        p
                    }
                    _ => {
                        return Err(format!(
                            "{shown}: in the archive but not in the manifest; nothing restored"
                        ));
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
                        return Err(failed(std::io::Error::other("the writers stopped")));
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
        return Err(format!(
            "{}: {} listed entries are missing from the archive; nothing restored",
            archive.display(),
            planned.len() - seen
        ));
    }
    Ok((hardlinks, dir_owners))
}

/// Whether the archive's entry is the kind (and, for a symlink, the target) planned.
fn same_kind<R: Read>(planned: &Planned, entry: &tar::Entry<'_, R>) -> bool {
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
fn check_against(
    expected: &BTreeMap<PathBuf, &FileEntry>,
    member: &Path,
    (size, sha256): (u64, String),
) -> Result<(), String> {
    match expected.get(member) {
        Some(want) if want.size != size || want.sha256 != sha256 => Err(format!(
            "{}: does not match the manifest (size or SHA-256); nothing restored",
            member.display()
        )),
        _ => Ok(()),
    }
}

/// Create `name` in `dir` (replacing an earlier entry of the same name, as GNU tar does)
/// with what `data` holds, then its owner, mode and mtime.
fn write_file(
    dir: BorrowedFd,
    name: &OsStr,
    shown: &Path,
    data: &mut impl Read,
    (mode, mtime, owner): (u32, u64, Option<(u32, u32)>),
) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("cannot write {}: {e}", shown.display());
    let mut out = at::create(dir, name).map_err(failed)?;
    std::io::copy(data, &mut out).map_err(failed)?;
    settle(&out, owner, mode).map_err(failed)?;
    out.set_modified(epoch(mtime)).map_err(failed)
}

/// Put the staged tree in place: a new target is the tree renamed; an existing one gets
/// the entries of its own the archive does not hold hard-linked into the tree, which is
/// then exchanged with it in one `renameat2(RENAME_EXCHANGE)` and the old tree removed
/// once the exchange is on disk. A target that cannot be renamed (`/`, a mount point, or
/// holding one), or that the caller works in, is switched one root of the restore at a
/// time instead ([`switch_roots`]).
fn switch(target: &Target, staging: &Staging, planned: &[Planned]) -> Result<(), String> {
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
        Err(e) => return Err(failed(e)),
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
) -> Result<Option<Ready>, String> {
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
        Err(e) => return Err(failed(e)),
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
                return Err(failed(e));
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
            .map_err(|e| Fill::Failed(failed(e)))
            .and_then(|new| {
                fill(old.as_fd(), new.as_fd(), rel, st.st_dev)?;
                retime(new.as_fd(), rel, dirs).map_err(Fill::Failed)
            }),
        _ => Ok(()),
    };
    // The copy (and what is linked into it) on disk with the rest of the staging.
    let flushed = filled.and_then(|()| match ready.copied {
        true => at::syncfs(parent.as_fd()).map_err(|e| Fill::Failed(failed(e))),
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
fn switch_roots(target: &Target, staging: &Staging, planned: &[Planned]) -> Result<(), String> {
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
        Ok::<(), String>(())
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
            return Err(failed(e));
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
            Err(e) => return Err(failed(e)),
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
    Failed(String),
}

/// Hard-link every entry of the old tree `old` that the new tree `new` does not have
/// into it (directories are made anew with the old ones' owners, modes and times).
fn fill(old: BorrowedFd, new: BorrowedFd, rel: &Path, dev: u64) -> Result<(), Fill> {
    let failed = |e: std::io::Error, at: &Path| {
        Fill::Failed(format!(
            "cannot keep {} in the restored tree: {e}",
            at.display()
        ))
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
fn retime(tree: BorrowedFd, base: &Path, planned: &[&Planned]) -> Result<(), String> {
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
fn move_entries(target: &Target, staging: &Staging, planned: &[&Planned]) -> Result<(), String> {
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
    at::syncfs(root.as_fd()).map_err(|e| failed(Path::new("."), e))
}

/// Directory handles and the `*at` calls every write goes through: a name is always one
/// component inside a directory held open, never a path the kernel would resolve again.
mod at {
    use super::{CString, OsStr, Path};
    use std::io;
    use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Component;

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
        let flags =
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
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
    pub fn link(
        from_dir: BorrowedFd,
        from: &OsStr,
        to_dir: BorrowedFd,
        to: &OsStr,
    ) -> io::Result<()> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(pairs: &[(&str, &str)]) -> HashMap<PathBuf, PathBuf> {
        pairs
            .iter()
            .map(|(l, t)| (PathBuf::from(l), PathBuf::from(t)))
            .collect()
    }

    #[test]
    fn member_paths_are_cleaned_or_refused() {
        assert_eq!(
            relative(Path::new("./app/x")).unwrap(),
            Some(PathBuf::from("app/x"))
        );
        assert_eq!(relative(Path::new("./")).unwrap(), None);
        assert!(relative(Path::new("../etc/passwd")).is_err());
        assert!(relative(Path::new("app/../../x")).is_err());
        assert!(relative(Path::new("/etc/passwd")).is_err());
    }

    #[test]
    fn symlinks_are_followed_through_the_archive_s_other_symlinks() {
        let inside = links(&[("app/current", "releases/1")]);
        let ok = resolve(
            Path::new("app/current"),
            Path::new("releases/1"),
            &inside,
            0,
        );
        assert_eq!(ok.unwrap(), PathBuf::from("app/releases/1"));
        assert!(resolve(Path::new("a"), Path::new("../x"), &inside, 0).is_err());
        assert!(resolve(Path::new("a"), Path::new("/etc"), &inside, 0).is_err());
        // `d/q -> ..` is the root; `d/p -> q/../..` then climbs out, though it looks inside.
        let sneaky = links(&[("d/q", ".."), ("d/p", "q/../..")]);
        assert!(resolve(Path::new("d/q"), Path::new(".."), &sneaky, 0).is_ok());
        assert!(resolve(Path::new("d/p"), Path::new("q/../.."), &sneaky, 0).is_err());
        let cycle = links(&[("a", "b/x"), ("b", "a/x")]);
        assert!(resolve(Path::new("a"), Path::new("b/x"), &cycle, 0).is_err());
    }
}
