//! One log line: its time and its level, found without a format being configured.
//! Recognised: ISO 8601 / Python logging times at the start of a line
//! (`2025-01-15 10:30:00,123`, `2025-01-15T10:30:00Z`, `…+02:00`), upper-case level words
//! (`ERROR`, `[WARN]`, `level=ERROR`) and JSON lines with a `"level"` field.

use crate::values::Level;

/// The level named in `line`, if any: the first upper-case word that is a level name,
/// or a JSON line's `"level"` field. Scans bytes without allocating.
pub fn level(line: &str) -> Option<Level> {
    if line.trim_start().starts_with('{')
        && let Some(at) = line.find("\"level\"")
    {
        let rest = line[at + 7..].trim_start().strip_prefix(':')?.trim_start();
        let value = rest.strip_prefix('"')?;
        let end = value.find('"')?;
        return word_level(&value[..end].to_ascii_uppercase());
    }
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_uppercase() && (i == 0 || !bytes[i - 1].is_ascii_alphabetic()) {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_uppercase() {
                i += 1;
            }
            let alone = i == bytes.len() || !bytes[i].is_ascii_alphabetic();
            if alone
                && (3..=9).contains(&(i - start))
                && let Some(level) = word_level(&line[start..i])
            {
                return Some(level);
            }
        } else {
            i += 1;
        }
    }
    access_status(line).map(|status| match status {
        500.. => Level::Error,
        400..=499 => Level::Warning,
        _ => Level::Info,
    })
}

/// The status of a common/combined access-log line (`… "GET / HTTP/1.1" 503 12 …`).
pub fn access_status(line: &str) -> Option<u16> {
    let request = line.find("] \"")? + 3;
    let close = line[request..].find("\" ")? + request + 2;
    let status = line.get(close..close + 3)?;
    let after = line.as_bytes().get(close + 3);
    if after.is_some_and(|c| *c != b' ') {
        return None;
    }
    status.parse().ok().filter(|s| (100..=599).contains(s))
}

/// `[15/Jan/2025:10:30:00 +0000]` in an access-log line.
fn access_time(line: &str) -> Option<jiff::Timestamp> {
    let open = line.find('[')? + 1;
    let text = line.get(open..open + 26)?;
    jiff::Timestamp::strptime("%d/%b/%Y:%H:%M:%S %z", text).ok()
}

fn word_level(word: &str) -> Option<Level> {
    Some(match word {
        "TRACE" => Level::Trace,
        "DEBUG" => Level::Debug,
        "INFO" | "NOTICE" => Level::Info,
        "WARN" | "WARNING" => Level::Warning,
        "ERROR" | "ERR" => Level::Error,
        "CRITICAL" | "CRIT" | "FATAL" | "ALERT" | "EMERG" | "EMERGENCY" => Level::Critical,
        _ => return None,
    })
}

/// The time at the start of `line` (after an optional `[`), if it has one. A time without
/// a zone is read in `zone` (the machine's).
pub fn time(line: &str, zone: &jiff::tz::TimeZone) -> Option<jiff::Timestamp> {
    let text = line.trim_start().trim_start_matches('[');
    if !text.as_bytes().first().is_some_and(u8::is_ascii_digit)
        || text.as_bytes().get(4) != Some(&b'-')
    {
        return access_time(line);
    }
    let head = text.get(..19)?;
    let bytes = head.as_bytes();
    if !(bytes[4] == b'-' && bytes[7] == b'-' && (bytes[10] == b'T' || bytes[10] == b' ')) {
        return None;
    }
    let civil = civil_time(bytes)?;
    // Fractions (`.123` or Python's `,123`) are skipped; then an optional zone.
    let rest = &text[19..];
    let rest = rest
        .strip_prefix(['.', ','])
        .map(|r| r.trim_start_matches(|c: char| c.is_ascii_digit()))
        .unwrap_or(rest);
    // `Z`, or PostgreSQL's default `%m` prefix (`2025-01-15 10:30:00.123 UTC`).
    if rest.starts_with('Z') || rest.starts_with(" UTC") || rest.starts_with(" GMT") {
        return jiff::tz::TimeZone::UTC.to_timestamp(civil).ok();
    }
    if let Some(offset) = rest.get(..6)
        && (offset.starts_with('+') || offset.starts_with('-'))
        && offset.as_bytes()[3] == b':'
    {
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let hours: i8 = offset[1..3].parse().ok()?;
        let minutes: i8 = offset[4..6].parse().ok()?;
        let seconds = sign * (i32::from(hours) * 3600 + i32::from(minutes) * 60);
        let tz = jiff::tz::TimeZone::fixed(jiff::tz::Offset::from_seconds(seconds).ok()?);
        return tz.to_timestamp(civil).ok();
    }
    zone.to_timestamp(civil).ok()
}

