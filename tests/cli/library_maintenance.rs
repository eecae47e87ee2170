//! The shipped maintenance runbooks, each run green against a healthy system and each of its check
//! steps driven to warning or critical by its own broken fixture (`common::library::Book`).

use crate::common::Opsbook;
use crate::common::library::{Book, run_book, severity};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The shipped runbooks this file tests; `runbooks::shipped` checks every shipped runbook
/// is tested here or there.
pub const COVERED: &[&str] = &[
    "weekly",
    "monthly",
    "quarterly",
    "maintenance-window",
    "pre-deploy",
    "deploy",
];

/// A command that fails (`false` would read as a false `when:` and skip the step).
const FAILS: &str = "test -e /no/such/file";

/// The local API of the shipped-runbook tests: `/health` 200 healthy (500 once `broken`
/// exists), `/health/readiness` answers `ready`.
fn api(ready: u16, broken: PathBuf) -> String {
    let port = crate::runbooks::shipped::api(200, ready, broken);
    format!("http://127.0.0.1:{port}")
}

/// One log line `ago` seconds old, as the application writes it.
fn line(ago: u64, level: &str, text: &str) -> String {
    let at = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(ago as i64);
    format!("{} {level} {text}\n", at.strftime("%Y-%m-%d %H:%M:%S"))
}

/// A quiet healthy week: requests and `Performance:` lines of 100–149ms over six days.
fn healthy_log() -> String {
    let mut log = String::new();
    for i in 0..200u64 {
        log.push_str(&line(
            518_400 - i * 2_500,
            "INFO",
            &format!("Performance: upload took {}.00ms", 100 + i % 50),
        ));
        log.push_str(&line(518_000 - i * 2_500, "INFO", "request handled"));
    }
    log
}

