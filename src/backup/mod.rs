//! Backups (config `backup:`): sets of paths with excludes, archived as tar + zstd (or
//! gzip) with a manifest of every file's size, mode, mtime and SHA-256. A backup becomes
//! visible only when complete: everything is written into `ID.partial/`, fsynced, the
//! manifest last, then the directory is renamed to `ID/`.

pub mod archive;
pub mod commands;
pub mod drill;
mod error;
mod ops;
pub mod restore;
pub mod retention;
pub mod state;
pub mod store;

pub use error::Error;
pub use ops::*;

use crate::values::Text;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// A local directory, or `s3://bucket/prefix`.
    pub destination: Option<Text>,
    /// For `s3://` destinations: endpoint and region (credentials come from the environment).
    pub s3: store::S3Config,
    #[serde(deserialize_with = "crate::values::named_sets")]
    pub sets: BTreeMap<String, BackupSet>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSet {
    /// Files and directories to back up.
    #[serde(default)]
    pub paths: Vec<Text>,
    /// Command sources (`pg_dump`, `sqlite3 DB .dump`): one, or a list.
    #[serde(default)]
    pub command: commands::Sources,
    /// Run after `backup verify --restore-test` has restored into a temporary directory:
    /// a command (working directory and `$OPSBOOK_RESTORE_DIR` = that directory), or
    /// `{ runbook: NAME }` (with `{{ restore_dir }}`): row counts, smoke tests.
    #[serde(default)]
    pub verify: Option<commands::Verify>,
    /// Globs of names or paths left out (`*.pyc`, `__pycache__`, `.git`).
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub compress: Codec,
    /// Retention, with restic's meaning: the rules are OR-ed; each keeps the newest backup
    /// of each of the last N calendar buckets. No rule at all removes nothing.
    #[serde(default)]
    pub keep_last: Option<usize>,
    #[serde(default)]
    pub keep_daily: Option<usize>,
    #[serde(default)]
    pub keep_weekly: Option<usize>,
    #[serde(default)]
    pub keep_monthly: Option<usize>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Multi-threaded zstd (the default): `tar --zstd -xf` reads it.
    #[default]
    Zstd,
    /// gzip: `tar -xzf` reads it.
    Gzip,
}

impl Codec {
    /// The stream format this config value chooses.
    pub fn codec(self) -> crate::codec::Codec {
        match self {
            Codec::Zstd => crate::codec::Codec::Zstd,
            Codec::Gzip => crate::codec::Codec::Gzip,
        }
    }

    pub fn file_name(self) -> &'static str {
        match self {
            Codec::Zstd => "data.tar.zst",
            Codec::Gzip => "data.tar.gz",
        }
    }
}

/// What a backup holds, written last (`manifest.json`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Manifest {
    pub id: String,
    pub set: String,
    pub created: String,
    pub host: String,
    pub tool_version: String,
    pub compression: Codec,
    pub archive: String,
    pub archive_bytes: u64,
    pub files: Vec<FileEntry>,
    /// Command sources; their files are also in `files`.
    #[serde(default)]
    pub commands: Vec<commands::CommandEntry>,
    /// Directories and symlinks (the archive's entries that are not files).
    #[serde(default)]
    pub others: Vec<OtherEntry>,
    /// `files` and `others` list every entry of the archive: a restore checks the listing
    /// and needs no first pass over the archive (backups made before this have `false`).
    #[serde(default)]
    pub listing: bool,
}

/// A directory (no target) or a symlink in a backup.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct OtherEntry {
    pub path: String,
    /// The path's raw bytes in hex, only when they are not UTF-8 (`path` is then lossy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The link target's raw bytes in hex, only when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_hex: Option<String>,
    pub mode: u32,
    pub mtime: i64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct FileEntry {
    /// The path inside the archive (relative, `/`-separated); lossy when `path_hex` is set.
    pub path: String,
    /// The path's raw bytes in hex, only when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    pub size: u64,
    pub mode: u32,
    pub mtime: i64,
    pub sha256: String,
}

impl BackupConfig {
    /// The destination's store, or a usage error naming what is missing or wrong.
    pub fn store(&self) -> Result<store::Store, Error> {
        let Some(dest) = &self.destination else {
            return Err(Error::NoDestination);
        };
        store::Store::open(dest, &self.s3)
    }
}

/// `latest` (optionally of one set) or an id.
pub fn find<'a>(backups: &'a [Manifest], wanted: &str, set: Option<&str>) -> Option<&'a Manifest> {
    if wanted == "latest" {
        return backups
            .iter()
            .rev()
            .find(|m| set.is_none_or(|s| m.set == s));
    }
    backups.iter().find(|m| m.id == wanted)
}

/// How a name (a member path or a link target) is written in a manifest: as text when its
/// bytes are UTF-8, else as lossy text for people plus the exact bytes in lowercase hex.
pub fn encode_name(bytes: &[u8]) -> (String, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), None),
        Err(_) => {
            let hex = bytes.iter().map(|b| format!("{b:02x}")).collect();
            (String::from_utf8_lossy(bytes).into_owned(), Some(hex))
        }
    }
}

/// The exact bytes of a name written by [`encode_name`]; `None` when the hex is malformed.
pub fn decode_name(text: &str, hex: Option<&str>) -> Option<Vec<u8>> {
    let Some(hex) = hex else {
        return Some(text.as_bytes().to_vec());
    };
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

impl FileEntry {
    /// The member path's exact bytes (`None` for a malformed manifest).
    pub fn path_bytes(&self) -> Option<Vec<u8>> {
        decode_name(&self.path, self.path_hex.as_deref())
    }
}

impl OtherEntry {
    /// The member path's exact bytes (`None` for a malformed manifest).
    pub fn path_bytes(&self) -> Option<Vec<u8>> {
        decode_name(&self.path, self.path_hex.as_deref())
    }

    /// A symlink's target, exact bytes (`None` for a directory or a malformed manifest).
    pub fn target_bytes(&self) -> Option<Vec<u8>> {
        let target = self.target.as_deref()?;
        decode_name(target, self.target_hex.as_deref())
    }
}

#[cfg(test)]
mod name_tests {
    use super::{decode_name, encode_name};

    #[test]
    fn names_round_trip_byte_exact() {
        for name in [&b"etc/app/x.conf"[..], b"bad\xffname", b"\xfe\xff", b""] {
            let (text, hex) = encode_name(name);
            assert_eq!(decode_name(&text, hex.as_deref()).as_deref(), Some(name));
        }
        assert_eq!(encode_name(b"ok").1, None);
        assert_eq!(encode_name(b"a\xff").1.as_deref(), Some("61ff"));
        assert_eq!(decode_name("x", Some("6")), None);
    }
}
