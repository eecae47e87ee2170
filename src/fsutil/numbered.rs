//! Numbered and dated siblings of a file (`app.log.1`, `app.log.2.gz`), shifted the same
//! way for `logs rotate` and for the tool's own log files.

use super::Error;
use std::path::{Path, PathBuf};

/// The rotated siblings of `file`: `file<sep>N` or `file<sep>DATE`, compressed or not,
/// sorted by name (`.opsbook-tmp` leftovers are not siblings).
pub fn rotated_siblings(file: &Path, separator: &str) -> Vec<PathBuf> {
    let Some(dir) = file.parent() else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let base = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!("{base}{separator}");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".opsbook-tmp") {
                return None;
            }
            let rest = name.strip_prefix(&prefix)?;
            let stem = rest.trim_end_matches(".gz").trim_end_matches(".zst");
            let ok = !stem.is_empty() && stem.chars().all(|c| c.is_ascii_digit() || c == '-');
            ok.then(|| file.with_file_name(&name))
        })
        .collect();
    found.sort();
    found
}

/// `.N` → `.N+1` (compressed or not), oldest first, deleting those past `keep`; each step
/// is told to `act` first and done unless `dry_run`. Used by `logs rotate` and by the tool's
/// own log files, so both rotate the same way.
pub fn shift_numbered(
    file: &Path,
    keep: usize,
    dry_run: bool,
    act: &mut dyn FnMut(String),
) -> Result<(), Error> {
    let mut existing: Vec<(usize, PathBuf)> = rotated_siblings(file, ".")
        .into_iter()
        .filter_map(|p| number_of(file, &p).map(|n| (n, p)))
        .collect();
    existing.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    for (n, path) in existing {
        if n >= keep {
            act(format!("delete {}", path.display()));
            if !dry_run {
                std::fs::remove_file(&path).map_err(Error::io("cannot delete", &path))?;
            }
            continue;
        }
        let suffix = path
            .to_string_lossy()
            .strip_prefix(&*numbered(file, n).to_string_lossy())
            .unwrap_or_default()
            .to_string();
        let next = with_suffix(&numbered(file, n + 1), &suffix);
        act(format!("rename {} → {}", path.display(), next.display()));
        if !dry_run {
            std::fs::rename(&path, &next).map_err(Error::io("cannot rename", &path))?;
        }
    }
    Ok(())
}

pub fn numbered(file: &Path, n: usize) -> PathBuf {
    with_suffix(file, &format!(".{n}"))
}

/// `app.log.3.gz` → 3.
pub fn number_of(file: &Path, rotated: &Path) -> Option<usize> {
    let base = file.to_string_lossy();
    let name = rotated.to_string_lossy();
    let rest = name.strip_prefix(&*base)?.strip_prefix('.')?;
    rest.split('.').next()?.parse().ok()
}

pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
