//! Action items tracked across incidents: each incident's `resolve --action` items, listed
//! together (open, by owner, overdue) and marked done one by one on their incident's record
//! and timeline.

use super::{Error, IncidentConfig, Incidents, Store};
use crate::logging::audit;
use serde::Serialize;
use std::path::Path;

/// One action item and where it comes from.
#[derive(Clone, Debug, Serialize)]
pub struct Tracked {
    pub incident: String,
    /// Its number on that incident, from 1 (`incident action ID N --done`).
    pub n: usize,
    pub action: String,
    pub owner: String,
    pub due: String,
    pub done: Option<String>,
    /// Open and past its due date.
    pub overdue: bool,
}

/// Which action items to list.
#[derive(Default)]
pub struct Filter<'a> {
    /// Only those not done.
    pub open: bool,
    /// Only those of this owner (`@` and case aside).
    pub owner: Option<&'a str>,
}

/// The action items of every readable incident in `store`, oldest incident first.
fn tracked(store: &Store, filter: &Filter<'_>, now: jiff::Timestamp) -> Vec<Tracked> {
    let mut out = Vec::new();
    for id in store.ids() {
        let Ok(record) = store.load(&id) else {
            continue;
        };
        for (i, item) in record.action_items.iter().enumerate() {
            if (filter.open && item.done.is_some())
                || filter.owner.is_some_and(|o| !item.owned_by(o))
            {
                continue;
            }
            out.push(Tracked {
                incident: id.clone(),
                n: i + 1,
                action: item.action.clone(),
                owner: item.owner.clone(),
                due: item.due.clone(),
                done: item.done.clone(),
                overdue: item.overdue(now),
            });
        }
    }
    out
}

/// The action items of every incident, as `filter` picks them.
pub fn actions(book: &Incidents<'_>, filter: &Filter<'_>) -> Vec<Tracked> {
    tracked(&book.store, filter, book.now)
}

/// The overdue action items of every incident under `state_dir` (or the configured
/// folder), for a caller that only reads (`maintain status`).
pub fn overdue_actions(
    config: &IncidentConfig,
    state_dir: &Path,
    now: jiff::Timestamp,
) -> Vec<Tracked> {
    let store = Store::new(config.dir(state_dir));
    let open = Filter {
        open: true,
        owner: None,
    };
    tracked(&store, &open, now)
        .into_iter()
        .filter(|t| t.overdue)
        .collect()
}

/// Mark action item `n` (from 1) of incident `id` done, on its record and timeline. It
/// gives the item and whether it already was done (then nothing changed).
pub fn complete_action(book: &Incidents<'_>, id: &str, n: usize) -> Result<(Tracked, bool), Error> {
    let _held = book.lock(id)?;
    let mut record = book.load(id)?;
    let count = record.action_items.len();
    let Some(item) = n
        .checked_sub(1)
        .and_then(|i| record.action_items.get_mut(i))
    else {
        return Err(Error::Usage(format!(
            "{id} has {}; there is no action item {n}",
            crate::plural::count(count, "action item", "action items")
        )));
    };
    let already = item.done.is_some();
    if !already {
        item.done = Some(book.now.to_string());
    }
    let item = item.clone();
    let shown = Tracked {
        incident: id.to_string(),
        n,
        action: item.action.clone(),
        owner: item.owner.clone(),
        due: item.due.clone(),
        done: item.done.clone(),
        overdue: false,
    };
    if already {
        return Ok((shown, true));
    }
    let entry = book.entry("action", format!("Action item {n} done: {}", item.action));
    if let Err(unrecorded) = book.store.update(&record, &[entry]) {
        let what = [format!("action item {n} done")];
        return Err(super::lifecycle::not_recorded(
            "incident.action",
            id,
            &what,
            unrecorded,
        ));
    }
    audit::record("incident.action", "ok", Some(&format!("{id} #{n} done")));
    Ok((shown, false))
}
