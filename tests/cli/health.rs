use crate::common::Opsbook;

const CHECKS: [&str; 6] = ["application", "memory", "swap", "disk", "cpu", "load"];

#[test]
fn text_report_on_this_machine_has_one_line_per_check_and_a_summary() {
    let run = Opsbook::new().args(["health"]).run();
    // This machine may be busy: assert the shape, and that the exit code matches the words.
    let code = run.code.expect("exited");
    assert!((0..=3).contains(&code), "exit {code}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), CHECKS.len() + 1, "{}", run.stdout);
    for (line, check) in lines.iter().zip(CHECKS) {
        let mut words = line.split_whitespace();
        let status = words.next().unwrap_or_default();
        assert!(
            ["ok", "warning", "critical", "unknown"].contains(&status),
            "{line}"
        );
        assert_eq!(words.next(), Some(check), "{line}");
    }
    let word = ["healthy", "degraded", "unhealthy", "unhealthy"][code as usize];
    assert!(
        lines[CHECKS.len()].starts_with(&format!("health: {word} — 6 checks")),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains('\x1b'), "no colour when piped");
}

#[test]
fn json_report_on_this_machine_has_seed_000_fields() {
    let run = Opsbook::new().args(["health", "--format", "json"]).run();
    let json = run.json();
    let status = json["status"].as_str().expect("status");
    assert!(["healthy", "degraded", "unhealthy"].contains(&status));
    let expected = match run.code {
        Some(0) => "healthy",
        Some(1) => "degraded",
        _ => "unhealthy",
    };
    assert_eq!(status, expected);
    jiff::Timestamp::from_str_lenient(json["timestamp"].as_str().expect("timestamp"));
    let checks = json["checks"].as_object().expect("checks object");
    let names: Vec<&str> = checks.keys().map(String::as_str).collect();
    assert_eq!(names, CHECKS);
    for (name, check) in checks {
        assert!(check["status"].is_string(), "{name} status");
        assert!(check["message"].is_string(), "{name} message");
    }
    assert_eq!(checks["application"]["status"], "healthy");
    for field in ["percent_used", "total_gb", "available_gb"] {
        assert!(checks["memory"][field].is_f64(), "memory.{field}");
    }
    for field in ["percent_used", "total_gb", "free_gb"] {
        assert!(checks["disk"][field].is_f64(), "disk.{field}");
    }
    assert!(checks["cpu"]["percent_used"].is_f64());
    assert!(checks["cpu"]["cpu_count"].as_u64().is_some_and(|n| n >= 1));
}

trait Lenient {
    fn from_str_lenient(text: &str);
}

impl Lenient for jiff::Timestamp {
    fn from_str_lenient(text: &str) {
        text.parse::<jiff::Timestamp>()
            .unwrap_or_else(|e| panic!("timestamp {text:?} is not RFC 3339: {e}"));
    }
}

#[test]
fn fixed_readings_give_exact_statuses_and_exit_codes() {
    // (memory %, disk %, cpu %) → exit code, JSON status
    let cases = [
        ((45.0, 60.0, 25.0), 0, "healthy"),
        ((75.0, 80.0, 90.0), 0, "healthy"), // exactly at warn: still ok
        ((76.0, 60.0, 25.0), 1, "degraded"),
        ((50.0, 85.0, 25.0), 1, "degraded"),
        ((50.0, 60.0, 92.0), 1, "degraded"),
        ((91.0, 60.0, 25.0), 2, "unhealthy"),
        ((50.0, 95.0, 25.0), 2, "unhealthy"),
        ((50.0, 60.0, 96.0), 2, "unhealthy"),
    ];
    for ((memory, disk, cpu), code, word) in cases {
        let run = Opsbook::new()
            .readings(memory, disk, cpu)
            .args(["health", "--format", "json"])
            .run()
            .expect_exit(code);
        assert_eq!(
            run.json()["status"],
            word,
            "memory {memory} disk {disk} cpu {cpu}"
        );
    }
}

#[test]
fn a_reading_that_fails_is_unknown_exit_3() {
    let run = Opsbook::new()
        .file(
            "readings.json",
            r#"{"memory": {"total": 100, "available": 50}}"#,
        )
        .env("OPSBOOK_READINGS", "readings.json")
        .args(["health"])
        .run()
        .expect_exit(3);
    assert!(run.stdout.contains("unknown   disk"), "{}", run.stdout);
    assert!(run.stdout.contains("no disk reading"), "{}", run.stdout);
}

#[test]
fn text_names_the_level_crossed() {
    Opsbook::new()
        .readings(91.0, 10.0, 1.0)
        .args(["health"])
        .run()
        .expect_exit(2)
        .stdout_contains("critical  memory")
        .stdout_contains("memory 91% used (> crit 90%)")
        .stdout_contains("health: unhealthy — 6 checks: 5 ok, 1 critical");
}

#[test]
fn thresholds_come_from_config() {
    let config = "health:\n  thresholds:\n    memory: { warn: 50 }\n";
    Opsbook::new()
        .readings(60.0, 10.0, 1.0)
        .file("ops.yaml", config)
        .args(["health", "--config", "ops.yaml"])
        .run()
        .expect_exit(1)
        .stdout_contains("(> warn 50%)");
}

#[test]
fn each_configured_disk_is_its_own_check() {
    let run = Opsbook::new()
        .readings(10.0, 10.0, 1.0)
        .file("ops.yaml", "health:\n  disks: [/, /srv/data]\n")
        .args(["--config", "ops.yaml", "health", "--format", "json"])
        .run()
        .expect_exit(0);
    let json = run.json();
    assert_eq!(json["checks"]["disk"]["path"], "/");
    assert_eq!(json["checks"]["disk:/srv/data"]["path"], "/srv/data");
}

#[test]
fn a_missing_disk_path_on_the_real_machine_is_unknown() {
    // The real machine's other readings depend on its load (a busy CI box may be
    // critical), so only the disk check's own status is asserted, and that it is not ok.
    let run = Opsbook::new()
        .file("ops.yaml", "health:\n  disks: [/no/such/path]\n")
        .args(["health", "--config", "ops.yaml", "--format", "json"])
        .run();
    assert!(matches!(run.code, Some(2 | 3)), "{:?}", run.code);
    let report = run.json();
    let disk = &report["checks"]["disk"];
    assert_eq!(disk["severity"], "unknown", "{report}");
    assert!(
        disk["message"]
            .as_str()
            .unwrap()
            .starts_with("cannot stat /no/such/path"),
        "{report}"
    );
}

#[test]
fn quiet_prints_nothing_but_keeps_the_exit_code() {
    let run = Opsbook::new()
        .readings(91.0, 10.0, 1.0)
        .args(["health", "-q"])
        .run()
        .expect_exit(2);
    assert_eq!(run.stdout, "");
}

#[test]
fn global_options_go_before_or_after_the_subcommand() {
    Opsbook::new()
        .readings(10.0, 10.0, 1.0)
        .args(["--format", "json", "health"])
        .run()
        .expect_exit(0)
        .stdout_contains("\"status\": \"healthy\"");
}

#[test]
fn prometheus_format_for_the_textfile_collector() {
    let run = Opsbook::new()
        .readings(80.0, 10.0, 1.0)
        .args(["health", "--format", "prometheus"])
        .run()
        .expect_exit(1);
    assert!(
        run.stdout.contains("# TYPE opsbook_check_status gauge\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("opsbook_check_status{check=\"memory\",kind=\"memory\"} 1\n")
    );
    assert!(
        run.stdout
            .contains("opsbook_used_percent{check=\"memory\",kind=\"memory\"} 80\n")
    );
    assert!(run.stdout.contains("opsbook_status 1\n"));
}

#[test]
fn nagios_format_is_one_line_with_perfdata() {
    let run = Opsbook::new()
        .readings(91.0, 10.0, 1.0)
        .args(["health", "--format", "nagios"])
        .run()
        .expect_exit(2);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    assert!(
        run.stdout
            .starts_with("OPSBOOK HEALTH CRITICAL - memory: memory 91% used (> crit 90%)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(" | 'memory'=91%;;;0;100 "),
        "{}",
        run.stdout
    );
}

#[test]
fn junit_format_has_one_testcase_per_check() {
    let run = Opsbook::new()
        .readings(91.0, 10.0, 1.0)
        .args(["health", "--format", "junit"])
        .run()
        .expect_exit(2);
    assert!(run.stdout.starts_with("<?xml"), "{}", run.stdout);
    assert_eq!(
        run.stdout.matches("<testcase ").count(),
        6,
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("type=\"critical\""), "{}", run.stdout);
}

#[test]
fn bad_test_seams_are_usage_errors_naming_the_value() {
    Opsbook::new()
        .file("readings.json", "{\"memory\": 3}")
        .env("OPSBOOK_READINGS", "readings.json")
        .args(["health"])
        .run()
        .expect_exit(64)
        .stderr_contains("readings file readings.json is invalid");
    Opsbook::new()
        .env("OPSBOOK_NOW", "yesterday")
        .args(["health"])
        .run()
        .expect_exit(64)
        .stderr_contains("OPSBOOK_NOW=\"yesterday\" is not an RFC 3339 time");
}

/// CPU time (user + system) the process has used, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The fields after the command name, which may itself hold spaces and parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a stat line")
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks as f64 / per_second as f64
}

/// Kills the server if the test fails, so a hung one does not outlive it.
struct KillOnPanic(u32);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // SAFETY: kill(2) on our own child's pid has no memory effects.
            unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
        }
    }
}

