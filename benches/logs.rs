//! Logs: `opsbook logs summary`, `logs search --count` and `logs rotate` against the
//! seed's pipelines, grep/rg, gzip and zstd on the same generated seed-000-style log, in
//! one run. Prints wall times (best of 3, page cache warm), `opsbook / peer` ratios and
//! opsbook's peak memory.
//!
//! `cargo bench --bench logs` uses a 1 GiB log and a 256 MiB file to rotate;
//! `OPSBOOK_BENCH_LOG_MB=N` changes the log's size. Under `cargo test` a 4 MiB smoke run of
//! the opsbook commands only checks that the benchmark still works.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let mb: u64 = if full {
        std::env::var("OPSBOOK_BENCH_LOG_MB")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1024)
    } else {
        4
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("application.log");
    generate(&log, mb << 20);
    println!("log: {} MiB of seed 000's format at {}", mb, log.display());
    let log_s = log.to_str().unwrap();

    let summary = best(|| opsbook(&["logs", "summary", log_s]));
    let search = best(|| opsbook(&["logs", "search", "ERROR", log_s, "--count"]));
    report("opsbook logs summary", summary);
    report("opsbook logs search ERROR --count", search);
    if !full {
        return;
    }
    let pipelines = best(|| {
        shell(&format!(
            "grep ERROR {log_s} | sort | uniq -c > /dev/null; \
             grep 'Performance:' {log_s} | awk '{{print $NF}}' | awk -F'ms' '{{print $1}}' \
             | awk '{{sum+=$1; count++}} END {{print sum/count}}' > /dev/null"
        ))
    });
    println!(
        "seed pipelines (uniq -c + awk average): {:.3} s",
        pipelines.0.as_secs_f64()
    );
    ratio("summary / seed pipelines", summary.0, pipelines, 0.5);
    // Not > /dev/null: GNU grep notices that and stops at the first match.
    let sink = dir.path().join("count.txt");
    let sink = sink.to_str().unwrap();
    let grep = best(|| shell(&format!("grep -c ERROR {log_s} > {sink}")));
    println!("grep -c ERROR: {:.3} s", grep.0.as_secs_f64());
    ratio("search --count / grep -c", search.0, grep, 1.5);
    if available("rg") {
        let rg = best(|| shell(&format!("rg -c ERROR {log_s} > {sink}")));
        println!("rg -c ERROR: {:.3} s", rg.0.as_secs_f64());
        ratio("search --count / rg -c", search.0, rg, f64::INFINITY);
    } else {
        println!("rg: not installed, skipped");
    }

    // Rotation: a 256 MiB file compressed by opsbook vs the compressors alone.
    let live = dir.path().join("rot/app.log");
    std::fs::create_dir_all(live.parent().unwrap()).unwrap();
    let master = dir.path().join("master.log");
    generate(&master, 256 << 20);
    for (codec, peer) in [("gzip", "gzip -6 -c"), ("zstd", "zstd -q -T2 -c")] {
        let config = dir.path().join(format!("{codec}.yaml"));
        std::fs::write(
            &config,
            format!(
                "state_dir: {}\nlogs:\n  sets:\n    app:\n      paths: [\"{}\"]\n      compress: {codec}\n      keep: 1\n",
                dir.path().join("state").display(),
                live.display()
            ),
        )
        .unwrap();
        let rotate = best(|| {
            std::fs::copy(&master, &live).unwrap();
            let _ = std::fs::remove_file(dir.path().join(format!(
                "rot/app.log.1.{}",
                if codec == "gzip" { "gz" } else { "zst" }
            )));
            opsbook(&[
                "--config",
                config.to_str().unwrap(),
                "logs",
                "rotate",
                "--force",
            ])
        });
        report(&format!("opsbook logs rotate ({codec}, 256 MiB)"), rotate);
        let tool = peer.split_whitespace().next().unwrap();
        if available(tool) {
            let out = dir.path().join("peer.out");
            let plain = best(|| shell(&format!("{peer} {} > {}", master.display(), out.display())));
            println!("{peer}: {:.3} s", plain.0.as_secs_f64());
            ratio(
                &format!("rotate {codec} / {tool} (no fsync)"),
                rotate.0,
                plain,
                f64::INFINITY,
            );
            // opsbook must fsync the compressed copy before removing the original; the
            // peer is given the same durability for the target ratio.
            let synced = best(|| {
                shell(&format!(
                    "{peer} {} > {o} && sync {o}",
                    master.display(),
                    o = out.display()
                ))
            });
            println!("{peer} + sync: {:.3} s", synced.0.as_secs_f64());
            ratio(
                &format!("rotate {codec} / {tool} + sync"),
                rotate.0,
                synced,
                1.2,
            );
        } else {
            println!("{tool}: not installed, skipped");
        }
    }
}

/// Write `bytes` of log lines as seed 000's application writes them.
fn generate(path: &Path, bytes: u64) {
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
fn best(mut f: impl FnMut() -> (Duration, i64)) -> (Duration, i64) {
    let mut best = (Duration::MAX, 0);
    for _ in 0..3 {
        let run = f();
        if run.0 < best.0 {
            best = run;
        }
    }
    best
}

/// Run opsbook; wall time and peak RSS in KiB. Exit 1 (nothing found) is fine.
fn opsbook(args: &[&str]) -> (Duration, i64) {
    let (took, peak, code) = common::opsbook(args);
    assert!(
        matches!(code, Some(0 | 1)),
        "opsbook {args:?} failed: exit {code:?}"
    );
    (took, peak)
}

fn shell(script: &str) -> (Duration, i64) {
    let started = Instant::now();
    let status = Command::new("bash")
        .args(["-c", script])
        .status()
        .expect("bash");
    assert!(status.success(), "{script}: {status}");
    (started.elapsed(), 0)
}

fn available(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

fn report(what: &str, (took, peak): (Duration, i64)) {
    println!(
        "{what}: {:.3} s, peak RSS {:.1} MiB{}",
        took.as_secs_f64(),
        peak as f64 / 1024.0,
        if peak > 64 * 1024 {
            " (over the 64 MiB target)"
        } else {
            ""
        }
    );
}

fn ratio(what: &str, ours: Duration, peer: (Duration, i64), target: f64) {
    let r = ours.as_secs_f64() / peer.0.as_secs_f64();
    let verdict = if r <= target { "met" } else { "MISSED" };
    if target.is_finite() {
        println!("ratio {what}: {r:.2} (target ≤ {target}: {verdict})");
    } else {
        println!("ratio {what}: {r:.2}");
    }
}
