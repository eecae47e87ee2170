//! The audit trail (seed 000's `logs/audit.log`): one JSON line per change the tool
//! made — who, where, when, which command, what, and how it ended.

use super::rotating::RotatingFile;
use serde::Serialize;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

static AUDIT: OnceLock<Mutex<RotatingFile>> = OnceLock::new();

#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    pub time: String,
    pub user: String,
    pub host: String,
    pub command: String,
    pub action: &'a str,
    pub outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
}

pub(super) fn install(file: RotatingFile) {
    let _ = AUDIT.set(Mutex::new(file));
}

/// Record a change. Without file logging this is a no-op. The entry lands as one whole
/// line or not at all; a failing write (a full disk) is reported naming the entry that is
/// missing, never fatal to the change itself, which has already happened.
pub fn record(action: &str, outcome: &str, detail: Option<&str>) {
    let Some(file) = AUDIT.get() else { return };
    let line = entry_line(&Entry {
        time: jiff::Timestamp::now().to_string(),
        user: user(),
        host: host(),
        // args_os: an argument that is not UTF-8 (a path) must not panic here, after the
        // change was made; its invalid bytes show as U+FFFD.
        command: std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        action,
        outcome,
        detail,
    });
    let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Err(e) = file.write_all(line.as_bytes()) {
        tracing::warn!(
            "cannot write the audit log: {e}; not recorded there: {action} {outcome}{}",
            detail.map(|d| format!(" ({d})")).unwrap_or_default()
        );
    }
}

fn entry_line(entry: &Entry<'_>) -> String {
    let mut line = serde_json::to_string(entry).unwrap_or_default();
    line.push('\n');
    line
}

fn user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        // SAFETY: geteuid has no preconditions and cannot fail.
        .unwrap_or_else(|_| format!("uid {}", unsafe { libc::geteuid() }))
}

fn host() -> String {
    sysinfo::System::host_name().unwrap_or_else(|_| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_one_json_line_with_the_fields() {
        let line = entry_line(&Entry {
            time: "2024-01-01T12:00:00Z".into(),
            user: "ops".into(),
            host: "web-1".into(),
            command: "opsbook backup create".into(),
            action: "backup.create",
            outcome: "success",
            detail: None,
        });
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        for field in ["time", "user", "host", "command", "action", "outcome"] {
            assert!(value.get(field).is_some(), "{field} missing in {line}");
        }
    }
}
