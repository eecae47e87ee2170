//! `opsbook backup create|list|verify|prune` and `opsbook restore`, on a local directory or
//! S3; one lock per set.

use super::{Session, check_context};
use crate::backup::{self, archive, restore};
use crate::lock::Lock;
use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Back up sets (default: all) into the destination (exit 0 done, 1 failed, 75 locked)
    Create {
        /// Sets to back up
        sets: Vec<String>,
    },
    /// The complete backups in the destination
    List {
        /// Only this set's backups
        set: Option<String>,
    },
    /// Stream a backup and compare every file with its manifest, without extracting
    Verify(VerifyArgs),
    /// Apply each set's retention (keep_last/daily/weekly/monthly) and remove leftovers of interrupted runs
    Prune {
        /// Sets to prune (default: all)
        sets: Vec<String>,
        /// Print what would be kept and removed, remove nothing
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A backup id, or `latest`
    pub id: String,
    /// With `latest`: the newest backup of this set
    #[arg(long)]
    pub set: Option<String>,
    /// Also restore into a temporary directory and run the set's `verify` command there
    /// (command sources go to their `test_restore` command)
    #[arg(long)]
    pub restore_test: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A backup id, or `latest` (with --set: that set's newest)
    #[arg(required_unless_present = "archive", conflicts_with = "archive")]
    pub id: Option<String>,
    /// With `latest`: the newest backup of this set
    #[arg(long)]
    pub set: Option<String>,
    /// Restore a tar, tar.gz or tar.zst made by hand (`tar -czf …`) instead of a backup
    #[arg(long, value_name = "FILE")]
    pub archive: Option<std::path::PathBuf>,
    /// The directory to restore into (created if missing)
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub to: std::path::PathBuf,
    /// Restore only the paths matching these globs (`app/conf/**`)
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Check everything and print what would be restored, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Overwrite files that already exist in the target
    #[arg(long)]
    pub force: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    Text,
    Json,
}

pub fn exec(command: &BackupCommand, session: &Session) -> anyhow::Result<u8> {
    let config = &session.loaded.config.backup;
    let store = super::open_store(config)?;
    let failed_store = |e: String| anyhow::anyhow!(e);
    match command {
        BackupCommand::Create { sets } => {
            let chosen = super::pick_sets(sets, &config.sets, "backup.sets")?;
            let now = check_context()?.clock.now();
            let state_dir = session.loaded.config.state_dir();
            let mut failed = false;
            for (name, set) in chosen {
                let _lock = Lock::backup_set(&state_dir, name)?;
                let bar = session
                    .printer
                    .bytes_bar(|| archive::measure(set).unwrap_or(0), name);
                let progress = |n: u64| {
                    if let Some(bar) = &bar {
                        bar.inc(n);
                    }
                };
                let created = backup::create(&store, name, set, now, &progress);
                if let Some(bar) = &bar {
                    bar.finish_and_clear();
                }
                match created {
                    Ok(what) => session.printer.human(&format!("{name}: created {what}\n")),
                    Err(e) => {
                        failed = true;
                        session.printer.error(&format!("backup set {name}: {e}"));
                    }
                }
            }
            Ok(u8::from(failed))
        }
        BackupCommand::List { set } => {
            let format = session.format(ListFormat::Text)?;
            let records = backup::state::load(&session.loaded.config.state_dir());
            let verified = |m: &backup::Manifest| {
                records
                    .get(&m.set)
                    .is_some_and(|r| r.verified_id.as_deref() == Some(m.id.as_str()))
            };
            let backups: Vec<_> = store
                .list()
                .map_err(failed_store)?
                .into_iter()
                .filter(|m| set.as_ref().is_none_or(|s| &m.set == s))
                .collect();
            match format {
                ListFormat::Json => {
                    let rows: Vec<serde_json::Value> = backups
                        .iter()
                        .map(|m| {
                            serde_json::json!({
                                "id": m.id, "set": m.set, "created": m.created,
                                "bytes": m.archive_bytes, "files": m.files.len(),
                                "verified": verified(m),
                            })
                        })
                        .collect();
                    let text = serde_json::to_string_pretty(&rows).unwrap_or_default();
                    session.printer.data(&format!("{text}\n"));
                }
                ListFormat::Text => {
                    let mut out = String::new();
                    for m in &backups {
                        let mark = if verified(m) { "verified" } else { "" };
                        out.push_str(&format!(
                            "{}  {}  {}  {:>12} bytes  {:>6} files  {mark}\n",
                            m.id,
                            m.set,
                            m.created,
                            m.archive_bytes,
                            m.files.len()
                        ));
                    }
                    session.printer.data(&out);
                }
            }
            Ok(0)
        }
        BackupCommand::Prune { sets, dry_run } => {
            let chosen = super::pick_sets(sets, &config.sets, "backup.sets")?;
            let state_dir = session.loaded.config.state_dir();
            let zone = jiff::tz::TimeZone::system();
            let all = store.list().map_err(failed_store)?;
            let verb = if *dry_run { "would remove" } else { "removed" };
            let mut failed = false;
            let mut out = String::new();
            for (name, set) in chosen {
                let _lock = Lock::backup_set(&state_dir, name)?;
                let plan = backup::prune(&store, name, set, &all, &zone, *dry_run)
                    .map_err(failed_store)?;
                for (id, why) in &plan.kept {
                    out.push_str(&format!("{name}: keep {id} ({})\n", why.join(", ")));
                }
                for id in &plan.removed {
                    out.push_str(&format!("{name}: {verb} {id}\n"));
                }
                for e in &plan.errors {
                    failed = true;
                    session.printer.error(e);
                }
            }
            session.printer.human(&out);
            Ok(u8::from(failed))
        }
        BackupCommand::Verify(args) => {
            let backups = store.list().map_err(failed_store)?;
            let manifest = find(&backups, &args.id, args.set.as_deref(), &store)?;
            let (dir, _fetched) = store.fetch(manifest).map_err(failed_store)?;
            let problems = archive::verify(&dir, manifest);
            if problems.is_empty() {
                let drilled = if args.restore_test {
                    let set = config.sets.get(&manifest.set);
                    match drill(&dir, manifest, set, session) {
                        Ok(done) => Some(done),
                        Err(e) => {
                            session
                                .printer
                                .error(&format!("{}: restore test: {e}", manifest.id));
                            crate::logging::audit::record(
                                "backup.drill",
                                "failed",
                                Some(&manifest.id),
                            );
                            return Ok(1);
                        }
                    }
                } else {
                    None
                };
                let now = check_context()?.clock.now();
                backup::state::record(
                    &session.loaded.config.state_dir(),
                    &manifest.set,
                    &manifest.id,
                    now,
                    drilled.is_some(),
                )
                .map_err(anyhow::Error::msg)?;
                let mut out = format!(
                    "{}: verified, {} files match the manifest\n",
                    manifest.id,
                    manifest.files.len()
                );
                if let Some(done) = drilled {
                    crate::logging::audit::record("backup.drill", "ok", Some(&manifest.id));
                    out.push_str(&format!("{}: restore test passed: {done}\n", manifest.id));
                }
                session.printer.human(&out);
                return Ok(0);
            }
            for problem in &problems {
                session
                    .printer
                    .error(&format!("{}: {problem}", manifest.id));
            }
            Ok(1)
        }
    }
}

/// `opsbook restore`: a backup (verified against its manifest on the way) or a hand-made
/// archive, checked entry by entry before anything is written.
pub fn restore(args: &RestoreArgs, session: &Session) -> anyhow::Result<u8> {
    let include = if args.include.is_empty() {
        None
    } else {
        Some(backup::archive::globs(&args.include, "--include").map_err(crate::Error::Usage)?)
    };
    let options = restore::Options {
        to: args.to.clone(),
        include,
        force: args.force,
        dry_run: args.dry_run,
    };
    let mut sources: Vec<&backup::commands::CommandSource> = Vec::new();
    // A downloaded archive lives as long as the restore.
    let _fetched: Option<tempfile::TempDir>;
    let (label, outcome) = if let Some(file) = &args.archive {
        if !file.is_file() {
            return Err(crate::Error::Usage(format!("no archive {}", file.display())).into());
        }
        let outcome = restore::restore(file, None, &[], &options);
        (file.display().to_string(), outcome)
    } else {
        let config = &session.loaded.config.backup;
        let store = super::open_store(config)?;
        let backups = store.list().map_err(anyhow::Error::msg)?;
        let wanted = args.id.as_deref().unwrap_or("latest");
        let manifest = find(&backups, wanted, args.set.as_deref(), &store)?;
        let _lock = Lock::backup_set(&session.loaded.config.state_dir(), &manifest.set)?;
        let (dir, guard) = store.fetch(manifest).map_err(anyhow::Error::msg)?;
        _fetched = guard;
        let archive = dir.join(&manifest.archive);
        // Dumps whose set has a restore command go to it; others restore as files.
        sources = config
            .sets
            .get(&manifest.set)
            .map(|s| s.command.0.iter().filter(|c| c.restore.is_some()).collect())
            .unwrap_or_default();
        let dumps: Vec<String> = sources.iter().map(|c| c.member()).collect();
        let outcome = restore::restore(&archive, Some(manifest), &dumps, &options);
        (manifest.id.clone(), outcome)
    };
    let mut outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            crate::logging::audit::record("restore", "failed", Some(&format!("{label}: {e}")));
            session.printer.error(&format!("{label}: {e}"));
            return Ok(1);
        }
    };
    if !outcome.refused.is_empty() {
        for refused in &outcome.refused {
            session.printer.error(&format!("refused {refused}"));
        }
        let what = format!(
            "{label}: {} entries refused, nothing restored",
            outcome.refused.len()
        );
        crate::logging::audit::record("restore", "refused", Some(&what));
        session.printer.error(&what);
        return Ok(1);
    }
    let to = args.to.display();
    let restore_command = |member: &str| {
        sources
            .iter()
            .find(|c| c.member() == member)
            .and_then(|c| c.restore.as_ref().map(|r| (r, c.shell)))
    };
    if args.dry_run {
        let mut out = String::new();
        for path in &outcome.restored {
            match restore_command(path) {
                Some((command, _)) => {
                    out.push_str(&format!("would run `{}` < {path}\n", command.shown()));
                }
                None => out.push_str(&format!("would restore {path}\n")),
            }
        }
        out.push_str(&format!(
            "{label}: would restore {} into {to}\n",
            counts(&outcome)
        ));
        session.printer.human(&out);
        return Ok(0);
    }
    let mut out = format!("{label}: restored {} into {to}\n", counts(&outcome));
    for (member, file) in &outcome.dumps {
        let Some((command, shell)) = restore_command(member) else {
            continue;
        };
        let ran = std::fs::File::open(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))
            .and_then(|stdin| {
                backup::commands::run(
                    command,
                    shell,
                    stdin.into(),
                    std::process::Stdio::null(),
                    None,
                )
            });
        if let Err(e) = ran {
            let what = format!("{label}: restoring {member}: {e}");
            crate::logging::audit::record("restore", "failed", Some(&what));
            session.printer.human(&out);
            session.printer.error(&what);
            return Ok(1);
        }
        out.push_str(&format!(
            "{label}: {member} restored by `{}`\n",
            command.shown()
        ));
    }
    outcome.finish();
    crate::logging::audit::record("restore", "ok", Some(out.trim_end()));
    session.printer.human(&out);
    Ok(0)
}

