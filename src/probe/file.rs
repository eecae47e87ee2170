//! `file`: a path exists (or is absent), with a mode, an owner, a maximum age and size,
//! and content; on a directory, the number of files in it and their total size graded
//! like any number (seed 002's error and pickup folders).

use super::threshold::{Levels, grade, note};
use super::{Env, Probe};
use crate::model::{BoxFuture, Data, Outcome, Status};
use crate::plural::count;
use crate::values::{ByteSize, Duration, Invalid, Mode, Text};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(try_from = "RawFileSpec")]
pub struct FileSpec {
    pub path: Text,
    pub exists: bool,
    pub mode: Option<Mode>,
    pub owner: Option<String>,
    pub max_age: Option<Duration>,
    pub max_size: Option<ByteSize>,
    pub contains: Option<Text>,
    pub count: Option<Levels>,
    pub size: Option<Levels>,
    pub recursive: Option<bool>,
    pub newest: bool,
}

/// The settings as written; `FileSpec` checks them together.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFileSpec {
    /// A path; with `newest: true`, a glob (`/backups/*.tar.gz`).
    path: Text,
    /// `false` asks for the path to be absent (a maintenance flag, a stale lock).
    #[serde(default = "yes")]
    exists: bool,
    /// Octal permission bits that must match exactly: `"0640"`.
    mode: Option<Mode>,
    /// A user name or uid.
    #[serde(default, deserialize_with = "crate::values::text::templated_opt")]
    owner: Option<String>,
    /// Modified no longer ago than this.
    max_age: Option<Duration>,
    max_size: Option<ByteSize>,
    /// Text the file must contain.
    contains: Option<Text>,
    /// On a directory: how many entries it holds (directly in it, unless `recursive`).
    count: Option<Levels>,
    /// On a directory: the total size of the files in it (the whole tree, unless
    /// `recursive: false`); on a file, its size: bytes, or sizes such as 500M, 1G.
    size: Option<ByteLevels>,
    /// Count and size the whole tree below the directory (symlinks are never followed).
    recursive: Option<bool>,
    /// `path` is a glob: check its most recently modified match (no match is critical).
    #[serde(default)]
    newest: bool,
}

impl TryFrom<RawFileSpec> for FileSpec {
    type Error = Invalid;

    fn try_from(raw: RawFileSpec) -> Result<Self, Invalid> {
        if raw.recursive.is_some() && raw.count.is_none() && raw.size.is_none() {
            return Err(Invalid(
                "file: `recursive` applies to a directory's `count` and `size`: give one of them, or leave `recursive` out"
                    .to_string(),
            ));
        }
        if raw.newest
            && let Err(e) = glob::Pattern::new(raw.path.as_str())
        {
            return Err(Invalid(format!(
                "file: {:?} is not a glob ({e}); write e.g. /backups/*.tar.gz",
                raw.path.shown()
            )));
        }
        Ok(FileSpec {
            path: raw.path,
            exists: raw.exists,
            mode: raw.mode,
            owner: raw.owner,
            max_age: raw.max_age,
            max_size: raw.max_size,
            contains: raw.contains,
            count: raw.count,
            size: raw.size.as_ref().map(ByteLevels::levels).transpose()?,
            recursive: raw.recursive,
            newest: raw.newest,
        })
    }
}

/// `{ warn: 500M, crit: 1G }`: levels in bytes, written as sizes or numbers; one alone is
/// a one-level threshold.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ByteLevels {
    warn: Option<ByteSize>,
    crit: Option<ByteSize>,
    /// Smaller is worse (a dump that came out too small).
    #[serde(default)]
    below: bool,
}

impl ByteLevels {
    fn levels(&self) -> Result<Levels, Invalid> {
        let bytes = |b: Option<ByteSize>| b.map(|b| b.0 as f64);
        super::threshold::levels_from(bytes(self.warn), bytes(self.crit), self.below)
            .map_err(|e| Invalid(format!("file size: {e}")))
    }
}

fn yes() -> bool {
    true
}

pub struct FileCheck {
    pub spec: FileSpec,
}

impl Probe for FileCheck {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn run<'a>(&'a self, ctx: &'a Env) -> BoxFuture<'a, Outcome> {
        let spec = self.spec.clone();
        let now = ctx.clock.now();
        crate::model::blocking(move || inspect(&spec, now))
    }
}

fn inspect(spec: &FileSpec, now: jiff::Timestamp) -> Outcome {
    if spec.newest {
        return inspect_newest(spec, now);
    }
    inspect_path(spec, spec.path.shown(), Path::new(spec.path.as_str()), now)
}

