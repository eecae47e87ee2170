//! Text: one aligned line per check, then a summary line. Colour only when the printer
//! says the terminal wants it; piped output is plain and stable for grep and diff.

use crate::model::Status;
use crate::model::{CheckResult, Report};
use anstyle::{AnsiColor, Style as Ansi};
use std::fmt::Write;

#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, status: Status, text: &str) -> String {
        if !self.color {
            return text.to_string();
        }
        let color = match status {
            Status::Ok => AnsiColor::Green,
            Status::Warning => AnsiColor::Yellow,
            Status::Critical => AnsiColor::Red,
            Status::Unknown => AnsiColor::Magenta,
            Status::Skipped => AnsiColor::BrightBlack,
        };
        let style = Ansi::new().fg_color(Some(color.into())).bold();
        format!("{style}{text}{style:#}")
    }
}

pub fn render(report: &Report, style: Style) -> String {
    let width = report
        .results
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for result in &report.results {
        out.push_str(&render_result(result, width, style));
    }
    out.push_str(&summary(report, style));
    out.push('\n');
    out
}

/// The result line, and for a failed command the last lines it printed, indented.
pub fn render_result(result: &CheckResult, name_width: usize, style: Style) -> String {
    let mut out = render_result_line(result, name_width, style);
    out.push('\n');
    if let crate::model::Data::Command { stdout, stderr, .. } = &result.data
        && matches!(result.status, Status::Critical | Status::Unknown)
    {
        let output = if stderr.trim().is_empty() {
            stdout
        } else {
            stderr
        };
        let lines: Vec<&str> = output.lines().collect();
        for line in &lines[lines.len().saturating_sub(10)..] {
            let _ = writeln!(out, "          │ {line}");
        }
    }
    out
}

/// `critical  api       1204 ms  status 500, expected 200`
pub fn render_result_line(result: &CheckResult, name_width: usize, style: Style) -> String {
    let word = format!("{:<8}", result.status.as_str());
    let pad = name_width.saturating_sub(result.name.chars().count());
    format!(
        "{}  {}{}  {:>7}  {}",
        style.paint(result.status, &word),
        result.name,
        " ".repeat(pad),
        format_duration(result.duration),
        result.message
    )
}

/// `health: degraded — 6 checks: 5 ok, 1 warning in 262 ms`
pub fn summary(report: &Report, style: Style) -> String {
    let status = report.status();
    let mut counts = String::new();
    for s in [
        Status::Ok,
        Status::Warning,
        Status::Critical,
        Status::Unknown,
        Status::Skipped,
    ] {
        let n = report.count(s);
        if n > 0 {
            if !counts.is_empty() {
                counts.push_str(", ");
            }
            let _ = write!(counts, "{n} {}", s.as_str());
        }
    }
    let (word, one, many) = match report.kind {
        crate::model::ReportKind::Health => (status.health_word(), "check", "checks"),
        crate::model::ReportKind::Runbook => (status.as_str(), "step", "steps"),
    };
    format!(
        "{}: {} — {}: {counts} in {}",
        report.title,
        style.paint(status, word),
        crate::plural::count(report.results.len(), one, many),
        format_duration(report.duration).trim_start(),
    )
}

fn format_duration(d: std::time::Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_plain_lines_and_a_summary() {
        let text = render(&crate::model::sample(), Style { color: false });
        assert_eq!(
            text,
            "warning   memory        12 ms  memory 80% used (> warn 75%)\n\
             ok        disk:/data    12 ms  /data 10% used\n\
             health: degraded — 2 checks: 1 ok, 1 warning in 260 ms\n"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let plain = render(&crate::model::sample(), Style { color: false });
        assert!(!plain.contains('\x1b'));
        let coloured = render(&crate::model::sample(), Style { color: true });
        assert!(coloured.contains("\x1b["));
    }
}
