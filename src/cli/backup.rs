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
    /// Restore everything as the caller, not as the owners stored (setuid/setgid dropped)
    #[arg(long)]
    pub no_owner: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    Text,
    Json,
}

pub fn exec(command: &BackupCommand, session: &Session) -> anyhow::Result<u8> {
    let config = &session.loaded.config.backup;
    let store = open_store(session)?;
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
                    Ok(made) => {
                        for warning in &made.warnings {
                            session
                                .printer
                                .warn(&format!("backup set {name}: {warning}"));
                        }
                        session
                            .printer
                            .human(&format!("{name}: created {}\n", made.what));
                    }
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
            let listing = store.scan().map_err(failed_store)?;
            for suspect in &listing.suspects {
                session
                    .printer
                    .warn(&format!("{}/{suspect}", store.shown()));
            }
            let backups: Vec<_> = listing
                .backups
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
                            "{}  {}  {}  {:>18}  {:>12}  {mark}\n",
                            m.id,
                            m.set,
                            m.created,
                            crate::plural::count(m.archive_bytes, "byte", "bytes"),
                            crate::plural::count(m.files.len(), "file", "files")
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
            let listing = store.scan().map_err(failed_store)?;
            let records = backup::state::load(&state_dir);
            let verb = if *dry_run { "would remove" } else { "removed" };
            let mut failed = false;
            let mut out = String::new();
            for (name, set) in chosen {
                let _lock = Lock::backup_set(&state_dir, name)?;
                let drilled = records.get(name).and_then(|r| r.drilled_id.as_deref());
                let plan = backup::prune(&store, name, set, &listing, drilled, &zone, *dry_run)
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
            out.push_str(&backup::drill::remove_stale_scratch(*dry_run));
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
                    let mut runbook =
                        |name: &str, to: &std::path::Path| drill_runbook(name, to, session);
                    match backup::drill::run(&dir, manifest, set, &mut runbook) {
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
                    "{}: verified, {} the manifest\n",
                    manifest.id,
                    crate::plural::count(manifest.files.len(), "file matches", "files match")
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
        no_owner: args.no_owner,
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
        let store = open_store(session)?;
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
            "{label}: {} refused, nothing restored",
            crate::plural::count(outcome.refused.len(), "entry", "entries")
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
                .map_err(String::from)
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

/// The configured store: a destination with a scheme opsbook does not support is a config
/// error (exit 78) naming the config file; a missing one a usage error (64).
fn open_store(session: &Session) -> anyhow::Result<backup::store::Store> {
    let config = &session.loaded.config.backup;
    if let Some(dest) = &config.destination
        && let Some(e) = backup::store::unsupported_scheme(dest)
    {
        let file = session
            .loaded
            .sources
            .last()
            .cloned()
            .unwrap_or_else(|| std::path::PathBuf::from("config"));
        return Err(crate::Error::Config(crate::error::ConfigError::whole_file(file, e)).into());
    }
    super::open_store(config)
}

fn counts(outcome: &restore::Outcome) -> String {
    use crate::plural::count;
    format!(
        "{}, {}, {}",
        count(outcome.files, "file", "files"),
        count(outcome.dirs, "directory", "directories"),
        count(outcome.links, "symlink", "symlinks")
    )
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
        crate::values::Text::plain(to.to_string_lossy()),
    )]);
    let book = crate::runbook::load(&source, &vars, &dirs).map_err(|e| format!("{e:#}"))?;
    let mut ctx = check_context().map_err(|e| format!("{e:#}"))?;
    ctx.config = std::sync::Arc::new(session.loaded.config.step_settings());
    let runtime = super::runtime().map_err(|e| format!("{e:#}"))?;
    let selection = crate::runbook::Selection::default();
    let report = runtime.block_on(crate::runbook::run(
        &book,
        &ctx,
        &selection,
        &mut |_: &crate::model::CheckResult| {},
    ));
    let failed: Vec<String> = report
        .results
        .iter()
        .filter(|r| {
            matches!(
                r.status,
                crate::model::Status::Critical | crate::model::Status::Unknown
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