/// `YYYY-MM-DD?HH:MM:SS` read digit by digit (no allocation, no general parser).
fn civil_time(b: &[u8]) -> Option<jiff::civil::DateTime> {
    let num = |range: std::ops::Range<usize>| -> Option<i32> {
        b.get(range)?.iter().try_fold(0i32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i32::from(c - b'0'))
        })
    };
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    jiff::civil::DateTime::new(
        i16::try_from(num(0..4)?).ok()?,
        i8::try_from(num(5..7)?).ok()?,
        i8::try_from(num(8..10)?).ok()?,
        i8::try_from(num(11..13)?).ok()?,
        i8::try_from(num(14..16)?).ok()?,
        i8::try_from(num(17..19)?).ok()?,
        0,
    )
    .ok()
}

/// `2025-01-15 10` of a line that starts with a zone-less time: the hour bucket without
/// parsing, or `None` (then `time` is the way).
pub fn local_hour(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    let plain = b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b' ' || b[10] == b'T')
        && b[13] == b':'
        && !matches!(
            b.get(19..).and_then(|r| r
                .iter()
                .find(|c| !c.is_ascii_digit() && **c != b'.' && **c != b',')),
            Some(b'Z' | b'+' | b'-')
        );
    plain.then(|| &line[..13])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_found_in_common_shapes() {
        assert_eq!(
            level("2025-01-15 10:30:00,123 - app - ERROR - boom"),
            Some(Level::Error)
        );
        assert_eq!(level("[WARN] disk nearly full"), Some(Level::Warning));
        assert_eq!(level("ts=1 level=ERROR msg=x"), Some(Level::Error));
        assert_eq!(
            level(r#"{"level": "critical", "msg": "x"}"#),
            Some(Level::Critical)
        );
        assert_eq!(level("an error happened in lower case"), None);
        assert_eq!(level("GET /api 200"), None);
    }

    #[test]
    fn access_logs_count_5xx_as_errors() {
        let line = |status: &str| {
            format!(
                "127.0.0.1 - - [15/Jan/2025:10:30:00 +0000] \"GET /api HTTP/1.1\" {status} 512 \"-\" \"curl/8\""
            )
        };
        assert_eq!(level(&line("503")), Some(Level::Error));
        assert_eq!(level(&line("404")), Some(Level::Warning));
        assert_eq!(level(&line("200")), Some(Level::Info));
        let utc = jiff::tz::TimeZone::UTC;
        assert_eq!(
            time(&line("200"), &utc).map(|t| t.as_second()),
            Some(1736937000)
        );
        assert_eq!(
            time(
                "10.0.0.1 - - [15/Jan/2025:12:30:00 +0200] \"GET / HTTP/1.1\" 200 1",
                &utc
            )
            .map(|t| t.as_second()),
            Some(1736937000)
        );
    }

    #[test]
    fn times_with_and_without_zones() {
        let utc = jiff::tz::TimeZone::UTC;
        let t = |s: &str| time(s, &utc).map(|t| t.as_second());
        assert_eq!(t("2025-01-15 10:30:00,123 ERROR x"), Some(1736937000));
        assert_eq!(t("2025-01-15T10:30:00Z ERROR x"), Some(1736937000));
        assert_eq!(t("[2025-01-15T12:30:00.5+02:00] ERROR x"), Some(1736937000));
        assert_eq!(
            time(
                "2025-01-15 10:30:00.123 UTC [7] LOG:  duration: 1.5 ms",
                &jiff::tz::TimeZone::fixed(jiff::tz::offset(2))
            )
            .map(|t| t.as_second()),
            Some(1736937000)
        );
        assert_eq!(t("Traceback (most recent call last):"), None);
    }
}
