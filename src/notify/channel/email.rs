//! E-mail over SMTP (lettre): the `email` channel's settings and their checks, the
//! connection in each security mode (plain, STARTTLS, TLS from the first byte) with the
//! server's certificate checked against the built-in roots and `ca_file`, and what a failed
//! send says. The password is a secret: no error text holds it.

use super::{Body, Delivery, Try};
use crate::values::Text;
use serde::{Deserialize, Deserializer, Serialize};
use std::path::{Path, PathBuf};

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain, then STARTTLS, required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption at all: only for a relay on this machine.
    Plain,
}

/// E-mail over SMTP. The password comes from the environment: `password_env: VAR`, or
/// `password: "${VAR}"`. The server's certificate is checked against the built-in web
/// roots plus, with `ca_file`, the CA certificates in that PEM file (an internal CA).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Email {
    pub server: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: Security,
    #[serde(deserialize_with = "mailbox")]
    pub from: String,
    #[serde(deserialize_with = "mailboxes")]
    pub to: Vec<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default, deserialize_with = "secret_option")]
    pub password: Option<Text>,
    /// The environment variable that holds the password, read when sending.
    #[serde(default)]
    pub password_env: Option<String>,
    /// PEM CA certificates trusted for this server besides the built-in roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl Email {
    /// A password that would cross the network in the clear, a `ca_file` that plain
    /// would never use, or one that holds no usable CA certificate.
    pub(super) fn check(&self) -> Result<(), String> {
        let credentials =
            self.username.is_some() || self.password.is_some() || self.password_env.is_some();
        if self.security == Security::Plain && credentials && !is_loopback(&self.server) {
            return Err(format!(
                "`security: plain` would send the password in the clear to {}: use starttls or tls (plain is for a relay on this machine)",
                self.server
            ));
        }
        match (&self.ca_file, self.security) {
            (Some(_), Security::Plain) => Err(
                "`ca_file` is for `security: starttls` or `tls`: plain checks no certificate"
                    .to_string(),
            ),
            (Some(file), _) => roots(file).map(drop),
            (None, _) => Ok(()),
        }
    }
}

