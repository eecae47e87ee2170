//! One idea, one file: templated text. Strings in config and runbooks: `${VAR}` and
//! `${VAR:-default}` are read from the environment when the file is loaded. A value is a
//! secret by the contract's rule (`redact`): a variable whose name looks secret
//! (`API_TOKEN`, `DB_PASSWORD`), a URL-shaped value with user-info, a URL's user-info or
//! credential-like query value wherever it is written, a credential header's value, a
//! webhook URL. A secret is registered with `redact` and prints as `***`; everything else
//! prints as it is.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A template that cannot be expanded or split; what it says names the reference or the
/// template at fault.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    #[error(
        "undefined variable `{name}` in `{{{{ {name} }}}}` (defined: {}){}",
        defined(.known),
        close_to(.name, .known)
    )]
    Undefined { name: String, known: Vec<String> },
    #[error("unclosed `{{{{` in {0:?}: add the closing `}}}}`")]
    UnclosedBraces(String),
    #[error("a variable's value holds a NUL byte")]
    Nul,
    #[error("unclosed `${{` in {0:?}: add the closing `}}`")]
    UnclosedDollar(String),
    #[error("`${{{0}}}` is not a variable reference: names are letters, digits and `_`")]
    NotReference(String),
    #[error("{}", unset_message(.0))]
    Unset(String),
    #[error("unclosed {quote} in {template:?}: check its quotes")]
    UnclosedQuote { quote: char, template: String },
}

/// `; did you mean `x`?` when a variable in scope is close to `name`.
fn close_to(name: &str, known: &[String]) -> String {
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    crate::error::did_you_mean(name, &known)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}

/// The variables in scope, for an undefined one's message.
fn defined(known: &[String]) -> String {
    if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    }
}

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
    pub fn from_template(template: &str) -> Result<Self, Error> {
        Self::expand(template, false)
    }

    /// As `from_template`, for a `shell: true` script: each `{{ var }}` value is inserted
    /// shell-quoted, so it reaches the script as one word whatever it holds.
    pub fn from_shell_template(template: &str) -> Result<Self, Error> {
        Self::expand(template, true)
    }

    fn expand(template: &str, quote: bool) -> Result<Self, Error> {
        let text = substitute(template, |name| std::env::var(name).ok())?;
        let text = VARS.with(|vars| match vars.borrow().as_ref() {
            Some(vars) => expand_vars(&text, vars, quote),
            None => Ok(text),
        })?;
        Ok(text.mask_urls())
    }

    /// The whole value is a secret (a webhook URL, a password field).
    pub fn into_secret(self) -> Self {
        crate::redact::register(&self.value);
        Text {
            shown: crate::redact::MASK.to_string(),
            value: self.value,
        }
    }

    /// A credential header's value: secret, except a leading authentication scheme
    /// (`Bearer ***`, `Basic ***`), which says what kind of credential was sent.
    pub fn into_credential(self) -> Self {
        const SCHEMES: [&str; 7] = [
            "basic",
            "bearer",
            "digest",
            "token",
            "negotiate",
            "bot",
            "apikey",
        ];
        if let Some((scheme, rest)) = self.value.split_once(' ')
            && SCHEMES.contains(&scheme.to_ascii_lowercase().as_str())
            && !rest.trim().is_empty()
        {
            crate::redact::register(rest.trim());
            return Text {
                shown: format!("{scheme} {}", crate::redact::MASK),
                value: self.value,
            };
        }
        self.into_secret()
    }

    /// Mask the user-info and credential-like query values of any URL in the value.
    fn mask_urls(mut self) -> Self {
        if !self.value.contains("://") {
            return self;
        }
        for part in crate::redact::mask_url_parts(&self.value).1 {
            crate::redact::register(&part);
        }
        self.shown = crate::redact::mask_url_parts(&self.shown).0;
        self
    }
}

/// `deserialize_with` for a field whose whole value is a secret (a webhook URL).
pub fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
    Text::deserialize(deserializer).map(Text::into_secret)
}

