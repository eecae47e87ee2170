//! A diagnosis runbook, as `incident collect` puts its report into the evidence bundle:
//! found by name in the runbook dirs and run with its own defaults.

use crate::engine::Context;
use crate::model::{CheckResult, Report};
use std::path::PathBuf;

/// Run runbook `name` (looked up in `dirs`, else built in) with its defaults on `ctx`: its
/// report, or why it cannot be found or loaded (the file, line and field at fault).
pub async fn diagnose(name: &str, dirs: &[PathBuf], ctx: &Context) -> Result<Report, crate::Error> {
    let source = super::find(name, dirs)?;
    let runbook = super::load(&source, &Default::default(), dirs)?;
    let selection = super::Selection::default();
    Ok(super::run(&runbook, ctx, &selection, &mut |_: &CheckResult| {}).await)
}
