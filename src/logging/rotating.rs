//! A log file that rotates itself by size: `app.log` → `app.log.1` … `app.log.N`,
//! oldest dropped. Every write is masked for secrets first, then lands as one whole line
//! or not at all; the file is never opened through a link and is created mode 0640.

use crate::{fsutil, redact};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub struct RotatingFile {
    path: PathBuf,
    file: File,
    written: u64,
    max_bytes: u64,
    keep: u32,
}

impl RotatingFile {
    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> io::Result<Self> {
        let file = open(path)?;
        let written = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            file,
            written,
            max_bytes,
            keep,
        })
    }

    /// The same numbered rotation as `logs rotate` (uncompressed: these files are small
    /// and read with plain tools).
    fn rotate(&mut self) -> io::Result<()> {
        if self.keep == 0 {
            std::fs::remove_file(&self.path).or_else(ignore_missing)?;
        } else {
            // The shift deletes `.keep` and moves the rest up; then the live file is `.1`.
            crate::fsutil::shift_numbered(&self.path, self.keep as usize, false, &mut |_| {})
                .map_err(io::Error::other)?;
            std::fs::rename(&self.path, crate::fsutil::numbered(&self.path, 1))?;
        }
        self.file = open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

fn open(path: &Path) -> io::Result<File> {
    fsutil::open_nofollow_append(path, fsutil::LOG_FILE).map_err(io::Error::other)
}

fn ignore_missing(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.max_bytes > 0
            && self.written > 0
            && self.written + buf.len() as u64 > self.max_bytes
        {
            self.rotate()?;
        }
        let text = String::from_utf8_lossy(buf);
        let masked = redact::mask(&text);
        fsutil::append_whole(&mut self.file, masked.as_bytes())?;
        self.written += masked.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_at_size_and_keeps_n() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("application.log");
        let mut log = RotatingFile::open(&path, 10, 2).unwrap();
        for line in ["aaaaaaaa\n", "bbbbbbbb\n", "cccccccc\n", "dddddddd\n"] {
            log.write_all(line.as_bytes()).unwrap();
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(&path), "dddddddd\n");
        assert_eq!(read(&dir.path().join("application.log.1")), "cccccccc\n");
        assert_eq!(read(&dir.path().join("application.log.2")), "bbbbbbbb\n");
        assert!(!dir.path().join("application.log.3").exists());
    }
}
