//! The messages and the report, as minijinja templates: built in (written from the FileForge
//! platform's incident declaration, customer notification and post-incident report, and the
//! inventory service's status update) and
//! overridable in config `incident.templates`. An unknown variable is an error, found
//! before anything is recorded: every template is rendered once against a sample first.

use super::{Entry, Error, Incident, Severity};
use crate::error::ConfigError;
use serde::Serialize;
use std::path::Path;

pub const NAMES: [&str; 6] = [
    "declaration",
    "update",
    "escalation",
    "report",
    "customer",
    "reminder",
];

const DECLARATION: &str = r#"🚨 INCIDENT DECLARED

Severity: {{ incident.severity }}{% if severity.description %} ({{ severity.description }}){% endif %}
Status: {{ incident.status | title }}
Title: {{ incident.title }}
ID: {{ incident.id }}
{% if service %}Service: {{ service }}
{% endif %}
Impact:
{% for line in incident.impact %}- {{ line }}
{% else %}- (not yet known)
{% endfor %}{% if incident.components %}
Affected components: {{ incident.components | join(", ") }}
{% endif %}
Timeline:
{% for e in timeline %}- [{{ e.offset }}] {{ e.text }}
{% endfor %}
{% if severity.response %}Response due within {{ severity.response }}.
{% endif %}{% if incident.eta %}ETA: {{ incident.eta }}
{% endif %}Contact: {{ incident.commander or "on-call" }}
{% if status_page %}Status page: {{ status_page }}
{% endif %}"#;

const UPDATE: &str = r#"🚨 INCIDENT: {% if service %}{{ service }} - {% endif %}{{ incident.title }} ({{ incident.id }})

Status: {{ incident.status | upper }}
Severity: {{ incident.severity }}
Impact: {{ incident.impact | join("; ") if incident.impact else "(not yet known)" }}
ETA: {{ incident.eta or "(not yet known)" }}
Elapsed: {{ elapsed }}
{% if status_page %}Status page: {{ status_page }}
{% endif %}
Updates:
{% for e in updates %}- {{ e.clock }} {{ e.text }}
{% endfor %}{% if reminders.count %}Reminders: {{ reminders.count }}, last {{ reminders.last }}
{% endif %}{% if severity.update_every and incident.status != "resolved" %}
Next update within {{ severity.update_every_spoken }}.
{% endif %}"#;

const ESCALATION: &str = r#"⏫ ESCALATION: {{ incident.id }} {{ incident.title }}

Severity: {{ incident.severity }}, open for {{ elapsed }} ({{ incident.status }})
Due now: {{ due | join(", ") if due else "nobody yet" }}
{% if next %}Next: {{ next.who }} at {{ next.after }}
{% endif %}"#;

const CUSTOMER: &str = r#"{% set affected = service or (incident.components | join(", ")) %}{% set updates = "we will provide updates " ~ severity.updates if severity.update_every else "we will keep you updated" %}Subject: Service Issue - {{ affected or incident.title }}

Dear customer,

We are currently experiencing issues with {{ affected or "our service" }}.
This affects {{ incident.impact | join("; ") if incident.impact else "some of our users" }}.

{% if incident.status == "resolved" %}The issue has been resolved. Thank you for your patience.
{% elif incident.status in ["mitigated", "monitoring"] %}A fix is in place and our team is monitoring it; {{ updates }}.
{% elif incident.status == "identified" %}Our team has identified the cause and is working on a fix, and {{ updates }}.
{% else %}Our team is investigating and {{ updates }}.
{% endif %}{% if incident.eta and incident.status != "resolved" %}We expect to have it fixed by {{ incident.eta }}.
{% endif %}
{% if status_page %}Status Page: {{ status_page }}
{% endif %}Reference: {{ incident.id }}

We apologize for the inconvenience.
"#;

const REPORT: &str = r#"{% if draft %}> **DRAFT**: the incident is still {{ incident.status }}; this report is not final.

{% endif %}# Incident Report: {{ incident.id }}

## Summary
| Field | Value |
|-------|-------|
| Title | {{ incident.title }} |
| Date | {{ date }} |
| Duration | {{ duration }} |
| Time to acknowledge | {{ tta or "-" }} |
| Time to mitigate | {{ ttm or "-" }} |
| Time to resolve | {{ ttr or "-" }} |
| Severity | {{ incident.severity }} |
| Affected | {{ incident.components | join(", ") if incident.components else "-" }} |

## Impact
{% for line in incident.impact %}- {{ line }}
{% else %}- (not recorded)
{% endfor %}
## Root Cause
{{ incident.root_cause or "(not yet known)" }}

## Timeline
| Time | Event |
|------|-------|
{% for e in timeline %}| {{ e.offset }} | {{ e.text }} |
{% endfor %}
## Detection
- Declared: {{ incident.declared }}{% if incident.acknowledged %}
- Acknowledged: {{ incident.acknowledged }}{% endif %}

