//! The errors callers branch on. Each kind maps to one exit code in the CLI layer
//! (`cli::exit_code`); everything else travels as `anyhow::Error` with context.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config file or runbook that cannot be used: exit 78 (EX_CONFIG).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Several problems in runbooks or config files, all reported at once: exit 78.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n\n"))]
    Configs(Vec<ConfigError>),
    /// A command line that does not make sense: exit 64 (EX_USAGE).
    #[error("{0}")]
    Usage(String),
    /// Another run holds the lock: exit 75 (EX_TEMPFAIL).
    #[error("{what} is locked by another run ({holder})")]
    LockHeld { what: String, holder: String },
}

/// What kind of failure an error is: each domain's error enum says which of these it is
/// (`fn kind`), and the CLI turns the kind into an exit code in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A config file, runbook or setting that cannot be used: exit 78.
    Config,
    /// A command line that does not make sense: exit 64.
    Usage,
    /// Another run holds the lock: exit 75.
    Busy,
    /// Anything else that failed: exit 1.
    Failure,
}

impl Error {
    pub fn kind(&self) -> Kind {
        match self {
            Error::Config(_) | Error::Configs(_) => Kind::Config,
            Error::Usage(_) => Kind::Usage,
            Error::LockHeld { .. } => Kind::Busy,
        }
    }
}

/// The kind of the first of our errors in `e`'s chain of causes (`e` itself first), so a
/// held lock wrapped in another error still exits busy; a failure when there is none.
pub fn kind_in(e: &(dyn std::error::Error + 'static)) -> Kind {
    std::iter::successors(Some(e), |cause| cause.source())
        .find_map(|cause| cause.downcast_ref::<Error>())
        .map_or(Kind::Failure, Error::kind)
}

/// A problem in a YAML file, located as precisely as the parser allows.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    pub message: String,
    /// The offending source line with a caret under the column, when known.
    pub snippet: Option<String>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let file = self.file.display();
        if self.line > 0 {
            write!(f, "{file}:{}:{}: {}", self.line, self.column, self.message)?;
        } else {
            write!(f, "{file}: {}", self.message)?;
        }
        if let Some(snippet) = &self.snippet {
            write!(f, "\n{snippet}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    /// An error about a whole file (unreadable, or a value that has no single location).
    pub fn whole_file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.into(),
            line: 0,
            column: 0,
            message: message.into(),
            snippet: None,
        }
    }

    /// An error at `line:column` of `source`, with the line quoted and a caret under the column.
    pub fn at(
        file: impl Into<PathBuf>,
        source: &str,
        line: u64,
        column: u64,
        message: impl Into<String>,
    ) -> Self {
        let snippet = source_snippet(source, line, column);
        ConfigError {
            file: file.into(),
            line,
            column,
            message: message.into(),
            snippet,
        }
    }
}

/// The candidate closest to `word` when it is close enough to be a typo (hurl and rustc
/// style "did you mean").
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `; did you mean "X"?` when a candidate is close to `word`, else nothing: the tail of
/// an "unknown NAME" message.
pub fn hint(word: &str, candidates: &[&str]) -> String {
    did_you_mean(word, candidates)
        .map(|m| format!("; did you mean {m:?}?"))
        .unwrap_or_default()
}

/// Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// serde's "unknown field `htp`, expected one of `http`, …" (or variant), with
/// "; did you mean `http`?" added when one is close.
pub fn suggest(message: &str) -> String {
    let Some(start) = message
        .find("unknown field `")
        .map(|i| i + "unknown field `".len())
        .or_else(|| {
            message
                .find("unknown variant `")
                .map(|i| i + "unknown variant `".len())
        })
    else {
        return message.to_string();
    };
    let Some(end) = message[start..].find('`') else {
        return message.to_string();
    };
    let word = &message[start..start + end];
    let rest = &message[start + end + 1..];
    let list = rest
        .split_once("expected one of ")
        .or_else(|| rest.split_once("expected "))
        .map_or("", |(_, list)| list);
    let candidates: Vec<&str> = list
        .split(", ")
        .map(|c| c.trim().trim_matches('`'))
        .filter(|c| !c.is_empty())
        .collect();
    match did_you_mean(word, &candidates) {
        Some(close) => format!("{message}; did you mean `{close}`?"),
        None => message.to_string(),
    }
}

/// `  12 | the line\n     |     ^` for a 1-based line and column.
fn source_snippet(source: &str, line: u64, column: u64) -> Option<String> {
    let text = source
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let number = line.to_string();
    let pad = " ".repeat(number.len());
    let caret_at = usize::try_from(column.saturating_sub(1)).ok()?;
    let lead: String = text
        .chars()
        .take(caret_at)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    Some(format!("{number} | {text}\n{pad} | {lead}^"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_line_column_and_quotes_the_line() {
        let err = ConfigError::at("c.yaml", "a: 1\nbad: [\n", 2, 6, "expected a value");
        assert_eq!(
            err.to_string(),
            "c.yaml:2:6: expected a value\n2 | bad: [\n  |      ^"
        );
    }

    #[test]
    fn suggestions_for_misspelt_keys() {
        assert_eq!(
            suggest("unknown field `htp`, expected one of `name`, `http`, `tcp`"),
            "unknown field `htp`, expected one of `name`, `http`, `tcp`; did you mean `http`?"
        );
        assert_eq!(
            suggest("unknown field `zzzzzz`, expected `name`"),
            "unknown field `zzzzzz`, expected `name`"
        );
        assert_eq!(
            did_you_mean("continue_on_fail", &["continue_on_failure", "needs"]),
            Some("continue_on_failure")
        );
    }

    #[test]
    fn whole_file_errors_have_no_position() {
        let err = ConfigError::whole_file("c.yaml", "cannot read: denied");
        assert_eq!(err.to_string(), "c.yaml: cannot read: denied");
    }
}
