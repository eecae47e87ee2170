//! Writing a backup (tar through zstd or gzip, hashing every file on the way) and checking
//! one against its manifest by streaming the archive, without extracting it.

use super::{BackupSet, Codec, FileEntry, Manifest};
use crate::digest::{HashingReader, sha256_of};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Make backup `id` of `set` in the directory `dest`; visible (renamed from `ID.partial`)
/// only when complete.
pub fn create(
    name: &str,
    set: &BackupSet,
    dest: &Path,
    id: &str,
    now: jiff::Timestamp,
    progress: &dyn Fn(u64),
) -> Result<Manifest, String> {
    let partial = dest.join(format!("{id}.partial"));
    std::fs::create_dir_all(&partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    let result = write_backup(name, set, id, &partial, now, progress);
    let manifest = match result {
        Ok(manifest) => manifest,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    let done = dest.join(id);
    std::fs::rename(&partial, &done).map_err(|e| {
        format!(
            "cannot rename {} to {}: {e}",
            partial.display(),
            done.display()
        )
    })?;
    crate::fsutil::sync_dir(&done);
    Ok(manifest)
}

fn write_backup(
    name: &str,
    set: &BackupSet,
    id: &str,
    partial: &Path,
    now: jiff::Timestamp,
    progress: &dyn Fn(u64),
) -> Result<Manifest, String> {
    let excluded = globs(&set.exclude, "exclude")?;
    let archive_path = partial.join(set.compress.file_name());
    let failed = |e: std::io::Error| format!("cannot write {}: {e}", archive_path.display());
    let out = std::fs::File::create(&archive_path).map_err(failed)?;
    let out = std::io::BufWriter::with_capacity(1 << 20, out);
    let encoder: Box<dyn Write> = match set.compress {
        Codec::Zstd => {
            let mut e = zstd::stream::write::Encoder::new(out, 3).map_err(failed)?;
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
            let _ = e.multithread(threads);
            let _ = e.include_checksum(true);
            Box::new(e.auto_finish())
        }
        Codec::Gzip => Box::new(flate2::write::GzEncoder::new(
            out,
            flate2::Compression::new(6),
        )),
    };
    let mut tar = tar::Builder::new(encoder);
    tar.follow_symlinks(false);
    let mut files = Vec::new();
    if set.paths.is_empty() && set.command.0.is_empty() {
        return Err("the set has neither `paths` nor `command`: nothing to back up".to_string());
    }
    // Command sources first: a failing one fails the backup before the long part.
    let mut command_entries = Vec::new();
    for source in &set.command.0 {
        let dump = partial.join(format!(".{}.dump", source.file));
        let out = std::fs::File::create(&dump)
            .map_err(|e| format!("cannot create {}: {e}", dump.display()))?;
        let status = super::commands::run(
            &source.run,
            source.shell,
            std::process::Stdio::null(),
            std::process::Stdio::from(out),
            None,
        )
        .map_err(|e| format!("command source {}: {e}", source.file))?;
        let entry = add_file(&mut tar, &dump, &source.member(), progress)?;
        let _ = std::fs::remove_file(&dump);
        command_entries.push(super::commands::CommandEntry {
            file: source.file.clone(),
            path: entry.path.clone(),
            command: source.run.shown().to_string(),
            exit_status: status,
            size: entry.size,
            sha256: entry.sha256.clone(),
        });
        files.push(entry);
    }
    let mut others = Vec::new();
    walk(set, &excluded, |path, member, kind| {
        if kind.is_file() {
            files.push(add_file(&mut tar, path, member, progress)?);
        } else if kind.is_dir() || kind.is_symlink() {
            let failed = |e: std::io::Error| format!("cannot add {}: {e}", path.display());
            let meta = std::fs::symlink_metadata(path).map_err(failed)?;
            let target = if kind.is_symlink() {
                let target = std::fs::read_link(path).map_err(failed)?;
                Some(target.to_string_lossy().into_owned())
            } else {
                None
            };
            tar.append_path_with_name(path, member).map_err(failed)?;
            others.push(super::OtherEntry {
                path: member.to_string(),
                path_hex: None,
                target,
                target_hex: None,
                mode: meta.mode() & 0o7777,
                mtime: meta.mtime(),
            });
        }
        // Sockets, fifos and devices are not backed up.
        Ok(())
    })?;
    let encoder = tar.into_inner().map_err(failed)?;
    drop(encoder); // finishes the compressed stream
    let archive = std::fs::File::open(&archive_path).map_err(failed)?;
    archive.sync_all().map_err(failed)?;
    let archive_bytes = archive.metadata().map_err(failed)?.len();
    let manifest = Manifest {
        id: id.to_string(),
        set: name.to_string(),
        created: now.to_string(),
        host: hostname(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        compression: set.compress,
        archive: set.compress.file_name().to_string(),
        archive_bytes,
        files,
        commands: command_entries,
        others,
        listing: true,
    };
    // Data first, manifest last: a backup without a manifest is not a backup.
    let text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    crate::fsutil::write_atomically(&partial.join("manifest.json"), text.as_bytes())?;
    Ok(manifest)
}

/// Visit everything `set` backs up, in order, excludes left out: each path, its name in
/// the archive and its type.
fn walk(
    set: &BackupSet,
    excluded: &globset::GlobSet,
    mut visit: impl FnMut(&Path, &str, std::fs::FileType) -> Result<(), String>,
) -> Result<(), String> {
    for root in &set.paths {
        let root_path = PathBuf::from(root.as_str());
        let meta = std::fs::symlink_metadata(&root_path)
            .map_err(|e| format!("cannot read {}: {e}", root.shown()))?;
        let base = root_path
            .file_name()
            .map_or_else(|| "root".to_string(), |n| n.to_string_lossy().into_owned());
        if meta.is_file() {
            visit(&root_path, &base, meta.file_type())?;
            continue;
        }
        let walker = walkdir::WalkDir::new(&root_path)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                let relative = e.path().strip_prefix(&root_path).unwrap_or(e.path());
                e.depth() == 0 || !(excluded.is_match(e.file_name()) || excluded.is_match(relative))
            });
        for entry in walker {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", root.shown()))?;
            let relative = entry
                .path()
                .strip_prefix(&root_path)
                .unwrap_or(entry.path());
            let member = if relative.as_os_str().is_empty() {
                base.clone()
            } else {
                format!("{base}/{}", relative.to_string_lossy())
            };
            visit(entry.path(), &member, entry.file_type())?;
        }
    }
    Ok(())
}

/// The bytes of the files `set` backs up (for a progress bar's total).
pub fn measure(set: &BackupSet) -> Result<u64, String> {
    let excluded = globs(&set.exclude, "exclude")?;
    let mut total = 0;
    walk(set, &excluded, |path, _, kind| {
        if kind.is_file() {
            total += std::fs::metadata(path).map_or(0, |m| m.len());
        }
        Ok(())
    })?;
    Ok(total)
}

/// A set of globs (`exclude`, `--include`); an invalid one is named with `what`.
pub fn globs(patterns: &[String], what: &str) -> Result<globset::GlobSet, String> {
    let mut builder = globset::GlobSetBuilder::new();
    for pattern in patterns {
        let glob = globset::Glob::new(pattern)
            .map_err(|e| format!("{what} {pattern:?} is not a valid glob: {e}"))?;
        builder.add(glob);
    }
    builder
        .build()
        .map_err(|e| format!("cannot use the exclude globs: {e}"))
}

/// Add a regular file, hashing it as it streams into the archive.
fn add_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    member: &str,
    progress: &dyn Fn(u64),
) -> Result<FileEntry, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut header = tar::Header::new_gnu();
    header.set_metadata(&meta);
    let mut reader = HashingReader::new(Reporting {
        inner: file,
        progress,
    });
    tar.append_data(&mut header, member, &mut reader)
        .map_err(|e| format!("cannot add {}: {e}", path.display()))?;
    let (size, sha256) = reader.finish();
    if size != meta.len() {
        return Err(format!("{} changed while it was backed up", path.display()));
    }
    Ok(FileEntry {
        path: member.to_string(),
        path_hex: None,
        size,
        mode: meta.mode() & 0o7777,
        mtime: meta.mtime(),
        sha256,
    })
}

