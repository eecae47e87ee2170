//! Endpoint probes: `opsbook health` over 1,000 HTTP endpoints that each answer after
//! 100 ms, against a sequential `curl` loop and `xargs -P 64 curl` on the same server in
//! the same run. Prints wall times, the ratios, and opsbook's peak memory.
//!
//! `cargo bench --bench endpoints` runs it in full (the sequential curl loop alone takes
//! about 100 s); `OPSBOOK_BENCH_ENDPOINTS=200` makes it smaller. Under `cargo test` it
//! runs a 20-endpoint smoke version of the opsbook part only, so it cannot rot.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DELAY: Duration = Duration::from_millis(100);

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let endpoints: usize = if full {
        std::env::var("OPSBOOK_BENCH_ENDPOINTS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1000)
    } else {
        20
    };
    let address = start_server();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("bench.yaml");
    // Only the endpoints are graded: the machine's own readings (a busy CPU while the test
    // suite runs beside this) must not fail the run.
    let mut yaml = String::from(
        "health:\n  cpu_sample: 10ms\n  thresholds:\n    memory: { warn: 100, crit: 100 }\n    disk: { warn: 100, crit: 100 }\n    cpu: { warn: 100, crit: 100 }\n  endpoints:\n",
    );
    for i in 0..endpoints {
        let _ = writeln!(
            yaml,
            "    - {{ name: e{i}, http: {{ url: \"http://{address}/e/{i}\", timeout: 10s }} }}"
        );
    }
    std::fs::write(&config, yaml).expect("write config");

    let (took, peak_kib, code) = opsbook(&config);
    assert!(
        code == Some(0) || code == Some(1),
        "opsbook health failed (exit {code:?}): some endpoint was not ok"
    );
    println!(
        "opsbook health, {endpoints} endpoints × {} ms, bound 64: {:.2} s, peak RSS {:.1} MiB",
        DELAY.as_millis(),
        took.as_secs_f64(),
        peak_kib as f64 / 1024.0
    );
    if !full {
        return;
    }
    let urls: String = (0..endpoints)
        .map(|i| format!("http://{address}/e/{i}\n"))
        .collect();
    let parallel = timed_shell("xargs -P 64 -n 1 curl -s -o /dev/null --max-time 10", &urls);
    println!(
        "xargs -P 64 curl:           {:.2} s",
        parallel.as_secs_f64()
    );
    let sequential = timed_shell(
        "while read -r url; do curl -s -o /dev/null --max-time 10 \"$url\"; done",
        &urls,
    );
    println!(
        "sequential curl loop:       {:.2} s",
        sequential.as_secs_f64()
    );
    println!(
        "ratio opsbook / xargs -P 64 curl: {:.3}",
        took.as_secs_f64() / parallel.as_secs_f64()
    );
    println!(
        "ratio opsbook / sequential curl:  {:.3}",
        took.as_secs_f64() / sequential.as_secs_f64()
    );
    println!(
        "target: {endpoints} endpoints under 2.5 s: {}",
        if took < Duration::from_millis(2500) {
            "met"
        } else {
            "MISSED"
        }
    );
}

/// Run opsbook health on `config`: wall time, peak RSS (KiB) and exit code.
fn opsbook(config: &std::path::Path) -> (Duration, i64, Option<i32>) {
    common::opsbook(&[
        "--config",
        config.to_str().expect("utf-8 path"),
        "health",
        "--format",
        "json",
    ])
}

/// Wall time of `bash -c script` with `input` on stdin.
fn timed_shell(script: &str, input: &str) -> Duration {
    use std::io::Write;
    let started = Instant::now();
    let mut child = Command::new("bash")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .spawn()
        .expect("start bash");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("feed urls");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{script} failed: {status}");
    started.elapsed()
}

/// An HTTP server on 127.0.0.1 (its own thread and runtime) that answers every request
/// after `DELAY`, any number at once.
fn start_server() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    loop {
                        // One request per connection: read the head, wait, answer, close.
                        let Ok(n) = stream.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    tokio::time::sleep(DELAY).await;
                    let body = r#"{"status":"healthy"}"#;
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
    });
    address
}
