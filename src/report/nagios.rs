//! Nagios plugin output: one line, `OPSBOOK <TITLE> <STATUS> - <what is wrong> | perfdata`.
//! The exit code (0/1/2/3) already follows the plugin convention.

use crate::model::Report;
use crate::model::{Data, Status};

pub fn render(report: &Report) -> String {
    let status = report.status();
    let problems: Vec<String> = report
        .results
        .iter()
        .filter(|r| !matches!(r.status, Status::Ok | Status::Skipped))
        .map(|r| format!("{}: {}", r.name, r.message))
        .collect();
    let summary = if problems.is_empty() {
        format!(
            "{} ok",
            crate::plural::count(report.results.len(), "check", "checks")
        )
    } else {
        problems.join("; ")
    };
    let perfdata: Vec<String> = report
        .results
        .iter()
        .filter_map(|r| {
            let label = r.name.replace(['\'', '='], "_");
            match &r.data {
                Data::Memory { percent_used, .. }
                | Data::Swap { percent_used, .. }
                | Data::Disk { percent_used, .. }
                | Data::Cpu { percent_used, .. } => {
                    Some(format!("'{label}'={percent_used}%;;;0;100"))
                }
                Data::Http { latency_ms, .. }
                | Data::Tcp { latency_ms, .. }
                | Data::Dns { latency_ms, .. } => Some(format!("'{label}'={latency_ms}ms")),
                Data::Load { load1, .. } => Some(format!("'{label}'={load1}")),
                Data::TlsCert { days_left, .. } => Some(format!("'{label}'={days_left}")),
                Data::Command { value: Some(v), .. } => Some(format!("'{label}'={v}")),
                Data::LogErrors { matched, .. } | Data::LogMatch { matched, .. } => {
                    Some(format!("'{label}'={matched}"))
                }
                Data::LogLatency { p95_ms, .. } => Some(format!("'{label}'={p95_ms}ms")),
                Data::Directory { entries, .. } => Some(format!("'{label}'={entries}")),
                Data::Process { count, .. } => Some(format!("'{label}'={count}")),
                _ => None,
            }
        })
        .collect();
    let word = match status {
        Status::Ok | Status::Skipped => "OK",
        Status::Warning => "WARNING",
        Status::Critical => "CRITICAL",
        Status::Unknown => "UNKNOWN",
    };
    let title = report.title.to_uppercase();
    // A `|` in a message would start the perfdata early.
    let summary = summary.replace('|', "/").replace('\n', " ");
    if perfdata.is_empty() {
        format!("OPSBOOK {title} {word} - {summary}\n")
    } else {
        format!(
            "OPSBOOK {title} {word} - {summary} | {}\n",
            perfdata.join(" ")
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_line_with_problems_and_perfdata() {
        assert_eq!(
            super::render(&crate::model::sample()),
            "OPSBOOK HEALTH WARNING - memory: memory 80% used (> warn 75%) \
             | 'memory'=80%;;;0;100 'disk:/data'=10%;;;0;100\n"
        );
    }
}
