//! The `notify:` section: channels by name, routes, `repeat`, and the delivery bound.

use super::{Channel, Severity};
use crate::values::Duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default, try_from = "Raw")]
pub struct NotifyConfig {
    /// Channels by name, each one of `slack`, `webhook`, `email`, `pagerduty`.
    pub channels: BTreeMap<String, Channel>,
    /// Which channels hear what; none means every channel hears everything.
    pub routes: Vec<Route>,
    /// Send a still-open problem again after this long (none: never).
    pub repeat: Option<Duration>,
    pub delivery: Delivery,
}

/// The section as written, before the routes' channel names are checked.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Raw {
    #[serde(deserialize_with = "crate::values::named_sets")]
    channels: BTreeMap<String, Channel>,
    routes: Vec<Route>,
    repeat: Option<Duration>,
    delivery: Delivery,
}

impl TryFrom<Raw> for NotifyConfig {
    type Error = String;

    fn try_from(raw: Raw) -> Result<Self, String> {
        let known: Vec<&str> = raw.channels.keys().map(String::as_str).collect();
        for (i, route) in raw.routes.iter().enumerate() {
            // Without any channel (or read apart from them, as `config validate` reads each
            // part of a file), a route's names are checked by `NotifyConfig::check`.
            if raw.channels.is_empty() {
                continue;
            }
            for name in &route.channels {
                if !raw.channels.contains_key(name) {
                    return Err(format!(
                        "notify.routes[{i}].channels: no channel {name:?} under notify.channels \
                         (known: {}){}",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        },
                        crate::error::hint(name, &known)
                    ));
                }
            }
        }
        let d = &raw.delivery;
        if !(1..=10).contains(&d.attempts) {
            return Err("notify.delivery.attempts must be 1 to 10".to_string());
        }
        if d.timeout.0.is_zero() || d.timeout.0 > std::time::Duration::from_secs(300) {
            return Err("notify.delivery.timeout must be more than 0s and at most 5m".to_string());
        }
        if d.backoff.0 > std::time::Duration::from_secs(600) {
            return Err("notify.delivery.backoff must be at most 10m".to_string());
        }
        for (name, channel) in &raw.channels {
            channel
                .check()
                .map_err(|e| format!("notify.channels.{name}: {e}"))?;
        }
        Ok(NotifyConfig {
            channels: raw.channels,
            routes: raw.routes,
            repeat: raw.repeat,
            delivery: raw.delivery,
        })
    }
}

/// What happened, for routes: the first part of a scope (`maintain:daily` is `maintain`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Maintain,
    Run,
    Health,
    Incident,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Maintain => "maintain",
            EventKind::Run => "run",
            EventKind::Health => "health",
            EventKind::Incident => "incident",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(try_from = "RawRoute")]
pub struct Route {
    /// `maintain`, `run`, `health`, `incident`; none means all.
    pub events: Vec<EventKind>,
    /// The least severity this route hears (default `warning`: everything).
    pub min_severity: Severity,
    pub channels: Vec<String>,
}

/// A route as written, before its channels are checked (here, so the error points at the
/// route itself).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default)]
    events: Vec<EventKind>,
    #[serde(default = "least")]
    min_severity: Severity,
    channels: Vec<String>,
}

impl TryFrom<RawRoute> for Route {
    type Error = String;

    fn try_from(raw: RawRoute) -> Result<Self, String> {
        if raw.channels.is_empty() {
            return Err("a route's `channels` is empty: name at least one channel".to_string());
        }
        Ok(Route {
            events: raw.events,
            min_severity: raw.min_severity,
            channels: raw.channels,
        })
    }
}

fn least() -> Severity {
    Severity::Warning
}

/// The bound on one message's delivery: `attempts` tries, waiting `backoff` after the
/// first failure and twice as long after each next one, each try at most `timeout`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Delivery {
    pub attempts: u32,
    pub backoff: Duration,
    pub timeout: Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            attempts: 3,
            backoff: Duration(std::time::Duration::from_secs(2)),
            timeout: Duration(std::time::Duration::from_secs(10)),
        }
    }
}

impl NotifyConfig {
    /// What the section's parts say only together: routes that name channels while
    /// `notify.channels` names none.
    pub fn check(&self) -> Result<(), String> {
        match self.routes.first() {
            Some(route) if self.channels.is_empty() => Err(format!(
                "notify.routes[0].channels names {:?}, but notify.channels names no channel",
                route.channels.first().map_or("", String::as_str)
            )),
            _ => Ok(()),
        }
    }

    /// Whether anything is configured to be told.
    pub fn is_configured(&self) -> bool {
        !self.channels.is_empty()
    }

    /// The channels that hear a `severity` problem of scope kind `kind`.
    pub fn channels_for(&self, kind: &str, severity: Severity) -> Vec<&str> {
        if self.routes.is_empty() {
            return self.channels.keys().map(String::as_str).collect();
        }
        let mut out: Vec<&str> = Vec::new();
        for route in &self.routes {
            let event = route.events.is_empty() || route.events.iter().any(|e| e.as_str() == kind);
            if event && severity >= route.min_severity {
                for name in &route.channels {
                    if !out.contains(&name.as_str()) {
                        out.push(name);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<NotifyConfig, String> {
        crate::values::parse_yaml::<NotifyConfig>(std::path::Path::new("ops.yaml"), yaml)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn routes_pick_channels_by_event_and_severity() {
        let config = parse(
            "channels:\n  chat: { slack: { url: http://127.0.0.1:1/x } }\n  pager: { pagerduty: { routing_key: k } }\n\
             routes:\n  - { channels: [chat] }\n  - { events: [health, maintain], min_severity: critical, channels: [pager] }\n",
        )
        .expect("valid");
        assert_eq!(
            config.channels_for("maintain", Severity::Warning),
            vec!["chat"]
        );
        assert_eq!(
            config.channels_for("maintain", Severity::Critical),
            vec!["chat", "pager"]
        );
        assert_eq!(config.channels_for("run", Severity::Critical), vec!["chat"]);
    }

    #[test]
    fn a_route_to_an_unknown_channel_is_named_with_a_hint() {
        let e = parse(
            "channels:\n  chat: { slack: { url: http://127.0.0.1:1/x } }\nroutes:\n  - { channels: [chta] }\n",
        )
        .expect_err("unknown channel");
        assert!(e.contains("no channel \"chta\""), "{e}");
        assert!(e.contains("did you mean \"chat\""), "{e}");
    }
}
