//! One function per action on a log set, called by `opsbook logs rotate|archive` and by the
//! `rotate` and `archive` runbook steps alike: each takes the set's lock itself (rotation
//! and archiving of one set never overlap), does the work and writes its audit lines; the
//! callers only render what comes back.

use super::Error;
use super::rotate::{Outcome, Rotation};
use super::set::LogSet;
use std::path::{Path, PathBuf};

/// How `rotate_set` runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct RotateOptions {
    /// Say every step and do none.
    pub dry_run: bool,
    /// Rotate whether due or not.
    pub force: bool,
}

/// Rotate the files of set `name` that are due, under the set's lock. A lock held by
/// another run is an error; everything else that failed is in the outcome's `errors`.
pub fn rotate_set(
    name: &str,
    set: &LogSet,
    state_dir: &Path,
    now: jiff::Timestamp,
    options: RotateOptions,
) -> Result<Outcome, Error> {
    let _lock = lock(state_dir, name)?;
    Ok(Rotation {
        name,
        set,
        state_dir,
        now,
        dry_run: options.dry_run,
        force: options.force,
    }
    .run())
}

/// What `archive_set` found or did.
#[derive(Debug)]
pub enum Archived {
    /// No rotated file is older than the cutoff.
    Nothing,
    /// A dry run: the files that would go into the archive (none is touched).
    Would(Vec<PathBuf>),
    /// The archive run: the archive, the files it holds now, and any errors.
    Done(super::archive::Outcome),
}

/// How old a rotated file of set `name` must be to be archived: `older_than` when given,
/// else the set's `archive_after`; with neither, an error that names `option` (how the
/// caller spells `older_than`).
pub fn archive_age(
    name: &str,
    set: &LogSet,
    older_than: Option<std::time::Duration>,
    option: &'static str,
) -> Result<std::time::Duration, Error> {
    older_than
        .or(set.archive_after.map(|d| d.0))
        .ok_or_else(|| Error::NoArchiveAge {
            set: name.to_string(),
            option,
        })
}

/// Put the rotated files of set `name` older than `older_than` into one verified archive
/// (in `archive_dir`, or beside the files), then delete them; all under the set's lock.
pub fn archive_set(
    name: &str,
    set: &LogSet,
    state_dir: &Path,
    older_than: std::time::Duration,
    now: jiff::Timestamp,
    dry_run: bool,
) -> Result<Archived, Error> {
    let _lock = lock(state_dir, name)?;
    let files = super::archive::candidates(set, older_than, now)?;
    let Some(first) = files.first() else {
        return Ok(Archived::Nothing);
    };
    if dry_run {
        return Ok(Archived::Would(files));
    }
    let dir = match &set.archive_dir {
        Some(dir) => PathBuf::from(dir.as_str()),
        None => super::safe::parent(first).to_path_buf(),
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
    Ok(Archived::Done(super::archive::archive(
        name, set, &files, &dir, now,
    )))
}

/// A log set's lock, as every action on the set takes it.
fn lock(state_dir: &Path, name: &str) -> Result<crate::lock::Lock, Error> {
    crate::lock::Lock::log_set(state_dir, name).map_err(Error::Lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_in(dir: &Path) -> LogSet {
        let mut set = LogSet::for_file(&dir.join("app.log"));
        set.keep = 3;
        set
    }

    #[test]
    fn an_action_on_a_set_whose_lock_is_held_fails_busy_and_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.log"), "x\n").unwrap();
        std::fs::write(dir.path().join("app.log.1"), "old\n").unwrap();
        let state = dir.path().join("state");
        let _held = lock(&state, "app").unwrap();
        let set = set_in(dir.path());
        let now = jiff::Timestamp::now();
        let options = RotateOptions {
            dry_run: false,
            force: true,
        };
        let err = rotate_set("app", &set, &state, now, options).unwrap_err();
        assert_eq!(err.kind(), crate::error::Kind::Busy);
        assert!(
            err.to_string().starts_with("log set \"app\" is locked"),
            "{err}"
        );
        let long = std::time::Duration::from_secs(0);
        let err = archive_set("app", &set, &state, long, now, false).unwrap_err();
        assert_eq!(err.kind(), crate::error::Kind::Busy);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("app.log")).unwrap(),
            "x\n"
        );
        assert!(dir.path().join("app.log.1").exists());
    }

    #[test]
    fn archive_set_lists_in_a_dry_run_then_archives_beside_the_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.log"), "live\n").unwrap();
        std::fs::write(dir.path().join("app.log.1"), "old\n").unwrap();
        let state = dir.path().join("state");
        let set = set_in(dir.path());
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(48);
        let day = std::time::Duration::from_secs(86_400);
        let week = 7 * day;
        let nothing = archive_set("app", &set, &state, week, later, false).unwrap();
        assert!(matches!(nothing, Archived::Nothing), "{nothing:?}");
        let dry = archive_set("app", &set, &state, day, later, true).unwrap();
        let Archived::Would(files) = dry else {
            panic!("a dry run archives nothing: {dry:?}");
        };
        assert_eq!(files, vec![dir.path().join("app.log.1")]);
        assert!(dir.path().join("app.log.1").exists());
        let done = archive_set("app", &set, &state, day, later, false).unwrap();
        let Archived::Done(outcome) = done else {
            panic!("the old file is archived: {done:?}");
        };
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        let archive = PathBuf::from(outcome.archive.unwrap());
        assert_eq!(archive.parent(), Some(dir.path()));
        assert!(!dir.path().join("app.log.1").exists());
    }
}
