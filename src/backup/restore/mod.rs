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

use super::{Error, FileEntry, Manifest};
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
pub fn open(path: &Path) -> Result<Box<dyn Read>, Error> {
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        match file.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => {
                return Err(Error::Failed(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        }
    }
    let head = std::io::Cursor::new(magic[..got].to_vec());
    let reader = std::io::BufReader::with_capacity(1 << 20, head.chain(file));
    match crate::codec::Codec::sniff(&magic[..got]) {
        Some(codec) => crate::codec::decoder(codec, reader)
            .map(|r| r as Box<dyn Read>)
            .map_err(|e| Error::Failed(format!("cannot read {}: {e}", path.display()))),
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
) -> Result<Outcome, Error> {
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
        switch::switch(&target, &staging, &planned.entries)
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

mod at;
mod check;
mod stage;
mod switch;

use check::*;
use stage::*;

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
