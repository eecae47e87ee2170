//! Running another program, written once for the `command` probe, backup command sources,
//! restore commands and drills: a command line split as a POSIX shell would, the program
//! in a process group of its own (a timeout or an interrupt kills whatever it forked too),
//! and each captured output kept within a bound however much the program writes.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// After SIGTERM to the group on a timeout, how long before SIGKILL.
const GRACE: Duration = Duration::from_secs(1);

/// A program that could not be run or waited for. What it says names the command as
/// shown (secrets masked).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot run `{shown}`: {error}")]
    Spawn {
        shown: String,
        error: std::io::Error,
    },
    #[error("cannot wait for `{shown}`: {error}")]
    Wait {
        shown: String,
        error: std::io::Error,
    },
}

/// The words of `line` as a POSIX shell would split them (quotes, backslashes), with no
/// expansion of any kind; `None` when a quote is left open.
pub fn split(line: &str) -> Option<Vec<String>> {
    shlex::split(line)
}

/// The program for a command line: its words, or `sh -c LINE` with `shell`. `None` when
/// it cannot be split or holds no word.
pub fn command(line: &str, shell: bool) -> Option<Command> {
    if shell {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(line);
        return Some(cmd);
    }
    let words = split(line).filter(|w| !w.is_empty())?;
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..]);
    Some(cmd)
}

/// Which part of an output is kept once it outgrows its bound.
#[derive(Clone, Copy, Debug)]
pub enum Keep {
    /// The first bytes (what a check judges); the rest is read and dropped.
    Head(usize),
    /// The last bytes (the end of stderr, which says why a program failed).
    Tail(usize),
}

/// Where a program's stdout goes.
pub enum Stdout {
    /// Read by opsbook, kept within the bound.
    Capture(Keep),
    /// Elsewhere (a dump file, /dev/null), never read here.
    To(Stdio),
    /// Wherever the `Command` already says (opsbook's own stdout unless set).
    AsSet,
}

/// What a finished (or killed) program left.
#[derive(Debug)]
pub struct Finished {
    /// `None` when it was killed by a signal.
    pub code: Option<i32>,
    pub status: ExitStatus,
    /// It ran out of time and its process group was killed.
    pub timed_out: bool,
    /// Empty when stdout went elsewhere.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// One program to run: its `Command` (stdin, environment and directory already set by the
/// caller) and how it is watched.
pub struct Run<'a> {
    command: Command,
    shown: &'a str,
    timeout: Option<Duration>,
    drain: Option<Duration>,
    stdout: Stdout,
    stderr: Keep,
    tee_stderr: bool,
    own_group: bool,
    started: Option<&'a dyn Fn(i32)>,
}

impl<'a> Run<'a> {
    /// `command`, named `shown` in errors; by default no timeout, stdout and stderr
    /// captured whole up to 64 KiB each (the first bytes), read to their end.
    pub fn new(command: Command, shown: &'a str) -> Self {
        Run {
            command,
            shown,
            timeout: None,
            drain: None,
            stdout: Stdout::Capture(Keep::Head(64 * 1024)),
            stderr: Keep::Head(64 * 1024),
            tee_stderr: false,
            own_group: false,
            started: None,
        }
    }

