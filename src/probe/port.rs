//! `port`: something listens on a local TCP port (read from /proc/net/tcp and tcp6, so
//! nothing connects to the service).

use super::{Env, Probe};
use crate::model::{BoxFuture, Data, Outcome, Status};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize)]
pub struct PortSpec {
    pub port: u16,
}

impl<'de> Deserialize<'de> for PortSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Map {
            port: crate::values::WholeNumber<u16>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Port(crate::values::WholeNumber<u16>),
            Map(Map),
        }
        match Raw::deserialize(deserializer) {
            Ok(Raw::Port(port)) | Ok(Raw::Map(Map { port })) if port.0 > 0 => {
                Ok(PortSpec { port: port.0 })
            }
            Ok(_) => Err(serde::de::Error::custom(
                "port 0 is not a port number: write 1–65535",
            )),
            Err(_) => Err(serde::de::Error::custom(
                "write a port number (1–65535), e.g. `port: 5432` or `port: { port: 5432 }`",
            )),
        }
    }
}

pub struct PortCheck {
    pub spec: PortSpec,
}

impl Probe for PortCheck {
    fn kind(&self) -> &'static str {
        "port"
    }

    fn run<'a>(&'a self, _ctx: &'a Env) -> BoxFuture<'a, Outcome> {
        let port = self.spec.port;
        Box::pin(async move {
            let mut read_any = false;
            let mut listening = false;
            for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
                let Ok(text) = tokio::fs::read_to_string(table).await else {
                    continue;
                };
                read_any = true;
                listening |= listens(&text, port);
            }
            let data = Data::Port { port, listening };
            match (read_any, listening) {
                (false, _) => Outcome::unknown("cannot read /proc/net/tcp: is this Linux?"),
                (true, true) => Outcome::new(Status::Ok, format!("port {port} is listening"), data),
                (true, false) => Outcome::new(
                    Status::Critical,
                    format!("nothing listens on port {port}"),
                    data,
                ),
            }
        })
    }
}

/// Whether a /proc/net/tcp table has a socket in LISTEN (0A) on `port`.
fn listens(table: &str, port: u16) -> bool {
    table.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1).unwrap_or_default();
        let state = fields.nth(1).unwrap_or_default();
        let local_port = local
            .rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok());
        state == "0A" && local_port == Some(port)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn listening_sockets_are_found_by_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 1 1 0\n   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0\n";
        assert!(super::listens(table, 5432));
        assert!(!super::listens(table, 8080)); // established, not listening
        assert!(!super::listens(table, 22));
    }
}
