//! `dns`: a name resolves, optionally to the records expected, within a timeout;
//! through a given DNS server (`server: 10.0.0.2:53`) or the system's resolver. With a
//! server, any of A, AAAA, CNAME, MX and TXT can be asked, and the response code asserted
//! (`rcode: NXDOMAIN` when a name must not exist).

use super::latency::{LatencyLevels, seconds};
use super::resolve::{self, Server};
use super::{Env, Probe};
use crate::model::{BoxFuture, Data, Outcome, Status};
use crate::values::{Duration, Invalid, Text};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use serde::{Deserialize, Deserializer, Serialize};
use std::net::IpAddr;
use std::time::Instant;

#[derive(Clone, Debug, Serialize)]
pub struct DnsSpec {
    /// The name to resolve.
    pub name: Text,
    /// Ask this server (IP or IP:port) instead of the system's resolver.
    pub server: Option<Server>,
    #[serde(rename = "type")]
    pub record_type: Kind,
    /// Records to look for in the answer (one or a list), normalised for comparing.
    pub expect: Vec<String>,
    /// Every answer must be one of `expect` (default: any one answer will do).
    pub expect_all: bool,
    /// The response code the server must give (default: NOERROR with an answer).
    pub rcode: Option<Rcode>,
    pub timeout: Duration,
    pub latency: LatencyLevels,
}

/// The record types a `dns` step asks for.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
#[allow(clippy::upper_case_acronyms)]
pub enum Kind {
    #[default]
    A,
    AAAA,
    CNAME,
    MX,
    TXT,
}

impl Kind {
    fn record_type(self) -> RecordType {
        match self {
            Kind::A => RecordType::A,
            Kind::AAAA => RecordType::AAAA,
            Kind::CNAME => RecordType::CNAME,
            Kind::MX => RecordType::MX,
            Kind::TXT => RecordType::TXT,
        }
    }

    fn is_address(self) -> bool {
        matches!(self, Kind::A | Kind::AAAA)
    }

    /// `expect` as written, in the form answers are compared in; an address must be one
    /// of this type's.
    fn expected(self, text: &Text) -> Result<String, Invalid> {
        let value = text.as_str().trim();
        match self {
            Kind::A | Kind::AAAA => match value.parse::<IpAddr>() {
                Ok(ip) if (self == Kind::A) == ip.is_ipv4() => Ok(ip.to_string()),
                _ => Err(Invalid(format!(
                    "expect {:?} is not an {} address",
                    text.shown(),
                    if self == Kind::A { "IPv4" } else { "IPv6" }
                ))),
            },
            Kind::CNAME | Kind::MX => Ok(host(value)),
            Kind::TXT => Ok(value.to_string()),
        }
    }
}

/// A host name as compared: lower case, no final dot, words single-spaced (`10 mx.test`).
fn host(text: &str) -> String {
    text.split_whitespace()
        .map(|w| w.trim_end_matches('.').to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A DNS response code as written in `rcode:`.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Rcode {
    NoError,
    FormErr,
    ServFail,
    NxDomain,
    NotImp,
    Refused,
}

impl Rcode {
    fn parse(text: &str) -> Result<Self, Invalid> {
        Ok(match text.trim().to_ascii_uppercase().as_str() {
            "NOERROR" => Rcode::NoError,
            "FORMERR" => Rcode::FormErr,
            "SERVFAIL" => Rcode::ServFail,
            "NXDOMAIN" => Rcode::NxDomain,
            "NOTIMP" => Rcode::NotImp,
            "REFUSED" => Rcode::Refused,
            _ => {
                return Err(Invalid(format!(
                    "rcode {text:?} is not a DNS response code: use NOERROR, NXDOMAIN, SERVFAIL, REFUSED, FORMERR or NOTIMP"
                )));
            }
        })
    }

    fn code(self) -> ResponseCode {
        match self {
            Rcode::NoError => ResponseCode::NoError,
            Rcode::FormErr => ResponseCode::FormErr,
            Rcode::ServFail => ResponseCode::ServFail,
            Rcode::NxDomain => ResponseCode::NXDomain,
            Rcode::NotImp => ResponseCode::NotImp,
            Rcode::Refused => ResponseCode::Refused,
        }
    }
}

/// The name of a response code as DNS tools print it (`NXDOMAIN`).
fn code_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("RCODE {}", u16::from(other)),
    }
}