    /// Kill the process group (SIGTERM, then SIGKILL) once `timeout` has passed; the
    /// program gets a group of its own.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self.own_group = true;
        self
    }

    /// Run the program in a process group of its own, which can then be killed whole.
    /// Without it (and without a timeout) it stays in opsbook's group: on a terminal it
    /// can still ask for a password, and Ctrl-C reaches it.
    pub fn own_group(mut self) -> Self {
        self.own_group = true;
        self
    }

    /// Once the program has exited, how long its outputs may take to close (a background
    /// child that inherited the pipes keeps them open); without it they are read to the end.
    pub fn drain(mut self, drain: Duration) -> Self {
        self.drain = Some(drain);
        self
    }

    pub fn stdout(mut self, stdout: Stdout) -> Self {
        self.stdout = stdout;
        self
    }

    pub fn stderr(mut self, keep: Keep) -> Self {
        self.stderr = keep;
        self
    }

    /// Pass stderr on to opsbook's own as it comes (a person watching sees it) besides
    /// keeping it.
    pub fn tee_stderr(mut self) -> Self {
        self.tee_stderr = true;
        self
    }

    /// Told the process group id once the program runs in a group of its own (for an
    /// interrupt handler that kills the group).
    pub fn started(mut self, started: &'a dyn Fn(i32)) -> Self {
        self.started = Some(started);
        self.own_group = true;
        self
    }

    /// Run it to its end (or its timeout). A program that ran, whatever its exit status,
    /// is a `Finished`; an error means it could not be started or waited for.
    pub fn run(self) -> Result<Finished, Error> {
        let Run {
            mut command,
            shown,
            timeout,
            drain,
            stdout,
            stderr,
            tee_stderr,
            own_group,
            started,
        } = self;
        let stdout_keep = match stdout {
            Stdout::Capture(keep) => {
                command.stdout(Stdio::piped());
                Some(keep)
            }
            Stdout::To(to) => {
                command.stdout(to);
                None
            }
            Stdout::AsSet => None,
        };
        command.stderr(Stdio::piped());
        if own_group {
            command.process_group(0);
        }
        let mut child = command.spawn().map_err(|error| Error::Spawn {
            shown: shown.to_string(),
            error,
        })?;
        // Without a group of its own, only the program itself is ever killed here.
        let id = i32::try_from(child.id()).unwrap_or(0);
        let group = if own_group { id } else { -id };
        if let Some(started) = started {
            started(group);
        }
        let waited = |error| Error::Wait {
            shown: shown.to_string(),
            error,
        };
        let outputs = (|| {
            let out = match (child.stdout.take(), stdout_keep) {
                (Some(pipe), Some(keep)) => Some(reader(pipe, keep, false)?),
                _ => None,
            };
            let err = match child.stderr.take() {
                Some(pipe) => Some(reader(pipe, stderr, tee_stderr)?),
                None => None,
            };
            Ok((out, err))
        })();
        let (out, err) = match outputs {
            Ok(outputs) => outputs,
            Err(e) => {
                kill_group(group, libc::SIGKILL);
                let _ = child.wait();
                return Err(waited(e));
            }
        };
        let (status, timed_out) = wait(child, group, timeout).map_err(waited)?;
        let collect = |rx: Option<mpsc::Receiver<Vec<u8>>>| {
            let Some(rx) = rx else {
                return Vec::new();
            };
            match drain {
                Some(drain) => rx.recv_timeout(drain).unwrap_or_default(),
                None => rx.recv().unwrap_or_default(),
            }
        };
        Ok(Finished {
            code: status.code(),
            status,
            timed_out,
            stdout: collect(out),
            stderr: collect(err),
        })
    }
}

/// Wait for `child`, killing its group once `timeout` has passed: its status, and
/// whether it timed out.
fn wait(
    mut child: std::process::Child,
    group: i32,
    timeout: Option<Duration>,
) -> std::io::Result<(ExitStatus, bool)> {
    let Some(timeout) = timeout else {
        return child.wait().map(|status| (status, false));
    };
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::Builder::new()
        .name("opsbook-wait".to_string())
        .spawn(move || {
            let _ = tx.send(child.wait());
        });
    if let Err(e) = waiter {
        kill_group(group, libc::SIGKILL);
        return Err(e);
    }
    let gone = || std::io::Error::other("its waiting thread ended");
    match rx.recv_timeout(timeout) {
        Ok(status) => return status.map(|status| (status, false)),
        Err(mpsc::RecvTimeoutError::Disconnected) => return Err(gone()),
        Err(mpsc::RecvTimeoutError::Timeout) => {}
    }
    kill_group(group, libc::SIGTERM);
    let ended = rx.recv_timeout(GRACE);
    // Whatever forked off and ignored SIGTERM goes too, even once the program has ended.
    kill_group(group, libc::SIGKILL);
    let status = match ended {
        Ok(status) => status,
        Err(_) => rx.recv().map_err(|_| gone())?,
    }?;
    // Whatever it ended with, it ran out of time.
    Ok((status, true))
}

/// Signal every process of the group (the program and whatever it forked); a negative
/// `group` is a lone process (`-pid`), 0 nothing.
pub fn kill_group(group: i32, signal: i32) {
    // SAFETY: kill and killpg only send a signal; one already gone gives ESRCH, ignored.
    unsafe {
        if group > 0 {
            libc::killpg(group, signal);
        } else if group < 0 {
            libc::kill(-group, signal);
        }
    }
}

