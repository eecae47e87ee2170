//! The lifecycle through the library alone, without the command line: declare, update,
//! escalate and resolve in turn, the overdue rule, and each refusal's kind.

use super::lifecycle::*;
use super::{ActionItem, Entry, Error, IncidentConfig, Status};
use std::cell::RefCell;
use std::path::{Path, PathBuf};

fn at(text: &str) -> jiff::Timestamp {
    text.parse().expect("an RFC 3339 time")
}

fn config(dir: &Path) -> IncidentConfig {
    IncidentConfig {
        dir: Some(crate::values::Text::plain(
            dir.join("incidents").display().to_string(),
        )),
        ..IncidentConfig::default()
    }
}

fn declaration(severity: &str, title: &str) -> Declaration {
    Declaration {
        severity: severity.to_string(),
        title: title.to_string(),
        impact: vec!["All API requests fail".to_string()],
        components: vec!["api".to_string()],
        commander: None,
        kind: None,
        service: None,
        eta: None,
    }
}

/// The lifecycle through the library alone: each message is shown in turn, the
/// record's times follow the clock, and the standing applies the overdue rule.
#[test]
fn the_lifecycle_runs_through_the_library_without_the_command_line() {
    let temp = tempfile::tempdir().expect("temp dir");
    let config = config(temp.path());
    let open = |now: &str| {
        Incidents::open(&config, temp.path(), PathBuf::from("ops.yaml"))
            .expect("built-in templates")
            .at(at(now))
    };
    let shown = RefCell::new(Vec::<String>::new());
    let message = |text: &str| shown.borrow_mut().push(text.to_string());
    let voice = Voice {
        message: &message,
        warn: &|text| panic!("no warning expected: {text}"),
    };
    let book = open("2026-01-10T10:00:00Z");
    let record = declare(&book, declaration("sev-1", "API unavailable"), &voice).expect("declared");
    assert_eq!(record.id, "INC-20260110-1");
    assert_eq!(record.severity, "SEV-1");
    let book = open("2026-01-10T10:16:00Z");
    assert_eq!(
        crate::incident::standing(&book, &record).overdue,
        [
            "no response after 16m, due within 15m",
            "escalation to On-call was due at T+0m",
            "escalation to Platform Lead was due at T+15m",
        ]
        .map(String::from)
    );
    let change = Change {
        status: Some(Status::Monitoring),
        note: Some("pool raised".to_string()),
        ..Change::default()
    };
    let updated = update(&book, &record.id, &change, &voice).expect("updated");
    assert_eq!(
        updated.acknowledged.as_deref(),
        Some("2026-01-10T10:16:00Z")
    );
    assert_eq!(updated.mitigated.as_deref(), Some("2026-01-10T10:16:00Z"));
    let due = escalate(&book, &record.id, &voice).expect("escalated");
    assert_eq!(due, ["On-call", "Platform Lead"]);
    let book = open("2026-01-10T10:30:00Z");
    assert!(
        crate::incident::standing(&book, &updated)
            .overdue
            .is_empty()
    );
    let resolution = Resolution {
        root_cause: "pool size".to_string(),
        lessons: vec!["alert on saturation".to_string()],
        actions: vec![ActionItem::parse("Raise the pool | @db | 2026-01-20").expect("parsed")],
    };
    let resolved = resolve(&book, &record.id, resolution, &voice).expect("resolved");
    assert_eq!(resolved.status, Status::Resolved);
    assert_eq!(resolved.action_items[0].owner, "@db");
    let shown = shown.into_inner();
    assert_eq!(shown.len(), 4, "{shown:?}");
    assert!(shown[0].starts_with("🚨 INCIDENT DECLARED"), "{}", shown[0]);
    assert!(shown[1].contains("Status: MONITORING"), "{}", shown[1]);
    assert!(shown[2].starts_with("⏫ ESCALATION"), "{}", shown[2]);
    assert!(shown[3].contains("Status: RESOLVED"), "{}", shown[3]);
    let kinds: Vec<String> = book
        .store
        .timeline(&record.id)
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        ["declared", "status", "note", "escalated", "resolved"]
    );
}

