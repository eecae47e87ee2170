//! The records on disk: `DIR/INC-YYYYMMDD-N/incident.json` (rewritten atomically) and
//! `timeline.jsonl` (append-only), each change under the incident's lock, all or nothing
//! where the disk allows it.

use super::{Entry, Error, Incident};
use crate::fsutil;
use std::path::{Path, PathBuf};

pub struct Store {
    dir: PathBuf,
}

/// A change that did not (fully) land.
#[derive(Debug)]
pub enum Unrecorded {
    /// Nothing changed: neither the timeline nor the record.
    Nothing(Error),
    /// The timeline entries landed, the record (`incident.json`) did not.
    RecordOnly(Error),
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
    ) -> Result<Incident, Error> {
        fsutil::create_dir_private(&self.dir, fsutil::PRIVATE_DIR).map_err(Error::from)?;
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
                    .map_err(|e| {
                        Error::Store(format!("cannot set the mode of {}: {e}", dir.display()))
                    })?;
                    incident.id = id;
                    break dir;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => {
                    return Err(Error::Store(format!(
                        "cannot create {}: {e}",
                        dir.display()
                    )));
                }
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
                Err(Error::Store(format!("the incident was not recorded: {e}")))
            }
            Err(Unrecorded::RecordOnly(e)) => Err(Error::Store(format!(
                "{}: its timeline was written but not its record: {e}",
                incident.id
            ))),
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
        .map_err(|e| Unrecorded::Nothing(Error::from(e)))?;
        self.append_all(&incident.id, entries)
            .map_err(Unrecorded::Nothing)?;
        staged
            .commit()
            .map_err(|e| Unrecorded::RecordOnly(Error::from(e)))
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
    pub fn known(&self, id: &str) -> Result<(), Error> {
        if is_id(id) && self.path(id).is_dir() {
            Ok(())
        } else {
            Err(Error::Unknown(self.unknown(id)))
        }
    }

    /// Wait for and take an incident's lock; an unknown id is an error naming it.
    pub fn lock(&self, id: &str) -> Result<crate::lock::Lock, Error> {
        let dir = self.path(id);
        self.known(id)?;
        fsutil::check_dir_private(&self.dir).map_err(Error::from)?;
        crate::lock::Lock::wait(&dir.join(".lock")).map_err(Error::from)
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

    /// The record of `id`. An id of another shape is unknown; a record folder without a
    /// readable record is a failure, not a usage error.
    pub fn load(&self, id: &str) -> Result<Incident, Error> {
        if !is_id(id) {
            return Err(Error::Unknown(self.unknown(id)));
        }
        let path = self.path(id).join("incident.json");
        let bytes = fsutil::read_state(&path)
            .map_err(Error::from)?
            .ok_or_else(|| Error::Store(self.unknown(id)))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Store(format!("{}: {e}", path.display())))
    }

    /// Append one timeline entry.
    pub fn append(&self, id: &str, entry: &Entry) -> Result<(), Error> {
        self.append_all(id, std::slice::from_ref(entry))
    }

    /// Append entries with one `write` of complete lines, then fsync: all of them land or
    /// none (a short write on a full disk is cut off again).
    pub fn append_all(&self, id: &str, entries: &[Entry]) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        let dir = self.path(id);
        fsutil::check_dir_private(&dir).map_err(Error::from)?;
        let path = dir.join("timeline.jsonl");
        let mut lines = String::new();
        for entry in entries {
            lines.push_str(&serde_json::to_string(entry).unwrap_or_default());
            lines.push('\n');
        }
        let mut file =
            fsutil::open_nofollow_append(&path, fsutil::PRIVATE_FILE).map_err(Error::from)?;
        fsutil::append_whole(&mut file, lines.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| Error::Store(format!("cannot write {}: {e}", path.display())))
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
