//! The shipped verification runbooks, each run green against a healthy system and each of its check
//! steps driven to warning or critical by its own broken fixture (`common::library::Book`).

use crate::common::library::Book;
use crate::common::{Opsbook, noise, redis, server, stored, tls};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The shipped runbooks this file tests; `runbooks::shipped` checks every shipped runbook
/// is tested here or there.
pub const COVERED: &[&str] = &[
    "startup",
    "post-shutdown",
    "certificate-renewal",
    "full-restore",
    "security",
    "cache-check",
];

/// Write `text` to `dir/rel`, making its parent directories.
fn write(dir: &Path, rel: &str, text: &[u8]) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(&path, text).expect("write");
}

fn chmod(dir: &Path, rel: &str, mode: u32) {
    std::fs::set_permissions(dir.join(rel), std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A log line stamped now (UTC, ISO 8601), as the application writes it.
fn line_now(level: &str, message: &str) -> String {
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ");
    format!("{now} {level} {message}\n")
}

/// A running program named `name` (a copy of `sleep`, so `process: { name }` finds it by
/// the file name of its first argument), killed when dropped.
struct App(std::process::Child);

impl App {
    fn start(dir: &Path, name: &str) -> App {
        let program = dir.join(name);
        std::fs::copy("/bin/sleep", &program).expect("copy sleep");
        let child = std::process::Command::new(&program)
            .arg("600")
            .spawn()
            .expect("start the stand-in program");
        App(child)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A name no running program has: unique to this test process.
fn nobody_runs(what: &str) -> String {
    format!("gone-{what}-{}", std::process::id())
}

fn port_of(url: &str) -> String {
    url.rsplit(':').next().expect("a port").to_string()
}

/// Today plus `days` (negative: before), as a date for a test certificate.
fn day(days: i64) -> jiff::civil::Date {
    jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24 * days))
        .expect("a time")
        .strftime("%Y-%m-%d")
        .to_string()
        .parse()
        .expect("a date")
}

#[test]
fn startup_is_green_on_a_started_system_and_each_check_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let name = format!("appd-{}", std::process::id() % 100_000);
    let _app = App::start(d, &name);
    let api = server::http();
    std::fs::create_dir_all(d.join("watched")).unwrap();
    write(
        d,
        "logs/app.log",
        line_now("INFO", "started, watching watched/").as_bytes(),
    );
    write(
        d,
        "logs/bad.log",
        line_now("ERROR", "cannot open the pattern file").as_bytes(),
    );
    // A log left from a run long ago: present, but nothing was written since.
    write(d, "logs/stale.log", b"2025-01-01 10:00:00 INFO started\n");
    std::fs::File::options()
        .append(true)
        .open(d.join("logs/stale.log"))
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(86_400))
        .unwrap();
    let mut book = Book::new(
        d,
        "startup",
        &[
            ("app_process", name.clone()),
            ("api", api.clone()),
            ("health_path", "/ok".into()),
            ("readiness_path", "/ok".into()),
            ("api_host", "127.0.0.1".into()),
            ("api_port", port_of(&api)),
            ("watched_dir", "watched".into()),
            ("app_log", "logs/app.log".into()),
        ],
    );
    book.green(|ob| ob);
    book.mutant(
        &[("app_process", nobody_runs("startup"))],
        |ob| ob,
        "Process running",
        "critical",
    )
    .mutant(
        &[("api_port", server::closed_port().to_string())],
        |ob| ob,
        "Port accepts connections",
        "critical",
    )
    .mutant(
        &[("health_path", "/500".into())],
        |ob| ob,
        "Health endpoint",
        "critical",
    )
    .mutant(
        &[("readiness_path", "/500".into())],
        |ob| ob,
        "Ready (dependencies)",
        "critical",
    )
    .mutant(
        &[("watched_dir", "not-there".into())],
        |ob| ob,
        "Watched folder present",
        "critical",
    )
    // A directory that exists but where nobody, not even root, can create a file.
    .mutant(
        &[("watched_dir", "/proc/1".into())],
        |ob| ob,
        "Watched folder writable",
        "critical",
    )
    .mutant(
        &[("app_log", "logs/none.log".into())],
        |ob| ob,
        "Log file written",
        "critical",
    )
    .mutant(
        &[("app_log", "logs/stale.log".into())],
        |ob| ob,
        "Log file written",
        "critical",
    )
    .mutant(
        &[("app_log", "logs/bad.log".into())],
        |ob| ob,
        "No errors since the start",
        "critical",
    );
    book.done();
}

