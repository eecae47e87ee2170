//! A DNS server on 127.0.0.1 for probe tests, so no test name is ever looked up through
//! the machine's resolver. It knows the names it is given (A records), answers NXDOMAIN
//! for every other name, and never answers for `silent.test`.

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, rdata::A};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::thread;

pub fn server(names: &[(&str, Ipv4Addr)]) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let address = socket.local_addr().expect("address");
    let names: Vec<(String, Ipv4Addr)> = names
        .iter()
        .map(|(name, ip)| (format!("{}.", name.trim_end_matches('.')), *ip))
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
            let known: Vec<Ipv4Addr> = names
                .iter()
                .filter(|(name, _)| *name == asked)
                .map(|(_, ip)| *ip)
                .collect();
            if known.is_empty() {
                reply.metadata.response_code = ResponseCode::NXDomain;
            } else if question.query_type() == hickory_proto::rr::RecordType::A {
                for ip in known {
                    let name = Name::from_ascii(&asked).expect("name");
                    reply.add_answer(Record::from_rdata(name, 60, RData::A(A(ip))));
                }
            }
            if let Ok(bytes) = reply.to_vec() {
                let _ = socket.send_to(&bytes, peer);
            }
        }
    });
    address
}
