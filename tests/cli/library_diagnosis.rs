//! The shipped diagnosis runbooks, each run green against a healthy system and each of its check
//! steps driven to warning or critical by its own broken fixture (`common::library::Book`):
//! real HTTP, TCP and TLS servers, a real PostgreSQL, a Redis-protocol stand-in answered
//! by the real `redis-cli`, log files, and fixed machine readings. Then `incident
//! collect`, which runs the diagnosis runbook of the incident's type.

use crate::common::library::Book;
use crate::common::postgres::Postgres;
use crate::common::redis::Redis;
use crate::common::{GIB, Opsbook, server, tls};
use serde_json::json;
use std::path::Path;

/// The shipped runbooks this file tests; `runbooks::shipped` checks every shipped runbook
/// is tested here or there.
pub const COVERED: &[&str] = &[
    "api-unavailable",
    "cache",
    "certificate-expiry",
    "database-issues",
    "disk-space",
    "high-error-rate",
    "high-memory",
    "queue-backlog",
    "slow-responses",
];

/// The machine as the readings file fixes it: percents used, and the processes running
/// (name, pid, resident bytes); `disks` adds a reading for a path other than `/`.
#[derive(Clone)]
struct Machine {
    memory: f64,
    swap: f64,
    disk: f64,
    cpu: f64,
    disks: Vec<(String, f64)>,
    processes: Vec<(&'static str, u32, u64)>,
}

impl Default for Machine {
    fn default() -> Self {
        Machine {
            memory: 40.0,
            swap: 5.0,
            disk: 10.0,
            cpu: 5.0,
            disks: Vec::new(),
            processes: Vec::new(),
        }
    }
}

impl Machine {
    /// This machine with one reading changed.
    fn but(&self, change: impl FnOnce(&mut Machine)) -> Machine {
        let mut changed = self.clone();
        change(&mut changed);
        changed
    }

