//! `tls_cert`: days until the certificate served on host:port expires, graded against
//! `warn`/`crit` days (seed 001: warn under 30 days). The handshake accepts any chain on
//! purpose: this step reads dates, even of an expired or self-signed certificate, while
//! the `http` step is the one that judges whether a chain is trusted.

use super::resolve::{self, Server};
use super::threshold::{Levels, grade};
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
    /// Warn when fewer days than this are left (default 30).
    pub warn: u32,
    /// Critical when fewer days than this are left (default 7).
    pub crit: u32,
    pub timeout: Duration,
    /// Resolve `host` through this DNS server instead of the system's resolver.
    pub resolver: Option<Server>,
}

fn default_port() -> u16 {
    443
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
            warn: Option<u32>,
            crit: Option<u32>,
            timeout: Option<Duration>,
            resolver: Option<Server>,
        }
        let raw = Raw::deserialize(deserializer)?;
        let (warn, crit) = (raw.warn.unwrap_or(30), raw.crit.unwrap_or(7));
        if warn < crit {
            return Err(serde::de::Error::custom(format!(
                "warn {warn} days is below crit {crit} days: fewer days left is worse, so warn must be at least crit"
            )));
        }
        Ok(TlsCertSpec {
            host: raw.host,
            port: raw.port,
            server_name: raw.server_name,
            warn,
            crit,
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

/// Grade the leaf's expiry at `now`; the whole chain goes into the data.
fn judge(address: &str, spec: &TlsCertSpec, chain: &[Parsed], now: jiff::Timestamp) -> Outcome {
    let Some(leaf) = chain.first() else {
        return Outcome::new(
            Status::Critical,
            format!("{address}: the server sent no certificate"),
            Data::None,
        );
    };
    let seconds_left = leaf.not_after - now.as_second();
    let days_left = seconds_left.div_euclid(86_400);
    let data = Data::TlsCert {
        address: address.to_string(),
        days_left,
        not_after: leaf.info.not_after.clone(),
        not_after_unix: leaf.not_after,
        subject: leaf.info.subject.clone(),
        issuer: leaf.info.issuer.clone(),
        chain: chain.iter().map(|c| c.info.clone()).collect(),
    };
    let until = day(leaf.not_after);
    if seconds_left <= 0 {
        let ago = (-seconds_left).div_euclid(86_400);
        let ago = crate::plural::count(ago, "day", "days");
        let message = format!("{address}: certificate expired {ago} ago ({until})");
        return Outcome::new(Status::Critical, message, data);
    }
    if leaf.not_before > now.as_second() {
        let message = format!(
            "{address}: certificate is not valid before {}",
            leaf.info.not_before
        );
        return Outcome::new(Status::Critical, message, data);
    }
    let levels = Levels {
        warn: Some(f64::from(spec.warn)),
        crit: Some(f64::from(spec.crit)),
        below: true,
    };
    let (status, crossed) = grade(days_left as f64, levels, " days");
    let note = super::threshold::note(crossed);
    let left = crate::plural::count(days_left, "day", "days");
    let message = format!("{address}: certificate expires in {left} ({until}){note}");
    Outcome::new(status, message, data)
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
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
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