#[test]
fn post_shutdown_is_green_on_a_stopped_system_and_each_leftover_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let name = format!("left-{}", std::process::id() % 100_000);
    let _left = App::start(d, &name);
    let listening = server::tcp("hello\n");
    std::fs::create_dir_all(d.join("pickup")).unwrap();
    write(d, "pickup-full/850_0042.x12", b"ISA*00*~\n");
    write(
        d,
        "logs/app.log",
        line_now("INFO", "shutdown complete").as_bytes(),
    );
    write(
        d,
        "logs/bad.log",
        line_now("ERROR", "interrupted while processing 850_0042.x12").as_bytes(),
    );
    write(d, "run/stale.pid", b"4242\n");
    write(d, "run/stale.lock", b"");
    let mut book = Book::new(
        d,
        "post-shutdown",
        &[
            ("app_process", nobody_runs("shutdown")),
            ("api_port", server::closed_port().to_string()),
            ("pickup_dir", "pickup".into()),
            ("app_log", "logs/app.log".into()),
            ("pid_file", "run/app.pid".into()),
            ("lock_file", "run/app.lock".into()),
        ],
    );
    book.green(|ob| ob);
    book.mutant(
        &[("app_process", name.clone())],
        |ob| ob,
        "No process left",
        "critical",
    )
    .mutant(
        &[("api_port", listening.to_string())],
        |ob| ob,
        "Port closed",
        "critical",
    )
    .mutant(
        &[("pickup_dir", "pickup-full".into())],
        |ob| ob,
        "Pickup folder drained",
        "critical",
    )
    .mutant(
        &[("app_log", "logs/bad.log".into())],
        |ob| ob,
        "No error at shutdown",
        "critical",
    )
    .mutant(
        &[("pid_file", "run/stale.pid".into())],
        |ob| ob,
        "No pid file left",
        "critical",
    )
    .mutant(
        &[("lock_file", "run/stale.lock".into())],
        |ob| ob,
        "No lock file left",
        "critical",
    );
    book.done();
}

#[test]
fn certificate_renewal_is_green_with_a_fresh_certificate_and_fails_on_a_stale_one() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = tls::server(day(-1), day(89));
    let soon = tls::server(day(-70), day(20));
    let stale = tls::server(day(-87), day(3));
    let mut book = Book::new(
        dir.path(),
        "certificate-renewal",
        &[
            ("renew", "true".into()),
            ("reload", "true".into()),
            ("tls_host", "127.0.0.1".into()),
            ("tls_port", fresh.port.to_string()),
        ],
    );
    book.green(|ob| ob);
    book.mutant(
        &[("renew", "false".into())],
        |ob| ob,
        "Renew certificate",
        "critical",
    )
    .mutant(
        &[("reload", "false".into())],
        |ob| ob,
        "Reload server",
        "critical",
    )
    // The renewal did not take: the server still serves the old certificate.
    .mutant(
        &[("tls_port", soon.port.to_string())],
        |ob| ob,
        "Served certificate is fresh",
        "warning",
    )
    .mutant(
        &[("tls_port", stale.port.to_string())],
        |ob| ob,
        "Served certificate is fresh",
        "critical",
    );
    book.done();
}

