//! One idea, one file: the one-pass reading behind `logs summary`. What the seed's
//! `grep ERROR | sort | uniq -c` and its `grep "Performance:" | awk` average computed, and
//! more, in one pass: lines per level, the top
//! error messages with their variable parts masked (so the same error groups however its
//! numbers, ids and times differ), slow operations, per-operation latency percentiles from
//! `Performance: NAME took Nms` lines, and errors per hour.

use super::compress;
use super::format::LineFormat;
use super::line;
use super::search::Input;
use crate::values::Level;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Seek};
use std::sync::OnceLock;

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub files: usize,
    pub lines: u64,
    /// Lines per level, most severe first.
    pub levels: serde_json::Map<String, serde_json::Value>,
    pub top_errors: Vec<Counted>,
    pub slow_threshold_ms: f64,
    pub slow: Vec<Counted>,
    pub operations: Vec<Latency>,
    pub errors_per_hour: BTreeMap<String, u64>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Counted {
    pub count: u64,
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub operation: String,
    pub count: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// `… Performance: NAME took 123.45ms` → (NAME, 123.45), read without a regex.
pub fn performance(text: &str) -> Option<(&str, f64)> {
    static FINDER: OnceLock<memchr::memmem::Finder<'static>> = OnceLock::new();
    let finder = FINDER.get_or_init(|| memchr::memmem::Finder::new(b"Performance:"));
    let at = finder.find(text.as_bytes())?;
    let mut words = text[at + "Performance:".len()..].split_ascii_whitespace();
    let operation = words.next()?;
    if words.next()? != "took" {
        return None;
    }
    let value = words.next()?;
    let number = match value.strip_suffix("ms") {
        Some(number) => number,
        None if words.next() == Some("ms") => value,
        None => return None,
    };
    number.parse().ok().map(|ms| (operation, ms))
}

/// What one stretch of lines adds up to; stretches of a file are read in parallel and
/// merged.
#[derive(Default)]
struct Partial {
    lines: u64,
    levels: BTreeMap<Level, u64>,
    errors: HashMap<String, u64>,
    slow: HashMap<String, u64>,
    timings: HashMap<String, Vec<f64>>,
    per_hour: BTreeMap<String, u64>,
}

impl Partial {
    fn line(&mut self, text: &str, format: &LineFormat, slow_ms: f64, zone: &jiff::tz::TimeZone) {
        self.lines += 1;
        if let Some(level) = format.level(text) {
            *self.levels.entry(level).or_default() += 1;
            if level >= Level::Error {
                let said = format.message(text).unwrap_or_else(|| message(text));
                *self.errors.entry(normalize(said)).or_default() += 1;
                let fast = if format.is_auto() {
                    line::local_hour(text)
                } else {
                    None
                };
                let hour = match fast {
                    Some(hour) => Some(format!("{}:00", hour.replacen('T', " ", 1))),
                    None => format
                        .time(text, zone)
                        .map(|at| zone.to_datetime(at).strftime("%Y-%m-%d %H:00").to_string()),
                };
                if let Some(hour) = hour {
                    *self.per_hour.entry(hour).or_default() += 1;
                }
            }
        }
        if let Some((operation, ms)) = performance(text) {
            if ms > slow_ms {
                *self.slow.entry(operation.to_string()).or_default() += 1;
            }
            match self.timings.get_mut(operation) {
                Some(values) => values.push(ms),
                None => {
                    self.timings.insert(operation.to_string(), vec![ms]);
                }
            }
        }
    }

    fn merge(&mut self, other: Partial) {
        self.lines += other.lines;
        for (k, v) in other.levels {
            *self.levels.entry(k).or_default() += v;
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in other.slow {
            *self.slow.entry(k).or_default() += v;
        }
        for (k, mut v) in other.timings {
            self.timings.entry(k).or_default().append(&mut v);
        }
        for (k, v) in other.per_hour {
            *self.per_hour.entry(k).or_default() += v;
        }
    }
}

/// Read every line of `reader` into `partial`: big blocks split at newlines with memchr,
/// each line looked at in place, never copied.
fn scan(
    mut reader: impl Read,
    format: &LineFormat,
    partial: &mut Partial,
    slow_ms: f64,
    zone: &jiff::tz::TimeZone,
) -> Result<(), std::io::Error> {
    let mut buf = vec![0u8; 1 << 20];
    let mut filled = 0;
    let mut one = |bytes: &[u8]| {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        match std::str::from_utf8(bytes) {
            Ok(text) => partial.line(text.trim_end(), format, slow_ms, zone),
            Err(_) => partial.line(
                String::from_utf8_lossy(bytes).trim_end(),
                format,
                slow_ms,
                zone,
            ),
        }
    };
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0); // one line longer than the buffer
        }
        let n = reader.read(&mut buf[filled..])?;
        if n == 0 {
            if filled > 0 {
                one(&buf[..filled]);
            }
            return Ok(());
        }
        filled += n;
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', &buf[..filled]) {
            one(&buf[start..end]);
            start = end + 1;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
    }
}

