//! Secrets never leave the process. A value is a secret when it sits in a secret place (a
//! credential header's value, a URL's user-info, a credential-like URL query value, a
//! webhook URL) or comes from an environment variable whose name looks secret, or from a
//! URL-shaped variable with user-info. Paths, hosts, ports and names print as they are.
//!
//! Every secret is registered here when the config or a runbook is read. The report model
//! is masked before any renderer sees it (`report::Report::masked`), and everything a
//! person or machine reads is masked again on the way out (printer, log files, served
//! bodies), including the secret's escaped forms (JSON, XML), so a secret holding `"`,
//! `\`, `<` or a newline is found however it was serialised.

use std::sync::{OnceLock, RwLock};

/// Shorter values are not masked globally: masking "80" or "on" everywhere would
/// mangle unrelated output. Fields that hold them still print masked (`config::Text`).
pub const MIN_SECRET_LEN: usize = 4;

pub const MASK: &str = "***";

/// A URL user-info without a password this long is a token, not a user name.
const TOKEN_LEN: usize = 12;

/// Words that make an environment variable's name secret (the contract's list).
const SECRET_NAME_WORDS: [&str; 11] = [
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASS",
    "KEY",
    "AUTH",
    "CREDENTIAL",
    "COOKIE",
    "SESSION",
    "PRIVATE",
];

/// Whether an environment variable named `name` holds a secret (`API_TOKEN`,
/// `DB_PASSWORD`, `AWS_SECRET_ACCESS_KEY`); `LOG_DIR`, `API_URL`, `DB_PORT` do not.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAME_WORDS.iter().any(|word| upper.contains(word))
}

/// Whether a URL query parameter or an HTTP header named `name` carries a credential:
/// `token`, `api_key`, `X-Amz-Signature`, `Authorization`, `Cookie`, `X-Session-Id`…
pub fn is_credential_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    is_secret_name(&upper) || upper.contains("SIGNATURE") || upper == "SIG"
}

/// Every form a secret may take in output: as is, and escaped the way JSON strings, XML
/// text and attributes, and Prometheus labels escape it; with newlines flattened to
/// spaces as one-line formats (TAP, Nagios) do.
fn forms(value: &str) -> Vec<String> {
    let mut out = vec![value.to_string()];
    let mut add = |form: String| {
        if form.len() >= MIN_SECRET_LEN && !out.contains(&form) {
            out.push(form);
        }
    };
    let json = serde_json::Value::String(value.to_string()).to_string();
    add(json[1..json.len() - 1].to_string());
    // JSON with `/` escaped too, as some encoders write it.
    add(json[1..json.len() - 1].replace('/', "\\/"));
    let xml = value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    add(xml.replace('\'', "&apos;"));
    add(xml.replace('\'', "&#39;"));
    add(xml.clone());
    add(value.replace('\\', "\\\\").replace('"', "\\\""));
    // Prometheus label values: only `\`, `"` and newline are escaped.
    add(value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n"));
    add(value.replace(['\n', '\r'], " "));
    add(value.replace('|', "/").replace('\n', " "));
    out
}

fn registry() -> &'static RwLock<Vec<String>> {
    static SECRETS: OnceLock<RwLock<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| RwLock::new(Vec::new()))
}