/// A reader that reports how many bytes each read brought.
struct Reporting<'a, R> {
    inner: R,
    progress: &'a dyn Fn(u64),
}

impl<R: Read> Read for Reporting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Stream the archive of `manifest` in `dir` and compare every file with the manifest: the
/// problems found, each naming its file (empty when the backup checks out).
pub fn verify(dir: &Path, manifest: &Manifest) -> Vec<String> {
    let path = dir.join(&manifest.archive);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) => return vec![format!("cannot read {}: {e}", path.display())],
    };
    let reader: Box<dyn Read> = match manifest.compression {
        Codec::Zstd => match zstd::stream::read::Decoder::new(file) {
            Ok(d) => Box::new(d),
            Err(e) => return vec![format!("{} is damaged: {e}", path.display())],
        },
        Codec::Gzip => Box::new(flate2::read::GzDecoder::new(file)),
    };
    let mut expected: BTreeMap<&str, &FileEntry> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f))
        .collect();
    let mut problems = Vec::new();
    let mut archive = tar::Archive::new(reader);
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(e) => return vec![format!("{} is damaged: {e}", path.display())],
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                problems.push(format!("{} is damaged: {e}", path.display()));
                break;
            }
        };
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = match entry.path() {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(e) => {
                problems.push(format!("an entry has an unreadable name: {e}"));
                continue;
            }
        };
        let (len, digest) = match sha256_of(&mut entry) {
            Ok(found) => found,
            Err(e) => {
                problems.push(format!("{name}: cannot be read from the archive: {e}"));
                continue;
            }
        };
        match expected.remove(name.as_str()) {
            None => problems.push(format!("{name}: in the archive but not in the manifest")),
            Some(want) if want.size != len || want.sha256 != digest => {
                problems.push(format!(
                    "{name}: does not match the manifest (size or SHA-256)"
                ));
            }
            Some(_) => {}
        }
    }
    for missing in expected.keys() {
        problems.push(format!(
            "{missing}: in the manifest but missing from the archive"
        ));
    }
    problems
}
