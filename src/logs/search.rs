//! `logs search`: lines matching a literal or a regex, optionally at or above a level and
//! inside a time window, with context, across plain, `.gz` and `.zst` files (oldest
//! first). Counting a literal with no other filter takes a fast path that scans whole
//! blocks with memchr's SIMD search instead of going line by line.

use super::compress;
use super::format::LineFormat;
use crate::values::Level;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// A file to read and how its lines are written.
pub type Input = (PathBuf, LineFormat);

/// The files to read, oldest first, each with its line format: the files named in `paths`
/// (their format auto-detected), then every file of each set in `names` (default: every
/// set), rotated ones first. Only files and no set: none of them may be a directory. A
/// set not in `sets` is a usage error.
pub fn inputs(
    sets: &std::collections::BTreeMap<String, super::set::LogSet>,
    paths: &[PathBuf],
    names: &[String],
) -> Result<Vec<Input>, super::Error> {
    use super::Error;
    let named = paths.iter().map(|p| (p.clone(), LineFormat::Auto));
    if !paths.is_empty() && names.is_empty() {
        if let Some(dir) = paths.iter().find(|p| p.is_dir()) {
            return Err(Error::Request(format!(
                "{} is a directory: name the log files",
                dir.display()
            )));
        }
        return Ok(named.collect());
    }
    let names: Vec<&String> = if names.is_empty() {
        sets.keys().collect()
    } else {
        names.iter().collect()
    };
    if names.is_empty() {
        return Err(Error::Request(
            "name files to read, or configure log sets under `logs.sets`".to_string(),
        ));
    }
    let mut all: Vec<Input> = named.collect();
    for name in names {
        let set = sets
            .get(name)
            .ok_or_else(|| Error::Request(format!("no log set {name:?} in the config")))?;
        let history = set.history().map_err(|e| Error::InSet {
            set: name.clone(),
            error: Box::new(e),
        })?;
        all.extend(history.into_iter().map(|p| (p, set.format.clone())));
    }
    Ok(all)
}

pub enum Matcher {
    Literal(Box<memchr::memmem::Finder<'static>>),
    Regex(regex::bytes::Regex),
}

impl Matcher {
    pub fn new(pattern: &str, regex: bool) -> Result<Self, super::Error> {
        if regex {
            // Multi-line, so that `^` and `$` are line ends when whole blocks are searched.
            regex::bytes::RegexBuilder::new(pattern)
                .multi_line(true)
                .build()
                .map(Matcher::Regex)
                .map_err(|e| super::Error::Pattern {
                    pattern: pattern.to_string(),
                    error: Box::new(e),
                })
        } else {
            Ok(Matcher::Literal(Box::new(
                memchr::memmem::Finder::new(pattern.as_bytes()).into_owned(),
            )))
        }
    }

    fn is_match(&self, line: &[u8]) -> bool {
        match self {
            Matcher::Literal(f) => f.find(line).is_some(),
            Matcher::Regex(r) => r.is_match(line),
        }
    }

    /// The next line of `block` from `at` holding a match: its start, and its end before
    /// the newline. A regex match that runs over a line end counts only if the line
    /// matches by itself.
    pub fn next_line(&self, block: &[u8], mut at: usize) -> Option<(usize, usize)> {
        while at < block.len() {
            let (start, end) = match self {
                Matcher::Literal(f) => {
                    let i = at + f.find(&block[at..])?;
                    (i, i + f.needle().len())
                }
                Matcher::Regex(r) => r.find_at(block, at).map(|m| (m.start(), m.end()))?,
            };
            let line_start = memchr::memrchr(b'\n', &block[..start]).map_or(0, |i| i + 1);
            let line_end = super::scan::line_end(block, start);
            if end <= line_end || self.is_match(&block[line_start..line_end]) {
                return Some((line_start, line_end));
            }
            at = line_end + 1;
        }
        None
    }
}

/// The most lines of context shown around a match (`-C`): the lines before a match are
/// held in memory until it comes, so the number is bounded.
pub const MAX_CONTEXT: usize = 10_000;

pub struct Query {
    pub matcher: Matcher,
    pub level: Option<Level>,
    pub since: Option<jiff::Timestamp>,
    pub until: Option<jiff::Timestamp>,
    pub context: usize,
}

/// One line of output: a match (`is_match`) or context around one.
pub struct Hit<'a> {
    pub file: &'a Path,
    pub number: u64,
    pub text: &'a str,
    pub is_match: bool,
    /// A gap since the previous line printed (grep's `--`).
    pub gap: bool,
}

/// Search `files` in order; `emit` gets each line to print. Returns the number of
/// matching lines and a warning per file that could not be read (the rest go on).
pub fn search(files: &[Input], query: &Query, emit: &mut dyn FnMut(Hit)) -> (u64, Vec<String>) {
    let mut total = 0;
    let mut warnings = Vec::new();
    for (file, format) in files {
        match search_file(file, format, query, emit, &mut warnings) {
            Ok(n) => total += n,
            Err((n, e)) => {
                total += n;
                warnings.push(e.to_string());
            }
        }
    }
    (total, warnings)
}

