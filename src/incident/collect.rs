//! `incident collect`: an evidence bundle in the incident's folder — the health report,
//! recent errors from the configured logs, system information, the tool's recent audit
//! entries and the diagnosis runbook's report — as one tar.gz with a manifest (every
//! file's name, size and SHA-256), written under a temporary name and renamed when
//! complete. The bundle is mode 0600 whatever the umask.

use crate::digest::Sha256;
use std::path::{Path, PathBuf};

/// Error lines gathered per bundle, at most (the newest are kept).
const MAX_ERRORS: usize = 2000;
/// Audit entries gathered, at most (the newest).
const MAX_AUDIT: usize = 500;

/// One piece of evidence: a name in the bundle and its bytes.
pub struct Piece {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Lines at ERROR or above from the last `since` of every configured log set.
pub fn recent_errors(
    sets: &std::collections::BTreeMap<String, crate::logs::set::LogSet>,
    since: jiff::Timestamp,
) -> Vec<u8> {
    use crate::logs::search::{Matcher, Query, search};
    let mut inputs = Vec::new();
    let mut out = String::new();
    for (name, set) in sets {
        match set.history() {
            Ok(files) => inputs.extend(files.into_iter().map(|p| (p, set.format.clone()))),
            Err(e) => out.push_str(&format!("# log set {name}: {e}\n")),
        }
    }
    let Ok(matcher) = Matcher::new("", false) else {
        return out.into_bytes();
    };
    let query = Query {
        matcher,
        level: Some(crate::values::Level::Error),
        since: Some(since),
        until: None,
        context: 0,
    };
    let mut lines = std::collections::VecDeque::new();
    let (_, warnings) = search(&inputs, &query, &mut |hit| {
        if hit.is_match {
            if lines.len() == MAX_ERRORS {
                lines.pop_front();
            }
            lines.push_back(format!(
                "{}:{}:{}",
                hit.file.display(),
                hit.number,
                hit.text
            ));
        }
    });
    for warning in warnings {
        out.push_str(&format!("# {warning}\n"));
    }
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    crate::redact::mask(&out).into_owned().into_bytes()
}

/// Host, kernel, uptime, load and memory, read from /proc.
pub fn system_info() -> Vec<u8> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let mut out = String::new();
    out.push_str(&format!(
        "host: {}\n",
        read("/proc/sys/kernel/hostname").trim()
    ));
    out.push_str(&format!(
        "kernel: {}\n",
        read("/proc/sys/kernel/osrelease").trim()
    ));
    let uptime = read("/proc/uptime");
    let secs = uptime
        .split_whitespace()
        .next()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(0.0);
    out.push_str(&format!("uptime: {}\n", super::human(secs as u64)));
    out.push_str(&format!("load: {}\n", read("/proc/loadavg").trim()));
    out.push_str("\n/proc/meminfo:\n");
    for line in read("/proc/meminfo").lines().take(8) {
        out.push_str(line);
        out.push('\n');
    }
    out.into_bytes()
}

/// The newest entries of the audit log (never read through a link: a planted
/// `audit.log -> /etc/shadow` must not end up in a bundle).
pub fn audit_tail(log_dir: &Path) -> Vec<u8> {
    let bytes = match crate::fsutil::read_nofollow(&log_dir.join("audit.log")) {
        Ok(bytes) => bytes.unwrap_or_default(),
        Err(e) => return format!("# {e}\n").into_bytes(),
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(MAX_AUDIT);
    let mut out = lines[start..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out.into_bytes()
}

/// Write `pieces` and their manifest as `dir/NAME.tar.gz`: temporary name, fsync, rename.
/// The bundle's path and its manifest.
pub fn bundle(
    dir: &Path,
    name: &str,
    pieces: &[Piece],
) -> Result<(PathBuf, serde_json::Value), String> {
    let files: Vec<serde_json::Value> = pieces
        .iter()
        .map(|p| {
            let digest = Sha256::digest(&p.bytes);
            serde_json::json!({
                "name": p.name,
                "size": p.bytes.len(),
                "sha256": digest.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            })
        })
        .collect();
    let manifest = serde_json::json!({ "bundle": name, "files": files });
    let manifest_text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    let path = dir.join(format!("{name}.tar.gz"));
    let temp = dir.join(format!(".{name}.tar.gz.partial"));
    let failed = |e: std::io::Error| format!("cannot write {}: {e}", temp.display());
    crate::fsutil::check_dir_private(dir)?;
    // A leftover of a killed run (or anything planted there) goes; the bundle is created
    // afresh, mode 0600, never through a link.
    if let Err(e) = std::fs::remove_file(&temp)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        return Err(failed(e));
    }
    let written = (|| {
        let file = crate::fsutil::open_nofollow_rw(&temp, crate::fsutil::PRIVATE_FILE)?;
        let gz =
            crate::codec::Encoder::new(crate::codec::Codec::Gzip, file, crate::codec::Threads::One)
                .map_err(failed)?;
        let mut tar = tar::Builder::new(gz);
        let now = jiff::Timestamp::now().as_second().max(0) as u64;
        let mut add = |member: &str, bytes: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(now);
            header.set_cksum();
            tar.append_data(&mut header, format!("{name}/{member}"), bytes)
                .map_err(failed)
        };
        for piece in pieces {
            add(&piece.name, &piece.bytes)?;
        }
        add("manifest.json", manifest_text.as_bytes())?;
        let gz = tar.into_inner().map_err(failed)?;
        let file = gz.finish().map_err(failed)?;
        file.sync_all().map_err(failed)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    std::fs::rename(&temp, &path).map_err(|e| format!("cannot rename {}: {e}", temp.display()))?;
    crate::fsutil::sync_dir(&path);
    Ok((path, manifest))
}
