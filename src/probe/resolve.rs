//! Name resolution for network probes. Without a `resolver`, names go through the
//! system's resolver (getaddrinfo, as curl does). With `resolver: 10.0.0.2:53` (or any
//! `host:port`), the probe asks that DNS server directly over UDP, so a check can test a
//! particular server and a test can bring its own on 127.0.0.1.

use super::Error;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The address of a DNS server: `127.0.0.1:5353`, or an IP alone for port 53.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Server(pub SocketAddr);

impl std::str::FromStr for Server {
    type Err = super::Error;

    fn from_str(text: &str) -> Result<Self, super::Error> {
        if let Ok(address) = text.parse::<SocketAddr>() {
            return Ok(Server(address));
        }
        text.parse::<IpAddr>()
            .map(|ip| Server(SocketAddr::new(ip, 53)))
            .map_err(|_| super::Error::NotServer(text.to_string()))
    }
}

impl<'de> Deserialize<'de> for Server {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `server: "{{ dns_server }}"`: substituted before it is read.
        crate::values::Text::deserialize(deserializer)?
            .as_str()
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Server {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// The addresses a name has for `record_type` (A or AAAA), asked of `server`.
/// NXDOMAIN, SERVFAIL and an empty answer are errors that say so.
pub async fn query(
    server: Server,
    name: &str,
    record_type: RecordType,
    timeout: Duration,
) -> Result<Vec<IpAddr>, Error> {
    let reply = ask(server, name, record_type, timeout).await?;
    addresses(name, server, &reply, record_type)
}

/// The reply of `server` to one question (whatever its response code), within `timeout`.
pub async fn ask(
    server: Server,
    name: &str,
    record_type: RecordType,
    timeout: Duration,
) -> Result<Message, Error> {
    let exchange = async {
        let fqdn = Name::from_ascii(name)
            .map_err(Error::refused(format!("{name:?} is not a valid DNS name")))?;
        let mut message = Message::query();
        message.metadata.recursion_desired = true;
        message.add_query(hickory_proto::op::Query::query(fqdn, record_type));
        let bytes = message
            .to_vec()
            .map_err(Error::refused("cannot encode the DNS query"))?;
        let bind: SocketAddr = if server.0.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = tokio::net::UdpSocket::bind(bind)
            .await
            .map_err(Error::io("cannot open a UDP socket"))?;
        socket
            .connect(server.0)
            .await
            .map_err(Error::io(format!("cannot reach DNS server {}", server.0)))?;
        socket
            .send(&bytes)
            .await
            .map_err(Error::io(format!("cannot send to DNS server {}", server.0)))?;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = socket
                .recv(&mut buf)
                .await
                .map_err(Error::io(format!("DNS server {} did not answer", server.0)))?;
            let Ok(reply) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            if reply.metadata.id != message.metadata.id {
                continue; // a stray or spoofed datagram; keep waiting for ours
            }
            return Ok(reply);
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(Error::DnsTimeout {
            server: server.0,
            name: name.to_string(),
            timeout,
        }),
    }
}

/// A reply whose code is not NOERROR as the error that says so.
pub fn refusal(name: &str, server: Server, code: ResponseCode) -> Error {
    match code {
        ResponseCode::NXDomain => Error::NxDomain {
            name: name.to_string(),
            server: server.0,
        },
        code => Error::DnsAnswer {
            server: server.0,
            code: code.to_string(),
            name: name.to_string(),
        },
    }
}

fn addresses(
    name: &str,
    server: Server,
    reply: &Message,
    record_type: RecordType,
) -> Result<Vec<IpAddr>, Error> {
    let code = reply.metadata.response_code;
    if code != ResponseCode::NoError {
        return Err(refusal(name, server, code));
    }
    let found: Vec<IpAddr> = reply
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(a) if record_type == RecordType::A => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) if record_type == RecordType::AAAA => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    if found.is_empty() {
        return Err(Error::NoRecord {
            name: name.to_string(),
            record: record_type.to_string(),
            server: server.0,
        });
    }
    Ok(found)
}

/// Socket addresses for `host:port`: an IP literal as is, else through `resolver` (A,
/// then AAAA) or the system's resolver.
pub async fn lookup(
    host: &str,
    port: u16,
    resolver: Option<Server>,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, Error> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let Some(server) = resolver else {
        let found = tokio::time::timeout(timeout, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| Error::ResolveTimeout {
                host: host.to_string(),
                timeout,
            })?
            .map_err(Error::io(format!("cannot resolve {host}")))?;
        return Ok(found.collect());
    };
    let ips = match query(server, host, RecordType::A, timeout).await {
        Ok(ips) => ips,
        Err(Error::NoRecord { .. }) => query(server, host, RecordType::AAAA, timeout).await?,
        Err(first) => return Err(first),
    };
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

/// Lets reqwest resolve through a chosen DNS server.
pub struct ReqwestResolver {
    pub server: Server,
    pub timeout: Duration,
}

impl reqwest::dns::Resolve for ReqwestResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (server, timeout) = (self.server, self.timeout);
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found = lookup(&host, 0, Some(server), timeout).await?;
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_parse_with_a_default_port() {
        assert_eq!(
            "127.0.0.1:5353".parse::<Server>().unwrap(),
            Server(([127, 0, 0, 1], 5353).into())
        );
        assert_eq!(
            "10.0.0.2".parse::<Server>().unwrap(),
            Server(([10, 0, 0, 2], 53).into())
        );
        assert!(
            "dns.example"
                .parse::<Server>()
                .unwrap_err()
                .to_string()
                .contains("not a DNS server address")
        );
    }
}
