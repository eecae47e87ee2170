//! The runbooks shipped in `runbooks/`, built into the binary so `opsbook run daily` works
//! anywhere. A file of the same name in a runbook dir takes precedence.

const BUILT_IN: [(&str, &str); 11] = [
    ("pre-deploy", include_str!("../../runbooks/pre-deploy.yaml")),
    ("deploy", include_str!("../../runbooks/deploy.yaml")),
    ("daily", include_str!("../../runbooks/daily.yaml")),
    ("weekly", include_str!("../../runbooks/weekly.yaml")),
    ("monthly", include_str!("../../runbooks/monthly.yaml")),
    (
        "backup-verify",
        include_str!("../../runbooks/backup-verify.yaml"),
    ),
    (
        "api-unavailable",
        include_str!("../../runbooks/api-unavailable.yaml"),
    ),
    (
        "database-issues",
        include_str!("../../runbooks/database-issues.yaml"),
    ),
    (
        "high-memory",
        include_str!("../../runbooks/high-memory.yaml"),
    ),
    ("disk-space", include_str!("../../runbooks/disk-space.yaml")),
    (
        "high-error-rate",
        include_str!("../../runbooks/high-error-rate.yaml"),
    ),
];

/// The built-in runbooks' names, in the order above.
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