/// `deserialize_with` for HTTP headers: the value of `Authorization`, `Cookie` and any
/// header named like a key, token, secret or session is a secret; others print as written.
pub fn headers<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<std::collections::BTreeMap<String, Text>, D::Error> {
    let headers = std::collections::BTreeMap::<String, Text>::deserialize(deserializer)?;
    Ok(headers
        .into_iter()
        .map(|(name, value)| {
            let value = if crate::redact::is_credential_name(&name) {
                value.into_credential()
            } else {
                value
            };
            (name, value)
        })
        .collect())
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
    quote: bool,
) -> Result<Text, Error> {
    if !text.value.contains("{{") {
        return Ok(text.clone());
    }
    let lookup = |name: &str| {
        vars.get(name).ok_or_else(|| Error::Undefined {
            name: name.to_string(),
            known: vars.keys().cloned().collect(),
        })
    };
    let mut value = String::new();
    let mut shown = String::new();
    let mut rest = text.value.as_str();
    let mut rest_shown = text.shown.as_str();
    while let Some(open) = rest.find("{{") {
        let Some(len) = rest[open..].find("}}") else {
            return Err(Error::UnclosedBraces(text.shown.clone()));
        };
        let name = rest[open + 2..open + len].trim();
        let var = lookup(name)?;
        // A variable named like a password or token is a secret field, whatever it holds.
        let var = if crate::redact::is_credential_name(name) && !var.value.is_empty() {
            var.clone().into_secret()
        } else {
            var.clone()
        };
        let var = if quote { shell_quoted(&var)? } else { var };
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

/// A variable's value quoted for `sh` (`O'Brien` → `'O'"'"'Brien'`).
fn shell_quoted(var: &Text) -> Result<Text, Error> {
    let quote = |s: &str| {
        shlex::try_quote(s)
            .map(|q| q.into_owned())
            .map_err(|_| Error::Nul)
    };
    Ok(Text {
        value: quote(&var.value)?,
        shown: if var.shown == crate::redact::MASK {
            var.shown.clone()
        } else {
            quote(&var.shown)?
        },
    })
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
pub fn substitute(template: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Text, Error> {
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
            .ok_or_else(|| Error::UnclosedDollar(template.to_string()))?;
        let body = &body_and_tail[..close];
        rest = &body_and_tail[close + 1..];

        let (name, default) = split_default(body);
        if !is_variable_name(name) {
            return Err(Error::NotReference(body.to_string()));
        }
        let found = lookup(name);
        let resolved = match (found, default) {
            (Some(v), Some((true, d))) if v.is_empty() => Resolved::Default(d.to_string()),
            (Some(v), _) => Resolved::Env(v),
            (None, Some((_, d))) => Resolved::Default(d.to_string()),
            (None, None) if lenient::record(name) => Resolved::Unset(name.to_string()),
            (None, None) => return Err(Error::Unset(name.to_string())),
        };
        match resolved {
            Resolved::Env(v)
                if crate::redact::is_secret_name(name) || crate::redact::has_url_userinfo(&v) =>
            {
                crate::redact::register(&v);
                for part in crate::redact::mask_url_parts(&v).1 {
                    crate::redact::register(&part);
                }
                value.push_str(&v);
                shown.push_str(crate::redact::MASK);
            }
            Resolved::Env(v) => {
                value.push_str(&v);
                shown.push_str(&v);
            }
            Resolved::Unset(name) => shown.push_str(&format!("${{{name}}}")),
            Resolved::Default(d) => {
                value.push_str(&d);
                shown.push_str(&d);
            }
        }
    }
    value.push_str(rest);
    shown.push_str(rest);
    Ok(Text { value, shown }.mask_urls())
}

enum Resolved {
    Env(String),
    Default(String),
    /// Not set, while loading the config leniently: blocks the commands using it.
    Unset(String),
}

/// What an unset variable without a default says.
pub fn unset_message(name: &str) -> String {
    format!(
        "environment variable {name} is not set (referenced as `${{{name}}}`); \
         set it or give a default with `${{{name}:-value}}`"
    )
}

/// Loading the config: an unset variable does not fail the whole file; it is recorded,
/// substituted as empty, and blocks only the commands that use its section.
pub mod lenient {
    use std::cell::RefCell;

    thread_local! {
        static UNSET: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
    }

    /// Run `f` leniently; also returns the unset variables it met, in order, once each.
    pub fn run<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
        let previous = UNSET.with(|u| u.replace(Some(Vec::new())));
        let result = f();
        let unset = UNSET.with(|u| u.replace(previous)).unwrap_or_default();
        (result, unset)
    }

    /// Record `name` when lenient; false when unset variables are errors.
    pub(super) fn record(name: &str) -> bool {
        UNSET.with(|u| match u.borrow_mut().as_mut() {
            Some(unset) => {
                if !unset.iter().any(|n| n == name) {
                    unset.push(name.to_string());
                }
                true
            }
            None => false,
        })
    }
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

/// Split a command template into words as a POSIX shell would (quotes, backslashes,
/// blanks), BEFORE anything is substituted: `{{ var }}` and `${VAR}` references are kept
/// whole inside their word, so a value is later substituted into exactly one word.
/// Quote removal happens here; the words are then expanded one by one.
pub fn split_words(template: &str) -> Result<Vec<String>, Error> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = template.char_indices().peekable();
    // Copy a `{{ … }}` or `${ … }` reference starting at byte `i` whole; its length.
    let reference = |i: usize| -> Option<usize> {
        let rest = &template[i..];
        if rest.starts_with("{{") {
            rest.find("}}").map(|end| end + 2)
        } else if rest.starts_with("${") {
            rest.find('}').map(|end| end + 1)
        } else {
            None
        }
    };
    let mut skip_to = 0;
    while let Some((i, c)) = chars.next() {
        if i < skip_to {
            continue;
        }
        if let Some(len) = reference(i) {
            word.push_str(&template[i..i + len]);
            in_word = true;
            skip_to = i + len;
            continue;
        }
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                let close = template[i + 1..]
                    .find('\'')
                    .ok_or_else(|| Error::UnclosedQuote {
                        quote: '\'',
                        template: template.to_string(),
                    })?;
                word.push_str(&template[i + 1..i + 1 + close]);
                skip_to = i + 1 + close + 1;
            }
            '"' => {
                in_word = true;
                let mut closed = false;
                let mut j = i + 1;
                while j < template.len() {
                    if let Some(len) = reference(j) {
                        word.push_str(&template[j..j + len]);
                        j += len;
                        continue;
                    }
                    let Some(d) = template[j..].chars().next() else {
                        break;
                    };
                    match d {
                        '"' => {
                            closed = true;
                            j += 1;
                            break;
                        }
                        '\\' => {
                            let next = template[j + 1..].chars().next();
                            match next {
                                Some(n @ ('"' | '\\' | '$' | '`')) => {
                                    word.push(n);
                                    j += 2;
                                }
                                Some('\n') => j += 2,
                                _ => {
                                    word.push('\\');
                                    j += 1;
                                }
                            }
                        }
                        _ => {
                            word.push(d);
                            j += d.len_utf8();
                        }
                    }
                }
                if !closed {
                    return Err(Error::UnclosedQuote {
                        quote: '"',
                        template: template.to_string(),
                    });
                }
                skip_to = j;
            }
            '\\' => {
                in_word = true;
                match chars.peek() {
                    Some(&(_, '\n')) => {
                        chars.next();
                    }
                    Some(&(_, n)) => {
                        word.push(n);
                        chars.next();
                    }
                    None => word.push('\\'),
                }
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Whether `template` is exactly one `{{ var }}` or `${VAR…}` reference (blanks around it
/// allowed): a command written as a whole variable, whose value is a command line.
pub fn is_one_reference(template: &str) -> bool {
    let t = template.trim();
    (t.starts_with("{{") && t.ends_with("}}") && t.find("}}") == Some(t.len() - 2))
        || (t.starts_with("${") && t.find('}') == Some(t.len() - 1))
}

/// Show words as a command line: a word that would not read as one word is quoted.
pub fn join_shown<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    words
        .into_iter()
        .map(|w| {
            let plain = !w.is_empty()
                && !w.chars().any(|c| {
                    c.is_whitespace()
                        || matches!(
                            c,
                            '\'' | '"' | '\\' | '`' | ';' | '&' | '|' | '<' | '>' | '(' | ')'
                        )
                });
            if plain {
                w.to_string()
            } else {
                shlex::try_quote(w).map_or_else(|_| format!("{w:?}"), |q| q.into_owned())
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A plain string field that still takes `{{ var }}` (a set's name in a runbook step).
pub fn templated<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Text::deserialize(deserializer).map(|t| t.as_str().to_string())
}

/// `deserialize_with` (with `#[serde(default)]`) for an optional plain string field that
/// still takes `{{ var }}` (a log match's regex, a file's owner).
pub fn templated_opt<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Option::<Text>::deserialize(deserializer).map(|t| t.map(|t| t.as_str().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "API_URL" => Some("https://api.example.test".into()),
            "API_TOKEN" => Some("tok-\"q\\-<&>".into()),
            "DATABASE_URL" => Some("postgres://app:hunter22@db:5432/app".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn only_secret_environment_values_are_masked() {
        let t = substitute("${API_URL}/health", env).unwrap();
        assert_eq!(t.as_str(), "https://api.example.test/health");
        assert_eq!(t.shown(), "https://api.example.test/health");
        let t = substitute("Bearer ${API_TOKEN}", env).unwrap();
        assert_eq!(t.as_str(), "Bearer tok-\"q\\-<&>");
        assert_eq!(t.shown(), "Bearer ***");
        assert!(crate::redact::is_registered("tok-\"q\\-<&>"));
        // A URL-shaped value with user-info is secret whatever its variable is called.
        let t = substitute("${DATABASE_URL}", env).unwrap();
        assert_eq!(t.shown(), "***");
        assert!(crate::redact::is_registered("hunter22"));
    }

    #[test]
    fn url_secrets_are_masked_where_they_are_written() {
        let t = substitute("https://bot:literal-pw@h.test/x?token=abcd&page=2", env).unwrap();
        assert_eq!(t.shown(), "https://***@h.test/x?token=***&page=2");
        assert!(crate::redact::is_registered("literal-pw"));
        assert!(crate::redact::is_registered("abcd"));
    }

    #[test]
    fn credential_headers_keep_their_scheme() {
        let t = Text::plain("Basic dXNlcjpwdw==").into_credential();
        assert_eq!(t.shown(), "Basic ***");
        assert_eq!(t.as_str(), "Basic dXNlcjpwdw==");
        assert_eq!(Text::plain("k-123456").into_credential().shown(), "***");
    }

    #[test]
    fn words_are_split_before_substitution() {
        assert_eq!(
            split_words(r#"cat {{ file }} "a b" 'c d' e\ f "{{ x }}/y" ${HOME:-/a b}"#).unwrap(),
            [
                "cat",
                "{{ file }}",
                "a b",
                "c d",
                "e f",
                "{{ x }}/y",
                "${HOME:-/a b}"
            ]
        );
        assert_eq!(
            split_words(r#"a "q\"uote" ''"#).unwrap(),
            ["a", "q\"uote", ""]
        );
        assert!(
            split_words("a 'open")
                .unwrap_err()
                .to_string()
                .contains("unclosed")
        );
        assert!(is_one_reference(" {{ pull }} "));
        assert!(!is_one_reference("{{ a }} {{ b }}"));
        assert_eq!(
            join_shown(["cat", "/x /etc/shadow", "***"]),
            "cat '/x /etc/shadow' ***"
        );
    }

    #[test]
    fn variables_named_like_credentials_are_secret() {
        let vars = std::collections::BTreeMap::from([
            ("db_password".to_string(), Text::plain("literal-pw-77")),
            ("db_host".to_string(), Text::plain("db.internal")),
        ]);
        let t = with_vars(&vars, || {
            Text::from_template("psql -h {{ db_host }} -W {{ db_password }}")
        })
        .unwrap();
        assert_eq!(t.as_str(), "psql -h db.internal -W literal-pw-77");
        assert_eq!(t.shown(), "psql -h db.internal -W ***");
        assert!(crate::redact::is_registered("literal-pw-77"));
    }

    #[test]
    fn shell_values_are_quoted() {
        let vars = std::collections::BTreeMap::from([(
            "msg".to_string(),
            Text::plain("O'Brien; rm -rf /"),
        )]);
        let t = with_vars(&vars, || Text::from_shell_template("echo {{ msg }}")).unwrap();
        assert_eq!(
            shlex::split(t.as_str()).unwrap(),
            ["echo", "O'Brien; rm -rf /"]
        );
    }

    #[test]
    fn lenient_loading_records_unset_variables() {
        let (t, unset) = lenient::run(|| substitute("x${NOPE_A}y${NOPE_A}${NOPE_B}", env));
        assert_eq!(t.unwrap().as_str(), "xy");
        assert_eq!(unset, ["NOPE_A", "NOPE_B"]);
        assert!(substitute("${NOPE_A}", env).is_err());
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
        let err = substitute("${REPLICA_URL}", env).unwrap_err().to_string();
        assert!(err.contains("REPLICA_URL is not set"), "{err}");
    }

    #[test]
    fn template_errors_read_as_before() {
        let vars: std::collections::BTreeMap<String, Text> =
            [("pool".to_string(), Text::plain("x"))]
                .into_iter()
                .collect();
        let err = expand_vars(&Text::plain("{{ pol }}"), &vars, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "undefined variable `pol` in `{{ pol }}` (defined: pool); did you mean `pool`?"
        );
        let err = expand_vars(&Text::plain("a {{ b"), &vars, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unclosed `{{` in \"a {{ b\": add the closing `}}`"
        );
        assert_eq!(
            substitute("${1X}", env).unwrap_err().to_string(),
            "`${1X}` is not a variable reference: names are letters, digits and `_`"
        );
        assert_eq!(
            split_words("say \"hi").unwrap_err().to_string(),
            "unclosed \" in \"say \\\"hi\": check its quotes"
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(
            substitute("${API_URL", env)
                .unwrap_err()
                .to_string()
                .contains("unclosed")
        );
        assert!(
            substitute("${1X}", env)
                .unwrap_err()
                .to_string()
                .contains("not a variable")
        );
    }
}
