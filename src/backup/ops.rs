//! The backup actions, one function each: [`create_set`], [`prune_set`], [`verify`],
//! [`drill`] and [`restore`]. `opsbook backup …`, `opsbook restore` and the runbook steps
//! all call these; each takes its own lock and writes its own audit line, and returns what
//! happened for the caller to render.

use super::commands::CommandSource;
use super::store::{Listing, Store};
use super::{BackupConfig, BackupSet, Error, Manifest, archive, restore as tree, retention};
use crate::clock::Clock;
use crate::logging::audit;
use crate::plural::count;
use std::path::Path;
use std::sync::Arc;

/// Where the actions work: the sets, the store they go to, and the state directory
/// (locks, verification records).
pub struct Job<'a> {
    pub config: &'a BackupConfig,
    pub store: &'a Store,
    pub state_dir: &'a Path,
}

impl<'a> Job<'a> {
    /// The job on `config`'s sets, sending to `store`, with its records in `state_dir`.
    pub fn new(config: &'a BackupConfig, store: &'a Store, state_dir: &'a Path) -> Self {
        Job {
            config,
            store,
            state_dir,
        }
    }
}

/// Which backup: an id, or `latest` (of `set`, if given).
#[derive(Clone, Copy, Debug)]
pub struct Pick<'a> {
    pub wanted: &'a str,
    pub set: Option<&'a str>,
}

/// Runs a set's `verify: { runbook: NAME }` check against a restored directory (the
/// runbook runner lives above this library, so its caller hands it in): what passed, or why
/// not.
pub type RunbookCheck = dyn Fn(&str, &Path) -> Result<String, Error> + Send + Sync;

/// The runbook runner a drill started from a runbook step uses (set by the CLI where the
/// step context is built; none elsewhere).
#[derive(Clone, Default)]
pub struct RunbookRunner(pub Option<Arc<RunbookCheck>>);

impl std::fmt::Debug for RunbookRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.0.is_some() { "set" } else { "none" };
        write!(f, "RunbookRunner({state})")
    }
}

impl RunbookRunner {
    /// The runner, or one that says no runbook can run here.
    pub fn check(&self) -> &RunbookCheck {
        match &self.0 {
            Some(run) => run.as_ref(),
            None => &no_runner,
        }
    }
}

fn no_runner(name: &str, _: &Path) -> Result<String, Error> {
    Err(Error::Failed(format!(
        "runbook {name} cannot run here: no runbook runner was given to the drill"
    )))
}

/// The set's lock: create, prune and restore of one set never overlap.
fn lock(state_dir: &Path, set: &str) -> Result<crate::lock::Lock, Error> {
    crate::lock::Lock::backup_set(state_dir, set).map_err(Error::Lock)
}

/// What [`create_set`] made, for a person: `ID (N files, B bytes compressed) in DEST`, and
/// the warnings that did not fail it (a file that grew while read, a dump's stderr).
#[derive(Debug)]
pub struct Created {
    pub what: String,
    pub warnings: Vec<String>,
}

/// Back up `name` under its lock: built in the store's staging place, then sent (S3),
/// and audited.
pub fn create_set(
    job: &Job,
    name: &str,
    set: &BackupSet,
    now: jiff::Timestamp,
    progress: &dyn Fn(u64),
) -> Result<Created, Error> {
    let _lock = lock(job.state_dir, name)?;
    let store = job.store;
    let made = (|| {
        let id = store.new_id(name, now)?;
        let (staging, _temp) = store.staging()?;
        let made = archive::create(name, set, &staging, &id, now, progress)?;
        store.upload(&staging, &made.manifest)?;
        Ok::<_, Error>(made)
    })();
    let archive::Made {
        manifest: m,
        warnings,
    } = made
        .inspect_err(|e| audit::record("backup.create", "failed", Some(&format!("{name}: {e}"))))?;
    let what = format!(
        "{} ({}, {} compressed) in {}",
        m.id,
        count(m.files.len(), "file", "files"),
        count(m.archive_bytes, "byte", "bytes"),
        store.shown()
    );
    let audited = if warnings.is_empty() {
        what.clone()
    } else {
        format!("{what}; warnings: {}", warnings.join("; "))
    };
    audit::record("backup.create", "ok", Some(&audited));
    Ok(Created { what, warnings })
}

