//! The restore drill (`backup verify --restore-test`): restore a backup into a scratch
//! directory, feed each command source's dump to its `test_restore` command, run the
//! set's check there, and leave nothing behind — not when it passes, fails, or is stopped.
//!
//! The scratch directory is `TMPDIR/opsbook-restore-test-PID.XXXXXX`. Every command the
//! drill runs gets its own process group; on SIGINT or SIGTERM that group is killed and
//! the scratch (directory and database) removed before the process ends with the signal.
//! A drill killed outright (SIGKILL) cannot clean up: [`remove_stale_scratch`], called by
//! the next drill and by `backup prune`, removes what a dead drill left, after killing any
//! process still working inside it.

use super::commands::STDERR_TAIL;
use super::commands::{self, CommandSource, Verify};
use super::{BackupSet, Error, Manifest, restore};
use crate::values::Text;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

/// How scratch directories are named in the temporary directory (then `PID.`).
const PREFIX: &str = "opsbook-restore-test-";

/// The process group of the command the drill is running (0: none).
static GROUP: AtomicI32 = AtomicI32::new(0);
/// Set by SIGINT/SIGTERM during a drill: the cleaning thread ends the process.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Held while a drill runs: the group above and the interrupt handler's scratch are the
/// process's, so a second drill at the same time (a `parallel:` group, a drill inside a
/// drill's verify runbook) is refused rather than left behind on Ctrl-C.
static RUNNING: Mutex<()> = Mutex::new(());

/// Once interrupted, the drill goes no further (no result printed or recorded): the
/// cleaning thread removes the scratch and ends the process by the signal.
fn hold_if_interrupted() {
    while INTERRUPTED.load(Ordering::SeqCst) {
        std::thread::park();
    }
}

/// Run the drill of `manifest` (its archive in `dir`), with `set`'s sources and check;
/// `runbook` runs a `verify: { runbook: NAME }` check in the restored directory. What was
/// done, on success.
pub fn run(
    dir: &Path,
    manifest: &Manifest,
    set: Option<&BackupSet>,
    runbook: &super::RunbookCheck,
) -> Result<String, Error> {
    let _one = match RUNNING.try_lock() {
        Ok(guard) => guard,
        // A drill that panicked held it: nothing of its state is reused.
        Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => {
            return Err(Error::Failed(
                "another restore drill is running in this process: drills run one at a time (put them in sequence, not in a `parallel:` group)".to_string(),
            ));
        }
    };
    remove_stale_scratch(false);
    let scratch = tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{}.", std::process::id()))
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let databases: Arc<Mutex<Vec<ScratchDb>>> = Arc::default();
    let _interrupt = Interrupt::install(scratch.path(), Arc::clone(&databases));
    let drilled = drill(dir, manifest, set, scratch.path(), &databases, runbook);
    hold_if_interrupted();
    let dropped = drop_databases(&databases);
    match (drilled, dropped) {
        (Ok(done), Ok(())) => Ok(done),
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    }
}

