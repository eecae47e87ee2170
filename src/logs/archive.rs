//! `logs archive`: a set's rotated files older than `archive_after` go into one dated tar
//! archive per run (gzip or zstd, as the set compresses), which is read back and checked
//! against the originals (size and SHA-256 of every member) before any original is deleted.
//! The live files are never archived. The archive is written under a temporary name,
//! finished and fsynced with every error checked, read back, and only then renamed to its
//! final name (never over an existing file): a full disk leaves no archive at all, never a
//! corrupt one. Members are opened without following links; a rotated name that is a
//! symlink or not a regular file is refused. The archive gets the narrowest mode of its
//! members (0600 if any of them is 0600), whatever the umask.

use super::Error;
use super::set::{Compression, LogSet};
use crate::codec::{Codec, Encoder, Threads};
use crate::digest::{HashingReader, sha256_of};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, serde::Serialize)]
pub struct Outcome {
    pub archive: Option<String>,
    pub files: Vec<String>,
    pub bytes: u64,
    pub errors: Vec<String>,
}

/// The files of `set` to archive at `now`: rotated files last modified before the cutoff.
pub fn candidates(
    set: &LogSet,
    older_than: std::time::Duration,
    now: jiff::Timestamp,
) -> Result<Vec<PathBuf>, Error> {
    let cutoff = now.as_second() - older_than.as_secs() as i64;
    let mut found = Vec::new();
    for file in set.files()? {
        for rotated in set.rotated(&file) {
            let meta = match super::safe::check_log(&rotated) {
                Ok(Ok(meta)) => meta,
                Ok(Err(refused)) => return Err(refused.then("; nothing archived")),
                Err(e) => return Err(Error::io("read", &rotated, e)),
            };
            super::safe::check_dir(super::safe::parent(&rotated))?;
            if meta.mtime() < cutoff {
                found.push(rotated);
            }
        }
    }
    Ok(found)
}

/// Archive `files` into `dir/NAME-YYYYMMDD-HHMMSS.tar.gz|zst`, verify, then delete them.
pub fn archive(
    name: &str,
    set: &LogSet,
    files: &[PathBuf],
    dir: &Path,
    now: jiff::Timestamp,
) -> Outcome {
    let mut out = Outcome::default();
    if files.is_empty() {
        return out;
    }
    let codec = match set.compress {
        Compression::Zstd => Codec::Zstd,
        _ => Codec::Gzip,
    };
    let stamp = jiff::tz::TimeZone::system()
        .to_datetime(now)
        .strftime("%Y%m%d-%H%M%S")
        .to_string();
    let target = dir.join(format!("{name}-{stamp}.tar{}", codec.extension()));
    if let Err(e) = super::safe::check_dir(dir) {
        out.errors.push(e.to_string());
        return out;
    }
    // Written and verified under TARGET.opsbook-tmp, never renamed over a name in the way.
    let how = crate::fsutil::Publish::keeping().writer_syncs();
    let written = crate::fsutil::publish(&target, &how, |temp: &Path| {
        let sums = write(files, temp, codec)?;
        verify(temp, codec, &sums)?;
        Ok(sums)
    });
    let sums = match written.map_err(super::compress::published) {
        Ok(sums) => sums,
        Err(e) => {
            out.errors.push(format!("{e}; the originals are kept"));
            return out;
        }
    };
    out.archive = Some(target.display().to_string());
    for (path, (size, _)) in files.iter().zip(&sums) {
        match std::fs::remove_file(path) {
            Ok(()) => {
                out.files.push(path.display().to_string());
                out.bytes += size;
            }
            Err(e) => out
                .errors
                .push(format!("cannot delete {}: {e}", path.display())),
        }
    }
    crate::logging::audit::record(
        "logs.archive",
        if out.errors.is_empty() {
            "ok"
        } else {
            "partial"
        },
        Some(&format!(
            "{} into {}",
            crate::plural::count(out.files.len(), "file", "files"),
            target.display()
        )),
    );
    out
}

/// The member name of `path`: its file name (the archive is per set, names are unique).
fn member(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Write the tar stream through the compressor; each file's size and SHA-256.
fn write(files: &[PathBuf], temp: &Path, codec: Codec) -> Result<Vec<(u64, String)>, Error> {
    let failed = |e: std::io::Error| Error::io("write", temp, e);
    let mut metas = Vec::new();
    for path in files {
        let file =
            super::safe::open_nofollow(path, false).map_err(|e| Error::io("read", path, e))?;
        let meta = file.metadata().map_err(|e| Error::io("read", path, e))?;
        if !meta.is_file() {
            return Err(Error::Refused(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        metas.push((file, meta));
    }
    // The narrowest mode of the members: an archive never widens who can read a log.
    let mode = metas
        .iter()
        .fold(0o666, |mode, (_, meta)| mode & meta.mode())
        & 0o666;
    // `publish` removed a temporary left by a crashed run.
    let out = super::safe::create_new(temp, mode, None).map_err(failed)?;
    let out = std::io::BufWriter::with_capacity(256 * 1024, out);
    let encoder = Encoder::new(codec, out, Threads::One).map_err(failed)?;
    let mut builder = tar::Builder::new(encoder);
    let mut sums = Vec::new();
    for (path, (file, meta)) in files.iter().zip(metas) {
        let mut header = tar::Header::new_gnu();
        header.set_metadata(&meta);
        let mut hashing = HashingReader::new(file);
        builder
            .append_data(&mut header, member(path), &mut hashing)
            .map_err(|error| Error::AddToArchive {
                path: path.clone(),
                error,
            })?;
        if hashing.len() != meta.len() {
            return Err(Error::Damaged(format!(
                "{} changed while it was archived",
                path.display()
            )));
        }
        sums.push(hashing.finish());
    }
    // End the stream, flush every buffer and fsync: any error (a full disk) is seen.
    let out = builder
        .into_inner()
        .and_then(Encoder::finish)
        .map_err(failed)?;
    let file = out.into_inner().map_err(|e| failed(e.into_error()))?;
    file.sync_all().map_err(failed)?;
    Ok(sums)
}

/// Read the archive back: every member present, in order, with its size and SHA-256.
fn verify(archive: &Path, codec: Codec, sums: &[(u64, String)]) -> Result<(), Error> {
    let unreadable = |e: std::io::Error| Error::io("read back", archive, e);
    let damaged =
        |e: std::io::Error| Error::Damaged(format!("{} is damaged: {e}", archive.display()));
    let file = std::fs::File::open(archive).map_err(unreadable)?;
    let reader = crate::codec::decoder(codec, std::io::BufReader::with_capacity(1 << 20, file))
        .map_err(unreadable)?;
    let mut tar = tar::Archive::new(reader);
    let entries = tar.entries().map_err(unreadable)?;
    let mut seen = 0;
    for (entry, (size, sum)) in entries.zip(sums) {
        let mut entry = entry.map_err(damaged)?;
        let (len, digest) = sha256_of(&mut entry).map_err(damaged)?;
        if len != *size || &digest != sum {
            return Err(Error::Damaged(format!(
                "{} does not match its original",
                archive.display()
            )));
        }
        seen += 1;
    }
    if seen != sums.len() {
        return Err(Error::Damaged(format!(
            "{} holds {seen} of {}",
            archive.display(),
            crate::plural::count(sums.len(), "file", "files")
        )));
    }
    Ok(())
}
