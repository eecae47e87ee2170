//! Compression that never leaves a truncated file in place of an original: the compressed
//! copy is written under a temporary name, fsynced, renamed into place, then its cached
//! pages are dropped and it is read back in full from the device, its SHA-256 compared
//! with what was written, before the original is removed.
//! gzip's encoder is single-threaded, so a second thread also decodes the stream as it is
//! written (checking its CRC-32) and counts it against the original's length, on a core
//! that would otherwise idle. zstd's encoder already uses every core; decoding too would
//! cost ~40% more time, so its stream is checked by the read-back (and carries a frame
//! checksum any later `zstdcat` verifies). Memory stays bounded whatever the file size:
//! everything streams through 1 MiB buffers and a channel of at most `IN_FLIGHT` chunks.

use super::Error;
use super::set::Compression;
use crate::codec::{Codec, Encoder, Threads};
use crate::digest::Sha256;
use crate::fsutil::with_suffix;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

const BUFFER: usize = 1024 * 1024;
const IN_FLIGHT: usize = 16;

/// `app.log.1` → `app.log.1.gz`, verified; the original is removed once the copy checks out.
/// The copy is checked under its temporary name and only then renamed, never over an
/// existing file: a name in the way is reported and the original kept.
pub fn compress(src: &Path, compression: Compression) -> Result<PathBuf, Error> {
    let Some(codec) = compression.codec() else {
        return Ok(src.to_path_buf());
    };
    let dst = with_suffix(src, codec.extension());
    // Written, read back and checked under DST.opsbook-tmp, never renamed over a name in
    // the way.
    let how = crate::fsutil::Publish::keeping().writer_syncs();
    let written = crate::fsutil::publish(&dst, &how, |temp: &Path| {
        let written = write_compressed(src, temp, codec)?;
        let back = File::open(temp)
            .and_then(|file| {
                drop_cached_pages(&file);
                crate::digest::sha256_of(BufReader::with_capacity(BUFFER, file))
            })
            .map_err(|e| {
                Error::io("read back", temp, e).then(format!("; kept {}", src.display()))
            })?;
        if back != written {
            return Err(Error::Damaged(format!(
                "{} does not read back as written: kept {}",
                temp.display(),
                src.display()
            )));
        }
        super::safe::stop_at("compress-written");
        Ok(written)
    });
    written.map_err(|e| match e {
        crate::fsutil::PublishError::Place(crate::fsutil::Error::InTheWay { .. }) => {
            Error::Refused(format!(
                "{} is in the way (opsbook did not make it): kept it and {} uncompressed",
                dst.display(),
                src.display()
            ))
        }
        e => published(e),
    })?;
    super::safe::stop_at("compress-renamed");
    std::fs::remove_file(src).map_err(|e| Error::io("remove", src, e))?;
    crate::fsutil::sync_dir(src);
    Ok(dst)
}

/// A failed [`crate::fsutil::publish`] of a compressed file or an archive, as the log
/// library says it: the writer's own error, or the rename into place that failed.
pub(super) fn published(e: crate::fsutil::PublishError<Error>) -> Error {
    use crate::fsutil::{Error as Fs, PublishError};
    match e {
        PublishError::Write(e) => e,
        PublishError::Place(Fs::InTheWay { temp, target }) => Error::rename(
            &temp,
            &target,
            std::io::Error::from_raw_os_error(libc::EEXIST),
        ),
        PublishError::Place(Fs::Rename {
            temp,
            target,
            error,
        }) => Error::rename(&temp, &target, error),
        PublishError::Place(Fs::Io { path, error, .. }) => Error::io("write", &path, error),
        PublishError::Place(e) => Error::Refused(e.to_string()),
    }
}

/// Whether `compressed` decodes to exactly the bytes of `plain` (an interrupted
/// compression: the copy was renamed into place but the original not yet removed).
pub fn holds(compressed: &Path, plain: &Path) -> Result<bool, Error> {
    let read = |path: &Path, reader: Result<Box<dyn Read + Send>, Error>| {
        reader.and_then(|r| crate::digest::sha256_of(r).map_err(|e| Error::io("read", path, e)))
    };
    let plain_sum = read(
        plain,
        super::safe::open_nofollow(plain, false)
            .map(|f| Box::new(f) as Box<dyn Read + Send>)
            .map_err(|e| Error::io("read", plain, e)),
    )?;
    // A stray that does not decode at all does not hold it.
    match read(compressed, open(compressed)) {
        Ok(sum) => Ok(sum == plain_sum),
        Err(_) => Ok(false),
    }
}

