//! `dns`: a name resolves, optionally to the addresses expected, within a timeout;
//! through a given DNS server (`server: 10.0.0.2:53`) or the system's resolver.

use super::latency::{LatencyLevels, seconds};
use super::resolve::{self, Server};
use super::{Env, Probe};
use crate::model::{BoxFuture, Data, Outcome, Status};
use crate::values::{Duration, Text};
use hickory_proto::rr::RecordType;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Instant;

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsSpec {
    /// The name to resolve.
    pub name: Text,
    /// Ask this server (IP or IP:port) instead of the system's resolver.
    pub server: Option<Server>,
    #[serde(default, rename = "type")]
    pub record_type: AddressType,
    /// Addresses the answer must include (one or a list).
    #[serde(default, deserialize_with = "one_or_many")]
    pub expect: Vec<IpAddr>,
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    #[serde(default)]
    pub latency: LatencyLevels,
}

#[derive(
    Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum AddressType {
    #[default]
    A,
    #[allow(clippy::upper_case_acronyms)]
    AAAA,
}

impl AddressType {
    fn record_type(self) -> RecordType {
        match self {
            AddressType::A => RecordType::A,
            AddressType::AAAA => RecordType::AAAA,
        }
    }

    fn matches(self, ip: &IpAddr) -> bool {
        match self {
            AddressType::A => ip.is_ipv4(),
            AddressType::AAAA => ip.is_ipv6(),
        }
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<IpAddr>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(IpAddr),
        Many(Vec<IpAddr>),
    }
    Ok(match Raw::deserialize(deserializer)? {
        Raw::One(ip) => vec![ip],
        Raw::Many(ips) => ips,
    })
}

fn default_timeout() -> Duration {
    Duration(std::time::Duration::from_secs(5))
}

pub struct DnsCheck {
    pub spec: DnsSpec,
}

impl Probe for DnsCheck {
    fn kind(&self) -> &'static str {
        "dns"
    }

    fn run<'a>(&'a self, _ctx: &'a Env) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let spec = &self.spec;
            let name = spec.name.as_str();
            let started = Instant::now();
            let answer = self.resolve().await;
            let took = started.elapsed();
            let data = |addresses: &[IpAddr]| Data::Dns {
                name: spec.name.shown().to_string(),
                server: spec.server.map(|s| s.0.to_string()),
                addresses: addresses.iter().map(IpAddr::to_string).collect(),
                latency_ms: crate::model::round(took.as_secs_f64() * 1000.0, 1),
            };
            let addresses = match answer {
                Ok(addresses) => addresses,
                Err(e) => return Outcome::new(Status::Critical, e.to_string(), data(&[])),
            };
            let shown = list(&addresses);
            let missing: Vec<IpAddr> = spec
                .expect
                .iter()
                .filter(|ip| !addresses.contains(ip))
                .copied()
                .collect();
            if !missing.is_empty() {
                let message = format!(
                    "{name} resolved to {shown}, expected {}",
                    list(&spec.expect)
                );
                return Outcome::new(Status::Critical, message, data(&addresses));
            }
            let (status, crossed) = spec.latency.grade(took);
            let message = match crossed {
                Some(crossed) => format!("{name} → {shown}: {crossed}"),
                None => format!("{name} → {shown} in {}", seconds(took)),
            };
            Outcome::new(status, message, data(&addresses))
        })
    }
}

impl DnsCheck {
    async fn resolve(&self) -> Result<Vec<IpAddr>, super::Error> {
        let spec = &self.spec;
        let timeout = spec.timeout.0;
        let name = spec.name.as_str();
        if let Some(server) = spec.server {
            return resolve::query(server, name, spec.record_type.record_type(), timeout).await;
        }
        let found: Vec<IpAddr> = resolve::lookup(name, 0, None, timeout)
            .await?
            .into_iter()
            .map(|a| a.ip())
            .filter(|ip| spec.record_type.matches(ip))
            .collect();
        if found.is_empty() {
            return Err(super::Error::NoRecordHere {
                name: name.to_string(),
                record: format!("{:?}", spec.record_type),
            });
        }
        Ok(found)
    }
}

fn list(ips: &[IpAddr]) -> String {
    ips.iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
