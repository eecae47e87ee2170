//! `health --serve ADDR`: the health report over HTTP for load balancers, Kubernetes
//! probes and Prometheus. The machine's own checks are reused for `health.serve_cache`;
//! scrapes that arrive while they run wait for that one run instead of starting their
//! own. Endpoints are graded in the background, each on its own interval (`monitor`), and
//! the report shows each one's latest reading.
//!
//! - `/health`: `{"status","timestamp"}`, 200, or 503 when unhealthy.
//! - `/health/ready` (and seed 004's `/health/readiness`): the dependencies (the
//!   configured endpoints) only: 200 when none is critical or unknown, else 503.
//! - `/health/detailed`: the full JSON report, each endpoint with its counted `state`,
//!   200 or 503 like `/health`.
//! - `/metrics`: the Prometheus text format and the endpoint gauges, always 200.

use super::{HealthConfig, Monitor};
use crate::engine::Context;
use crate::model::Report;
use crate::model::Status;
use crate::report::{Format, Style, render};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long open connections get to finish once a shutdown is asked for.
const DRAIN: Duration = Duration::from_secs(5);

pub struct Server {
    config: HealthConfig,
    ctx: Context,
    monitor: Arc<Monitor>,
    /// The machine's own checks, and when they ran.
    cache: Mutex<Option<(Instant, Arc<Report>)>>,
}

impl Server {
    pub fn new(config: HealthConfig, ctx: Context, monitor: Arc<Monitor>) -> Arc<Self> {
        Arc::new(Server {
            config,
            ctx,
            monitor,
            cache: Mutex::new(None),
        })
    }

    /// The machine's checks (cached, or fresh once older than `serve_cache`) and each
    /// endpoint's latest reading.
    async fn report(&self) -> Report {
        let machine = {
            let mut cached = self.cache.lock().await;
            match cached.as_ref() {
                Some((at, report)) if at.elapsed() < self.config.serve_cache.0 => {
                    Arc::clone(report)
                }
                _ => {
                    let report = Arc::new(super::machine(&self.config, &self.ctx).await);
                    *cached = Some((Instant::now(), Arc::clone(&report)));
                    report
                }
            }
        };
        super::with_endpoints(&machine, self.monitor.readings().await)
    }

    async fn respond(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "application/json",
                r#"{"error":"only GET and HEAD"}"#.to_string(),
            );
        }
        let path = request.uri().path().trim_end_matches('/');
        let json = "application/json";
        match path {
            "/health" => {
                let report = self.report().await;
                let body = serde_json::json!({
                    "status": report.status().health_word(),
                    "timestamp": report.timestamp.to_string(),
                });
                reply(health_code(&report), json, body.to_string())
            }
            "/health/ready" | "/health/readiness" => {
                let report = self.report().await;
                let (code, body) = readiness(&self.config, &report.masked());
                reply(code, json, body.to_string())
            }
            "/health/detailed" => {
                let report = self.report().await;
                let body = render(&report, Format::Json, Style { color: false });
                let body = super::state::detailed(&body, &self.monitor.watched());
                reply(health_code(&report), json, body)
            }
            "/metrics" => {
                let report = self.report().await;
                let mut body = render(&report, Format::Prometheus, Style { color: false });
                body.push_str(&super::state::metrics(&self.monitor.watched()));
                reply(StatusCode::OK, "text/plain; version=0.0.4", body)
            }
            _ => reply(
                StatusCode::NOT_FOUND,
                json,
                serde_json::json!({
                    "error": "not found",
                    "paths": ["/health", "/health/ready", "/health/readiness", "/health/detailed", "/metrics"],
                })
                .to_string(),
            ),
        }
    }
}

fn health_code(report: &Report) -> StatusCode {
    match report.status() {
        Status::Critical | Status::Unknown => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    }
}

/// Ready when no configured endpoint (a dependency) is critical or unknown.
fn readiness(config: &HealthConfig, report: &Report) -> (StatusCode, serde_json::Value) {
    let endpoints: std::collections::HashSet<&str> = config
        .endpoints
        .iter()
        .map(|e| e.step.name.as_str())
        .collect();
    let mut checks = serde_json::Map::new();
    let mut ready = true;
    for result in &report.results {
        if !endpoints.contains(result.name.as_str()) {
            continue;
        }
        ready &= !matches!(result.status, Status::Critical | Status::Unknown);
        checks.insert(
            result.name.clone(),
            serde_json::json!({"status": result.status.as_str(), "message": result.message}),
        );
    }
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not ready" },
        "timestamp": report.timestamp.to_string(),
        "checks": checks,
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body)
}

fn reply(code: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(
        crate::redact::mask(&body).into_owned(),
    )));
    *response.status_mut() = code;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

/// How long a client gets to send a request's headers (from connecting, or after the
/// previous response on a kept-alive connection) before the connection is closed.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once, at most; fewer when the descriptor limit is low.
const MAX_CONNECTIONS: usize = 512;
/// Descriptors kept free for the checks themselves (probe sockets, /proc, files).
const FD_RESERVE: u64 = 32;
/// The pause after a failed accept (out of descriptors) grows to this, from a few ms.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The open connections, oldest first: whether each is inside a request, and how to
/// close it. At the cap, the oldest connection that is not inside a request (one that
/// never finished its headers, or an idle kept-alive one) is closed to make room, so
/// sockets left open cannot lock out a probe.
#[derive(Default)]
struct Connections {
    next: u64,
    open: std::collections::BTreeMap<u64, Slot>,
}

