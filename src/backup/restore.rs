//! Restoring a tar archive (an opsbook backup, or a plain tar / tar.gz / tar.zst made by
//! hand) into a target directory without ever writing outside it.
//!
//! Two passes over the archive. The first only reads: every entry's path and type, every
//! link's target, and what is already on disk are checked, and every refused entry is
//! reported; if any is refused, nothing at all is written. The second writes into a
//! staging directory beside the target (hashing each file against the manifest when there
//! is one) and only when all of it is in place, and checks out, moves it into the target.
//! An interrupted restore therefore leaves the target as it was.

use super::{FileEntry, Manifest};
use crate::digest::HashingReader;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Links are followed at most this deep when checking where they lead (as Linux does).
const MAX_LINK_DEPTH: usize = 40;

pub struct Options {
    pub to: PathBuf,
    pub include: Option<globset::GlobSet>,
    pub force: bool,
    pub dry_run: bool,
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
    Ok(match magic[..got] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(
            zstd::stream::read::Decoder::with_buffer(reader)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        ),
        _ => Box::new(reader),
    })
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
        let all = m
            .others
            .iter()
            .map(|o| &o.path)
            .chain(m.files.iter().map(|f| &f.path));
        all.filter_map(|p| relative(p).ok().flatten()).collect()
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
    let staging = staging_dir(&options.to)?;
    let written = stage(
        archive,
        manifest,
        listed.as_ref(),
        &planned.entries,
        &staging,
    )
    .and_then(|()| move_into_place(&staging, &options.to, &planned.entries));
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    outcome.dumps = planned
        .entries
        .iter()
        .filter(|p| p.dump)
        .map(|p| (p.path.to_string_lossy().into_owned(), staging.join(&p.path)))
        .collect();
    if outcome.dumps.is_empty() {
        let _ = std::fs::remove_dir_all(&staging);
    } else {
        outcome.staging = Some(staging);
    }
    Ok(outcome)
}

struct Checked {
    entries: Vec<Planned>,
    refused: Vec<String>,
}

/// Every entry to restore as (position, path as written, kind), and the entries refused
/// for their type alone.
type Listing = (Vec<(usize, String, Kind)>, Vec<String>);

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
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let mtime = header.mtime().unwrap_or(0);
        let link = || {
            entry
                .link_name_bytes()
                .map(|b| PathBuf::from(String::from_utf8_lossy(&b).into_owned()))
                .unwrap_or_default()
        };
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File { mode, mtime },
            tar::EntryType::Directory => Kind::Dir { mode, mtime },
            tar::EntryType::Symlink => Kind::Symlink(link()),
            tar::EntryType::Link => Kind::Hardlink(link()),
            tar::EntryType::Char | tar::EntryType::Block => {
                refused.push(format!("{raw}: a device file (never restored)"));
                continue;
            }
            tar::EntryType::Fifo => {
                refused.push(format!("{raw}: a fifo (never restored)"));
                continue;
            }
            other => {
                refused.push(format!("{raw}: unsupported entry type {other:?}"));
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
    let others = manifest.others.iter().map(|o| {
        let kind = match &o.target {
            Some(target) => Kind::Symlink(PathBuf::from(target)),
            None => Kind::Dir {
                mode: o.mode,
                mtime: o.mtime.max(0) as u64,
            },
        };
        (o.path.clone(), kind)
    });
    let files = manifest.files.iter().map(|f| {
        let kind = Kind::File {
            mode: f.mode,
            mtime: f.mtime.max(0) as u64,
        };
        (f.path.clone(), kind)
    });
    let listing = others
        .chain(files)
        .enumerate()
        .map(|(i, (path, kind))| (i, path, kind))
        .collect();
    (listing, Vec::new())
}

