//! Why a reading could not be taken: one enum for every probe, whose message is what the
//! report shows (the probe turns it into an `unknown` or `critical` outcome).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A step the OS refused or failed: `cannot connect: …`, `cannot resolve HOST: …`.
    #[error("{what}: {error}")]
    Io { what: String, error: std::io::Error },
    /// A step a library refused (TLS, certificates, DNS encoding, the HTTP client).
    #[error("{what}: {why}")]
    Refused { what: String, why: String },
    #[error(
        "DNS server {server} did not answer for {name} within {}",
        humantime::format_duration(*.timeout)
    )]
    DnsTimeout {
        server: SocketAddr,
        name: String,
        timeout: Duration,
    },
    #[error("{host} did not resolve within {}", humantime::format_duration(*.timeout))]
    ResolveTimeout { host: String, timeout: Duration },
    #[error("{name} does not exist (NXDOMAIN from {server})")]
    NxDomain { name: String, server: SocketAddr },
    #[error("DNS server {server} answered {code} for {name}")]
    DnsAnswer {
        server: SocketAddr,
        code: String,
        name: String,
    },
    /// The server answered, without a record of the type asked.
    #[error("{name} has no {record} record (asked {server})")]
    NoRecord {
        name: String,
        record: String,
        server: SocketAddr,
    },
    /// The system's resolver found addresses, none of the type asked.
    #[error("{name} has no {record} record")]
    NoRecordHere { name: String, record: String },
    #[error("{0} resolved to no address")]
    NoAddress(String),
    #[error("{0:?} is not a DNS server address: write an IP, or IP:port such as 127.0.0.1:5353")]
    NotServer(String),
    #[error("reply {seen:?} does not contain {wanted:?}")]
    Reply { seen: String, wanted: String },
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("{0} not found in the JSON body")]
    NoPointer(String),
    #[error("{pointer} = {found}, expected a number")]
    NotNumber { pointer: String, found: String },
    #[error("give `warn`, `crit` or both")]
    NoLevels,
    #[error(
        "warn {} is above crit {}: warn must not exceed crit",
        super::threshold::trim(*.warn),
        super::threshold::trim(*.crit)
    )]
    WarnAboveCrit { warn: f64, crit: f64 },
    #[error(
        "warn {} is below crit {} with `below: true`: lower is worse, so warn must be at least crit",
        super::threshold::trim(*.warn),
        super::threshold::trim(*.crit)
    )]
    WarnBelowCrit { warn: f64, crit: f64 },
    #[error("no CPUs could be read from /proc/stat")]
    NoCpus,
    /// A fixed reading the readings file does not give.
    #[error("no {0} reading")]
    NoReading(&'static str),
    #[error("no disk reading for {0}")]
    NoDiskReading(String),
    #[error("readings file {} is invalid: {why}", .path.display())]
    Readings { path: PathBuf, why: String },
}

impl Error {
    /// `what: <the OS's reason>`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |error| Error::Io { what, error }
    }

    /// `what: <the library's reason>`.
    pub fn refused<E: std::fmt::Display>(what: impl Into<String>) -> impl FnOnce(E) -> Error {
        let what = what.into();
        move |why| Error::Refused {
            what,
            why: why.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::probe::resolve::Server;
    use crate::probe::resources::{FixedResources, Resources};
    use crate::probe::threshold::levels_from;

    #[test]
    fn probe_errors_read_as_the_messages_they_replace() {
        let message = |r: Result<_, super::Error>| r.map(|_: ()| ()).unwrap_err().to_string();
        assert_eq!(
            message(levels_from(Some(5.0), Some(2.5), false).map(drop)),
            "warn 5 is above crit 2.5: warn must not exceed crit"
        );
        assert_eq!(
            message(levels_from(Some(1.0), Some(2.0), true).map(drop)),
            "warn 1 is below crit 2 with `below: true`: lower is worse, so warn must be at least crit"
        );
        assert_eq!(
            message(levels_from(None, None, false).map(drop)),
            "give `warn`, `crit` or both"
        );
        assert_eq!(
            message("nope".parse::<Server>().map(drop)),
            "\"nope\" is not a DNS server address: write an IP, or IP:port such as 127.0.0.1:5353"
        );
        let fixed = FixedResources::default();
        assert_eq!(message(fixed.memory().map(drop)), "no memory reading");
        assert_eq!(
            message(fixed.cpu(std::time::Duration::ZERO).map(drop)),
            "no cpu reading"
        );
        assert_eq!(
            message(fixed.disk(std::path::Path::new("/srv")).map(drop)),
            "no disk reading for /srv"
        );
        let missing = std::path::Path::new("/nonexistent/readings.json");
        assert!(
            message(FixedResources::from_file(missing).map(drop))
                .starts_with("cannot read readings file /nonexistent/readings.json: ")
        );
    }
}
