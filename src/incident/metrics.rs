//! `incident metrics`: the incidents as a Prometheus textfile (for node_exporter's textfile
//! collector): counts by severity and status, open incidents whose update is due, action
//! items by state (each in one: open, overdue or done), and the times to acknowledge, mitigate and resolve of resolved incidents
//! (a summary per severity: `_sum` and `_count`).

use super::{Incident, Incidents, Status};
use std::fmt::Write;

const STATUSES: [Status; 5] = [
    Status::Investigating,
    Status::Identified,
    Status::Mitigated,
    Status::Monitoring,
    Status::Resolved,
];

/// One milestone's time of a standing, in seconds.
type Milestone = fn(&super::Standing) -> Option<u64>;

/// A label value as the exposition format wants it: `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The textfile for every readable incident at `book.now`.
pub fn metrics(book: &Incidents<'_>) -> String {
    let records: Vec<Incident> = book
        .store
        .ids()
        .iter()
        .filter_map(|id| book.store.load(id).ok())
        .collect();
    let mut severities: Vec<String> = book
        .config
        .severities()
        .into_iter()
        .map(|s| s.name)
        .collect();
    for record in &records {
        if !severities.contains(&record.severity) {
            severities.push(record.severity.clone());
        }
    }
    let mut out = String::new();
    let name = "opsbook_incidents";
    head(
        &mut out,
        name,
        "gauge",
        "Incidents recorded, by severity and status.",
    );
    for severity in &severities {
        for status in STATUSES {
            let n = records
                .iter()
                .filter(|r| &r.severity == severity && r.status == status)
                .count();
            let _ = writeln!(
                out,
                "{name}{{severity=\"{}\",status=\"{}\"}} {n}",
                label(severity),
                status.as_str()
            );
        }
    }
    let standings: Vec<super::Standing> =
        records.iter().map(|r| super::standing(book, r)).collect();
    let name = "opsbook_incidents_update_due";
    head(
        &mut out,
        name,
        "gauge",
        "Open incidents whose stakeholder update is due.",
    );
    let due = standings.iter().filter(|s| s.update_due.is_some()).count();
    let _ = writeln!(out, "{name} {due}");
    let items = super::actions(book, &super::Filter::default());
    let name = "opsbook_incident_action_items";
    head(
        &mut out,
        name,
        "gauge",
        "Action items of all incidents, by state (open and not due, overdue, done; each item in one).",
    );
    // The states are disjoint, so a sum over them counts every item once: an overdue
    // item is not also counted as open.
    let open = items.iter().filter(|t| t.done.is_none()).count();
    let overdue = items
        .iter()
        .filter(|t| t.done.is_none() && t.overdue)
        .count();
    let states = [
        ("open", open - overdue),
        ("overdue", overdue),
        ("done", items.len() - open),
    ];
    for (state, n) in states {
        let _ = writeln!(out, "{name}{{state=\"{state}\"}} {n}");
    }
    let times: [(&str, &str, Milestone); 3] = [
        ("acknowledge", "acknowledgement", |s| s.tta_seconds),
        ("mitigate", "mitigation", |s| s.ttm_seconds),
        ("resolve", "resolution", |s| s.ttr_seconds),
    ];
    for (verb, noun, pick) in times {
        let name = format!("opsbook_incident_time_to_{verb}_seconds");
        let help = format!("Time from declaration to {noun} of resolved incidents.");
        head(&mut out, &name, "summary", &help);
        for severity in &severities {
            let values: Vec<u64> = standings
                .iter()
                .filter(|s| &s.severity == severity && s.status == Status::Resolved)
                .filter_map(pick)
                .collect();
            let sev = label(severity);
            let sum: u64 = values.iter().sum();
            let _ = writeln!(out, "{name}_sum{{severity=\"{sev}\"}} {sum}");
            let _ = writeln!(out, "{name}_count{{severity=\"{sev}\"}} {}", values.len());
        }
    }
    out
}
