//! opsbook: operations runbooks as one binary. The CLI (`cli`) parses and prints; the
//! modules below do the work and never print on their own.
#![deny(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod backup;
pub mod cli;
pub mod clock;
pub mod codec;
pub mod config;
pub mod digest;
pub mod engine;
pub mod error;
pub mod fsutil;
pub mod health;
pub mod incident;
pub mod lock;
pub mod logging;
pub mod logs;
pub mod maintain;
pub mod model;
pub mod notify;
pub mod plural;
pub mod probe;
pub mod process;
pub mod redact;
pub mod report;
pub mod runbook;
pub mod tls;
pub mod values;

pub use error::{ConfigError, Error};
