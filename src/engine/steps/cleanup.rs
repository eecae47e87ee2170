//! `cleanup`: remove regular files older than a limit from configured directories (old
//! exports, temp files, rotated logs nobody archives): an action step.
//!
//! It works through directory descriptors (`openat`, `fstatat`, `unlinkat`), so a symlink
//! is never followed out of the directory, not even one swapped in while it runs: a
//! symlink is never removed through nor descended into, and directories and special files
//! are never removed. `dry_run` lists what would go and removes nothing; `run --dry-run`
//! shows the same list through [`preview`].

use crate::engine::{Check, Context};
use crate::model::{BoxFuture, Data, Outcome, Status};
use crate::values::Text;
use serde::{Deserialize, Serialize};
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CleanupSpec {
    /// The directories to clean (a symlink given here is followed; none inside is).
    pub paths: Vec<Text>,
    /// Files whose last change is older than this are removed (`90d`, `12h`).
    pub older_than: crate::values::Duration,
    /// Only files whose name matches this glob (`*.log.gz`); every file when left out.
    #[serde(default, rename = "match")]
    pub pattern: Option<Text>,
    /// Also clean the subdirectories (never a symlinked one); directories stay.
    #[serde(default)]
    pub recursive: bool,
    /// Say what would be removed, remove nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What can stop a cleanup, each naming the path at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cleanup needs at least one directory in `paths`")]
    NoPaths,
    #[error("a directory in `paths` is empty (an unset variable?)")]
    EmptyPath,
    #[error("`older_than` must be more than 0s: a limit of 0 would remove files being written")]
    ZeroAge,
    #[error("`match`: {pattern:?} is not a valid glob: {why}")]
    Pattern { pattern: String, why: String },
    #[error("cannot read directory {dir}: {source}")]
    Unreadable { dir: String, source: std::io::Error },
    #[error("cannot remove {path}: {source}")]
    Remove {
        path: String,
        source: std::io::Error,
    },
}

/// The files removed (or, in a dry run, to be removed) and what went wrong on the way.
#[derive(Debug, Default)]
pub struct Swept {
    pub files: Vec<PathBuf>,
    pub bytes: u64,
    pub errors: Vec<Error>,
}

pub struct CleanupCheck {
    pub spec: CleanupSpec,
}

impl Check for CleanupCheck {
    fn kind(&self) -> &'static str {
        "cleanup"
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Outcome> {
        let spec = self.spec.clone();
        let now = ctx.clock.now();
        crate::model::blocking(move || {
            let swept = match sweep(&spec, now, spec.dry_run) {
                Ok(swept) => swept,
                Err(e) => return Outcome::unknown(e.to_string()),
            };
            let message = describe(&spec, &swept, spec.dry_run);
            if !spec.dry_run {
                let outcome = if swept.errors.is_empty() {
                    "ok"
                } else {
                    "failed"
                };
                crate::logging::audit::record("cleanup", outcome, Some(&message));
            }
            let status = if swept.errors.is_empty() {
                Status::Ok
            } else {
                Status::Critical
            };
            Outcome::new(status, message, Data::None)
        })
    }
}

/// What `run --dry-run` says a cleanup step would remove now.
pub fn preview(spec: &CleanupSpec) -> String {
    match sweep(spec, jiff::Timestamp::now(), true) {
        Ok(swept) => describe(spec, &swept, true),
        Err(e) => format!("cannot clean up: {e}"),
    }
}

/// The most file names a message lists.
const LISTED: usize = 20;

fn describe(spec: &CleanupSpec, swept: &Swept, dry_run: bool) -> String {
    let dirs: Vec<&str> = spec.paths.iter().map(Text::shown).collect();
    let count = crate::plural::count(swept.files.len(), "file", "files");
    let size = crate::probe::process::size(swept.bytes);
    let mut message = if dry_run {
        format!("would remove {count} ({size}) from {}", dirs.join(", "))
    } else {
        format!("removed {count}, {size} freed, from {}", dirs.join(", "))
    };
    if dry_run && !swept.files.is_empty() {
        let names: Vec<String> = swept
            .files
            .iter()
            .take(LISTED)
            .map(|f| f.to_string_lossy().into_owned())
            .collect();
        message.push_str(&format!(": {}", names.join(", ")));
        if swept.files.len() > LISTED {
            message.push_str(&format!(" and {} more", swept.files.len() - LISTED));
        }
    }
    for error in &swept.errors {
        message.push_str(&format!("; {error}"));
    }
    message
}

