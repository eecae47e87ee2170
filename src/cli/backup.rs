//! `opsbook backup create|list|verify`: local destinations; one lock per set.

use super::{Session, check_context};
use crate::backup::{self, archive, restore};
use crate::lock::Lock;
use clap::{Args, Subcommand, ValueEnum};
use std::collections::BTreeMap;

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

/// Per set: the id and time of the last backup that passed verification.
type Verified = BTreeMap<String, (String, String)>;

fn verified_path(session: &Session) -> std::path::PathBuf {
    session
        .loaded
        .config
        .state_dir()
        .join("backup-verified.json")
}

fn load_verified(session: &Session) -> Verified {
    std::fs::read_to_string(verified_path(session))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Creating and pruning one set never overlap: one lock per set (exit 75).
fn lock_set(state_dir: &std::path::Path, name: &str) -> anyhow::Result<Lock> {
    Lock::acquire(
        state_dir,
        &format!("backup-{name}"),
        &format!("backup set {name:?}"),
    )
}

pub fn exec(command: &BackupCommand, session: &Session) -> anyhow::Result<u8> {
    let config = &session.loaded.config.backup;
    let dest = config.destination().map_err(crate::Error::Usage)?;
    match command {
        BackupCommand::Create { sets } => {
            let chosen = super::pick_sets(sets, &config.sets, "backup.sets")?;
            let now = check_context()?.clock.now();
            let state_dir = session.loaded.config.state_dir();
            let mut failed = false;
            for (name, set) in chosen {
                let _lock = lock_set(&state_dir, name)?;
                match archive::create(name, set, &dest, now) {
                    Ok(m) => session.printer.human(&format!(
                        "{name}: created {} ({} files, {} bytes compressed)\n",
                        m.id,
                        m.files.len(),
                        m.archive_bytes
                    )),
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
            let verified = load_verified(session);
            let backups: Vec<_> = backup::list(&dest)
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
                                "verified": verified.get(&m.set).is_some_and(|(id, _)| *id == m.id),
                            })
                        })
                        .collect();
                    let text = serde_json::to_string_pretty(&rows).unwrap_or_default();
                    session.printer.data(&format!("{text}\n"));
                }
                ListFormat::Text => {
                    let mut out = String::new();
                    for m in &backups {
                        let mark = if verified.get(&m.set).is_some_and(|(id, _)| *id == m.id) {
                            "verified"
                        } else {
                            ""
                        };
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
            let all = backup::list(&dest);
            let verb = if *dry_run { "would remove" } else { "removed" };
            let mut failed = false;
            let mut out = String::new();
            for (name, set) in chosen {
                let _lock = lock_set(&state_dir, name)?;
                let mine: Vec<&backup::Manifest> = all.iter().filter(|m| m.set == name).collect();
                let (keep, remove) = backup::retention::plan(set, &mine, &zone);
                for (id, why) in &keep {
                    out.push_str(&format!("{name}: keep {id} ({})\n", why.join(", ")));
                }
                let leftovers = std::fs::read_dir(&dest)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(&format!("{name}-")) && n.ends_with(".partial"));
                for id in remove.iter().cloned().chain(leftovers) {
                    out.push_str(&format!("{name}: {verb} {id}\n"));
                    if *dry_run {
                        continue;
                    }
                    match std::fs::remove_dir_all(dest.join(&id)) {
                        Ok(()) => crate::logging::audit::record("backup.prune", "ok", Some(&id)),
                        Err(e) => {
                            failed = true;
                            session.printer.error(&format!("cannot remove {id}: {e}"));
                        }
                    }
                }
            }
            session.printer.human(&out);
            Ok(u8::from(failed))
        }
        BackupCommand::Verify(args) => {
            let backups = backup::list(&dest);
            let manifest =
                backup::find(&backups, &args.id, args.set.as_deref()).ok_or_else(|| {
                    crate::Error::Usage(format!(
                        "no backup {:?} in {} (`opsbook backup list` shows the ids)",
                        args.id,
                        dest.display()
                    ))
                })?;
            let problems = archive::verify(&dest.join(&manifest.id), manifest);
            if problems.is_empty() {
                let mut verified = load_verified(session);
                let now = check_context()?.clock.now().to_string();
                verified.insert(manifest.set.clone(), (manifest.id.clone(), now));
                let text = serde_json::to_string_pretty(&verified).unwrap_or_default();
                crate::fsutil::write_atomically(&verified_path(session), text.as_bytes())
                    .map_err(anyhow::Error::msg)?;
                session.printer.human(&format!(
                    "{}: verified, {} files match the manifest\n",
                    manifest.id,
                    manifest.files.len()
                ));
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
    let (label, outcome) = if let Some(file) = &args.archive {
        if !file.is_file() {
            return Err(crate::Error::Usage(format!("no archive {}", file.display())).into());
        }
        let outcome = restore::restore(file, None, &[], &options);
        (file.display().to_string(), outcome)
    } else {
        let config = &session.loaded.config.backup;
        let dest = config.destination().map_err(crate::Error::Usage)?;
        let backups = backup::list(&dest);
        let wanted = args.id.as_deref().unwrap_or("latest");
        let manifest = backup::find(&backups, wanted, args.set.as_deref()).ok_or_else(|| {
            crate::Error::Usage(format!(
                "no backup {wanted:?} in {} (`opsbook backup list` shows the ids)",
                dest.display()
            ))
        })?;
        let _lock = lock_set(&session.loaded.config.state_dir(), &manifest.set)?;
        let archive = dest.join(&manifest.id).join(&manifest.archive);
        let outcome = restore::restore(&archive, Some(manifest), &[], &options);
        (manifest.id.clone(), outcome)
    };
    let outcome = match outcome {
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
    if args.dry_run {
        let mut out = String::new();
        for path in &outcome.restored {
            out.push_str(&format!("would restore {path}\n"));
        }
        out.push_str(&format!(
            "{label}: would restore {} into {to}\n",
            counts(&outcome)
        ));
        session.printer.human(&out);
        return Ok(0);
    }
    let what = format!("{label}: restored {} into {to}", counts(&outcome));
    crate::logging::audit::record("restore", "ok", Some(&what));
    session.printer.human(&format!("{what}\n"));
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
