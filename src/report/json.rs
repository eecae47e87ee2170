//! JSON: seed 000's health shape, `{"status", "timestamp", "checks": {name: {...}}}`,
//! each check carrying its status word, message, duration and its kind's data fields.

use crate::model::Report;
use serde_json::{Map, Value, json};

pub fn render(report: &Report) -> String {
    let mut checks = Map::new();
    for result in &report.results {
        let mut entry = Map::new();
        entry.insert("status".into(), json!(result.status.health_word()));
        entry.insert("severity".into(), json!(result.status.as_str()));
        entry.insert("message".into(), json!(result.message));
        entry.insert("kind".into(), json!(result.kind));
        entry.insert("duration_ms".into(), json!(ms(result.duration)));
        if let Ok(Value::Object(data)) = serde_json::to_value(&result.data) {
            entry.extend(data);
        }
        checks.insert(result.name.clone(), Value::Object(entry));
    }
    let document = json!({
        "status": report.status().health_word(),
        "severity": report.status().as_str(),
        "timestamp": report.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "duration_ms": ms(report.duration),
        "checks": checks,
    });
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

/// Milliseconds to one decimal: enough to read, no noise.
fn ms(duration: std::time::Duration) -> f64 {
    (duration.as_secs_f64() * 10_000.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_000_shape() {
        let value: Value = serde_json::from_str(&render(&crate::model::sample())).unwrap();
        assert_eq!(value["status"], "degraded");
        assert_eq!(value["severity"], "warning");
        assert_eq!(value["timestamp"], "2024-01-01T12:00:00Z");
        let memory = &value["checks"]["memory"];
        assert_eq!(memory["status"], "degraded");
        assert_eq!(memory["percent_used"], 80.0);
        assert_eq!(memory["total_gb"], 16.0);
        assert_eq!(memory["available_gb"], 3.2);
        assert_eq!(memory["duration_ms"], 12.0);
        assert_eq!(value["checks"]["disk:/data"]["free_gb"], 90.0);
    }
}