    /// `ob` reading this machine (`$OPSBOOK_READINGS`), swap and processes included.
    fn on(&self, ob: Opsbook) -> Opsbook {
        let total = 100 * GIB;
        let left = |used: f64| ((100.0 - used) / 100.0 * total as f64) as u64;
        let mut disks = serde_json::Map::new();
        disks.insert(
            "/".into(),
            json!({"mount": "/", "total": total, "available": left(self.disk)}),
        );
        for (path, used) in &self.disks {
            disks.insert(
                path.clone(),
                json!({"mount": path, "total": total, "available": left(*used)}),
            );
        }
        let processes: Vec<serde_json::Value> = self
            .processes
            .iter()
            .map(|(name, pid, rss)| {
                json!({"pid": pid, "name": name, "cmdline": [format!("/usr/bin/{name}")],
                       "rss": rss, "open_files": 12})
            })
            .collect();
        let readings = json!({
            "memory": {
                "total": total,
                "available": left(self.memory),
                "swap_total": total,
                "swap_used": (self.swap / 100.0 * total as f64) as u64,
            },
            "disks": disks,
            "cpu": {"percent": self.cpu, "count": 4},
            "load": {"one": 0.5, "five": 0.25, "fifteen": 0.125},
            "processes": processes,
        });
        let path = ob.path("readings.json");
        ob.file("readings.json", &readings.to_string())
            .env("OPSBOOK_READINGS", path.display().to_string())
    }
}

/// Log lines in Python logging's shape (`2026-01-10 09:50:00,000 - app - ERROR - text`):
/// for each `(seconds ago, level, text, count)`, `count` lines a second apart going back.
fn log(parts: &[(i64, &str, &str, usize)]) -> String {
    // Zone-less times are read in the machine's zone, so they are written in it.
    let zone = jiff::tz::TimeZone::system();
    let now = jiff::Timestamp::now();
    let mut out = String::new();
    for (ago, level, text, count) in parts {
        for i in 0..*count {
            let at = zone.to_datetime(now - jiff::SignedDuration::from_secs(ago + i as i64));
            out.push_str(&format!(
                "{} - app - {level} - {text}\n",
                at.strftime("%Y-%m-%d %H:%M:%S,000")
            ));
        }
    }
    out
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(path, text).expect("write fixture");
}

/// A directory holding `files` small files.
fn folder(dir: &Path, name: &str, files: usize) {
    std::fs::create_dir_all(dir.join(name)).expect("mkdir");
    for i in 0..files {
        write(dir, &format!("{name}/file-{i}.x12"), "ISA*00*\n");
    }
}

/// A directory whose one (sparse) file is `bytes` long.
fn big(dir: &Path, name: &str, bytes: u64) {
    std::fs::create_dir_all(dir.join(name)).expect("mkdir");
    std::fs::File::create(dir.join(name).join("big.bin"))
        .expect("create")
        .set_len(bytes)
        .expect("set_len");
}

/// A machine reading that breaks one resource step, by the step's name.
type Reading = (&'static str, fn(&mut Machine));

const MEMORY: Reading = ("Memory", |m| m.memory = 95.0);
const CPU: Reading = ("CPU", |m| m.cpu = 99.0);

fn full_disk(machine: &mut Machine) {
    machine.disk = 95.0;
}

/// Each reading, on the calm machine (through `env`), makes its step critical.
fn readings_fail(
    book: &mut Book,
    calm: &Machine,
    readings: &[Reading],
    env: &dyn Fn(Opsbook) -> Opsbook,
) {
    for (step, change) in readings {
        book.mutant(&[], |ob| env(calm.but(change).on(ob)), step, "critical");
    }
}

/// Each `(var, value, step, severity)`: with that one var changed, on the calm machine
/// (through `env`), the step ends with that severity.
fn vars_fail(
    book: &mut Book,
    calm: &Machine,
    env: &dyn Fn(Opsbook) -> Opsbook,
    cases: &[(&str, String, &str, &str)],
) {
    for (var, value, step, want) in cases {
        book.mutant(&[(var, value.clone())], |ob| env(calm.on(ob)), step, want);
    }
}

/// The run as the calm machine sets it up, nothing added.
fn as_is(ob: Opsbook) -> Opsbook {
    ob
}

fn port_of(url: &str) -> String {
    url.rsplit(':').next().expect("a port").to_string()
}

fn text(value: &str) -> String {
    value.to_string()
}

#[test]
fn api_unavailable_reads_health_port_process_logs_database_and_machine() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let api = server::http();
    let calm = Machine {
        processes: vec![("apiserver", 4242, 300 << 20)],
        ..Machine::default()
    };
    let traffic = (900, "INFO", "request handled", 50);
    write(dir, "app.log", &log(&[traffic]));
    write(
        dir,
        "crashed.log",
        &log(&[
            traffic,
            (
                300,
                "WARNING",
                "Killed process 4243 (apiserver): Out of memory",
                1,
            ),
        ]),
    );
    write(
        dir,
        "errors.log",
        &log(&[
            traffic,
            (300, "ERROR", "request failed: upstream closed", 1),
        ]),
    );
    let vars = [
        ("api", api.clone()),
        ("health_path", text("/ok")),
        ("ready_path", text("/ok")),
        ("api_host", text("127.0.0.1")),
        ("api_port", port_of(&api)),
        ("app_process", text("apiserver")),
        ("app_log", text("app.log")),
        ("db_host", text("127.0.0.1")),
        ("db_port", server::tcp("").to_string()),
    ];
    let closed = server::closed_port().to_string();
    let mut book = Book::new(dir, "api-unavailable", &vars);
    book.green(|ob| calm.on(ob));
    vars_fail(
        &mut book,
        &calm,
        &as_is,
        &[
            ("health_path", text("/500"), "Health endpoint", "critical"),
            (
                "ready_path",
                text("/500"),
                "Readiness (dependencies)",
                "critical",
            ),
            (
                "api_port",
                closed.clone(),
                "API port accepts connections",
                "critical",
            ),
            (
                "app_log",
                text("crashed.log"),
                "Crashes in the log (out of memory, killed, traceback)",
                "critical",
            ),
            ("app_log", text("errors.log"), "Recent errors", "critical"),
            (
                "db_port",
                closed,
                "Database accepts connections",
                "critical",
            ),
        ],
    );
    book.mutant(
        &[],
        |ob| Machine::default().on(ob),
        "API process running",
        "critical",
    );
    readings_fail(
        &mut book,
        &calm,
        &[MEMORY, ("Disk", full_disk), CPU],
        &as_is,
    );
    book.done();
}

#[test]
fn high_error_rate_grades_the_share_of_errors_and_reads_what_they_come_from() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let api = server::http();
    // 200 lines in the last hour and 200 five hours ago, then errors among them.
    let recent = (1800, "INFO", "request handled", 200);
    let earlier = (5 * 3600, "INFO", "request handled", 200);
    write(dir, "app.log", &log(&[recent, earlier]));
    // 20 of 220 in the hour: 9 %, critical.
    write(
        dir,
        "burst.log",
        &log(&[recent, earlier, (600, "ERROR", "upstream timed out", 20)]),
    );
    // 10 of 410 in the day, none in the hour: 2.4 %, a warning.
    write(
        dir,
        "earlier.log",
        &log(&[
            recent,
            earlier,
            (4 * 3600, "ERROR", "upstream timed out", 10),
        ]),
    );
    folder(dir, "error", 2);
    folder(dir, "error-full", 150);
    let vars = [
        ("app_log", text("app.log")),
        ("api", api),
        ("health_path", text("/ok")),
        ("ready_path", text("/ok")),
        ("db_host", text("127.0.0.1")),
        ("db_port", server::tcp("").to_string()),
        ("error_dir", text("error")),
    ];
    let calm = Machine::default();
    let mut book = Book::new(dir, "high-error-rate", &vars);
    book.green(|ob| calm.on(ob));
    vars_fail(
        &mut book,
        &calm,
        &as_is,
        &[
            (
                "app_log",
                text("burst.log"),
                "Error rate, last hour",
                "critical",
            ),
            (
                "app_log",
                text("earlier.log"),
                "Error rate, last 24 hours",
                "warning",
            ),
            ("health_path", text("/500"), "API health", "critical"),
            (
                "ready_path",
                text("/500"),
                "Readiness (dependencies)",
                "critical",
            ),
            (
                "db_port",
                server::closed_port().to_string(),
                "Database accepts connections",
                "critical",
            ),
            (
                "error_dir",
                text("error-full"),
                "Failed files in the error directory",
                "critical",
            ),
        ],
    );
    book.done();
}

