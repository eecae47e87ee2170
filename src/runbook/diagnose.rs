//! A diagnosis runbook, as `incident collect` puts its report into the evidence bundle:
//! found by name in the runbook dirs and run with the session's variables (`runbooks.vars`
//! of the config, `{{ opsbook_config }}`) over its own defaults.

use crate::engine::Context;
use crate::model::{CheckResult, Report};
use std::path::PathBuf;

/// Run runbook `name` (looked up in `dirs`, else built in) with `vars` (the session's) over
/// its defaults on `ctx`: its report, or why it cannot be found or loaded (the file, line
/// and field at fault).
pub async fn diagnose(
    name: &str,
    vars: &std::collections::BTreeMap<String, crate::values::Text>,
    dirs: &[PathBuf],
    ctx: &Context,
) -> Result<Report, crate::Error> {
    run_named(name, vars, dirs, ctx).await
}

/// Find runbook `name` in `dirs` (else built in), load it with `vars`, run it whole on
/// `ctx`, quietly: its report.
pub async fn run_named(
    name: &str,
    vars: &std::collections::BTreeMap<String, crate::values::Text>,
    dirs: &[PathBuf],
    ctx: &Context,
) -> Result<Report, crate::Error> {
    let source = super::find(name, dirs)?;
    let runbook = super::load(&source, vars, dirs)?;
    let selection = super::Selection::default();
    Ok(super::run(&runbook, ctx, &selection, &mut |_: &CheckResult| {}).await)
}
