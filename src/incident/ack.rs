//! `incident ack`: an incident acknowledged once, by whom and when (the first milestone of
//! TTA/TTM/TTR); a second ack changes nothing and says who was first.

use super::lifecycle::not_recorded;
use super::{Error, Incident, Incidents};
use crate::logging::audit;

/// What `incident ack` did.
pub enum Acknowledged {
    /// Recorded now.
    Now(Incident),
    /// It already was (the record says when and by whom); nothing changed.
    Already(Incident),
}

/// Acknowledge incident `id` (once: a second time changes nothing and says so). `by`:
/// who (default: the user running it).
pub fn acknowledge(
    book: &Incidents<'_>,
    id: &str,
    by: Option<&str>,
) -> Result<Acknowledged, Error> {
    let by = by.map_or_else(super::author, str::to_string);
    if by.trim().is_empty() {
        return Err(Error::Usage("--by is empty".to_string()));
    }
    let _held = book.lock(id)?;
    let mut record = book.load(id)?;
    if record.acknowledged.is_some() {
        return Ok(Acknowledged::Already(record));
    }
    record.acknowledged = Some(book.now.to_string());
    record.acknowledged_by = Some(by.clone());
    let tta = super::human(super::seconds_between(&record.declared, book.now));
    let entry = book.entry("acknowledged", format!("Acknowledged by {by} (TTA {tta})"));
    if let Err(unrecorded) = book.store.update(&record, &[entry]) {
        let what = ["the acknowledgement".to_string()];
        return Err(not_recorded("incident.ack", id, &what, unrecorded));
    }
    audit::record("incident.ack", "ok", Some(&format!("{id} by {by}")));
    Ok(Acknowledged::Now(record))
}