/// 400 sockets that never finish their headers, against a server limited to 64 file
/// descriptors: `/health` still answers, every idle socket is closed (to make room, or
/// when its header time is up), and the server does not spin meanwhile.
#[test]
fn serve_survives_idle_connections_at_a_low_descriptor_limit() {
    use crate::common::server;
    use std::io::{Read, Write};
    let mut running = Opsbook::new()
        .readings(10.0, 10.0, 1.0)
        .args(["health", "--serve", "127.0.0.1:0"])
        .spawn();
    let line = running.stderr_line("serving http://");
    let address = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("address in the banner")
        .to_string();
    let pid = running.child.id();
    let _guard = KillOnPanic(pid);
    let limited = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--nofile=64:64"])
        .status()
        .expect("prlimit (util-linux)");
    assert!(limited.success());
    assert_eq!(server::get(&address, "/health").0, 200);

    let cpu_before = cpu_seconds(pid);
    let started = std::time::Instant::now();
    let idle: Vec<std::net::TcpStream> = (0..400)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&address).expect("connect");
            stream
                .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
                .expect("half a request");
            stream
        })
        .collect();
    let (code, body) = server::get(&address, "/health");
    assert_eq!(code, 200, "{body}");
    // Every idle socket ends: closed to make room, or when its header time is up.
    for mut stream in idle {
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        let mut buf = [0u8; 1024];
        match stream.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("an idle socket got {n} bytes"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
    }
    let cpu = cpu_seconds(pid) - cpu_before;
    let wall = started.elapsed().as_secs_f64();
    assert!(
        cpu < 2.0 && cpu < 0.25 * wall,
        "{cpu:.2} s of CPU in {wall:.2} s: the server spun"
    );
    assert_eq!(server::get(&address, "/health").0, 200);
    running.signal(libc::SIGTERM);
    running
        .finish(std::time::Duration::from_secs(30))
        .expect_exit(0);
}