#[test]
fn high_memory_names_the_largest_process_and_memory_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let traffic = (900, "INFO", "request handled", 50);
    write(dir, "app.log", &log(&[traffic]));
    write(
        dir,
        "oom.log",
        &log(&[
            traffic,
            (600, "ERROR", "MemoryError: cannot allocate 512 MiB", 1),
        ]),
    );
    let calm = Machine {
        processes: vec![("apiserver", 100, 300 << 20), ("apiserver", 101, 500 << 20)],
        ..Machine::default()
    };
    let vars = [
        ("app_process", text("apiserver")),
        ("app_log", text("app.log")),
    ];
    let mut book = Book::new(dir, "high-memory", &vars);
    book.green(|ob| calm.on(ob));
    readings_fail(
        &mut book,
        &calm,
        &[MEMORY, ("Swap", |m| m.swap = 90.0)],
        &as_is,
    );
    vars_fail(
        &mut book,
        &calm,
        &as_is,
        &[(
            "app_log",
            text("oom.log"),
            "Memory errors in the log",
            "critical",
        )],
    );
    book.mutant(
        &[],
        |ob| {
            calm.but(|m| {
                m.processes = vec![("apiserver", 100, 300 << 20), ("apiserver", 102, 3 * GIB)]
            })
            .on(ob)
        },
        "Largest process (resident memory)",
        "critical",
    );
    book.done();
    // The message names the largest process and its reading.
    let report = crate::common::library::run_book(dir, "high-memory", &vars, |ob| {
        calm.but(|m| m.processes = vec![("apiserver", 100, 300 << 20), ("apiserver", 102, 3 * GIB)])
            .on(ob)
    })
    .1;
    assert_eq!(
        report["checks"]["Largest process (resident memory)"]["message"],
        "apiserver: 2 running; pid 102 rss 3G (> crit 2G)",
        "{report:#}"
    );
}

