//! `file`: a path exists (or is absent), with a mode, an owner, a maximum age and size,
//! and content; on a directory, the number of files in it and their total size graded
//! like any number (seed 002's error and pickup folders).

use super::threshold::{Levels, grade, note, trim};
use super::{Env, Probe};
use crate::model::{BoxFuture, Data, Outcome, Status};
use crate::values::{ByteSize, Duration, Mode, Text};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub path: Text,
    /// `false` asks for the path to be absent (a maintenance flag, a stale lock).
    #[serde(default = "yes")]
    pub exists: bool,
    /// Octal permission bits that must match exactly: `"0640"`.
    pub mode: Option<Mode>,
    /// A user name or uid.
    pub owner: Option<String>,
    /// Modified no longer ago than this.
    pub max_age: Option<Duration>,
    pub max_size: Option<ByteSize>,
    /// Text the file must contain.
    pub contains: Option<Text>,
    /// On a directory: how many entries it holds.
    pub count: Option<Levels>,
    /// On a directory: the total size of the files directly in it, in bytes.
    pub size: Option<Levels>,
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
    let shown = spec.path.shown();
    let path = Path::new(spec.path.as_str());
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
        return grade_directory(spec, path);
    }
    let what = if meta.is_dir() { "directory" } else { "file" };
    Outcome::new(
        Status::Ok,
        format!("{shown}: {what}, {} bytes", meta.len()),
        data(meta.len()),
    )
}

fn grade_directory(spec: &FileSpec, path: &Path) -> Outcome {
    let shown = spec.path.shown();
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) => return Outcome::unknown(format!("cannot list {shown}: {e}")),
    };
    let (mut count, mut bytes) = (0u64, 0u64);
    for entry in entries.flatten() {
        count += 1;
        if let Ok(meta) = entry.metadata()
            && meta.is_file()
        {
            bytes += meta.len();
        }
    }
    let mut status = Status::Ok;
    let mut parts = Vec::new();
    for (levels, value, unit) in [(spec.count, count, "entries"), (spec.size, bytes, "bytes")] {
        let Some(levels) = levels else { continue };
        let (s, crossed) = grade(value as f64, levels, "");
        status = status.worst(s);
        parts.push(format!("{} {unit}{}", trim(value as f64), note(crossed)));
    }
    let data = Data::Directory {
        path: shown.to_string(),
        entries: count,
        size_bytes: bytes,
    };
    Outcome::new(status, format!("{shown}: {}", parts.join(", ")), data)
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