/// Judge every entry of `listing` — paths, link targets, what is on disk — writing
/// nothing: what to restore, and every refusal with its reason.
fn check(listing: Listing, dumps: &[String], options: &Options) -> Checked {
    let (listing, mut refused) = listing;
    let mut entries = Vec::new();
    // Every path and what it is, for link checks once all are known.
    let mut symlinks: HashMap<PathBuf, PathBuf> = HashMap::new();
    let mut files: HashSet<PathBuf> = HashSet::new();
    for (index, raw, kind) in listing {
        let path = match relative(&raw) {
            Ok(Some(path)) => path,
            Ok(None) => continue, // `./`: the target itself
            Err(why) => {
                refused.push(format!("{raw}: {why}"));
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
        let member = path.to_string_lossy();
        if let Some(include) = &options.include
            && !matches!(kind, Kind::Dir { .. })
            && !include.is_match(member.as_ref())
        {
            continue;
        }
        let dump = dumps.iter().any(|d| d.as_str() == member);
        entries.push(Planned {
            index,
            path,
            kind,
            dump,
        });
    }
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
            Kind::Symlink(target) => {
                if let Err(why) = resolve(&p.path, target, &symlinks, 0) {
                    refused.push(format!("{shown}: symlink to {} {why}", target.display()));
                    continue;
                }
            }
            Kind::Hardlink(target) => {
                let raw = target.to_string_lossy();
                match relative(&raw) {
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
            && let Ok(Some(t)) = relative(&target.to_string_lossy())
        {
            *target = t;
        }
    }
    Checked { entries, refused }
}

/// A member path made relative and clean, or why it is refused; `None` for the root.
fn relative(raw: &str) -> Result<Option<PathBuf>, &'static str> {
    let mut clean = PathBuf::new();
    for component in Path::new(raw).components() {
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

/// A fresh staging directory beside `to`, on the same filesystem so that moving into place
/// is a rename. Leftovers of restores that were killed are removed first.
fn staging_dir(to: &Path) -> Result<PathBuf, String> {
    let parent = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let name = to
        .file_name()
        .map_or_else(|| "target".into(), |n| n.to_string_lossy().into_owned());
    let prefix = format!(".{name}.opsbook-restore-");
    for leftover in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
        let file = leftover.file_name().to_string_lossy().into_owned();
        if let Some(pid) = file.strip_prefix(&prefix)
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(leftover.path());
        }
    }
    let staging = parent.join(format!("{prefix}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging)
        .map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    Ok(staging)
}

/// Files up to this size are read into memory and written by the writer threads; bigger
/// ones stream straight from the archive.
const SMALL: u64 = 1 << 20;
/// Small files in flight between the reader and the writers (at most 16 MiB).
const IN_FLIGHT: usize = 16;
/// Threads creating small files: creating a file costs the kernel more than writing a few
/// KiB into it, and creations in different directories run in parallel.
const WRITERS: usize = 2;

/// A small file read whole, waiting to be written.
struct Job {
    dst: PathBuf,
    data: Vec<u8>,
    mode: u32,
    mtime: u64,
}

/// The second pass: write every planned entry under `staging`, checking files against the
/// manifest. The calling thread reads the archive; small files go to writer threads.
fn stage(
    archive: &Path,
    manifest: Option<&Manifest>,
    listed: Option<&HashSet<PathBuf>>,
    planned: &[Planned],
    staging: &Path,
) -> Result<(), String> {
    let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(IN_FLIGHT);
    let queue = std::sync::Mutex::new(queue);
    let trouble: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let staged_dir = std::fs::File::open(staging)
        .map_err(|e| format!("cannot open {}: {e}", staging.display()))?;
    let done = std::sync::atomic::AtomicBool::new(false);
    let read = std::thread::scope(|scope| {
        // Write back while the archive decodes, so the flush at the end finds little left.
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(100));
                flush(&staged_dir);
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
                    let written =
                        write_file(&job.dst, &mut job.data.as_slice(), job.mode, job.mtime);
                    if let Err(e) = written
                        && let Ok(mut trouble) = trouble.lock()
                    {
                        trouble.get_or_insert(e);
                    }
                }
            });
        }
        // Dropping `jobs` when reading ends lets the writers finish.
        let read = read_entries(archive, manifest, listed, planned, staging, jobs);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        read
    });
    let hardlinks = read?;
    if let Some(e) = trouble.lock().ok().and_then(|mut t| t.take()) {
        return Err(e);
    }
    // Hardlinks last: their targets are all written by now.
    for (dst, target) in hardlinks {
        std::fs::hard_link(&target, &dst)
            .map_err(|e| format!("cannot write {}: {e}", dst.display()))?;
    }
    // One flush of the whole filesystem instead of an fsync per file: everything staged
    // is on disk before any of it is moved into place.
    if !flush(&staged_dir) {
        let e = std::io::Error::last_os_error();
        return Err(format!("cannot flush {} to disk: {e}", staging.display()));
    }
    Ok(())
}

