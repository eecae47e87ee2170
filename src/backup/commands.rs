//! Command sources (`pg_dump`, `sqlite3 DB .dump`): programs whose stdout is stored in the
//! backup as a file, and their restore commands, fed that file on stdin. No shell unless
//! the source says `shell: true`.

use crate::values::Text;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::{Command, Stdio};

/// The most of a command's stderr kept for its error message.
pub(super) const STDERR_TAIL: usize = 4096;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSource {
    /// The program whose stdout is backed up (`pg_dump ${DATABASE_URL}`).
    pub run: Text,
    /// The program that restores it, given the file on stdin (`psql ${DATABASE_URL}`).
    #[serde(default)]
    pub restore: Option<Text>,
    /// What `backup verify --restore-test` feeds the file to instead (an isolated
    /// database); without it the drill leaves the file for the set's `verify` command.
    #[serde(default)]
    pub test_restore: Option<Text>,
    /// The file's name in the backup (stored as `commands/FILE`).
    pub file: String,
    /// Run through `sh -c` (pipes, redirections); otherwise split as a shell would, no shell.
    #[serde(default)]
    pub shell: bool,
}

impl CommandSource {
    /// The path of this source's file inside the archive.
    pub fn member(&self) -> String {
        format!("commands/{}", self.file)
    }
}

/// One command source, as the manifest records it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct CommandEntry {
    pub file: String,
    /// The path inside the archive.
    pub path: String,
    /// The command as configured, secrets masked.
    pub command: String,
    pub exit_status: i32,
    pub size: u64,
    pub sha256: String,
}

/// `command:` takes one source or a list.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Sources(pub Vec<CommandSource>);

impl<'de> Deserialize<'de> for Sources {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(CommandSource),
            Many(Vec<CommandSource>),
        }
        let sources = match OneOrMany::deserialize(deserializer)? {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        };
        for source in &sources {
            plain_file_name(&source.file).map_err(serde::de::Error::custom)?;
        }
        Ok(Sources(sources))
    }
}

/// A command source's `file` is stored as `commands/FILE` and restored to that name: one
/// plain name, never a path that could reach elsewhere (`../x`, `a/b`), nor empty, `.`
/// or `..`.
fn plain_file_name(file: &str) -> Result<(), Error> {
    if file.is_empty() || file == "." || file == ".." || file.contains(['/', '\0']) {
        return Err(Error::NotPlainName(file.to_string()));
    }
    Ok(())
}

/// The check after a restore test: a command (a string, or `{ run: …, shell: true }`), or
/// `{ runbook: NAME }` run with `{{ restore_dir }}` set.
#[derive(Clone, Debug, Serialize)]
pub enum Verify {
    Command { run: Text, shell: bool },
    Runbook(String),
}

impl<'de> Deserialize<'de> for Verify {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            run: Text,
            #[serde(default)]
            shell: bool,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Book {
            runbook: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Plain(Text),
            Full(Full),
            Book(Book),
        }
        Ok(match Raw::deserialize(deserializer)? {
            Raw::Plain(run) => Verify::Command { run, shell: false },
            Raw::Full(f) => Verify::Command {
                run: f.run,
                shell: f.shell,
            },
            Raw::Book(b) => Verify::Runbook(b.runbook),
        })
    }
}

/// A command that could not be run, or that failed: what it says names the command
/// (secrets masked), how it ended and the end of its stderr.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot split `{0}` into words (unbalanced quotes?)")]
    Split(String),
    #[error(transparent)]
    Process(#[from] crate::process::Error),
    #[error("{}", failure(.shown, *.status, .stderr))]
    Failed {
        shown: String,
        status: std::process::ExitStatus,
        stderr: Vec<u8>,
    },
    #[error(
        "command source `file: {0:?}` must be a plain file name (no `/`, not empty, \
         `.` or `..`): it is stored as commands/FILE"
    )]
    NotPlainName(String),
}

/// The process for `text`: split into words as a POSIX shell would, or `sh -c` with `shell`.
pub fn command(text: &Text, shell: bool) -> Result<Command, Error> {
    crate::process::command(text.as_str(), shell)
        .ok_or_else(|| Error::Split(text.shown().to_string()))
}

/// Run `text` with `stdin` and `stdout` as given; an error names the command (masked),
/// its exit status and the end of its stderr. The exit status when it succeeded.
pub fn run(
    text: &Text,
    shell: bool,
    stdin: Stdio,
    stdout: Stdio,
    dir: Option<&Path>,
) -> Result<i32, Error> {
    run_with_stderr(text, shell, stdin, stdout, dir).map(|_| 0)
}

/// Run a command source, its stdout into `stdout`: the end of its stderr when it exited 0
/// (a dump that printed an error there is not a good dump; the caller decides).
pub fn run_source(text: &Text, shell: bool, stdout: Stdio) -> Result<String, Error> {
    let stderr = run_with_stderr(text, shell, Stdio::null(), stdout, None)?;
    Ok(String::from_utf8_lossy(&stderr).into_owned())
}

fn run_with_stderr(
    text: &Text,
    shell: bool,
    stdin: Stdio,
    stdout: Stdio,
    dir: Option<&Path>,
) -> Result<Vec<u8>, Error> {
    let mut cmd = command(text, shell)?;
    cmd.stdin(stdin);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let shown = text.shown();
    let finished = crate::process::Run::new(cmd, shown)
        .stdout(crate::process::Stdout::To(stdout))
        .stderr(crate::process::Keep::Tail(STDERR_TAIL))
        .run()?;
    if finished.status.success() {
        return Ok(finished.stderr);
    }
    Err(Error::Failed {
        shown: shown.to_string(),
        status: finished.status,
        stderr: finished.stderr,
    })
}

/// What a failed command's message says: the command as shown, how it ended, and the end
/// of its stderr (secrets masked).
pub fn failure(shown: &str, status: std::process::ExitStatus, stderr: &[u8]) -> String {
    let tail = String::from_utf8_lossy(&stderr[stderr.len().saturating_sub(STDERR_TAIL)..]);
    let tail = crate::redact::mask(tail.trim());
    let how = match status.code() {
        Some(code) => format!("exited with {code}"),
        None => "was killed by a signal".to_string(),
    };
    if tail.is_empty() {
        format!("`{shown}` {how}")
    } else {
        format!("`{shown}` {how}: {tail}")
    }
}
