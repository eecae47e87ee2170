//! Who is brought in, per severity (config `incident.escalation`): the contacts by incident
//! type, and in or out of business hours. The chosen list replaces the severity's own
//! `escalation` for everything that reads it (escalate, what is overdue, the messages).

use super::{Error, Escalation, IncidentConfig, Severity};
use crate::error::ConfigError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    /// Who is brought in, and after how long (in business hours, when they are set).
    #[serde(default)]
    pub contacts: Vec<Escalation>,
    /// Incident type (`declare --type`) → its own contacts, at any hour.
    #[serde(default)]
    pub by_type: BTreeMap<String, Vec<Escalation>>,
    /// When `contacts` apply; outside them `off_hours` do.
    #[serde(default)]
    pub business_hours: Option<BusinessHours>,
    #[serde(default)]
    pub off_hours: Option<Vec<Escalation>>,
}

/// `{ days: Mon-Fri, from: "09:00", to: "18:00", tz: Europe/Berlin }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    pub days: Days,
    pub from: ClockTime,
    pub to: ClockTime,
    #[serde(default)]
    pub tz: Zone,
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Weekdays as written (`Mon-Fri`, `Mon,Wed,Fri`, `Sat-Sun`), Monday first.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Days {
    text: String,
    on: [bool; 7],
}

fn weekday(name: &str) -> Result<usize, String> {
    WEEKDAYS
        .iter()
        .position(|d| d.eq_ignore_ascii_case(name.trim()))
        .ok_or_else(|| {
            format!(
                "{:?} is not a weekday (one of {})",
                name.trim(),
                WEEKDAYS.join(", ")
            )
        })
}

impl TryFrom<String> for Days {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let mut on = [false; 7];
        for part in text.split(',') {
            match part.split_once('-') {
                Some((from, to)) => {
                    let (from, to) = (weekday(from)?, weekday(to)?);
                    if from > to {
                        return Err(format!(
                            "days {:?}: {} comes after {} (a range runs Monday to Sunday)",
                            text, WEEKDAYS[from], WEEKDAYS[to]
                        ));
                    }
                    on[from..=to].iter_mut().for_each(|d| *d = true);
                }
                None => on[weekday(part)?] = true,
            }
        }
        Ok(Days { text, on })
    }
}

impl From<Days> for String {
    fn from(days: Days) -> String {
        days.text
    }
}

/// A time of day, `HH:MM`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(try_from = "String", into = "String")]
pub struct ClockTime(jiff::civil::Time);

impl TryFrom<String> for ClockTime {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a time of day HH:MM (24-hour)");
        let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
        let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        jiff::civil::Time::new(h, m, 0, 0)
            .map(ClockTime)
            .map_err(|_| bad())
    }
}

impl From<ClockTime> for String {
    fn from(time: ClockTime) -> String {
        time.0.strftime("%H:%M").to_string()
    }
}

/// An IANA time zone name (default UTC).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Zone {
    name: String,
    zone: jiff::tz::TimeZone,
}

impl Default for Zone {
    fn default() -> Self {
        Zone {
            name: "UTC".to_string(),
            zone: jiff::tz::TimeZone::UTC,
        }
    }
}

impl TryFrom<String> for Zone {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        let zone = jiff::tz::TimeZone::get(&name)
            .map_err(|e| format!("{name:?} is not a known time zone ({e})"))?;
        Ok(Zone { name, zone })
    }
}

impl From<Zone> for String {
    fn from(zone: Zone) -> String {
        zone.name
    }
}

impl BusinessHours {
    /// Whether `at` falls inside these hours (from inclusive, to exclusive).
    pub fn contains(&self, at: jiff::Timestamp) -> bool {
        let local = at.to_zoned_datetime(self.zone().clone());
        let day = local.weekday().to_monday_zero_offset() as usize;
        let time = local.time();
        self.days.on[day] && self.from.0 <= time && time < self.to.0
    }

