//! The step schema shared by `health.endpoints` and (later) runbooks: a `name` and exactly
//! one kind. This is the one place step kinds are registered.

use super::{
    DnsCheck, HttpCheck, TcpCheck, TlsCertCheck, dns::DnsSpec, http::HttpSpec, tcp::TcpSpec,
    tls_cert::TlsCertSpec,
};
use crate::engine::Step;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize)]
pub struct StepSpec {
    pub name: String,
    #[serde(flatten)]
    pub kind: KindSpec,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KindSpec {
    Http(HttpSpec),
    Tcp(TcpSpec),
    TlsCert(TlsCertSpec),
    Dns(DnsSpec),
}

/// Every kind's key, for "exactly one of" messages.
pub const KINDS: [&str; 4] = ["http", "tcp", "tls_cert", "dns"];

impl<'de> Deserialize<'de> for StepSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            name: String,
            http: Option<HttpSpec>,
            tcp: Option<TcpSpec>,
            tls_cert: Option<TlsCertSpec>,
            dns: Option<DnsSpec>,
        }
        let raw = Raw::deserialize(deserializer)?;
        let mut kinds = Vec::new();
        if let Some(spec) = raw.http {
            kinds.push(KindSpec::Http(spec));
        }
        if let Some(spec) = raw.tcp {
            kinds.push(KindSpec::Tcp(spec));
        }
        if let Some(spec) = raw.tls_cert {
            kinds.push(KindSpec::TlsCert(spec));
        }
        if let Some(spec) = raw.dns {
            kinds.push(KindSpec::Dns(spec));
        }
        let name = raw.name;
        match kinds.len() {
            1 => Ok(StepSpec {
                name,
                kind: kinds.remove(0),
            }),
            0 => Err(serde::de::Error::custom(format!(
                "step {name:?} has no kind: give exactly one of {}",
                KINDS.join(", ")
            ))),
            _ => Err(serde::de::Error::custom(format!(
                "step {name:?} has more than one kind: give exactly one of {}",
                KINDS.join(", ")
            ))),
        }
    }
}

impl StepSpec {
    pub fn build(&self) -> Step {
        match &self.kind {
            KindSpec::Http(spec) => Step::new(&self.name, HttpCheck::new(spec.clone())),
            KindSpec::Tcp(spec) => Step::new(&self.name, TcpCheck { spec: spec.clone() }),
            KindSpec::TlsCert(spec) => Step::new(&self.name, TlsCertCheck { spec: spec.clone() }),
            KindSpec::Dns(spec) => Step::new(&self.name, DnsCheck { spec: spec.clone() }),
        }
    }
}
