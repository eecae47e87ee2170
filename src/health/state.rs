//! How `--serve` shows the endpoints' counted state: a `state` object on each endpoint's
//! check in `/health/detailed`, and the `opsbook_endpoint_*` families in `/metrics`.

use super::monitor::Watched;
use crate::report::prometheus_label;
use jiff::Timestamp;
use std::fmt::Write;

/// One endpoint's `state` object.
fn state_json(watched: &Watched) -> serde_json::Value {
    let tally = &watched.tally;
    let grading = &watched.grading;
    serde_json::json!({
        "status": tally.state.as_str(),
        "consecutive_failures": tally.consecutive_failures,
        "consecutive_successes": tally.consecutive_successes,
        "last_change": tally.last_change.map(|t| t.to_string()),
        "last_reading": tally.last_reading.as_ref().map(|(at, reading)| serde_json::json!({
            "time": at.to_string(),
            "status": reading.status.as_str(),
            "message": reading.message,
        })),
        "readings": tally.readings,
        "interval": humantime::format_duration(grading.interval).to_string(),
        "failure_threshold": grading.failure_threshold,
        "success_threshold": grading.success_threshold,
    })
}

/// The JSON report `json` with each endpoint's `state` added to its check (the report
/// renders the readings; this adds what they counted up to).
pub fn detailed(json: &str, watched: &[Watched]) -> String {
    let Ok(mut document) = serde_json::from_str::<serde_json::Value>(json) else {
        return json.to_string();
    };
    if let Some(checks) = document
        .get_mut("checks")
        .and_then(serde_json::Value::as_object_mut)
    {
        for endpoint in watched {
            if let Some(check) = checks
                .get_mut(&endpoint.name)
                .and_then(serde_json::Value::as_object_mut)
            {
                check.insert("state".to_string(), state_json(endpoint));
            }
        }
    }
    serde_json::to_string_pretty(&document).unwrap_or_else(|_| json.to_string())
}

/// One gauge's value for an endpoint, if it has one yet.
type Reading = dyn Fn(&Watched) -> Option<f64>;

/// Unix time in seconds, to the millisecond.
fn unix(t: Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

/// The endpoint gauges in the Prometheus text format, for `/metrics` after the report's.
pub fn metrics(watched: &[Watched]) -> String {
    let mut out = String::new();
    let families: [(&str, &str, &Reading); 5] = [
        (
            "opsbook_endpoint_up",
            "Whether the endpoint counts as up (1) or down (0) after its failure and success thresholds.",
            &|w| {
                Some(if w.tally.state == super::State::Up {
                    1.0
                } else {
                    0.0
                })
            },
        ),
        (
            "opsbook_endpoint_consecutive_failures",
            "Failed readings in a row (critical or unknown).",
            &|w| Some(f64::from(w.tally.consecutive_failures)),
        ),
        (
            "opsbook_endpoint_consecutive_successes",
            "Successful readings in a row (ok or warning).",
            &|w| Some(f64::from(w.tally.consecutive_successes)),
        ),
        (
            "opsbook_endpoint_last_change_timestamp_seconds",
            "When the endpoint's counted state last changed (unix time); absent until it first changes.",
            &|w| w.tally.last_change.map(unix),
        ),
        (
            "opsbook_endpoint_last_reading_timestamp_seconds",
            "When the endpoint was last probed (unix time).",
            &|w| w.tally.last_reading.as_ref().map(|(at, _)| unix(*at)),
        ),
    ];
    for (name, help, value) in families {
        let samples: Vec<(String, f64)> = watched
            .iter()
            .filter_map(|w| value(w).map(|v| (prometheus_label(&w.name), v)))
            .collect();
        if samples.is_empty() {
            continue;
        }
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (label, v) in samples {
            let _ = writeln!(out, "{name}{{name=\"{label}\"}} {v}");
        }
    }
    out
}
