//! One idea, one file: `http`: one request, judged by status, body, JSON pointers, headers
//! and latency. Bounded whatever the server does: the whole exchange (connect, headers,
//! body) must finish within `timeout`, and at most `max_body` bytes of the body are ever
//! read.

use super::latency::{LatencyLevels, seconds};
use super::resolve::{ReqwestResolver, Server};
use super::{Env, Probe};
use crate::model::{BoxFuture, Data, Outcome, Status};
use crate::values::{Duration, Text};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

mod expect;
mod json;
mod len;

pub use expect::{Expect, HeaderExpect, StatusEntry, StatusExpect};
pub use json::{JsonExpect, JsonPointer};
pub use len::Len;

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    pub url: HttpUrl,
    #[serde(default)]
    pub method: Method,
    /// The values of `Authorization`, `Cookie` and headers named like a key or token are
    /// secrets (`config::text::headers`): they never appear in any output.
    #[serde(default, deserialize_with = "crate::values::text::headers")]
    pub headers: BTreeMap<String, Text>,
    pub body: Option<Text>,
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// Extra attempts after a failed one, with a doubling pause from 200 ms.
    #[serde(default, deserialize_with = "crate::values::whole")]
    #[schemars(with = "crate::values::number::WholeOrText")]
    pub retries: u32,
    /// Skip TLS verification (self-signed test hosts only).
    #[serde(default)]
    pub insecure: bool,
    /// A PEM file of extra CA certificates to trust.
    pub ca_file: Option<Text>,
    #[serde(
        default = "default_redirects",
        deserialize_with = "crate::values::whole"
    )]
    #[schemars(with = "crate::values::number::WholeOrText")]
    pub max_redirects: usize,
    /// Resolve the URL's host through this DNS server instead of the system's resolver.
    pub resolver: Option<Server>,
    /// At most this many bytes of the body are read (default 1 MiB).
    #[serde(
        default = "default_max_body",
        deserialize_with = "crate::values::whole"
    )]
    #[schemars(with = "crate::values::number::WholeOrText")]
    pub max_body: u64,
    #[serde(default, deserialize_with = "expect::admitting")]
    pub expect: Expect,
    #[serde(default)]
    pub latency: LatencyLevels,
    /// Grade a number in the JSON body: `{ json: /queue/depth, warn: 100, crit: 1000 }`.
    pub value: Option<JsonValue>,
}

fn default_timeout() -> Duration {
    Duration(std::time::Duration::from_secs(10))
}

fn default_redirects() -> usize {
    5
}

fn default_max_body() -> u64 {
    1024 * 1024
}

/// An absolute http(s) URL, checked when the file is read.
#[derive(Clone, Debug)]
pub struct HttpUrl(pub Text);

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Text::deserialize(deserializer)?;
        match url::Url::parse(text.as_str()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Ok(HttpUrl(text))
            }
            Ok(url) => Err(serde::de::Error::custom(format!(
                "{:?} is not an http(s) URL (scheme {:?})",
                text.shown(),
                url.scheme()
            ))),
            Err(e) => Err(serde::de::Error::custom(format!(
                "{:?} is not a valid URL: {e}",
                text.shown()
            ))),
        }
    }
}

impl Serialize for HttpUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// A number at a JSON pointer of the body, graded like every number.
#[derive(Clone, Debug, Serialize)]
pub struct JsonValue {
    pub json: JsonPointer,
    #[serde(flatten)]
    pub levels: super::threshold::Levels,
}

impl<'de> Deserialize<'de> for JsonValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            json: JsonPointer,
            warn: Option<super::threshold::Number>,
            crit: Option<super::threshold::Number>,
            #[serde(default)]
            below: bool,
        }
        let raw = Raw::deserialize(deserializer)?;
        let levels = super::threshold::levels_of(raw.warn, raw.crit, raw.below)
            .map_err(serde::de::Error::custom)?;
        Ok(JsonValue {
            json: raw.json,
            levels,
        })
    }
}

impl JsonValue {
    /// The number at the pointer; a missing pointer or a non-number says so.
    fn read(&self, body: &[u8]) -> Result<f64, super::Error> {
        let pointer = &self.json.0;
        let document: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| super::Error::NotJson(e.to_string()))?;
        let found = document
            .pointer(pointer)
            .ok_or_else(|| super::Error::NoPointer(pointer.to_string()))?;
        found
            .as_f64()
            .or_else(|| found.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|n: &f64| n.is_finite())
            .ok_or_else(|| super::Error::NotNumber {
                pointer: pointer.to_string(),
                found: found.to_string(),
            })
    }
}

#[derive(
    Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    #[default]
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl Method {
    fn as_reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Head => reqwest::Method::HEAD,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Options => reqwest::Method::OPTIONS,
        }
    }
}

