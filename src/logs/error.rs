//! What can go wrong in the logs library. Every message names the file, set or value at
//! fault and, where there is one, what to do; `kind` tells the CLI which exit code it is.

use crate::error::Kind;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The set's lock: held by another run (exit 75), or it could not be taken.
    #[error(transparent)]
    Lock(anyhow::Error),
    /// A file or directory that could not be read, written, created, renamed or removed.
    #[error("cannot {op} {}: {error}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    /// An operation on two files that failed: `cannot rename A to B`, `cannot compare A
    /// with B`.
    #[error("cannot {op} {} {join} {}: {error}", from.display(), to.display())]
    Between {
        op: &'static str,
        from: PathBuf,
        join: &'static str,
        to: PathBuf,
        error: std::io::Error,
    },
    /// A file that could not be added to an archive being written.
    #[error("cannot add {} to the archive: {error}", path.display())]
    AddToArchive {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A file whose reading stopped part way (a damaged compressed file): what was read
    /// counts, the rest is skipped.
    #[error("{}: {error} (skipped the rest)", path.display())]
    CutShort {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A stretch of a file that one of the parallel readers could not read.
    #[error("{}: {error}", path.display())]
    Stretch {
        path: PathBuf,
        error: std::io::Error,
    },
    /// One of the parallel readers of a file stopped without an answer.
    #[error("a reader thread crashed")]
    ReaderCrashed,
    /// A search pattern that is not a valid regular expression (exit 64).
    #[error("invalid regex {pattern:?}: {error}")]
    Pattern {
        pattern: String,
        error: Box<regex::Error>,
    },
    /// A set's `paths` that name nothing usable: an invalid glob, no match, a directory.
    #[error("{0}")]
    Paths(String),
    /// A file or directory opsbook refuses to touch: a symbolic link, not a regular file,
    /// more than one hard link, a directory others can write to, or a name in the way.
    #[error("{0}")]
    Refused(String),
    /// A compressed copy or an archive that does not read back as written.
    #[error("{0}")]
    Damaged(String),
    /// The rotation state or the intent record that could not be read or saved.
    #[error(transparent)]
    State(#[from] crate::fsutil::Error),
    /// A rotation state or intent record (`what`, with its path) that is not what opsbook
    /// wrote; `then` says what to do, when there is something.
    #[error("{what} {} is unreadable{}", path.display(), match then {
        Some(then) => format!(" ({error}): {then}"),
        None => format!(": {error}"),
    })]
    Unreadable {
        what: &'static str,
        path: PathBuf,
        error: serde_json::Error,
        then: Option<&'static str>,
    },
    /// A record that could not be put into JSON.
    #[error("{0}")]
    Encode(serde_json::Error),
    /// The intent record could not be made before a file was touched: nothing rotated.
    #[error("cannot record the rotation's intent ({error}); {shown} not rotated")]
    NoIntent { error: Box<Error>, shown: String },
    /// The writer could not be told to reopen its log (pid file, signal, `postrotate`).
    #[error("{0}")]
    Notify(String),
    /// What was asked cannot be done as asked: a directory named as a log, no file and no
    /// set to read, a set that is not configured (exit 64).
    #[error("{0}")]
    Request(String),
    /// A set to archive with no age: neither the caller's override (spelled `option`:
    /// `--older-than`, `` `older_than` ``) nor the set's `archive_after` (exit 64).
    #[error("log set {set:?} has no `archive_after`: give one, or {option}")]
    NoArchiveAge { set: String, option: &'static str },
    /// An error in one of the sets, named.
    #[error("log set {set}: {error}")]
    InSet { set: String, error: Box<Error> },
    /// An error with what it meant for the run after it (`…; app.log not rotated`).
    #[error("{error}{tail}")]
    Then { error: Box<Error>, tail: String },
}

