//! Prometheus text exposition (node_exporter's textfile collector): one status and one
//! duration gauge per check, the report's status, and the resource readings as gauges.

use crate::model::Data;
use crate::model::Report;
use std::fmt::Write;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let mut family = |name: &str, help: &str, samples: Vec<(String, f64)>| {
        if samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let check_labels = |name: &str, kind: &str| {
        format!("{{check=\"{}\",kind=\"{}\"}}", escape(name), escape(kind))
    };
    family(
        "opsbook_status",
        "Worst status of the report: 0 ok, 1 warning, 2 critical, 3 unknown.",
        vec![(String::new(), f64::from(report.status().exit_code()))],
    );
    family(
        "opsbook_check_status",
        "Status of each check: 0 ok, 1 warning, 2 critical, 3 unknown.",
        report
            .results
            .iter()
            .map(|r| {
                (
                    check_labels(&r.name, &r.kind),
                    f64::from(r.status.exit_code()),
                )
            })
            .collect(),
    );
    family(
        "opsbook_check_duration_seconds",
        "How long each check took.",
        report
            .results
            .iter()
            .map(|r| (check_labels(&r.name, &r.kind), r.duration.as_secs_f64()))
            .collect(),
    );
    let mut used = Vec::new();
    let mut latency = Vec::new();
    let mut http_codes = Vec::new();
    let mut load = Vec::new();
    let mut cert_expiry = Vec::new();
    let mut values = Vec::new();
    for r in &report.results {
        let labels = check_labels(&r.name, &r.kind);
        match &r.data {
            Data::Memory { percent_used, .. }
            | Data::Swap { percent_used, .. }
            | Data::Disk { percent_used, .. }
            | Data::Cpu { percent_used, .. } => used.push((labels, *percent_used)),
            Data::Http {
                latency_ms,
                status_code,
                ..
            } => {
                latency.push((labels.clone(), latency_ms / 1000.0));
                if let Some(code) = status_code {
                    http_codes.push((labels, f64::from(*code)));
                }
            }
            Data::Tcp { latency_ms, .. } | Data::Dns { latency_ms, .. } => {
                latency.push((labels, latency_ms / 1000.0))
            }
            Data::TlsCert { not_after_unix, .. } => {
                cert_expiry.push((labels, *not_after_unix as f64))
            }
            Data::Load {
                load1,
                load5,
                load15,
                ..
            } => {
                for (window, value) in [("1m", load1), ("5m", load5), ("15m", load15)] {
                    load.push((format!("{{window=\"{window}\"}}"), *value));
                }
            }
            Data::Command { value: Some(v), .. } => values.push((labels, *v)),
            Data::LogErrors { matched, .. } | Data::LogMatch { matched, .. } => {
                values.push((labels, *matched as f64))
            }
            Data::LogLatency { p95_ms, .. } => latency.push((labels, p95_ms / 1000.0)),
            Data::Directory { entries, .. } => values.push((labels, *entries as f64)),
            Data::Process { count, .. } => values.push((labels, f64::from(*count))),
            _ => {}
        }
    }
    family("opsbook_used_percent", "Resource in use, percent.", used);
    family(
        "opsbook_probe_latency_seconds",
        "Probe round-trip time.",
        latency,
    );
    family(
        "opsbook_http_status_code",
        "HTTP status code of the last probe.",
        http_codes,
    );
    family("opsbook_load_average", "System load average.", load);
    family(
        "opsbook_check_value",
        "The number a check graded (a command's value, error lines, files, processes).",
        values,
    );
    family(
        "opsbook_tls_cert_expiry_timestamp_seconds",
        "When the served TLS certificate expires (unix time).",
        cert_expiry,
    );
    out
}

/// Label values escape backslash, double quote and newline.
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_have_help_type_and_samples() {
        let text = render(&crate::model::sample());
        assert!(
            text.contains("# TYPE opsbook_status gauge\nopsbook_status 1\n"),
            "{text}"
        );
        assert!(text.contains("opsbook_check_status{check=\"memory\",kind=\"memory\"} 1\n"));
        assert!(text.contains("opsbook_check_status{check=\"disk:/data\",kind=\"disk\"} 0\n"));
        assert!(text.contains("opsbook_used_percent{check=\"memory\",kind=\"memory\"} 80\n"));
        assert!(
            text.contains(
                "opsbook_check_duration_seconds{check=\"memory\",kind=\"memory\"} 0.012\n"
            )
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
