//! Whole numbers in steps and config that may come from a variable: `retries: 3`, or
//! `retries: "{{ attempts }}"`, `port: "${DB_PORT:-5432}"`. The text is substituted first,
//! then read as a number in the type's range; anything else is an error at the value's own
//! line and column (a config error).

use super::{Error, Text};
use serde::{Deserialize, Deserializer};
use std::marker::PhantomData;

/// An integer type a setting can be: its range, for the message.
pub trait Whole: Sized + Copy + TryFrom<i64> + TryFrom<u64> {
    const MIN: i128;
    const MAX: i128;
}

macro_rules! whole {
    ($($t:ty),*) => { $( impl Whole for $t {
        const MIN: i128 = <$t>::MIN as i128;
        const MAX: i128 = <$t>::MAX as i128;
    } )* };
}
whole!(u8, u16, u32, u64, usize, i32, i64);

/// `text` (already substituted, `shown` as it may be printed) as a `T`.
pub fn parse_whole<T: Whole>(value: &str, shown: &str) -> Result<T, Error> {
    let bad = || Error::NotWhole {
        text: shown.to_string(),
        min: T::MIN,
        max: T::MAX,
    };
    let t = value.trim();
    if let Ok(n) = t.parse::<i64>() {
        return T::try_from(n).map_err(|_| bad());
    }
    if let Ok(n) = t.parse::<u64>() {
        return T::try_from(n).map_err(|_| bad());
    }
    Err(bad())
}

/// The value `T` as written in YAML (a number or text that becomes one).
pub struct WholeNumber<T>(pub T);

impl<'de, T: Whole> Deserialize<'de> for WholeNumber<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(PhantomData<T>);
        impl<T: Whole> serde::de::Visitor<'_> for Visitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a whole number, or text such as \"{{ var }}\" that becomes one")
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
                parse_whole(&v.to_string(), &v.to_string()).map_err(E::custom)
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
                parse_whole(&v.to_string(), &v.to_string()).map_err(E::custom)
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<T, E> {
                Err(E::custom(Error::NotWhole {
                    text: v.to_string(),
                    min: T::MIN,
                    max: T::MAX,
                }))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
                let text = Text::from_template(v).map_err(E::custom)?;
                parse_whole(text.as_str(), text.shown()).map_err(E::custom)
            }
        }
        deserializer
            .deserialize_any(Visitor(PhantomData))
            .map(WholeNumber)
    }
}

/// `deserialize_with` for a whole-number field that may come from a variable.
pub fn whole<'de, D: Deserializer<'de>, T: Whole>(deserializer: D) -> Result<T, D::Error> {
    WholeNumber::<T>::deserialize(deserializer).map(|w| w.0)
}

/// `deserialize_with` (with `#[serde(default)]`) for an optional whole-number field.
pub fn whole_opt<'de, D: Deserializer<'de>, T: Whole>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    Option::<WholeNumber<T>>::deserialize(deserializer).map(|o| o.map(|w| w.0))
}

/// Text as written: templated, then read by `parse` (durations, sizes, percentages).
pub fn templated<T>(
    template: &str,
    parse: impl FnOnce(&str) -> Result<T, Error>,
) -> Result<T, Error> {
    let text = Text::from_template(template)?;
    parse(text.as_str()).map_err(|e| match e {
        // Say the value the variable gave, masked if it is a secret.
        Error::NotDuration { why, .. } => Error::NotDuration {
            text: text.shown().to_string(),
            why,
        },
        Error::NotSize(_) => Error::NotSize(text.shown().to_string()),
        Error::NotPercent(_) => Error::NotPercent(text.shown().to_string()),
        other => other,
    })
}

/// The schema stand-in for a whole number that may be written as text.
#[allow(dead_code)] // exists only to describe the format
pub struct WholeOrText;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn read<T: Whole>(yaml: &str) -> Result<T, String> {
        #[derive(serde::Deserialize)]
        struct Doc<T: Whole> {
            #[serde(deserialize_with = "whole")]
            n: T,
        }
        let vars = BTreeMap::from([
            ("port".to_string(), Text::plain("8443")),
            ("word".to_string(), Text::plain("many")),
        ]);
        super::super::text::with_vars(&vars, || {
            super::super::parse_yaml::<Doc<T>>(std::path::Path::new("t.yaml"), yaml)
        })
        .map(|d| d.n)
        .map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_come_plain_or_from_variables_and_say_their_range() {
        assert_eq!(read::<u16>("n: 443"), Ok(443));
        assert_eq!(read::<u16>("n: \"{{ port }}\""), Ok(8443));
        assert_eq!(read::<u32>("n: \" 7 \""), Ok(7));
        assert_eq!(read::<i32>("n: -1"), Ok(-1));
        let err = read::<u16>("n: \"{{ word }}\"").unwrap_err();
        assert!(
            err.contains("t.yaml:1:4")
                && err.contains("\"many\" is not a whole number (0 to 65535)"),
            "{err}"
        );
        let err = read::<u16>("n: 70000").unwrap_err();
        assert!(
            err.contains("\"70000\" is not a whole number (0 to 65535)"),
            "{err}"
        );
        let err = read::<u32>("n: 2.5").unwrap_err();
        assert!(err.contains("\"2.5\" is not a whole number"), "{err}");
        let err = read::<u32>("n: \"{{ nope }}\"").unwrap_err();
        assert!(err.contains("undefined variable `nope`"), "{err}");
    }
}
