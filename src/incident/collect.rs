//! `incident collect`: an evidence bundle in the incident's folder — the health report,
//! recent errors from the configured logs, system information, the tool's recent audit
//! entries and the diagnosis runbook's report — as one tar.gz with a manifest (every
//! file's name, size and SHA-256), written under a temporary name and renamed when
//! complete. The bundle is mode 0600 whatever the umask. The health report and the
//! diagnosis come from the caller (they run checks, a use case above this library).

use super::{Error, Incidents, Voice};
use crate::digest::Sha256;
use std::path::{Path, PathBuf};

/// Error lines gathered per bundle, at most (the newest are kept).
const MAX_ERRORS: usize = 2000;
/// Audit entries gathered, at most (the newest).
const MAX_AUDIT: usize = 500;

/// Where the evidence comes from besides the incident's own folder.
pub struct Sources<'a> {
    /// The configured log sets, for their recent errors.
    pub log_sets: &'a std::collections::BTreeMap<String, crate::logs::set::LogSet>,
    /// The tool's log folder, for its audit log.
    pub log_dir: &'a Path,
    /// The health report as JSON (the caller runs the checks).
    pub health: &'a dyn Fn() -> Vec<u8>,
    /// The report of diagnosis runbook `name` as JSON, or why it could not be loaded.
    pub diagnose: &'a dyn Fn(&str) -> Result<Vec<u8>, Error>,
}

/// A bundle written: where, and how many files it holds besides its manifest.
pub struct Collected {
    pub path: PathBuf,
    pub files: usize,
}

/// Gather the evidence for incident `id` into one bundle in its folder, recorded on the
/// timeline. A diagnosis runbook that cannot be loaded is a warning; the bundle goes
/// without it.
pub fn collect(
    book: &Incidents<'_>,
    id: &str,
    sources: &Sources<'_>,
    voice: &Voice<'_>,
) -> Result<Collected, Error> {
    let record = book.load(id)?;
    let mut pieces = vec![Piece {
        name: "health.json".to_string(),
        bytes: (sources.health)(),
    }];
    let since = book
        .now
        .checked_sub(jiff::SignedDuration::from_hours(24))
        .unwrap_or(book.now);
    pieces.push(Piece {
        name: "errors.log".to_string(),
        bytes: recent_errors(sources.log_sets, since),
    });
    pieces.push(Piece {
        name: "system.txt".to_string(),
        bytes: system_info(),
    });
    pieces.push(Piece {
        name: "audit.log".to_string(),
        bytes: audit_tail(sources.log_dir),
    });
    if let Some(kind) = &record.kind {
        match book.config.diagnosis_for(kind) {
            Some(name) => match (sources.diagnose)(name) {
                Ok(bytes) => pieces.push(Piece {
                    name: format!("diagnosis-{name}.json"),
                    bytes,
                }),
                Err(e) => (voice.warn)(&format!("{id}: diagnosis runbook {name}: {e}")),
            },
            None => (voice.warn)(&unknown_type(book.config, id, kind)),
        }
    }
    for piece in &mut pieces {
        piece.bytes = crate::redact::mask(&String::from_utf8_lossy(&piece.bytes))
            .into_owned()
            .into_bytes();
    }
    let name = format!("evidence-{}", book.now.strftime("%Y%m%dT%H%M%SZ"));
    let (path, manifest) = bundle(&book.store.path(id), &name, &pieces)?;
    {
        let _held = book.lock(id)?;
        let names: Vec<&str> = pieces.iter().map(|p| p.name.as_str()).collect();
        let text = format!("Evidence collected: {} ({})", name, names.join(", "));
        book.store.append(id, &book.entry("collected", text))?;
    }
    crate::logging::audit::record(
        "incident.collect",
        "ok",
        Some(&format!("{id}: {}", path.display())),
    );
    let files = manifest["files"].as_array().map_or(0, Vec::len);
    Ok(Collected { path, files })
}

