//! One idea, one file: `tls_cert`: days until the certificate served on host:port expires,
//! graded against `warn`/`crit` days (seed 001: warn under 30 days). The handshake accepts
//! any chain on purpose: this step reads dates, even of an expired or self-signed
//! certificate, while the `http` step is the one that judges whether a chain is trusted.

use super::resolve::{self, Server};
use super::threshold::{Levels, Which, grade_by};
use super::{Env, Probe};
use crate::model::{BoxFuture, CertInfo, Data, Outcome, Status};
use crate::values::{Duration, Text};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Deserializer, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, Serialize)]
pub struct TlsCertSpec {
    pub host: Text,
    #[serde(default = "default_port")]
    pub port: u16,
    /// The name sent as SNI; default `host` (none when host is an IP).
    pub server_name: Option<Text>,
    /// Warn when less time than this is left (default 30 days when no level is given).
    pub warn: Option<Left>,
    /// Critical when less time than this is left (default 7 days when no level is given).
    pub crit: Option<Left>,
    /// Grade only the server's own certificate, not the soonest-expiring one of the chain.
    pub leaf_only: bool,
    pub timeout: Duration,
    /// Resolve `host` through this DNS server instead of the system's resolver.
    pub resolver: Option<Server>,
}

fn default_port() -> u16 {
    443
}

/// A level of time left: a number of days (`30`, `"{{ warn_days }}"`), or a duration
/// (`48h`, `2w`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Left {
    pub seconds: f64,
    /// Written as a number of days, and said so.
    pub in_days: bool,
}

impl Left {
    fn days(days: f64) -> Self {
        Left {
            seconds: days * 86_400.0,
            in_days: true,
        }
    }

    fn parse(text: &str) -> Result<Self, crate::values::Error> {
        let trimmed = text.trim();
        if let Ok(days) = trimmed.parse::<f64>() {
            return Self::checked_days(days, text);
        }
        Duration::parse(trimmed).map(|d| Left {
            seconds: d.0.as_secs_f64(),
            in_days: false,
        })
    }

    fn checked_days(days: f64, text: &str) -> Result<Self, crate::values::Error> {
        if days.is_finite() && days >= 0.0 {
            Ok(Left::days(days))
        } else {
            Err(crate::values::Error::NotDuration {
                text: text.to_string(),
                why: "days left must be 0 or more".to_string(),
            })
        }
    }
}

impl std::fmt::Display for Left {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.in_days {
            let days = super::threshold::trim(self.seconds / 86_400.0);
            let unit = if days == "1" { "day" } else { "days" };
            write!(f, "{days} {unit}")
        } else {
            let d = std::time::Duration::from_secs_f64(self.seconds);
            write!(f, "{}", humantime::format_duration(d))
        }
    }
}

impl<'de> Deserialize<'de> for Left {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Days(f64),
            Text(String),
        }
        let parsed = match Raw::deserialize(deserializer)? {
            Raw::Days(days) => Left::checked_days(days, &days.to_string()),
            Raw::Text(t) => crate::values::templated(&t, Left::parse),
        };
        parsed.map_err(serde::de::Error::custom)
    }
}

impl Serialize for Left {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.in_days {
            serializer.serialize_f64(self.seconds / 86_400.0)
        } else {
            serializer.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for TlsCertSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            host: Text,
            #[serde(default = "default_port", deserialize_with = "super::tcp::port")]
            port: u16,
            server_name: Option<Text>,
            warn: Option<Left>,
            crit: Option<Left>,
            #[serde(default)]
            leaf_only: bool,
            timeout: Option<Duration>,
            resolver: Option<Server>,
        }
        let raw = Raw::deserialize(deserializer)?;
        // Neither level written: the usual 30 and 7 days. One alone is the only level.
        let (warn, crit) = match (raw.warn, raw.crit) {
            (None, None) => (Some(Left::days(30.0)), Some(Left::days(7.0))),
            given => given,
        };
        if let (Some(w), Some(c)) = (warn, crit)
            && w.seconds < c.seconds
        {
            return Err(serde::de::Error::custom(format!(
                "warn {w} is below crit {c}: less time left is worse, so warn must be at least crit"
            )));
        }
        Ok(TlsCertSpec {
            host: raw.host,
            port: raw.port,
            server_name: raw.server_name,
            warn,
            crit,
            leaf_only: raw.leaf_only,
            timeout: raw
                .timeout
                .unwrap_or(Duration(std::time::Duration::from_secs(10))),
            resolver: raw.resolver,
        })
    }
}

