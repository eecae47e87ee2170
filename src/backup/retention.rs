//! Which backups a set's retention keeps, with restic's meaning: `keep_last N` keeps the N
//! newest; `keep_daily N` keeps the newest backup of each of the N newest days that have
//! one (weekly: ISO weeks, monthly: calendar months); the rules are OR-ed. A set with no
//! rule keeps everything.

use super::{BackupSet, Manifest};
use std::collections::BTreeSet;

/// The ids to keep and why, and the ids to remove, of one set's backups. Whatever the
/// rules, the newest backup and the newest that passed a restore test (`drilled`) stay:
/// a rule like `keep_last: 0`, or a drill of an older backup, never leaves the set without
/// them.
pub fn plan(
    set: &BackupSet,
    backups: &[&Manifest],
    drilled: Option<&str>,
    zone: &jiff::tz::TimeZone,
) -> (Vec<(String, Vec<String>)>, Vec<String>) {
    let rules = [
        ("last", set.keep_last),
        ("daily", set.keep_daily),
        ("weekly", set.keep_weekly),
        ("monthly", set.keep_monthly),
    ];
    let mut newest_first: Vec<&Manifest> = backups.to_vec();
    newest_first.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
    if rules.iter().all(|(_, n)| n.is_none()) {
        let keep = newest_first
            .iter()
            .map(|m| (m.id.clone(), vec!["no retention rule".to_string()]))
            .collect();
        return (keep, Vec::new());
    }
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); newest_first.len()];
    for (rule, count) in rules {
        let Some(count) = count else { continue };
        let mut buckets = BTreeSet::new();
        for (i, m) in newest_first.iter().enumerate() {
            if buckets.len() >= count {
                break;
            }
            let bucket = match rule {
                "last" => m.id.clone(),
                _ => bucket_of(&m.created, rule, zone),
            };
            if buckets.insert(bucket.clone()) {
                reasons[i].push(format!("{rule} {bucket}"));
            }
        }
    }
    // Said only where no rule keeps it already.
    for (i, m) in newest_first.iter().enumerate() {
        if !reasons[i].is_empty() {
            continue;
        }
        if i == 0 {
            reasons[i].push("newest complete backup".to_string());
        } else if drilled == Some(m.id.as_str()) {
            reasons[i].push("newest passed restore test".to_string());
        }
    }
    let mut keep = Vec::new();
    let mut remove = Vec::new();
    for (m, why) in newest_first.iter().zip(reasons) {
        if why.is_empty() {
            remove.push(m.id.clone());
        } else {
            keep.push((m.id.clone(), why));
        }
    }
    (keep, remove)
}

fn bucket_of(created: &str, rule: &str, zone: &jiff::tz::TimeZone) -> String {
    let Ok(at) = created.parse::<jiff::Timestamp>() else {
        return created.to_string();
    };
    let local = zone.to_datetime(at);
    match rule {
        "daily" => local.strftime("%Y-%m-%d").to_string(),
        "weekly" => {
            let week = local.date().iso_week_date();
            format!("{}-W{:02}", week.year(), week.week())
        }
        _ => local.strftime("%Y-%m").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::plan;
    use crate::backup::{BackupSet, Manifest};

    fn backup(id: &str, created: &str) -> Manifest {
        serde_json::from_value(serde_json::json!({
            "id": id, "set": "s", "created": created, "host": "h", "tool_version": "0",
            "compression": "gzip", "archive": "data.tar.gz", "archive_bytes": 1, "files": [],
        }))
        .unwrap()
    }

    #[test]
    fn the_newest_and_the_drilled_backup_stay_whatever_the_rules() {
        let set: BackupSet = serde_json::from_value(serde_json::json!({ "keep_last": 0 })).unwrap();
        let all = [
            backup("s-20250301T000000Z", "2025-03-01T00:00:00Z"),
            backup("s-20250302T000000Z", "2025-03-02T00:00:00Z"),
            backup("s-20250303T000000Z", "2025-03-03T00:00:00Z"),
        ];
        let refs: Vec<&Manifest> = all.iter().collect();
        let zone = jiff::tz::TimeZone::UTC;
        let (keep, remove) = plan(&set, &refs, Some("s-20250301T000000Z"), &zone);
        let kept: Vec<(&str, &str)> = keep
            .iter()
            .map(|(id, why)| (id.as_str(), why[0].as_str()))
            .collect();
        assert_eq!(
            kept,
            [
                ("s-20250303T000000Z", "newest complete backup"),
                ("s-20250301T000000Z", "newest passed restore test")
            ]
        );
        assert_eq!(remove, ["s-20250302T000000Z"]);
        // Without a drill record only the newest is protected.
        let (keep, remove) = plan(&set, &refs, None, &zone);
        assert_eq!(keep.len(), 1);
        assert_eq!(remove.len(), 2);
    }
}
