//! The test builder: `Opsbook::new().args([...]).run().expect_exit(2)` runs the real binary
//! in a fresh temporary directory with a clean environment.
#![allow(dead_code)]

pub mod dns;
pub mod library;
pub mod postgres;
pub mod redis;
pub mod s3;
pub mod server;
pub mod smtp;
pub mod tls;

use std::path::{Path, PathBuf};

pub const GIB: u64 = 1024 * 1024 * 1024;

/// `len` bytes that no compressor can shrink, the same every run (xorshift).
pub fn noise(len: usize) -> Vec<u8> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

/// The variables opsbook reads from the environment, removed so that the caller's own
/// (a developer's `LOG_LEVEL`, a CI's `ENVIRONMENT`) never change what a test sees.
pub fn clean_env(cmd: &mut std::process::Command) {
    for var in [
        "ENVIRONMENT",
        "LOG_LEVEL",
        "LOG_DIR",
        "LOG_TO_FILE",
        "LOG_TO_CONSOLE",
        "NO_COLOR",
        "OPSBOOK_CONFIG_DIR",
        "OPSBOOK_READINGS",
        "OPSBOOK_NOW",
    ] {
        cmd.env_remove(var);
    }
}

pub struct Opsbook {
    dir: tempfile::TempDir,
    cwd: Option<PathBuf>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    one_cpu: bool,
}

impl Opsbook {
    pub fn new() -> Self {
        Opsbook {
            dir: tempfile::tempdir().expect("temp dir"),
            cwd: None,
            args: Vec::new(),
            env: Vec::new(),
            one_cpu: false,
        }
    }

    /// Run opsbook pinned to one CPU (the first this test may use), so that what it counts
    /// of the machine itself (the `load` check's CPU count) is the same on every box.
    pub fn one_cpu(mut self) -> Self {
        self.one_cpu = true;
        self
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Write `contents` to `name` inside the test directory.
    pub fn file(self, name: &str, contents: &str) -> Self {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, contents).expect("write test file");
        self
    }

    /// Fixed resource readings: memory and disk used in percent, CPU busy in percent.
    pub fn readings(self, memory_used: f64, disk_used: f64, cpu: f64) -> Self {
        let total = 100 * GIB;
        let available = |used: f64| ((100.0 - used) / 100.0 * total as f64) as u64;
        let json = serde_json::json!({
            "memory": {"total": total, "available": available(memory_used)},
            "disks": {"/": {"mount": "/", "total": total, "available": available(disk_used)}},
            "cpu": {"percent": cpu, "count": 4},
            "load": {"one": 0.5, "five": 0.25, "fifteen": 0.125},
        });
        let path = self.path("readings.json");
        self.file("readings.json", &json.to_string())
            .env("OPSBOOK_READINGS", path.display().to_string())
    }

    fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_opsbook"));
        cmd.current_dir(self.cwd.as_deref().unwrap_or(self.dir.path()))
            .args(&self.args);
        clean_env(&mut cmd);
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        if self.one_cpu {
            pin_to_one_cpu(&mut cmd);
        }
        cmd
    }

    /// Run in `dir` (another test's directory) instead of this builder's own.
    pub fn run_in(mut self, dir: &Path) -> Run {
        self.cwd = Some(dir.to_path_buf());
        self.run()
    }

    pub fn run(self) -> Run {
        let output = self
            .command()
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run opsbook");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            _dir: self.dir,
        }
    }

    /// [`Opsbook::spawn`] with `dir` as the working directory.
    pub fn spawn_in(mut self, dir: &Path) -> Running {
        self.cwd = Some(dir.to_path_buf());
        self.spawn()
    }

    /// Start opsbook in the background (stdout and stderr piped) for tests that talk to
    /// it or signal it while it runs.
    pub fn spawn(self) -> Running {
        use std::process::Stdio;
        let child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start opsbook");
        Running {
            child,
            _dir: self.dir,
        }
    }
}

pub struct Running {
    pub child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Running {
    /// Read stderr lines until one contains `needle`; that line.
    pub fn stderr_line(&mut self, needle: &str) -> String {
        use std::io::BufRead;
        let stderr = self.child.stderr.as_mut().expect("piped stderr");
        let mut reader = std::io::BufReader::new(stderr);
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line).expect("read stderr");
            assert!(n > 0, "opsbook ended before printing {needle:?}");
            if line.contains(needle) {
                return line;
            }
        }
    }

    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Wait for the process to end (at most `limit`), and collect what it printed.
    pub fn finish(mut self, limit: std::time::Duration) -> Run {
        use std::io::Read;
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("opsbook did not end within {limit:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut stdout = String::new();
        let mut stderr = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            let _ = out.read_to_string(&mut stdout);
        }
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        Run {
            code: status.code(),
            stdout,
            stderr,
            _dir: self._dir,
        }
    }
}

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    _dir: tempfile::TempDir,
}

