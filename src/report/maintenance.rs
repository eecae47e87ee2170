//! Scheduled maintenance as text: the Prometheus textfile a run leaves for node_exporter's
//! textfile collector, and the one line a run prints when nobody watches. Plain data in (a
//! schedule's name, the run's report, its times); secrets are masked first, as in every
//! renderer here.

use super::prometheus::escape as label;
use crate::model::{Report, Status};
use std::fmt::Write;

/// The textfile: last run time, duration and status of the schedule, and the status of
/// each step (0 ok, 1 warning, 2 critical, 3 unknown, -1 skipped).
pub fn textfile(schedule: &str, report: &Report, ended: jiff::Timestamp, took: f64) -> String {
    let report = report.masked();
    let s = label(schedule);
    let code = |status: Status| match status {
        Status::Skipped => -1,
        other => i32::from(other.exit_code()),
    };
    let mut out = String::new();
    family(
        &mut out,
        "opsbook_maintain_last_run_timestamp_seconds",
        "When the schedule last finished.",
    );
    let _ = writeln!(
        out,
        "opsbook_maintain_last_run_timestamp_seconds{{schedule=\"{s}\"}} {}",
        ended.as_second()
    );
    family(
        &mut out,
        "opsbook_maintain_last_run_duration_seconds",
        "How long the last run took.",
    );
    let _ = writeln!(
        out,
        "opsbook_maintain_last_run_duration_seconds{{schedule=\"{s}\"}} {took:.3}"
    );
    family(
        &mut out,
        "opsbook_maintain_last_run_status",
        "The last run's worst status: 0 ok, 1 warning, 2 critical, 3 unknown.",
    );
    let _ = writeln!(
        out,
        "opsbook_maintain_last_run_status{{schedule=\"{s}\"}} {}",
        code(report.status())
    );
    family(
        &mut out,
        "opsbook_maintain_step_status",
        "Each step's status in the last run: 0 ok, 1 warning, 2 critical, 3 unknown, -1 skipped or to do.",
    );
    for result in &report.results {
        let _ = writeln!(
            out,
            "opsbook_maintain_step_status{{schedule=\"{s}\",step=\"{}\"}} {}",
            label(&result.name),
            code(result.status)
        );
    }
    out
}

/// A gauge family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

/// `maintain daily: warning — 9 steps: 7 ok, 1 warning, 1 to do (3.2s)`, then the to-do
/// steps and the failed ones by name.
pub fn one_line(schedule: &str, report: &Report, took: std::time::Duration) -> String {
    let report = report.masked();
    let mut parts = Vec::new();
    for (status, label) in [
        (Status::Ok, "ok"),
        (Status::Warning, "warning"),
        (Status::Critical, "critical"),
        (Status::Unknown, "unknown"),
        (Status::Skipped, "skipped or to do"),
    ] {
        let n = report.count(status);
        if n > 0 {
            parts.push(format!("{n} {label}"));
        }
    }
    let mut line = format!(
        "maintain {schedule}: {} — {}: {} ({:.1}s)",
        report.status().as_str(),
        crate::plural::count(report.results.len(), "step", "steps"),
        parts.join(", "),
        took.as_secs_f64()
    );
    let names = |keep: &dyn Fn(&crate::model::CheckResult) -> bool| -> Vec<&str> {
        report
            .results
            .iter()
            .filter(|r| keep(r))
            .map(|r| r.name.as_str())
            .collect()
    };
    let todo = names(&|r| r.status == Status::Skipped && r.message.starts_with("to do: "));
    if !todo.is_empty() {
        line.push_str(&format!("; to do: {}", todo.join(", ")));
    }
    let failed = names(&|r| matches!(r.status, Status::Critical | Status::Unknown));
    if !failed.is_empty() {
        line.push_str(&format!("; failed: {}", failed.join(", ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_textfile_has_each_family_once_and_escapes_names() {
        let mut report = crate::model::sample();
        report.results[0].name = "Rotate \"app\" logs".to_string();
        report.results[1].status = Status::Skipped;
        let ended: jiff::Timestamp = "2026-01-10T02:15:03Z".parse().unwrap();
        let text = textfile("da\"ily", &report, ended, 3.25);
        assert_eq!(
            text,
            "# HELP opsbook_maintain_last_run_timestamp_seconds When the schedule last finished.\n\
             # TYPE opsbook_maintain_last_run_timestamp_seconds gauge\n\
             opsbook_maintain_last_run_timestamp_seconds{schedule=\"da\\\"ily\"} 1768011303\n\
             # HELP opsbook_maintain_last_run_duration_seconds How long the last run took.\n\
             # TYPE opsbook_maintain_last_run_duration_seconds gauge\n\
             opsbook_maintain_last_run_duration_seconds{schedule=\"da\\\"ily\"} 3.250\n\
             # HELP opsbook_maintain_last_run_status The last run's worst status: 0 ok, 1 warning, 2 critical, 3 unknown.\n\
             # TYPE opsbook_maintain_last_run_status gauge\n\
             opsbook_maintain_last_run_status{schedule=\"da\\\"ily\"} 1\n\
             # HELP opsbook_maintain_step_status Each step's status in the last run: 0 ok, 1 warning, 2 critical, 3 unknown, -1 skipped or to do.\n\
             # TYPE opsbook_maintain_step_status gauge\n\
             opsbook_maintain_step_status{schedule=\"da\\\"ily\",step=\"Rotate \\\"app\\\" logs\"} 1\n\
             opsbook_maintain_step_status{schedule=\"da\\\"ily\",step=\"disk:/data\"} -1\n"
        );
    }

    #[test]
    fn the_one_line_counts_and_names_the_to_do_and_failed_steps() {
        let mut report = crate::model::sample();
        report.results[0].status = Status::Critical;
        report.results[1].status = Status::Skipped;
        report.results[1].message = "to do: look at /data".to_string();
        let line = one_line("daily", &report, std::time::Duration::from_millis(3250));
        assert_eq!(
            line,
            "maintain daily: critical — 2 steps: 1 critical, 1 skipped or to do (3.2s); \
             to do: disk:/data; failed: memory"
        );
    }
}
