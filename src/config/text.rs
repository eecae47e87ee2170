//! Strings in config and runbooks: `${VAR}` and `${VAR:-default}` are read from the
//! environment when the file is loaded. A value that came from the environment is a
//! secret: it is registered with `redact` and the field prints as `***`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A config string after substitution, remembering how to show it without secrets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text {
    value: String,
    shown: String,
}

impl Text {
    /// A literal with nothing substituted.
    pub fn plain(value: impl Into<String>) -> Self {
        let value = value.into();
        Text {
            shown: value.clone(),
            value,
        }
    }

    /// A value whose printable form is given (a word split out of a masked string).
    pub fn masked(value: impl Into<String>, shown: impl Into<String>) -> Self {
        Text {
            value: value.into(),
            shown: shown.into(),
        }
    }

    /// The real value, for use; never for printing.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The value with every environment-supplied part replaced by `***`.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Substitute `template` against the process environment, then `{{ var }}` against
    /// the runbook variables in scope (see `with_vars`).
    pub fn from_template(template: &str) -> Result<Self, String> {
        let text = substitute(template, |name| std::env::var(name).ok())?;
        VARS.with(|vars| match vars.borrow().as_ref() {
            Some(vars) => expand_vars(&text, vars),
            None => Ok(text),
        })
    }
}

thread_local! {
    static VARS: std::cell::RefCell<Option<std::collections::BTreeMap<String, Text>>> =
        const { std::cell::RefCell::new(None) };
}

/// Run `f` (a deserialization) with `{{ name }}` expanding to these runbook variables.
pub fn with_vars<T>(vars: &std::collections::BTreeMap<String, Text>, f: impl FnOnce() -> T) -> T {
    let previous = VARS.with(|v| v.replace(Some(vars.clone())));
    let result = f();
    VARS.with(|v| *v.borrow_mut() = previous);
    result
}

/// Expand `{{ name }}` in both the value and the shown form, so a secret variable stays
/// masked wherever it is used.
fn expand_vars(
    text: &Text,
    vars: &std::collections::BTreeMap<String, Text>,
) -> Result<Text, String> {
    if !text.value.contains("{{") {
        return Ok(text.clone());
    }
    let lookup = |name: &str| {
        vars.get(name).ok_or_else(|| {
            let known: Vec<&str> = vars.keys().map(String::as_str).collect();
            let hint = crate::error::did_you_mean(name, &known)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            format!(
                "undefined variable `{name}` in `{{{{ {name} }}}}` (defined: {}){hint}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )
        })
    };
    let mut value = String::new();
    let mut shown = String::new();
    let mut rest = text.value.as_str();
    let mut rest_shown = text.shown.as_str();
    while let Some(open) = rest.find("{{") {
        let Some(len) = rest[open..].find("}}") else {
            return Err(format!(
                "unclosed `{{{{` in {:?}: add the closing `}}}}`",
                text.shown
            ));
        };
        let name = rest[open + 2..open + len].trim();
        let var = lookup(name)?;
        value.push_str(&rest[..open]);
        value.push_str(&var.value);
        // The shown form has the same `{{ … }}` at a matching place unless a secret
        // contained braces; fall back to masking the whole value then.
        match rest_shown.find("{{").zip(rest_shown.find("}}")) {
            Some((o, c)) if c > o => {
                shown.push_str(&rest_shown[..o]);
                shown.push_str(&var.shown);
                rest_shown = &rest_shown[c + 2..];
            }
            _ => rest_shown = "",
        }
        rest = &rest[open + len + 2..];
    }
    value.push_str(rest);
    shown.push_str(rest_shown);
    Ok(Text { value, shown })
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let template = String::deserialize(deserializer)?;
        Text::from_template(&template).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.shown)
    }
}

/// Expand `${NAME}`, `${NAME:-default}` (unset or empty → default) and
/// `${NAME-default}` (unset → default); `$$` is a literal `$`. Any other `$` is kept.
pub fn substitute(template: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Text, String> {
    let mut value = String::with_capacity(template.len());
    let mut shown = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        value.push_str(&rest[..dollar]);
        shown.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            value.push('$');
            shown.push('$');
            rest = tail;
            continue;
        }
        let Some(body_and_tail) = after.strip_prefix('{') else {
            value.push('$');
            shown.push('$');
            rest = after;
            continue;
        };
        let close = body_and_tail
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in {template:?}: add the closing `}}`"))?;
        let body = &body_and_tail[..close];
        rest = &body_and_tail[close + 1..];

        let (name, default) = split_default(body);
        if !is_variable_name(name) {
            return Err(format!(
                "`${{{body}}}` is not a variable reference: names are letters, digits and `_`"
            ));
        }
        let found = lookup(name);
        let resolved = match (found, default) {
            (Some(v), Some((true, d))) if v.is_empty() => Resolved::Default(d.to_string()),
            (Some(v), _) => Resolved::Env(v),
            (None, Some((_, d))) => Resolved::Default(d.to_string()),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (referenced as `${{{name}}}`); \
                     set it or give a default with `${{{name}:-value}}`"
                ));
            }
        };
        match resolved {
            Resolved::Env(v) => {
                crate::redact::register(&v);
                value.push_str(&v);
                shown.push_str(crate::redact::MASK);
            }
            Resolved::Default(d) => {
                value.push_str(&d);
                shown.push_str(&d);
            }
        }
    }
    value.push_str(rest);
    shown.push_str(rest);
    Ok(Text { value, shown })
}

enum Resolved {
    Env(String),
    Default(String),
}

/// `NAME:-x` → (NAME, (true, x)); `NAME-x` → (NAME, (false, x)); `NAME` → (NAME, None).
fn split_default(body: &str) -> (&str, Option<(bool, &str)>) {
    if let Some(i) = body.find(":-") {
        return (&body[..i], Some((true, &body[i + 2..])));
    }
    if let Some(i) = body.find('-') {
        return (&body[..i], Some((false, &body[i + 1..])));
    }
    (body, None)
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// A plain string field that still takes `{{ var }}` (a set's name in a runbook step).
pub fn templated<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Text::deserialize(deserializer).map(|t| t.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "API_URL" => Some("https://api.example.test".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_and_masks_environment_values() {
        let t = substitute("${API_URL}/health", env).unwrap();
        assert_eq!(t.as_str(), "https://api.example.test/health");
        assert_eq!(t.shown(), "***/health");
    }

    #[test]
    fn defaults_are_not_secret() {
        let t = substitute("${NOPE:-http://localhost:8000}/health", env).unwrap();
        assert_eq!(t.as_str(), "http://localhost:8000/health");
        assert_eq!(t.shown(), "http://localhost:8000/health");
    }

    #[test]
    fn colon_dash_treats_empty_as_unset_and_dash_does_not() {
        assert_eq!(substitute("${EMPTY:-d}", env).unwrap().as_str(), "d");
        assert_eq!(substitute("${EMPTY-d}", env).unwrap().as_str(), "");
    }

    #[test]
    fn dollar_escapes_and_plain_dollars_are_kept() {
        let t = substitute("cost $5 and $$HOME and $HOME", env).unwrap();
        assert_eq!(t.as_str(), "cost $5 and $HOME and $HOME");
    }

    #[test]
    fn unset_variable_is_an_error_naming_it() {
        let err = substitute("${DATABASE_URL}", env).unwrap_err();
        assert!(err.contains("DATABASE_URL is not set"), "{err}");
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(
            substitute("${API_URL", env)
                .unwrap_err()
                .contains("unclosed")
        );
        assert!(
            substitute("${1X}", env)
                .unwrap_err()
                .contains("not a variable")
        );
    }
}
