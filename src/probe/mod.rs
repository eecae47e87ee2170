//! The probes: pure readings of the machine and the services around it (resources,
//! endpoints, files, processes, error rates). A probe only looks; it never changes
//! anything, and reaches outside itself only through `Env` (the machine and the clock),
//! so tests give it fixed readings and a fixed time.

mod application;
pub mod command;
pub mod cpu;
pub mod disk;
pub mod dns;
pub mod env;
mod error;
pub mod file;
pub mod http;
pub mod latency;
mod load;
pub mod log_errors;
pub mod log_latency;
pub mod log_match;
mod memory;
pub mod port;
pub mod process;
pub mod resolve;
pub mod resources;
pub mod service;
mod swap;
pub mod tcp;
pub mod threshold;
pub mod tls_cert;

pub use application::ApplicationCheck;
pub use cpu::CpuCheck;
pub use disk::DiskCheck;
pub use dns::DnsCheck;
pub use error::Error;
pub use http::HttpCheck;
pub use load::LoadCheck;
pub use memory::MemoryCheck;
pub use swap::SwapCheck;
pub use tcp::TcpCheck;
pub use tls_cert::TlsCertCheck;

use crate::clock::{Clock, SystemClock};
use crate::model::{BoxFuture, Outcome};
use std::sync::Arc;

/// What a probe may read outside itself.
#[derive(Clone)]
pub struct Env {
    pub resources: Arc<dyn resources::Resources>,
    pub clock: Arc<dyn Clock>,
    /// The configured log sets, for steps that read a set by name (`log_match`,
    /// `log_latency`).
    pub log_sets: Arc<std::collections::BTreeMap<String, crate::logs::set::LogSet>>,
}

impl Env {
    /// The real machine and the real clock.
    pub fn system() -> Self {
        Env {
            resources: Arc::new(resources::SystemResources),
            clock: Arc::new(SystemClock),
            log_sets: Arc::default(),
        }
    }
}

/// A reading. `run` never panics and never outlives its own timeout: whatever goes wrong
/// becomes an `Outcome` with a message.
pub trait Probe: Send + Sync {
    /// The kind's name as written in runbooks: `memory`, `disk`, `http`, …
    fn kind(&self) -> &'static str;
    fn run<'a>(&'a self, env: &'a Env) -> BoxFuture<'a, Outcome>;
}

/// A regex error on one line, `unclosed group at character 2`, instead of the regex
/// crate's drawing of the pattern with a caret under it (a located error is one line: the
/// drawing printed as literal `\n`s). Any text around the regex crate's message is kept.
pub fn regex_error(text: &str) -> String {
    let Some((before, drawing)) = text.split_once("regex parse error:") else {
        return text.replace('\n', " ");
    };
    let lines: Vec<&str> = drawing.lines().filter(|l| !l.trim().is_empty()).collect();
    let reason = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or("not a regex");
    let caret = |l: &&&str| {
        let t = l.trim();
        t.contains('^') && t.chars().all(|c| c == '^' || c == '-')
    };
    let at = lines
        .iter()
        .skip(1)
        .find(caret)
        .and_then(|l| l.find('^'))
        .map(|i| format!(" at character {}", i.saturating_sub(4) + 1))
        .unwrap_or_default();
    format!("{before}{reason}{at}")
}

#[cfg(test)]
mod tests {
    #[test]
    #[allow(clippy::invalid_regex)] // the error is what is tested
    fn regex_errors_read_on_one_line() {
        let e = regex::Regex::new("a(b").unwrap_err();
        let text = format!("invalid regex {:?}: {e}", "a(b");
        assert_eq!(
            super::regex_error(&text),
            "invalid regex \"a(b\": unclosed group at character 2"
        );
        assert_eq!(super::regex_error("plain\nerror"), "plain error");
    }
}
