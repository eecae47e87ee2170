//! Cron-monitor pings (the healthchecks.io convention): `URL/start` before a schedule
//! runs, `URL` when it succeeded, `URL/fail` when it failed, so a monitor elsewhere
//! notices a schedule that failed or stopped running at all. A ping that fails is the
//! caller's warning, never the schedule's failure.

use crate::values::{Duration, Text};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ping {
    /// The check's URL; it holds the check's secret, so it prints as `***`.
    #[serde(deserialize_with = "crate::values::text::secret")]
    pub url: Text,
    #[serde(default)]
    pub method: Method,
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    #[default]
    Get,
    Post,
}

fn default_timeout() -> Duration {
    Duration(std::time::Duration::from_secs(10))
}

/// Which ping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Start,
    Success,
    Fail,
}

impl Phase {
    fn suffix(self) -> &'static str {
        match self {
            Phase::Start => "/start",
            Phase::Success => "",
            Phase::Fail => "/fail",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Start => "start",
            Phase::Success => "success",
            Phase::Fail => "fail",
        }
    }
}

/// Call the monitor once: `Err` is the warning to show (without the URL).
pub async fn ping(ping: &Ping, phase: Phase) -> Result<(), String> {
    crate::tls::install_crypto();
    let base = ping.url.as_str().trim_end_matches('/');
    let url = format!("{base}{}", phase.suffix());
    let failed = |why: String| format!("the cron-monitor {} ping failed: {why}", phase.as_str());
    let client = reqwest::Client::builder()
        .timeout(ping.timeout.0)
        .build()
        .map_err(|e| failed(e.without_url().to_string()))?;
    let request = match ping.method {
        Method::Get => client.get(&url),
        Method::Post => client.post(&url),
    };
    match request.send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(failed(format!(
            "the monitor answered {}",
            response.status()
        ))),
        Err(e) if e.is_timeout() => Err(failed(format!(
            "no answer within {}",
            humantime::format_duration(ping.timeout.0)
        ))),
        Err(e) => Err(failed(super::channel::causes(e))),
    }
}