/// A thread reading `pipe` to its end, its kept bytes sent once done.
fn reader(
    pipe: impl Read + Send + 'static,
    keep: Keep,
    tee: bool,
) -> std::io::Result<mpsc::Receiver<Vec<u8>>> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("opsbook-output".to_string())
        .spawn(move || {
            let _ = tx.send(read_bounded(pipe, keep, tee));
        })?;
    Ok(rx)
}

/// Read `pipe` to its end (a full pipe would stall the program), keeping what `keep`
/// says; with `tee`, each piece is passed on to opsbook's stderr as it comes.
pub fn read_bounded(mut pipe: impl Read, keep: Keep, tee: bool) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if tee {
            let _ = std::io::stderr().write_all(&buf[..n]);
        }
        match keep {
            Keep::Head(limit) => {
                let room = limit.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Keep::Tail(limit) => {
                kept.extend_from_slice(&buf[..n]);
                // Cut in batches, not on every read.
                if kept.len() > 2 * limit {
                    kept.drain(..kept.len() - limit);
                }
            }
        }
    }
    if let Keep::Tail(limit) = keep {
        kept.drain(..kept.len().saturating_sub(limit));
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_keep_their_head_or_their_tail() {
        let text: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(
            read_bounded(&text[..], Keep::Head(100), false),
            text[..100].to_vec()
        );
        assert_eq!(
            read_bounded(&text[..], Keep::Tail(100), false),
            text[text.len() - 100..].to_vec()
        );
        assert_eq!(
            read_bounded(&b"short"[..], Keep::Tail(100), false),
            b"short"
        );
    }

    #[test]
    fn command_lines_split_as_a_shell_would() {
        assert_eq!(
            split(r#"pg_dump "my db" 'a b' c\ d"#),
            Some(vec![
                "pg_dump".to_string(),
                "my db".to_string(),
                "a b".to_string(),
                "c d".to_string()
            ])
        );
        assert_eq!(split("echo 'open"), None);
        assert!(command("  ", false).is_none());
        assert!(command("a | b", true).is_some());
    }

    #[test]
    fn a_timeout_kills_the_whole_group_and_a_finished_program_reports_its_code() {
        let mut cmd = Command::new("sh");
        // The background sleep keeps the group alive: only a group kill ends it.
        cmd.args(["-c", "sleep 1000 & wait"]).stdin(Stdio::null());
        let finished = Run::new(cmd, "sh")
            .timeout(Duration::from_millis(300))
            .drain(Duration::from_secs(5))
            .run()
            .unwrap();
        assert!(finished.timed_out);
        assert_eq!(finished.code, None);

        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let finished = Run::new(cmd, "sh").stderr(Keep::Tail(2)).run().unwrap();
        assert!(!finished.timed_out);
        assert_eq!(finished.code, Some(3));
        assert_eq!(finished.stdout, b"out\n");
        assert_eq!(finished.stderr, b"r\n");

        let err = Run::new(Command::new("/nonexistent/opsbook-x"), "x")
            .run()
            .unwrap_err();
        assert!(err.to_string().starts_with("cannot run `x`: "), "{err}");
    }

    #[test]
    fn the_started_hook_is_told_the_group_the_program_leads() {
        let mut cmd = Command::new("sh");
        // Field 5 of /proc/PID/stat is the process group: the shell leads its own.
        cmd.args([
            "-c",
            "read -r line < /proc/$$/stat; set -- $line; echo $1 $5",
        ])
        .stdin(Stdio::null());
        let told = std::cell::Cell::new(0);
        let finished = Run::new(cmd, "sh")
            .started(&|group| told.set(group))
            .run()
            .unwrap();
        let out = String::from_utf8_lossy(&finished.stdout).into_owned();
        let ids: Vec<i32> = out.split_whitespace().map(|w| w.parse().unwrap()).collect();
        let (pid, group) = (ids[0], ids[1]);
        assert_eq!((told.get(), group), (pid, pid), "{out}");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(stat.is_empty(), "the program was waited for: {stat}");
    }
}