/// A `when:` nested or chained beyond reason is a located config error (78), never a
/// stack overflow, in a config's endpoints and in a runbook alike.
#[test]
fn a_hostile_when_condition_is_a_located_error_not_a_crash() {
    let nested = format!("{}env{}", "(".repeat(100_000), ")".repeat(100_000));
    let negated = format!("{}env", "!".repeat(100_000));
    let deep = format!("{}env{}", "(".repeat(40), ")".repeat(40));
    for (condition, message) in [
        (
            nested,
            "the condition has 200001 parts, more than the 512 allowed",
        ),
        (
            negated,
            "the condition has 100001 parts, more than the 512 allowed",
        ),
        (deep, "the condition nests deeper than 32 levels"),
    ] {
        Opsbook::new()
            .file(
                "ops.yaml",
                &format!(
                    "health:\n  endpoints:\n    - name: api\n      when: \"{condition}\"\n      tcp: {{ host: 127.0.0.1, port: 1 }}\n"
                ),
            )
            .args(["--config", "ops.yaml", "health"])
            .run()
            .expect_exit(78)
            .stderr_contains("ops.yaml:4:")
            .stderr_contains(message);
        Opsbook::new()
            .file(
                "rb.yaml",
                &format!(
                    "vars: {{ env: production }}\nsteps:\n  - name: a\n    when: \"{condition}\"\n    command: {{ run: \"true\" }}\n"
                ),
            )
            .args(["runbook", "validate", "rb.yaml"])
            .run()
            .expect_exit(78)
            .stderr_contains("rb.yaml:4:")
            .stderr_contains(message);
    }
}
