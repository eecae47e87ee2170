//! What can go wrong with an incident, by what a caller does about it: bad input (exit 64),
//! a template in config (exit 78), or a change refused or not (fully) recorded (exit 1).
//! The CLI turns [`Error::kind`] into an exit code in one place (`cli::exit_code`).

use crate::error::{ConfigError, Kind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No incident of that id (it names the folder and the ids there are).
    #[error("{0}")]
    Unknown(String),
    /// Input that does not make sense: an unknown severity, an empty title, a malformed
    /// action item, an update with nothing in it.
    #[error("{0}")]
    Usage(String),
    /// A template in `incident.templates` that is unknown or does not render.
    #[error(transparent)]
    Template(ConfigError),
    /// An `incident:` setting that cannot work (an escalation route for no severity).
    #[error(transparent)]
    Config(ConfigError),
    /// A change the incident's state refuses (it is already resolved).
    #[error("{0}")]
    Refused(String),
    /// A change that did not (fully) land; the message says exactly which part did.
    #[error("{0}")]
    NotRecorded(String),
    /// A record, timeline or bundle that cannot be read or written.
    #[error("{0}")]
    Store(String),
    /// One of the incident files or folders that cannot be used (the message names it).
    #[error(transparent)]
    Files(#[from] crate::fsutil::Error),
    /// An incident's lock that cannot be taken.
    #[error(transparent)]
    Lock(#[from] crate::lock::Error),
    /// The diagnosis runbook could not be loaded (the bundle goes without it).
    #[error("{0}")]
    Diagnosis(String),
}

impl Error {
    pub fn kind(&self) -> Kind {
        match self {
            Error::Unknown(_) | Error::Usage(_) => Kind::Usage,
            Error::Template(_) | Error::Config(_) => Kind::Config,
            Error::Refused(_) | Error::NotRecorded(_) | Error::Store(_) | Error::Diagnosis(_) => {
                Kind::Failure
            }
            Error::Files(e) => crate::error::kind_in(e),
            Error::Lock(e) => crate::error::kind_in(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_the_kind_its_exit_code_comes_from() {
        assert_eq!(Error::Unknown("x".into()).kind(), Kind::Usage);
        assert_eq!(Error::Usage("x".into()).kind(), Kind::Usage);
        let template = Error::Template(ConfigError::whole_file("ops.yaml", "bad"));
        assert_eq!(template.kind(), Kind::Config);
        assert_eq!(template.to_string(), "ops.yaml: bad");
        assert_eq!(Error::Refused("x".into()).kind(), Kind::Failure);
        assert_eq!(Error::NotRecorded("x".into()).kind(), Kind::Failure);
        let io = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let files = crate::fsutil::Error::Io {
            what: "cannot write",
            path: "incidents/INC-1/incident.json".into(),
            error: io,
        };
        let shown = files.to_string();
        let e = Error::from(files);
        assert_eq!(
            e.to_string(),
            shown,
            "the file error's message, word for word"
        );
        assert!(shown.starts_with("cannot write incidents/INC-1/incident.json: "));
        assert_eq!(e.kind(), Kind::Failure);
        let lock = crate::lock::Error::Lock {
            path: "incidents/INC-1/.lock".into(),
            error: std::io::Error::from_raw_os_error(libc::ENOLCK),
        };
        let shown = lock.to_string();
        assert_eq!(Error::from(lock).to_string(), shown);
    }
}
