//! `len` of a JSON value: the entries of an array, the members of an object or the
//! characters of a string, held within bounds or graded.

use super::expect::Failure;
use super::json::{Verdict, shown};
use crate::model::Status;
use crate::probe::threshold::{self, Levels, Number};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;

/// `len: 3`, `len: { min: 1, max: 10 }` (critical outside) or `len: { warn: 100, crit:
/// 1000 }` (graded; `below: true` for "too few"): the entries of an array, the members of
/// an object or the characters of a string.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Len {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub levels: Option<Levels>,
}

impl<'de> Deserialize<'de> for Len {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LenVisitor)
    }
}

struct LenVisitor;

impl<'de> Visitor<'de> for LenVisitor {
    type Value = Len;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a length (`len: 3`) or { min, max } / { warn, crit }")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Len, E> {
        let exact = Some(v as f64);
        Ok(Len {
            min: exact,
            max: exact,
            levels: None,
        })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Len, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!(
                "len {v} is negative: a length is 0 or more"
            ))),
        }
    }

    /// `len: "{{ expected_nodes }}"`: a number from a runbook variable.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Len, E> {
        let Number(n) = Number::deserialize(de::value::StrDeserializer::<E>::new(v))?;
        whole("len", n)?;
        Ok(Len {
            min: Some(n),
            max: Some(n),
            levels: None,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Len, A::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            min: Option<Number>,
            max: Option<Number>,
            warn: Option<Number>,
            crit: Option<Number>,
            #[serde(default)]
            below: bool,
        }
        let raw = Raw::deserialize(de::value::MapAccessDeserializer::new(map))?;
        for (name, bound) in [("len min", raw.min), ("len max", raw.max)] {
            if let Some(Number(n)) = bound {
                whole(name, n)?;
            }
        }
        if let (Some(Number(min)), Some(Number(max))) = (raw.min, raw.max)
            && min > max
        {
            return Err(de::Error::custom(format!(
                "len min {} is above max {}: no length can hold",
                threshold::trim(min),
                threshold::trim(max)
            )));
        }
        let levels = match (raw.warn, raw.crit) {
            (None, None) if raw.below => {
                return Err(de::Error::custom(
                    "len `below: true` needs `warn` or `crit`",
                ));
            }
            (None, None) => None,
            (warn, crit) => {
                Some(threshold::levels_of(warn, crit, raw.below).map_err(de::Error::custom)?)
            }
        };
        if raw.min.is_none() && raw.max.is_none() && levels.is_none() {
            return Err(de::Error::custom(
                "len needs `min`, `max`, `warn` or `crit` (or a number: `len: 3`)",
            ));
        }
        Ok(Len {
            min: raw.min.map(|n| n.0),
            max: raw.max.map(|n| n.0),
            levels,
        })
    }
}

/// A length is a whole number, 0 or more.
fn whole<E: de::Error>(name: &str, n: f64) -> Result<(), E> {
    if n < 0.0 || n.fract() != 0.0 {
        return Err(E::custom(format!(
            "{name} {} is not a length: write a whole number, 0 or more",
            threshold::trim(n)
        )));
    }
    Ok(())
}

impl Serialize for Len {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let levels = self.levels.unwrap_or_default();
        let mut map = serializer.serialize_map(None)?;
        for (name, n) in [
            ("min", self.min),
            ("max", self.max),
            ("warn", levels.warn),
            ("crit", levels.crit),
        ] {
            if let Some(n) = n {
                map.serialize_entry(name, &written(n))?;
            }
        }
        if levels.below {
            map.serialize_entry("below", &true)?;
        }
        map.end()
    }
}

/// A number as it would be written: `3`, not `3.0`.
pub(super) use crate::values::written;

impl Len {
    /// Judge the length of `found`, the value at `pointer`.
    pub(super) fn judge(&self, pointer: &str, found: &Value) -> Verdict {
        let (count, noun) = match found {
            Value::Array(items) => (items.len(), "entries"),
            Value::Object(members) => (members.len(), "members"),
            Value::String(text) => (text.chars().count(), "characters"),
            _ => {
                return Err(Failure(format!(
                    "{pointer} = {}, expected an array, object or string to measure (len)",
                    shown(found)
                )));
            }
        };
        let has = format!("{pointer} has {count} {noun}");
        let n = count as f64;
        let expected = match (self.min, self.max) {
            (Some(min), Some(max)) if min == max && n != min => {
                Some(format!("exactly {}", threshold::trim(min)))
            }
            (Some(min), _) if n < min => Some(format!("at least {}", threshold::trim(min))),
            (_, Some(max)) if n > max => Some(format!("at most {}", threshold::trim(max))),
            _ => None,
        };
        if let Some(expected) = expected {
            return Err(Failure(format!("{has}, expected {expected}")));
        }
        let Some(levels) = self.levels else {
            return Ok(None);
        };
        match threshold::grade(n, levels, "") {
            (Status::Critical, crossed) => {
                Err(Failure(format!("{has}{}", threshold::note(crossed))))
            }
            (Status::Warning, crossed) => Ok(Some(format!("{has}{}", threshold::note(crossed)))),
            _ => Ok(None),
        }
    }
}
