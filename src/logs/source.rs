//! Which log files a step reads: one `path`, the files a `glob` matches, or a configured
//! log `set` with its rotated and compressed history (oldest first).

use super::search::Input;
use super::set::LogSet;
use crate::values::{Invalid, Text};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Path(Text),
    Glob(Text),
    Set(String),
}

impl Source {
    /// Exactly one of `path`, `glob` and `set`, as written in a step. A glob that cannot
    /// be a pattern is refused here, while the runbook is read.
    pub fn one_of(
        path: Option<Text>,
        glob: Option<Text>,
        set: Option<String>,
    ) -> Result<Source, Invalid> {
        match (path, glob, set) {
            (Some(path), None, None) => Ok(Source::Path(path)),
            (None, Some(glob), None) => {
                glob::Pattern::new(glob.as_str())
                    .map_err(|e| format!("{:?} is not a valid glob: {e}", glob.shown()))?;
                Ok(Source::Glob(glob))
            }
            (None, None, Some(set)) if !set.trim().is_empty() => Ok(Source::Set(set)),
            (None, None, Some(_)) => Err(Invalid("`set` is empty: name a log set".to_string())),
            (None, None, None) => Err(Invalid("give one of `path`, `glob` or `set`".to_string())),
            _ => Err(Invalid(
                "give only one of `path`, `glob` and `set`".to_string(),
            )),
        }
    }

    /// How the source is named in messages (a secret in a path shown masked).
    pub fn shown(&self) -> String {
        match self {
            Source::Path(path) => path.shown().to_string(),
            Source::Glob(glob) => glob.shown().to_string(),
            Source::Set(set) => format!("log set {set}"),
        }
    }

    /// The files to read now, oldest first, each with how its lines are written. A glob
    /// that matches nothing and a set not in `sets` are errors (a count of 0 over no file
    /// would be a false answer).
    pub fn inputs(&self, sets: &BTreeMap<String, LogSet>) -> Result<Vec<Input>, super::Error> {
        use super::Error;
        let paths = match self {
            Source::Set(name) => {
                if !sets.contains_key(name) {
                    let known: Vec<&str> = sets.keys().map(String::as_str).collect();
                    return Err(Error::Request(format!(
                        "no log set {name:?} in `logs.sets`{}",
                        crate::error::hint(name, &known)
                    )));
                }
                return super::search::inputs(sets, &[], std::slice::from_ref(name));
            }
            Source::Path(path) => vec![PathBuf::from(path.as_str())],
            Source::Glob(glob) => {
                let matches = glob::glob(glob.as_str()).map_err(|e| {
                    Error::Paths(format!("{:?} is not a valid glob: {e}", glob.shown()))
                })?;
                let mut paths = Vec::new();
                for entry in matches {
                    paths.push(entry.map_err(|e| {
                        let path = e.path().to_path_buf();
                        Error::io("read", &path, e.into())
                    })?);
                }
                if paths.is_empty() {
                    return Err(Error::Paths(format!("{} matches no file", glob.shown())));
                }
                paths.sort();
                paths
            }
        };
        super::search::inputs(sets, &paths, &[])
    }
}