/// What a prune kept (with the rules that keep each), removed (or would), and failed on;
/// `scratch`: one line per scratch directory of a killed restore test removed (or that
/// would be), or that could not be.
#[derive(Debug, Default)]
pub struct Pruned {
    pub kept: Vec<(String, Vec<String>)>,
    pub removed: Vec<String>,
    pub errors: Vec<String>,
    pub scratch: Vec<String>,
}

/// Under the set's lock, apply `set`'s retention to its backups and remove leftovers of
/// interrupted runs (the set's partial backups, and the scratch directories of restore
/// tests killed outright); each backup removed is audited. The set's last backup that
/// passed a restore test (from the verification records) is never removed. A directory
/// whose manifest does not match its name is reported and never touched.
pub fn prune_set(
    job: &Job,
    name: &str,
    set: &BackupSet,
    zone: &jiff::tz::TimeZone,
    dry_run: bool,
) -> Result<Pruned, Error> {
    let _lock = lock(job.state_dir, name)?;
    let listing = job.store.scan()?;
    let records = super::state::load(job.state_dir);
    let drilled = records.get(name).and_then(|r| r.drilled_id.as_deref());
    let mut pruned = prune(job.store, name, set, &listing, drilled, zone, dry_run)?;
    let scratch = super::drill::remove_stale_scratch(dry_run);
    pruned.scratch = scratch.lines().map(String::from).collect();
    Ok(pruned)
}

fn prune(
    store: &Store,
    name: &str,
    set: &BackupSet,
    listing: &Listing,
    drilled: Option<&str>,
    zone: &jiff::tz::TimeZone,
    dry_run: bool,
) -> Result<Pruned, Error> {
    let mine: Vec<&Manifest> = listing.backups.iter().filter(|m| m.set == name).collect();
    let (kept, remove) = retention::plan(set, &mine, drilled, zone);
    let mut out = Pruned {
        kept,
        ..Pruned::default()
    };
    for suspect in listing.suspects.iter().filter(|s| s.concerns(name)) {
        out.errors.push(format!("{}/{suspect}", store.shown()));
    }
    for id in remove.into_iter().chain(store.leftovers(name)?) {
        if !dry_run {
            match store.remove(&id) {
                Ok(()) => audit::record("backup.prune", "ok", Some(&id)),
                Err(e) => {
                    out.errors.push(format!("cannot remove {id}: {e}"));
                    continue;
                }
            }
        }
        out.removed.push(id);
    }
    Ok(out)
}

/// A backup that matched its manifest (and, from [`drill`], passed its restore test).
#[derive(Debug)]
pub struct Verified {
    pub id: String,
    pub files: usize,
    /// What the restore test did, when there was one.
    pub drilled: Option<String>,
}

impl Verified {
    /// `ID: verified, N files match the manifest`.
    pub fn summary(&self) -> String {
        format!(
            "{}: verified, {} the manifest",
            self.id,
            count(self.files, "file matches", "files match")
        )
    }
}

/// Stream the picked backup and compare every file with its manifest, without
/// extracting; a pass is recorded in the verification records.
pub fn verify(job: &Job, pick: Pick, clock: &dyn Clock) -> Result<Verified, Error> {
    check(job, pick, clock, None)
}

/// [`verify`], then the restore drill: restore into a scratch directory, feed each command
/// source's dump to its `test_restore` command, run the set's `verify` check there
/// (`runbook` runs a `verify: { runbook: NAME }`), and leave nothing behind. Audited either
/// way; a pass is recorded as the set's last drill.
pub fn drill(
    job: &Job,
    pick: Pick,
    clock: &dyn Clock,
    runbook: &RunbookCheck,
) -> Result<Verified, Error> {
    check(job, pick, clock, Some(runbook))
}

