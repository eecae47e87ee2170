//! A throwaway PostgreSQL cluster on 127.0.0.1 for one test: Debian's server binaries
//! (`scripts/test` installs the `postgresql` package), initdb into a temporary directory
//! as the `postgres` user, stopped and removed on drop.

use std::path::PathBuf;
use std::process::Command;

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl Postgres {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Start with extra server settings (`["max_connections=6"]`, each passed as `-c`).
    pub fn start_with(settings: &[&str]) -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries in /usr/lib/postgresql (apt install postgresql)")
            .map(|e| e.unwrap().path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().unwrap();
        let owner = |path: &std::path::Path| {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(path)
                .status()
                .unwrap();
            assert!(status.success());
        };
        owner(dir.path());
        let data = dir.path().join("data");
        let as_postgres = |program: &str, args: &[&str]| {
            let out = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bin.join(program))
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{program}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let data_s = data.to_str().unwrap();
        as_postgres(
            "initdb",
            &[
                "-D",
                data_s,
                "--auth=trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            dir.path().display()
        );
        for setting in settings {
            options.push_str(&format!(" -c {setting}"));
        }
        let log = dir.path().join("server.log");
        as_postgres(
            "pg_ctl",
            &[
                "-D",
                data_s,
                "-w",
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "start",
            ],
        );
        Postgres { dir, bin, port }
    }

    /// A connection URL for `db` (as the superuser, trusted on loopback).
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Run SQL in `db`; its unaligned, tuples-only output.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-tA",
                "-d",
                &self.url(db),
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// A `psql` session that stays connected, holding what its SQL left (an open
/// transaction's locks, a query still running), until dropped.
pub struct Client(std::process::Child);

impl Postgres {
    /// Connect to `db` and send `sql` without ending the session: the connection, and
    /// whatever `sql` holds or still runs, stays until the `Client` is dropped.
    pub fn client(&self, db: &str, sql: &str) -> Client {
        use std::io::Write;
        let mut child = Command::new("psql")
            .args(["-X", "-q", "-d", &self.url(db)])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.as_mut().expect("piped stdin");
        stdin.write_all(format!("{sql}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
        Client(child)
    }

    /// Wait until `sql` in `db` answers `want`, paced by the server's own answers; a
    /// client in `held` that ends first fails the test (it would never come true).
    pub fn wait_for(&self, db: &str, sql: &str, want: &str, held: &mut [&mut Client]) {
        // Not a pace (the server's answer is), only a bound on a wait that went wrong.
        let started = std::time::Instant::now();
        loop {
            let got = self.sql(db, sql);
            if got == want {
                return;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(120),
                "{sql:?} still gives {got}, not {want}, after two minutes"
            );
            for client in held.iter_mut() {
                if let Some(status) = client.0.try_wait().unwrap() {
                    panic!(
                        "a client holding a connection ended ({status}) before {sql:?} gave {want}"
                    );
                }
            }
            std::thread::yield_now();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D"])
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}