/// Byte ranges of a plain file cut at line ends, one per core (one range for small files).
fn stretches(path: &std::path::Path) -> Option<Vec<(u64, u64)>> {
    const SMALL: u64 = 8 << 20;
    let size = std::fs::metadata(path).ok()?.len();
    let parts = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    if size < SMALL || parts < 2 {
        return Some(vec![(0, size)]);
    }
    let mut file = std::fs::File::open(path).ok()?;
    let mut cuts = vec![0];
    for k in 1..parts {
        let at = size * k / parts;
        file.seek(std::io::SeekFrom::Start(at)).ok()?;
        let mut reader = BufReader::new(&mut file);
        let mut skipped = Vec::new();
        let n = reader.read_until(b'\n', &mut skipped).ok()? as u64;
        let cut = (at + n).min(size);
        if cut > *cuts.last()? {
            cuts.push(cut);
        }
    }
    cuts.push(size);
    cuts.dedup();
    Some(cuts.windows(2).map(|w| (w[0], w[1])).collect())
}

/// Summarize `files` (oldest first); `top` error messages, operations slower than `slow_ms`.
/// A plain file is read in one stretch per core at once; compressed files stream.
pub fn summarize(files: &[Input], top: usize, slow_ms: f64) -> Summary {
    let mut summary = Summary {
        files: files.len(),
        slow_threshold_ms: slow_ms,
        ..Summary::default()
    };
    let zone = jiff::tz::TimeZone::system();
    let mut total = Partial::default();
    for (file, format) in files {
        let name = file.to_string_lossy();
        let compressed = name.ends_with(".gz") || name.ends_with(".zst");
        let parts = if compressed { None } else { stretches(file) };
        let Some(parts) = parts else {
            let mut partial = Partial::default();
            let read = compress::open(file).and_then(|reader| {
                scan(reader, format, &mut partial, slow_ms, &zone)
                    .map_err(|e| super::Error::cut_short(file, e))
            });
            if let Err(e) = read {
                summary.warnings.push(e.to_string());
            }
            let levelled = partial.levels.values().sum();
            summary
                .warnings
                .extend(format.unrecognised(&name, partial.lines, levelled));
            total.merge(partial);
            continue;
        };
        let results: Vec<Result<Partial, super::Error>> = std::thread::scope(|scope| {
            let handles: Vec<_> = parts
                .iter()
                .map(|&(start, end)| {
                    let zone = zone.clone();
                    scope.spawn(move || {
                        let mut partial = Partial::default();
                        let stretch = |error| super::Error::Stretch {
                            path: file.clone(),
                            error,
                        };
                        let mut f = std::fs::File::open(file)
                            .map_err(|e| super::Error::io("read", file, e))?;
                        f.seek(std::io::SeekFrom::Start(start)).map_err(stretch)?;
                        scan(f.take(end - start), format, &mut partial, slow_ms, &zone)
                            .map_err(stretch)?;
                        Ok(partial)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(super::Error::ReaderCrashed))
                })
                .collect()
        });
        let (mut lines, mut levelled) = (0, 0);
        for result in results {
            match result {
                Ok(partial) => {
                    lines += partial.lines;
                    levelled += partial.levels.values().sum::<u64>();
                    total.merge(partial);
                }
                Err(e) => summary.warnings.push(e.to_string()),
            }
        }
        summary
            .warnings
            .extend(format.unrecognised(&name, lines, levelled));
    }
    summary.lines = total.lines;
    summary.errors_per_hour = total.per_hour;
    let (levels, errors, slow, timings) = (total.levels, total.errors, total.slow, total.timings);
    summary.levels = levels
        .into_iter()
        .rev()
        .map(|(level, n)| (level.name().to_string(), serde_json::Value::from(n)))
        .collect();
    summary.top_errors = ranked(errors, top);
    summary.slow = ranked(slow, usize::MAX);
    let mut operations: Vec<Latency> = timings
        .into_iter()
        .map(|(operation, mut values)| {
            values.sort_by(f64::total_cmp);
            let count = values.len();
            let at = |percent| nearest_rank(&values, percent);
            Latency {
                operation,
                count,
                mean_ms: crate::model::round(values.iter().sum::<f64>() / count as f64, 2),
                p50_ms: at(50),
                p95_ms: at(95),
                p99_ms: at(99),
                max_ms: values[count - 1],
            }
        })
        .collect();
    operations.sort_by(|a, b| b.count.cmp(&a.count).then(a.operation.cmp(&b.operation)));
    summary.operations = operations;
    summary
}

/// The nearest-rank percentile of `sorted` (non-empty, ascending): the value at position
/// ⌈percent·n/100⌉, as `sort -n` and picking that line gives. Integer arithmetic, so 95 % of
/// 100 samples is exactly the 95th.
pub fn nearest_rank(sorted: &[f64], percent: usize) -> f64 {
    let n = sorted.len();
    sorted[(percent * n).div_ceil(100).clamp(1, n.max(1)) - 1]
}

fn ranked(counts: HashMap<String, u64>, top: usize) -> Vec<Counted> {
    let mut list: Vec<Counted> = counts
        .into_iter()
        .map(|(text, count)| Counted { count, text })
        .collect();
    list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.text.cmp(&b.text)));
    list.truncate(top);
    list
}