impl Error {
    /// `cannot OP PATH: ERROR`.
    pub fn io(op: &'static str, path: &std::path::Path, error: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.to_path_buf(),
            error,
        }
    }

    /// `cannot rename FROM to TO: ERROR`.
    pub fn rename(from: &std::path::Path, to: &std::path::Path, error: std::io::Error) -> Error {
        Error::between("rename", from, "to", to, error)
    }

    /// `cannot OP FROM JOIN TO: ERROR`.
    pub fn between(
        op: &'static str,
        from: &std::path::Path,
        join: &'static str,
        to: &std::path::Path,
        error: std::io::Error,
    ) -> Error {
        Error::Between {
            op,
            from: from.to_path_buf(),
            join,
            to: to.to_path_buf(),
            error,
        }
    }

    /// `PATH: ERROR (skipped the rest)`.
    pub fn cut_short(path: &std::path::Path, error: std::io::Error) -> Error {
        Error::CutShort {
            path: path.to_path_buf(),
            error,
        }
    }

    /// This error followed by what it meant (`tail` starts with its own separator).
    pub fn then(self, tail: impl Into<String>) -> Error {
        Error::Then {
            error: Box::new(self),
            tail: tail.into(),
        }
    }

    /// The exit code's kind: a held lock is busy, a bad pattern is a usage error.
    pub fn kind(&self) -> Kind {
        match self {
            Error::Lock(inner) => crate::error::kind_in(inner.as_ref()),
            Error::Pattern { .. } | Error::Request(_) | Error::NoArchiveAge { .. } => Kind::Usage,
            Error::Then { error, .. }
            | Error::InSet { error, .. }
            | Error::NoIntent { error, .. } => error.kind(),
            Error::State(inner) => crate::error::kind_in(inner),
            _ => Kind::Failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_before_and_kinds_decide_the_exit_code() {
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = Error::io("read", std::path::Path::new("logs/app.log"), missing)
            .then("; nothing archived");
        assert_eq!(
            e.to_string(),
            "cannot read logs/app.log: entity not found; nothing archived"
        );
        assert_eq!(e.kind(), Kind::Failure);
        let held = Error::Lock(
            crate::error::Error::LockHeld {
                what: "log set \"app\"".into(),
                holder: "pid 1".into(),
            }
            .into(),
        );
        assert_eq!(
            held.to_string(),
            "log set \"app\" is locked by another run (pid 1)"
        );
        assert_eq!(held.kind(), Kind::Busy);
        let Err(e) = crate::logs::search::Matcher::new("(", true) else {
            panic!("an unclosed group is not a regex");
        };
        assert!(e.to_string().starts_with("invalid regex \"(\": "), "{e}");
        assert_eq!(e.kind(), Kind::Usage);
    }

    #[test]
    fn state_failures_keep_their_type_and_read_word_for_word() {
        let refused = crate::fsutil::Error::ReplaceLink("state/logs-app.json".into());
        let shown = refused.to_string();
        let e = Error::from(refused);
        assert!(matches!(e, Error::State(_)));
        assert_eq!(e.to_string(), shown);
        assert_eq!(e.kind(), Kind::Failure);
        let not_saved = Error::NoIntent {
            error: Box::new(e),
            shown: "logs/app.log".into(),
        };
        assert_eq!(
            not_saved.to_string(),
            format!("cannot record the rotation's intent ({shown}); logs/app.log not rotated")
        );
        let Err(bad) = serde_json::from_slice::<serde_json::Value>(b"{") else {
            panic!("`{{` is not JSON");
        };
        let why = bad.to_string();
        let intent = Error::Unreadable {
            what: "the intent record",
            path: "state/logs-app.intent.json".into(),
            error: bad,
            then: Some("check the set's files by hand, then remove it"),
        };
        assert_eq!(
            intent.to_string(),
            format!(
                "the intent record state/logs-app.intent.json is unreadable ({why}): check the set's files by hand, then remove it"
            )
        );
    }
}