struct Slot {
    busy: Arc<std::sync::atomic::AtomicBool>,
    close: Arc<tokio::sync::Notify>,
}

type Table = Arc<std::sync::Mutex<Connections>>;

fn table(connections: &Table) -> std::sync::MutexGuard<'_, Connections> {
    connections
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Connections {
    /// Close idle connections until fewer than `cap` are open; false when every open
    /// connection is inside a request.
    fn make_room(&mut self, cap: usize) -> bool {
        while self.open.len() >= cap {
            let idle = self
                .open
                .iter()
                .find(|(_, slot)| !slot.busy.load(std::sync::atomic::Ordering::SeqCst))
                .map(|(id, _)| *id);
            let Some(id) = idle else { return false };
            if let Some(slot) = self.open.remove(&id) {
                slot.close.notify_one();
            }
        }
        true
    }
}

/// Removes a connection from the table however its task ends.
struct Registered {
    id: u64,
    connections: Table,
    ended: Arc<tokio::sync::Notify>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        table(&self.connections).open.remove(&self.id);
        self.ended.notify_one();
    }
}

/// Marks a connection as inside a request while it lives.
struct Busy(Arc<std::sync::atomic::AtomicBool>);

impl Busy {
    fn new(flag: &Arc<std::sync::atomic::AtomicBool>) -> Busy {
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        Busy(Arc::clone(flag))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The connection cap for the current descriptor limit.
fn connection_cap() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass; no other memory is touched.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1024
    };
    let usable = soft.saturating_sub(FD_RESERVE).max(4);
    usize::try_from(usable).map_or(MAX_CONNECTIONS, |u| u.min(MAX_CONNECTIONS))
}

/// Out of descriptors (or kernel memory): worth a pause, not a retry in a tight loop.
fn is_resource_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Serve on `listener` until `stop` resolves, then let open connections finish (at most
/// a few seconds) and return. Headers must arrive within [`HEADER_TIMEOUT`]; at most
/// [`MAX_CONNECTIONS`] (fewer under a low descriptor limit) are open at once; running
/// out of descriptors pauses accepting, closes an idle connection and lowers the cap.
pub async fn serve(
    server: Arc<Server>,
    listener: tokio::net::TcpListener,
    stop: impl Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let connections: Table = Arc::default();
    let ended = Arc::new(tokio::sync::Notify::new());
    let mut cap = connection_cap();
    let mut backoff = Duration::ZERO;
    tokio::pin!(stop);
    'serve: loop {
        // At the cap with every connection inside a request: wait for one to end.
        while !table(&connections).make_room(cap) {
            tokio::select! {
                () = ended.notified() => {}
                () = &mut stop => break 'serve,
            }
        }
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff = Duration::ZERO;
                    accepted
                }
                Err(e) => {
                    if is_resource_error(&e) {
                        // Make room for the next accept, and keep the cap below this.
                        let mut open = table(&connections);
                        cap = connection_cap().min(open.open.len()).max(1);
                        open.make_room(cap);
                    }
                    if backoff.is_zero() {
                        tracing::warn!("health server: cannot accept a connection: {e}; pausing");
                    }
                    backoff = (backoff * 2).clamp(Duration::from_millis(5), MAX_BACKOFF);
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = &mut stop => break 'serve,
                    }
                    continue;
                }
            },
            () = &mut stop => break 'serve,
        };
        let busy = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let close = Arc::new(tokio::sync::Notify::new());
        let registered = {
            let mut open = table(&connections);
            let id = open.next;
            open.next += 1;
            open.open.insert(
                id,
                Slot {
                    busy: Arc::clone(&busy),
                    close: Arc::clone(&close),
                },
            );
            Registered {
                id,
                connections: Arc::clone(&connections),
                ended: Arc::clone(&ended),
            }
        };
        let server = Arc::clone(&server);
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let server = Arc::clone(&server);
            let busy = Busy::new(&busy);
            async move {
                let response = server.respond(&request).await;
                tracing::debug!(%peer, path = request.uri().path(), status = response.status().as_u16(), "served");
                drop(busy);
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _registered = registered;
            tokio::select! {
                _ = connection => {}
                () = close.notified() => {}
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}

/// Bind `address`, naming it in the error.
pub async fn bind(address: SocketAddr) -> Result<tokio::net::TcpListener, super::Error> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| super::Error::Listen { address, source })
}

/// `health --serve`: bind `address`, call `started` with the address bound (a port of 0
/// made concrete), grade the endpoints of `monitor` (made for `config`: each counted
/// change goes to its hook) and serve until `stop` resolves, and return once open
/// connections are done.
pub async fn run(
    address: SocketAddr,
    config: HealthConfig,
    ctx: Context,
    monitor: Arc<Monitor>,
    stop: impl Future<Output = ()>,
    started: &dyn Fn(SocketAddr),
) -> Result<(), super::Error> {
    let listener = bind(address).await?;
    let bound = listener.local_addr().unwrap_or(address);
    started(bound);
    tracing::info!(%bound, "health server started");
    let grading = Arc::clone(&monitor).run(ctx.clone());
    tokio::select! {
        () = serve(Server::new(config, ctx, monitor), listener, stop) => {}
        () = grading => {}
    }
    tracing::info!(%bound, "health server stopped");
    Ok(())
}