/// Remember `value` as secret from now on.
pub fn register(value: &str) {
    if value.len() < MIN_SECRET_LEN {
        return;
    }
    let mut secrets = registry()
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if secrets.iter().any(|s| s == value) {
        return;
    }
    for form in forms(value) {
        if !secrets.contains(&form) {
            secrets.push(form);
        }
    }
    // Longest first, so a secret that contains another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Whether `value` is registered as a secret (exactly).
pub fn is_registered(value: &str) -> bool {
    registry()
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .iter()
        .any(|s| s == value)
}

/// `text` with every registered secret, in any of its escaped forms, replaced by `***`.
pub fn mask(text: &str) -> std::borrow::Cow<'_, str> {
    let secrets = registry()
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !secrets.iter().any(|s| text.contains(s.as_str())) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Mask `text` in place (a field of the report model).
pub fn mask_in_place(text: &mut String) {
    if let std::borrow::Cow::Owned(masked) = mask(text) {
        *text = masked;
    }
}

/// The secret parts of every URL in `text` (`scheme://user:pw@host/…?token=…`): the
/// user-info, and each query value whose name looks like a credential. Returns the text
/// with those parts replaced by `***`, and the parts themselves.
pub fn mask_url_parts(text: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut secrets = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        // The scheme: letters, digits, `+`, `-`, `.` right before `://`, starting with a letter.
        let head = &rest[..at];
        let scheme_start = head
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map_or(at, |(i, _)| i);
        let is_url = scheme_start < at
            && head[scheme_start..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic());
        out.push_str(&rest[..at + 3]);
        rest = &rest[at + 3..];
        if !is_url {
            continue;
        }
        // The URL runs to whitespace, a quote or the end of the text.
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>'))
            .unwrap_or(rest.len());
        let url = &rest[..end];
        rest = &rest[end..];
        let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
        let authority = &url[..authority_end];
        let mut after = &url[authority_end..];
        match authority.rfind('@') {
            Some(at) if at > 0 => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((_, password)) => {
                        secrets.push(userinfo.to_string());
                        secrets.push(password.to_string());
                    }
                    // A bare user name (`postgres@`, `git@`) is shown masked but not masked
                    // everywhere, where it would hide every mention of that word; a long
                    // one is a token (`https://TOKEN@host/`).
                    None if userinfo.len() >= TOKEN_LEN => secrets.push(userinfo.to_string()),
                    None => {}
                }
                out.push_str(MASK);
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        if let Some(q) = after.find('?') {
            out.push_str(&after[..=q]);
            after = &after[q + 1..];
            let query_end = after.find('#').unwrap_or(after.len());
            let (query, fragment) = after.split_at(query_end);
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, value)) if is_credential_name(name) && !value.is_empty() => {
                        secrets.push(value.to_string());
                        format!("{name}={MASK}")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
            after = fragment;
        }
        out.push_str(after);
    }
    out.push_str(rest);
    // Percent-encoded parts are also secret in their decoded form.
    let decoded: Vec<String> = secrets
        .iter()
        .filter_map(|s| {
            let d = url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())?;
            (d != *s).then_some(d)
        })
        .collect();
    secrets.extend(decoded);
    secrets.retain(|s| s != MASK && !s.is_empty());
    (out, secrets)
}

/// Whether `value` looks like a URL with user-info (`postgres://user:pw@host/db`).
pub fn has_url_userinfo(value: &str) -> bool {
    mask_url_parts(value).0.contains(&format!("://{MASK}@"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_masked_longest_first() {
        register("canary-token-123");
        register("canary");
        assert_eq!(
            mask("Bearer canary-token-123 and canary"),
            "Bearer *** and ***"
        );
        assert_eq!(mask("nothing here"), "nothing here");
    }

    #[test]
    fn short_values_are_not_registered() {
        register("80");
        assert_eq!(mask("port 80"), "port 80");
    }

    #[test]
    fn escaped_forms_are_masked_too() {
        let secret = "q\"uo\\te<&>\nline-é";
        register(secret);
        let json = serde_json::json!({ "m": format!("x {secret} y") }).to_string();
        assert_eq!(mask(&json), r#"{"m":"x *** y"}"#);
        let xml = "a=\"q&quot;uo\\te&lt;&amp;&gt;\nline-é\"";
        assert_eq!(mask(xml), "a=\"***\"");
        assert_eq!(mask("q\"uo\\te<&> line-é"), "***");
    }

    #[test]
    fn secret_names() {
        for name in [
            "API_TOKEN",
            "DB_PASSWORD",
            "AWS_SECRET_ACCESS_KEY",
            "session_id",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["LOG_DIR", "API_URL", "DB_PORT", "DATA_PATH", "HOST"] {
            assert!(!is_secret_name(name), "{name}");
        }
        assert!(is_credential_name("X-Amz-Signature"));
        assert!(is_credential_name("Authorization"));
        assert!(!is_credential_name("Accept"));
    }

    #[test]
    fn url_userinfo_and_credential_queries() {
        let (shown, parts) =
            mask_url_parts("psql postgres://app:pw%40x@db:5432/app?sslmode=off&api_key=k1 -c 1");
        assert_eq!(
            shown,
            "psql postgres://***@db:5432/app?sslmode=off&api_key=*** -c 1"
        );
        assert!(parts.contains(&"app:pw%40x".to_string()));
        assert!(parts.contains(&"pw%40x".to_string()));
        assert!(parts.contains(&"pw@x".to_string()));
        assert!(parts.contains(&"k1".to_string()));
        let (shown, parts) = mask_url_parts("http://127.0.0.1:8080/health?x=1");
        assert_eq!(shown, "http://127.0.0.1:8080/health?x=1");
        assert!(parts.is_empty());
        assert!(has_url_userinfo("postgres://u:p@h/db"));
        let (shown, parts) = mask_url_parts(
            "postgres://postgres@db/app and https://ghp_0123456789abcdef@github.com/x",
        );
        assert_eq!(shown, "postgres://***@db/app and https://***@github.com/x");
        assert_eq!(parts, ["ghp_0123456789abcdef"]);
        assert!(!has_url_userinfo("http://h/a@b"));
    }
}