/// `newest: true`: the glob's most recently modified match, checked as the path itself.
fn inspect_newest(spec: &FileSpec, now: jiff::Timestamp) -> Outcome {
    let glob = spec.path.shown();
    let critical = |message: String| Outcome::new(Status::Critical, message, Data::None);
    let (newest, error) = match newest_match(spec.path.as_str()) {
        Ok(found) => found,
        Err(e) => return Outcome::unknown(format!("{glob} is not a glob: {e}")),
    };
    match (newest, spec.exists) {
        (None, true) => match error {
            Some(e) => Outcome::unknown(format!("no file matches {glob}: {e}")),
            None => critical(format!("no file matches {glob}")),
        },
        // Unreadable places may hold a match: "nothing matches" is not known.
        (None, false) => match error {
            Some(e) => {
                Outcome::unknown(format!("cannot tell whether {glob} matches anything: {e}"))
            }
            None => Outcome::new(Status::Ok, format!("no file matches {glob}"), Data::None),
        },
        (Some((path, _)), false) => critical(format!(
            "{glob} matches {}, expected nothing",
            path.display()
        )),
        (Some((path, modified)), true) => {
            let shown = path.display().to_string();
            let outcome = inspect_path(spec, &shown, &path, now);
            if outcome.status != Status::Ok || spec.count.is_some() || spec.size.is_some() {
                return outcome;
            }
            let message = format!(
                "{shown} is the newest of {glob}, modified {}",
                when(now, modified)
            );
            Outcome::new(Status::Ok, message, outcome.data)
        }
    }
}

/// The match of `pattern` modified last (a later name wins a tie), with its mtime, and
/// the first error met on the way (an unreadable directory may hide a newer match).
type Newest = (Option<(std::path::PathBuf, i64)>, Option<String>);

fn newest_match(pattern: &str) -> Result<Newest, glob::PatternError> {
    glob::Pattern::new(pattern)?;
    if pattern.is_empty() {
        return Ok((None, None));
    }
    let parts = pattern
        .split('/')
        .filter(|p| !p.is_empty())
        .map(Part::of)
        .collect::<Result<Vec<_>, _>>()?;
    let start = if pattern.starts_with('/') {
        std::path::PathBuf::from("/")
    } else {
        std::path::PathBuf::new()
    };
    let mut walk = Walk::default();
    walk.visit(&start, &parts);
    Ok((walk.newest, walk.error))
}

/// One `/`-separated piece of a glob.
enum Part {
    Literal(String),
    Glob(glob::Pattern),
    /// `**`: this directory and every directory below it.
    AnyDepth,
}

impl Part {
    fn of(text: &str) -> Result<Part, glob::PatternError> {
        Ok(if text == "**" {
            Part::AnyDepth
        } else if text.contains(['*', '?', '[']) {
            Part::Glob(glob::Pattern::new(text)?)
        } else {
            Part::Literal(text.to_string())
        })
    }
}

/// A glob walk that never follows a symlinked directory below `**` (the glob crate does,
/// and `l1 -> .` then walks until the step times out), and visits a directory once per
/// place in the pattern, so a loop through a bind mount ends and nothing counts twice.
#[derive(Default)]
struct Walk {
    newest: Option<(std::path::PathBuf, i64)>,
    error: Option<String>,
    found: std::collections::HashSet<std::path::PathBuf>,
    /// (device, inode, pieces of the pattern left) of each directory walked by `**`.
    walked: std::collections::HashSet<(u64, u64, usize)>,
}

impl Walk {
    fn visit(&mut self, dir: &Path, parts: &[Part]) {
        let Some((first, rest)) = parts.split_first() else {
            self.found(dir);
            return;
        };
        match first {
            Part::Literal(name) => self.step(&dir.join(name), rest),
            Part::Glob(pattern) => {
                let options = glob::MatchOptions::new();
                for path in self.entries(dir, |name, _| pattern.matches_with(name, options)) {
                    self.step(&path, rest);
                }
            }
            Part::AnyDepth => {
                let Ok(meta) = std::fs::metadata(here(dir)) else {
                    return;
                };
                if !self.walked.insert((meta.dev(), meta.ino(), parts.len())) {
                    return;
                }
                self.visit(dir, rest);
                // DirEntry::file_type does not follow a symlink: a linked directory is
                // not walked into.
                for path in self.entries(dir, |_, kind| kind.is_dir()) {
                    self.visit(&path, parts);
                }
            }
        }
    }

