//! `health --serve ADDR`: the health report over HTTP for load balancers, Kubernetes
//! probes and Prometheus. A result is reused for `health.serve_cache`; scrapes that
//! arrive while the checks run wait for that one run instead of starting their own.
//!
//! - `/health`: `{"status","timestamp"}`, 200, or 503 when unhealthy.
//! - `/health/ready` (and seed 004's `/health/readiness`): the dependencies (the
//!   configured endpoints) only: 200 when none is critical or unknown, else 503.
//! - `/health/detailed`: the full JSON report, 200 or 503 like `/health`.
//! - `/metrics`: the Prometheus text format, always 200.

use crate::check::{Context, Status};
use crate::config::HealthConfig;
use crate::report::{Format, Report, Style, render};
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
    cache: Mutex<Option<(Instant, Arc<Report>)>>,
}

impl Server {
    pub fn new(config: HealthConfig, ctx: Context) -> Arc<Self> {
        Arc::new(Server {
            config,
            ctx,
            cache: Mutex::new(None),
        })
    }

    /// The cached report, or a fresh one once it is older than `serve_cache`.
    async fn report(&self) -> Arc<Report> {
        let mut cached = self.cache.lock().await;
        if let Some((at, report)) = cached.as_ref()
            && at.elapsed() < self.config.serve_cache.0
        {
            return Arc::clone(report);
        }
        let report = Arc::new(super::check(&self.config, &self.ctx).await);
        *cached = Some((Instant::now(), Arc::clone(&report)));
        report
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
                reply(health_code(&report), json, body)
            }
            "/metrics" => {
                let report = self.report().await;
                let body = render(&report, Format::Prometheus, Style { color: false });
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
    let endpoints: std::collections::HashSet<&str> =
        config.endpoints.iter().map(|e| e.name.as_str()).collect();
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

/// Serve on `listener` until `stop` resolves, then let open connections finish (at most
/// a few seconds) and return.
pub async fn serve(
    server: Arc<Server>,
    listener: tokio::net::TcpListener,
    stop: impl Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let server = Arc::clone(&server);
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let server = Arc::clone(&server);
                    async move {
                        let response = server.respond(&request).await;
                        tracing::debug!(%peer, path = request.uri().path(), status = response.status().as_u16(), "served");
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            () = &mut stop => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}

/// Bind `address`, naming it in the error.
pub async fn bind(address: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    use anyhow::Context as _;
    tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))
}