/// Why an incident of type `kind` gets no diagnosis: the known types, and the closest.
fn unknown_type(config: &super::IncidentConfig, id: &str, kind: &str) -> String {
    let known = config.incident_types();
    let hint = crate::error::hint(kind, &known);
    format!(
        "{id}: no diagnosis runbook for incident type {kind:?} (known: {}; `incident.diagnosis` in config adds one){hint}",
        known.join(", ")
    )
}

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
) -> Result<(PathBuf, serde_json::Value), Error> {
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
    let failed = |e: std::io::Error| Error::Store(format!("cannot write {}: {e}", temp.display()));
    crate::fsutil::check_dir_private(dir).map_err(Error::from)?;
    // Written under `.NAME.tar.gz.partial` (a leftover of a killed run, or anything planted
    // there, goes first), created afresh, mode 0600, never through a link; then renamed.
    let how = crate::fsutil::Publish::replacing()
        .temp(temp.clone())
        .writer_syncs();
    let write = |temp: &Path| {
        let file = crate::fsutil::open_nofollow_rw(temp, crate::fsutil::PRIVATE_FILE)
            .map_err(Error::from)?;
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
    };
    crate::fsutil::publish(&path, &how, write).map_err(|e| match e {
        crate::fsutil::PublishError::Write(e) => e,
        crate::fsutil::PublishError::Place(crate::fsutil::Error::Rename { error, .. }) => {
            Error::Store(format!("cannot rename {}: {error}", temp.display()))
        }
        crate::fsutil::PublishError::Place(crate::fsutil::Error::Io { error, .. }) => failed(error),
        crate::fsutil::PublishError::Place(e) => Error::from(e),
    })?;
    Ok((path, manifest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::{Declaration, IncidentConfig, declare};
    use std::cell::RefCell;

    /// Each built-in incident type runs its shipped diagnosis runbook; config overrides one
    /// and adds others; an unknown type is named with the known ones and the closest.
    #[test]
    fn incident_types_map_to_diagnosis_runbooks_and_config_wins() {
        let mut config = IncidentConfig::default();
        assert_eq!(config.diagnosis_for("database"), Some("database-issues"));
        assert_eq!(config.diagnosis_for("api-down"), Some("api-unavailable"));
        assert_eq!(config.diagnosis_for("cache"), Some("cache"));
        assert_eq!(config.diagnosis_for("Cache"), None);
        config
            .diagnosis
            .insert("cache".to_string(), "my-cache.yaml".to_string());
        config
            .diagnosis
            .insert("payments".to_string(), "payments".to_string());
        assert_eq!(config.diagnosis_for("cache"), Some("my-cache.yaml"));
        assert_eq!(config.diagnosis_for("payments"), Some("payments"));
        let message = unknown_type(&config, "INC-1", "disk-spce");
        assert!(
            message.starts_with("INC-1: no diagnosis runbook for incident type \"disk-spce\" (known: api-down, api-unavailable, cache, certificate-expiry, database, disk-space, high-error-rate, high-memory, payments, queue-backlog, slow-responses; "),
            "{message}"
        );
        assert!(
            message.ends_with("did you mean \"disk-space\"?"),
            "{message}"
        );
    }

    /// The health report and the diagnosis come from the caller; a diagnosis that cannot
    /// be loaded is a warning and the bundle goes without it.
    #[test]
    fn evidence_comes_from_the_callers_sources_and_a_failed_diagnosis_is_a_warning() {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut config = IncidentConfig {
            dir: Some(crate::values::Text::plain(
                temp.path().join("incidents").display().to_string(),
            )),
            ..IncidentConfig::default()
        };
        config
            .diagnosis
            .insert("api-unavailable".to_string(), "diagnose".to_string());
        let book = Incidents::open(&config, temp.path(), PathBuf::from("ops.yaml"))
            .expect("built-in templates")
            .at("2026-01-10T10:05:00Z".parse().expect("a time"));
        let warnings = RefCell::new(Vec::<String>::new());
        let warn = |text: &str| warnings.borrow_mut().push(text.to_string());
        let voice = Voice {
            message: &|_| {},
            warn: &warn,
        };
        let new = Declaration {
            severity: "SEV-1".to_string(),
            title: "API down".to_string(),
            impact: Vec::new(),
            components: Vec::new(),
            commander: None,
            kind: Some("api-unavailable".to_string()),
            service: None,
            eta: None,
        };
        let record = declare(&book, new, &voice).expect("declared");
        let asked = RefCell::new(Vec::<String>::new());
        let diagnose = |name: &str| {
            asked.borrow_mut().push(name.to_string());
            Err(Error::Diagnosis("no runbook \"diagnose\"".to_string()))
        };
        let sets = std::collections::BTreeMap::new();
        let sources = Sources {
            log_sets: &sets,
            log_dir: temp.path(),
            health: &|| b"{\"status\": \"ok\"}".to_vec(),
            diagnose: &diagnose,
        };
        let collected = collect(&book, &record.id, &sources, &voice).expect("collected");
        assert_eq!(collected.files, 4);
        assert_eq!(
            collected.path,
            book.store
                .path(&record.id)
                .join("evidence-20260110T100500Z.tar.gz")
        );
        assert_eq!(asked.into_inner(), ["diagnose"]);
        assert_eq!(
            warnings.into_inner(),
            ["INC-20260110-1: diagnosis runbook diagnose: no runbook \"diagnose\""]
        );
        let timeline = book.store.timeline(&record.id);
        let last = timeline.last().expect("an entry");
        assert_eq!(
            last.text,
            "Evidence collected: evidence-20260110T100500Z (health.json, errors.log, system.txt, audit.log)"
        );
    }
}
