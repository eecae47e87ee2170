//! `tcp`: connect to host:port within a timeout; optionally send a line and expect a
//! reply (Redis `PING` → `+PONG`); latency graded like every probe.

use super::latency::{LatencyLevels, seconds};
use super::resolve::{self, Server};
use super::{Env, Probe};
use crate::model::{BoxFuture, Data, Outcome, Status};
use crate::values::{Duration, Text};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The most of a reply that is read while looking for `expect`.
const MAX_REPLY: usize = 64 * 1024;

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpSpec {
    pub host: Text,
    #[serde(deserialize_with = "port")]
    #[schemars(with = "PortNumber")]
    pub port: u16,
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// Bytes to send once connected (YAML escapes such as `\r\n` work in double quotes).
    pub send: Option<Text>,
    /// Text the reply must contain.
    pub expect: Option<Text>,
    #[serde(default)]
    pub latency: LatencyLevels,
    /// Resolve `host` through this DNS server instead of the system's resolver.
    pub resolver: Option<Server>,
}

/// A port as a number or as text (`"{{ db_port }}"`, `"${DB_PORT:-5432}"`), 1–65535.
pub fn port<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    // Text is read as a plain string and expanded after: inside an untagged enum a
    // template's own error (an undefined variable, with its did-you-mean) would be lost.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(i64),
        Text(String),
    }
    let bad = |shown: &str| {
        serde::de::Error::custom(format!("port {shown:?} is not a port number (1-65535)"))
    };
    match Raw::deserialize(deserializer)? {
        Raw::Number(n) => u16::try_from(n)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(&n.to_string())),
        Raw::Text(template) => {
            let t = Text::from_template(&template).map_err(serde::de::Error::custom)?;
            t.as_str()
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad(t.shown()))
        }
    }
}

/// The schema of [`port`]: a number, or text that becomes one.
#[derive(schemars::JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)] // exists only to describe the format
enum PortNumber {
    Number(u16),
    Text(String),
}

fn default_timeout() -> Duration {
    Duration(std::time::Duration::from_secs(5))
}

pub struct TcpCheck {
    pub spec: TcpSpec,
}

impl Probe for TcpCheck {
    fn kind(&self) -> &'static str {
        "tcp"
    }

    fn run<'a>(&'a self, _ctx: &'a Env) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let spec = &self.spec;
            let address = format!("{}:{}", spec.host.shown(), spec.port);
            let started = Instant::now();
            let result = tokio::time::timeout(spec.timeout.0, self.exchange()).await;
            let took = started.elapsed();
            let data = Data::Tcp {
                address: address.clone(),
                latency_ms: crate::model::round(took.as_secs_f64() * 1000.0, 1),
            };
            match result {
                Err(_) => Outcome::new(
                    Status::Critical,
                    format!(
                        "{address}: no answer within {}",
                        humantime::format_duration(spec.timeout.0)
                    ),
                    data,
                ),
                Ok(Err(message)) => {
                    Outcome::new(Status::Critical, format!("{address}: {message}"), data)
                }
                Ok(Ok(())) => {
                    let (status, crossed) = spec.latency.grade(took);
                    let message = match crossed {
                        Some(crossed) => format!("{address}: {crossed}"),
                        None => format!("{address} answered in {}", seconds(took)),
                    };
                    Outcome::new(status, message, data)
                }
            }
        })
    }
}

impl TcpCheck {
    async fn exchange(&self) -> Result<(), super::Error> {
        let spec = &self.spec;
        let addresses =
            resolve::lookup(spec.host.as_str(), spec.port, spec.resolver, spec.timeout.0).await?;
        let mut stream = tokio::net::TcpStream::connect(addresses.as_slice())
            .await
            .map_err(super::Error::io("cannot connect"))?;
        if let Some(send) = &spec.send {
            stream
                .write_all(send.as_str().as_bytes())
                .await
                .map_err(super::Error::io("cannot send"))?;
        }
        let Some(expect) = &spec.expect else {
            return Ok(());
        };
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream
                .read(&mut buf)
                .await
                .map_err(super::Error::io("cannot read the reply"))?;
            reply.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&reply);
            if text.contains(expect.as_str()) {
                return Ok(());
            }
            if n == 0 || reply.len() >= MAX_REPLY {
                // Masked before it is cut: half a secret would no longer be found.
                let seen: String = crate::redact::mask(&text).chars().take(60).collect();
                return Err(super::Error::Reply {
                    seen,
                    wanted: expect.shown().to_string(),
                });
            }
        }
    }
}
