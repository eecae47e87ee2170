//! Runbooks by name: open one (found in the runbook dirs or built in, then loaded), list
//! them all, and the variables a command gives every runbook it runs.

use super::builtin;
use super::load::{Runbook, find, list_dir_names, load};
use crate::values::Text;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Find `wanted` (a file, a name in `dirs`, a built-in) and load it with `overrides`
/// over its own vars. Any problem is a configuration error (exit 78).
pub fn open(
    wanted: &str,
    dirs: &[PathBuf],
    overrides: &BTreeMap<String, Text>,
) -> Result<Runbook, crate::Error> {
    let source = find(wanted, dirs).map_err(crate::Error::Config)?;
    load(&source, overrides, dirs)
}

/// Every runbook name: files in the dirs first (they take precedence), then built-ins.
pub fn names(dirs: &[PathBuf]) -> Vec<String> {
    let mut names = list_dir_names(dirs);
    for name in builtin::names() {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

/// One line of `runbook list`.
#[derive(Debug, serde::Serialize)]
pub struct Entry {
    pub name: String,
    /// What it is for (`maintenance`, `deploy`, `diagnosis`, `verification`), or `other`
    /// for a runbook without `kind:` or one that does not load.
    pub kind: String,
    /// Where it was found (empty when it cannot be found).
    pub source: String,
    /// Its description, or `INVALID: ` and the first line of why it does not load.
    pub description: String,
}

/// The groups of `runbook list`, in order; a runbook without a kind is in the last.
pub const GROUPS: [&str; 5] = ["maintenance", "deploy", "diagnosis", "verification", OTHER];

/// The group of runbooks without `kind:` (and of those that do not load).
pub const OTHER: &str = "other";

/// Every runbook with its kind, where it comes from and what it says it does, grouped by
/// kind in the order of [`GROUPS`], by name within a group.
pub fn list(dirs: &[PathBuf], vars: &BTreeMap<String, Text>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = names(dirs)
        .into_iter()
        .map(|name| {
            let (source, kind, description) = match find(&name, dirs) {
                Ok(source) => {
                    let (kind, description) = match load(&source, vars, dirs) {
                        Ok(book) => (book.kind, book.description),
                        Err(e) => (
                            None,
                            format!(
                                "INVALID: {}",
                                e.to_string().lines().next().unwrap_or_default()
                            ),
                        ),
                    };
                    (source.label.display().to_string(), kind, description)
                }
                Err(e) => (String::new(), None, e.message),
            };
            let kind = kind
                .and_then(|k| serde_json::to_value(k).ok())
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| OTHER.to_string());
            Entry {
                name,
                kind,
                source,
                description,
            }
        })
        .collect();
    let rank = |kind: &str| {
        GROUPS
            .iter()
            .position(|g| *g == kind)
            .unwrap_or(GROUPS.len())
    };
    entries.sort_by(|a, b| {
        rank(&a.kind)
            .cmp(&rank(&b.kind))
            .then_with(|| a.name.cmp(&b.name))
    });
    entries
}

/// The variables a command gives every runbook it runs: the configured `runbooks.vars`,
/// then `{{ opsbook_config }}` and `{{ opsbook_env }}`: the `--config` (absolute) and the
/// environment asked for, each empty when not given, so a step that runs opsbook itself
/// reads the same configuration. A schedule's `vars` and `--var` go over these.
pub fn session_vars(
    config: Option<&Path>,
    env: Option<&str>,
    configured: &BTreeMap<String, Text>,
) -> BTreeMap<String, Text> {
    let config = config
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut vars = configured.clone();
    vars.insert("opsbook_config".to_string(), Text::plain(config));
    vars.insert(
        "opsbook_env".to_string(),
        Text::plain(env.unwrap_or_default().to_string()),
    );
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_in_the_dirs_shadows_the_built_in_of_its_name_and_is_listed_once() {
        let dir = tempfile::tempdir().unwrap();
        let builtin = builtin::names().next().expect("a built-in runbook");
        std::fs::write(
            dir.path().join(format!("{builtin}.yaml")),
            "name: mine\ndescription: my own\nsteps:\n  - name: one\n    manual: ok?\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("broken.yml"), "name: [\n").unwrap();
        let dirs = vec![dir.path().to_path_buf()];
        let names = names(&dirs);
        assert_eq!(names.iter().filter(|n| *n == builtin).count(), 1);
        // The dirs' files first, sorted; the built-ins after them.
        let mut from_dir = ["broken", builtin];
        from_dir.sort_unstable();
        assert_eq!(&names[..2], from_dir);
        let entries = list(&dirs, &BTreeMap::new());
        let mine = entries.iter().find(|e| e.name == builtin).unwrap();
        assert_eq!(mine.description, "my own");
        assert_eq!(mine.kind, OTHER);
        assert!(mine.source.ends_with(&format!("{builtin}.yaml")));
        let broken = entries.iter().find(|e| e.name == "broken").unwrap();
        assert!(broken.description.starts_with("INVALID: "), "{broken:?}");
        assert_eq!(open(builtin, &dirs, &BTreeMap::new()).unwrap().name, "mine");
    }

    #[test]
    fn session_vars_are_empty_unless_given_and_the_config_absolute() {
        let none = session_vars(None, None, &BTreeMap::new());
        assert_eq!(none["opsbook_config"].as_str(), "");
        assert_eq!(none["opsbook_env"].as_str(), "");
        let configured = BTreeMap::from([
            ("api".to_string(), Text::plain("http://127.0.0.1:9")),
            ("opsbook_env".to_string(), Text::plain("not this")),
        ]);
        let given = session_vars(
            Some(Path::new("prod.yaml")),
            Some("production"),
            &configured,
        );
        assert_eq!(given["api"].as_str(), "http://127.0.0.1:9");
        assert!(Path::new(given["opsbook_config"].as_str()).is_absolute());
        assert!(given["opsbook_config"].as_str().ends_with("/prod.yaml"));
        assert_eq!(given["opsbook_env"].as_str(), "production");
    }
}