#[test]
fn disk_space_reads_both_filesystems_and_the_folders_that_grow() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let data = data.display().to_string();
    for name in ["logs", "backups", "tmp"] {
        folder(dir, name, 3);
    }
    big(dir, "logs-big", 2 * GIB);
    big(dir, "backups-big", 60 * GIB);
    big(dir, "tmp-big", 2 * GIB);
    let vars = [
        ("data_dir", data.clone()),
        ("log_dir", text("logs")),
        ("backup_dir", text("backups")),
        ("tmp_dir", text("tmp")),
    ];
    let calm = Machine {
        disks: vec![(data.clone(), 10.0)],
        ..Machine::default()
    };
    let mut book = Book::new(dir, "disk-space", &vars);
    book.green(|ob| calm.on(ob));
    readings_fail(&mut book, &calm, &[("Root filesystem", full_disk)], &as_is);
    vars_fail(
        &mut book,
        &calm,
        &as_is,
        &[
            ("log_dir", text("logs-big"), "Log directory size", "warning"),
            (
                "backup_dir",
                text("backups-big"),
                "Backup directory size",
                "warning",
            ),
            ("tmp_dir", text("tmp-big"), "Temporary files", "warning"),
        ],
    );
    book.mutant(
        &[],
        |ob| calm.but(|m| m.disks = vec![(data.clone(), 95.0)]).on(ob),
        "Data filesystem",
        "critical",
    );
    book.done();
}

/// Against a real PostgreSQL allowing 6 connections: clients holding connections, a lock
/// another session waits for, a query that runs on; "too many clients" in its log.
#[test]
fn database_issues_reads_connections_locks_long_queries_and_the_log() {
    let pg = Postgres::start_with(&["max_connections=6"]);
    pg.sql("postgres", "CREATE TABLE orders (id int)");
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let pgdata = dir.join("pgdata");
    std::fs::create_dir_all(&pgdata).expect("mkdir");
    let pgdata = pgdata.display().to_string();
    let stamp = jiff::Timestamp::now()
        .strftime("%Y-%m-%d %H:%M:%S%.3f UTC")
        .to_string();
    write(
        dir,
        "pglog/postgresql-main.log",
        &format!("{stamp} [4242] LOG:  checkpoint starting: time\n"),
    );
    write(
        dir,
        "pglog-full/postgresql-main.log",
        &format!("{stamp} [4243] FATAL:  sorry, too many clients already\n"),
    );
    let vars = [
        ("db_host", text("127.0.0.1")),
        ("db_port", pg.port.to_string()),
        ("db_user", text("postgres")),
        ("db_name", text("postgres")),
        ("data_dir", pgdata.clone()),
        ("db_log", text("pglog/*.log")),
        ("long_query", text("1 second")),
    ];
    let calm = Machine {
        disks: vec![(pgdata.clone(), 10.0)],
        ..Machine::default()
    };
    let mut book = Book::new(dir, "database-issues", &vars);
    book.green(|ob| calm.on(ob));
    vars_fail(
        &mut book,
        &calm,
        &as_is,
        &[
            (
                "db_port",
                server::closed_port().to_string(),
                "Database port open",
                "critical",
            ),
            (
                "db_user",
                text("nobody_here"),
                "Database answers",
                "critical",
            ),
            (
                "db_log",
                text("pglog-full/*.log"),
                "Too many connections in the log",
                "critical",
            ),
        ],
    );
    book.mutant(
        &[],
        |ob| calm.but(|m| m.disks = vec![(pgdata.clone(), 95.0)]).on(ob),
        "Disk under the data directory",
        "critical",
    );
    let clients = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'";
    {
        // Four clients and the step's own: 5 of 6, 83 %, over the 80 % warning.
        let mut held: Vec<_> = (0..4).map(|_| pg.client("postgres", "")).collect();
        let mut refs: Vec<_> = held.iter_mut().collect();
        pg.wait_for("postgres", clients, "5", &mut refs);
        book.mutant(
            &[],
            |ob| calm.on(ob),
            "Connections in use (% of max_connections)",
            "warning",
        );
    }
    {
        let mut holder = pg.client(
            "postgres",
            "BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE;",
        );
        // The lock is held before anyone asks for it, or the reader would simply go first.
        let held = "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND relation = 'orders'::regclass AND granted";
        pg.wait_for("postgres", held, "1", &mut [&mut holder]);
        let waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted";
        let mut blocked = pg.client("postgres", "SELECT count(*) FROM orders;");
        pg.wait_for("postgres", waiting, "1", &mut [&mut holder, &mut blocked]);
        book.mutant(&[], |ob| calm.on(ob), "Lock waits", "warning");
    }
    {
        let mut sleeper = pg.client("postgres", "SELECT pg_sleep(600);");
        // Paced by the server's clock: the query has run for over a second.
        let running = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND now() - query_start > interval '1 second'";
        pg.wait_for("postgres", running, "1", &mut [&mut sleeper]);
        book.mutant(&[], |ob| calm.on(ob), "Long-running queries", "warning");
    }
    book.done();
}