/// A regular expression compiled when the file is read.
#[derive(Clone, Debug)]
pub struct Pattern(pub regex::Regex);

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `{{ var }}` and `${VAR}` work here as in any string.
        let text = Text::deserialize(deserializer)?;
        regex::Regex::new(text.as_str()).map(Pattern).map_err(|e| {
            serde::de::Error::custom(super::regex_error(&format!(
                "invalid regex {:?}: {e}",
                text.shown()
            )))
        })
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.as_str())
    }
}

pub struct HttpCheck {
    spec: HttpSpec,
}

impl HttpCheck {
    pub fn new(spec: HttpSpec) -> Self {
        HttpCheck { spec }
    }
}

impl Probe for HttpCheck {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn run<'a>(&'a self, _ctx: &'a Env) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let client = match client(&self.spec) {
                Ok(client) => client,
                Err(e) => return Outcome::unknown(e.to_string()),
            };
            let mut pause = std::time::Duration::from_millis(200);
            let mut attempt = 0;
            loop {
                let outcome = self.attempt(&client).await;
                let passed = matches!(outcome.status, Status::Ok | Status::Warning);
                if passed || attempt >= self.spec.retries {
                    return with_attempts(outcome, attempt);
                }
                attempt += 1;
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        })
    }
}

fn with_attempts(mut outcome: Outcome, retries: u32) -> Outcome {
    if retries > 0 {
        outcome.message = format!("{} (after {} attempts)", outcome.message, retries + 1);
    }
    outcome
}

/// What came back, as far as it was read.
struct Response {
    code: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
    truncated: bool,
}

impl HttpCheck {
    async fn attempt(&self, client: &reqwest::Client) -> Outcome {
        let spec = &self.spec;
        let started = Instant::now();
        let exchanged = tokio::time::timeout(spec.timeout.0, self.exchange(client)).await;
        let took = started.elapsed();
        let data = |code: Option<u16>, bytes: usize| Data::Http {
            url: spec.url.0.shown().to_string(),
            status_code: code,
            latency_ms: crate::model::round(took.as_secs_f64() * 1000.0, 1),
            bytes: bytes as u64,
        };
        let response = match exchanged {
            Err(_) => {
                let message = format!(
                    "no complete response within {}",
                    humantime::format_duration(spec.timeout.0)
                );
                return Outcome::new(Status::Critical, message, data(None, 0));
            }
            Ok(Err(e)) => return Outcome::new(Status::Critical, e.to_string(), data(None, 0)),
            Ok(Ok(response)) => response,
        };
        let data = data(Some(response.code), response.body.len());
        let notes = match spec.expect.judge(&expect::Seen::new(&response)) {
            Ok(notes) => notes,
            Err(failure) => return Outcome::new(Status::Critical, failure.0, data),
        };
        let (mut status, crossed) = spec.latency.grade(took);
        let mut message = match crossed {
            Some(crossed) => format!("{}: {crossed}", response.code),
            None => format!("{} in {}", response.code, seconds(took)),
        };
        for note in notes {
            status = status.worst(Status::Warning);
            message = format!("{message}; {note}");
        }
        let Some(value) = &spec.value else {
            return Outcome::new(status, message, data);
        };
        match value.read(&response.body) {
            // A value that is missing or not a number crossed no level: unknown.
            Err(why) => Outcome::new(status.worst(Status::Unknown), why.to_string(), data),
            Ok(number) => {
                let (graded, crossed) = super::threshold::grade(number, value.levels, "");
                message = format!(
                    "{message}; {} = {}{}",
                    value.json.0,
                    super::threshold::trim(number),
                    super::threshold::note(crossed)
                );
                Outcome::new(status.worst(graded), message, data)
            }
        }
    }

    async fn exchange(&self, client: &reqwest::Client) -> Result<Response, super::Error> {
        let spec = &self.spec;
        let mut request = client.request(spec.method.as_reqwest(), spec.url.0.as_str());
        for (name, value) in &spec.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(body) = &spec.body {
            request = request.body(body.as_str().to_string());
        }
        let mut response = request.send().await.map_err(describe_error)?;
        let code = response.status().as_u16();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(describe_error)? {
            let room = usize::try_from(spec.max_body)
                .unwrap_or(usize::MAX)
                .saturating_sub(body.len());
            if chunk.len() >= room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            code,
            headers,
            body,
            truncated,
        })
    }
}

/// reqwest's outermost error says little ("error sending request"); the root cause says
/// what happened (connection refused, certificate expired, …).
fn describe_error(error: reqwest::Error) -> super::Error {
    if error.is_redirect() {
        return super::Error::refused("too many redirects")(error);
    }
    let mut root: &dyn std::error::Error = &error;
    while let Some(source) = root.source() {
        root = source;
    }
    let what = if error.is_connect() {
        "cannot connect"
    } else if error.is_body() || error.is_decode() {
        "body could not be read"
    } else {
        "request failed"
    };
    super::Error::refused(what)(root)
}