impl<'de> Deserialize<'de> for DnsSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(Text),
            Many(Vec<Text>),
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            name: Text,
            server: Option<Server>,
            #[serde(default, rename = "type")]
            record_type: Option<Text>,
            expect: Option<OneOrMany>,
            #[serde(default)]
            expect_all: bool,
            rcode: Option<Text>,
            #[serde(default = "default_timeout")]
            timeout: Duration,
            #[serde(default)]
            latency: LatencyLevels,
        }
        let raw = Raw::deserialize(deserializer)?;
        check(
            raw.record_type.as_ref(),
            raw.rcode.as_ref(),
            raw.server,
            raw.expect.map(|e| match e {
                OneOrMany::One(one) => vec![one],
                OneOrMany::Many(many) => many,
            }),
        )
        .map(|(record_type, rcode, expect)| DnsSpec {
            name: raw.name,
            server: raw.server,
            record_type,
            expect,
            expect_all: raw.expect_all,
            rcode,
            timeout: raw.timeout,
            latency: raw.latency,
        })
        .map_err(serde::de::Error::custom)
    }
}

/// The type, the response code and the expected records, checked against each other.
fn check(
    record_type: Option<&Text>,
    rcode: Option<&Text>,
    server: Option<Server>,
    expect: Option<Vec<Text>>,
) -> Result<(Kind, Option<Rcode>, Vec<String>), Invalid> {
    let kind = match record_type.map(|t| t.as_str().trim().to_ascii_uppercase()) {
        None => Kind::A,
        Some(t) => match t.as_str() {
            "A" => Kind::A,
            "AAAA" => Kind::AAAA,
            "CNAME" => Kind::CNAME,
            "MX" => Kind::MX,
            "TXT" => Kind::TXT,
            _ => {
                return Err(Invalid(format!(
                    "type {:?} is not a record type this step asks for: use A, AAAA, CNAME, MX or TXT",
                    record_type.map(Text::shown).unwrap_or_default()
                )));
            }
        },
    };
    let rcode = rcode.map(|r| Rcode::parse(r.shown())).transpose()?;
    if server.is_none() && (rcode.is_some() || !kind.is_address()) {
        return Err(Invalid(format!(
            "{} needs `server`: the system's resolver says neither response codes nor CNAME, MX or TXT records",
            if rcode.is_some() {
                "`rcode`".to_string()
            } else {
                format!("type {kind:?}")
            }
        )));
    }
    let expect = expect.unwrap_or_default();
    if !expect.is_empty() && rcode.is_some_and(|r| r != Rcode::NoError) {
        return Err(Invalid(
            "`expect` looks at answers, and a response code other than NOERROR comes with none: give one or the other"
                .to_string(),
        ));
    }
    let expect = expect
        .iter()
        .map(|e| kind.expected(e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((kind, rcode, expect))
}

fn default_timeout() -> Duration {
    Duration(std::time::Duration::from_secs(5))
}

/// One record of the answer: how it is shown, and the forms `expect` may match.
struct Found {
    shown: String,
    keys: Vec<String>,
}

fn found(data: &RData, kind: Kind) -> Option<Found> {
    let one = |shown: String, key: String| Found {
        shown,
        keys: vec![key],
    };
    match (data, kind) {
        (RData::A(a), Kind::A) => Some(one(a.0.to_string(), a.0.to_string())),
        (RData::AAAA(a), Kind::AAAA) => Some(one(a.0.to_string(), a.0.to_string())),
        (RData::CNAME(c), Kind::CNAME) => {
            let name = c.0.to_ascii();
            Some(one(name.clone(), host(&name)))
        }
        (RData::MX(mx), Kind::MX) => {
            let exchange = mx.exchange.to_ascii();
            Some(Found {
                shown: format!("{} {exchange}", mx.preference),
                keys: vec![
                    host(&format!("{} {exchange}", mx.preference)),
                    host(&exchange),
                ],
            })
        }
        (RData::TXT(txt), Kind::TXT) => {
            let text: String = txt
                .txt_data
                .iter()
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .collect();
            Some(one(format!("{text:?}"), text))
        }
        _ => None,
    }
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
            let started = Instant::now();
            let answer = self.answer().await;
            let took = started.elapsed();
            let data = |records: &[Found]| Data::Dns {
                name: spec.name.shown().to_string(),
                server: spec.server.map(|s| s.0.to_string()),
                addresses: records.iter().map(|r| r.shown.clone()).collect(),
                latency_ms: crate::model::round(took.as_secs_f64() * 1000.0, 1),
            };
            let (code, records) = match answer {
                Ok(answer) => answer,
                Err(e) => return Outcome::new(Status::Critical, e.to_string(), data(&[])),
            };
            let summary = match judge(spec, code, &records) {
                Ok(summary) => summary,
                Err(failure) => return Outcome::new(Status::Critical, failure.0, data(&records)),
            };
            let (status, crossed) = spec.latency.grade(took);
            let message = match crossed {
                Some(crossed) => format!("{summary}: {crossed}"),
                None => format!("{summary} in {}", seconds(took)),
            };
            Outcome::new(status, message, data(&records))
        })
    }
}