## Response
- Incident commander: {{ incident.commander or "-" }}
- Escalations: {{ escalations | join(", ") if escalations else "none" }}{% if incident.mitigated %}
- Mitigated: {{ incident.mitigated }}{% endif %}{% if incident.resolved %}
- Resolved: {{ incident.resolved }}{% endif %}

## Lessons Learned
{% for line in incident.lessons %}- {{ line }}
{% else %}- (none recorded)
{% endfor %}
### Action Items
| Action | Owner | Due Date | Status |
|--------|-------|----------|--------|
{% for a in incident.action_items %}| {{ a.action }} | {{ a.owner or "-" }} | {{ a.due or "-" }} | {{ "done " ~ a.done[:10] if a.done else "open" }} |
{% endfor %}"#;

const REMINDER: &str = r#"⏰ REMINDER: {{ incident.id }} {{ incident.title }} ({{ incident.severity }}, {{ incident.status }})
{% if update_due %}
An update is due: {{ update_due }}.
{% endif %}{% if overdue_actions %}
Overdue action items:
{% for a in overdue_actions %}- #{{ a.n }} {{ a.action }}{% if a.owner %} ({{ a.owner }}){% endif %}, due {{ a.due }}
{% endfor %}{% endif %}"#;

fn builtin(name: &str) -> &'static str {
    match name {
        "declaration" => DECLARATION,
        "update" => UPDATE,
        "escalation" => ESCALATION,
        "customer" => CUSTOMER,
        "reminder" => REMINDER,
        _ => REPORT,
    }
}

#[derive(Serialize)]
struct Line {
    /// `T+15`: minutes since the declaration.
    offset: String,
    /// `10:30 UTC`.
    clock: String,
    author: String,
    kind: String,
    text: String,
}

/// Timeline entries about the notifications themselves, not the incident: on the
/// timeline, never among a message's updates.
const BOOKKEEPING: [&str; 3] = ["reminded", "remind-failed", "notify-failed"];

/// The reminders that went out (a `reminded` entry not undone by a `remind-failed` after
/// it): how many, and the clock of the last.
#[derive(Serialize)]
struct Reminders {
    count: usize,
    last: Option<String>,
}

fn reminders(lines: &[Line]) -> Reminders {
    let mut sent: Vec<&Line> = Vec::new();
    for line in lines {
        match line.kind.as_str() {
            "reminded" => sent.push(line),
            "remind-failed" => {
                sent.pop();
            }
            _ => {}
        }
    }
    Reminders {
        count: sent.len(),
        last: sent.last().map(|line| line.clock.clone()),
    }
}

#[derive(Serialize)]
struct Next<'a> {
    who: &'a str,
    after: String,
}

/// What a reminder is about: an update that is due, action items that are overdue.
#[derive(Default)]
pub struct Reminder {
    pub update_due: Option<String>,
    pub overdue_actions: Vec<super::Tracked>,
}

/// Everything a template can use.
pub struct View<'a> {
    pub incident: &'a Incident,
    pub severity: &'a Severity,
    pub timeline: &'a [Entry],
    pub now: jiff::Timestamp,
    /// The status page of this incident (config `status_page:`).
    pub status_page: Option<String>,
    /// The affected service: the incident's, else config `service:`.
    pub service: Option<String>,
    pub reminder: Reminder,
}