fn check(
    job: &Job,
    pick: Pick,
    clock: &dyn Clock,
    drill: Option<&RunbookCheck>,
) -> Result<Verified, Error> {
    let backups = job.store.list()?;
    let manifest = find(job.store, &backups, pick)?;
    let (dir, _fetched) = job.store.fetch(manifest)?;
    let problems = archive::verify(&dir, manifest);
    if !problems.is_empty() {
        return Err(Error::Mismatch {
            id: manifest.id.clone(),
            problems,
        });
    }
    let drilled = match drill {
        None => None,
        Some(runbook) => {
            let set = job.config.sets.get(&manifest.set);
            match super::drill::run(&dir, manifest, set, runbook) {
                Ok(done) => Some(done),
                Err(e) => {
                    audit::record("backup.drill", "failed", Some(&manifest.id));
                    return Err(Error::Drill {
                        id: manifest.id.clone(),
                        reason: Box::new(e),
                    });
                }
            }
        }
    };
    let (set, id) = (&manifest.set, &manifest.id);
    // Read once the check (and a drill, however long) is over: the time it passed.
    super::state::record(job.state_dir, set, id, clock.now(), drilled.is_some())?;
    if drilled.is_some() {
        audit::record("backup.drill", "ok", Some(id));
    }
    Ok(Verified {
        id: id.clone(),
        files: manifest.files.len(),
        drilled,
    })
}

/// The picked backup among `backups`, or an error pointing at `backup list`.
fn find<'a>(store: &Store, backups: &'a [Manifest], pick: Pick) -> Result<&'a Manifest, Error> {
    super::find(backups, pick.wanted, pick.set).ok_or_else(|| Error::NoBackup {
        wanted: pick.wanted.to_string(),
        store: store.shown(),
    })
}

/// What [`restore`] restores from.
pub enum Source<'a> {
    /// A tar, tar.gz or tar.zst made by hand.
    Archive(&'a Path),
    /// A backup in the store, verified against its manifest on the way, under its set's
    /// lock; dumps of command sources with a `restore` command go to it.
    Backup { job: &'a Job<'a>, pick: Pick<'a> },
}

/// A restore as a person asks for it (`opsbook restore`, a `restore` step): a hand-made
/// `archive`, or backup `id` (default `latest`, of `set` if given), into `to`.
pub struct Asked<'a> {
    pub id: Option<&'a str>,
    pub set: Option<&'a str>,
    pub archive: Option<&'a Path>,
    pub to: std::path::PathBuf,
    /// Only the paths matching these globs; an invalid one is named with `include_what`
    /// (`--include`, `include`).
    pub include: &'a [String],
    pub include_what: &'a str,
    pub force: bool,
    pub dry_run: bool,
    pub no_owner: bool,
}

/// [`restore`] as asked: the options built (the include globs checked first), then the
/// archive restored, or the picked backup from the store `open` gives (opened only then,
/// so restoring a hand-made archive needs no destination).
pub fn restore_asked<E: From<Error>>(
    asked: &Asked,
    config: &BackupConfig,
    state_dir: &Path,
    open: impl FnOnce() -> Result<Store, E>,
) -> Result<Restored, E> {
    let include = match asked.include {
        [] => None,
        globs => Some(archive::globs(globs, asked.include_what)?),
    };
    let options = tree::Options {
        to: asked.to.clone(),
        include,
        force: asked.force,
        dry_run: asked.dry_run,
        no_owner: asked.no_owner,
    };
    if let Some(file) = asked.archive {
        return Ok(restore(Source::Archive(file), &options)?);
    }
    let store = open()?;
    let job = Job::new(config, &store, state_dir);
    let pick = Pick {
        wanted: asked.id.unwrap_or("latest"),
        set: asked.set,
    };
    Ok(restore(Source::Backup { job: &job, pick }, &options)?)
}

/// What a restore did (or, dry, would do): the lines a person reads, as audited.
#[derive(Debug)]
pub struct Restored {
    pub label: String,
    pub text: String,
}