    fn zone(&self) -> &jiff::tz::TimeZone {
        &self.tz.zone
    }
}

impl IncidentConfig {
    /// Severity `name` with the escalation that applies to an incident of type `kind` at
    /// `at`, and why when it is not the plain list (`type security`, `off-hours`).
    pub fn routed(
        &self,
        name: &str,
        kind: Option<&str>,
        at: jiff::Timestamp,
    ) -> Result<(Severity, Option<String>), Error> {
        let mut severity = self.severity(name)?;
        let Some(routing) = self.escalation.get(&severity.name) else {
            return Ok((severity, None));
        };
        if let Some((kind, chain)) = kind.and_then(|k| routing.by_type.get_key_value(k)) {
            severity.escalation = chain.clone();
            return Ok((severity, Some(format!("type {kind}"))));
        }
        match (&routing.business_hours, &routing.off_hours) {
            (Some(hours), Some(off)) if !hours.contains(at) => {
                severity.escalation = off.clone();
                Ok((severity, Some("off-hours".to_string())))
            }
            _ => {
                severity.escalation = routing.contacts.clone();
                Ok((severity, None))
            }
        }
    }

    /// The escalation routes against the severity scheme: each names a known severity,
    /// and business hours come with off-hours contacts (one without the other would
    /// change nothing). A config error names `file` and the key.
    pub fn check_routing(&self, file: &Path) -> Result<(), Error> {
        let names: Vec<String> = self.severities().into_iter().map(|s| s.name).collect();
        for (name, routing) in &self.escalation {
            let at = format!("incident.escalation.{name}");
            let fail = |why: String| Err(Error::Config(ConfigError::whole_file(file, why)));
            if !names.iter().any(|n| n == name) {
                let known: Vec<&str> = names.iter().map(String::as_str).collect();
                let hint = crate::error::hint(name, &known);
                return fail(format!(
                    "{at}: no such severity (known: {}){hint}",
                    known.join(", ")
                ));
            }
            match (&routing.business_hours, &routing.off_hours) {
                (Some(_), None) => {
                    return fail(format!(
                        "{at}: business_hours without off_hours contacts changes nothing"
                    ));
                }
                (None, Some(_)) => {
                    return fail(format!(
                        "{at}: off_hours contacts need business_hours to say when they apply"
                    ));
                }
                (Some(hours), Some(_)) if hours.from >= hours.to => {
                    return fail(format!(
                        "{at}.business_hours: from {} is not before to {}",
                        String::from(hours.from),
                        String::from(hours.to)
                    ));
                }
                _ => {}
            }
            if routing.contacts.is_empty() {
                return fail(format!("{at}.contacts: empty (name at least one contact)"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_hours_hold_on_their_days_from_their_start_until_their_end() {
        let hours = BusinessHours {
            days: Days::try_from("Mon-Fri".to_string()).expect("days"),
            from: ClockTime::try_from("09:00".to_string()).expect("from"),
            to: ClockTime::try_from("18:00".to_string()).expect("to"),
            tz: Zone::try_from("Europe/Berlin".to_string()).expect("zone"),
        };
        let at = |t: &str| t.parse::<jiff::Timestamp>().expect("time");
        // 2026-01-12 is a Monday; Berlin is UTC+1 in January.
        assert!(hours.contains(at("2026-01-12T08:00:00Z")));
        assert!(!hours.contains(at("2026-01-12T07:59:00Z")));
        assert!(!hours.contains(at("2026-01-12T17:00:00Z")));
        assert!(!hours.contains(at("2026-01-10T12:00:00Z")), "a Saturday");
        assert!(Days::try_from("Fri-Mon".to_string()).is_err());
        assert!(Days::try_from("Mon,Funday".to_string()).is_err());
        assert!(ClockTime::try_from("25:00".to_string()).is_err());
        assert!(ClockTime::try_from("9".to_string()).is_err());
        assert!(Zone::try_from("Mars/Olympus".to_string()).is_err());
    }
}
