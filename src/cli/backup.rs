//! `opsbook backup create|list|verify`: local destinations; one lock per set.

use super::{Session, check_context};
use crate::backup::{self, archive};
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