fn age(path: &Path, days: u64) {
    let when = SystemTime::now() - Duration::from_secs(days * 86_400);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

fn write(path: &Path, contents: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// A healthy system in a temp dir: `c.yaml` with backup sets `db` (fresh backup), `old`
/// (its newest backup three days old) and `gone` (its data missing), log sets `app`
/// (old rotated files to archive) and `broken` (its archive dir is a file), logs with
/// fixed contents and the API above.
struct System {
    dir: tempfile::TempDir,
    broken_flag: PathBuf,
    api: String,
}

impl System {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let config = format!(
            "state_dir: {d}/state\nbackup:\n  destination: {d}/dest\n  sets:\n    db: {{ paths: [{d}/data], keep_daily: 1 }}\n    old: {{ paths: [{d}/data], keep_daily: 1 }}\n    gone: {{ paths: [{d}/no-such-data], keep_daily: 1 }}\nlogs:\n  sets:\n    app: {{ paths: [\"{d}/rotated/app.log\"], archive_after: 30d, archive_dir: {d}/archive }}\n    broken: {{ paths: [\"{d}/blocked/app.log\"], archive_after: 30d, archive_dir: {d}/blocker }}\n",
            d = d.display()
        );
        write(&d.join("c.yaml"), &config);
        write(&d.join("data/rows.txt"), "1\n2\n3\n");
        for set in ["rotated", "blocked"] {
            write(&d.join(format!("{set}/app.log")), "live\n");
            write(&d.join(format!("{set}/app.log.1")), "old one\n");
            age(&d.join(format!("{set}/app.log.1")), 40);
        }
        write(
            &d.join("blocker"),
            "a file where the archive directory should be\n",
        );
        write(&d.join("app.log"), &healthy_log());
        write(&d.join("audit.log"), "{}\n");
        // The cleanup directory: one old file to go, a new one and an old one below it
        // (not recursive) to stay.
        write(&d.join("junk/old.tmp"), "old\n");
        age(&d.join("junk/old.tmp"), 100);
        write(&d.join("junk/new.tmp"), "new\n");
        write(&d.join("junk/sub/old.tmp"), "old, below\n");
        age(&d.join("junk/sub/old.tmp"), 100);
        let backup = |set: &str, now: Option<String>| {
            let mut ob = Opsbook::new().args(["--config", "c.yaml", "backup", "create", set]);
            if let Some(now) = now {
                ob = ob.env("OPSBOOK_NOW", now);
            }
            ob.run_in(d).expect_exit(0);
        };
        backup("db", None);
        backup(
            "old",
            Some((jiff::Timestamp::now() - jiff::SignedDuration::from_hours(72)).to_string()),
        );
        let broken_flag = d.join("restarted");
        let api = api(200, broken_flag.clone());
        System {
            dir,
            broken_flag,
            api,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A log file in the system's dir with `contents`; its name as a var value.
    fn log(&self, name: &str, contents: &str) -> String {
        write(&self.path().join(name), contents);
        name.to_string()
    }
}

/// Every run: the system's config, fixed healthy readings, an environment set.
fn healthy(ob: Opsbook) -> Opsbook {
    ob.args(["--config", "c.yaml"])
        .readings(10.0, 10.0, 5.0)
        .env("ENVIRONMENT", "development")
}

/// [`healthy`], but the root filesystem 95 % full.
fn full_disk(ob: Opsbook) -> Opsbook {
    healthy(ob).readings(10.0, 95.0, 5.0)
}

/// The command variables of the shipped `deploy`, in the order it runs them (undo last).
pub const DEPLOY_COMMANDS: [&str; 7] = [
    "pull",
    "install",
    "migrate",
    "test",
    "restart",
    "rollback",
    "downgrade",
];

#[test]
fn weekly_reviews_the_week_s_latency_errors_and_slow_operations() {
    let system = System::new();
    let vars = [
        ("app_log", "app.log".to_string()),
        ("audit_log", "audit.log".to_string()),
        ("db_maintenance", "sqlite3 metrics.db VACUUM".to_string()),
    ];
    let mut book = Book::new(system.path(), "weekly", &vars);
    let report = book.green(healthy);
    assert_eq!(severity(&report, "Database maintenance"), "ok");
    // Each log mutation: a healthy week's traffic (or none) plus `count` lines.
    for (file, with_healthy, ago, level, text, count, step) in [
        (
            "latency.log",
            false,
            3_600,
            "INFO",
            "Performance: export took 1500.00ms",
            300,
            "Response times this week",
        ),
        (
            "errors.log",
            true,
            7_200,
            "ERROR",
            "upload failed",
            60,
            "Errors this week",
        ),
        (
            "warnings.log",
            true,
            7_200,
            "WARNING",
            "retrying upload",
            150,
            "Warnings this week",
        ),
        // 150 slow operations in a healthy week: over the 100 the week allows.
        (
            "some-slow.log",
            true,
            86_400,
            "INFO",
            "Performance: pattern_load took 1200.50ms",
            150,
            "Slow operations this week",
        ),
    ] {
        let mut log = if with_healthy {
            healthy_log()
        } else {
            String::new()
        };
        for i in 0..count {
            log.push_str(&line(ago + i, level, text));
        }
        let log = system.log(file, &log);
        book.mutant(&[("app_log", log)], healthy, step, "critical");
    }
    write(&system.path().join("stale-audit.log"), "{}\n");
    age(&system.path().join("stale-audit.log"), 10);
    book.mutant(
        &[("audit_log", "stale-audit.log".to_string())],
        healthy,
        "Audit log written this week",
        "critical",
    );
    book.mutant(
        &[(
            "db_maintenance",
            "sqlite3 /no/such/dir/metrics.db VACUUM".to_string(),
        )],
        healthy,
        "Database maintenance",
        "critical",
    );
    book.done();
    // Without a maintenance command the step is skipped, not a false ok.
    let (code, report) = run_book(
        system.path(),
        "weekly",
        &[
            ("app_log", "app.log".to_string()),
            ("audit_log", "audit.log".to_string()),
        ],
        healthy,
    );
    assert_eq!(code, 0);
    assert_eq!(severity(&report, "Database maintenance"), "skipped");
}

#[test]
fn monthly_archives_old_logs_and_removes_old_files() {
    let system = System::new();
    let d = system.path();
    let vars = [
        ("app_log", "app.log".to_string()),
        ("config_file", "c.yaml".to_string()),
        ("log_set", "app".to_string()),
        ("cleanup_dir", d.join("junk").display().to_string()),
        ("cleanup_after", "90d".to_string()),
        ("cleanup_match", "*.tmp".to_string()),
    ];
    // `run --dry-run` shows both and changes nothing.
    let mut args = vec!["--config", "c.yaml", "run", "monthly", "--dry-run"];
    let pairs: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for pair in &pairs {
        args.extend(["--var", pair.as_str()]);
    }
    let dry = Opsbook::new().args(args).run_in(d).expect_exit(0);
    assert!(
        dry.stdout.contains("archive    Archive old logs"),
        "{}",
        dry.stdout
    );
    let junk = d.join("junk");
    assert!(
        dry.stdout.contains(&format!(
            "would remove 1 file (4B) from {}: {}",
            junk.display(),
            junk.join("old.tmp").display()
        )),
        "{}",
        dry.stdout
    );
    assert!(junk.join("old.tmp").exists() && d.join("rotated/app.log.1").exists());

    let mut book = Book::new(d, "monthly", &vars);
    let report = book.green(healthy);
    assert!(
        report["checks"]["Remove old files"]["message"]
            .as_str()
            .unwrap()
            .starts_with("removed 1 file, 4B freed"),
        "{report:#}"
    );
    assert!(!junk.join("old.tmp").exists() && !d.join("rotated/app.log.1").exists());
    assert!(junk.join("new.tmp").exists() && junk.join("sub/old.tmp").exists());
    assert_eq!(
        std::fs::read_dir(d.join("archive")).unwrap().count(),
        1,
        "one archive"
    );
    let mut critical = healthy_log();
    critical.push_str(&line(
        10 * 86_400,
        "CRITICAL",
        "login from an unknown country",
    ));
    let critical = system.log("critical.log", &critical);
    book.mutant(
        &[("app_log", critical)],
        healthy,
        "Security events this month",
        "critical",
    );
    book.mutant(
        &[("config_file", "missing.yaml".to_string())],
        healthy,
        "Configuration present",
        "critical",
    );
    book.mutant(
        &[("log_set", "broken".to_string())],
        healthy,
        "Archive old logs",
        "critical",
    );
    let gone = d.join("no-such-junk").display().to_string();
    book.mutant(
        &[("cleanup_dir", gone.clone())],
        healthy,
        "Remove old files",
        "critical",
    );
    book.done();
    let (_, report) = run_book(d, "monthly", &[("cleanup_dir", gone.clone())], healthy);
    let message = report["checks"]["Remove old files"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains(&format!("cannot read directory {gone}: No such file")),
        "{message}"
    );
}

#[test]
fn quarterly_grades_the_restore_drill_against_the_rto() {
    let system = System::new();
    let vars = [("backup_set", "db".to_string()), ("rto", "4h".to_string())];
    let mut book = Book::new(system.path(), "quarterly", &vars);
    let report = book.green(healthy);
    let message = report["checks"]["Restore drill within the RTO"]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("within the RTO of 4h"), "{message}");
    // Any real drill takes longer than a microsecond: over the RTO is critical.
    book.mutant(
        &[("rto", "1us".to_string())],
        healthy,
        "Restore drill within the RTO",
        "critical",
    );
    book.done();
    let (code, report) = run_book(
        system.path(),
        "quarterly",
        &[("backup_set", "db".to_string()), ("rto", "1us".to_string())],
        healthy,
    );
    assert_eq!(code, 2);
    let message = report["checks"]["Restore drill within the RTO"]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("restore test passed")
            && message.contains("over the recovery time objective of 1us"),
        "{message}"
    );
    // A set whose data is gone has no backup to drill: critical too, not a false ok.
    let (_, report) = run_book(
        system.path(),
        "quarterly",
        &[("backup_set", "gone".to_string())],
        healthy,
    );
    assert_eq!(
        severity(&report, "Restore drill within the RTO"),
        "critical"
    );
}

#[test]
fn maintenance_window_backs_up_flags_and_verifies() {
    let system = System::new();
    let d = system.path();
    let flag = d.join("maintenance.flag");
    let vars = [
        ("api", system.api.clone()),
        ("backup_set", "db".to_string()),
        ("flag_on", format!("touch {}", flag.display())),
        ("flag_off", format!("rm {}", flag.display())),
        ("work", format!("test -e {}", flag.display())),
    ];
    let mut book = Book::new(d, "maintenance-window", &vars);
    book.green(healthy);
    assert!(!flag.exists(), "the flag is off after the window");
    book.mutant(&[], full_disk, "Disk has room", "critical");
    book.mutant(
        &[("backup_set", "gone".to_string())],
        healthy,
        "Back up before",
        "critical",
    );
    book.mutant(
        &[("flag_on", FAILS.to_string())],
        healthy,
        "Maintenance flag on",
        "critical",
    );
    // The work fails: the flag is taken off again by the undo.
    book.mutant(
        &[("work", FAILS.to_string())],
        healthy,
        "Maintenance work",
        "critical",
    );
    assert!(!flag.exists(), "the undo took the flag off");
    book.mutant(
        &[("flag_off", FAILS.to_string())],
        healthy,
        "Maintenance flag off",
        "critical",
    );
    let _ = std::fs::remove_file(&flag);
    let down = format!("http://127.0.0.1:{}", crate::common::server::closed_port());
    book.mutant(&[("api", down)], healthy, "Verify after", "critical");
    book.done();
}

/// The healthy vars of `pre-deploy` (and of `deploy`, which includes it).
fn deploy_vars(system: &System) -> Vec<(&'static str, String)> {
    vec![
        ("api", system.api.clone()),
        ("backup_set", "db".to_string()),
        ("test_command", "true".to_string()),
        ("migration_check", "true".to_string()),
        ("app_dir", ".".to_string()),
    ]
}

/// Each pre-deploy check driven to failure.
fn pre_deploy_mutants(book: &mut Book<'_>, system: &System) {
    book.mutant(
        &[("test_command", FAILS.to_string())],
        healthy,
        "Tests passing",
        "critical",
    );
    book.mutant(
        &[],
        // ENVIRONMENT unset (the harness clears it).
        |ob| ob.args(["--config", "c.yaml"]).readings(10.0, 10.0, 5.0),
        "Environment configured",
        "critical",
    );
    let sick = api(200, system.path().join("c.yaml"));
    book.mutant(&[("api", sick)], healthy, "API healthy", "critical");
    let unready = api(503, system.path().join("never"));
    book.mutant(&[("api", unready)], healthy, "API ready", "critical");
    book.mutant(&[], full_disk, "Disk has room", "critical");
    book.mutant(
        &[],
        |ob| healthy(ob).readings(95.0, 10.0, 5.0),
        "Memory has room",
        "critical",
    );
    book.mutant(
        &[("migration_check", FAILS.to_string())],
        healthy,
        "Migrations apply cleanly",
        "critical",
    );
    book.mutant(
        &[("backup_set", "old".to_string())],
        healthy,
        "Recent backup exists",
        "critical",
    );
}

#[test]
fn pre_deploy_checks_each_item_of_the_checklist() {
    let system = System::new();
    let vars = deploy_vars(&system);
    let mut book = Book::new(system.path(), "pre-deploy", &vars);
    let report = book.green(healthy);
    assert_eq!(severity(&report, "CI green"), "skipped");
    pre_deploy_mutants(&mut book, &system);
    book.done();
    // Without a test command, CI's word is asked for instead.
    let (_, report) = run_book(
        system.path(),
        "pre-deploy",
        &[("api", system.api.clone()), ("backup_set", "db".into())],
        healthy,
    );
    assert_eq!(severity(&report, "Tests passing"), "skipped");
    assert_eq!(severity(&report, "CI green"), "ok");
}

#[test]
fn deploy_runs_each_command_from_its_var_and_verifies() {
    let system = System::new();
    let mut vars = deploy_vars(&system);
    for var in DEPLOY_COMMANDS {
        vars.push((var, "true".to_string()));
    }
    let mut book = Book::new(system.path(), "deploy", &vars);
    book.green(healthy);
    pre_deploy_mutants(&mut book, &system);
    for (var, step) in [
        ("pull", "Pull latest code"),
        ("install", "Install dependencies"),
        ("migrate", "Run migrations"),
        ("test", "Run tests"),
        ("restart", "Restart service"),
    ] {
        book.mutant(&[(var, FAILS.to_string())], healthy, step, "critical");
    }
    // The restart brings up a release that answers 500.
    let restart = format!("touch {}", system.broken_flag.display());
    book.mutant(
        &[("restart", restart)],
        healthy,
        "Verify health",
        "critical",
    );
    book.done();
    // Defaults name no application: without commands every deploy step is skipped.
    let (_, report) = run_book(
        system.path(),
        "deploy",
        &[("api", system.api.clone()), ("backup_set", "db".into())],
        |ob| {
            let _ = std::fs::remove_file(&system.broken_flag);
            healthy(ob)
        },
    );
    for step in ["Pull latest code", "Run migrations", "Restart service"] {
        assert_eq!(severity(&report, step), "skipped", "{step}");
    }
    let shown = Opsbook::new()
        .args(["runbook", "show", "deploy"])
        .run()
        .expect_exit(0);
    assert!(!shown.stdout.to_lowercase().contains("floyo"));
}

/// A tree for `cleanup`: old and new files, a name that is not UTF-8, a symlink out of
/// the directory, a symlinked directory, a fifo, an old directory.
fn cleanup_tree(d: &Path) -> PathBuf {
    let junk = d.join("junk");
    let touch_old = |path: &Path| {
        let status = std::process::Command::new("touch")
            .args(["-h", "-d", "100 days ago"])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    };
    for (name, contents) in [
        ("junk/old.log.gz", "0123456789"),
        ("junk/new.log.gz", "new"),
        ("junk/old.txt", "not matched"),
        ("junk/sub/deep.log.gz", "01234"),
        ("outside/victim.log.gz", "keep me"),
        ("outside/inside/deep.log.gz", "keep me too"),
    ] {
        write(&d.join(name), contents);
        if !name.contains("new") {
            touch_old(&d.join(name));
        }
    }
    let odd = junk.join(std::ffi::OsStr::from_bytes(b"old-\xff.log.gz"));
    std::fs::write(&odd, "abc").unwrap();
    touch_old(&odd);
    std::os::unix::fs::symlink(d.join("outside/victim.log.gz"), junk.join("link.log.gz")).unwrap();
    touch_old(&junk.join("link.log.gz"));
    std::os::unix::fs::symlink(d.join("outside/inside"), junk.join("linked")).unwrap();
    std::fs::create_dir(junk.join("olddir.log.gz")).unwrap();
    touch_old(&junk.join("olddir.log.gz"));
    let status = std::process::Command::new("mkfifo")
        .arg(junk.join("pipe.log.gz"))
        .status()
        .unwrap();
    assert!(status.success());
    touch_old(&junk.join("pipe.log.gz"));
    junk
}

fn cleanup_book(d: &Path, junk: &Path, dry_run: bool) {
    write(
        &d.join("clean.yaml"),
        &format!(
            "steps:\n  - name: clean\n    cleanup: {{ paths: [\"{}\"], older_than: 90d, match: \"*.log.gz\", recursive: true, dry_run: {dry_run} }}\n",
            junk.display()
        ),
    );
}

/// Run the cleanup of `junk` (with `dry_run` or not) in `d`, logging to `d/logs`; the step's
/// message.
fn clean(d: &Path, junk: &Path, dry_run: bool) -> String {
    cleanup_book(d, junk, dry_run);
    let run = Opsbook::new()
        .env("LOG_TO_FILE", "true")
        .env("LOG_DIR", "logs")
        .args(["run", "clean.yaml", "--format", "json"])
        .run_in(d)
        .expect_exit(0);
    run.json()["checks"]["clean"]["message"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn cleanup_removes_only_old_matching_regular_files_and_never_leaves_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let junk = cleanup_tree(d);
    let odd = junk.join(std::ffi::OsStr::from_bytes(b"old-\xff.log.gz"));
    let going = [
        junk.join("old.log.gz"),
        odd.clone(),
        junk.join("sub/deep.log.gz"),
    ];
    let staying = [
        junk.join("new.log.gz"),
        junk.join("old.txt"),
        junk.join("link.log.gz"),
        junk.join("olddir.log.gz"),
        junk.join("pipe.log.gz"),
        d.join("outside/victim.log.gz"),
        d.join("outside/inside/deep.log.gz"),
    ];
    cleanup_book(d, &junk, false);
    // `run --dry-run` lists what would go and removes nothing.
    let plan = Opsbook::new()
        .args(["run", "clean.yaml", "--dry-run"])
        .run_in(d)
        .expect_exit(0);
    assert!(
        plan.stdout.contains(&format!(
            "would remove 3 files (18B) from {}: {}, {}, {}",
            junk.display(),
            junk.join("old-\u{fffd}.log.gz").display(),
            junk.join("old.log.gz").display(),
            junk.join("sub/deep.log.gz").display()
        )),
        "{}",
        plan.stdout
    );
    assert!(
        going
            .iter()
            .chain(&staying)
            .all(|p| p.symlink_metadata().is_ok())
    );
    // A step's own dry_run says the same and removes nothing either.
    let message = clean(d, &junk, true);
    assert!(
        message.starts_with("would remove 3 files (18B)"),
        "{message}"
    );
    assert!(going.iter().all(|p| p.exists()));
    // The real run: count and bytes freed, an audit line, and nothing else touched.
    let message = clean(d, &junk, false);
    assert_eq!(
        message,
        format!("removed 3 files, 18B freed, from {}", junk.display())
    );
    for path in &going {
        assert!(path.symlink_metadata().is_err(), "{path:?} is still there");
    }
    for path in &staying {
        assert!(path.symlink_metadata().is_ok(), "{path:?} was removed");
    }
    let audit = std::fs::read_to_string(d.join("logs/audit.log")).unwrap();
    let entry = audit
        .lines()
        .find(|l| l.contains("\"action\":\"cleanup\""))
        .unwrap_or_else(|| panic!("no cleanup entry:\n{audit}"));
    assert!(entry.contains("removed 3 files, 18B freed"), "{entry}");
}

#[test]
fn cleanup_errors_name_the_directory_or_setting_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(&d.join("a-file"), "not a directory\n");
    write(&d.join("keep/old.log"), "old\n");
    age(&d.join("keep/old.log"), 100);
    let run = |step: &str| {
        write(
            &d.join("clean.yaml"),
            &format!("steps:\n  - name: clean\n    cleanup: {step}\n"),
        );
        let run = Opsbook::new()
            .args(["run", "clean.yaml", "--format", "json"])
            .run_in(d);
        let check = run.json()["checks"]["clean"].clone();
        (
            run.code,
            check["severity"].as_str().unwrap().to_string(),
            check["message"].as_str().unwrap().to_string(),
        )
    };
    let missing = d.join("missing");
    let (code, severity, message) = run(&format!(
        "{{ paths: [\"{}\", \"{}\"], older_than: 30d }}",
        missing.display(),
        d.join("keep").display()
    ));
    assert_eq!((code, severity.as_str()), (Some(2), "critical"));
    assert!(
        message.contains(&format!(
            "cannot read directory {}: No such file or directory",
            missing.display()
        )),
        "{message}"
    );
    // The other directory was still cleaned.
    assert!(message.starts_with("removed 1 file"), "{message}");
    assert!(!d.join("keep/old.log").exists());
    let (_, severity, message) = run(&format!(
        "{{ paths: [\"{}\"], older_than: 30d }}",
        d.join("a-file").display()
    ));
    assert_eq!(severity, "critical");
    assert!(message.contains("Not a directory"), "{message}");
    let (code, severity, message) = run(&format!(
        "{{ paths: [\"{}\"], older_than: 30d, match: \"[\" }}",
        d.display()
    ));
    assert_eq!((code, severity.as_str()), (Some(3), "unknown"));
    assert!(
        message.contains("`match`: \"[\" is not a valid glob"),
        "{message}"
    );
    let (_, severity, message) = run(&format!(
        "{{ paths: [\"{}\"], older_than: 0s }}",
        d.display()
    ));
    assert_eq!(severity, "unknown");
    assert!(
        message.contains("`older_than` must be more than 0s"),
        "{message}"
    );
    assert!(d.join("a-file").exists());
}

#[test]
fn maintain_has_a_quarterly_schedule() {
    let run = Opsbook::new()
        .args(["maintain", "schedule", "--emit", "cron"])
        .run()
        .expect_exit(0);
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("quarterly"))
        .unwrap_or_else(|| panic!("no quarterly schedule:\n{}", run.stdout));
    assert!(line.starts_with("0 5 1 1,4,7,10 * "), "{line}");
}