#[test]
fn security_is_green_on_a_tidy_system_and_each_finding_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tls = tls::server(day(-1), day(200));
    let stale = tls::server(day(-87), day(3));
    let listening = server::tcp("hello\n");
    write(
        d,
        "config/production.yaml",
        b"database:\n  password: \"${DB_PASSWORD}\"\n  url: \"postgres://app:${DB_PASSWORD}@db/app\"\n  pool: 10\n",
    );
    chmod(d, "config/production.yaml", 0o640);
    write(d, "config/loose.yaml", b"database:\n  pool: 10\n");
    write(
        d,
        "leaky-url/app.yaml",
        b"database:\n  url: postgres://app:hunter2@db.internal/app\n",
    );
    chmod(d, "config/loose.yaml", 0o644);
    write(d, ".env", b"DB_PASSWORD=s3cret-value\n");
    chmod(d, ".env", 0o600);
    write(d, "loose.env", b"DB_PASSWORD=s3cret-value\n");
    chmod(d, "loose.env", 0o644);
    write(
        d,
        "leaky/app.yaml",
        b"payments:\n  api_key: sk_live_abc123\n",
    );
    let mut quiet = line_now("INFO", "sshd[101]: Accepted publickey for deploy");
    quiet.push_str(&line_now(
        "INFO",
        "sshd[102]: Failed password for root from 10.0.0.9",
    ));
    write(d, "logs/auth.log", quiet.as_bytes());
    let attack: String = (0..60)
        .map(|i| {
            line_now(
                "INFO",
                &format!("sshd[{i}]: Failed password for root from 10.0.0.9"),
            )
        })
        .collect();
    write(d, "logs/auth-attack.log", attack.as_bytes());
    let mut book = Book::new(
        d,
        "security",
        &[
            ("config_file", "config/production.yaml".into()),
            ("env_file", ".env".into()),
            ("config_glob", "config/*.yaml".into()),
            ("tls_host", "127.0.0.1".into()),
            ("tls_port", tls.port.to_string()),
            ("closed_ports", server::closed_port().to_string()),
            ("login_log", "logs/auth.log".into()),
        ],
    );
    book.green(|ob| ob);
    book.mutant(
        &[("config_file", "config/loose.yaml".into())],
        |ob| ob,
        "Config file mode",
        "critical",
    )
    .mutant(
        &[("env_file", "loose.env".into())],
        |ob| ob,
        "Secrets file mode",
        "critical",
    )
    .mutant(
        &[("tls_port", stale.port.to_string())],
        |ob| ob,
        "Certificate not expiring",
        "critical",
    )
    .mutant(
        &[("config_glob", "leaky/*.yaml".into())],
        |ob| ob,
        "No plain secrets in config files",
        "critical",
    )
    // A password in a URL's user-info is a plain secret too.
    .mutant(
        &[("config_glob", "leaky-url/*.yaml".into())],
        |ob| ob,
        "No plain secrets in config files",
        "critical",
    )
    .mutant(
        &[("closed_ports", format!("23 {listening}"))],
        |ob| ob,
        "Ports that must stay closed",
        "critical",
    )
    .mutant(
        &[("login_log", "logs/auth-attack.log".into())],
        |ob| ob,
        "Failed logins, last 24 hours",
        "critical",
    );
    book.done();
}

#[test]
fn cache_check_is_green_on_a_warm_cache_and_each_check_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cli = |port: u16| format!("redis-cli -h 127.0.0.1 -p {port}");
    let healthy = redis::server(50_000_000, 900, 100);
    let full = redis::server(3_000_000_000, 900, 100);
    let cold = redis::server(50_000_000, 30, 70);
    let lukewarm = redis::server(50_000_000, 70, 30);
    let mut book = Book::new(
        dir.path(),
        "cache-check",
        &[
            ("cache_host", "127.0.0.1".into()),
            ("cache_port", healthy.to_string()),
            ("redis_cli", cli(healthy)),
        ],
    );
    book.green(|ob| ob);
    book.mutant(
        &[("cache_port", server::closed_port().to_string())],
        |ob| ob,
        "Cache answers PING",
        "critical",
    )
    .mutant(
        &[("redis_cli", cli(full))],
        |ob| ob,
        "Cache memory used",
        "critical",
    )
    .mutant(
        &[("redis_cli", cli(lukewarm))],
        |ob| ob,
        "Cache hit rate",
        "warning",
    )
    .mutant(
        &[("redis_cli", cli(cold))],
        |ob| ob,
        "Cache hit rate",
        "critical",
    );
    book.done();
}

/// The fixture system for `full-restore`: a SQLite database (backed up as a `.dump`), an
/// uploads folder and a config folder, each its own backup set, plus a set whose backup
/// gets damaged.
const RESTORE_CONFIG: &str = "state_dir: state
backup:
  destination: dest
  sets:
    db:
      command:
        run: \"sqlite3 app.db .dump\"
        restore: \"sh -c 'rm -f restored/app.db && exec sqlite3 restored/app.db'\"
        file: app.sql
    files:
      paths: [uploads]
    config:
      paths: [conf]
    damaged:
      paths: [damaged]
      compress: gzip
";

