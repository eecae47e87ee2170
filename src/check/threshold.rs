//! Grading a number against warn/crit levels. Strict, as the seeds write it ("> 75 %"):
//! a value equal to a level does not trip it. `below` flips the direction for numbers
//! where less is worse (free workers, days left).

use super::Status;

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

/// The status of `value`, and which level it crossed (`"> crit 90%"`) for the message.
pub fn grade(value: f64, levels: Levels, unit: &str) -> (Status, Option<String>) {
    let (op, crossed) = if levels.below {
        (
            "<",
            (|v: f64, level: f64| v < level) as fn(f64, f64) -> bool,
        )
    } else {
        (
            ">",
            (|v: f64, level: f64| v > level) as fn(f64, f64) -> bool,
        )
    };
    if let Some(crit) = levels.crit
        && crossed(value, crit)
    {
        return (
            Status::Critical,
            Some(format!("{op} crit {}{unit}", trim(crit))),
        );
    }
    if let Some(warn) = levels.warn
        && crossed(value, warn)
    {
        return (
            Status::Warning,
            Some(format!("{op} warn {}{unit}", trim(warn))),
        );
    }
    (Status::Ok, None)
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