/// `syncfs` on the filesystem holding `dir`: whether it worked.
fn flush(dir: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs on a descriptor we hold open; no memory is shared with the kernel.
    unsafe { libc::syncfs(dir.as_raw_fd()) == 0 }
}

/// Read the archive, creating directories and symlinks, writing big files, handing small
/// ones to `jobs`: the hardlinks to make once all files are written.
fn read_entries(
    archive: &Path,
    manifest: Option<&Manifest>,
    listed: Option<&HashSet<PathBuf>>,
    planned: &[Planned],
    staging: &Path,
    jobs: std::sync::mpsc::SyncSender<Job>,
) -> Result<Vec<(PathBuf, PathBuf)>, String> {
    let expected: BTreeMap<&str, &FileEntry> = manifest
        .map(|m| m.files.iter().map(|f| (f.path.as_str(), f)).collect())
        .unwrap_or_default();
    let reader = open(archive)?;
    let mut tar = tar::Archive::new(reader);
    let damaged = |e: std::io::Error| format!("{} is damaged or truncated: {e}", archive.display());
    let mut next = planned.iter().peekable();
    let by_path: HashMap<&Path, &Planned> = planned.iter().map(|p| (p.path.as_path(), p)).collect();
    let mut seen = 0;
    let mut made: HashSet<PathBuf> = HashSet::new();
    let mut hardlinks = Vec::new();
    for (index, entry) in tar.entries().map_err(damaged)?.enumerate() {
        let mut entry = entry.map_err(damaged)?;
        let p = match listed {
            None => next.next_if(|p| p.index == index),
            Some(listed) => {
                let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                match relative(&raw) {
                    Ok(None) => None,
                    Ok(Some(path)) if listed.contains(&path) => {
                        let p = by_path.get(path.as_path()).copied();
                        if let Some(p) = p
                            && !same_kind(p, &entry)
                        {
                            return Err(format!(
                                "{raw}: not what the manifest lists; nothing restored"
                            ));
                        }
                        p
                    }
                    _ => {
                        return Err(format!(
                            "{raw}: in the archive but not in the manifest; nothing restored"
                        ));
                    }
                }
            }
        };
        let Some(p) = p else {
            continue;
        };
        seen += 1;
        let dst = staging.join(&p.path);
        let failed = |e: std::io::Error| format!("cannot write {}: {e}", dst.display());
        // Parents are created once, not tried again for every file in them.
        if let Some(parent) = p.path.parent()
            && !made.contains(parent)
        {
            std::fs::create_dir_all(staging.join(parent)).map_err(failed)?;
            made.extend(parent.ancestors().map(Path::to_path_buf));
        }
        match &p.kind {
            Kind::Dir { .. } => {
                std::fs::create_dir_all(&dst).map_err(failed)?;
                made.insert(p.path.clone());
            }
            Kind::Symlink(target) => std::os::unix::fs::symlink(target, &dst).map_err(failed)?,
            Kind::Hardlink(target) => hardlinks.push((dst.clone(), staging.join(target))),
            Kind::File { mode, mtime } => {
                let member = p.path.to_string_lossy().into_owned();
                let size = entry.size();
                let mut hashing = HashingReader::new(&mut entry);
                if size <= SMALL {
                    let mut data = Vec::with_capacity(size as usize);
                    hashing
                        .read_to_end(&mut data)
                        .map_err(|e| format!("cannot restore {member}: {e}"))?;
                    check_against(&expected, &member, hashing.finish())?;
                    let job = Job {
                        dst: dst.clone(),
                        data,
                        mode: *mode,
                        mtime: *mtime,
                    };
                    if jobs.send(job).is_err() {
                        return Err(failed(std::io::Error::other("the writers stopped")));
                    }
                } else {
                    write_file(&dst, &mut hashing, *mode, *mtime)?;
                    check_against(&expected, &member, hashing.finish())?;
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
    Ok(hardlinks)
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
                    .is_some_and(|b| Path::new(String::from_utf8_lossy(&b).as_ref()) == target)
        }
        Kind::Hardlink(_) => kind == tar::EntryType::Link,
    }
}

/// A file as read from the archive (length and SHA-256) against its manifest entry.
fn check_against(
    expected: &BTreeMap<&str, &FileEntry>,
    member: &str,
    (size, sha256): (u64, String),
) -> Result<(), String> {
    match expected.get(member) {
        Some(want) if want.size != size || want.sha256 != sha256 => Err(format!(
            "{member}: does not match the manifest (size or SHA-256); nothing restored"
        )),
        _ => Ok(()),
    }
}

/// Create `dst` (replacing an earlier entry of the same path, as GNU tar does) with what
/// `data` holds, then its mode and mtime.
fn write_file(dst: &Path, data: &mut impl Read, mode: u32, mtime: u64) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("cannot write {}: {e}", dst.display());
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dst)
    };
    let mut out = match create() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(dst).map_err(failed)?;
            create()
        }
        other => other,
    }
    .map_err(failed)?;
    std::io::copy(data, &mut out).map_err(failed)?;
    use std::os::unix::fs::PermissionsExt;
    out.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(failed)?;
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
    out.set_modified(when).map_err(failed)
}