fn counts(outcome: &restore::Outcome) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{}, {}, {}",
        plural(outcome.files, "file", "files"),
        plural(outcome.dirs, "directory", "directories"),
        plural(outcome.links, "symlink", "symlinks")
    )
}

/// `backup verify --restore-test`: restore into a temporary directory, feed each command
/// source's dump to its `test_restore` command (the dump stays a file there otherwise),
/// then run the set's `verify` command in that directory. What was done, on success.
fn drill(
    dir: &std::path::Path,
    manifest: &backup::Manifest,
    set: Option<&backup::BackupSet>,
    session: &Session,
) -> Result<String, String> {
    let temp = tempfile::Builder::new()
        .prefix("opsbook-restore-test-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let to = temp.path().join("restored");
    let sources: Vec<&backup::commands::CommandSource> = set
        .map(|s| {
            s.command
                .0
                .iter()
                .filter(|c| c.test_restore.is_some())
                .collect()
        })
        .unwrap_or_default();
    let dumps: Vec<String> = sources.iter().map(|c| c.member()).collect();
    let options = restore::Options {
        to: to.clone(),
        include: None,
        force: false,
        dry_run: false,
    };
    let archive = dir.join(&manifest.archive);
    let mut outcome = restore::restore(&archive, Some(manifest), &dumps, &options)?;
    if let Some(refused) = outcome.refused.first() {
        return Err(format!("refused {refused}"));
    }
    let mut done = vec![format!("{} files restored", outcome.files)];
    for (member, file) in &outcome.dumps {
        let Some(source) = sources.iter().find(|c| &c.member() == member) else {
            continue;
        };
        let Some(command) = &source.test_restore else {
            continue;
        };
        let stdin = std::fs::File::open(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        backup::commands::run(
            command,
            source.shell,
            stdin.into(),
            std::process::Stdio::null(),
            Some(&to),
        )?;
        done.push(format!("{member} fed to `{}`", command.shown()));
    }
    outcome.finish();
    match set.and_then(|s| s.verify.as_ref()) {
        None => {}
        Some(backup::commands::Verify::Command { run, shell }) => {
            let mut cmd = backup::commands::command(run, *shell)?;
            let status = cmd
                .current_dir(&to)
                .env("OPSBOOK_RESTORE_DIR", &to)
                .status()
                .map_err(|e| format!("cannot run `{}`: {e}", run.shown()))?;
            if !status.success() {
                return Err(format!("`{}` failed ({status})", run.shown()));
            }
            done.push(format!("`{}` passed", run.shown()));
        }
        Some(backup::commands::Verify::Runbook(name)) => {
            done.push(drill_runbook(name, &to, session)?);
        }
    }
    Ok(done.join(", "))
}

/// `latest` (of `set`, if given) or an id among `backups`; a usage error otherwise.
fn find<'a>(
    backups: &'a [backup::Manifest],
    wanted: &str,
    set: Option<&str>,
    store: &backup::store::Store,
) -> anyhow::Result<&'a backup::Manifest> {
    backup::find(backups, wanted, set).ok_or_else(|| {
        crate::Error::Usage(format!(
            "no backup {wanted:?} in {} (`opsbook backup list` shows the ids)",
            store.shown()
        ))
        .into()
    })
}
/// The drill's check as a runbook, with `{{ restore_dir }}` set: passes unless a step is
/// critical or unknown.
fn drill_runbook(name: &str, to: &std::path::Path, session: &Session) -> Result<String, String> {
    let dirs = super::run::dirs(session);
    let source = crate::runbook::find(name, &dirs).map_err(|e| e.to_string())?;
    let vars = std::collections::BTreeMap::from([(
        "restore_dir".to_string(),
        crate::config::Text::plain(to.to_string_lossy()),
    )]);
    let book = crate::runbook::load(&source, &vars, &dirs).map_err(|e| format!("{e:#}"))?;
    let mut ctx = check_context().map_err(|e| format!("{e:#}"))?;
    ctx.config = std::sync::Arc::new(session.loaded.config.clone());
    let runtime = super::runtime().map_err(|e| format!("{e:#}"))?;
    let selection = crate::runbook::Selection::default();
    let report = runtime.block_on(crate::runbook::run(
        &book,
        &ctx,
        &selection,
        &mut |_: &crate::report::CheckResult| {},
    ));
    let failed: Vec<String> = report
        .results
        .iter()
        .filter(|r| {
            matches!(
                r.status,
                crate::check::Status::Critical | crate::check::Status::Unknown
            )
        })
        .map(|r| format!("{}: {}", r.name, r.message))
        .collect();
    if failed.is_empty() {
        Ok(format!("runbook {} passed", book.name))
    } else {
        Err(format!(
            "runbook {} failed: {}",
            book.name,
            failed.join("; ")
        ))
    }
}
