//! A real SMTP server on 127.0.0.1 for one test: aiosmtpd (from PyPI, installed by
//! `scripts/test` into `target/test-venv`) run by `tests/support/smtp_server.py`, killed on
//! drop. It says `ready PORT` when it listens (the start waits for that line, not a time)
//! and writes every message it takes to a file before answering 250, so what a finished
//! `opsbook` sent is there to read.

use super::s3::python;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// How the server protects the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Plain,
    /// STARTTLS offered and required before MAIL and AUTH.
    Starttls,
    /// TLS from the first byte.
    Tls,
}

/// A throwaway CA and a server certificate it signed for `localhost` and 127.0.0.1, as
/// PEM files.
pub struct Certs {
    /// The CA's certificate: what `ca_file` names.
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Certs {
    /// Make them in `dir`.
    pub fn new(dir: &Path) -> Certs {
        let (ca_cert, issuer) = super::tls::root_ca();
        let key = rcgen::KeyPair::generate().expect("server key");
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("server params");
        let cert = params.signed_by(&key, &issuer).expect("server cert");
        let certs = Certs {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server-key.pem"),
        };
        std::fs::write(&certs.ca, ca_cert.pem()).unwrap();
        std::fs::write(&certs.cert, cert.pem()).unwrap();
        std::fs::write(&certs.key, key.serialize_pem()).unwrap();
        certs
    }
}

/// One message the server took.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Mail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// The message as sent (headers and body, CRLF line ends).
    pub data: String,
    /// Whether it came over TLS (STARTTLS or implicit).
    pub tls: bool,
    /// The user that logged in, if any.
    pub login: Option<String>,
}

impl Mail {
    /// The data with folded header lines and quoted-printable soft breaks joined.
    pub fn unfolded(&self) -> String {
        self.data.replace("\r\n ", " ").replace("=\r\n", "")
    }
}

pub struct SmtpServer {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    /// Start a server in `mode` (`certs` for starttls and tls). With `login`, AUTH is
    /// required and only that user and password are accepted.
    pub fn start(mode: Mode, certs: Option<&Certs>, login: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut cmd = Command::new(python());
        cmd.arg(&script)
            .args(["--mode", mode_name(mode), "--dir"])
            .arg(dir.path())
            .env_remove("SMTP_SERVER_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap());
        if let Some(certs) = certs {
            cmd.arg("--cert")
                .arg(&certs.cert)
                .arg("--key")
                .arg(&certs.key);
        }
        if let Some((user, password)) = login {
            cmd.args(["--user", user])
                .env("SMTP_SERVER_PASSWORD", password);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run `bash scripts/test` to install aiosmtpd)",
                python().display()
            )
        });
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        let port = line
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the SMTP server did not start ({read:?}, {line:?}; is aiosmtpd installed?): {}",
                std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()
            );
        };
        SmtpServer { child, port, dir }
    }

    /// Every message taken so far, in the order taken.
    pub fn mails(&self) -> Vec<Mail> {
        let mut numbered: Vec<(u32, PathBuf)> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let n = name
                    .strip_prefix("mail-")?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()?;
                Some((n, entry.path()))
            })
            .collect();
        numbered.sort();
        numbered
            .iter()
            .map(|(_, path)| serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap())
            .collect()
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Plain => "plain",
        Mode::Starttls => "starttls",
        Mode::Tls => "tls",
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
