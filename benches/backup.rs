//! Backup and restore: `opsbook backup create` against `tar -czf` (the seeds' way) and
//! `tar -cf - | zstd -T2`, and `opsbook restore` against `tar -xzf`, on the same generated
//! tree in one run: ~20,000 small files plus ~256 MiB of logs in seed 000's format.
//! Prints wall times (best of 3, page cache warm), `opsbook / peer` ratios and opsbook's
//! peak memory (target: under 100 MiB whatever the tree size).
//!
//! `cargo bench --bench backup`; `OPSBOOK_BENCH_FILES=N` and `OPSBOOK_BENCH_LOG_MB=N`
//! change the tree. On ext4, run it at least five minutes after deleting a large tree
//! (another run's clean-up included): until then every file created pays for a scan of
//! recently deleted inodes, and the figures measure that. Under `cargo test` a small smoke run only checks that it still works.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let setting = |name: &str, default: u64, smoke: u64| {
        if !full {
            return smoke;
        }
        std::env::var(name)
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(default)
    };
    let files = setting("OPSBOOK_BENCH_FILES", 20_000, 200);
    let log_mb = setting("OPSBOOK_BENCH_LOG_MB", 256, 2);
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("srv");
    generate_tree(&root, files, log_mb);
    println!(
        "tree: {files} small files + {log_mb} MiB of logs at {}",
        root.display()
    );
    let dest = dir.path().join("dest");
    let config = dir.path().join("ops.yaml");
    std::fs::write(
        &config,
        format!(
            "state_dir: {state}\nbackup:\n  destination: {dest}\n  sets:\n    srv:\n      paths: [\"{root}\"]\n",
            state = dir.path().join("state").display(),
            dest = dest.display(),
            root = root.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let create = common::best(|| {
        let _ = std::fs::remove_dir_all(&dest);
        settle();
        opsbook(&["--config", config, "backup", "create"])
    });
    common::report_within("opsbook backup create (zstd)", create, 100);
    // Each run restores into a new directory: deleting 20,000 files just before creating
    // 20,000 makes ext4 scan for recently deleted inodes on every create (~0.7 ms each
    // here), which would measure the filesystem, not the tools. For the same reason
    // opsbook and tar take turns (below), so neither always runs after the other's churn.
    let mut run = 0;
    let mut fresh = |name: &str| {
        run += 1;
        dir.path().join(format!("{name}-{run}"))
    };
    let mut target = dir.path().to_path_buf();
    let restore_once = |target: &mut std::path::PathBuf,
                        fresh: &mut dyn FnMut(&str) -> std::path::PathBuf| {
        *target = fresh("restored");
        settle();
        opsbook(&[
            "--config",
            config,
            "restore",
            "latest",
            "--to",
            target.to_str().unwrap(),
        ])
    };
    let mut restore = restore_once(&mut target, &mut fresh);
    common::report_within("opsbook restore latest", restore, 100);
    let tree_bytes = size_of(&root);
    // Members are stored under their path relative to `/`.
    let stored = std::fs::canonicalize(&root).unwrap();
    let restored_bytes = size_of(&target.join(stored.strip_prefix("/").unwrap()));
    assert_eq!(tree_bytes, restored_bytes, "the restore is incomplete");
    if !full {
        return;
    }
    let parent = root.parent().unwrap().display();
    let gz = dir.path().join("peer.tar.gz");
    let zst = dir.path().join("peer.tar.zst");
    let tar_czf =
        common::best(|| common::shell(&format!("tar -czf {} -C {parent} srv", gz.display())));
    println!("tar -czf: {:.3} s", tar_czf.0.as_secs_f64());
    common::ratio("create / tar -czf", create.0, tar_czf, 0.2);
    if common::available("zstd") {
        let tar_zstd = common::best(|| {
            settle();
            common::shell(&format!(
                "tar -cf - -C {parent} srv | zstd -q -T2 > {}",
                zst.display()
            ))
        });
        println!("tar -cf - | zstd -T2: {:.3} s", tar_zstd.0.as_secs_f64());
        common::ratio("create / tar | zstd -T2", create.0, tar_zstd, 1.2);
    } else {
        println!("zstd: not installed, skipped");
    }
    let mut tar_xzf = (Duration::MAX, 0);
    let mut tar_xzf_sync = (Duration::MAX, 0);
    for _ in 0..3 {
        for (sync, best) in [("", &mut tar_xzf), (" && sync", &mut tar_xzf_sync)] {
            let peer_target = fresh("peer-restored");
            std::fs::create_dir_all(&peer_target).unwrap();
            settle();
            let peer = common::shell(&format!(
                "tar -xzf {} -C {}{sync}",
                gz.display(),
                peer_target.display()
            ));
            if peer.0 < best.0 {
                *best = peer;
            }
        }
        let ours = restore_once(&mut target, &mut fresh);
        if ours.0 < restore.0 {
            restore = ours;
        }
    }
    common::report_within(
        "opsbook restore latest (best of 4, turns with tar)",
        restore,
        100,
    );
    println!("tar -xzf: {:.3} s", tar_xzf.0.as_secs_f64());
    common::ratio("restore / tar -xzf", restore.0, tar_xzf, 1.0);
    // opsbook flushes what it restored before moving it into place (a power cut never
    // leaves half-written files in the target); tar leaves it to the page cache.
    println!("tar -xzf && sync: {:.3} s", tar_xzf_sync.0.as_secs_f64());
    common::ratio(
        "restore / tar -xzf && sync (same durability)",
        restore.0,
        tar_xzf_sync,
        1.0,
    );
    let archive = std::fs::read_dir(&dest)
        .unwrap()
        .flatten()
        .next()
        .map(|e| e.path().join("data.tar.zst"))
        .unwrap();
    println!(
        "sizes: opsbook {:.1} MiB, tar -czf {:.1} MiB, of {:.1} MiB",
        mib(std::fs::metadata(archive).unwrap().len()),
        mib(std::fs::metadata(&gz).unwrap().len()),
        mib(tree_bytes)
    );
}

/// Write back what earlier runs left dirty (untimed), so that no run pays for another's.
fn settle() {
    let _ = std::process::Command::new("sync").status();
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// Run opsbook, which must succeed: wall time and peak RSS in KiB.
fn opsbook(args: &[&str]) -> (Duration, i64) {
    let (took, peak, code) = common::opsbook(args);
    assert_eq!(code, Some(0), "opsbook {args:?} failed");
    (took, peak)
}

/// `files` small text files (1–8 KiB, config and code-like) in directories of 100, and
/// `log_mb` MiB of logs in eight files.
fn generate_tree(root: &Path, files: u64, log_mb: u64) {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..files {
        let sub = root.join(format!("app/module{:03}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&sub).unwrap();
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = 1024 + (seed % 7168) as usize;
        let mut text = String::with_capacity(len + 64);
        let mut n = seed;
        while text.len() < len {
            n = n
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            text.push_str(&format!(
                "setting_{} = \"value-{}\"  # line {}\n",
                n % 97,
                n % 10_007,
                text.len()
            ));
        }
        std::fs::write(sub.join(format!("file{i:05}.py")), text).unwrap();
    }
    let logs = root.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    for i in 0..8 {
        common::generate_log(&logs.join(format!("app.log.{i}")), (log_mb << 20) / 8);
    }
}

fn size_of(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}