/// Remove (or with `dry_run` only list) the old matching files under every directory.
/// Errors in the settings stop it before anything is touched; an unreadable directory or
/// a file that cannot be removed is collected and the rest carries on.
pub fn sweep(spec: &CleanupSpec, now: jiff::Timestamp, dry_run: bool) -> Result<Swept, Error> {
    if spec.paths.is_empty() {
        return Err(Error::NoPaths);
    }
    if spec.paths.iter().any(|p| p.as_str().trim().is_empty()) {
        return Err(Error::EmptyPath);
    }
    if spec.older_than.0.is_zero() {
        return Err(Error::ZeroAge);
    }
    let matcher = match &spec.pattern {
        Some(pattern) => Some(
            globset::Glob::new(pattern.as_str())
                .map_err(|e| Error::Pattern {
                    pattern: pattern.shown().to_string(),
                    why: e.kind().to_string(),
                })?
                .compile_matcher(),
        ),
        None => None,
    };
    let age = i64::try_from(spec.older_than.0.as_secs()).unwrap_or(i64::MAX);
    let walk = Walk {
        cutoff: now.as_second().saturating_sub(age),
        matcher,
        recursive: spec.recursive,
        dry_run,
    };
    let mut swept = Swept::default();
    for dir in &spec.paths {
        let path = PathBuf::from(dir.as_str());
        match open_dir(None, path.as_os_str(), true) {
            Ok(fd) => walk.dir(&fd, &path, &mut swept),
            Err(source) => swept.errors.push(Error::Unreadable {
                dir: dir.shown().to_string(),
                source,
            }),
        }
    }
    Ok(swept)
}

struct Walk {
    /// Files last changed before this second (Unix time) are old.
    cutoff: i64,
    matcher: Option<globset::GlobMatcher>,
    recursive: bool,
    dry_run: bool,
}

impl Walk {
    fn dir(&self, fd: &OwnedFd, path: &Path, swept: &mut Swept) {
        let names = match list(fd) {
            Ok(names) => names,
            Err(source) => {
                let dir = path.to_string_lossy().into_owned();
                swept.errors.push(Error::Unreadable { dir, source });
                return;
            }
        };
        for name in names {
            let Ok(c_name) = CString::new(name.as_bytes()) else {
                continue;
            };
            let full = path.join(&name);
            let Ok(stat) = stat_at(fd, &c_name) else {
                continue; // gone since the listing
            };
            match stat.st_mode & libc::S_IFMT {
                libc::S_IFREG => self.file(fd, &c_name, &name, &full, &stat, swept),
                libc::S_IFDIR if self.recursive => match open_dir(Some(fd), &name, false) {
                    Ok(sub) => self.dir(&sub, &full, swept),
                    Err(source) => swept.errors.push(Error::Unreadable {
                        dir: full.to_string_lossy().into_owned(),
                        source,
                    }),
                },
                // Symlinks, directories (not recursive), sockets, fifos, devices: left.
                _ => {}
            }
        }
    }

    fn file(
        &self,
        fd: &OwnedFd,
        c_name: &CString,
        name: &OsStr,
        full: &Path,
        stat: &libc::stat,
        swept: &mut Swept,
    ) {
        if stat.st_mtime >= self.cutoff {
            return;
        }
        if let Some(matcher) = &self.matcher
            && !matcher.is_match(Path::new(name))
        {
            return;
        }
        if !self.dry_run {
            // SAFETY: fd is an open directory and c_name a NUL-terminated name in it;
            // unlinkat never follows a symlink, so at worst a swapped-in link is removed.
            if unsafe { libc::unlinkat(fd.as_raw_fd(), c_name.as_ptr(), 0) } != 0 {
                swept.errors.push(Error::Remove {
                    path: full.to_string_lossy().into_owned(),
                    source: std::io::Error::last_os_error(),
                });
                return;
            }
        }
        swept.files.push(full.to_path_buf());
        swept.bytes += u64::try_from(stat.st_size).unwrap_or(0);
    }
}

/// Open a directory: the top one by its path (a symlink there is the operator's choice),
/// one inside only as a real directory (`O_NOFOLLOW`).
fn open_dir(parent: Option<&OwnedFd>, name: &OsStr, top: bool) -> std::io::Result<OwnedFd> {
    let c_name = CString::new(name.as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let mut flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
    if !top {
        flags |= libc::O_NOFOLLOW;
    }
    let at = parent.map_or(libc::AT_FDCWD, |p| p.as_raw_fd());
    // SAFETY: c_name is NUL-terminated; the returned descriptor is owned below.
    let fd = unsafe { libc::openat(at, c_name.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The names in an open directory (read through /proc, so the directory read is the one
/// the descriptor holds, whatever its path now points at).
fn list(fd: &OwnedFd) -> std::io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/self/fd/{}", fd.as_raw_fd()))? {
        names.push(entry?.file_name());
    }
    names.sort();
    Ok(names)
}

fn stat_at(fd: &OwnedFd, name: &CString) -> std::io::Result<libc::stat> {
    // SAFETY: a zeroed stat is a valid value to be overwritten.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is an open directory, name NUL-terminated, stat a valid buffer.
    let rc = unsafe {
        libc::fstatat(
            fd.as_raw_fd(),
            name.as_ptr(),
            &mut stat,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stat)
}
