//! When each file of a log set was last rotated (what age triggers need). Saved after every
//! file through a temporary file, fsync and rename, so a crash mid-run never leaves the
//! record behind the files on disk.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct State {
    /// File path → unix time of its last rotation.
    pub rotated: BTreeMap<String, i64>,
    #[serde(skip)]
    path: PathBuf,
}

impl State {
    /// The state of `set` under `state_dir`; a missing file is an empty state.
    pub fn load(state_dir: &Path, set: &str) -> Result<Self, super::Error> {
        let path = state_dir.join(format!("logs-{set}.json"));
        let mut state: State = match crate::fsutil::read_state(&path)? {
            Some(text) => {
                serde_json::from_slice(&text).map_err(|error| super::Error::Unreadable {
                    what: "rotation state",
                    path: path.clone(),
                    error,
                    then: None,
                })?
            }
            None => State::default(),
        };
        state.path = path;
        Ok(state)
    }

    pub fn save(&self) -> Result<(), super::Error> {
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        Ok(crate::fsutil::write_state(&self.path, text.as_bytes())?)
    }
}