/// The message of a line: what follows its level word (`… - ERROR - message`).
fn message(text: &str) -> &str {
    // An access-log line: the request and its status (`"GET /api HTTP/1.1" 503`).
    if line::access_status(text).is_some()
        && let Some(start) = text.find("] \"")
        && let Some(close) = text[start + 3..].find("\" ")
    {
        let end = (start + 3 + close + 5).min(text.len());
        return &text[start + 2..end];
    }
    for word in ["CRITICAL", "ERROR", "FATAL", "ERR"] {
        if let Some(i) = text.find(word) {
            let rest = &text[i + word.len()..];
            return rest.trim_start_matches([' ', '-', ':', ']', '|']).trim();
        }
    }
    text
}

/// Mask what varies between occurrences of the same error: times, UUIDs, hex, numbers.
/// One scan over the words of the message, no regex: this runs on every error line.
pub fn normalize(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_alphanumeric() {
            let start = i;
            while i < b.len() && !b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            out.push_str(&text[start..i]);
            continue;
        }
        if let Some(len) = time_len(&b[i..]) {
            out.push_str("<time>");
            i += len;
            continue;
        }
        if let Some(len) = uuid_len(&b[i..]) {
            out.push_str("<id>");
            i += len;
            continue;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let word = &text[start..i];
        let hex_digits = word.bytes().all(|c| c.is_ascii_hexdigit());
        let has_digit = word.bytes().any(|c| c.is_ascii_digit());
        let has_letter = word.bytes().any(|c| c.is_ascii_alphabetic());
        let prefixed = (word.starts_with("0x") || word.starts_with("0X"))
            && word.len() > 2
            && word[2..].bytes().all(|c| c.is_ascii_hexdigit());
        if prefixed || (hex_digits && has_letter && (has_digit || word.len() >= 8)) {
            out.push_str("<hex>");
        } else if has_digit {
            // Numbers inside a word go, the rest stays: `1500ms` → `<n>ms`, `v2` → `v<n>`.
            let w = word.as_bytes();
            let mut j = 0;
            while j < w.len() {
                if w[j].is_ascii_digit() {
                    while j < w.len() && (w[j].is_ascii_digit()) {
                        j += 1;
                    }
                    out.push_str("<n>");
                } else {
                    out.push(w[j] as char);
                    j += 1;
                }
            }
            // A decimal part: `12.5` is one number.
            if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
        } else {
            out.push_str(word);
        }
    }
    out
}

