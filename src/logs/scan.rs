//! Reading log files in large blocks (whole lines only, across plain, `.gz` and `.zst`
//! files) and, on top of that, the lines that match within a time window: the scanner
//! behind `logs search --count` and the `log_match` and `log_latency` steps. A line's
//! time is read only for a line that matched (a line without a time of its own belongs to
//! the line before), so counting over a large log costs little more than the search.

use super::compress;
use super::format::LineFormat;
use super::search::{Input, Matcher};
use std::io::Read;
use std::path::Path;

/// Call `each` with consecutive blocks of `file`, each ending at a line end (or the end
/// of input). A reading error stops the file: what was read before it has been handed on.
pub fn blocks(file: &Path, each: &mut dyn FnMut(&[u8])) -> Result<(), super::Error> {
    let mut reader = compress::open(file)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut carry = 0; // bytes of an unfinished line at the start of buf
    loop {
        let n = reader
            .read(&mut buf[carry..])
            .map_err(|e| super::Error::cut_short(file, e))?;
        let filled = carry + n;
        // Lines complete in this block end at the last newline (or the end of input).
        let end = if n == 0 {
            filled
        } else {
            match memchr::memrchr(b'\n', &buf[..filled]) {
                Some(i) => i + 1,
                None => {
                    if filled == buf.len() {
                        buf.resize(buf.len() * 2, 0); // a very long line: grow and read on
                    }
                    carry = filled;
                    continue;
                }
            }
        };
        if end > 0 {
            each(&buf[..end]);
        }
        if n == 0 {
            return Ok(());
        }
        buf.copy_within(end..filled, 0);
        carry = filled - end;
    }
}

/// What a windowed scan saw besides the lines it handed on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scanned {
    /// Lines handed on (matching, inside the window).
    pub lines: u64,
    /// Whether any line had a time this scan could read (only looked for with a window).
    pub timed: bool,
}

/// Hand `each` every line of `inputs` (oldest first) that `matcher` matches (every line
/// without one) and whose time is at or after `since`, without its line end. With `since`,
/// a line without a time of its own takes the time of the nearest line before it in the
/// same file; lines before a file's first time are outside any window. The first file that
/// cannot be read ends the scan with its error.
pub fn matching_lines(
    inputs: &[Input],
    matcher: Option<&Matcher>,
    since: Option<jiff::Timestamp>,
    each: &mut dyn FnMut(&[u8]),
) -> Result<Scanned, super::Error> {
    let zone = jiff::tz::TimeZone::system();
    let mut scanned = Scanned::default();
    for (file, format) in inputs {
        let mut carried: Option<jiff::Timestamp> = None;
        blocks(file, &mut |block| {
            // Lines before `seen` have been looked at; `known` is the time of the last of
            // them with one (or the file's time so far): each line's time is read once.
            let (mut seen, mut known) = (0, carried);
            let mut at = 0;
            while let Some((start, end)) = next_line(matcher, block, at) {
                at = end + 1;
                if let Some(cutoff) = since {
                    known = time_before(block, seen, end, format, &zone).or(known);
                    seen = end;
                    match known {
                        Some(t) => {
                            scanned.timed = true;
                            if t < cutoff {
                                continue;
                            }
                        }
                        None => continue,
                    }
                }
                scanned.lines += 1;
                let line = &block[start..end];
                each(line.strip_suffix(b"\r").unwrap_or(line));
            }
            if since.is_some() {
                carried = time_before(block, seen, block.len(), format, &zone).or(known);
                scanned.timed |= carried.is_some();
            }
        })?;
    }
    Ok(scanned)
}

/// The next line of `block` from `at` that `matcher` matches (any line without one), as
/// its start and its end before the newline.
fn next_line(matcher: Option<&Matcher>, block: &[u8], at: usize) -> Option<(usize, usize)> {
    if at >= block.len() {
        return None;
    }
    match matcher {
        None => Some((at, line_end(block, at))),
        Some(matcher) => matcher.next_line(block, at),
    }
}

/// Where the line holding `from` ends (its newline, or the end of `block`).
pub(super) fn line_end(block: &[u8], from: usize) -> usize {
    memchr::memchr(b'\n', &block[from..]).map_or(block.len(), |i| from + i)
}

/// The time of the last line ending at or before `end` that has one, looking back from
/// the line that ends at `end` to the line that starts at or after `floor`.
fn time_before(
    block: &[u8],
    floor: usize,
    end: usize,
    format: &LineFormat,
    zone: &jiff::tz::TimeZone,
) -> Option<jiff::Timestamp> {
    let mut end = end;
    // A block ends with its newline: the last line is the one before it.
    if end == block.len() && end > floor && block[end - 1] == b'\n' {
        end -= 1;
    }
    loop {
        let start = memchr::memrchr(b'\n', &block[..end]).map_or(0, |i| i + 1);
        if start < floor {
            return None;
        }
        let line = &block[start..end];
        if !line.is_empty()
            && let Some(t) = format.time(&String::from_utf8_lossy(line), zone)
        {
            return Some(t);
        }
        if start == 0 || start <= floor {
            return None;
        }
        end = start - 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str, pattern: Option<&str>, since: Option<&str>) -> (Vec<String>, Scanned) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.log");
        std::fs::write(&file, text).unwrap();
        let matcher = pattern.map(|p| Matcher::new(p, true).unwrap());
        let since = since.map(|s| s.parse().unwrap());
        let mut lines = Vec::new();
        let scanned = matching_lines(
            &[(file, LineFormat::Auto)],
            matcher.as_ref(),
            since,
            &mut |l| lines.push(String::from_utf8_lossy(l).into_owned()),
        )
        .unwrap();
        (lines, scanned)
    }

    #[test]
    fn lines_without_a_time_belong_to_the_line_before_and_anchors_are_per_line() {
        let text =
            "2025-01-15T09:00:00Z old\n  boom old\n2025-01-15T10:00:00Z new\n  boom new\r\nboom\n";
        let (lines, scanned) = scan(text, Some("^ *boom"), Some("2025-01-15T09:30:00Z"));
        assert_eq!(lines, ["  boom new", "boom"]);
        assert_eq!(
            scanned,
            Scanned {
                lines: 2,
                timed: true
            }
        );
        let (lines, _) = scan(text, None, None);
        assert_eq!(lines.len(), 5);
        // A match that runs over a line end is not a match of either line.
        let (lines, _) = scan("a\nb\n", Some(r"a\sb"), None);
        assert!(lines.is_empty());
        let (lines, scanned) = scan(
            "no time\nboom\n",
            Some("boom"),
            Some("2025-01-15T09:30:00Z"),
        );
        assert!(lines.is_empty());
        assert!(!scanned.timed);
    }

    #[test]
    fn a_time_carries_over_untimed_lines_and_across_blocks() {
        let lines = 700_000; // 3.5 MB: several blocks with no time of their own
        let text = format!(
            "2025-01-15T09:00:00Z old\nboom\n2025-01-15T10:00:00Z new\n{}",
            "boom\n".repeat(lines)
        );
        let (found, scanned) = scan(&text, Some("boom"), Some("2025-01-15T09:30:00Z"));
        assert_eq!(found.len(), lines);
        assert_eq!(
            scanned,
            Scanned {
                lines: lines as u64,
                timed: true
            }
        );
        let (found, _) = scan(&text, Some("boom"), Some("2025-01-15T10:30:00Z"));
        assert!(found.is_empty());
    }
}
