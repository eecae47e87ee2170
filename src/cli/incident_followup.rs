//! `opsbook incident remind|metrics|actions`: what follows an incident up after the fact
//! (updates due, overdue action items, the metrics textfile), rendered for the command
//! line; `incident.rs` holds the lifecycle commands.

use super::Session;
use super::incident::ListFormat;
use crate::incident::{self, Incidents, Voice};

/// `incident remind`: one line per incident that needs attention (and its overdue action
/// items); the reminders themselves go out through the incident webhook and the routed
/// channels. A reminder due with no channel configured is exit 78 (see `incident::unheard`).
pub(super) fn remind(
    session: &Session,
    book: &Incidents<'_>,
    voice: &Voice<'_>,
) -> anyhow::Result<u8> {
    let quiet = Voice {
        message: &|_| {},
        warn: voice.warn,
    };
    let due = incident::remind(book, &quiet)?;
    let mut out = String::new();
    for d in &due {
        let sent = if d.sent {
            "reminder sent".to_string()
        } else if d.nobody {
            "reminder NOT sent: no channel is configured".to_string()
        } else if d.undelivered {
            "reminder NOT delivered (the next run sends it again)".to_string()
        } else {
            format!(
                "already reminded at {}",
                d.reminded.as_deref().unwrap_or("?")
            )
        };
        let what = d
            .update_due
            .as_deref()
            .map_or_else(String::new, |u| format!("update due ({u})  "));
        out.push_str(&format!("{}  {}  {what}{sent}\n", d.id, d.title));
        for a in &d.overdue_actions {
            out.push_str(&format!("  {}\n", action_line(a)));
        }
    }
    if due.is_empty() {
        session.printer.human("nothing due\n");
    }
    session.printer.data(&out);
    if let Some(unheard) = incident::unheard(book, &due) {
        return Err(unheard.into());
    }
    Ok(u8::from(!due.is_empty()))
}

pub(super) fn metrics(
    session: &Session,
    book: &Incidents<'_>,
    output: Option<&std::path::Path>,
) -> anyhow::Result<u8> {
    // Mode 0644: node_exporter's textfile collector reads it as another user.
    deliver(session, &incident::metrics(book), output, 0o644, "metrics")
}

/// `text` to stdout, or written whole to `output` (mode `mode`, secrets masked) and said so.
pub(super) fn deliver(
    session: &Session,
    text: &str,
    output: Option<&std::path::Path>,
    mode: u32,
    what: &str,
) -> anyhow::Result<u8> {
    match output {
        Some(path) => {
            crate::fsutil::write_atomically_mode(path, crate::redact::mask(text).as_bytes(), mode)
                .map_err(anyhow::Error::msg)?;
            session
                .printer
                .human(&format!("{what} written to {}\n", path.display()));
        }
        None => session.printer.data(text),
    }
    Ok(0)
}

/// `INC-20260110-1 #1  open  due 2026-01-20  @db-team  Raise the pool to 50  OVERDUE`
fn action_line(a: &incident::Tracked) -> String {
    format!(
        "{} #{}  {:<4}  due {:<10}  {:<12}  {}{}",
        a.incident,
        a.n,
        if a.done.is_some() { "done" } else { "open" },
        if a.due.is_empty() { "-" } else { &a.due },
        if a.owner.is_empty() { "-" } else { &a.owner },
        a.action,
        if a.overdue { "  OVERDUE" } else { "" }
    )
}

pub(super) fn actions(
    session: &Session,
    book: &Incidents<'_>,
    open: bool,
    owner: &Option<String>,
) -> anyhow::Result<u8> {
    let format = session.format(ListFormat::Text)?;
    let filter = incident::Filter {
        open,
        owner: owner.as_deref(),
    };
    let items = incident::actions(book, &filter);
    let text = match format {
        ListFormat::Json => {
            let text = serde_json::to_string_pretty(&items).unwrap_or_default();
            format!("{text}\n")
        }
        ListFormat::Text => items.iter().map(|a| action_line(a) + "\n").collect(),
    };
    session.printer.data(&text);
    Ok(0)
}