#[test]
fn slow_responses_grades_endpoint_latency_operation_times_and_slow_queries() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let api = server::http();
    let fast = (600, "INFO", "Performance: upload took 120.00ms", 40);
    write(dir, "app.log", &log(&[fast]));
    write(
        dir,
        "slow.log",
        &log(&[
            fast,
            (300, "INFO", "Performance: upload took 2400.00ms", 10),
        ]),
    );
    let vars = [
        ("api", api),
        ("health_path", text("/ok")),
        ("app_log", text("app.log")),
    ];
    // The default slow-query command as shipped: psql finds the server through libpq's
    // own variables.
    let calm = Machine::default();
    let db = |ob: Opsbook| {
        ob.env("PGHOST", "127.0.0.1")
            .env("PGPORT", pg.port.to_string())
            .env("PGUSER", "postgres")
            .env("PGDATABASE", "postgres")
    };
    let mut book = Book::new(dir, "slow-responses", &vars);
    book.green(|ob| db(calm.on(ob)));
    vars_fail(
        &mut book,
        &calm,
        &db,
        &[
            (
                "health_path",
                text("/slow/1500"),
                "API response time",
                "critical",
            ),
            (
                "app_log",
                text("slow.log"),
                "Operation times in the log (p95, mean, max)",
                "critical",
            ),
        ],
    );
    readings_fail(&mut book, &calm, &[CPU, MEMORY], &db);
    {
        let mut sleeper = pg.client("postgres", "SELECT pg_sleep(600);");
        let running = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND now() - query_start > interval '1 second'";
        pg.wait_for("postgres", running, "1", &mut [&mut sleeper]);
        book.mutant(
            &[],
            |ob| db(calm.on(ob)),
            "Slow database queries",
            "warning",
        );
    }
    book.done();
}

