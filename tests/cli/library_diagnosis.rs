//! The shipped diagnosis runbooks, each run green against a healthy system and each of its check
//! steps driven to warning or critical by its own broken fixture (`common::library::Book`).

/// The shipped runbooks this file tests; `runbooks::shipped` checks every shipped runbook
/// is tested here or there.
pub const COVERED: &[&str] = &[];