fn drill(
    dir: &Path,
    manifest: &Manifest,
    set: Option<&BackupSet>,
    scratch: &Path,
    databases: &Mutex<Vec<ScratchDb>>,
    runbook: &super::RunbookCheck,
) -> Result<String, Error> {
    let to = scratch.join("restored");
    let sources: Vec<&CommandSource> = set
        .map(|s| {
            s.command
                .0
                .iter()
                .filter(|c| c.test_restore.is_some())
                .collect()
        })
        .unwrap_or_default();
    // The databases the `test_restore` commands name, made now if they do not exist.
    for source in &sources {
        if let Some(command) = &source.test_restore
            && let Some(db) = ScratchDb::named_in(command)
            && let Some(made) = db.create_if_missing()?
            && let Ok(mut all) = databases.lock()
        {
            all.push(made);
        }
    }
    let dumps: Vec<String> = sources.iter().map(|c| c.member()).collect();
    let options = restore::Options {
        to: to.clone(),
        include: None,
        force: false,
        dry_run: false,
        no_owner: false,
    };
    let archive = dir.join(&manifest.archive);
    let mut outcome = restore::restore(&archive, Some(manifest), &dumps, &options)?;
    if let Some(refused) = outcome.refused.first() {
        return Err(Error::Failed(format!("refused {refused}")));
    }
    let mut done = vec![format!(
        "{} restored",
        crate::plural::count(outcome.files, "file", "files")
    )];
    for (member, file) in &outcome.dumps {
        let Some(source) = sources.iter().find(|c| &c.member() == member) else {
            continue;
        };
        let Some(command) = &source.test_restore else {
            continue;
        };
        let stdin = std::fs::File::open(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let mut cmd = commands::command(command, source.shell)?;
        cmd.current_dir(&to).stdin(stdin).stdout(Stdio::null());
        in_group(cmd, command)?;
        done.push(format!("{member} fed to `{}`", command.shown()));
    }
    outcome.finish();
    match set.and_then(|s| s.verify.as_ref()) {
        None => {}
        Some(Verify::Command { run, shell }) => {
            let mut cmd = commands::command(run, *shell)?;
            cmd.current_dir(&to)
                .env("OPSBOOK_RESTORE_DIR", &to)
                .stdin(Stdio::null());
            in_group(cmd, run)?;
            done.push(format!("`{}` passed", run.shown()));
        }
        Some(Verify::Runbook(name)) => done.push(runbook(name, &to)?),
    }
    Ok(done.join(", "))
}

/// Run `cmd` in a process group of its own, which an interrupted drill kills whole; an
/// error names the command (masked), how it ended and the end of its stderr (its stdout
/// goes where `cmd` says).
fn in_group(cmd: Command, text: &Text) -> Result<(), Error> {
    hold_if_interrupted();
    let shown = text.shown();
    // Stderr is passed on (a person watching sees it) and its end kept for the message.
    let ran = crate::process::Run::new(cmd, shown)
        .stdout(crate::process::Stdout::AsSet)
        .stderr(crate::process::Keep::Tail(STDERR_TAIL))
        .tee_stderr()
        .started(&|group| GROUP.store(group, Ordering::SeqCst))
        .run();
    GROUP.store(0, Ordering::SeqCst);
    hold_if_interrupted();
    let finished = ran.map_err(commands::Error::from)?;
    if finished.status.success() {
        return Ok(());
    }
    Err(Error::Command(commands::Error::Failed {
        shown: shown.to_string(),
        status: finished.status,
        stderr: finished.stderr,
    }))
}

/// While alive, SIGINT and SIGTERM end the drill cleanly: the running command's process
/// group is killed, the scratch directory and databases removed, then the process ends
/// by the same signal. The handler itself only kills the group and wakes a thread (both
/// async-signal-safe); the thread does the rest.
struct Interrupt {
    ids: Vec<signal_hook_registry::SigId>,
    /// The write end of the pipe waking the cleaning thread; closing it ends the thread.
    wake: Option<std::os::fd::OwnedFd>,
}

impl Interrupt {
    fn install(scratch: &Path, databases: Arc<Mutex<Vec<ScratchDb>>>) -> Interrupt {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let mut none = Interrupt {
            ids: Vec::new(),
            wake: None,
        };
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two descriptors, which we then own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return none;
        }
        // SAFETY: both were just created and are owned by nothing else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let scratch = scratch.to_path_buf();
        let cleaner = std::thread::Builder::new()
            .name("drill-interrupt".into())
            .spawn(move || {
                let mut pipe = std::fs::File::from(read);
                let mut signal = [0u8; 1];
                if pipe.read_exact(&mut signal).is_err() {
                    return; // the drill ended: the pipe was closed
                }
                kill_group(GROUP.load(Ordering::SeqCst));
                // The restore may still be writing into the scratch: try until it is gone.
                for _ in 0..100 {
                    if std::fs::remove_dir_all(&scratch).is_ok() || !scratch.exists() {
                        break;
                    }
                }
                let _ = drop_databases(&databases);
                let signal = i32::from(signal[0]);
                // SAFETY: back to the default action, then raised: the process ends by
                // the signal it was sent, as it would have without the drill.
                unsafe {
                    libc::signal(signal, libc::SIG_DFL);
                    libc::raise(signal);
                }
            });
        if cleaner.is_err() {
            return none;
        }
        let fd = write.as_raw_fd();
        for signal in [libc::SIGINT, libc::SIGTERM] {
            let byte = signal as u8;
            // SAFETY: the handler calls only kill(2) and write(2), both async-signal-safe,
            // on values read from an atomic and a descriptor kept open while registered.
            let id = unsafe {
                signal_hook_registry::register(signal, move || {
                    INTERRUPTED.store(true, Ordering::SeqCst);
                    kill_group(GROUP.load(Ordering::SeqCst));
                    libc::write(fd, (&raw const byte).cast(), 1);
                })
            };
            if let Ok(id) = id {
                none.ids.push(id);
            }
        }
        none.wake = Some(write);
        none
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook_registry::unregister(id);
        }
        // Closing the pipe's write end lets the cleaning thread end.
        self.wake.take();
    }
}

