//! `env`: an environment variable is set, non-empty, or matches a regex (seed 004's
//! "environment variables updated" before a deployment, the `psql $DATABASE_URL` its
//! procedures run). The value may be a secret: no message ever shows it.

use super::http::Pattern;
use super::{Env, Probe};
use crate::model::{BoxFuture, Data, Outcome, Status};
use crate::values::Invalid;
use serde::{Deserialize, Serialize};

/// `env: { name: DATABASE_URL, matches: '^postgres(ql)?://' }`.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(try_from = "RawEnvSpec")]
pub struct EnvSpec {
    pub name: String,
    pub non_empty: bool,
    pub matches: Option<Pattern>,
}

/// The settings as written.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEnvSpec {
    /// The variable's name, as the shell writes it: `DATABASE_URL`.
    #[serde(deserialize_with = "crate::values::text::templated")]
    name: String,
    /// Set to the empty string is critical too.
    #[serde(default)]
    non_empty: bool,
    /// A regex the value must match (the value itself is never shown).
    matches: Option<Pattern>,
}

impl TryFrom<RawEnvSpec> for EnvSpec {
    type Error = Invalid;

    fn try_from(raw: RawEnvSpec) -> Result<Self, Invalid> {
        let bad = raw.name.is_empty()
            || raw.name.contains(['=', '\0'])
            || raw.name.chars().any(char::is_whitespace);
        if bad {
            return Err(Invalid(format!(
                "env: {:?} is not a variable name: write it as the shell does, e.g. DATABASE_URL",
                raw.name
            )));
        }
        Ok(EnvSpec {
            name: raw.name,
            non_empty: raw.non_empty,
            matches: raw.matches,
        })
    }
}

pub struct EnvCheck {
    pub spec: EnvSpec,
}

impl Probe for EnvCheck {
    fn kind(&self) -> &'static str {
        "env"
    }

    fn run<'a>(&'a self, _env: &'a Env) -> BoxFuture<'a, Outcome> {
        let outcome = judge(&self.spec, std::env::var_os(&self.spec.name));
        Box::pin(async move { outcome })
    }
}

/// The verdict on a variable's value; every message names the variable, none its value.
fn judge(spec: &EnvSpec, value: Option<std::ffi::OsString>) -> Outcome {
    let name = &spec.name;
    let critical = |message: String| Outcome::new(Status::Critical, message, Data::None);
    let Some(value) = value else {
        return critical(format!("{name} is not set"));
    };
    if spec.non_empty && value.is_empty() {
        return critical(format!("{name} is set but empty"));
    }
    let Some(pattern) = &spec.matches else {
        let what = if value.is_empty() {
            "set (empty)"
        } else {
            "set"
        };
        return Outcome::new(Status::Ok, format!("{name} is {what}"), Data::None);
    };
    let regex = pattern.0.as_str();
    match value.to_str() {
        Some(text) if pattern.0.is_match(text) => Outcome::new(
            Status::Ok,
            format!("{name} is set and matches '{regex}'"),
            Data::None,
        ),
        Some(_) => critical(format!(
            "{name} does not match '{regex}' (the value is not shown)"
        )),
        None => critical(format!(
            "{name} is not UTF-8 text, so it cannot match '{regex}' (the value is not shown)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> Result<EnvSpec, String> {
        serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn a_name_that_cannot_be_a_variable_is_refused() {
        for name in ["''", "'A=B'", "'A B'"] {
            let err = spec(&format!("{{ name: {name} }}")).unwrap_err();
            assert!(err.contains("is not a variable name"), "{err}");
        }
    }

    #[test]
    fn no_message_shows_the_value() {
        let spec =
            spec("{ name: DATABASE_URL, non_empty: true, matches: '^postgres://' }").unwrap();
        let secret = "mysql://admin:hunter2@db/app";
        let outcome = judge(&spec, Some(secret.into()));
        assert_eq!(outcome.status, Status::Critical);
        assert!(!outcome.message.contains("hunter2"), "{}", outcome.message);
        assert_eq!(
            outcome.message,
            "DATABASE_URL does not match '^postgres://' (the value is not shown)"
        );
    }
}
