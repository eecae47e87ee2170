//! What goes wrong in a backup action, as one enum: the CLI maps [`Error::kind`] to an exit
//! code (`cli::exit_code`), a runbook step turns it into an outcome. Messages are written
//! for a person: what failed, on which file, backup or command.

use crate::error::Kind;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The destination cannot be used as written (no bucket, an unknown scheme): exit 64.
    #[error("{0}")]
    Destination(String),
    /// No `backup.destination` configured.
    #[error("no backup destination: set `backup.destination` in the config")]
    NoDestination,
    /// No backup by that id (or no `latest`) in the store: exit 64.
    #[error("no backup {wanted:?} in {store} (`opsbook backup list` shows the ids)")]
    NoBackup {
        wanted: String,
        /// The store's name for people (`dest`, `s3://bucket/prefix`).
        store: String,
    },
    /// A glob (`--include`, `exclude`) that is not one; `what` names where it was given:
    /// exit 64.
    #[error("{what} {pattern:?} is not a valid glob: {error}")]
    Glob {
        what: String,
        pattern: String,
        error: globset::Error,
    },
    /// Valid globs that cannot be used together.
    #[error("cannot use the exclude globs: {0}")]
    Globs(globset::Error),
    /// A hand-made archive given to `restore` that is not a file: exit 64.
    #[error("no archive {0}")]
    NoArchive(String),
    /// Another run holds the set's lock (exit 75), or the lock cannot be taken.
    #[error("{0:#}")]
    Lock(anyhow::Error),
    /// A backup that does not match its manifest: one problem per file.
    #[error("{id}: {}", problems.join("; "))]
    Mismatch { id: String, problems: Vec<String> },
    /// The restore drill of a backup that verified failed.
    #[error("{id}: restore test: {reason}")]
    Drill { id: String, reason: Box<Error> },
    /// A restore refused entries of the archive; nothing was written.
    #[error("{label}: {} refused, nothing restored", crate::plural::count(entries.len(), "entry", "entries"))]
    Refused { label: String, entries: Vec<String> },
    /// A restore that failed; `done` is what it had finished, for a person.
    #[error("{label}: {reason}")]
    Restore {
        label: String,
        reason: Box<Error>,
        done: String,
    },
    /// Reading, writing, sending or running something failed; the text says what and where.
    #[error("{0}")]
    Failed(String),
    /// One of opsbook's own files (a state file, a manifest) could not be used.
    #[error(transparent)]
    Files(#[from] crate::fsutil::Error),
    /// A state file's lock could not be taken.
    #[error(transparent)]
    StateLock(#[from] crate::lock::Error),
    /// A command source, restore or verify command could not run, or failed.
    #[error(transparent)]
    Command(#[from] super::commands::Error),
}

impl Error {
    pub fn kind(&self) -> Kind {
        match self {
            Error::Destination(_)
            | Error::NoBackup { .. }
            | Error::NoArchive(_)
            | Error::Glob { .. } => Kind::Usage,
            Error::NoDestination => Kind::Config,
            Error::Lock(e) => crate::error::kind_in(e.as_ref()),
            Error::Mismatch { .. }
            | Error::Drill { .. }
            | Error::Refused { .. }
            | Error::Restore { .. }
            | Error::Failed(_)
            | Error::Globs(_)
            | Error::Files(_)
            | Error::StateLock(_)
            | Error::Command(_) => Kind::Failure,
        }
    }
}

/// The foundation helpers (files, locks, commands) describe their failures as text.
impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::Failed(message)
    }
}