/// Move everything staged into `to`: the whole staging directory when `to` does not exist
/// yet, else entry by entry (each a rename), then directories' modes and times.
fn move_into_place(staging: &Path, to: &Path, planned: &[Planned]) -> Result<(), String> {
    let fresh = std::fs::symlink_metadata(to).is_err();
    let moved = |from: &Path, into: &Path, e: std::io::Error| {
        format!("cannot move {} to {}: {e}", from.display(), into.display())
    };
    if fresh {
        // Dumps stay staged: move the rest, leaving the staging directory for them.
        let has_dumps = planned.iter().any(|p| p.dump);
        if !has_dumps {
            set_dir_metadata(staging, planned);
            std::fs::rename(staging, to).map_err(|e| moved(staging, to, e))?;
            crate::fsutil::sync_dir(to);
            return Ok(());
        }
        std::fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    }
    for p in planned.iter().filter(|p| !p.dump) {
        let from = staging.join(&p.path);
        let into = to.join(&p.path);
        match p.kind {
            Kind::Dir { .. } => {
                std::fs::create_dir_all(&into)
                    .map_err(|e| format!("cannot create {}: {e}", into.display()))?;
            }
            _ => {
                if let Some(parent) = into.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
                }
                std::fs::rename(&from, &into).map_err(|e| moved(&from, &into, e))?;
            }
        }
    }
    set_dir_metadata(to, planned);
    crate::fsutil::sync_dir(to);
    Ok(())
}

/// Directories get their modes and times last, deepest first (writing into one changes
/// its mtime).
fn set_dir_metadata(root: &Path, planned: &[Planned]) {
    use std::os::unix::fs::PermissionsExt;
    for p in planned.iter().rev() {
        if let Kind::Dir { mode, mtime } = p.kind {
            let dir = root.join(&p.path);
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode));
            set_mtime(&dir, mtime);
        }
    }
}

fn set_mtime(path: &Path, mtime: u64) {
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
    if let Ok(dir) = std::fs::File::open(path) {
        let _ = dir.set_modified(when);
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
        assert_eq!(relative("./app/x").unwrap(), Some(PathBuf::from("app/x")));
        assert_eq!(relative("./").unwrap(), None);
        assert!(relative("../etc/passwd").is_err());
        assert!(relative("app/../../x").is_err());
        assert!(relative("/etc/passwd").is_err());
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