/// Count matching lines only: the fast path when nothing but a literal is asked.
pub fn count_literal(files: &[PathBuf], needle: &str) -> (u64, Vec<String>) {
    let finder = memchr::memmem::Finder::new(needle.as_bytes());
    let mut total = 0;
    let mut warnings = Vec::new();
    for file in files {
        match count_in(file, &finder) {
            Ok(n) => total += n,
            Err((n, e)) => {
                total += n;
                warnings.push(e.to_string());
            }
        }
    }
    (total, warnings)
}

fn count_in(file: &Path, finder: &memchr::memmem::Finder) -> Result<u64, (u64, super::Error)> {
    let mut count = 0u64;
    let read = super::scan::blocks(file, &mut |block| {
        let mut at = 0;
        while let Some(found) = finder.find(&block[at..]) {
            count += 1;
            let hit = at + found;
            at = memchr::memchr(b'\n', &block[hit..]).map_or(block.len(), |i| hit + i + 1);
        }
    });
    read.map(|()| count).map_err(|e| (count, e))
}

fn search_file(
    file: &Path,
    format: &LineFormat,
    query: &Query,
    emit: &mut dyn FnMut(Hit),
    warnings: &mut Vec<String>,
) -> Result<u64, (u64, super::Error)> {
    let reader = compress::open(file).map_err(|e| (0, e))?;
    let context = query.context.min(MAX_CONTEXT);
    let mut levelled = 0u64;
    let mut reader = BufReader::with_capacity(256 * 1024, reader);
    let zone = jiff::tz::TimeZone::system();
    let timed = query.since.is_some() || query.until.is_some();
    let mut current_time = None;
    let mut before: VecDeque<(u64, String)> = VecDeque::with_capacity(context.min(64));
    let mut after = 0usize;
    let mut last_printed = 0u64;
    let mut count = 0u64;
    let mut number = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => {
                if query.level.is_some() {
                    warnings.extend(format.unrecognised(
                        &file.display().to_string(),
                        number,
                        levelled,
                    ));
                }
                return Ok(count);
            }
            Ok(_) => {}
            Err(e) => return Err((count, super::Error::cut_short(file, e))),
        }
        number += 1;
        let bytes = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let text = String::from_utf8_lossy(bytes);
        if timed && let Some(at) = format.time(&text, &zone) {
            current_time = Some(at);
        }
        let in_window = !timed
            || current_time.is_some_and(|t| {
                query.since.is_none_or(|s| t >= s) && query.until.is_none_or(|u| t <= u)
            });
        let level_ok = query.level.is_none_or(|wanted| {
            let level = format.level(&text);
            levelled += u64::from(level.is_some());
            level.is_some_and(|l| l >= wanted)
        });
        let matched = in_window && level_ok && query.matcher.is_match(bytes);
        if matched {
            count += 1;
            let first_context = number - before.len() as u64;
            for (n, held) in before.drain(..) {
                emit(Hit {
                    file,
                    number: n,
                    text: &held,
                    is_match: false,
                    gap: last_printed > 0 && n == first_context && n > last_printed + 1,
                });
                last_printed = n;
            }
            emit(Hit {
                file,
                number,
                text: &text,
                is_match: true,
                gap: context > 0 && last_printed > 0 && number > last_printed + 1,
            });
            last_printed = number;
            after = context;
        } else if after > 0 {
            after -= 1;
            emit(Hit {
                file,
                number,
                text: &text,
                is_match: false,
                gap: false,
            });
            last_printed = number;
        } else if context > 0 {
            if before.len() == context {
                before.pop_front();
            }
            before.push_back((number, text.into_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    #[test]
    fn inputs_are_named_files_then_each_sets_history_and_bad_requests_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        std::fs::write(&log, "x\n").unwrap();
        std::fs::write(dir.path().join("app.log.1"), "old\n").unwrap();
        let sets = std::collections::BTreeMap::from([(
            "app".to_string(),
            crate::logs::set::LogSet::for_file(&log),
        )]);
        let extra = dir.path().join("other.log");
        let got = inputs(&sets, std::slice::from_ref(&extra), &[]).unwrap();
        assert_eq!(got.len(), 1);
        let got = inputs(&sets, std::slice::from_ref(&extra), &["app".to_string()]).unwrap();
        let paths: Vec<&Path> = got.iter().map(|(p, _)| p.as_path()).collect();
        let rotated = dir.path().join("app.log.1");
        assert_eq!(paths, [extra.as_path(), rotated.as_path(), log.as_path()]);
        let err = inputs(&sets, &[], &["ap".to_string()]).unwrap_err();
        assert_eq!(err.to_string(), "no log set \"ap\" in the config");
        assert_eq!(err.kind(), Kind::Usage);
        let err = inputs(&sets, &[dir.path().to_path_buf()], &[]).unwrap_err();
        assert!(
            err.to_string()
                .ends_with(" is a directory: name the log files")
        );
        assert_eq!(err.kind(), Kind::Usage);
        let empty = std::collections::BTreeMap::new();
        assert_eq!(inputs(&empty, &[], &[]).unwrap_err().kind(), Kind::Usage);
        std::fs::remove_file(&log).unwrap();
        let err = inputs(&sets, &[], &[]).unwrap_err();
        assert!(err.to_string().starts_with("log set app: "), "{err}");
        assert_eq!(err.kind(), Kind::Failure);
    }
}
