//! A runbook as a pass/fail check of something just made: the restore drill's
//! `verify: { runbook: NAME }` runs NAME with `{{ restore_dir }}` set to the scratch tree.

use crate::engine::Context;
use crate::model::Status;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Run runbook `name` (looked up in `dirs`) against the tree at `to`: passes unless a step
/// ends critical or unknown; the error names each failed step and its message.
fn check_restored(
    name: &str,
    to: &Path,
    session: &std::collections::BTreeMap<String, crate::values::Text>,
    dirs: &[PathBuf],
    ctx: &Context,
) -> Result<String, crate::backup::Error> {
    let failed = |e: String| crate::backup::Error::Failed(e);
    let mut vars = session.clone();
    vars.insert(
        "restore_dir".to_string(),
        crate::values::Text::plain(to.to_string_lossy()),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(format!("cannot start the async runtime: {e}")))?;
    let report = runtime
        .block_on(super::diagnose::run_named(name, &vars, dirs, ctx))
        .map_err(|e| failed(format!("{e:#}")))?;
    let failures: Vec<String> = report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Critical | Status::Unknown))
        .map(|r| format!("{}: {}", r.name, r.message))
        .collect();
    if failures.is_empty() {
        Ok(format!("runbook {} passed", report.title))
    } else {
        Err(failed(format!(
            "runbook {} failed: {}",
            report.title,
            failures.join("; ")
        )))
    }
}

/// The runner a drill uses for `verify: { runbook: NAME }`, wherever the drill runs (a
/// command, a runbook step, a schedule, an incident's diagnosis): NAME is looked up in
/// `dirs` and runs in `ctx` (whose own settings carry no runner, so a drill inside that
/// runbook is refused rather than recursing), with the session's `vars` and
/// `{{ restore_dir }}`.
pub fn drill_runner(
    dirs: Vec<PathBuf>,
    vars: std::collections::BTreeMap<String, crate::values::Text>,
    ctx: Context,
) -> crate::backup::RunbookRunner {
    crate::backup::RunbookRunner(Some(Arc::new(move |name: &str, to: &Path| {
        check_restored(name, to, &vars, &dirs, &ctx)
    })))
}
