//! The `process`, `env` and `file` step kinds against real processes started here, real
//! environment variables and real directory trees (fixed readings only for CPU %).

use crate::common::Opsbook;
use std::io::BufRead;
use std::path::Path;

fn step<'a>(json: &'a serde_json::Value, step: &str) -> &'a serde_json::Value {
    &json["checks"][step]
}

fn severity<'a>(json: &'a serde_json::Value, name: &str) -> &'a str {
    step(json, name)["severity"].as_str().unwrap_or("missing")
}

fn message(json: &serde_json::Value, name: &str) -> String {
    step(json, name)["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A python holding `files` files open and `mib` MiB resident, its command line marked with
/// `tag`; returned once it says it is ready (it then waits on stdin until dropped).
struct Holder(std::process::Child);

impl Holder {
    fn start(tag: &str, files: usize, mib: usize) -> Holder {
        let script = format!(
            "import sys\nheld = [open('/dev/null') for _ in range({files})]\nballast = b'x' * ({mib} << 20)\nprint('ready', flush=True)\nsys.stdin.read()\n"
        );
        let mut child = std::process::Command::new("python3")
            .args(["-c", &script, tag])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("ready line");
        assert_eq!(line, "ready\n");
        Holder(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every step of `runbook` marked `continue_on_failure`, so each one is graded.
fn each_graded(runbook: &str) -> String {
    runbook.replace("- { name: ", "- { continue_on_failure: true, name: ")
}

fn run_json(opsbook: Opsbook, runbook: &str, exit: i32) -> serde_json::Value {
    opsbook
        .file("rb.yaml", &each_graded(runbook))
        .args(["run", "rb.yaml", "--format", "json"])
        .run()
        .expect_exit(exit)
        .json()
}

#[test]
fn process_grades_memory_open_files_and_cpu_of_a_real_process() {
    let tag = format!("holder-{}", std::process::id());
    let holder = Holder::start(&tag, 40, 64);
    let pid = holder.pid();
    let runbook = format!(
        "steps:
  - {{ name: memory, process: {{ cmdline: '{tag}', rss: {{ warn: 32M, crit: 1G }} }} }}
  - {{ name: files, process: {{ cmdline: '{tag}', open_files: {{ crit: 30 }} }} }}
  - {{ name: files warn only, process: {{ cmdline: '{tag}', open_files: {{ warn: 1000 }} }} }}
  - {{ name: memory crit only, process: {{ cmdline: '{tag}', rss: {{ crit: 1G }} }} }}
  - {{ name: idle, process: {{ cmdline: '{tag}', cpu: {{ crit: 50 }}, sample: 1s }} }}
  - {{ name: by name, process: {{ name: python3, min: 1 }} }}
"
    );
    let json = run_json(Opsbook::new(), &runbook, 2);
    assert_eq!(
        severity(&json, "memory"),
        "warning",
        "{}",
        step(&json, "memory")
    );
    let memory = message(&json, "memory");
    assert!(
        memory.starts_with(&format!("cmdline /{tag}/: 1 running; pid {pid} rss ")),
        "{memory}"
    );
    assert!(memory.ends_with(" (> warn 32M)"), "{memory}");
    assert!(step(&json, "memory")["rss_bytes"].as_u64().unwrap() > 64 << 20);

    assert_eq!(severity(&json, "files"), "critical");
    let files = message(&json, "files");
    assert!(files.contains(&format!("pid {pid} ")), "{files}");
    assert!(files.ends_with(" open files (> crit 30)"), "{files}");
    let open = step(&json, "files")["open_files"].as_u64().unwrap();
    assert!((43..50).contains(&open), "40 held + stdio: {open}");

    assert_eq!(severity(&json, "files warn only"), "ok");
    assert_eq!(severity(&json, "memory crit only"), "ok");
    assert_eq!(severity(&json, "idle"), "ok");
    assert_eq!(
        message(&json, "idle"),
        format!("cmdline /{tag}/: 1 running; pid {pid} cpu 0%")
    );
    assert_eq!(severity(&json, "by name"), "ok");
    drop(holder);
}

#[test]
fn several_matches_grade_the_worst_and_name_its_pid() {
    let tag = format!("pair-{}", std::process::id());
    let few = Holder::start(&tag, 2, 1);
    let many = Holder::start(&tag, 60, 1);
    let runbook = format!(
        "steps:\n  - {{ name: workers, process: {{ cmdline: '{tag}', min: 2, max: 2, open_files: {{ warn: 30, crit: 100 }} }} }}\n"
    );
    let json = run_json(Opsbook::new(), &runbook, 1);
    assert_eq!(severity(&json, "workers"), "warning");
    let text = message(&json, "workers");
    assert!(
        text.starts_with(&format!("cmdline /{tag}/: 2 running; pid {} ", many.pid())),
        "{text}"
    );
    assert!(text.ends_with(" open files (> warn 30)"), "{text}");
    let mut pids = vec![few.pid(), many.pid()];
    pids.sort_unstable();
    assert_eq!(step(&json, "workers")["pids"], serde_json::json!(pids));

    // A third one breaks `max`; none at all breaks `min`, naming what was looked for.
    let third = Holder::start(&tag, 0, 1);
    let json = run_json(Opsbook::new(), &runbook, 2);
    assert_eq!(
        message(&json, "workers"),
        format!("cmdline /{tag}/: 3 running, expected 2")
    );
    drop((few, many, third));
    let json = run_json(Opsbook::new(), &runbook, 2);
    assert_eq!(
        message(&json, "workers"),
        format!("cmdline /{tag}/: 0 running, expected 2")
    );
}

#[test]
fn process_cpu_is_graded_from_fixed_readings() {
    let readings = serde_json::json!({
        "processes": [
            { "pid": 4242, "name": "edi-processor", "cpu": 97.5, "rss": 104857600, "open_files": 12 },
            { "pid": 4243, "name": "edi-processor", "cpu": 81.0, "rss": 209715200, "open_files": 12 },
            { "pid": 99, "name": "postgres", "cpu": 100.0 }
        ]
    });
    let opsbook = Opsbook::new().file("readings.json", &readings.to_string());
    let path = opsbook.path("readings.json").display().to_string();
    let runbook = "steps:
  - { name: edi, process: { name: edi-processor, cpu: { warn: 80, crit: 95 } } }
  - { name: edi crit only, process: { name: edi-processor, cpu: { crit: 98 } } }
  - { name: edi warn only, process: { name: edi-processor, cpu: { warn: 90 } } }
";
    let json = run_json(opsbook.env("OPSBOOK_READINGS", path), runbook, 2);
    assert_eq!(severity(&json, "edi"), "critical");
    assert_eq!(
        message(&json, "edi"),
        "edi-processor: 2 running; pid 4242 cpu 97.5% (> crit 95%)"
    );
    assert_eq!(step(&json, "edi")["cpu_percent"], 97.5);
    assert_eq!(severity(&json, "edi crit only"), "ok");
    assert_eq!(severity(&json, "edi warn only"), "warning");
}

#[test]
fn a_process_that_is_not_running_is_critical_naming_it() {
    let json = run_json(
        Opsbook::new(),
        "steps:\n  - { name: worker, process: { name: no-such-program-here } }\n",
        2,
    );
    assert_eq!(
        message(&json, "worker"),
        "no-such-program-here: 0 running, expected at least 1"
    );
}

#[test]
fn bad_process_env_and_file_steps_are_rejected_where_written() {
    let cases = [
        (
            "process: { name: a, pid_file: /run/a.pid }",
            "give only one of `name`, `cmdline` or `pid_file`",
        ),
        ("process: { min: 2 }", "give one of `name`, `cmdline`"),
        (
            "process: { name: a, min: 3, max: 2 }",
            "max 2 is below min 3",
        ),
        ("process: { name: a, sample: 2s }", "give `cpu` too"),
        (
            "process: { name: a, cpu: { crit: 90 }, sample: 100ms }",
            "is too short",
        ),
        (
            "process: { name: a, rss: { warn: 2G, crit: 1G } }",
            "warn 2G is above crit 1G",
        ),
        (
            "process: { name: a, rss: { warn: 2 parsecs } }",
            "unknown unit \"parsecs\"",
        ),
        ("process: { cmdline: '(' }", "invalid regex"),
        ("env: { name: 'A=B' }", "is not a variable name"),
        ("env: { nmae: A }", "unknown field `nmae`"),
        (
            "file: { path: /x, recursive: true }",
            "`recursive` applies to",
        ),
        ("file: { path: '/b/[*.gz', newest: true }", "is not a glob"),
    ];
    for (kind, expected) in cases {
        let runbook = format!("steps:\n  - name: canary\n    {kind}\n");
        let run = Opsbook::new()
            .file("rb.yaml", &runbook)
            .args(["runbook", "validate", "rb.yaml"])
            .run()
            .expect_exit(78);
        assert!(run.stderr.contains(expected), "{kind}: {}", run.stderr);
        assert!(run.stderr.contains("rb.yaml:3:"), "{kind}: {}", run.stderr);
    }
}

#[test]
fn env_checks_a_variable_without_ever_showing_its_value() {
    use std::os::unix::ffi::OsStrExt;
    let runbook = "steps:
  - { name: url, env: { name: DATABASE_URL, matches: '^postgres(ql)?://' } }
  - { name: wrong scheme, env: { name: CACHE_URL, matches: '^redis://' } }
  - { name: unset, env: { name: SENTRY_DSN } }
  - { name: empty, env: { name: API_TOKEN, non_empty: true } }
  - { name: empty allowed, env: { name: API_TOKEN } }
  - { name: not text, env: { name: RAW, matches: '.' } }
";
    let opsbook = Opsbook::new().file("rb.yaml", &each_graded(runbook));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_opsbook"));
    crate::common::clean_env(&mut cmd);
    let output = cmd
        .current_dir(opsbook.dir())
        .args(["run", "rb.yaml", "--format", "json"])
        .env("DATABASE_URL", "postgres://app:hunter2@127.0.0.1/app")
        .env("CACHE_URL", "memcached://user:tiger7@127.0.0.1")
        .env("API_TOKEN", "")
        .env("RAW", std::ffi::OsStr::from_bytes(b"s3cr\xffet"))
        .env_remove("SENTRY_DSN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for secret in ["hunter2", "tiger7", "memcached", "s3cr"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} shown"
        );
    }
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let expect = [
        (
            "url",
            "ok",
            "DATABASE_URL is set and matches '^postgres(ql)?://'",
        ),
        (
            "wrong scheme",
            "critical",
            "CACHE_URL does not match '^redis://' (the value is not shown)",
        ),
        ("unset", "critical", "SENTRY_DSN is not set"),
        ("empty", "critical", "API_TOKEN is set but empty"),
        ("empty allowed", "ok", "API_TOKEN is set (empty)"),
        (
            "not text",
            "critical",
            "RAW is not UTF-8 text, so it cannot match '.' (the value is not shown)",
        ),
    ];
    for (name, want, text) in expect {
        assert_eq!(severity(&json, name), want, "{name}");
        assert_eq!(message(&json, name), text, "{name}");
    }
    drop(opsbook);
}

/// A tree: two files at the top, a nested directory with more, a hard link, and symlinks
/// out of the tree (to a big file and to `/`) that must never be followed.
fn tree(root: &Path, outside: &Path) {
    let write = |rel: &str, len: usize| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, vec![b'x'; len]).unwrap();
    };
    write("a.csv", 100);
    write("b.csv", 200);
    write("sub/c.csv", 1000);
    write("sub/deeper/d.csv", 4000);
    std::fs::hard_link(root.join("sub/c.csv"), root.join("sub/c-again.csv")).unwrap();
    std::fs::write(outside, vec![b'y'; 1 << 20]).unwrap();
    std::os::unix::fs::symlink(outside, root.join("big-outside")).unwrap();
    std::os::unix::fs::symlink("/", root.join("sub/root")).unwrap();
}

#[test]
fn file_sizes_a_directory_tree_without_following_symlinks_out_of_it() {
    let opsbook = Opsbook::new();
    tree(&opsbook.path("pickup"), &opsbook.path("outside.bin"));
    let runbook = "steps:
  - { name: size, file: { path: pickup, size: { warn: 5000, crit: 1048576 } } }
  - { name: size top, file: { path: pickup, size: { warn: 5000 }, recursive: false } }
  - { name: count, file: { path: pickup, count: { warn: 5 } } }
  - { name: count tree, file: { path: pickup, count: { warn: 5 }, recursive: true } }
";
    let json = run_json(opsbook, runbook, 1);
    // 100 + 200 + 1000 (linked twice, counted once) + 4000; never the 1 MiB outside.
    assert_eq!(message(&json, "size"), "pickup: 5300 bytes (> warn 5000)");
    assert_eq!(severity(&json, "size"), "warning");
    assert_eq!(message(&json, "size top"), "pickup: 300 bytes");
    assert_eq!(message(&json, "count"), "pickup: 4 entries");
    // a, b, big-outside, sub, sub/c, sub/c-again, sub/root, sub/deeper, sub/deeper/d
    assert_eq!(
        message(&json, "count tree"),
        "pickup: 9 entries in the tree (> warn 5)"
    );
    assert_eq!(step(&json, "count tree")["entries"], 9);
}

#[test]
fn file_sizes_a_tree_on_its_own_filesystem_only() {
    let opsbook = Opsbook::new();
    let root = opsbook.path("data");
    std::fs::create_dir_all(root.join("mnt")).unwrap();
    std::fs::write(root.join("here.bin"), vec![b'x'; 700]).unwrap();
    let mounted = crate::common::Mounted::tmpfs(&root.join("mnt"), "4m");
    std::fs::write(root.join("mnt/there.bin"), vec![b'y'; 1 << 20]).unwrap();
    let runbook = "steps:\n  - { name: size, file: { path: data, size: { crit: 1000 }, count: { warn: 10 }, recursive: true } }\n";
    let run = opsbook
        .file("rb.yaml", runbook)
        .args(["run", "rb.yaml", "--format", "json"])
        .run()
        .expect_exit(0);
    // Unmounted before the test directory goes, so nothing is left behind.
    drop(mounted);
    assert_eq!(
        message(&run.json(), "size"),
        "data: 2 entries in the tree, 700 bytes"
    );
}

#[test]
fn file_grades_the_newest_match_of_a_glob_by_age() {
    let opsbook = Opsbook::new();
    let dir = opsbook.path("backups");
    std::fs::create_dir_all(&dir).unwrap();
    // A fixed now, so ages read the same however long the test takes.
    let now = 1_800_000_000u64;
    let hours = |h: u64| std::time::UNIX_EPOCH + std::time::Duration::from_secs(now - h * 3600);
    for (name, age) in [
        ("metrics_20260101.db", hours(75)),
        ("metrics_20260103.db", hours(27)),
        ("metrics_20260102.db", hours(51)),
        ("notes.txt", hours(1)),
    ] {
        let file = std::fs::File::create(dir.join(name)).unwrap();
        file.set_modified(age).unwrap();
    }
    let at = jiff::Timestamp::from_second(now as i64)
        .unwrap()
        .to_string();
    let runbook = "steps:
  - { name: fresh, file: { path: 'backups/metrics_*.db', newest: true, max_age: 28h } }
  - { name: stale, file: { path: 'backups/metrics_*.db', newest: true, max_age: 26h } }
  - { name: none, file: { path: 'backups/*.tar.gz', newest: true, max_age: 26h } }
  - { name: no stray dumps, file: { path: 'backups/*.sql', newest: true, exists: false } }
";
    let json = run_json(opsbook.env("OPSBOOK_NOW", at), runbook, 2);
    assert_eq!(severity(&json, "fresh"), "ok");
    assert_eq!(
        message(&json, "fresh"),
        "backups/metrics_20260103.db is the newest of backups/metrics_*.db, modified 1day 3h ago"
    );
    assert_eq!(severity(&json, "stale"), "critical");
    assert_eq!(
        message(&json, "stale"),
        "backups/metrics_20260103.db was modified 1day 3h ago, more than 1day 2h"
    );
    assert_eq!(severity(&json, "none"), "critical");
    assert_eq!(message(&json, "none"), "no file matches backups/*.tar.gz");
    assert_eq!(severity(&json, "no stray dumps"), "ok");
}

#[test]
fn the_schema_describes_the_new_settings() {
    let schema = Opsbook::new()
        .args(["runbook", "schema"])
        .run()
        .expect_exit(0)
        .json();
    let defs = &schema["$defs"];
    for (kind, fields) in [
        (
            "ProcessSpec",
            &["cmdline", "rss", "cpu", "open_files", "sample"][..],
        ),
        ("EnvSpec", &["name", "non_empty", "matches"][..]),
        ("FileSpec", &["recursive", "newest"][..]),
    ] {
        for field in fields {
            assert!(
                defs[kind]["properties"].get(field).is_some(),
                "{kind}.{field}: {}",
                defs[kind]
            );
        }
        assert_eq!(defs[kind]["additionalProperties"], false, "{kind}");
    }
    assert_eq!(
        schema["$defs"]["Step"]["properties"]["env"]["$ref"],
        "#/$defs/EnvSpec"
    );
}

#[test]
fn what_another_user_cannot_read_is_unknown_never_ok() {
    use std::os::unix::fs::PermissionsExt;
    let tag = format!("private-{}", std::process::id());
    let holder = Holder::start(&tag, 3, 1);
    let opsbook = Opsbook::new();
    let dir = opsbook.dir().to_path_buf();
    std::fs::create_dir_all(dir.join("data/sub/secret")).unwrap();
    std::fs::write(dir.join("data/a.csv"), "abc\n").unwrap();
    std::fs::write(dir.join("data/sub/secret/big.bin"), vec![0u8; 4096]).unwrap();
    let runbook = format!(
        "steps:
  - {{ name: size, file: {{ path: data, size: {{ crit: 100000 }} }} }}
  - {{ name: files, process: {{ cmdline: '{tag}', open_files: {{ crit: 100 }} }} }}
"
    );
    std::fs::write(dir.join("rb.yaml"), each_graded(&runbook)).unwrap();
    for (path, mode) in [
        ("", 0o755),
        ("data", 0o755),
        ("data/sub", 0o755),
        ("data/sub/secret", 0o700),
        ("rb.yaml", 0o644),
    ] {
        std::fs::set_permissions(dir.join(path), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let mut cmd = std::process::Command::new("setpriv");
    crate::common::clean_env(&mut cmd);
    let output = cmd
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_opsbook"))
        .args(["run", "rb.yaml", "--format", "json"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(severity(&json, "size"), "unknown");
    assert_eq!(
        message(&json, "size"),
        "data: 4 bytes, 1 directory unreadable (first data/sub/secret: Permission denied (os error 13))"
    );
    assert_eq!(severity(&json, "files"), "unknown");
    assert_eq!(
        message(&json, "files"),
        format!(
            "cmdline /{tag}/: 1 running; pid {} open files cannot be read",
            holder.pid()
        )
    );
    drop((holder, opsbook));
}

/// Readings that could say ok without knowing: a process's threads counted as processes,
/// a size level on a plain file ignored, "no match" where a match may be unreadable, and
/// NaN, infinity or 1e999 read as numbers.
#[test]
fn threads_files_unreadable_globs_and_odd_numbers_never_read_ok() {
    let tag = format!("threads-{}", std::process::id());
    let script = "import threading, time, sys\nfor _ in range(3):\n    threading.Thread(target=time.sleep, args=(300,), daemon=True).start()\nprint('ready', flush=True)\nsys.stdin.read()\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, &tag])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    let ops = Opsbook::new().file("big.bin", &"x".repeat(2048));
    let locked = ops.path("locked/sub");
    std::fs::create_dir_all(&locked).unwrap();
    std::fs::write(locked.join("a.db"), "").unwrap();
    let runbook = format!(
        "steps:
  - {{ name: threads, process: {{ cmdline: '{tag}', min: 2 }} }}
  - {{ name: file size, file: {{ path: big.bin, size: {{ crit: 1024 }} }} }}
  - {{ name: file count, file: {{ path: big.bin, count: {{ crit: 1 }} }} }}
  - {{ name: nan, command: {{ run: 'echo NaN', value: {{ pattern: '(\\S+)', crit: 1 }} }} }}
  - {{ name: infinity, command: {{ run: 'echo infinity', value: {{ pattern: '(\\S+)', crit: 1, below: true }} }} }}
  - {{ name: huge, command: {{ run: 'echo 1e999', value: {{ crit: 1 }} }} }}
  - {{ name: scientific, command: {{ run: 'echo 1.5e6', value: {{ crit: 1000 }} }} }}
"
    );
    let json = run_json(ops, &runbook, 2);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        severity(&json, "threads"),
        "critical",
        "{}",
        step(&json, "threads")
    );
    assert!(
        message(&json, "threads").contains("1 running"),
        "{}",
        step(&json, "threads")
    );
    assert_eq!(
        severity(&json, "file size"),
        "critical",
        "{}",
        step(&json, "file size")
    );
    assert_eq!(
        severity(&json, "file count"),
        "unknown",
        "{}",
        step(&json, "file count")
    );
    for name in ["nan", "infinity", "huge"] {
        assert_eq!(severity(&json, name), "unknown", "{}", step(&json, name));
    }
    assert_eq!(
        severity(&json, "scientific"),
        "critical",
        "{}",
        step(&json, "scientific")
    );
    // As a user who cannot read `locked`, "nothing matches" is not known.
    use std::os::unix::fs::PermissionsExt;
    let ops = Opsbook::new();
    let locked = ops.path("locked/sub");
    std::fs::create_dir_all(&locked).unwrap();
    std::fs::write(locked.join("a.db"), "").unwrap();
    std::fs::set_permissions(ops.path("locked"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let pattern = format!("{}/*/*.db", ops.path("locked").display());
    let book = ops.path("rb.yaml");
    std::fs::write(
        &book,
        format!("steps:\n  - name: gone\n    file: {{ path: \"{pattern}\", newest: true, exists: false }}\n"),
    )
    .unwrap();
    let mut perms = std::fs::metadata(ops.dir()).unwrap().permissions();
    perms.set_mode(0o755);
    std::fs::set_permissions(ops.dir(), perms).unwrap();
    std::fs::set_permissions(&book, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_opsbook"))
        .args(["run"])
        .arg(&book)
        .args(["--format", "json"])
        .current_dir("/")
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        severity(&json, "gone"),
        "unknown",
        "{}",
        step(&json, "gone")
    );
}

/// `newest: true` with `**` walks a tree holding symlink loops (`l1 -> .`, `up -> ..`)
/// without following them: it ends at once and names the real file, not the same file
/// seen through a loop, and never a directory named like a match. A match dated ahead of
/// the clock is fresh, and said to be ahead.
#[test]
fn newest_walks_past_symlink_loops_and_says_a_date_in_the_future() {
    let opsbook = Opsbook::new();
    let dir = opsbook.path("backups");
    std::fs::create_dir_all(dir.join("2026/01")).unwrap();
    std::fs::create_dir_all(opsbook.path("ahead")).unwrap();
    std::os::unix::fs::symlink(".", dir.join("l1")).unwrap();
    std::os::unix::fs::symlink("..", dir.join("2026/up")).unwrap();
    let now = 1_800_000_000u64;
    let at = |s: u64| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s);
    for (name, modified) in [
        ("backups/2026/01/a.db", at(now - 7200)),
        ("backups/2026/b.db", at(now - 3600)),
        ("backups/old.db", at(now - 90_000)),
        ("ahead/c.db", at(now + 7200)),
    ] {
        let file = std::fs::File::create(opsbook.path(name)).unwrap();
        file.set_modified(modified).unwrap();
    }
    // A directory named like a match, newer than every file: not a match.
    std::fs::create_dir(dir.join("2026/dir.db")).unwrap();
    std::fs::File::open(dir.join("2026/dir.db"))
        .unwrap()
        .set_modified(at(now - 60))
        .unwrap();
    let clock = jiff::Timestamp::from_second(now as i64)
        .unwrap()
        .to_string();
    let runbook = "defaults: { timeout: 20s }
steps:
  - { name: loop, file: { path: 'backups/**/*.db', newest: true, max_age: 2h } }
  - { name: ahead, file: { path: 'ahead/*.db', newest: true, max_age: 1h } }
";
    // The glob crate walked into the loops for ever (the step's timeout did not stop the
    // blocking walk): a bound far above a run's real length keeps such a regression from
    // hanging the suite.
    let json = opsbook
        .env("OPSBOOK_NOW", clock)
        .file("rb.yaml", &each_graded(runbook))
        .args(["run", "rb.yaml", "--format", "json"])
        .spawn()
        .finish(std::time::Duration::from_secs(300))
        .expect_exit(0)
        .json();
    assert_eq!(severity(&json, "loop"), "ok", "{}", step(&json, "loop"));
    assert_eq!(
        message(&json, "loop"),
        "backups/2026/b.db is the newest of backups/**/*.db, modified 1h ago"
    );
    assert_eq!(severity(&json, "ahead"), "ok", "{}", step(&json, "ahead"));
    assert_eq!(
        message(&json, "ahead"),
        "ahead/c.db is the newest of ahead/*.db, modified 2h in the future (check the clock or the file's timestamp)"
    );
}