impl Run {
    pub fn expect_exit(self, code: i32) -> Self {
        assert_eq!(
            self.code,
            Some(code),
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn stdout_contains(self, needle: &str) -> Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}",
            self.stdout
        );
        self
    }

    pub fn stderr_contains(self, needle: &str) -> Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    /// Every file opsbook left under `dir` (relative to the test directory), concatenated.
    pub fn files_under(&self, dir: &str) -> String {
        let mut all = String::new();
        if let Ok(entries) = std::fs::read_dir(self._dir.path().join(dir)) {
            for entry in entries.flatten() {
                all.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        all
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// A small tmpfs mounted for one test (a full disk on demand), unmounted however the test
/// ends. Mounting needs root, as the test machine runs.
pub struct Mounted(PathBuf);

impl Mounted {
    pub fn tmpfs(at: &Path, size: &str) -> Mounted {
        std::fs::create_dir_all(at).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount (util-linux)");
        assert!(
            status.success(),
            "mounting a tmpfs needs root, as the test machine runs"
        );
        Mounted(at.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// The one backup in `dir/dest`, which must hold exactly one.
pub fn only_backup(dir: &Path) -> PathBuf {
    let entries: Vec<_> = std::fs::read_dir(dir.join("dest"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

/// The name a backup gives `rel` (a path under the test directory `dir`): its real path
/// relative to `/`, as `tar -czf x /abs/path` stores it.
pub fn stored(dir: &Path, rel: &str) -> String {
    let real = std::fs::canonicalize(dir).expect("test directory");
    let real = real
        .strip_prefix("/")
        .expect("absolute")
        .display()
        .to_string();
    if rel.is_empty() {
        real
    } else {
        format!("{real}/{rel}")
    }
}

/// Wait until `pid` (our child) has stopped itself at a test seam, leaving it waitable.
pub fn wait_stopped(pid: u32) {
    // SAFETY: an all-zero siginfo_t is valid for waitid to fill.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid on our own child; WNOWAIT leaves its state for the later wait.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid,
            &mut info,
            libc::WSTOPPED | libc::WEXITED | libc::WNOWAIT,
        )
    };
    assert_eq!(rc, 0, "waitid");
    assert_eq!(
        info.si_code,
        libc::CLD_STOPPED,
        "opsbook ended instead of stopping"
    );
}

/// Make `cmd` start with an affinity of one CPU: the first in this process's own set.
fn pin_to_one_cpu(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: an all-zero cpu_set_t is an empty set; sched_getaffinity fills it.
    let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `allowed` is a valid cpu_set_t of `size` bytes.
    let rc = unsafe { libc::sched_getaffinity(0, size, &mut allowed) };
    assert_eq!(rc, 0, "sched_getaffinity");
    let first = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE.
        .find(|&cpu| unsafe { libc::CPU_ISSET(cpu, &allowed) })
        .expect("this process may run on some CPU");
    // SAFETY: as above, an empty set; CPU_SET on an index below CPU_SETSIZE.
    let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `first` is below CPU_SETSIZE.
    unsafe { libc::CPU_SET(first, &mut one) };
    // SAFETY: sched_setaffinity is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(move || {
            if libc::sched_setaffinity(0, size, &one) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// Compare `actual` with the expected-output file `tests/cli/expected/<name>` (hurl's
/// `.out` files): a change to an output shows up as a readable diff in review. With
/// `OPSBOOK_BLESS=1` the file is written from `actual` instead (then review `git diff`).
pub fn expect_file(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cli/expected")
        .join(name);
    if std::env::var_os("OPSBOOK_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create expected/");
        std::fs::write(&path, actual).expect("write the expected file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); OPSBOOK_BLESS=1 writes it",
            path.display()
        )
    });
    if expected == actual {
        return;
    }
    let mut diff = String::new();
    let (old, new): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    for i in 0..old.len().max(new.len()) {
        match (old.get(i), new.get(i)) {
            (Some(o), Some(n)) if o == n => diff.push_str(&format!("  {o}\n")),
            (o, n) => {
                if let Some(o) = o {
                    diff.push_str(&format!("- {o}\n"));
                }
                if let Some(n) = n {
                    diff.push_str(&format!("+ {n}\n"));
                }
            }
        }
    }
    panic!(
        "output differs from {} (- expected, + actual; OPSBOOK_BLESS=1 rewrites it):\n{diff}",
        path.display()
    );
}

/// `text` with what changes from run to run replaced by a fixed word, so that whole
/// outputs can be compared with an expected file. Masked, and nothing else:
/// - how long something took: the duration column of a text line (`   12 ms` becomes
///   `   <ms>`, keeping the column's width), `in 12 ms` (a summary, a command's message),
///   `duration_ms: 1.5` (JSON, TAP), `*_duration_seconds{…} 0.0012` (Prometheus) and
///   `time="0.001"` (JUnit);
/// - opsbook's own process id: `pid 1234` and `"pid": 1234`.
pub fn mask_variable(text: &str) -> String {
    let rules: [(&str, &str); 6] = [
        (r"in \d+(?:\.\d+)? m?s\b", "in <ms>"),
        (r#"(duration_ms"?: )[\d.]+"#, "${1}<ms>"),
        (r"(_duration_seconds\{[^}]*\} )[\d.e-]+", "${1}<seconds>"),
        (r#" time="[\d.]+""#, r#" time="<seconds>""#),
        (r"\bpid \d+", "pid <pid>"),
        (r#""pid": \d+"#, r#""pid": <pid>"#),
    ];
    // The text column, right-aligned in 7: the same width after masking.
    let column = regex::Regex::new(r"( +)(\d+(?:\.\d)? m?s)(  )").expect("pattern");
    let mut out = column
        .replace_all(text, |c: &regex::Captures| {
            let width = c[1].len() + c[2].len();
            format!("{:>width$}{}", "<ms>", &c[3])
        })
        .into_owned();
    for (pattern, with) in rules {
        let re = regex::Regex::new(pattern).expect("pattern");
        out = re.replace_all(&out, with).into_owned();
    }
    out
}
