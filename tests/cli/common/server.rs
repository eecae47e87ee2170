//! Real servers on 127.0.0.1 for probe tests: an HTTP server with well-behaved and hostile
//! routes, and a line-based TCP server. Each connection gets its own thread.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

/// Routes:
/// `/ok` 200 `{"status":"healthy"}` · `/degraded` 200 `{"status":"degraded"}` ·
/// `/queue` 200 `{"queue":{"depth":150}}` · `/500` ·
/// `/slow/<ms>` 200 after a pause · `/hang` never answers · `/stall-body` headers then
/// silence · `/endless` a body that never ends · `/loop` redirects to itself ·
/// `/echo-header/<name>` 200 with that request header's value as the body.
pub fn http() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || serve(stream));
        }
    });
    format!("http://{address}")
}

/// The request's head (up to the blank line), or `None` if the client went away first.
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    Some(String::from_utf8_lossy(&request).into_owned())
}

/// One request read whole: its head (request line and headers) and its body, as long as
/// `Content-Length` says; `None` when the peer goes before it is complete.
pub fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
        let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&request[..end]).into_owned();
        let length: usize = head
            .to_ascii_lowercase()
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if request.len() >= end + 4 + length {
            let body = String::from_utf8_lossy(&request[end + 4..end + 4 + length]).into_owned();
            return Some((head, body));
        }
    }
}

fn serve(mut stream: TcpStream) {
    let Some(request) = read_head(&mut stream) else {
        return;
    };
    let target = request.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/").to_string();
    let reply = |stream: &mut TcpStream, status: &str, body: &str| {
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    };
    match path.as_str() {
        "/ok" => reply(&mut stream, "200 OK", r#"{"status":"healthy"}"#),
        "/degraded" => reply(&mut stream, "200 OK", r#"{"status":"degraded"}"#),
        "/queue" => reply(&mut stream, "200 OK", r#"{"queue":{"depth":150}}"#),
        "/500" => reply(&mut stream, "500 Internal Server Error", "{}"),
        "/hang" => thread::sleep(Duration::from_secs(60)),
        "/stall-body" => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nsome"
            );
            let _ = stream.flush();
            thread::sleep(Duration::from_secs(60));
        }
        "/endless" => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            );
            let chunk = format!("{:x}\r\n{}\r\n", 8192, "x".repeat(8192));
            while stream.write_all(chunk.as_bytes()).is_ok() {}
        }
        "/loop" => {
            let _ = write!(
                stream,
                "HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
        p if p.starts_with("/slow/") => {
            let ms = p["/slow/".len()..].parse().unwrap_or(0);
            thread::sleep(Duration::from_millis(ms));
            reply(&mut stream, "200 OK", r#"{"status":"healthy"}"#);
        }
        p if p.starts_with("/echo-header/") => {
            let name = p["/echo-header/".len()..].to_ascii_lowercase();
            let value = request
                .lines()
                .find_map(|line| {
                    let (k, v) = line.split_once(':')?;
                    (k.trim().to_ascii_lowercase() == name).then(|| v.trim().to_string())
                })
                .unwrap_or_default();
            reply(&mut stream, "200 OK", &value);
        }
        _ => reply(&mut stream, "404 Not Found", "{}"),
    }
}

/// A TCP server that answers every read with `reply`; returns its port.
pub fn tcp(reply: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut buf = [0u8; 1024];
                if let Ok(n) = stream.read(&mut buf)
                    && n > 0
                {
                    let _ = stream.write_all(reply.as_bytes());
                }
            });
        }
    });
    port
}

/// A port on 127.0.0.1 where nothing listens.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// An HTTP server that answers 503 to the first `failures` requests and then 200
/// `{"status":"healthy"}`; the counter tells how many requests it has had.
pub fn flaky(failures: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let seen = counter.fetch_add(1, Ordering::SeqCst);
            thread::spawn(move || {
                if read_head(&mut stream).is_none() {
                    return;
                }
                let (status, body) = if seen < failures {
                    ("503 Service Unavailable", r#"{"status":"starting"}"#)
                } else {
                    ("200 OK", r#"{"status":"healthy"}"#)
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    (format!("http://{address}"), count)
}

/// A plain `GET path` to `address`: the status code and the body.
pub fn get(address: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// An HTTP server that answers every request with `status` (`"503 Service Unavailable"`)
/// and the JSON `body`.
pub fn fixed(status: &'static str, body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            thread::spawn(move || {
                if read_head(&mut stream).is_none() {
                    return;
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    format!("http://{address}")
}

/// An HTTP server that answers its n-th request (counting from 1) with the n-th of
/// `statuses` (the last one repeats), but only once the test has released it: a prober's
/// next request arriving means it has finished with the previous answer, and a request
/// held unanswered keeps the prober from moving on while the test looks.
pub struct Held {
    pub url: String,
    /// Requests arrived and requests released.
    counts: std::sync::Arc<(std::sync::Mutex<(usize, usize)>, std::sync::Condvar)>,
}

impl Held {
    pub fn start(statuses: &'static [u16]) -> Held {
        use std::sync::{Arc, Condvar, Mutex};
        assert!(!statuses.is_empty());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let counts = Arc::new((Mutex::new((0usize, 0usize)), Condvar::new()));
        let shared = Arc::clone(&counts);
        thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                thread::spawn(move || {
                    if read_head(&mut stream).is_none() {
                        return;
                    }
                    let (lock, changed) = &*shared;
                    let mut guard = lock.lock().unwrap();
                    guard.0 += 1;
                    let nth = guard.0;
                    changed.notify_all();
                    while guard.1 < nth {
                        guard = changed.wait(guard).unwrap();
                    }
                    drop(guard);
                    let status = statuses[(nth - 1).min(statuses.len() - 1)];
                    let body = if status < 300 {
                        r#"{"status":"healthy"}"#
                    } else {
                        r#"{"status":"down"}"#
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        Held {
            url: format!("http://{address}"),
            counts,
        }
    }

    /// Let requests up to the n-th be answered.
    pub fn release(&self, n: usize) {
        let (lock, changed) = &*self.counts;
        let mut guard = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.1 = guard.1.max(n);
        changed.notify_all();
    }

    /// Wait until the n-th request has arrived (a minute at most).
    pub fn arrived(&self, n: usize) {
        let (lock, changed) = &*self.counts;
        let limit = std::time::Instant::now() + Duration::from_secs(60);
        let mut guard = lock.lock().unwrap();
        while guard.0 < n {
            let left = limit.saturating_duration_since(std::time::Instant::now());
            assert!(!left.is_zero(), "request {n} never came ({} did)", guard.0);
            guard = changed.wait_timeout(guard, left).unwrap().0;
        }
    }
}

impl Drop for Held {
    /// Answer whatever is still held, so no thread waits forever.
    fn drop(&mut self) {
        self.release(usize::MAX);
    }
}
