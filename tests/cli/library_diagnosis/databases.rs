//! The diagnosis runbooks that read a real PostgreSQL: `database-issues` and
//! `slow-responses`.

use super::fixtures::*;
use crate::common::library::Book;
use crate::common::postgres::Postgres;
use crate::common::{Opsbook, server};

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