/// `2025-01-15 10:30:00[,123][Z|+02:00]` at the start of `b`: its length.
fn time_len(b: &[u8]) -> Option<usize> {
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let shape = b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b' ' || b[10] == b'T')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape {
        return None;
    }
    let mut n = 19;
    if matches!(b.get(n), Some(b'.' | b',')) && b.get(n + 1).is_some_and(u8::is_ascii_digit) {
        n += 1;
        while b.get(n).is_some_and(u8::is_ascii_digit) {
            n += 1;
        }
    }
    if b.get(n) == Some(&b'Z') {
        n += 1;
    } else if matches!(b.get(n), Some(b'+' | b'-')) && digits(n + 1..n + 3) {
        n += 3;
        if b.get(n) == Some(&b':') {
            n += 1;
        }
        if digits(n..n + 2) {
            n += 2;
        }
    }
    Some(n)
}

/// A UUID (8-4-4-4-12 hex) at the start of `b`: its length.
fn uuid_len(b: &[u8]) -> Option<usize> {
    let groups = [8, 4, 4, 4, 12];
    let mut n = 0;
    for (k, len) in groups.iter().enumerate() {
        if !b.get(n..n + len)?.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        n += len;
        if k < 4 {
            if b.get(n) != Some(&b'-') {
                return None;
            }
            n += 1;
        }
    }
    let ends = b.get(n).is_none_or(|c| !c.is_ascii_alphanumeric());
    ends.then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_errors_group_whatever_their_numbers_and_ids() {
        let a = normalize(
            "Failed to load pattern 42 for user 7f3a9c2e-1b2c-4d5e-8f90-123456789abc after 1500ms",
        );
        let b = normalize(
            "Failed to load pattern 7 for user 00000000-1b2c-4d5e-8f90-aaaaaaaaaaaa after 20ms",
        );
        assert_eq!(a, b);
        assert_eq!(a, "Failed to load pattern <n> for user <id> after <n>ms");
        assert_eq!(normalize("bad pointer 0xdeadbeef"), "bad pointer <hex>");
        assert_eq!(normalize("commit a3f9c2e1 failed"), "commit <hex> failed");
        assert_eq!(
            normalize("upload aaecdeadbeef rejected"),
            "upload <hex> rejected"
        );
        assert_eq!(
            normalize("at 2025-01-15 10:30:00,123 it broke"),
            "at <time> it broke"
        );
    }

    #[test]
    fn a_large_file_read_in_parallel_stretches_counts_every_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        let mut text = String::new();
        let mut n = 0u64;
        while text.len() < 9 << 20 {
            text.push_str(&format!(
                "2025-01-15 10:{:02}:00,000 - app - {} - item {n} Performance: op{} took {}ms\n",
                n % 60,
                if n.is_multiple_of(10) {
                    "ERROR"
                } else {
                    "INFO"
                },
                n % 3,
                n % 1000
            ));
            n += 1;
        }
        std::fs::write(&path, &text).unwrap();
        let summary = summarize(&[(path, LineFormat::Auto)], 5, 500.0);
        assert_eq!(summary.lines, n);
        let errors = n.div_ceil(10);
        assert_eq!(summary.levels["ERROR"], errors);
        assert_eq!(summary.top_errors[0].count, errors);
        let timed: usize = summary.operations.iter().map(|o| o.count).sum();
        assert_eq!(timed as u64, n);
    }

    #[test]
    fn performance_lines_are_read() {
        assert_eq!(
            performance(
                "2025-01-15 10:30:00,003 - app - INFO - Performance: pattern_load took 1234.56ms"
            ),
            Some(("pattern_load", 1234.56))
        );
        assert_eq!(
            performance("Performance: upload took 12 ms"),
            Some(("upload", 12.0))
        );
        assert_eq!(performance("Performance: upload was slow"), None);
    }

    #[test]
    fn messages_follow_the_level() {
        assert_eq!(
            message("2025-01-15 10:30:00,123 - app - ERROR - boom 3"),
            "boom 3"
        );
        assert_eq!(message("[ERROR] disk full"), "disk full");
        assert_eq!(
            message(
                "1.2.3.4 - - [15/Jan/2025:10:30:00 +0000] \"GET /api/files/12 HTTP/1.1\" 503 0 \"-\" \"curl\""
            ),
            "\"GET /api/files/12 HTTP/1.1\" 503"
        );
        assert_eq!(
            normalize(message(
                "1.2.3.4 - - [15/Jan/2025:10:30:00 +0000] \"GET /api/files/12 HTTP/1.1\" 503 0"
            )),
            "\"GET /api/files/<n> HTTP/<n>\" <n>"
        );
    }
}
