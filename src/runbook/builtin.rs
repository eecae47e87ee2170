//! The runbooks shipped in `runbooks/`, built into the binary so `opsbook run daily` works
//! anywhere. A file of the same name in a runbook dir takes precedence.

/// `(name, text)` of every `runbooks/*.yaml`, sorted by name (made by `build.rs`).
const BUILT_IN: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/builtin_runbooks.rs"));

/// The built-in runbooks' names, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILT_IN.iter().map(|(name, _)| *name)
}

/// The text of a built-in runbook (`daily`, or `daily.yaml` as an include names it).
pub fn get(name: &str) -> Option<&'static str> {
    let name = name.trim_end_matches(".yaml").trim_end_matches(".yml");
    BUILT_IN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}