/// Each refusal has the kind its exit code comes from, and changes nothing.
#[test]
fn refusals_are_typed_and_change_nothing() {
    let temp = tempfile::tempdir().expect("temp dir");
    let config = config(temp.path());
    let book = Incidents::open(&config, temp.path(), PathBuf::from("ops.yaml"))
        .expect("built-in templates")
        .at(at("2026-01-10T10:00:00Z"));
    let voice = Voice::silent();
    let kind = |e: Error| e.kind();
    use crate::error::Kind;
    let unknown = declare(&book, declaration("SEV-7", "x"), &voice).expect_err("SEV-7");
    assert_eq!(kind(unknown), Kind::Usage);
    let empty = declare(&book, declaration("SEV-2", "  "), &voice).expect_err("no title");
    assert_eq!(empty.to_string(), "--title is empty");
    let nothing = Change::default();
    let err = update(&book, "INC-20260110-1", &nothing, &voice).expect_err("empty");
    assert_eq!(kind(err), Kind::Usage);
    let err = escalate(&book, "../elsewhere", &voice).expect_err("not an id");
    assert!(matches!(err, Error::Unknown(_)), "{err}");
    let err = ActionItem::parse("a|b").expect_err("malformed");
    assert_eq!(err.to_string(), "--action \"a|b\": not ACTION|OWNER|DUE");
    let record = declare(&book, declaration("SEV-2", "Queue backlog"), &voice).expect("ok");
    let end = || Resolution {
        root_cause: "x".to_string(),
        lessons: Vec::new(),
        actions: Vec::new(),
    };
    resolve(&book, &record.id, end(), &voice).expect("resolved");
    let before = book.store.timeline(&record.id).len();
    let again = resolve(&book, &record.id, end(), &voice).expect_err("twice");
    assert_eq!(
        again.to_string(),
        "INC-20260110-1 is already resolved (at 2026-01-10T10:00:00Z); nothing changed"
    );
    assert_eq!(kind(again), Kind::Failure);
    let status = Change {
        status: Some(Status::Identified),
        ..Change::default()
    };
    let err = update(&book, &record.id, &status, &voice).expect_err("resolved");
    assert!(matches!(err, Error::Refused(_)), "{err}");
    assert_eq!(book.store.timeline(&record.id).len(), before);
}

/// A template that does not render is a config error naming the file, found before
/// anything is recorded.
#[test]
fn a_broken_template_is_a_config_error_before_anything_is_recorded() {
    let temp = tempfile::tempdir().expect("temp dir");
    let mut config = config(temp.path());
    config
        .templates
        .insert("update".to_string(), "{{ incident.sevrity }}".to_string());
    let err = Incidents::open(&config, temp.path(), PathBuf::from("ops.yaml"))
        .err()
        .expect("a broken template");
    assert_eq!(err.kind(), crate::error::Kind::Config);
    assert!(
        err.to_string()
            .starts_with("ops.yaml: incident.templates.update: "),
        "{err}"
    );
    assert!(!temp.path().join("incidents").exists());
}

/// `TEXT[@owner][ by DATE]` and `ACTION|OWNER|DUE` both read; a bad date or an empty text
/// is named; overdue is the day after the due date, and never once done.
#[test]
fn action_items_read_their_owner_and_date_and_know_when_they_are_overdue() {
    let item = ActionItem::parse("Raise the pool to 50 @db-team by 2026-01-20").expect("item");
    assert_eq!(
        (item.action.as_str(), item.owner.as_str(), item.due.as_str()),
        ("Raise the pool to 50", "@db-team", "2026-01-20")
    );
    let item = ActionItem::parse("Alert on saturation@ops").expect("item");
    assert_eq!(
        (item.action.as_str(), item.owner.as_str()),
        ("Alert on saturation", "@ops")
    );
    let item = ActionItem::parse("Write it down by hand").expect("no date");
    assert_eq!(item.action, "Write it down by hand");
    assert_eq!(item.due, "");
    let err = ActionItem::parse("Fix it by 2026-02-30").expect_err("no such day");
    assert!(
        err.to_string().starts_with(
            "--action \"Fix it by 2026-02-30\": due date \"2026-02-30\" is not YYYY-MM-DD"
        ),
        "{err}"
    );
    assert!(ActionItem::parse(" @ops by 2026-01-20").is_err());
    let mut item = ActionItem::parse("Fix | @a | 2026-01-20").expect("old form");
    assert!(!item.overdue(at("2026-01-20T23:59:00Z")));
    assert!(item.overdue(at("2026-01-21T00:00:00Z")));
    assert!(item.owned_by("A") && item.owned_by("@a") && !item.owned_by("b"));
    item.done = Some("2026-01-21T00:00:00Z".into());
    assert!(!item.overdue(at("2026-02-01T00:00:00Z")));
}

#[test]
fn an_entry_names_the_severities_declare_and_update_write() {
    let entry = |kind: &str, text: &str| Entry {
        time: String::new(),
        author: String::new(),
        kind: kind.to_string(),
        text: text.to_string(),
    };
    let named = |e: &Entry| e.severities().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        named(&entry("declared", "Incident declared (SEV-1): API down")),
        ["SEV-1"]
    );
    assert_eq!(
        named(&entry("severity", "Severity: SEV-1 → SEV-3")),
        ["SEV-1", "SEV-3"]
    );
    assert!(named(&entry("note", "Severity: SEV-1 → SEV-3")).is_empty());
}
