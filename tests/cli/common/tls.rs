//! An HTTPS server on 127.0.0.1 with a certificate made by rcgen: a test CA signs a leaf
//! for `localhost` and 127.0.0.1, valid between the given dates. Every request gets
//! 200 `{"status":"healthy"}`.

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, date_time_ymd};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;

pub struct TlsServer {
    pub port: u16,
    /// The test CA's certificate, PEM, for `ca_file`.
    pub ca_pem: String,
}

/// A server whose leaf certificate is valid from `not_before` to `not_after` (dates).
pub fn server(not_before: jiff::civil::Date, not_after: jiff::civil::Date) -> TlsServer {
    let ymd = |d: jiff::civil::Date| date_time_ymd(d.year().into(), d.month() as u8, d.day() as u8);
    let (ca_cert, issuer) = root_ca();

    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("leaf params");
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    leaf.not_before = ymd(not_before);
    leaf.not_after = ymd(not_after);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf cert");

    let chain = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
    TlsServer {
        port: serve(chain, &leaf_key),
        ca_pem: ca_cert.pem(),
    }
}

/// A server whose chain is leaf, intermediate CA, root CA: the leaf valid until
/// `leaf_until`, the intermediate (`CN=opsbook test intermediate`) until
/// `intermediate_until`, both from `not_before`.
pub fn server_with_chain(
    not_before: jiff::civil::Date,
    leaf_until: jiff::civil::Date,
    intermediate_until: jiff::civil::Date,
) -> TlsServer {
    let ymd = |d: jiff::civil::Date| date_time_ymd(d.year().into(), d.month() as u8, d.day() as u8);
    let (root_cert, root_issuer) = root_ca();

    let mid_key = KeyPair::generate().expect("intermediate key");
    let mut mid = CertificateParams::new(Vec::<String>::new()).expect("intermediate params");
    mid.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    mid.distinguished_name
        .push(rcgen::DnType::CommonName, "opsbook test intermediate");
    mid.not_before = ymd(not_before);
    mid.not_after = ymd(intermediate_until);
    let mid_cert = mid
        .signed_by(&mid_key, &root_issuer)
        .expect("intermediate cert");
    let mid_issuer = Issuer::new(mid, mid_key);

    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).expect("leaf params");
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    leaf.not_before = ymd(not_before);
    leaf.not_after = ymd(leaf_until);
    let leaf_cert = leaf.signed_by(&leaf_key, &mid_issuer).expect("leaf cert");
    let chain = vec![
        leaf_cert.der().clone(),
        mid_cert.der().clone(),
        root_cert.der().clone(),
    ];
    TlsServer {
        port: serve(chain, &leaf_key),
        ca_pem: root_cert.pem(),
    }
}

/// The self-signed test CA (`CN=opsbook test CA`) and its issuer.
pub fn root_ca() -> (rcgen::Certificate, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "opsbook test CA");
    let cert = ca.self_signed(&key).expect("ca cert");
    (cert, Issuer::new(ca, key))
}

/// Serve `chain` (leaf first) on a loopback port; every request gets the health body.
fn serve(chain: Vec<rustls::pki_types::CertificateDer<'static>>, leaf_key: &KeyPair) -> u16 {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server config");
    let config = Arc::new(config);

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = Arc::clone(&config);
            thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let body = r#"{"status":"healthy"}"#;
                let _ = write!(
                    tls,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    port
}
