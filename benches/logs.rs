//! Logs: `opsbook logs summary`, `logs search --count`, the `log_match` and `log_latency`
//! steps and `logs rotate` against the seed's pipelines, `grep -c`, a `grep | awk | sort -n`
//! p95 pipeline, rg, gzip and zstd on the same generated seed-000-style log, in one run. Prints wall times (best of 3, page cache warm), `opsbook / peer` ratios and
//! opsbook's peak memory.
//!
//! `cargo bench --bench logs` uses a 1 GiB log and a 256 MiB file to rotate;
//! `OPSBOOK_BENCH_LOG_MB=N` changes the log's size. Under `cargo test` a 4 MiB smoke run of
//! the opsbook commands only checks that the benchmark still works (and that the steps'
//! count and p95 equal grep's and the pipeline's).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

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
    common::generate_log(&log, mb << 20);
    println!("log: {} MiB of seed 000's format at {}", mb, log.display());
    let log_s = log.to_str().unwrap();

    let summary = common::best(|| opsbook(&["logs", "summary", log_s]));
    let search = common::best(|| opsbook(&["logs", "search", "ERROR", log_s, "--count"]));
    common::report("opsbook logs summary", summary);
    common::report("opsbook logs search ERROR --count", search);
    let steps = log_steps(dir.path(), log_s);
    if !full {
        return;
    }
    let pipelines = common::best(|| {
        common::shell(&format!(
            "grep ERROR {log_s} | sort | uniq -c > /dev/null; \
             grep 'Performance:' {log_s} | awk '{{print $NF}}' | awk -F'ms' '{{print $1}}' \
             | awk '{{sum+=$1; count++}} END {{print sum/count}}' > /dev/null"
        ))
    });
    println!(
        "seed pipelines (uniq -c + awk average): {:.3} s",
        pipelines.0.as_secs_f64()
    );
    common::ratio("summary / seed pipelines", summary.0, pipelines, 0.5);
    // Not > /dev/null: GNU grep notices that and stops at the first match.
    let sink = dir.path().join("count.txt");
    let sink = sink.to_str().unwrap();
    let grep = common::best(|| common::shell(&format!("grep -c ERROR {log_s} > {sink}")));
    println!("grep -c ERROR: {:.3} s", grep.0.as_secs_f64());
    common::ratio("search --count / grep -c", search.0, grep, 1.5);
    if common::available("rg") {
        let rg = common::best(|| common::shell(&format!("rg -c ERROR {log_s} > {sink}")));
        println!("rg -c ERROR: {:.3} s", rg.0.as_secs_f64());
        common::ratio("search --count / rg -c", search.0, rg, f64::INFINITY);
    } else {
        println!("rg: not installed, skipped");
    }
    common::ratio("log_match / grep -c", steps.0.0, grep, 1.5);
    let p95 = common::best(|| common::shell(&p95_pipeline(log_s, &format!("{sink}.sorted"), sink)));
    println!(
        "grep Performance: | awk | sort -n | pick the p95 line: {:.3} s",
        p95.0.as_secs_f64()
    );
    common::ratio("log_latency / grep|awk|sort p95", steps.1.0, p95, 1.5);

    // Rotation: a 256 MiB file compressed by opsbook vs the compressors alone.
    let live = dir.path().join("rot/app.log");
    std::fs::create_dir_all(live.parent().unwrap()).unwrap();
    let master = dir.path().join("master.log");
    common::generate_log(&master, 256 << 20);
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
        let rotate = common::best(|| {
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
        common::report(&format!("opsbook logs rotate ({codec}, 256 MiB)"), rotate);
        let tool = peer.split_whitespace().next().unwrap();
        if common::available(tool) {
            let out = dir.path().join("peer.out");
            let plain = common::best(|| {
                common::shell(&format!("{peer} {} > {}", master.display(), out.display()))
            });
            println!("{peer}: {:.3} s", plain.0.as_secs_f64());
            common::ratio(
                &format!("rotate {codec} / {tool} (no fsync)"),
                rotate.0,
                plain,
                f64::INFINITY,
            );
            // opsbook must fsync the compressed copy before removing the original; the
            // peer is given the same durability for the target ratio.
            let synced = common::best(|| {
                common::shell(&format!(
                    "{peer} {} > {o} && sync {o}",
                    master.display(),
                    o = out.display()
                ))
            });
            println!("{peer} + sync: {:.3} s", synced.0.as_secs_f64());
            common::ratio(
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

/// Run opsbook; wall time and peak RSS in KiB. Exit 1 (nothing found) is fine.
fn opsbook(args: &[&str]) -> (Duration, i64) {
    let (took, peak, code) = common::opsbook(args);
    assert!(
        matches!(code, Some(0 | 1)),
        "opsbook {args:?} failed: exit {code:?}"
    );
    (took, peak)
}

/// The `log_match` step (lines with ERROR) and the `log_latency` step (p95 of the
/// `Performance:` lines) over the whole log, each in a runbook of one step: their best
/// times, after checking once that they give grep's count and the pipeline's p95.
fn log_steps(dir: &std::path::Path, log: &str) -> ((Duration, i64), (Duration, i64)) {
    let book = |name: &str, step: &str| {
        let path = dir.join(name);
        std::fs::write(&path, format!("steps:\n  - name: {name}\n    {step}\n")).unwrap();
        path.to_str().unwrap().to_string()
    };
    let matching = book(
        "match.yaml",
        &format!("log_match: {{ path: \"{log}\", contains: ERROR, crit: 1000000000000 }}"),
    );
    let latency = book(
        "latency.yaml",
        &format!("log_latency: {{ path: \"{log}\", format: application, p95: {{ crit: 1h }} }}"),
    );
    let reading = |runbook: &str| -> serde_json::Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_opsbook"))
            .args(["run", runbook, "--format", "json"])
            .env_remove("ENVIRONMENT")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        report["checks"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .clone()
    };
    let sink = dir.join("steps.out");
    let sink = sink.to_str().unwrap();
    common::shell(&format!("grep -c ERROR {log} > {sink}"));
    let count: u64 = std::fs::read_to_string(sink)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(reading(&matching)["matched"], count, "log_match vs grep -c");
    common::shell(&p95_pipeline(log, &format!("{sink}.sorted"), sink));
    let p95: f64 = std::fs::read_to_string(sink)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        reading(&latency)["p95_ms"].as_f64(),
        Some(p95),
        "log_latency vs the pipeline"
    );
    let run = |runbook: &str| common::best(|| opsbook(&["run", runbook]));
    let (matched, timed) = (run(&matching), run(&latency));
    common::report("opsbook run (log_match ERROR)", matched);
    common::report("opsbook run (log_latency p95)", timed);
    (matched, timed)
}

/// The p95 of the `Performance: NAME took Nms` lines as a shell pipeline: the durations
/// sorted numerically, then the line at ⌈0.95·n⌉ (nearest rank) into `out`.
fn p95_pipeline(log: &str, sorted: &str, out: &str) -> String {
    format!(
        "export LC_ALL=C; grep -F 'Performance:' {log} | awk '{{v=$NF; sub(/ms$/, \"\", v); print v}}' \
         | sort -n > {sorted} && n=$(wc -l < {sorted}) && sed -n \"$(( (n * 95 + 99) / 100 ))p\" {sorted} > {out}"
    )
}