type ClientKey = (bool, Option<String>, usize, Option<Server>);

/// Clients are shared between checks with the same TLS and redirect settings, so a
/// thousand endpoints do not load the system's CA store a thousand times.
fn client(spec: &HttpSpec) -> Result<reqwest::Client, super::Error> {
    static CLIENTS: OnceLock<Mutex<HashMap<ClientKey, reqwest::Client>>> = OnceLock::new();
    let key = (
        spec.insecure,
        spec.ca_file.as_ref().map(|f| f.as_str().to_string()),
        spec.max_redirects,
        spec.resolver,
    );
    let clients = CLIENTS.get_or_init(Default::default);
    let mut clients = clients
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(client) = clients.get(&key) {
        return Ok(client.clone());
    }
    crate::tls::install_crypto();
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("opsbook/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::limited(spec.max_redirects))
        .tls_danger_accept_invalid_certs(spec.insecure);
    if let Some(server) = spec.resolver {
        builder = builder.dns_resolver(Arc::new(ReqwestResolver {
            server,
            timeout: spec.timeout.0,
        }));
    }
    if let Some(ca_file) = &spec.ca_file {
        let pem = std::fs::read(ca_file.as_str()).map_err(super::Error::io(format!(
            "cannot read ca_file {}",
            ca_file.shown()
        )))?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(super::Error::refused(format!(
                "ca_file {} holds no usable PEM certificate",
                ca_file.shown()
            )))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    let client = builder
        .build()
        .map_err(super::Error::refused("cannot set up the HTTP client"))?;
    clients.insert(key, client.clone());
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(code: u16, body: &str) -> Response {
        Response {
            code,
            headers: Default::default(),
            body: body.as_bytes().to_vec(),
            truncated: false,
        }
    }

    /// The first failure, if any.
    fn judge(expect: &Expect, response: &Response) -> Option<String> {
        expect
            .judge(&expect::Seen::new(response))
            .err()
            .map(|f| f.0)
    }

    fn expect(yaml: &str) -> Expect {
        crate::config::parse_yaml(std::path::Path::new("t.yaml"), yaml).unwrap()
    }

    #[test]
    fn status_expectations() {
        assert_eq!(judge(&Expect::default(), &response(204, "")), None);
        assert_eq!(
            judge(&Expect::default(), &response(500, "")).as_deref(),
            Some("status 500, expected 2xx")
        );
        assert_eq!(
            judge(&expect("status: 200"), &response(404, "")).as_deref(),
            Some("status 404, expected 200")
        );
        assert_eq!(
            judge(&expect("status: [200, 404]"), &response(404, "")),
            None
        );
        assert_eq!(judge(&expect("status: 3xx"), &response(301, "")), None);
    }

    #[test]
    fn json_pointer_expectations_say_what_they_saw() {
        let e = expect("json: { /status: healthy }");
        assert_eq!(judge(&e, &response(200, r#"{"status":"healthy"}"#)), None);
        assert_eq!(
            judge(&e, &response(200, r#"{"status":"degraded"}"#)).as_deref(),
            Some(r#"/status = "degraded", expected "healthy""#)
        );
        assert_eq!(
            judge(&e, &response(200, r#"{"state":"healthy"}"#)).as_deref(),
            Some("/status not found in the JSON body")
        );
        assert!(
            judge(&e, &response(200, "<html>"))
                .unwrap()
                .starts_with("body is not JSON")
        );
        let n = expect("json: { /queue/depth: 3 }");
        assert_eq!(
            judge(&n, &response(200, r#"{"queue":{"depth":3.0}}"#)),
            None
        );
    }

    #[test]
    fn body_expectations() {
        let e = expect("body_contains: ok\nbody_regex: 'v\\d+'");
        assert_eq!(judge(&e, &response(200, "ok v12")), None);
        assert_eq!(
            judge(&e, &response(200, "fine v1")).as_deref(),
            Some("body does not contain \"ok\"")
        );
    }

    #[test]
    fn bad_specs_are_rejected_while_parsing() {
        let parse = |yaml: &str| {
            crate::config::parse_yaml::<HttpSpec>(std::path::Path::new("t.yaml"), yaml)
                .unwrap_err()
                .message
        };
        assert!(parse("url: 'not a url'").contains("not a valid URL"));
        assert!(parse("url: 'ftp://x/'").contains("not an http(s) URL"));
        assert!(parse("url: 'http://x/'\nexpect: { status: 700 }").contains("not an HTTP status"));
        assert!(
            parse("url: 'http://x/'\nexpect: { json: { status: 1 } }").contains("JSON pointer")
        );
        assert!(parse("url: 'http://x/'\ntimeout: -1s").contains("not a duration"));
        assert!(parse("url: 'http://x/'\nlatency: { warn: 2s, crit: 1s }").contains("above crit"));
    }
}