#[test]
fn queue_backlog_grades_the_queue_the_processing_rate_and_the_workers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let redis = |length: u64| {
        Redis {
            lists: vec![("jobs".to_string(), length)],
            ..Redis::default()
        }
        .start()
    };
    let llen = |port: u16| format!("redis-cli -h 127.0.0.1 -p {port} LLEN jobs");
    let queue_api = server::fixed("200 OK", r#"{"queue":{"depth":3}}"#);
    // 30 items processed in the last hour; then 5 (below 10 per hour); then an error.
    let processed = (900, "INFO", "Processed file order-850.x12", 30);
    write(dir, "worker.log", &log(&[processed]));
    write(
        dir,
        "idle.log",
        &log(&[(900, "INFO", "Processed file order-850.x12", 5)]),
    );
    write(
        dir,
        "failing.log",
        &log(&[processed, (300, "ERROR", "E004 delivery error", 1)]),
    );
    folder(dir, "pickup", 3);
    folder(dir, "pickup-full", 150);
    let vars = [
        ("queue_length_command", llen(redis(5))),
        ("read_queue_url", text("yes")),
        ("queue_url", format!("{queue_api}/api/queue")),
        ("pickup_dir", text("pickup")),
        ("worker_log", text("worker.log")),
        ("worker_process", text("qworker")),
    ];
    let calm = Machine {
        processes: vec![("qworker", 300, 200 << 20), ("qworker", 301, 200 << 20)],
        ..Machine::default()
    };
    let mut book = Book::new(dir, "queue-backlog", &vars);
    book.green(|ob| calm.on(ob));
    vars_fail(
        &mut book,
        &calm,
        &as_is,
        &[
            (
                "queue_length_command",
                llen(redis(1500)),
                "Queue length",
                "critical",
            ),
            (
                "queue_url",
                format!("{}/queue", server::http()),
                "Queue depth (HTTP)",
                "warning",
            ),
            (
                "pickup_dir",
                text("pickup-full"),
                "Files waiting in the pickup directory",
                "warning",
            ),
            (
                "worker_log",
                text("idle.log"),
                "Processing rate (items processed in the last hour)",
                "warning",
            ),
            (
                "worker_log",
                text("failing.log"),
                "Worker errors",
                "critical",
            ),
        ],
    );
    book.mutant(
        &[],
        |ob| Machine::default().on(ob),
        "Workers running",
        "critical",
    );
    book.done();
}

#[test]
fn cache_reads_ping_hit_rate_memory_and_evictions_through_redis_cli() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let healthy = Redis {
        hits: 900,
        misses: 100,
        evicted: 0,
        used_memory: 10 << 20,
        lists: Vec::new(),
    };
    let port = |redis: Redis| redis.start().to_string();
    let vars = [
        ("redis_host", text("127.0.0.1")),
        ("redis_port", port(healthy.clone())),
    ];
    let calm = Machine::default();
    let mut book = Book::new(dir, "cache", &vars);
    let report = book.green(|ob| calm.on(ob));
    assert_eq!(
        report["checks"]["Cache hit rate"]["message"], "value 90",
        "{report:#}"
    );
    vars_fail(
        &mut book,
        &calm,
        &as_is,
        &[(
            "redis_port",
            server::closed_port().to_string(),
            "Redis answers PING",
            "critical",
        )],
    );
    book.mutant(
        &[(
            "redis_port",
            port(Redis {
                hits: 40,
                misses: 60,
                ..healthy.clone()
            }),
        )],
        |ob| calm.on(ob),
        "Cache hit rate",
        "critical",
    );
    book.mutant(
        &[(
            "redis_port",
            port(Redis {
                used_memory: 2 * GIB,
                ..healthy.clone()
            }),
        )],
        |ob| calm.on(ob),
        "Cache memory in use",
        "warning",
    );
    book.mutant(
        &[(
            "redis_port",
            port(Redis {
                evicted: 50,
                ..healthy.clone()
            }),
        )],
        |ob| calm.on(ob),
        "Evicted keys",
        "warning",
    );
    book.done();
}

