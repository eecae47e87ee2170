//! The shipped diagnosis runbooks, each run green against a healthy system and each of its check
//! steps driven to warning or critical by its own broken fixture (`common::library::Book`):
//! real HTTP, TCP and TLS servers, a real PostgreSQL, a Redis-protocol stand-in answered
//! by the real `redis-cli`, log files, and fixed machine readings. Then `incident
//! collect`, which runs the diagnosis runbook of the incident's type.

mod databases;
mod fixtures;
mod services;

use crate::common::library::Book;
use crate::common::{GIB, server};
use fixtures::*;

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
