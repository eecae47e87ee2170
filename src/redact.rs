//! Secrets never leave the process: every value that came from the environment through
//! `${VAR}` is registered here, and everything a person or machine reads is masked with
//! `***` on the way out (printer, renderers, log files, error messages).

use std::sync::{OnceLock, RwLock};

/// Shorter values are not masked globally: masking "80" or "on" everywhere would
/// mangle unrelated output. Fields that hold them still print masked (`config::Text`).
pub const MIN_SECRET_LEN: usize = 4;

pub const MASK: &str = "***";

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
    if !secrets.iter().any(|s| s == value) {
        secrets.push(value.to_string());
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with every registered secret replaced by `***`.
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
}
