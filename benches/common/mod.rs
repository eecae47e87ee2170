//! What the benchmarks share: run the opsbook under test and read its peak memory.
#![allow(dead_code)] // each bench uses its own share

use std::io::Write;
use std::path::Path;
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

/// Write `bytes` of log lines as seed 000's application writes them.
pub fn generate_log(path: &Path, bytes: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let ops = ["pattern_load", "upload", "convert", "validate"];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut written = 0u64;
    let mut second = 0u64;
    while written < bytes {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        second += 1;
        let (h, m, s) = ((second / 3600) % 24, (second / 60) % 60, second % 60);
        let ts = format!("2025-01-15 {h:02}:{m:02}:{s:02},{:03}", seed % 1000);
        let line = match seed % 100 {
            0..=4 => format!(
                "{ts} - app - ERROR - Failed to load pattern {} after {}ms\n",
                seed % 997,
                seed % 9973
            ),
            5..=6 => format!(
                "{ts} - app - ERROR - Upload {:x} rejected: quota exceeded\n",
                seed >> 20
            ),
            7..=29 => format!(
                "{ts} - app - INFO - Performance: {} took {}.{:02}ms\n",
                ops[(seed % 4) as usize],
                seed % 2500,
                seed % 100
            ),
            30..=34 => format!("{ts} - app - WARNING - disk usage at {}%\n", 70 + seed % 30),
            _ => format!(
                "{ts} - app - INFO - GET /api/files/{} 200\n",
                seed % 100_000
            ),
        };
        out.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
    }
    out.flush().unwrap();
}

/// The best of three runs of `f`, with the peak RSS (KiB) of that run's child, if known.
pub fn best(mut f: impl FnMut() -> (Duration, i64)) -> (Duration, i64) {
    let mut best = (Duration::MAX, 0);
    for _ in 0..3 {
        let run = f();
        if run.0 < best.0 {
            best = run;
        }
    }
    best
}

pub fn shell(script: &str) -> (Duration, i64) {
    let started = Instant::now();
    let status = Command::new("bash")
        .args(["-c", script])
        .status()
        .expect("bash");
    assert!(status.success(), "{script}: {status}");
    (started.elapsed(), 0)
}

pub fn available(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Print a run's time and peak memory against the 64 MiB target.
pub fn report(what: &str, run: (Duration, i64)) {
    report_within(what, run, 64);
}

/// Print a run's time and peak memory against a target of `limit_mib`.
pub fn report_within(what: &str, (took, peak): (Duration, i64), limit_mib: i64) {
    println!(
        "{what}: {:.3} s, peak RSS {:.1} MiB{}",
        took.as_secs_f64(),
        peak as f64 / 1024.0,
        if peak > limit_mib * 1024 {
            format!(" (over the {limit_mib} MiB target)")
        } else {
            String::new()
        }
    );
}

pub fn ratio(what: &str, ours: Duration, peer: (Duration, i64), target: f64) {
    let r = ours.as_secs_f64() / peer.0.as_secs_f64();
    let verdict = if r <= target { "met" } else { "MISSED" };
    if target.is_finite() {
        println!("ratio {what}: {r:.2} (target ≤ {target}: {verdict})");
    } else {
        println!("ratio {what}: {r:.2}");
    }
}
