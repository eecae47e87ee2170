//! The first pass of a restore: every entry's path and type, every link's target, and
//! what is already on disk checked, writing nothing; refused entries are reported.

use super::*;

pub(super) struct Checked {
    pub(super) entries: Vec<Planned>,
    pub(super) refused: Vec<String>,
}

/// Every entry to restore as (position, path as stored, kind), and the entries refused
/// for their type alone.
pub(super) type Listing = (Vec<(usize, PathBuf, Kind)>, Vec<String>);

/// The first pass over a hand-made archive (or a backup without a full listing): read
/// every entry, write nothing.
pub(super) fn listing_from_archive(archive: &Path) -> Result<Listing, Error> {
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
pub(super) fn listing_from_manifest(manifest: &Manifest) -> Listing {
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
pub(super) fn check(listing: Listing, dumps: &[String], options: &Options) -> Checked {
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
pub(super) fn relative(raw: &Path) -> Result<Option<PathBuf>, &'static str> {
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
pub(super) fn resolve(
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
pub(super) fn on_disk(to: &Path, path: &Path, kind: &Kind, force: bool) -> Option<String> {
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
