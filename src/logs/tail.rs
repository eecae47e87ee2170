//! `logs tail [-f]`: the last lines of a log, then (with `-f`) new lines as they come,
//! following the file across rotations like `tail -F`: when the path names a new file
//! (rename + create) or the file shrinks (copytruncate), reading starts over on it. A
//! renamed file is first read to its end (what the writer appended just before the rename
//! is shown), as GNU `tail -F` does.

use super::line;
use crate::values::Level;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(200);

fn wanted(text: &str, level: Option<Level>) -> bool {
    level.is_none_or(|min| line::level(text).is_some_and(|l| l >= min))
}

/// Where following starts: the file the last lines came from, and how far it was read.
pub struct Position {
    file: std::fs::File,
    offset: u64,
}

/// The last `n` wanted lines of `path`, read with bounded memory, and the file with how far
/// it was read (where following it starts: the same file, even if the path was renamed
/// meanwhile, so nothing appended or rotated in between is skipped).
pub fn last_lines(
    path: &Path,
    n: usize,
    level: Option<Level>,
) -> Result<(Vec<String>, Position), super::Error> {
    let file = std::fs::File::open(path).map_err(|e| super::Error::io("read", path, e))?;
    let mut ring = std::collections::VecDeque::with_capacity(n);
    let mut reader = BufReader::new(file);
    let mut offset = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let read = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| super::Error::io("read", path, e))?;
        // A last line without its newline yet is left for the follower to finish.
        if read == 0 || buf.last() != Some(&b'\n') {
            let mut file = reader.into_inner();
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| super::Error::io("read", path, e))?;
            return Ok((ring.into(), Position { file, offset }));
        }
        offset += read as u64;
        let text = String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned();
        if wanted(&text, level) {
            if ring.len() == n {
                ring.pop_front();
            }
            ring.push_back(text);
        }
    }
}

/// Follow `path` from `from`, calling `emit` for each wanted new line, until `stop()`
/// says so. A rotated or truncated file is followed onto its successor.
pub fn follow(
    path: &Path,
    from: Position,
    level: Option<Level>,
    emit: &mut dyn FnMut(&str),
    stop: &dyn Fn() -> bool,
) -> Result<(), super::Error> {
    let open = |pos: u64| -> Option<(std::fs::File, u64, u64)> {
        let mut file = std::fs::File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        let pos = pos.min(meta.len());
        file.seek(SeekFrom::Start(pos)).ok()?;
        Some((file, meta.ino(), pos))
    };
    let mut current = from
        .file
        .metadata()
        .ok()
        .map(|meta| (from.file, meta.ino(), from.offset));
    let mut pending = Vec::new();
    let mut lines = |chunk: &[u8], pending: &mut Vec<u8>, flush: bool| {
        pending.extend_from_slice(chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let text = String::from_utf8_lossy(&pending[..end]).into_owned();
            pending.drain(..=end);
            if wanted(&text, level) {
                emit(&text);
            }
        }
        // The old file's last line without its newline: shown before the new file's.
        if flush && !pending.is_empty() {
            let text = String::from_utf8_lossy(pending).into_owned();
            pending.clear();
            if wanted(&text, level) {
                emit(&text);
            }
        }
    };
    while !stop() {
        let Some((file, inode, pos)) = current.as_mut() else {
            std::thread::sleep(POLL);
            current = open(0);
            continue;
        };
        let mut chunk = Vec::new();
        let n = file
            .read_to_end(&mut chunk)
            .map_err(|e| super::Error::io("read", path, e))?;
        *pos += n as u64;
        lines(&chunk, &mut pending, false);
        if n > 0 {
            continue;
        }
        std::thread::sleep(POLL);
        match std::fs::metadata(path) {
            // Renamed away and recreated: drain the old file to its end, then start on the
            // new one.
            Ok(meta) if meta.ino() != *inode => {
                let mut rest = Vec::new();
                let _ = file.read_to_end(&mut rest);
                lines(&rest, &mut pending, true);
                current = open(0);
            }
            // Truncated in place (copytruncate): read it from the start.
            Ok(meta) if meta.len() < *pos => {
                let _ = file.seek(SeekFrom::Start(0));
                *pos = 0;
            }
            Ok(_) => {}
            Err(_) => {
                let mut rest = Vec::new();
                let _ = file.read_to_end(&mut rest);
                lines(&rest, &mut pending, true);
                current = None;
            }
        }
    }
    Ok(())
}