/// What the answer says against what the step expects: a summary, or the failure.
fn judge(spec: &DnsSpec, code: ResponseCode, records: &[Found]) -> Result<String, Invalid> {
    let name = spec.name.shown();
    let server = spec.server.map(|s| s.0.to_string()).unwrap_or_default();
    match spec.rcode {
        Some(want) if want.code() != code => {
            return Err(Invalid(format!(
                "{name}: DNS server {server} answered {}, expected {}",
                code_name(code),
                code_name(want.code())
            )));
        }
        Some(want) if want != Rcode::NoError => {
            return Ok(format!("{name} → {} as expected", code_name(code)));
        }
        None if code != ResponseCode::NoError => {
            let server = spec.server.unwrap_or(Server(([0, 0, 0, 0], 53).into()));
            return Err(Invalid(resolve::refusal(name, server, code).to_string()));
        }
        _ => {}
    }
    let kind = format!("{:?}", spec.record_type);
    if records.is_empty() {
        if spec.rcode.is_some() && spec.expect.is_empty() {
            return Ok(format!("{name} → NOERROR, no {kind} record"));
        }
        return Err(Invalid(format!(
            "{name} has no {kind} record (asked {server})"
        )));
    }
    let shown = records
        .iter()
        .map(|r| r.shown.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if spec.expect.is_empty() {
        return Ok(format!("{name} → {shown}"));
    }
    let expected = |r: &&Found| r.keys.iter().any(|k| spec.expect.contains(k));
    let wanted = spec.expect.join(", ");
    if spec.expect_all {
        let stray: Vec<&str> = records
            .iter()
            .filter(|r| !expected(r))
            .map(|r| r.shown.as_str())
            .collect();
        if !stray.is_empty() {
            return Err(Invalid(format!(
                "{name} resolved to {shown}: {} not expected (expect_all: {wanted})",
                stray.join(", ")
            )));
        }
    } else if !records.iter().any(|r| expected(&r)) {
        let one_of = if spec.expect.len() > 1 { "one of " } else { "" };
        return Err(Invalid(format!(
            "{name} resolved to {shown}, expected {one_of}{wanted}"
        )));
    }
    Ok(format!("{name} → {shown}"))
}

impl DnsCheck {
    /// The response code and the records of the type asked.
    async fn answer(&self) -> Result<(ResponseCode, Vec<Found>), super::Error> {
        let spec = &self.spec;
        let timeout = spec.timeout.0;
        let name = spec.name.as_str();
        let kind = spec.record_type;
        if let Some(server) = spec.server {
            let reply = resolve::ask(server, name, kind.record_type(), timeout).await?;
            let records = reply
                .answers
                .iter()
                .filter_map(|record| found(&record.data, kind))
                .collect();
            return Ok((reply.metadata.response_code, records));
        }
        let found: Vec<Found> = resolve::lookup(name, 0, None, timeout)
            .await?
            .into_iter()
            .map(|a| a.ip())
            .filter(|ip| (kind == Kind::A) == ip.is_ipv4())
            .map(|ip| Found {
                shown: ip.to_string(),
                keys: vec![ip.to_string()],
            })
            .collect();
        if found.is_empty() {
            return Err(super::Error::NoRecordHere {
                name: name.to_string(),
                record: format!("{kind:?}"),
            });
        }
        Ok((ResponseCode::NoError, found))
    }
}
