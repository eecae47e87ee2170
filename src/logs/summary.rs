//! `logs summary`: what the seed's `grep ERROR | sort | uniq -c` and its `grep
//! "Performance:" | awk` average computed, and more, in one pass: lines per level, the top
//! error messages with their variable parts masked (so the same error groups however its
//! numbers, ids and times differ), slow operations, per-operation latency percentiles from
//! `Performance: NAME took Nms` lines, and errors per hour.

use super::compress;
use super::line;
use crate::config::Level;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
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

fn performance() -> Option<&'static regex::Regex> {
    static RE: OnceLock<Option<regex::Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"Performance:\s*(\S+)\s+took\s+([0-9]+(?:\.[0-9]+)?)\s*ms").ok()
    })
    .as_ref()
}

/// Summarize `files` (oldest first); `top` error messages, operations slower than `slow_ms`.
pub fn summarize(files: &[PathBuf], top: usize, slow_ms: f64) -> Summary {
    let mut summary = Summary {
        files: files.len(),
        slow_threshold_ms: slow_ms,
        ..Summary::default()
    };
    let mut errors: HashMap<String, u64> = HashMap::new();
    let mut slow: HashMap<String, u64> = HashMap::new();
    let mut timings: HashMap<String, Vec<f64>> = HashMap::new();
    let mut levels: BTreeMap<Level, u64> = BTreeMap::new();
    let zone = jiff::tz::TimeZone::system();
    for file in files {
        let reader = match compress::open(file) {
            Ok(reader) => reader,
            Err(e) => {
                summary.warnings.push(e);
                continue;
            }
        };
        let mut reader = BufReader::with_capacity(256 * 1024, reader);
        let mut buf = Vec::new();
        let mut hour: Option<String> = None;
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    summary
                        .warnings
                        .push(format!("{}: {e} (skipped the rest)", file.display()));
                    break;
                }
            }
            summary.lines += 1;
            let text = String::from_utf8_lossy(&buf);
            let text = text.trim_end();
            let may_have_time =
                text.as_bytes().first().is_some_and(u8::is_ascii_digit) || text.starts_with('[');
            if may_have_time && let Some(at) = line::time(text, &zone) {
                hour = Some(zone.to_datetime(at).strftime("%Y-%m-%d %H:00").to_string());
            }
            let level = line::level(text);
            if let Some(level) = level {
                *levels.entry(level).or_default() += 1;
                if level >= Level::Error {
                    *errors.entry(normalize(message(text))).or_default() += 1;
                    if let Some(hour) = &hour {
                        *summary.errors_per_hour.entry(hour.clone()).or_default() += 1;
                    }
                }
            }
            if text.contains("Performance:")
                && let Some(caps) = performance().and_then(|re| re.captures(text))
                && let Ok(ms) = caps[2].parse::<f64>()
            {
                let operation = caps[1].to_string();
                if ms > slow_ms {
                    *slow.entry(operation.clone()).or_default() += 1;
                }
                timings.entry(operation).or_default().push(ms);
            }
        }
    }
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
            let at = |q: f64| values[((q * count as f64).ceil() as usize).clamp(1, count) - 1];
            Latency {
                operation,
                count,
                mean_ms: crate::check::round(values.iter().sum::<f64>() / count as f64, 2),
                p50_ms: at(0.50),
                p95_ms: at(0.95),
                p99_ms: at(0.99),
                max_ms: values[count - 1],
            }
        })
        .collect();
    operations.sort_by(|a, b| b.count.cmp(&a.count).then(a.operation.cmp(&b.operation)));
    summary.operations = operations;
    summary
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
    for word in ["CRITICAL", "ERROR", "FATAL", "ERR"] {
        if let Some(i) = text.find(word) {
            let rest = &text[i + word.len()..];
            return rest.trim_start_matches([' ', '-', ':', ']', '|']).trim();
        }
    }
    text
}

/// Mask what varies between occurrences of the same error: times, UUIDs, hex, numbers.
pub fn normalize(text: &str) -> String {
    static RULES: OnceLock<Vec<(regex::Regex, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            (r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?", "<time>"),
            (r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<id>"),
            (r"(?i)\b0x[0-9a-f]+\b", "<hex>"),
            (r"(?i)\b[0-9a-f]{8,}\b", "<hex>"),
            (r"(?i)\b[0-9a-f]*[0-9][0-9a-f]*[a-f][0-9a-f]*\b|\b[0-9a-f]*[a-f][0-9a-f]*[0-9][0-9a-f]*\b", "<hex>"),
            (r"\d+(?:\.\d+)?", "<n>"),
        ]
        .into_iter()
        .filter_map(|(re, to)| regex::Regex::new(re).ok().map(|re| (re, to)))
        .collect()
    });
    let mut out = text.to_string();
    for (re, to) in rules {
        out = re.replace_all(&out, *to).into_owned();
    }
    out
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
    fn messages_follow_the_level() {
        assert_eq!(
            message("2025-01-15 10:30:00,123 - app - ERROR - boom 3"),
            "boom 3"
        );
        assert_eq!(message("[ERROR] disk full"), "disk full");
    }
}
