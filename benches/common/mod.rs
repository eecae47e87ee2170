//! What the benchmarks share: run the opsbook under test and read its peak memory.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run opsbook with `args`: wall time, peak RSS in KiB (from wait4) and exit code.
#[allow(clippy::zombie_processes)] // reaped by wait4 below
pub fn opsbook(args: &[&str]) -> (Duration, i64, Option<i32>) {
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_opsbook"))
        .args(args)
        .env_remove("ENVIRONMENT")
        .stdout(Stdio::null())
        .spawn()
        .expect("start opsbook");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let took = started.elapsed();
    assert_eq!(waited, pid, "wait4 failed");
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (took, usage.ru_maxrss, code)
}