fn sqlite(db: &Path, sql: &str) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 (apt install sqlite3)");
    assert!(
        out.status.success(),
        "sqlite3 {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn full_restore_restores_real_backups_byte_exact_and_each_step_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "ops.yaml", RESTORE_CONFIG.as_bytes());
    sqlite(
        &d.join("app.db"),
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT); \
         INSERT INTO items (name) VALUES ('bolt'), ('nut'), ('it''s quoted');",
    );
    write(d, "uploads/scan.pdf", &noise(200_000));
    write(d, "uploads/deep/note.txt", b"first line\nsecond line\n");
    write(d, "conf/app.yaml", b"port: 8000\nworkers: 4\n");
    write(d, "damaged/blob.bin", &noise(100_000));
    Opsbook::new()
        .args(["--config", "ops.yaml", "backup", "create"])
        .args(["db", "files", "config", "damaged"])
        .run_in(d)
        .expect_exit(0);
    // One flipped byte in the damaged set's archive (in incompressible data).
    let damaged = std::fs::read_dir(d.join("dest"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("damaged-")
        })
        .expect("the damaged set's backup")
        .join("data.tar.gz");
    let mut bytes = std::fs::read(&damaged).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&damaged, bytes).unwrap();
    std::fs::create_dir_all(d.join("restored")).unwrap();
    let api = server::fixed("200 OK", r#"{"status":"healthy"}"#);
    let broken = server::fixed("500 Internal Server Error", "{}");
    let config = |ob: Opsbook| ob.args(["--config", "ops.yaml"]);
    // Paths are stored as they were backed up (absolute), and restored under `to`.
    let files = format!("restored/files/{}", stored(d, ""));
    let config_dir = format!("restored/config/{}", stored(d, ""));
    let mut book = Book::new(
        d,
        "full-restore",
        &[
            ("db_set", "db".into()),
            ("db_to", "restored".into()),
            ("files_set", "files".into()),
            ("files_to", "restored/files".into()),
            ("config_set", "config".into()),
            ("config_to", "restored/config".into()),
            ("restart", "true".into()),
            (
                "db_check",
                "sqlite3 restored/app.db 'SELECT count(*) FROM items'".into(),
            ),
            ("files_dir", format!("{files}/uploads")),
            ("config_file", format!("{config_dir}/conf/app.yaml")),
            ("api", api),
        ],
    );
    book.green(config);
    // Byte for byte what was backed up: the files, the config, the database's rows.
    for rel in ["uploads/scan.pdf", "uploads/deep/note.txt"] {
        let restored = std::fs::read(d.join(&files).join(rel)).unwrap();
        assert!(
            restored == std::fs::read(d.join(rel)).unwrap(),
            "{rel} differs"
        );
    }
    assert_eq!(
        std::fs::read(d.join(&config_dir).join("conf/app.yaml")).unwrap(),
        std::fs::read(d.join("conf/app.yaml")).unwrap()
    );
    assert_eq!(
        sqlite(&d.join("restored/app.db"), ".dump"),
        sqlite(&d.join("app.db"), ".dump")
    );
    book.mutant(
        &[("db_set", "damaged".into())],
        config,
        "Restore database",
        "critical",
    )
    .mutant(
        &[("files_set", "damaged".into())],
        config,
        "Restore files",
        "critical",
    )
    .mutant(
        &[("config_set", "damaged".into())],
        config,
        "Restore configuration",
        "critical",
    )
    .mutant(
        &[("restart", "false".into())],
        config,
        "Restart services",
        "critical",
    )
    .mutant(
        &[(
            "db_check",
            "sqlite3 restored/app.db 'SELECT count(*) FROM orders'".into(),
        )],
        config,
        "Database answers",
        "critical",
    )
    .mutant(
        &[("files_dir", "restored/files/none".into())],
        config,
        "Files restored",
        "critical",
    )
    .mutant(
        &[("config_file", "restored/config/conf/none.yaml".into())],
        config,
        "Configuration restored",
        "critical",
    )
    .mutant(
        &[("api", broken)],
        config,
        "Health after restore",
        "critical",
    );
    book.done();
}

/// Where `ss` is missing, the port steps of `security` and `post-shutdown` fail rather than
/// count 0 listening sockets and pass.
#[test]
fn port_steps_fail_without_ss_instead_of_reading_zero() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin");
    for tool in ["sh", "wc"] {
        let real = ["/bin", "/usr/bin"]
            .iter()
            .map(|d| std::path::Path::new(d).join(tool))
            .find(|p| p.exists())
            .expect("sh and wc");
        std::os::unix::fs::symlink(real, bin.join(tool)).expect("link");
    }
    for (book, step) in [
        ("security", "Ports that must stay closed"),
        ("post-shutdown", "Port closed"),
    ] {
        let run = crate::common::Opsbook::new()
            .env("PATH", bin.display().to_string())
            .args(["run", book, "--only", step, "--format", "json"])
            .run_in(dir.path())
            .expect_exit(2);
        let json = run.json();
        assert_eq!(json["checks"][step]["severity"], "critical", "{json}");
        assert!(
            json["checks"][step]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("ss (iproute2) not found"),
            "{json}"
        );
    }
}