fn kill_group(group: i32) {
    if group > 0 {
        // SAFETY: kill(2) has no memory effects.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    }
}

/// Remove what drills killed outright left in the temporary directory: a scratch whose
/// drill (the PID in its name) is gone, after killing any process still working in it.
/// With `dry_run`, only say what would go. One line per scratch, for a person.
pub fn remove_stale_scratch(dry_run: bool) -> String {
    let temp = std::env::temp_dir();
    let mut out = String::new();
    for entry in std::fs::read_dir(&temp).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split_once('.'))
            .map(|(pid, _)| pid)
            .filter(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        let path = entry.path();
        let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if !is_dir {
            continue;
        }
        if dry_run {
            out.push_str(&format!(
                "would remove {} (left by a killed restore test)\n",
                path.display()
            ));
            continue;
        }
        for process in working_in(&path) {
            // SAFETY: kill(2) has no memory effects.
            unsafe {
                libc::kill(process, libc::SIGKILL);
            }
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => out.push_str(&format!(
                "removed {} (left by a killed restore test)\n",
                path.display()
            )),
            Err(e) => out.push_str(&format!("cannot remove {}: {e}\n", path.display())),
        }
    }
    out
}

/// The processes whose working directory is `dir` or beneath it.
fn working_in(dir: &Path) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if let Ok(cwd) = std::fs::read_link(entry.path().join("cwd"))
            && cwd.starts_with(dir)
        {
            found.push(pid);
        }
    }
    found
}

/// A PostgreSQL database the drill made for itself: named in a `test_restore` command's
/// connection URL (`postgresql://…/test_restore`) and missing when the drill began, as
/// a verify-backup script makes `test_restore` by hand. It is dropped when the drill
/// ends; a database that already existed is used as it is and kept.
struct ScratchDb {
    /// The same server's `postgres` database, to create and drop from.
    admin: String,
    name: String,
}

impl ScratchDb {
    /// The database a command's first `postgres://` or `postgresql://` URL names.
    fn named_in(command: &Text) -> Option<ScratchDb> {
        let word = command
            .as_str()
            .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .find(|w| w.starts_with("postgres://") || w.starts_with("postgresql://"))?;
        let mut url = url::Url::parse(word).ok()?;
        let name = url.path().trim_start_matches('/');
        let name = crate::fsutil::percent_decode(name)?;
        if name.is_empty() || name == "postgres" {
            return None;
        }
        url.set_path("/postgres");
        Some(ScratchDb {
            admin: url.to_string(),
            name,
        })
    }

    /// Create the database unless it exists: itself when made (to drop later).
    fn create_if_missing(self) -> Result<Option<ScratchDb>, Error> {
        let exists = self.psql("SELECT count(*) FROM pg_database WHERE datname = :'db';")?;
        if exists.trim() != "0" {
            return Ok(None);
        }
        self.psql("CREATE DATABASE :\"db\";")?;
        Ok(Some(self))
    }

    fn drop_it(&self) -> Result<(), Error> {
        self.psql("DROP DATABASE IF EXISTS :\"db\" WITH (FORCE);")
            .map(drop)
    }

    /// Run `sql` (with `:'db'` / `:"db"` the database's name, quoted by psql) against
    /// the server's `postgres` database: what it printed.
    fn psql(&self, sql: &str) -> Result<String, Error> {
        let what = format!("the scratch database {}", self.name);
        let mut child = Command::new("psql")
            .args(["-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-v"])
            .arg(format!("db={}", self.name))
            .arg(&self.admin)
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run psql for {what}: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(sql.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("cannot run psql for {what}: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(Error::Failed(format!(
                "cannot prepare {what}: {}",
                crate::redact::mask(err.trim())
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Drop every scratch database made so far (each once).
fn drop_databases(databases: &Mutex<Vec<ScratchDb>>) -> Result<(), Error> {
    let made: Vec<ScratchDb> = match databases.lock() {
        Ok(mut all) => all.drain(..).collect(),
        Err(_) => return Ok(()),
    };
    let mut result = Ok(());
    for db in made {
        if let Err(e) = db.drop_it() {
            result = Err(e);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scratch_database_is_the_one_a_test_restore_url_names() {
        let db = ScratchDb::named_in(&Text::plain(
            "psql -X -q 'postgresql://u:p%40ss@127.0.0.1:5433/test_restore?sslmode=disable'",
        ))
        .unwrap();
        assert_eq!(db.name, "test_restore");
        assert_eq!(
            db.admin,
            "postgresql://u:p%40ss@127.0.0.1:5433/postgres?sslmode=disable"
        );
        assert!(ScratchDb::named_in(&Text::plain("sqlite3 scratch.db")).is_none());
        assert!(ScratchDb::named_in(&Text::plain("psql postgres://h/postgres")).is_none());
    }
}