#[test]
fn certificate_expiry_grades_the_weakest_certificate_of_the_chain_and_the_renewal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let today = jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::now())
        .date();
    let days = |n: i64| today + jiff::Span::new().days(n);
    let healthy = tls::server_with_chain(days(-30), days(60), days(400));
    // The server's own certificate has 60 days; its intermediate CA only 5.
    let lapsing = tls::server_with_chain(days(-30), days(60), days(5));
    write(
        dir,
        "letsencrypt.log",
        "renewal run: no renewals were attempted\n",
    );
    write(
        dir,
        "stale.log",
        "renewal run: no renewals were attempted\n",
    );
    std::fs::File::options()
        .write(true)
        .open(dir.join("stale.log"))
        .expect("open")
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(10 * 86_400))
        .expect("set mtime");
    let vars = [
        ("tls_host", text("127.0.0.1")),
        ("tls_port", healthy.port.to_string()),
        ("renewal_log", text("letsencrypt.log")),
    ];
    let calm = Machine::default();
    let mut book = Book::new(dir, "certificate-expiry", &vars);
    book.green(|ob| calm.on(ob));
    vars_fail(
        &mut book,
        &calm,
        &as_is,
        &[
            (
                "tls_port",
                lapsing.port.to_string(),
                "Certificate chain not expiring",
                "critical",
            ),
            (
                "renewal_log",
                text("stale.log"),
                "Renewal ran recently",
                "critical",
            ),
        ],
    );
    book.done();
    let (_, report) = crate::common::library::run_book(
        dir,
        "certificate-expiry",
        &[
            ("tls_host", text("127.0.0.1")),
            ("tls_port", lapsing.port.to_string()),
            ("renewal_log", text("letsencrypt.log")),
        ],
        |ob| calm.on(ob),
    );
    let message = report["checks"]["Certificate chain not expiring"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("CN=opsbook test intermediate"),
        "the intermediate is named: {message}"
    );
}

/// `incident collect` runs the diagnosis runbook of the incident's type with no config
/// naming it (the built-in types), the runbook reading its settings from the environment;
/// a type with no runbook is named with the closest known one, and the bundle goes without.
#[test]
fn incident_collect_runs_the_diagnosis_runbook_of_the_incidents_type() {
    let redis = Redis {
        hits: 900,
        misses: 100,
        used_memory: 10 << 20,
        ..Redis::default()
    }
    .start();
    let ops = Opsbook::new().file(
        "ops.yaml",
        "state_dir: state\nincident: { dir: incidents }\n",
    );
    let dir = ops.dir().to_path_buf();
    let run = |args: &[&str]| {
        let mut all = vec!["--config", "ops.yaml", "incident"];
        all.extend_from_slice(args);
        Machine::default()
            .on(Opsbook::new())
            .env("REDIS_HOST", "127.0.0.1")
            .env("REDIS_PORT", redis.to_string())
            .env("OPSBOOK_NOW", "2026-01-10T10:00:00Z")
            .args(all)
            .run_in(&dir)
    };
    let declare = |kind: &str| {
        run(&[
            "declare",
            "--severity",
            "SEV-2",
            "--title",
            "Slow pages",
            "--type",
            kind,
        ])
        .expect_exit(0)
    };
    declare("cache");
    declare("cahce");
    let collected = run(&["collect", "INC-20260110-1"]).expect_exit(0);
    assert!(
        !collected.stderr.contains("diagnosis"),
        "{}",
        collected.stderr
    );
    // A type with no diagnosis runbook: named, with the closest, and the bundle goes on.
    run(&["collect", "INC-20260110-2"])
        .expect_exit(0)
        .stderr_contains("INC-20260110-2: no diagnosis runbook for incident type \"cahce\"")
        .stderr_contains("did you mean \"cache\"?");
    let folder = dir.join("incidents").join("INC-20260110-1");
    let bundle = std::fs::read_dir(&folder)
        .expect("incident folder")
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("a bundle");
    let out = dir.join("unpacked");
    std::fs::create_dir_all(&out).expect("mkdir");
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&bundle)
        .arg("-C")
        .arg(&out)
        .status()
        .expect("tar");
    assert!(status.success());
    let root = std::fs::read_dir(&out)
        .expect("unpacked")
        .next()
        .expect("the bundle's folder")
        .expect("entry")
        .path();
    let diagnosis: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("diagnosis-cache.json")).expect("the cache diagnosis"),
    )
    .expect("JSON");
    for step in [
        "Redis answers PING",
        "Cache hit rate",
        "Cache memory in use",
        "Evicted keys",
    ] {
        assert_eq!(diagnosis["checks"][step]["severity"], "ok", "{diagnosis:#}");
    }
}
