//! Compression that never leaves a truncated file in place of an original: the compressed
//! copy is written under a temporary name, fsynced, renamed into place, then read back in
//! full — gzip's CRC-32 and zstd's frame checksum are checked by the decoders — and its
//! length compared with the original's before the original is removed.
//! Memory stays bounded whatever the file size: everything streams through 1 MiB buffers.

use super::set::Compression;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

const BUFFER: usize = 1024 * 1024;

/// `app.log.1` → `app.log.1.gz`, verified; the original is removed once the copy checks out.
pub fn compress(src: &Path, codec: Compression) -> Result<PathBuf, String> {
    let dst = with_suffix(src, codec.extension());
    if codec == Compression::None {
        return Ok(src.to_path_buf());
    }
    let temp = with_suffix(&dst, ".opsbook-tmp");
    let written = write_compressed(src, &temp, codec).and_then(|len| {
        std::fs::rename(&temp, &dst)
            .map_err(|e| format!("cannot rename {} to {}: {e}", temp.display(), dst.display()))?;
        crate::fsutil::sync_dir(&dst);
        Ok(len)
    });
    let len = match written {
        Ok(len) => len,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    match decompressed_len(&dst) {
        Ok(back_len) if back_len == len => {}
        Ok(_) => {
            let _ = std::fs::remove_file(&dst);
            return Err(format!(
                "{} does not read back as {}: kept the original",
                dst.display(),
                src.display()
            ));
        }
        Err(e) => {
            let _ = std::fs::remove_file(&dst);
            return Err(format!("{e}: kept the original"));
        }
    }
    std::fs::remove_file(src).map_err(|e| format!("cannot remove {}: {e}", src.display()))?;
    Ok(dst)
}

fn write_compressed(src: &Path, temp: &Path, codec: Compression) -> Result<u64, String> {
    let input = File::open(src).map_err(|e| format!("cannot read {}: {e}", src.display()))?;
    // A temporary left by a crashed run (the set's lock says no one else is writing it).
    let _ = std::fs::remove_file(temp);
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temp)
        .map_err(|e| format!("cannot create {}: {e}", temp.display()))?;
    if let Ok(meta) = input.metadata() {
        let _ = out.set_permissions(meta.permissions());
    }
    let failed = |e: std::io::Error| format!("cannot write {}: {e}", temp.display());
    let out = BufWriter::with_capacity(BUFFER, out);
    let (len, file) = match codec {
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::new(6));
            let len = pump(input, &mut encoder, src)?;
            (len, encoder.finish().map_err(failed)?)
        }
        Compression::Zstd => {
            let mut encoder = zstd::stream::write::Encoder::new(out, 3).map_err(failed)?;
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
            let _ = encoder.multithread(threads);
            let _ = encoder.include_checksum(true);
            let len = pump(input, &mut encoder, src)?;
            (len, encoder.finish().map_err(failed)?)
        }
        Compression::None => return Err("nothing to compress".to_string()),
    };
    let file = file.into_inner().map_err(|e| failed(e.into_error()))?;
    file.sync_all().map_err(failed)?;
    Ok(len)
}

/// Copy `input` into `out`; the bytes copied.
fn pump(input: File, out: &mut impl Write, src: &Path) -> Result<u64, String> {
    let mut reader = BufReader::with_capacity(BUFFER, input);
    let mut buf = vec![0u8; BUFFER];
    let mut len = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| format!("cannot read {}: {e}", src.display()))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])
            .map_err(|e| format!("cannot write the compressed copy of {}: {e}", src.display()))?;
        len += n as u64;
    }
    Ok(len)
}

/// How many bytes `path` holds once decompressed; the decoder checks the checksums.
pub fn decompressed_len(path: &Path) -> Result<u64, String> {
    let mut reader = open(path)?;
    let mut buf = vec![0u8; BUFFER];
    let mut len = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| format!("cannot read back {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        len += n as u64;
    }
    Ok(len)
}

/// A reader of a log file, decompressing `.gz` and `.zst` transparently.
pub fn open(path: &Path) -> Result<Box<dyn Read + Send>, String> {
    let file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let reader = BufReader::with_capacity(BUFFER, file);
    let name = path.to_string_lossy();
    Ok(if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else if name.ends_with(".zst") {
        Box::new(
            zstd::stream::read::Decoder::with_buffer(reader)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        )
    } else {
        Box::new(reader)
    })
}

pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
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