/// Restore a backup or a hand-made archive into `options.to`, every entry checked before
/// anything is written; audited (not when dry).
pub fn restore(from: Source, options: &tree::Options) -> Result<Restored, Error> {
    match from {
        Source::Archive(file) => {
            if !file.is_file() {
                return Err(Error::NoArchive(file.display().to_string()));
            }
            let outcome = tree::restore(file, None, &[], options);
            finish(file.display().to_string(), outcome, &[], options)
        }
        Source::Backup { job, pick } => {
            let backups = job.store.list()?;
            let manifest = find(job.store, &backups, pick)?;
            let _lock = lock(job.state_dir, &manifest.set)?;
            // A downloaded archive lives as long as the restore.
            let (dir, _fetched) = job.store.fetch(manifest)?;
            let sources: Vec<&CommandSource> = job
                .config
                .sets
                .get(&manifest.set)
                .map(|s| s.command.0.iter().filter(|c| c.restore.is_some()).collect())
                .unwrap_or_default();
            let dumps: Vec<String> = sources.iter().map(|c| c.member()).collect();
            let archive = dir.join(&manifest.archive);
            let outcome = tree::restore(&archive, Some(manifest), &dumps, options);
            finish(manifest.id.clone(), outcome, &sources, options)
        }
    }
}

/// After the tree restore: refusals, the dry run's plan, or the dumps fed to their
/// restore commands; audited.
fn finish(
    label: String,
    outcome: Result<tree::Outcome, Error>,
    sources: &[&CommandSource],
    options: &tree::Options,
) -> Result<Restored, Error> {
    let mut outcome = outcome.map_err(|e| {
        audit::record("restore", "failed", Some(&format!("{label}: {e}")));
        Error::Restore {
            label: label.clone(),
            reason: Box::new(e),
            done: String::new(),
        }
    })?;
    if !outcome.refused.is_empty() {
        let refused = Error::Refused {
            label,
            entries: std::mem::take(&mut outcome.refused),
        };
        audit::record("restore", "refused", Some(&refused.to_string()));
        return Err(refused);
    }
    if options.dry_run {
        let text = plan(&label, &outcome, sources, options);
        return Ok(Restored { label, text });
    }
    let to = options.to.display();
    let mut text = format!("{label}: restored {} into {to}\n", counts(&outcome));
    for (member, file) in &outcome.dumps {
        let Some((command, shell)) = restore_command(sources, member) else {
            continue;
        };
        let ran = std::fs::File::open(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))
            .and_then(|stdin| {
                super::commands::run(
                    command,
                    shell,
                    stdin.into(),
                    std::process::Stdio::null(),
                    None,
                )
                .map_err(|e| e.to_string())
            });
        if let Err(e) = ran {
            let failed = Error::Restore {
                label: label.clone(),
                reason: Box::new(Error::Failed(format!("restoring {member}: {e}"))),
                done: text,
            };
            audit::record("restore", "failed", Some(&failed.to_string()));
            return Err(failed);
        }
        text.push_str(&format!(
            "{label}: {member} restored by `{}`\n",
            command.shown()
        ));
    }
    outcome.finish();
    audit::record("restore", "ok", Some(text.trim_end()));
    Ok(Restored { label, text })
}

/// The dump source whose `restore` command takes `member`, with its shell flag.
fn restore_command<'s>(
    sources: &[&'s CommandSource],
    member: &str,
) -> Option<(&'s crate::values::Text, bool)> {
    sources
        .iter()
        .find(|c| c.member() == member)
        .and_then(|c| c.restore.as_ref().map(|r| (r, c.shell)))
}

/// A dry run's lines: what would be restored, and which dumps would go to which command.
fn plan(
    label: &str,
    outcome: &tree::Outcome,
    sources: &[&CommandSource],
    options: &tree::Options,
) -> String {
    let mut text = String::new();
    for path in &outcome.restored {
        match restore_command(sources, path) {
            Some((command, _)) => {
                text.push_str(&format!("would run `{}` < {path}\n", command.shown()));
            }
            None => text.push_str(&format!("would restore {path}\n")),
        }
    }
    text.push_str(&format!(
        "{label}: would restore {} into {}\n",
        counts(outcome),
        options.to.display()
    ));
    text
}

fn counts(outcome: &tree::Outcome) -> String {
    format!(
        "{}, {}, {}",
        count(outcome.files, "file", "files"),
        count(outcome.dirs, "directory", "directories"),
        count(outcome.links, "symlink", "symlinks")
    )
}