impl View<'_> {
    fn context(&self) -> minijinja::Value {
        let declared = self.incident.declared.as_str();
        let lines: Vec<Line> = self
            .timeline
            .iter()
            .map(|e| {
                let at = e.time.parse::<jiff::Timestamp>().ok();
                let offset = at.map_or(0, |t| super::seconds_between(declared, t) / 60);
                Line {
                    offset: format!("T+{offset}"),
                    clock: at.map_or_else(String::new, |t| t.strftime("%H:%M UTC").to_string()),
                    author: e.author.clone(),
                    kind: e.kind.clone(),
                    text: e.text.clone(),
                }
            })
            .collect();
        let end = self
            .incident
            .resolved
            .as_deref()
            .and_then(|r| r.parse().ok())
            .unwrap_or(self.now);
        let elapsed = super::seconds_between(declared, self.now);
        let due: Vec<&str> = super::due(self.severity, elapsed)
            .iter()
            .map(|e| e.who.as_str())
            .collect();
        let next = self
            .severity
            .escalation
            .iter()
            .find(|e| e.after.0.as_secs() > elapsed)
            .map(|e| Next {
                who: &e.who,
                after: format!("T+{}", super::human(e.after.0.as_secs())),
            });
        let escalations: Vec<&str> = self
            .timeline
            .iter()
            .filter(|e| e.kind == "escalated")
            .map(|e| e.text.as_str())
            .collect();
        let secs = |d: Option<crate::values::Duration>| d.map(|d| d.0.as_secs());
        let since = |at: &Option<String>| super::span(declared, at.as_deref()).map(super::human);
        minijinja::context! {
            incident => minijinja::Value::from_serialize(self.incident),
            severity => minijinja::context! {
                name => &self.severity.name,
                description => &self.severity.description,
                response => secs(self.severity.response).map(super::human),
                update_every => secs(self.severity.update_every).map(super::human),
                update_every_spoken => secs(self.severity.update_every).map(super::spoken),
                updates => secs(self.severity.update_every).map(every),
            },
            service => &self.service,
            status_page => &self.status_page,
            tta => since(&self.incident.acknowledged),
            ttm => since(&self.incident.mitigated),
            ttr => since(&self.incident.resolved),
            update_due => &self.reminder.update_due,
            overdue_actions => minijinja::Value::from_serialize(&self.reminder.overdue_actions),
            updates => minijinja::Value::from_serialize(
                lines
                    .iter()
                    .filter(|l| !BOOKKEEPING.contains(&l.kind.as_str()))
                    .collect::<Vec<_>>()
            ),
            reminders => minijinja::Value::from_serialize(reminders(&lines)),
            timeline => minijinja::Value::from_serialize(&lines),
            elapsed => super::human(elapsed),
            duration => super::human(super::seconds_between(declared, end)),
            date => declared.get(..10).unwrap_or(declared),
            draft => self.incident.status != super::Status::Resolved,
            due => due,
            next => minijinja::Value::from_serialize(&next),
            escalations => escalations,
        }
    }
}

/// `every 30 minutes`, `every hour`, `every 1 hour 30 minutes`.
fn every(secs: u64) -> String {
    let said = super::spoken(secs);
    match said.strip_prefix("1 ") {
        Some(unit) if !unit.contains(' ') => format!("every {unit}"),
        _ => format!("every {said}"),
    }
}

/// A template problem, naming the config file in use (`file`): exit 78.
fn config_error(file: &Path, message: String) -> Error {
    Error::Template(ConfigError::whole_file(file, message))
}

/// Render template `name` (the config's override, else the built-in); an error names
/// `file`, the config file in use.
pub fn render(
    overrides: &std::collections::BTreeMap<String, String>,
    name: &str,
    view: &View<'_>,
    file: &Path,
) -> Result<String, Error> {
    let source = overrides.get(name).map_or(builtin(name), String::as_str);
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    let where_ = if overrides.contains_key(name) {
        format!("incident.templates.{name}")
    } else {
        format!("the built-in {name} template")
    };
    let failed = |e: minijinja::Error| config_error(file, format!("{where_}: {e}"));
    env.add_template(name, source).map_err(failed)?;
    let template = env.get_template(name).map_err(failed)?;
    template.render(view.context()).map_err(failed)
}

/// Check the config's templates before anything is recorded: an unknown template name or
/// a template that does not render against a sample incident is a config error.
pub fn check(
    overrides: &std::collections::BTreeMap<String, String>,
    file: &Path,
) -> Result<(), Error> {
    if let Some(unknown) = overrides.keys().find(|k| !NAMES.contains(&k.as_str())) {
        return Err(config_error(
            file,
            format!(
                "incident.templates.{unknown}: no such template (known: {})",
                NAMES.join(", ")
            ),
        ));
    }
    let severity = super::default_severities().remove(0);
    let incident = Incident {
        id: "INC-20250115-1".into(),
        title: "sample".into(),
        severity: severity.name.clone(),
        status: super::Status::Investigating,
        kind: None,
        impact: vec!["sample".into()],
        components: vec![],
        commander: None,
        declared: "2025-01-15T10:00:00Z".into(),
        acknowledged: None,
        acknowledged_by: None,
        service: Some("sample".into()),
        eta: Some("sample".into()),
        mitigated: None,
        resolved: None,
        root_cause: None,
        lessons: vec![],
        action_items: vec![],
    };
    let timeline = [Entry {
        time: "2025-01-15T10:00:00Z".into(),
        author: "sample".into(),
        kind: "declared".into(),
        text: "sample".into(),
    }];
    let now = "2025-01-15T10:30:00Z"
        .parse()
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let view = View {
        incident: &incident,
        severity: &severity,
        timeline: &timeline,
        now,
        status_page: Some("https://status.example.com/sample".into()),
        service: Some("sample".into()),
        reminder: Reminder {
            update_due: Some("sample".into()),
            overdue_actions: vec![super::Tracked {
                incident: "INC-20250115-1".into(),
                n: 1,
                action: "sample".into(),
                owner: "@sample".into(),
                due: "2025-01-14".into(),
                done: None,
                overdue: true,
            }],
        },
    };
    for name in overrides.keys() {
        render(overrides, name, &view, file)?;
    }
    Ok(())
}
