//! Log sets and their files: rotation and archiving (one function per action, `rotate_set`
//! and `archive_set`, each under the set's lock), reading lines the way applications write
//! them (search, summary, tail, and the `log_errors` probe), and the errors of all that.

pub mod action;
pub mod archive;
pub mod compress;
mod error;
pub mod format;
pub mod line;
pub mod rotate;
pub mod safe;
pub mod scan;
pub mod search;
pub mod set;
pub mod source;
pub mod state;
pub mod summary;
pub mod tail;

pub use action::{Archived, RotateOptions, archive_age, archive_set, rotate_set};
pub use error::Error;

use serde::{Deserialize, Serialize};

/// Named log sets: their files and policies.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    #[serde(deserialize_with = "crate::values::named_sets")]
    pub sets: std::collections::BTreeMap<String, set::LogSet>,
}