pub struct TlsCertCheck {
    pub spec: TlsCertSpec,
}

impl Probe for TlsCertCheck {
    fn kind(&self) -> &'static str {
        "tls_cert"
    }

    fn run<'a>(&'a self, ctx: &'a Env) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let spec = &self.spec;
            let address = format!("{}:{}", spec.host.shown(), spec.port);
            let fetched = tokio::time::timeout(spec.timeout.0, self.fetch_chain()).await;
            let chain = match fetched {
                Err(_) => {
                    let message = format!(
                        "{address}: no TLS handshake within {}",
                        humantime::format_duration(spec.timeout.0)
                    );
                    return Outcome::new(Status::Critical, message, Data::None);
                }
                Ok(Err(message)) => {
                    return Outcome::new(
                        Status::Critical,
                        format!("{address}: {message}"),
                        Data::None,
                    );
                }
                Ok(Ok(chain)) => chain,
            };
            judge(&address, spec, &chain, ctx.clock.now())
        })
    }
}

/// Grade the soonest-expiring certificate of the chain (the leaf alone with `leaf_only`)
/// at `now`, naming it; the whole chain goes into the data.
fn judge(address: &str, spec: &TlsCertSpec, chain: &[Parsed], now: jiff::Timestamp) -> Outcome {
    let graded = if spec.leaf_only {
        &chain[..chain.len().min(1)]
    } else {
        chain
    };
    let now_s = now.as_second();
    // A certificate not yet valid is the worst finding; then the one expiring first.
    let pick = graded
        .iter()
        .enumerate()
        .find(|(_, c)| c.not_before > now_s)
        .or_else(|| graded.iter().enumerate().min_by_key(|(_, c)| c.not_after));
    let Some((index, cert)) = pick else {
        return Outcome::new(
            Status::Critical,
            format!("{address}: the server sent no certificate"),
            Data::None,
        );
    };
    let seconds_left = cert.not_after - now_s;
    let days_left = seconds_left.div_euclid(86_400);
    let data = Data::TlsCert {
        address: address.to_string(),
        days_left,
        not_after: cert.info.not_after.clone(),
        not_after_unix: cert.not_after,
        subject: cert.info.subject.clone(),
        issuer: cert.info.issuer.clone(),
        chain: chain.iter().map(|c| c.info.clone()).collect(),
    };
    let which = name(cert, index, chain.len());
    let until = day(cert.not_after);
    if cert.not_before > now_s {
        let message = format!(
            "{address}: {which} is not valid before {}",
            cert.info.not_before
        );
        return Outcome::new(Status::Critical, message, data);
    }
    if seconds_left <= 0 {
        let ago = (-seconds_left).div_euclid(86_400);
        let ago = crate::plural::count(ago, "day", "days");
        let message = format!("{address}: {which} expired {ago} ago ({until})");
        return Outcome::new(Status::Critical, message, data);
    }
    let levels = Levels {
        warn: spec.warn.map(|l| l.seconds),
        crit: spec.crit.map(|l| l.seconds),
        below: true,
    };
    let (status, crossed) = grade_by(seconds_left as f64, levels);
    let note = super::threshold::note(crossed.map(|c| {
        let level = match c.which {
            Which::Warn => spec.warn,
            Which::Crit => spec.crit,
        };
        c.describe(level.map(|l| l.to_string()).unwrap_or_default())
    }));
    let left = if days_left >= 2 {
        crate::plural::count(days_left, "day", "days")
    } else {
        crate::plural::count(seconds_left.div_euclid(3_600), "hour", "hours")
    };
    let message = format!("{address}: {which} expires in {left} ({until}){note}");
    Outcome::new(status, message, data)
}

