//! A DNS server on 127.0.0.1 for probe tests, so no test name is ever looked up through
//! the machine's resolver. It knows the records it is given, answers NXDOMAIN for every
//! other name (NOERROR with no answer for a known name without a record of the type
//! asked), SERVFAIL for a name given `Rec::ServFail`, and never answers for `silent.test`.

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::thread;

/// One record the test server holds.
#[derive(Clone)]
pub enum Rec {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(&'static str),
    Mx(u16, &'static str),
    Txt(&'static str),
    /// The server fails for this name (SERVFAIL).
    ServFail,
}

impl Rec {
    fn answer(&self, asked: RecordType) -> Option<RData> {
        let name = |n: &str| Name::from_ascii(n).expect("name");
        match (self, asked) {
            (Rec::A(ip), RecordType::A) => Some(RData::A(A(*ip))),
            (Rec::Aaaa(ip), RecordType::AAAA) => Some(RData::AAAA(AAAA(*ip))),
            (Rec::Cname(target), RecordType::CNAME) => Some(RData::CNAME(CNAME(name(target)))),
            (Rec::Mx(preference, exchange), RecordType::MX) => {
                Some(RData::MX(MX::new(*preference, name(exchange))))
            }
            (Rec::Txt(text), RecordType::TXT) => Some(RData::TXT(TXT::new(vec![text.to_string()]))),
            _ => None,
        }
    }
}

/// A server holding A records only.
pub fn server(names: &[(&str, Ipv4Addr)]) -> SocketAddr {
    let records: Vec<(&str, Rec)> = names.iter().map(|(n, ip)| (*n, Rec::A(*ip))).collect();
    zone(&records)
}

/// A server holding the given records.
pub fn zone(records: &[(&str, Rec)]) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let address = socket.local_addr().expect("address");
    let records: Vec<(String, Rec)> = records
        .iter()
        .map(|(name, rec)| (format!("{}.", name.trim_end_matches('.')), rec.clone()))
        .collect();
    thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = socket.recv_from(&mut buf) {
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let Some(question) = query.queries.first().cloned() else {
                continue;
            };
            let asked = question.name().to_ascii().to_ascii_lowercase();
            if asked == "silent.test." {
                continue;
            }
            let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
            reply.add_query(question.clone());
            let known: Vec<&Rec> = records
                .iter()
                .filter(|(name, _)| *name == asked)
                .map(|(_, rec)| rec)
                .collect();
            if known.is_empty() {
                reply.metadata.response_code = ResponseCode::NXDomain;
            } else if known.iter().any(|r| matches!(r, Rec::ServFail)) {
                reply.metadata.response_code = ResponseCode::ServFail;
            } else {
                for data in known.iter().filter_map(|r| r.answer(question.query_type())) {
                    let name = Name::from_ascii(&asked).expect("name");
                    reply.add_answer(Record::from_rdata(name, 60, data));
                }
            }
            if let Ok(bytes) = reply.to_vec() {
                let _ = socket.send_to(&bytes, peer);
            }
        }
    });
    address
}