/// `localhost` or a loopback address (`127.0.0.1`, `::1`), not a name that merely starts
/// with `127.`.
fn is_loopback(server: &str) -> bool {
    let bare = server.trim_start_matches('[').trim_end_matches(']');
    server.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The CA certificates in the PEM file `file`: at least one, each usable as a trust
/// root; the error names the file.
fn roots(file: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let shown = file.display();
    let pem = std::fs::read(file).map_err(|e| format!("`ca_file` {shown}: cannot read it: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`ca_file` {shown} is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "`ca_file` {shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    let mut store = rustls::RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        store.add(cert.clone()).map_err(|e| {
            format!(
                "`ca_file` {shown}: certificate {} is not a usable CA certificate ({e})",
                i + 1
            )
        })?;
    }
    Ok(certs)
}

fn secret_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Text>, D::Error> {
    Ok(Option::<Text>::deserialize(d)?.map(Text::into_secret))
}

fn mailbox<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    check_mailbox(&text).map_err(serde::de::Error::custom)?;
    Ok(text)
}

fn mailboxes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let all = Vec::<String>::deserialize(d)?;
    if all.is_empty() {
        return Err(serde::de::Error::custom("`to` names no one"));
    }
    for text in &all {
        check_mailbox(text).map_err(serde::de::Error::custom)?;
    }
    Ok(all)
}

fn check_mailbox(text: &str) -> Result<lettre::message::Mailbox, String> {
    text.parse::<lettre::message::Mailbox>()
        .map_err(|e| format!("{text:?} is not an e-mail address ({e})"))
}

pub(super) async fn mail(email: &Email, body: Body<'_>, bound: &Delivery) -> Result<(), Try> {
    use lettre::AsyncTransport;
    let letter = letter(email, body).map_err(Try::Final)?;
    let transport = transport(email, bound).map_err(Try::Final)?;
    match transport.send(letter).await {
        Ok(_) => Ok(()),
        Err(e) => Err(refused(email, &e)),
    }
}

/// The SMTP client for `email`: its security mode and port, the roots its certificate is
/// checked against, its credentials.
fn transport(
    email: &Email,
    bound: &Delivery,
) -> Result<lettre::AsyncSmtpTransport<lettre::Tokio1Executor>, String> {
    use lettre::transport::smtp::{self, client::Tls};
    let (tls, port) = match email.security {
        Security::Plain => (Tls::None, smtp::SMTP_PORT),
        Security::Starttls => (Tls::Required(tls_parameters(email)?), smtp::SUBMISSION_PORT),
        Security::Tls => (Tls::Wrapper(tls_parameters(email)?), smtp::SUBMISSIONS_PORT),
    };
    // The builder that presets nothing: security and port are set just above.
    let mut builder =
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(&email.server)
            .port(email.port.unwrap_or(port))
            .tls(tls)
            .timeout(Some(bound.timeout.0));
    if let Some(user) = &email.username {
        builder = builder.credentials(smtp::authentication::Credentials::new(
            user.clone(),
            password(email)?,
        ));
    }
    Ok(builder.build())
}

/// The built-in web roots, plus the CA certificates of `ca_file`; the server's name is
/// checked against its certificate.
fn tls_parameters(email: &Email) -> Result<lettre::transport::smtp::client::TlsParameters, String> {
    use lettre::transport::smtp::client::{Certificate, TlsParameters};
    let mut builder = TlsParameters::builder(email.server.clone());
    if let Some(file) = &email.ca_file {
        for der in roots(file)? {
            let cert = Certificate::from_der(der.to_vec())
                .map_err(|e| format!("`ca_file` {}: {e}", file.display()))?;
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| {
        format!(
            "cannot set up TLS for the mail server {:?}: {e}",
            email.server
        )
    })
}

/// What a failed send says: a certificate or a login the server refused will not get
/// better by asking again, nor will another permanent (5xx) answer.
fn refused(email: &Email, e: &lettre::transport::smtp::Error) -> Try {
    if let Some(problem) = certificate_problem(e) {
        return Try::Final(format!(
            "the mail server {:?} was not trusted: {problem}",
            email.server
        ));
    }
    let code = e.status().map(|c| c.to_string());
    if let (Some("534" | "535" | "538"), Some(user)) = (code.as_deref(), &email.username) {
        return Try::Final(format!(
            "authentication as {user:?} failed: the mail server said {e}"
        ));
    }
    if e.is_permanent() {
        Try::Final(format!("the mail server refused: {e}"))
    } else {
        Try::Again(format!("mail to {:?}: {e}", email.server))
    }
}

/// The certificate problem behind a failed TLS handshake, in words, if that is what
/// failed (rustls's error travels inside an `io::Error`).
fn certificate_problem(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    use rustls::CertificateError as C;
    let mut cause = Some(e);
    while let Some(err) = cause {
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .or_else(|| err.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::InvalidCertificate(problem)) = inner {
            return Some(match problem {
                C::UnknownIssuer => "its certificate is not signed by a trusted root \
                    (for a server with an internal CA, name that CA's certificate in `ca_file`)"
                    .to_string(),
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    "its certificate is not valid for that name".to_string()
                }
                C::Expired | C::ExpiredContext { .. } => "its certificate has expired".to_string(),
                C::NotValidYet | C::NotValidYetContext { .. } => {
                    "its certificate is not valid yet".to_string()
                }
                other => format!("its certificate was refused ({other:?})"),
            });
        }
        cause = err.source();
    }
    None
}

/// The password, from `password_env` (read now, so a rotated secret is picked up) or
/// `password`; registered as a secret.
fn password(email: &Email) -> Result<String, String> {
    let value = match (&email.password_env, &email.password) {
        (Some(var), _) => std::env::var(var)
            .map_err(|_| format!("the mail password's environment variable {var} is not set"))?,
        (None, Some(text)) => text.as_str().to_string(),
        (None, None) => {
            return Err("a `username` is set but neither `password_env` nor `password`".into());
        }
    };
    crate::redact::register(&value);
    Ok(value)
}

fn letter(email: &Email, body: Body<'_>) -> Result<lettre::Message, String> {
    let mut builder = lettre::Message::builder()
        .from(check_mailbox(&email.from)?)
        .subject(body.subject());
    for to in &email.to {
        builder = builder.to(check_mailbox(to)?);
    }
    builder
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(format!("{}\n", body.text()))
        .map_err(|e| format!("cannot build the e-mail: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_localhost_and_loopback_addresses_are_this_machine() {
        for local in [
            "localhost",
            "LocalHost",
            "127.0.0.1",
            "127.0.0.2",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in [
            "127.mail.example.com",
            "localhost.example.com",
            "10.0.0.1",
            "::2",
        ] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }
}
