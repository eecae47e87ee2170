//! One idea, one file: finding, parsing and layering config files. Each file is parsed on
//! its own first, so an error names the file, line and column; the files are then merged
//! key by key (mappings merge, everything else — lists included — is replaced by the later
//! file).

use super::{Config, ENVIRONMENTS};
use crate::error::{ConfigError, Error};
use crate::values::parse_yaml;
use crate::values::{Level, parse_bool};
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--env` or `$ENVIRONMENT`; `development` when neither is given.
    pub env: Option<String>,
    /// `--config FILE`.
    pub file: Option<PathBuf>,
    /// Where `<env>.yaml` files live: `$OPSBOOK_CONFIG_DIR`, else `./config`.
    pub config_dir: PathBuf,
}

#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    pub env: String,
    /// The files that were read, in the order they were layered.
    pub sources: Vec<PathBuf>,
    /// Settings that use an environment variable that is not set (and has no default):
    /// they block only the commands that use their section (`require`).
    pub unresolved: Vec<Unresolved>,
}

/// A setting whose `${VAR}` is not set.
#[derive(Clone, Debug)]
pub struct Unresolved {
    pub file: PathBuf,
    /// `incident.webhook.url`, `health.endpoints[0].http.url`.
    pub key: String,
    pub var: String,
    /// Where the reference is written, and that line quoted (when found).
    pub line: u64,
    pub column: u64,
    pub snippet: Option<String>,
}

impl Unresolved {
    fn error(&self) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: self.line,
            column: self.column,
            message: format!(
                "`{}`: {}",
                self.key,
                crate::values::text::unset_message(&self.var)
            ),
            snippet: self.snippet.clone(),
        }
    }

    fn section(&self) -> &str {
        self.key
            .split(['.', '['])
            .next()
            .unwrap_or(self.key.as_str())
    }
}

/// Sections every command uses: an unset variable there stops everything.
const ALWAYS: [&str; 2] = ["state_dir", "logging"];

impl Loaded {
    /// Fail (exit 78, naming each key and variable) when a setting in one of `sections`
    /// uses an unset variable. Other sections' unset variables do not matter here.
    pub fn require(&self, sections: &[&str]) -> Result<(), Error> {
        let mut errors: Vec<ConfigError> = self
            .unresolved
            .iter()
            .filter(|u| sections.contains(&u.section()))
            .map(Unresolved::error)
            .collect();
        match errors.len() {
            0 => Ok(()),
            1 => Err(Error::Config(errors.remove(0))),
            _ => Err(Error::Configs(errors)),
        }
    }
}

pub fn load(options: &LoadOptions) -> Result<Loaded, Error> {
    let env = options
        .env
        .clone()
        .unwrap_or_else(|| "development".to_string());
    let env_file = options.config_dir.join(format!("{env}.yaml"));
    let valid_name = !env.is_empty()
        && env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_name || (!ENVIRONMENTS.contains(&env.as_str()) && !env_file.is_file()) {
        return Err(Error::Usage(format!(
            "unknown environment {env:?}: use development, staging or production \
             (or add {})",
            env_file.display()
        )));
    }

    let mut layers = Vec::new();
    if env_file.is_file() {
        layers.push(env_file);
    }
    if let Some(file) = &options.file {
        layers.push(file.clone());
    }

    let mut merged = Value::Object(Default::default());
    let mut unresolved = Vec::new();
    let mut texts = Vec::new();
    for path in &layers {
        let text = read(path)?;
        let mut value = parse_yaml::<Value>(path, &text)?;
        let here = unresolved_in(path, &text);
        // Typed first: this is where every error gets its line and column. An unset
        // variable is not an error yet; it blocks the commands that use its section.
        let (typed, _) = crate::values::text::lenient::run(|| parse_yaml::<Config>(path, &text));
        if let Err(e) = typed {
            // An error caused by an unset variable (an empty URL…) blocks its section only:
            // without the sections using unset variables, the rest must be valid.
            let blocked: Vec<&str> = here.iter().map(Unresolved::section).collect();
            let Value::Object(map) = &mut value else {
                return Err(all_errors(path, &text, e));
            };
            map.retain(|key, _| !blocked.contains(&key.as_str()));
            let rest = value.clone();
            let (rest, _) =
                crate::values::text::lenient::run(|| serde_json::from_value::<Config>(rest));
            if blocked.is_empty() || rest.is_err() {
                return Err(all_errors(path, &text, e));
            }
        }
        unresolved.extend(here);
        merge(&mut merged, value);
        texts.push((path, text));
    }
    let (config, _) =
        crate::values::text::lenient::run(|| serde_json::from_value::<Config>(merged));
    let mut config: Config = match config {
        Ok(config) => config,
        Err(e) => {
            // Placed where it can be: a word YAML reads as a boolean, meant as a name.
            let mut errors: Vec<ConfigError> = texts
                .iter()
                .flat_map(|(path, text)| super::booleans::meant_as_text(path, text))
                .collect();
            return Err(match errors.len() {
                0 => {
                    let blame = layers.last().cloned().unwrap_or_default();
                    let message = format!("the layered configuration is invalid: {e}");
                    ConfigError::whole_file(blame, message).into()
                }
                1 => errors.remove(0).into(),
                _ => Error::Configs(errors),
            });
        }
    };
    apply_environment(&mut config, |name| std::env::var(name).ok())?;
    let loaded = Loaded {
        config,
        env,
        sources: layers,
        unresolved,
    };
    loaded.require(&ALWAYS)?;
    Ok(loaded)
}

/// Every string setting of `text` that uses an unset variable, with its key and where the
/// reference is written: inside the value the parser read for that key, so a comment or
/// another setting naming the same variable cannot mislead.
pub fn unresolved_in(path: &Path, text: &str) -> Vec<Unresolved> {
    let mut out = Vec::new();
    for at in crate::values::string_spans(text) {
        let (_, unset) = crate::values::text::lenient::run(|| {
            crate::values::text::substitute(&at.value, |name| std::env::var(name).ok())
        });
        let mut seen: std::collections::HashMap<String, usize> = Default::default();
        for var in unset {
            // The n-th use of a variable in one value is its n-th reference there.
            let nth = seen.entry(var.clone()).or_default();
            let needle = format!("${{{var}");
            let found = at.bytes.as_ref().and_then(|range| {
                let written = text.get(range.clone())?;
                written
                    .match_indices(&needle)
                    .map(|(i, _)| i)
                    .filter(|&i| {
                        let next = written[i + needle.len()..].chars().next();
                        matches!(next, Some('}' | ':' | '-'))
                    })
                    .nth(*nth)
                    .map(|i| range.start + i)
            });
            *nth += 1;
            let (line, column) = match found {
                Some(offset) => {
                    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
                    (
                        text[..offset].matches('\n').count() as u64 + 1,
                        text[line_start..offset].chars().count() as u64 + 1,
                    )
                }
                None => (at.line, at.column),
            };
            out.push(Unresolved {
                file: path.to_path_buf(),
                key: at.key.clone(),
                var,
                line,
                column,
                snippet: ConfigError::at(path, text, line, column, "").snippet,
            });
        }
    }
    out
}

/// Every error of a file that has `first`, as one error when it is the only one.
fn all_errors(path: &Path, text: &str, first: ConfigError) -> Error {
    let mut errors = errors_in(path, text);
    match errors.len() {
        0 => first.into(),
        1 => errors.remove(0).into(),
        _ => Error::Configs(errors),
    }
}

fn read(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::whole_file(path, format!("cannot read: {e}")))?;
    Ok(crate::values::utf8_text(path, bytes)?)
}

/// Every error in one config file, not only the first: a file with a bad threshold, an
/// unknown key elsewhere and a bad set name reports all three. The parser stops at its
/// first error, so each independent part of a block-style file (a section, a section's
/// setting, one set or endpoint) is checked on its own, with every other line blanked so
/// lines and columns stay true. A syntax error, or an error that only the combination
/// of parts makes, is reported as the parser found it. Unset variables are not errors
/// here (see `unresolved_in`).
pub fn errors_in(path: &Path, text: &str) -> Vec<ConfigError> {
    let typed =
        |text: &str| crate::values::text::lenient::run(|| parse_yaml::<Config>(path, text)).0;
    let first = match typed(text) {
        Ok(config) => return incident_errors(path, &config),
        Err(first) => first,
    };
    if parse_yaml::<Value>(path, text).is_err() {
        return vec![first];
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let root = Block {
        header: None,
        start: 0,
        end: lines.len(),
    };
    let mut errors = Vec::new();
    collect(path, &lines, &[], &root, 0, first, &mut errors);
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert((e.line, e.column, e.message.clone())));
    errors.sort_by_key(|e| (e.line, e.column));
    errors
}

/// What the incident commands would refuse in a config that parses: a template that does
/// not render, escalation routing for an unknown severity or business hours without
/// off-hours contacts. `config validate` says it, not the first incident.
fn incident_errors(path: &Path, config: &Config) -> Vec<ConfigError> {
    let incident = &config.incident;
    let checks = [
        crate::incident::templates::check(&incident.templates, path),
        incident.check_routing(path),
    ];
    let notify = config.notify.check().err();
    checks
        .into_iter()
        .filter_map(Result::err)
        .map(|e| match e {
            crate::incident::Error::Template(c) | crate::incident::Error::Config(c) => c,
            other => ConfigError::whole_file(path, other.to_string()),
        })
        .chain(notify.map(|e| ConfigError::whole_file(path, e)))
        .collect()
}

/// How deep `errors_in` splits: sections, their settings, then one set or list item.
const SPLIT_DEPTH: usize = 3;

/// Lines `start..end` of a file: a header line (`key:` or `- …`) and what is indented
/// under it.
struct Block {
    header: Option<usize>,
    start: usize,
    end: usize,
}

fn is_content(line: &str) -> bool {
    let t = line.trim_start();
    !t.is_empty() && !t.starts_with('#')
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// The blocks directly under `block`: each starts at a content line of the smallest
/// indentation and runs to the next one.
fn children(lines: &[&str], block: &Block) -> Vec<Block> {
    let first = block.header.map_or(block.start, |h| h + 1);
    let Some(min) = (first..block.end)
        .filter(|&i| is_content(lines[i]))
        .map(|i| indent(lines[i]))
        .min()
    else {
        return Vec::new();
    };
    // A closing bracket ends the flow collection above it; it starts nothing.
    let starts: Vec<usize> = (first..block.end)
        .filter(|&i| {
            is_content(lines[i])
                && indent(lines[i]) == min
                && !lines[i].trim_start().starts_with(['}', ']'])
        })
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &start)| Block {
            header: Some(start),
            start,
            end: starts.get(n + 1).copied().unwrap_or(block.end),
        })
        .collect()
}

/// The file with only the ancestors' header lines and `block` kept.
fn isolate(lines: &[&str], ancestors: &[usize], block: &Block) -> String {
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            if ancestors.contains(&i) || (block.start..block.end).contains(&i) {
                *line
            } else {
                ""
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn collect(
    path: &Path,
    lines: &[&str],
    ancestors: &[usize],
    block: &Block,
    depth: usize,
    error: ConfigError,
    out: &mut Vec<ConfigError>,
) {
    let typed =
        |text: &str| crate::values::text::lenient::run(|| parse_yaml::<Config>(path, text)).0;
    // A block scalar's lines are text, not settings.
    let scalar = block.header.is_some_and(|h| {
        let t = lines[h].trim_end();
        ["|", "|-", "|+", ">", ">-", ">+"]
            .iter()
            .any(|indicator| t.ends_with(indicator))
    });
    let parts = if depth < SPLIT_DEPTH && !scalar {
        children(lines, block)
    } else {
        Vec::new()
    };
    let mut inner = ancestors.to_vec();
    inner.extend(block.header);
    let isolated: Vec<String> = parts.iter().map(|c| isolate(lines, &inner, c)).collect();
    // Blanking must not break the syntax (a flow mapping over several lines).
    if parts.is_empty()
        || isolated
            .iter()
            .any(|t| parse_yaml::<Value>(path, t).is_err())
    {
        out.push(error);
        return;
    }
    let before = out.len();
    for (part, text) in parts.iter().zip(&isolated) {
        if let Err(e) = typed(text) {
            collect(path, lines, &inner, part, depth + 1, e, out);
        }
    }
    // An error only the parts together make (two endpoints with one name).
    if !out[before..]
        .iter()
        .any(|e| (e.line, e.column, &e.message) == (error.line, error.column, &error.message))
    {
        out.push(error);
    }
}

/// Deep-merge `overlay` into `base`: mappings merge key by key, anything else replaces.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (_, Value::Null) => {}
        (slot, value) => *slot = value,
    }
}

/// Seed 000's variables override the files.
fn apply_environment(
    config: &mut Config,
    var: impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let bad = |name: &str, message: crate::values::Error| {
        ConfigError::whole_file(format!("${name}"), message.to_string())
    };
    if let Some(level) = var("LOG_LEVEL") {
        config.logging.level = Level::parse(&level).map_err(|m| bad("LOG_LEVEL", m))?;
    }
    if let Some(dir) = var("LOG_DIR") {
        config.logging.dir = super::Text::plain(dir);
    }
    if let Some(on) = var("LOG_TO_FILE") {
        config.logging.to_file = parse_bool(&on).map_err(|m| bad("LOG_TO_FILE", m))?;
    }
    if let Some(on) = var("LOG_TO_CONSOLE") {
        config.logging.to_console = parse_bool(&on).map_err(|m| bad("LOG_TO_CONSOLE", m))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_is_deep_for_mappings_and_replaces_lists() {
        let mut base = json!({"health": {"thresholds": {"memory": {"warn": 70}}, "disks": ["/"]}});
        merge(
            &mut base,
            json!({"health": {"thresholds": {"memory": {"crit": 80}}, "disks": ["/data"]}}),
        );
        assert_eq!(
            base,
            json!({"health": {"thresholds": {"memory": {"warn": 70, "crit": 80}}, "disks": ["/data"]}})
        );
    }

    #[test]
    fn parse_errors_carry_file_line_and_column() {
        let err = parse_yaml::<Config>(
            Path::new("x.yaml"),
            "health:\n  thresholds:\n    memry: {}\n",
        )
        .unwrap_err();
        assert_eq!((err.line, err.column), (3, 5));
        assert!(
            err.message.contains("unknown field `memry`"),
            "{}",
            err.message
        );
        assert!(err.to_string().starts_with("x.yaml:3:5: unknown field"));
    }

    #[test]
    fn warn_above_crit_is_located() {
        let err = parse_yaml::<Config>(
            Path::new("x.yaml"),
            "health:\n  thresholds:\n    disk: { warn: 95 }\n",
        )
        .unwrap_err();
        assert_eq!(err.line, 3);
        assert!(
            err.message
                .contains("warn 95 is above crit 90 (the default)"),
            "{}",
            err.message
        );
    }

    #[test]
    fn every_error_is_found_around_block_scalars_and_flow_mappings() {
        let text = "# comment\nlogs:\n  sets:\n    app:\n      paths: [/var/log/a.log]\n      postrotate: |\n        kill -HUP 1\n        echo: done\nhealth: {\n  thresholds: { memory: { warn: 95 } },\n  disks: [/]\n}\nbackup:\n  sets:\n    db:\n      paths:\n        - /etc\n      nope: 3\n    web: { paths: [/srv], keep_daily: x }\n";
        let errors = errors_in(Path::new("x.yaml"), text);
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [10, 18, 19], "{errors:?}");
        assert!(errors_in(Path::new("x.yaml"), "logs:\n  sets: {}\n").is_empty());
        // A syntax error is reported once, where the parser stopped.
        assert_eq!(errors_in(Path::new("x.yaml"), "a: [\nb: 1\n").len(), 1);
    }

    #[test]
    fn environment_overrides_logging() {
        let mut config = Config::default();
        apply_environment(&mut config, |name| match name {
            "LOG_LEVEL" => Some("debug".into()),
            "LOG_TO_FILE" => Some("true".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.logging.level, Level::Debug);
        assert!(config.logging.to_file);
        let err = apply_environment(&mut config, |name| {
            (name == "LOG_TO_CONSOLE").then(|| "sometimes".to_string())
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("$LOG_TO_CONSOLE: "), "{err}");
    }
}
