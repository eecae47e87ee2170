//! TAP version 13 (Test Anything Protocol), the latest version Perl's `prove` reads: one
//! test point per check. Critical and unknown are `not ok` with a YAML diagnostic; skipped
//! is `# SKIP reason`; a warning passes with its message as a `# warning` comment.

use crate::model::Report;
use crate::model::Status;
use std::fmt::Write;

pub fn render(report: &Report) -> String {
    let mut out = String::from("TAP version 13\n");
    let _ = writeln!(out, "1..{}", report.results.len());
    for (i, r) in report.results.iter().enumerate() {
        let n = i + 1;
        // `#` starts a directive in a description; keep names readable and safe.
        let name = r.name.replace('#', "\\#").replace('\n', " ");
        let message = r.message.replace('\n', " ");
        match r.status {
            Status::Ok => {
                let _ = writeln!(out, "ok {n} - {name}");
            }
            Status::Warning => {
                let _ = writeln!(out, "ok {n} - {name}\n# warning: {message}");
            }
            Status::Skipped => {
                let _ = writeln!(out, "ok {n} - {name} # SKIP {message}");
            }
            Status::Critical | Status::Unknown => {
                let _ = writeln!(out, "not ok {n} - {name}");
                let _ = writeln!(out, "  ---");
                let _ = writeln!(out, "  severity: {}", r.status.as_str());
                let _ = writeln!(out, "  kind: {}", r.kind);
                let _ = writeln!(
                    out,
                    "  message: {}",
                    serde_json::Value::String(message.clone())
                );
                let _ = writeln!(out, "  duration_ms: {}", r.duration.as_millis());
                let _ = writeln!(out, "  ...");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::model::Status;

    #[test]
    fn test_points_with_diagnostics_and_skips() {
        let text = super::render(&crate::model::sample());
        assert!(text.starts_with("TAP version 13\n1..2\n"), "{text}");
        assert!(
            text.contains("ok 1 - memory\n# warning: memory 80% used"),
            "{text}"
        );
        assert!(text.contains("ok 2 - disk:/data\n"), "{text}");
        let mut failing = crate::model::sample();
        failing.results[1].status = Status::Critical;
        failing.results[0].status = Status::Skipped;
        let text = super::render(&failing);
        assert!(
            text.contains("ok 1 - memory # SKIP memory 80% used"),
            "{text}"
        );
        assert!(
            text.contains("not ok 2 - disk:/data\n  ---\n  severity: critical\n"),
            "{text}"
        );
    }
}