/// `certificate CN=example.com`, or for one further up the chain
/// `certificate CN=Example CA (2 of 3 in the chain)`.
fn name(cert: &Parsed, index: usize, of: usize) -> String {
    let subject = if cert.info.subject.is_empty() {
        "with an empty subject"
    } else {
        &cert.info.subject
    };
    if index == 0 {
        format!("certificate {subject}")
    } else {
        format!("certificate {subject} ({} of {of} in the chain)", index + 1)
    }
}

fn day(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.strftime("%Y-%m-%d").to_string())
        .unwrap_or_else(|_| unix.to_string())
}

fn rfc3339(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| unix.to_string())
}

/// One certificate's dates (unix seconds) and names.
struct Parsed {
    not_before: i64,
    not_after: i64,
    info: CertInfo,
}

fn parse(der: &CertificateDer<'_>) -> Result<Parsed, super::Error> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(
        super::Error::refused("cannot parse the server's certificate"),
    )?;
    let validity = cert.validity();
    let (not_before, not_after) = (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    );
    Ok(Parsed {
        not_before,
        not_after,
        info: CertInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_before: rfc3339(not_before),
            not_after: rfc3339(not_after),
        },
    })
}

impl TlsCertCheck {
    async fn fetch_chain(&self) -> Result<Vec<Parsed>, super::Error> {
        let spec = &self.spec;
        let host = spec.host.as_str();
        let addresses = resolve::lookup(host, spec.port, spec.resolver, spec.timeout.0).await?;
        let Some(address) = addresses.first() else {
            return Err(super::Error::NoAddress(host.to_string()));
        };
        let tcp = tokio::net::TcpStream::connect(address)
            .await
            .map_err(super::Error::io("cannot connect"))?;
        let sni = spec.server_name.as_ref().map_or(host, |n| n.as_str());
        let bare = sni.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(bare.to_string()).map_err(super::Error::refused(
            format!("{sni:?} is not a valid TLS server name"),
        ))?;
        let connector = tokio_rustls::TlsConnector::from(client_config()?);
        let tls = connector
            .connect(server_name, tcp)
            .await
            .map_err(super::Error::io("TLS handshake failed"))?;
        let certs = tls.get_ref().1.peer_certificates().unwrap_or_default();
        certs.iter().map(parse).collect()
    }
}