    /// `path` matched a piece: the match itself when nothing is left, else a directory
    /// to look in.
    fn step(&mut self, path: &Path, rest: &[Part]) {
        if rest.is_empty() {
            self.found(path);
        } else if path.is_dir() {
            self.visit(path, rest);
        }
    }

    /// The entries of `dir` that `keep` keeps (by name and type); an unreadable
    /// directory is remembered as the first error.
    fn entries(
        &mut self,
        dir: &Path,
        keep: impl Fn(&str, std::fs::FileType) -> bool,
    ) -> Vec<std::path::PathBuf> {
        let read = match std::fs::read_dir(here(dir)) {
            Ok(read) => read,
            Err(e) => {
                self.error
                    .get_or_insert_with(|| format!("cannot read {}: {e}", here(dir).display()));
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for entry in read.flatten() {
            let name = entry.file_name();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if keep(&name.to_string_lossy(), kind) {
                out.push(dir.join(name));
            }
        }
        out
    }

    fn found(&mut self, path: &Path) {
        if !self.found.insert(path.to_path_buf()) {
            return;
        }
        // Only a regular file (or a link to one) is a match: a directory named like a
        // backup is not a backup.
        let Ok(meta) = std::fs::metadata(here(path)) else {
            return;
        };
        if !meta.is_file() {
            return;
        }
        let key = (meta.mtime(), path);
        if self
            .newest
            .as_ref()
            .is_none_or(|(p, t)| (*t, p.as_path()) < key)
        {
            self.newest = Some((path.to_path_buf(), meta.mtime()));
        }
    }
}

/// `dir` to read: the working directory for the empty start of a relative glob.
fn here(dir: &Path) -> &Path {
    if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }
}

/// `3h 12m ago`: when `modified` (unix seconds) was. A time ahead of the clock is said
/// as such: the file counts as fresh (it is no older than any limit), but a date in the
/// future is a wrong clock or a wrong timestamp, and the reader should know.
fn when(now: jiff::Timestamp, modified: i64) -> String {
    let ahead = modified.saturating_sub(now.as_second());
    let span =
        |s: i64| humantime::format_duration(std::time::Duration::from_secs(s.unsigned_abs()));
    if ahead > 0 {
        format!(
            "{} in the future (check the clock or the file's timestamp)",
            span(ahead)
        )
    } else {
        format!("{} ago", span(ahead))
    }
}

fn inspect_path(spec: &FileSpec, shown: &str, path: &Path, now: jiff::Timestamp) -> Outcome {
    let data = |size: u64| Data::File {
        path: shown.to_string(),
        size_bytes: size,
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return if spec.exists {
                Outcome::new(Status::Critical, format!("{shown} does not exist"), data(0))
            } else {
                Outcome::new(Status::Ok, format!("{shown} is absent"), data(0))
            };
        }
        Err(e) => return Outcome::unknown(format!("cannot inspect {shown}: {e}")),
    };
    if !spec.exists {
        return Outcome::new(
            Status::Critical,
            format!("{shown} exists, expected absent"),
            data(meta.len()),
        );
    }
    let fail = |message: String| Outcome::new(Status::Critical, message, data(meta.len()));
    if let Some(mode) = spec.mode {
        let found = meta.permissions().mode() & 0o7777;
        if found != mode.0 {
            return fail(format!(
                "{shown} has mode {found:04o}, expected {:04o}",
                mode.0
            ));
        }
    }
    if let Some(owner) = &spec.owner {
        let uid = meta.uid();
        let name = user_name(uid);
        if owner != &uid.to_string() && name.as_deref() != Some(owner.as_str()) {
            let found = name.unwrap_or_else(|| uid.to_string());
            return fail(format!("{shown} is owned by {found}, expected {owner}"));
        }
    }
    if let Some(max_age) = spec.max_age {
        let modified = meta.mtime();
        let age = now.as_second().saturating_sub(modified).max(0) as u64;
        if age > max_age.0.as_secs() {
            return fail(format!(
                "{shown} was modified {} ago, more than {}",
                humantime::format_duration(std::time::Duration::from_secs(age)),
                humantime::format_duration(max_age.0)
            ));
        }
    }
    if let Some(max_size) = spec.max_size
        && meta.is_file()
        && meta.len() > max_size.0
    {
        return fail(format!(
            "{shown} is {} bytes, more than {}",
            meta.len(),
            max_size.0
        ));
    }
    if let Some(needle) = &spec.contains {
        match std::fs::read(path) {
            Ok(bytes) if String::from_utf8_lossy(&bytes).contains(needle.as_str()) => {}
            Ok(_) => return fail(format!("{shown} does not contain {:?}", needle.shown())),
            Err(e) => return Outcome::unknown(format!("cannot read {shown}: {e}")),
        }
    }
    if meta.is_dir() && (spec.count.is_some() || spec.size.is_some()) {
        return grade_directory(spec, shown, path);
    }
    if spec.count.is_some() {
        return Outcome::unknown(format!(
            "{shown} is a file: `count` counts a directory's entries"
        ));
    }
    if let Some(levels) = spec.size {
        let (status, crossed) = grade(meta.len() as f64, levels, "");
        return Outcome::new(
            status,
            format!(
                "{shown}: file, {}{}",
                count(meta.len(), "byte", "bytes"),
                note(crossed)
            ),
            data(meta.len()),
        );
    }
    let what = if meta.is_dir() { "directory" } else { "file" };
    Outcome::new(
        Status::Ok,
        format!("{shown}: {what}, {} bytes", meta.len()),
        data(meta.len()),
    )
}