/// Compress `src` into `temp` and fsync it: the compressed length and SHA-256, once the
/// decoder thread has read the whole stream back to the original's length.
fn write_compressed(src: &Path, temp: &Path, codec: Codec) -> Result<(u64, String), Error> {
    use std::os::unix::fs::MetadataExt;
    let input = super::safe::open_nofollow(src, false).map_err(|e| Error::io("read", src, e))?;
    let meta = input.metadata().map_err(|e| Error::io("read", src, e))?;
    if !meta.is_file() {
        return Err(Error::Refused(format!(
            "{} is not a regular file: not compressed",
            src.display()
        )));
    }
    // `publish` removed a temporary left by a crashed run (the set's lock says no one else
    // is writing it).
    // The compressed file keeps the original's mode and owner, whatever the umask.
    let out = super::safe::create_new(temp, meta.mode() & 0o7777, Some((meta.uid(), meta.gid())))
        .map_err(|e| Error::io("create", temp, e))?;
    let failed = |e: std::io::Error| Error::io("write", temp, e);
    let (sender, decoder) = if codec == Codec::Gzip {
        let (sender, receiver) = sync_channel(IN_FLIGHT);
        let decoder = std::thread::spawn(move || decoded_len(codec, receiver));
        (Some(sender), Some(decoder))
    } else {
        (None, None)
    };
    let tee = Tee {
        out: BufWriter::with_capacity(BUFFER, out),
        hasher: Sha256::new(),
        len: 0,
        check: sender,
    };
    let encoded = Encoder::new(codec, tee, Threads::All)
        .map_err(failed)
        .and_then(|mut encoder| {
            let len = pump(input, &mut encoder, src)?;
            Ok((len, encoder.finish().map_err(failed)?))
        });
    // Dropping the sender, here or with the tee on failure, ends the decoder's input.
    let (len, tee) = encoded?;
    let Tee {
        out,
        hasher,
        len: compressed,
        check,
    } = tee;
    drop(check);
    let file = out.into_inner().map_err(|e| failed(e.into_error()))?;
    file.sync_all().map_err(failed)?;
    let Some(decoder) = decoder else {
        return Ok((compressed, crate::digest::hex(&hasher.finalize())));
    };
    let decoded = decoder
        .join()
        .map_err(|_| Error::Damaged(format!("the check of {} stopped", temp.display())))?
        .map_err(|e| Error::Damaged(format!("{} does not decode: {e}", temp.display())))?;
    if decoded != len {
        return Err(Error::Damaged(format!(
            "{} decodes to {decoded} bytes, not {len}: kept {}",
            temp.display(),
            src.display()
        )));
    }
    Ok((compressed, crate::digest::hex(&hasher.finalize())))
}

/// Ask the kernel to forget `file`'s cached pages (it was fsynced), so that reading it back
/// reads what the device holds, not what the page cache still remembers.
fn drop_cached_pages(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain advisory call on a file descriptor this function borrows; it reads
    // and writes no memory of ours.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

/// Writes to the file, hashing the bytes and handing a copy to the decoder thread.
struct Tee<W: Write> {
    out: W,
    hasher: Sha256,
    len: u64,
    check: Option<SyncSender<Vec<u8>>>,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        // A decoder that stopped early reports why when joined.
        if let Some(check) = &self.check
            && check.send(buf[..n].to_vec()).is_err()
        {
            self.check = None;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The decoder thread: how many bytes the stream arriving on `chunks` decodes to.
fn decoded_len(codec: Codec, chunks: Receiver<Vec<u8>>) -> std::io::Result<u64> {
    let chunks = Chunks {
        receiver: chunks,
        chunk: Vec::new(),
        at: 0,
    };
    let mut decoder = crate::codec::decoder(codec, BufReader::new(chunks))?;
    std::io::copy(&mut decoder, &mut std::io::sink())
}

/// The chunks a channel carries, read as one stream; it ends when the sender is dropped.
struct Chunks {
    receiver: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.receiver.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Copy `input` into `out`; the bytes copied.
fn pump(input: File, out: &mut impl Write, src: &Path) -> Result<u64, Error> {
    let mut reader = BufReader::with_capacity(BUFFER, input);
    let mut buf = vec![0u8; BUFFER];
    let mut len = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| Error::io("read", src, e))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])
            .map_err(|e| Error::io("write the compressed copy of", src, e))?;
        len += n as u64;
    }
    Ok(len)
}

/// A reader of a log file, decompressing `.gz` and `.zst` transparently. Callers read in
/// large blocks, so a plain file comes unbuffered (a buffer would only add a copy).
pub fn open(path: &Path) -> Result<Box<dyn Read + Send>, Error> {
    let file = File::open(path).map_err(|e| Error::io("read", path, e))?;
    match Codec::of_name(path) {
        Some(codec) => crate::codec::decoder(codec, BufReader::with_capacity(BUFFER, file))
            .map_err(|e| Error::io("read", path, e)),
        None => Ok(Box::new(file)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compresses_verifies_and_removes_the_original() {
        let dir = tempfile::tempdir().unwrap();
        for codec in [Compression::Gzip, Compression::Zstd] {
            let src = dir.path().join(format!("app.log.{codec:?}"));
            let text = "2025-01-15 10:30:00,123 - app - ERROR - boom\n".repeat(5000);
            std::fs::write(&src, &text).unwrap();
            let dst = compress(&src, codec).unwrap();
            assert!(!src.exists());
            let mut back = String::new();
            open(&dst).unwrap().read_to_string(&mut back).unwrap();
            assert_eq!(back, text);
            assert!(!with_suffix(&dst, ".opsbook-tmp").exists());
        }
    }

    #[test]
    fn a_temporary_left_by_a_crash_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("app.log.1");
        std::fs::write(&src, "data\n").unwrap();
        let leftover = with_suffix(&with_suffix(&src, ".gz"), ".opsbook-tmp");
        std::fs::write(&leftover, "junk").unwrap();
        let dst = compress(&src, Compression::Gzip).unwrap();
        assert!(!leftover.exists());
        let mut back = String::new();
        open(&dst).unwrap().read_to_string(&mut back).unwrap();
        assert_eq!(back, "data\n");
    }
}
