//! Incidents (config `incident:`): a record per incident in `DIR/INC-YYYYMMDD-N/`, as plain
//! files a person can read: `incident.json` (the record, rewritten atomically) and
//! `timeline.jsonl` (append-only, one entry per line). Every change takes the incident's
//! lock (`flock` on `.lock`, waiting), so two `incident update` at once both land.
//! Records are mode 0600 in 0700 directories no one else can write to, never opened
//! through a link; a change is all or nothing where the disk allows it, and otherwise
//! says exactly which part landed.

pub mod collect;
pub mod notify;
pub mod templates;

use crate::fsutil;
use crate::values::{Duration, Text};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentConfig {
    /// Where records live (default `STATE_DIR/incidents`).
    pub dir: Option<Text>,
    /// The severity scheme, most severe first (default: seed 001's SEV-1 … SEV-4).
    pub severities: Option<Vec<Severity>>,
    pub webhook: Option<notify::Webhook>,
    /// Template overrides (minijinja): declaration, update, escalation, report.
    pub templates: std::collections::BTreeMap<String, String>,
    /// Incident type → diagnosis runbook, for `incident collect`.
    pub diagnosis: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Severity {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// How soon someone must respond (acknowledge).
    pub response: Duration,
    /// Who is brought in, and after how long.
    #[serde(default)]
    pub escalation: Vec<Escalation>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    pub after: Duration,
    pub who: String,
}

fn minutes(m: u64) -> Duration {
    Duration(std::time::Duration::from_secs(m * 60))
}

/// Seed 001's severity levels, response times and escalation matrix.
pub fn default_severities() -> Vec<Severity> {
    let level = |name: &str, description: &str, response: u64, chain: &[(u64, &str)]| Severity {
        name: name.to_string(),
        description: description.to_string(),
        response: minutes(response),
        escalation: chain
            .iter()
            .map(|(after, who)| Escalation {
                after: minutes(*after),
                who: who.to_string(),
            })
            .collect(),
    };
    vec![
        level(
            "SEV-1",
            "Critical - Service down",
            15,
            &[
                (0, "On-call"),
                (15, "Platform Lead"),
                (60, "CTO"),
                (240, "CEO"),
            ],
        ),
        level(
            "SEV-2",
            "Major - Significant degradation",
            60,
            &[(15, "On-call"), (60, "Platform Lead"), (240, "CTO")],
        ),
        level(
            "SEV-3",
            "Minor - Limited impact",
            240,
            &[(240, "On-call"), (1440, "Platform Lead")],
        ),
        level(
            "SEV-4",
            "Low - Minimal impact",
            1440,
            &[(10080, "Platform Lead")],
        ),
    ]
}

impl IncidentConfig {
    pub fn severities(&self) -> Vec<Severity> {
        self.severities.clone().unwrap_or_else(default_severities)
    }

    /// The severity named `name`, or a usage error listing the known ones.
    pub fn severity(&self, name: &str) -> Result<Severity, String> {
        let all = self.severities();
        if let Some(found) = all.iter().find(|s| s.name.eq_ignore_ascii_case(name)) {
            return Ok(found.clone());
        }
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        let hint = crate::error::hint(name, &names);
        Err(format!(
            "unknown severity {name:?} (known: {}){hint}",
            names.join(", ")
        ))
    }

    pub fn dir(&self, state_dir: &Path) -> PathBuf {
        self.dir.as_ref().map_or_else(
            || state_dir.join("incidents"),
            |d| PathBuf::from(d.as_str()),
        )
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Investigating => "investigating",
            Status::Identified => "identified",
            Status::Monitoring => "monitoring",
            Status::Resolved => "resolved",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ActionItem {
    pub action: String,
    pub owner: String,
    pub due: String,
}

/// The record (`incident.json`); the timeline lives beside it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Incident {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub status: Status,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub impact: Vec<String>,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default)]
    pub commander: Option<String>,
    pub declared: String,
    #[serde(default)]
    pub acknowledged: Option<String>,
    #[serde(default)]
    pub mitigated: Option<String>,
    #[serde(default)]
    pub resolved: Option<String>,
    #[serde(default)]
    pub root_cause: Option<String>,
    #[serde(default)]
    pub lessons: Vec<String>,
    #[serde(default)]
    pub action_items: Vec<ActionItem>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Entry {
    pub time: String,
    pub author: String,
    /// declared, status, note, impact, escalated, notified, notify-failed, resolved, collected
    pub kind: String,
    pub text: String,
}

pub struct Store {
    dir: PathBuf,
}

/// A change that did not (fully) land.
#[derive(Debug)]
pub enum Unrecorded {
    /// Nothing changed: neither the timeline nor the record.
    Nothing(String),
    /// The timeline entries landed, the record (`incident.json`) did not.
    RecordOnly(String),
}

impl Store {
    pub fn new(dir: PathBuf) -> Self {
        Store { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Record a new incident: the next free `INC-YYYYMMDD-N` (creating its directory is
    /// what claims the number, so two declarations at once get two numbers).
    pub fn declare(
        &self,
        mut incident: Incident,
        entry: Entry,
        day: &str,
    ) -> Result<Incident, String> {
        fsutil::create_dir_private(&self.dir, fsutil::PRIVATE_DIR)?;
        let taken = self
            .ids()
            .iter()
            .filter_map(|id| id.strip_prefix(&format!("INC-{day}-"))?.parse::<u32>().ok())
            .max()
            .unwrap_or(0);
        let mut n = taken + 1;
        let dir = loop {
            let id = format!("INC-{day}-{n}");
            let dir = self.dir.join(&id);
            let created = {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .mode(fsutil::PRIVATE_DIR)
                    .create(&dir)
            };
            match created {
                Ok(()) => {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(
                        &dir,
                        std::fs::Permissions::from_mode(fsutil::PRIVATE_DIR),
                    )
                    .map_err(|e| format!("cannot set the mode of {}: {e}", dir.display()))?;
                    incident.id = id;
                    break dir;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
            }
        };
        let recorded = self
            .lock(&incident.id)
            .map_err(Unrecorded::Nothing)
            .and_then(|_held| self.update(&incident, &[entry]));
        match recorded {
            Ok(()) => {
                fsutil::sync_dir(&dir);
                Ok(incident)
            }
            // Nothing of it is on disk: give the number back.
            Err(Unrecorded::Nothing(e)) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(format!("the incident was not recorded: {e}"))
            }
            Err(Unrecorded::RecordOnly(e)) => Err(format!(
                "{}: its timeline was written but not its record: {e}",
                incident.id
            )),
        }
    }

    /// Record `entries` on the timeline and `incident` as the record, all or nothing as
    /// far as the disk allows: the record is written under a temporary name first, then
    /// the entries in one write, then the record is renamed into place. Call with the
    /// incident's lock held.
    pub fn update(&self, incident: &Incident, entries: &[Entry]) -> Result<(), Unrecorded> {
        let text = serde_json::to_string_pretty(incident).unwrap_or_default();
        let staged = fsutil::stage_state(
            &self.path(&incident.id).join("incident.json"),
            format!("{text}\n").as_bytes(),
        )
        .map_err(|e| Unrecorded::Nothing(e.into()))?;
        self.append_all(&incident.id, entries)
            .map_err(Unrecorded::Nothing)?;
        staged
            .commit()
            .map_err(|e| Unrecorded::RecordOnly(e.into()))
    }

    /// Every incident id, oldest first.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("INC-"))
            .collect();
        ids.sort_by_key(|id| {
            let mut parts = id.rsplitn(2, '-');
            let n = parts
                .next()
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(0);
            (parts.next().unwrap_or("").to_string(), n)
        });
        ids
    }

    /// An error naming `id` (and the ids there are) unless it is a recorded incident.
    pub fn known(&self, id: &str) -> Result<(), String> {
        if is_id(id) && self.path(id).is_dir() {
            Ok(())
        } else {
            Err(self.unknown(id))
        }
    }

    /// Wait for and take an incident's lock; an unknown id is an error naming it.
    pub fn lock(&self, id: &str) -> Result<crate::lock::Lock, String> {
        let dir = self.path(id);
        self.known(id)?;
        fsutil::check_dir_private(&self.dir)?;
        crate::lock::Lock::wait(&dir.join(".lock")).map_err(String::from)
    }

    fn unknown(&self, id: &str) -> String {
        let ids = self.ids();
        let names: Vec<&str> = ids.iter().map(String::as_str).collect();
        let hint = crate::error::hint(id, &names);
        format!(
            "no incident {id:?} in {} (`opsbook incident list` shows them){hint}",
            self.dir.display()
        )
    }

    pub fn load(&self, id: &str) -> Result<Incident, String> {
        if !is_id(id) {
            return Err(self.unknown(id));
        }
        let path = self.path(id).join("incident.json");
        let bytes = fsutil::read_state(&path)?.ok_or_else(|| self.unknown(id))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Append one timeline entry.
    pub fn append(&self, id: &str, entry: &Entry) -> Result<(), String> {
        self.append_all(id, std::slice::from_ref(entry))
    }

    /// Append entries with one `write` of complete lines, then fsync: all of them land or
    /// none (a short write on a full disk is cut off again).
    pub fn append_all(&self, id: &str, entries: &[Entry]) -> Result<(), String> {
        if entries.is_empty() {
            return Ok(());
        }
        let dir = self.path(id);
        fsutil::check_dir_private(&dir)?;
        let path = dir.join("timeline.jsonl");
        let mut lines = String::new();
        for entry in entries {
            lines.push_str(&serde_json::to_string(entry).unwrap_or_default());
            lines.push('\n');
        }
        let mut file = fsutil::open_nofollow_append(&path, fsutil::PRIVATE_FILE)?;
        fsutil::append_whole(&mut file, lines.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    pub fn timeline(&self, id: &str) -> Vec<Entry> {
        let bytes = fsutil::read_nofollow(&self.path(id).join("timeline.jsonl"))
            .ok()
            .flatten()
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// Whether `id` has the shape `INC-YYYYMMDD-N` (so it can never name a path elsewhere).
fn is_id(id: &str) -> bool {
    id.strip_prefix("INC-").is_some_and(|rest| {
        !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit() || c == '-')
    })
}

/// Seconds from `from` to `to` (RFC 3339 times); 0 when unreadable or negative.
pub fn seconds_between(from: &str, to: jiff::Timestamp) -> u64 {
    from.parse::<jiff::Timestamp>()
        .map(|at| to.as_second().saturating_sub(at.as_second()).max(0) as u64)
        .unwrap_or(0)
}

/// `1h 5m`, `3d 2h`: minutes precision.
pub fn human(secs: u64) -> String {
    let secs = secs - secs % 60;
    if secs == 0 {
        return "0m".to_string();
    }
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

/// Who is due by now per the escalation matrix.
pub fn due(severity: &Severity, elapsed: u64) -> Vec<&Escalation> {
    severity
        .escalation
        .iter()
        .filter(|e| e.after.0.as_secs() <= elapsed)
        .collect()
}

/// The person recording a change.
pub fn author() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "opsbook".to_string())
}
