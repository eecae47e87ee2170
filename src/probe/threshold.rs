//! Grading a number against warn/crit levels. Strict, as the seeds write it ("> 75 %"):
//! a value equal to a level does not trip it. `below` flips the direction for numbers
//! where less is worse (free workers, days left).

use crate::model::Status;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Levels {
    pub warn: Option<f64>,
    pub crit: Option<f64>,
    pub below: bool,
}

impl Levels {
    pub fn new(warn: f64, crit: f64) -> Self {
        Levels {
            warn: Some(warn),
            crit: Some(crit),
            below: false,
        }
    }
}

/// A step's percent levels, one alone a one-level threshold.
impl<const W: u8, const C: u8> From<&crate::values::PercentLevels<W, C>> for Levels {
    fn from(p: &crate::values::PercentLevels<W, C>) -> Levels {
        Levels {
            warn: p.warn.map(|w| w.0),
            crit: p.crit.map(|c| c.0),
            below: false,
        }
    }
}

/// `{ warn: 100, crit: 1000 }` as written in runbooks: numbers (or `"1%"`), higher is
/// worse unless `below: true`; `crit` alone is a one-level threshold.
impl<'de> serde::Deserialize<'de> for Levels {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            warn: Option<Number>,
            crit: Option<Number>,
            #[serde(default)]
            below: bool,
        }
        let raw = Raw::deserialize(deserializer)?;
        levels_of(raw.warn, raw.crit, raw.below).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Levels {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        // As written: `crit: 1`, not `crit: 1.0`.
        if let Some(warn) = self.warn {
            map.serialize_entry("warn", &crate::values::written(warn))?;
        }
        if let Some(crit) = self.crit {
            map.serialize_entry("crit", &crate::values::written(crit))?;
        }
        if self.below {
            map.serialize_entry("below", &true)?;
        }
        map.end()
    }
}

/// Check a warn/crit pair: at least one level, and warn on the right side of crit.
/// [`levels_from`] for deserialized (possibly templated) numbers.
pub fn levels_of(
    warn: Option<Number>,
    crit: Option<Number>,
    below: bool,
) -> Result<Levels, super::Error> {
    levels_from(warn.map(|n| n.0), crit.map(|n| n.0), below)
}

pub fn levels_from(
    warn: Option<f64>,
    crit: Option<f64>,
    below: bool,
) -> Result<Levels, super::Error> {
    match (warn, crit) {
        (None, None) => return Err(super::Error::NoLevels),
        (Some(w), Some(c)) if !below && w > c => {
            return Err(super::Error::WarnAboveCrit { warn: w, crit: c });
        }
        (Some(w), Some(c)) if below && w < c => {
            return Err(super::Error::WarnBelowCrit { warn: w, crit: c });
        }
        _ => {}
    }
    Ok(Levels { warn, crit, below })
}

/// A number written plainly or as a string with an optional `%` (`1%`, `"2.5"`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Number(pub f64);

impl<'de> serde::Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) if n.is_finite() => Ok(Number(n)),
            Raw::Number(n) => Err(serde::de::Error::custom(format!(
                "{n} is not a usable number"
            ))),
            Raw::Text(t) => {
                // A quoted number may come from a variable: `warn: "{{ pool_warn }}"`.
                let t = crate::values::Text::from_template(&t)
                    .map_err(serde::de::Error::custom)?
                    .as_str()
                    .to_string();
                let body = t.trim().strip_suffix('%').unwrap_or(t.trim()).trim();
                body.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .map(Number)
                    .ok_or_else(|| serde::de::Error::custom(format!("{t:?} is not a number")))
            }
        }
    }
}

/// Which level a value crossed: `op` is `>` (or `<` with `below`), `which` is warn or crit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crossed {
    pub op: &'static str,
    pub which: Which,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Warn,
    Crit,
}

impl Crossed {
    /// `> crit 90%`, with the level written by the caller (a percentage, a duration…).
    pub fn describe(&self, level: impl std::fmt::Display) -> String {
        let which = match self.which {
            Which::Warn => "warn",
            Which::Crit => "crit",
        };
        format!("{} {which} {level}", self.op)
    }
}

impl serde::Serialize for Number {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&crate::values::written(self.0), serializer)
    }
}

/// The status of `value`, and the level it crossed, if any.
pub fn grade_by(value: f64, levels: Levels) -> (Status, Option<Crossed>) {
    let (op, crossed): (&'static str, fn(f64, f64) -> bool) = if levels.below {
        ("<", |v, level| v < level)
    } else {
        (">", |v, level| v > level)
    };
    for (level, status, which) in [
        (levels.crit, Status::Critical, Which::Crit),
        (levels.warn, Status::Warning, Which::Warn),
    ] {
        if let Some(level) = level
            && crossed(value, level)
        {
            return (status, Some(Crossed { op, which }));
        }
    }
    (Status::Ok, None)
}

/// The status of `value`, and the level it crossed written with `unit` (`"> crit 90%"`).
pub fn grade(value: f64, levels: Levels, unit: &str) -> (Status, Option<String>) {
    let (status, crossed) = grade_by(value, levels);
    let described = crossed.map(|c| {
        let level = match c.which {
            Which::Warn => levels.warn,
            Which::Crit => levels.crit,
        };
        c.describe(format!("{}{unit}", trim(level.unwrap_or_default())))
    });
    (status, described)
}

/// ` (> warn 75%)` after a reading, or nothing when no level was crossed.
pub fn note(crossed: Option<String>) -> String {
    crossed.map(|c| format!(" ({c})")).unwrap_or_default()
}

/// `90` rather than `90.0`, `75.5` as is.
pub fn trim(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_strict_at_the_edges() {
        let levels = Levels::new(75.0, 90.0);
        assert_eq!(grade(75.0, levels, "%").0, Status::Ok);
        assert_eq!(
            grade(75.1, levels, "%"),
            (Status::Warning, Some("> warn 75%".into()))
        );
        assert_eq!(grade(90.0, levels, "%").0, Status::Warning);
        assert_eq!(
            grade(90.1, levels, "%"),
            (Status::Critical, Some("> crit 90%".into()))
        );
    }

    #[test]
    fn below_makes_lower_worse() {
        let levels = Levels {
            warn: Some(30.0),
            crit: Some(7.0),
            below: true,
        };
        assert_eq!(grade(30.0, levels, " days").0, Status::Ok);
        assert_eq!(grade(10.0, levels, " days").0, Status::Warning);
        assert_eq!(
            grade(6.5, levels, " days"),
            (Status::Critical, Some("< crit 7 days".into()))
        );
    }

    #[test]
    fn crit_alone_is_one_level() {
        let levels = Levels {
            warn: None,
            crit: Some(1000.0),
            below: false,
        };
        assert_eq!(grade(999.0, levels, "").0, Status::Ok);
        assert_eq!(grade(1001.0, levels, "").0, Status::Critical);
    }
}