fn client_config() -> Result<Arc<rustls::ClientConfig>, super::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(super::Error::refused("cannot set up TLS"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ReadDates(algorithms)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts any certificate (we only read it) but still checks the handshake signatures,
/// so the server must hold the key of the certificate it shows.
#[derive(Debug)]
struct ReadDates(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for ReadDates {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
            .or_else(|e| by_key(message, cert, dss, &self.0).ok_or(e))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
            .or_else(|e| by_key(message, cert, dss, &self.0).ok_or(e))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// The handshake signature checked against the public key of a version 1 certificate
/// (older self-signed ones still served inside networks), which webpki does not read: the
/// server must hold its key all the same. `None` for any other certificate, or a
/// signature that does not verify.
fn by_key(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algorithms: &WebPkiSupportedAlgorithms,
) -> Option<HandshakeSignatureValid> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    if parsed.tbs_certificate.version != x509_parser::x509::X509Version::V1 {
        return None;
    }
    let key = &parsed.tbs_certificate.subject_pki.subject_public_key.data;
    let (_, candidates) = algorithms
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == dss.scheme)?;
    candidates
        .iter()
        .any(|alg| alg.verify_signature(key, message, dss.signature()).is_ok())
        .then(HandshakeSignatureValid::assertion)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TlsCertSpec {
        crate::config::parse_yaml(std::path::Path::new("t.yaml"), "host: example.test").unwrap()
    }

    fn leaf(not_after: i64) -> Vec<Parsed> {
        vec![Parsed {
            not_before: 0,
            not_after,
            info: CertInfo {
                subject: "CN=example.test".into(),
                issuer: "CN=Test CA".into(),
                not_before: rfc3339(0),
                not_after: rfc3339(not_after),
            },
        }]
    }

    #[test]
    fn grades_days_left_with_fewer_being_worse() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let at = |days: i64| {
            judge(
                "h:443",
                &spec(),
                &leaf(now.as_second() + days * 86_400 + 60),
                now,
            )
        };
        assert_eq!(at(30).status, Status::Ok);
        let ten = at(10);
        assert_eq!(ten.status, Status::Warning);
        assert!(
            ten.message.contains("expires in 10 days"),
            "{}",
            ten.message
        );
        assert!(ten.message.contains("< warn 30 days"), "{}", ten.message);
        assert_eq!(at(3).status, Status::Critical);
        let expired = judge("h:443", &spec(), &leaf(now.as_second() - 3 * 86_400), now);
        assert_eq!(expired.status, Status::Critical);
        assert!(
            expired.message.contains("expired 3 days ago"),
            "{}",
            expired.message
        );
    }

    fn cert(subject: &str, not_after: i64) -> Parsed {
        Parsed {
            not_before: 0,
            not_after,
            info: CertInfo {
                subject: subject.into(),
                issuer: "CN=Root".into(),
                not_before: rfc3339(0),
                not_after: rfc3339(not_after),
            },
        }
    }

    fn spec_of(yaml: &str) -> TlsCertSpec {
        crate::config::parse_yaml(std::path::Path::new("t.yaml"), yaml).unwrap()
    }

    #[test]
    fn the_weakest_certificate_of_the_chain_is_graded_and_named() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let day = 86_400;
        let chain = vec![
            cert("CN=leaf", now.as_second() + 60 * day + 60),
            cert("CN=Intermediate", now.as_second() + 5 * day + 60),
            cert("CN=Root", now.as_second() + 900 * day),
        ];
        let out = judge("h:443", &spec(), &chain, now);
        assert_eq!(out.status, Status::Critical);
        assert!(
            out.message.starts_with(
                "h:443: certificate CN=Intermediate (2 of 3 in the chain) expires in 5 days"
            ) && out.message.ends_with("(< crit 7 days)"),
            "{}",
            out.message
        );
        let leaf = judge("h:443", &spec_of("host: h\nleaf_only: true"), &chain, now);
        assert_eq!(leaf.status, Status::Ok, "{}", leaf.message);
        assert!(
            leaf.message
                .starts_with("h:443: certificate CN=leaf expires in 60 days")
        );
    }

    #[test]
    fn levels_are_days_or_durations_and_one_alone_is_the_only_level() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let left = |seconds: i64| vec![cert("CN=leaf", now.as_second() + seconds)];
        let hours = spec_of("host: h\ncrit: 48h");
        assert_eq!(
            (hours.warn, hours.crit.map(|c| c.seconds)),
            (None, Some(172_800.0))
        );
        let out = judge("h:443", &hours, &left(47 * 3_600), now);
        assert_eq!(out.status, Status::Critical);
        assert!(
            out.message.contains("expires in 47 hours") && out.message.ends_with("(< crit 2days)"),
            "{}",
            out.message
        );
        // Crit alone: ten days left is no warning (there is no warn level).
        assert_eq!(
            judge("h:443", &hours, &left(10 * 86_400), now).status,
            Status::Ok
        );
        let warn = spec_of("host: h\nwarn: \"14\"");
        assert_eq!(warn.crit, None);
        let out = judge("h:443", &warn, &left(3_600), now);
        assert_eq!(out.status, Status::Warning, "{}", out.message);
        assert!(out.message.ends_with("(< warn 14 days)"), "{}", out.message);
        for (yaml, wanted) in [
            (
                "host: h\nwarn: 24h\ncrit: 2d",
                "warn 1day is below crit 2days",
            ),
            ("host: h\ncrit: soon", "\"soon\" is not a duration"),
        ] {
            let err =
                crate::config::parse_yaml::<TlsCertSpec>(std::path::Path::new("t.yaml"), yaml)
                    .unwrap_err()
                    .to_string();
            assert!(err.contains(wanted), "{err}");
        }
    }

    #[test]
    fn warn_below_crit_is_refused() {
        let err = crate::config::parse_yaml::<TlsCertSpec>(
            std::path::Path::new("t.yaml"),
            "host: h\nwarn: 5\ncrit: 10",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("warn must be at least crit"),
            "{err}"
        );
    }
}
