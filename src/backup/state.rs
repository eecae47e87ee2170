//! What `backup verify` records per set (`STATE_DIR/backup-verified.json`): the last
//! backup that passed verification and the last that passed a restore drill, with when.
//! The `backup` step reads it to catch drills that stopped.

use super::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Record {
    pub verified_id: Option<String>,
    pub verified_at: Option<String>,
    pub drilled_id: Option<String>,
    pub drilled_at: Option<String>,
}

pub type Records = BTreeMap<String, Record>;

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("backup-verified.json")
}

/// The records; none when the file is missing or unreadable (nothing verified yet).
pub fn load(state_dir: &Path) -> Records {
    crate::fsutil::read_state(&path(state_dir))
        .ok()
        .flatten()
        .and_then(|t| serde_json::from_slice(&t).ok())
        .unwrap_or_default()
}

/// Record a passed verification (and drill, with `drilled`) of `id` of `set`.
pub fn record(
    state_dir: &Path,
    set: &str,
    id: &str,
    at: jiff::Timestamp,
    drilled: bool,
) -> Result<(), Error> {
    // Verifications of different sets may finish at once in two processes.
    let _turn = crate::lock::Lock::wait(&state_dir.join("backup-verified.json.lock"))?;
    let mut records = load(state_dir);
    let entry = records.entry(set.to_string()).or_default();
    entry.verified_id = Some(id.to_string());
    entry.verified_at = Some(at.to_string());
    if drilled {
        entry.drilled_id = Some(id.to_string());
        entry.drilled_at = Some(at.to_string());
    }
    let text = serde_json::to_string_pretty(&records).unwrap_or_default();
    Ok(crate::fsutil::write_state(
        &path(state_dir),
        text.as_bytes(),
    )?)
}