fn grade_directory(spec: &FileSpec, shown: &str, path: &Path) -> Outcome {
    let count_tree = spec.recursive.unwrap_or(false);
    let size_tree = spec.recursive.unwrap_or(true);
    let walk_tree = (spec.count.is_some() && count_tree) || (spec.size.is_some() && size_tree);
    let tally = match Tally::of(path, walk_tree) {
        Ok(tally) => tally,
        Err(e) => return Outcome::unknown(format!("cannot list {shown}: {e}")),
    };
    let entries = if count_tree {
        tally.tree.0
    } else {
        tally.top.0
    };
    let bytes = if size_tree { tally.tree.1 } else { tally.top.1 };
    let mut status = Status::Ok;
    let mut parts = Vec::new();
    let in_tree = if count_tree { " in the tree" } else { "" };
    for (levels, value, one, many) in [
        (spec.count, entries, "entry", "entries"),
        (spec.size, bytes, "byte", "bytes"),
    ] {
        let Some(levels) = levels else { continue };
        let (s, crossed) = grade(value as f64, levels, "");
        status = status.worst(s);
        let tree = if one == "entry" { in_tree } else { "" };
        parts.push(format!(
            "{}{tree}{}",
            count(value, one, many),
            note(crossed)
        ));
    }
    if let Some((first, error)) = &tally.unreadable {
        // What could not be read may hold more: a reading that is not over a level is
        // not known to be under it.
        status = status.worst(Status::Unknown);
        parts.push(format!(
            "{} unreadable (first {}: {error})",
            count(tally.unreadable_count, "directory", "directories"),
            first.display()
        ));
    }
    let data = Data::Directory {
        path: shown.to_string(),
        entries,
        size_bytes: bytes,
    };
    Outcome::new(status, format!("{shown}: {}", parts.join(", ")), data)
}

/// Entries and file bytes directly in a directory (`top`) and in its whole tree (`tree`),
/// symlinks counted as entries and never followed; a hard-linked file's bytes count once.
/// The walk stays on the directory's filesystem, as `du -x` does: a mount point below it is
/// an entry, not more tree (sizing `/` never reads /proc/kcore's 128 TiB).
#[derive(Default)]
struct Tally {
    top: (u64, u64),
    tree: (u64, u64),
    unreadable: Option<(std::path::PathBuf, std::io::Error)>,
    unreadable_count: u64,
}

impl Tally {
    fn of(root: &Path, whole_tree: bool) -> std::io::Result<Tally> {
        let mut tally = Tally::default();
        let mut seen = std::collections::HashSet::new();
        let device = std::fs::metadata(root)?.dev();
        let mut pending = vec![(root.to_path_buf(), true)];
        while let Some((dir, top)) = pending.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if top => return Err(e),
                Err(e) => {
                    tally.unreadable_count += 1;
                    tally.unreadable.get_or_insert((dir, e));
                    continue;
                }
            };
            for entry in entries.flatten() {
                // DirEntry::metadata does not follow a symlink.
                let Ok(meta) = entry.metadata() else { continue };
                let mut bytes = 0;
                if meta.is_file() && (meta.nlink() < 2 || seen.insert((meta.dev(), meta.ino()))) {
                    bytes = meta.len();
                }
                tally.tree.0 += 1;
                tally.tree.1 += bytes;
                if top {
                    tally.top.0 += 1;
                    tally.top.1 += bytes;
                }
                if whole_tree && meta.is_dir() && meta.dev() == device {
                    pending.push((entry.path(), false));
                }
            }
        }
        Ok(tally)
    }
}

/// The name of `uid` from /etc/passwd, if it has one.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}
