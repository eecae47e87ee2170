//! `opsbook backup create|list|verify|prune` and `opsbook restore`, on a local directory or
//! S3; one lock per set.

use super::{Session, check_context};
use crate::backup::{self, Job, Pick};
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
    let state_dir = session.loaded.config.state_dir();
    let job = Job::new(config, &store, &state_dir);
    match command {
        BackupCommand::Create { sets } => create(&job, sets, session),
        BackupCommand::List { set } => list(&job, set.as_deref(), session),
        BackupCommand::Prune { sets, dry_run } => prune(&job, sets, *dry_run, session),
        BackupCommand::Verify(args) => verify(&job, args, session),
    }
}

fn create(job: &Job, sets: &[String], session: &Session) -> anyhow::Result<u8> {
    let chosen = super::pick_sets(sets, &job.config.sets, "backup.sets")?;
    let now = check_context()?.clock.now();
    let mut failed = false;
    for (name, set) in chosen {
        let bar = session
            .printer
            .bytes_bar(|| backup::archive::measure(set).unwrap_or(0), name);
        let progress = |n: u64| {
            if let Some(bar) = &bar {
                bar.inc(n);
            }
        };
        let created = backup::create_set(job, name, set, now, &progress);
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
            Err(e @ backup::Error::Lock(_)) => return Err(e.into()),
            Err(e) => {
                failed = true;
                session.printer.error(&format!("backup set {name}: {e}"));
            }
        }
    }
    Ok(u8::from(failed))
}

fn list(job: &Job, set: Option<&str>, session: &Session) -> anyhow::Result<u8> {
    let format = session.format(ListFormat::Text)?;
    let records = backup::state::load(job.state_dir);
    let verified = |m: &backup::Manifest| {
        records
            .get(&m.set)
            .is_some_and(|r| r.verified_id.as_deref() == Some(m.id.as_str()))
    };
    let listing = job.store.scan()?;
    for suspect in &listing.suspects {
        session
            .printer
            .warn(&format!("{}/{suspect}", job.store.shown()));
    }
    let backups = listing
        .backups
        .iter()
        .filter(|m| set.is_none_or(|s| m.set == s));
    let out = match format {
        ListFormat::Json => {
            let rows: Vec<serde_json::Value> = backups
                .map(|m| {
                    serde_json::json!({
                        "id": m.id, "set": m.set, "created": m.created,
                        "bytes": m.archive_bytes, "files": m.files.len(),
                        "verified": verified(m),
                    })
                })
                .collect();
            let text = serde_json::to_string_pretty(&rows).unwrap_or_default();
            format!("{text}\n")
        }
        ListFormat::Text => backups
            .map(|m| {
                let mark = if verified(m) { "verified" } else { "" };
                format!(
                    "{}  {}  {}  {:>18}  {:>12}  {mark}\n",
                    m.id,
                    m.set,
                    m.created,
                    crate::plural::count(m.archive_bytes, "byte", "bytes"),
                    crate::plural::count(m.files.len(), "file", "files")
                )
            })
            .collect(),
    };
    session.printer.data(&out);
    Ok(0)
}

fn prune(job: &Job, sets: &[String], dry_run: bool, session: &Session) -> anyhow::Result<u8> {
    let chosen = super::pick_sets(sets, &job.config.sets, "backup.sets")?;
    let zone = jiff::tz::TimeZone::system();
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut failed = false;
    let mut out = String::new();
    // The scratch of killed restore tests is shared by all sets: said once, after them.
    let mut scratch: Vec<String> = Vec::new();
    for (name, set) in chosen {
        let plan = backup::prune_set(job, name, set, &zone, dry_run)?;
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
        for line in plan.scratch {
            if !scratch.contains(&line) {
                scratch.push(line);
            }
        }
    }
    for line in &scratch {
        out.push_str(&format!("{line}\n"));
    }
    session.printer.human(&out);
    Ok(u8::from(failed))
}

fn verify(job: &Job, args: &VerifyArgs, session: &Session) -> anyhow::Result<u8> {
    let pick = Pick {
        wanted: &args.id,
        set: args.set.as_deref(),
    };
    let ctx = super::step_context(session)?;
    let verified = if args.restore_test {
        backup::drill(job, pick, ctx.clock.as_ref(), ctx.config.runbook.check())
    } else {
        backup::verify(job, pick, ctx.clock.as_ref())
    };
    let verified = match verified {
        Ok(verified) => verified,
        Err(backup::Error::Mismatch { id, problems }) => {
            for problem in &problems {
                session.printer.error(&format!("{id}: {problem}"));
            }
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = format!("{}\n", verified.summary());
    if let Some(done) = &verified.drilled {
        out.push_str(&format!("{}: restore test passed: {done}\n", verified.id));
    }
    session.printer.human(&out);
    Ok(0)
}

/// `opsbook restore`: a backup (verified against its manifest on the way) or a hand-made
/// archive, checked entry by entry before anything is written.
pub fn restore(args: &RestoreArgs, session: &Session) -> anyhow::Result<u8> {
    let asked = backup::Asked {
        id: args.id.as_deref(),
        set: args.set.as_deref(),
        archive: args.archive.as_deref(),
        to: args.to.clone(),
        include: &args.include,
        include_what: "--include",
        force: args.force,
        dry_run: args.dry_run,
        no_owner: args.no_owner,
    };
    let config = &session.loaded.config;
    let state_dir = config.state_dir();
    let open = || open_store(session);
    match backup::restore_asked(&asked, &config.backup, &state_dir, open) {
        Ok(restored) => {
            session.printer.human(&restored.text);
            Ok(0)
        }
        Err(e) => match e.downcast::<backup::Error>() {
            Ok(e) => failed_restore(e, session),
            Err(e) => Err(e),
        },
    }
}

/// A refused or failed restore: exit 1 with what was done and why; anything else (a
/// usage error, a held lock) exits by its kind.
fn failed_restore(e: backup::Error, session: &Session) -> anyhow::Result<u8> {
    match &e {
        backup::Error::Refused { entries, .. } => {
            for refused in entries {
                session.printer.error(&format!("refused {refused}"));
            }
        }
        backup::Error::Restore { done, .. } if !done.is_empty() => session.printer.human(done),
        backup::Error::Restore { .. } => {}
        _ => return Err(e.into()),
    }
    session.printer.error(&e.to_string());
    Ok(1)
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
