//! `opsbook backup create|list|verify` on real trees, read back by GNU tar.

use crate::common::Opsbook;
use std::path::Path;

fn config(codec: &str) -> String {
    format!(
        "state_dir: state\nbackup:\n  destination: dest\n  sets:\n    config:\n      paths: [app]\n      exclude: [\"*.pyc\", \"__pycache__\", \".git\"]\n      compress: {codec}\n"
    )
}

fn tree(opsbook: Opsbook) -> Opsbook {
    opsbook
        .file("app/conf/app.yaml", "database: postgres://db/app\n")
        .file("app/main.py", "print('hello')\n")
        .file("app/__pycache__/main.cpython-311.pyc", "bytecode")
        .file("app/lib/util.pyc", "bytecode")
        .file("app/.git/HEAD", "ref: refs/heads/main\n")
}

fn only_backup(dir: &Path) -> std::path::PathBuf {
    let entries: Vec<_> = std::fs::read_dir(dir.join("dest"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

#[test]
fn gnu_tar_extracts_a_backup_byte_identical_with_excludes_left_out() {
    for (codec, archive, flag) in [
        ("zstd", "data.tar.zst", "--zstd"),
        ("gzip", "data.tar.gz", "-z"),
    ] {
        let opsbook = tree(Opsbook::new()).file("ops.yaml", &config(codec));
        let dir = opsbook.dir().to_path_buf();
        std::os::unix::fs::symlink("conf/app.yaml", dir.join("app/current.yaml")).unwrap();
        Opsbook::new()
            .args(["--config", "ops.yaml", "backup", "create"])
            .run_in(&dir)
            .expect_exit(0)
            .stdout_contains("config: created config-");
        let backup = only_backup(&dir);
        assert!(backup.join("manifest.json").exists());
        let out = dir.join("extracted");
        std::fs::create_dir_all(&out).unwrap();
        let status = std::process::Command::new("tar")
            .args([flag, "-xf"])
            .arg(backup.join(archive))
            .arg("-C")
            .arg(&out)
            .status()
            .expect("GNU tar");
        assert!(status.success(), "{codec}");
        for file in ["app/conf/app.yaml", "app/main.py"] {
            assert_eq!(
                std::fs::read(out.join(file)).unwrap(),
                std::fs::read(dir.join(file)).unwrap(),
                "{codec}: {file}"
            );
        }
        for gone in ["app/__pycache__", "app/lib/util.pyc", "app/.git"] {
            assert!(!out.join(gone).exists(), "{codec}: {gone} was not excluded");
        }
        assert_eq!(
            std::fs::read_link(out.join("app/current.yaml")).unwrap(),
            Path::new("conf/app.yaml")
        );
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json")).unwrap())
                .unwrap();
        assert_eq!(manifest["set"], "config");
        let files = manifest["files"].as_array().unwrap();
        assert_eq!(files.len(), 2);
        let main = files.iter().find(|f| f["path"] == "app/main.py").unwrap();
        assert_eq!(main["size"], 15);
        assert_eq!(main["sha256"], sha256_of(&dir.join("app/main.py")));
    }
}

fn sha256_of(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn list_and_verify_record_the_last_passed_verification() {
    let opsbook = tree(Opsbook::new()).file("ops.yaml", &config("zstd"));
    let dir = opsbook.dir().to_path_buf();
    let args = |extra: &[&str]| {
        let mut a = vec!["--config", "ops.yaml", "backup"];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    Opsbook::new()
        .args(args(&["create"]))
        .run_in(&dir)
        .expect_exit(0);
    // An interrupted run's leftovers are never listed.
    std::fs::create_dir_all(dir.join("dest/config-20200101T000000Z.partial")).unwrap();
    let run = Opsbook::new()
        .args(args(&["list", "--format", "json"]))
        .run_in(&dir)
        .expect_exit(0);
    let list = run.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["files"], 2);
    assert_eq!(list[0]["verified"], false);
    Opsbook::new()
        .args(args(&["verify", "latest"]))
        .run_in(&dir)
        .expect_exit(0)
        .stdout_contains("verified, 2 files match the manifest");
    let list = Opsbook::new()
        .args(args(&["list", "--format", "json"]))
        .run_in(&dir)
        .expect_exit(0)
        .json();
    assert_eq!(list[0]["verified"], true);
}

#[test]
fn a_tampered_archive_fails_verification_naming_the_file() {
    // One incompressible file, stored with gzip: a byte flipped in the middle lands in it.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..256 * 1024)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect();
    let opsbook = Opsbook::new().file("ops.yaml", &config("gzip"));
    let dir = opsbook.dir().to_path_buf();
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(dir.join("app/blob.bin"), &data).unwrap();
    Opsbook::new()
        .args(["--config", "ops.yaml", "backup", "create"])
        .run_in(&dir)
        .expect_exit(0);
    let archive = only_backup(&dir).join("data.tar.gz");
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&archive, bytes).unwrap();
    Opsbook::new()
        .args(["--config", "ops.yaml", "backup", "verify", "latest"])
        .run_in(&dir)
        .expect_exit(1)
        .stderr_contains("app/blob.bin");
}

#[test]
fn backup_without_a_destination_or_set_says_what_to_configure() {
    Opsbook::new()
        .args(["backup", "create"])
        .run()
        .expect_exit(64)
        .stderr_contains("set `backup.destination`");
    Opsbook::new()
        .file("ops.yaml", &config("zstd"))
        .args(["--config", "ops.yaml", "backup", "create", "nope"])
        .run()
        .expect_exit(64)
        .stderr_contains("no backup set \"nope\"");
    Opsbook::new()
        .file(
            "ops.yaml",
            "backup:\n  destination: \"s3://bucket/prefix\"\n",
        )
        .args(["--config", "ops.yaml", "backup", "list"])
        .run()
        .expect_exit(64)
        .stderr_contains("S3 destinations are not supported yet");
}
