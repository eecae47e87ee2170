use crate::common::Opsbook;

/// Every bad config exits 78 with `file:line:col: message`, before anything runs or is written.
fn rejects(config: &str, expected: &str) {
    let run = Opsbook::new()
        .file("ops.yaml", config)
        .env("LOG_TO_FILE", "true")
        .env("LOG_DIR", "logs")
        .args(["--config", "ops.yaml", "health"])
        .run()
        .expect_exit(78)
        .stderr_contains(expected);
    assert_eq!(run.stdout, "", "nothing may run");
}

#[test]
fn syntax_error() {
    rejects(
        "health:\n  disks: [/,\n",
        "ops.yaml:2:10: unclosed bracket '['",
    );
}

#[test]
fn unknown_key_names_the_key_and_the_choices() {
    rejects(
        "health:\n  thresholds:\n    memroy: { warn: 1 }\n",
        "ops.yaml:3:5: unknown field `memroy`, expected one of",
    );
}

#[test]
fn wrong_type() {
    rejects("logging:\n  to_file: sometimes\n", "ops.yaml:2:12: ");
}

#[test]
fn unset_variable_is_named() {
    rejects(
        "state_dir: \"${OPSBOOK_TEST_UNSET_VAR}\"\n",
        "ops.yaml:1:13: `state_dir`: environment variable OPSBOOK_TEST_UNSET_VAR is not set",
    );
}

#[test]
fn threshold_outside_0_to_100() {
    rejects(
        "health:\n  thresholds:\n    disk: { warn: 80, crit: 120 }\n",
        "ops.yaml:3:29: 120 is outside 0–100 %",
    );
}

#[test]
fn warn_above_crit() {
    rejects(
        "health:\n  thresholds:\n    cpu:\n      warn: 99\n      crit: 95\n",
        "ops.yaml:4:7: warn 99 is above crit 95",
    );
}

#[test]
fn bad_duration() {
    rejects(
        "health:\n  cpu_sample: soon\n",
        "ops.yaml:2:15: \"soon\" is not a duration",
    );
}

#[test]
fn duplicate_key() {
    rejects(
        "logging: {}\nlogging: {}\n",
        "ops.yaml:2:1: duplicate mapping key",
    );
}

#[test]
fn the_error_quotes_the_line_with_a_caret() {
    Opsbook::new()
        .file("ops.yaml", "health:\n  thresholds:\n    memroy: {}\n")
        .args(["--config", "ops.yaml", "health"])
        .run()
        .expect_exit(78)
        .stderr_contains("3 |     memroy: {}\n  |     ^");
}

#[test]
fn nothing_is_written_for_a_bad_config() {
    let test = Opsbook::new()
        .file("ops.yaml", "nope: 1\n")
        .env("LOG_TO_FILE", "1")
        .env("LOG_DIR", "logs")
        .args(["--config", "ops.yaml", "health"]);
    let logs = test.path("logs");
    let _run = test.run().expect_exit(78);
    assert!(!logs.exists());
}

#[test]
fn a_missing_config_file_is_a_config_error() {
    Opsbook::new()
        .args(["--config", "absent.yaml", "health"])
        .run()
        .expect_exit(78)
        .stderr_contains("absent.yaml: cannot read");
}

#[test]
fn environment_file_is_layered_under_config_flag() {
    let run = Opsbook::new()
        .file(
            "config/staging.yaml",
            "health:\n  thresholds:\n    memory: { warn: 40, crit: 60 }\n",
        )
        .file(
            "ops.yaml",
            "health:\n  thresholds:\n    memory: { crit: 80 }\n",
        )
        .env("ENVIRONMENT", "staging")
        .args(["--config", "ops.yaml", "config", "show", "--format", "json"])
        .run()
        .expect_exit(0);
    let memory = &run.json()["health"]["thresholds"]["memory"];
    assert_eq!(memory["warn"], 40.0);
    assert_eq!(memory["crit"], 80.0);
}

#[test]
fn a_half_left_out_of_a_file_is_checked_against_its_default() {
    rejects(
        "health:\n  thresholds:\n    memory: { crit: 70 }\n",
        "ops.yaml:3:13: warn 75 (the default) is above crit 70",
    );
}

#[test]
fn env_flag_beats_environment_variable_and_unknown_env_is_a_usage_error() {
    Opsbook::new()
        .env("ENVIRONMENT", "staging")
        .args(["--env", "qa", "health"])
        .run()
        .expect_exit(64)
        .stderr_contains("unknown environment \"qa\"");
}

#[test]
fn show_masks_values_from_the_environment() {
    let canary = "canary-secret-7f3a9";
    let run = Opsbook::new()
        .file("ops.yaml", "state_dir: \"/srv/${OPS_TEST_TOKEN}/state\"\n")
        .env("OPS_TEST_TOKEN", canary)
        .args(["--config", "ops.yaml", "config", "show"])
        .run()
        .expect_exit(0)
        .stdout_contains("state_dir: /srv/***/state");
    assert!(!run.stdout.contains(canary) && !run.stderr.contains(canary));
}

#[test]
fn show_uses_defaults_on_a_bare_machine() {
    Opsbook::new()
        .args(["config", "show"])
        .run()
        .expect_exit(0)
        .stdout_contains("# from: built-in defaults\n")
        .stdout_contains("memory:\n      warn: 75.0\n      crit: 90.0");
}

#[test]
fn validate_reports_every_bad_file() {
    let run = Opsbook::new()
        .file("good.yaml", "logging: { level: INFO }\n")
        .file("bad1.yaml", "health: { nope: 1 }\n")
        .file("bad2.yaml", "logging: { level: LOUD }\n")
        .args(["config", "validate", "good.yaml", "bad1.yaml", "bad2.yaml"])
        .run()
        .expect_exit(78)
        .stdout_contains("ok: good.yaml")
        .stderr_contains("bad1.yaml:1:11: unknown field `nope`")
        .stderr_contains("bad2.yaml:1:19: unknown log level \"LOUD\"");
    assert!(run.stderr.contains("2 of 3 files are invalid"));
}

#[test]
fn shipped_configs_are_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
    for env in ["development", "staging", "production"] {
        Opsbook::new()
            .env("OPSBOOK_CONFIG_DIR", dir)
            .args(["--env", env, "config", "validate"])
            .run()
            .expect_exit(0)
            .stdout_contains(&format!("{env}.yaml"));
    }
}

/// Paths, hosts and ports from the environment print as they are, so an operator can see
/// what was checked; only secrets (by name or by place) print as `***`.
#[test]
fn only_secrets_are_masked_paths_hosts_and_ports_print_plainly() {
    let api = crate::common::server::http();
    let run = Opsbook::new()
        .file(
            "rb.yaml",
            "steps:\n  - { name: api, http: { url: \"${API_URL}/ok\" } }\n  - { name: data, file: { path: \"${DATA_DIR}/missing.db\", exists: true } }\n",
        )
        .env("DATA_DIR", "/srv/x")
        .env("API_URL", &api)
        .args(["run", "rb.yaml", "--format", "json"])
        .run()
        .expect_exit(2);
    let json = run.json();
    assert_eq!(
        json["checks"]["data"]["message"], "/srv/x/missing.db does not exist",
        "{json}"
    );
    assert_eq!(json["checks"]["api"]["url"], format!("{api}/ok"), "{json}");
    assert_eq!(json["checks"]["api"]["status"], "healthy");

    // Secret by the variable's name, by a URL's user-info, by place (a credential header,
    // a token query value, a webhook URL), literal or from the environment.
    let config = "state_dir: \"/srv/${APP_SESSION_SECRET}/state\"\n\
        logging: { dir: \"${LOG_HOME}/logs\" }\n\
        health:\n  endpoints:\n    - name: api\n      http:\n        url: \"https://ops:literal-pw-1@api.test/h?page=2&api_key=literal-key-2\"\n        headers: { Authorization: \"Bearer literal-token-3\", Accept: application/json, X-Api-Key: \"${PLAIN_NAMED}\" }\n\
        incident:\n  webhook: { url: \"https://hooks.example.test/services/literal-hook-4\" }\n\
        backup:\n  destination: \"${REPLICA}\"\n";
    let run = Opsbook::new()
        .file("ops.yaml", config)
        .env("APP_SESSION_SECRET", "canary-session-0")
        .env("LOG_HOME", "/var/tmp/opsbook-home")
        .env("PLAIN_NAMED", "canary-plain-named-5")
        .env("REPLICA", "s3://dumper:canary-url-pw-6@backups/x")
        .args(["--config", "ops.yaml", "config", "show", "--format", "json"])
        .run()
        .expect_exit(0);
    let json = run.json();
    for secret in [
        "canary-session-0",
        "literal-pw-1",
        "literal-key-2",
        "literal-token-3",
        "literal-hook-4",
        "canary-plain-named-5",
        "canary-url-pw-6",
    ] {
        assert!(
            !run.stdout.contains(secret),
            "{secret} leaks:\n{}",
            run.stdout
        );
    }
    assert_eq!(json["state_dir"], "/srv/***/state");
    assert_eq!(json["logging"]["dir"], "/var/tmp/opsbook-home/logs");
    let http = &json["health"]["endpoints"][0]["http"];
    assert_eq!(http["url"], "https://***@api.test/h?page=2&api_key=***");
    assert_eq!(http["headers"]["Authorization"], "Bearer ***");
    assert_eq!(http["headers"]["Accept"], "application/json");
    assert_eq!(http["headers"]["X-Api-Key"], "***");
    assert_eq!(json["incident"]["webhook"]["url"], "***");
    assert_eq!(json["backup"]["destination"], "***");
}

/// `run:` is split into words before anything is substituted: a `--var` value is one
/// argument whatever it holds; with `shell: true` it reaches the script quoted.
#[test]
fn substituted_values_are_always_one_argument() {
    let runbook = "steps:\n\
        - { name: argv, command: { run: \"printf '<%s>' {{ file }} {{ msg }}\", stdout_contains: \"</x /etc/shadow><O'Brien>\" } }\n\
        - { name: shell, command: { run: \"printf '<%s>' {{ file }} {{ msg }}; echo $((6 * 7))\", shell: true, stdout_contains: \"</x /etc/shadow><O'Brien>42\" } }\n\
        - { name: env, command: { run: \"printf '<%s>' ${SPACED} x\", stdout_contains: \"<a b><x>\" } }\n";
    Opsbook::new()
        .file("rb.yaml", runbook)
        .env("SPACED", "a b")
        .args([
            "run",
            "rb.yaml",
            "--var",
            "file=/x /etc/shadow",
            "--var",
            "msg=O'Brien",
        ])
        .run()
        .expect_exit(0)
        .stdout_contains("3 ok");
    // A value that would close the quotes or chain a command stays inert in the script.
    let ops = Opsbook::new().file(
        "rb.yaml",
        "steps:\n  - { name: shell, command: { run: \"echo {{ msg }} > said.txt\", shell: true } }\n",
    );
    let dir = ops.dir().to_path_buf();
    let _run = ops
        .args(["run", "rb.yaml", "--var", "msg='; touch pwned; echo '"])
        .run_in(&dir)
        .expect_exit(0);
    let said = std::fs::read_to_string(dir.join("said.txt")).unwrap();
    assert_eq!(said, "'; touch pwned; echo '\n");
    assert!(!dir.join("pwned").exists());
}

/// A setting the command needs and no config gives is a configuration error (78), naming
/// the key, not a usage error.
#[test]
fn missing_settings_are_config_errors_naming_the_key() {
    for (args, key) in [
        (&["backup", "create"][..], "`backup.destination`"),
        (&["backup", "list"][..], "`backup.destination`"),
        (
            &["restore", "latest", "--to", "x"][..],
            "`backup.destination`",
        ),
        (&["logs", "rotate"][..], "`logs.sets`"),
        (&["logs", "archive"][..], "`logs.sets`"),
    ] {
        let run = Opsbook::new()
            .file("ops.yaml", "state_dir: state\n")
            .args(["--config", "ops.yaml"])
            .args(args.iter().copied())
            .run()
            .expect_exit(78)
            .stderr_contains(&format!("missing setting {key}"));
        assert_eq!(run.stdout, "", "{args:?}");
    }
    // With a destination but no sets, the sets are what is missing.
    Opsbook::new()
        .file(
            "ops.yaml",
            "state_dir: state\nbackup: { destination: dest }\n",
        )
        .args(["--config", "ops.yaml", "backup", "create"])
        .run()
        .expect_exit(78)
        .stderr_contains("missing setting `backup.sets`");
}

/// An unset variable blocks only the commands that use its section: under cron, without
/// the webhook's variable, `health` still works and `incident declare` says what is missing.
#[test]
fn an_unset_variable_blocks_only_the_commands_using_its_section() {
    let config = "state_dir: state\n\
        incident:\n  dir: incidents\n  webhook: { url: \"${INCIDENT_WEBHOOK_URL}\" }\n\
        health:\n  endpoints:\n    - { name: api, http: { url: \"${API_URL}/health\" } }\n";
    let run = |args: &[&str]| {
        Opsbook::new()
            .readings(10.0, 10.0, 1.0)
            .file("ops.yaml", config)
            .env("API_URL", "http://127.0.0.1:9")
            .args(["--config", "ops.yaml"])
            .args(args.iter().copied())
            .run()
    };
    // `health` does not use the webhook (the endpoint is down: critical, not a config error).
    run(&["health"]).expect_exit(2).stdout_contains("api");
    let declared = run(&["incident", "declare", "--severity", "SEV-3", "--title", "t"])
        .expect_exit(78)
        .stderr_contains("ops.yaml:4:20: `incident.webhook.url`")
        .stderr_contains("environment variable INCIDENT_WEBHOOK_URL is not set");
    assert_eq!(declared.stdout, "");
    run(&["config", "show"]).expect_exit(0);

    // An unset variable that makes its own section invalid (an empty URL) blocks that
    // section only, and is named as the cause.
    let run = |args: &[&str]| {
        Opsbook::new()
            .readings(10.0, 10.0, 1.0)
            .file("ops.yaml", config)
            .env("INCIDENT_WEBHOOK_URL", "http://127.0.0.1:9/hook")
            .args(["--config", "ops.yaml"])
            .args(args.iter().copied())
            .run()
    };
    run(&["health"]).expect_exit(78).stderr_contains(
        "ops.yaml:7:34: `health.endpoints[0].http.url`: environment variable API_URL is not set",
    );
    run(&["incident", "list"]).expect_exit(0);

    // Settings every command uses stop every command.
    Opsbook::new()
        .file("ops.yaml", "state_dir: \"${OPS_STATE_HOME}/state\"\n")
        .args(["--config", "ops.yaml", "health"])
        .run()
        .expect_exit(78)
        .stderr_contains(
            "ops.yaml:1:13: `state_dir`: environment variable OPS_STATE_HOME is not set",
        );
}

/// `config validate` reports every error of a file, each located, not only the first.
#[test]
fn validate_collects_every_error_of_a_file() {
    let config = "health:\n  thresholds:\n    memory: { warn: 95 }\n  disks: [/]\n\
        logging:\n  level: LOUD\n\
        logs:\n  sets:\n    ok-set:\n      paths: [/var/log/b.log]\n      keep: lots\n    other:\n      paths: [/var/log/c.log]\n\
        backup:\n  nope: 1\n\
        health_typo: {}\n";
    let run = Opsbook::new()
        .file("ops.yaml", config)
        .args(["config", "validate", "ops.yaml"])
        .run()
        .expect_exit(78)
        .stdout_contains("ops.yaml: 5 errors");
    for expected in [
        "ops.yaml:3:13: warn 95 is above crit 90",
        "ops.yaml:6:10: unknown log level \"LOUD\"",
        "ops.yaml:11:13: invalid",
        "ops.yaml:15:3: unknown field `nope`",
        "ops.yaml:16:1: unknown field `health_typo`",
    ] {
        assert!(run.stderr.contains(expected), "{expected}:\n{}", run.stderr);
    }
    // A command that loads the file reports them all too, and runs nothing.
    let run = Opsbook::new()
        .file("ops.yaml", config)
        .args(["--config", "ops.yaml", "health"])
        .run()
        .expect_exit(78);
    assert_eq!(run.stderr.matches("ops.yaml:").count(), 5, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    // An error only the parts together make is still found: two endpoints with one name.
    Opsbook::new()
        .file(
            "ops.yaml",
            "health:\n  endpoints:\n    - { name: a, tcp: { host: 127.0.0.1, port: 1 } }\n    - { name: a, tcp: { host: 127.0.0.1, port: 2 } }\n",
        )
        .args(["config", "validate", "ops.yaml"])
        .run()
        .expect_exit(78)
        .stderr_contains("endpoint name \"a\" is used twice");
}

/// Names that become parts of file names (sets, schedules) are `[A-Za-z0-9._-]+`.
#[test]
fn set_and_schedule_names_must_be_safe_file_name_parts() {
    let run = Opsbook::new()
        .file(
            "ops.yaml",
            "logs:\n  sets:\n    app/x:\n      paths: [/var/log/a.log]\n\
             backup:\n  sets:\n    \"..\": { paths: [/etc] }\n    good.set_1-a: { paths: [/etc] }\n\
             maintain:\n  schedules:\n    \"nightly run\": { runbook: daily }\n",
        )
        .args(["config", "validate", "ops.yaml"])
        .run()
        .expect_exit(78)
        .stderr_contains("ops.yaml:3:5: \"app/x\" cannot be a name")
        .stderr_contains("ops.yaml:7:5: \"..\" cannot be a name")
        .stderr_contains("ops.yaml:11:5: \"nightly run\" cannot be a name");
    assert!(!run.stderr.contains("good.set_1-a"), "{}", run.stderr);
}

/// A config file that is not UTF-8 is located at its first bad byte, by `config validate`
/// and by any command that loads it.
#[test]
fn a_config_that_is_not_utf8_is_located_at_its_first_bad_byte() {
    let opsbook = Opsbook::new();
    let file = opsbook.path("ops.yaml");
    std::fs::write(&file, b"logging:\n  level: info\n  # r\xc3\xa9sum\xe9\n").unwrap();
    let file = file.to_str().unwrap().to_string();
    // (kept alive: the directory lives as long as the run)
    let _validated = opsbook
        .args(["config", "validate", &file])
        .run()
        .expect_exit(78)
        .stderr_contains("ops.yaml:3:10: the file is not UTF-8: byte 0xE9");
    Opsbook::new()
        .args(["--config", &file, "health"])
        .run()
        .expect_exit(78)
        .stderr_contains("ops.yaml:3:10: the file is not UTF-8");
}

/// An unset variable is placed in the value that uses it, not in a comment naming it.
#[test]
fn an_unset_variable_is_placed_in_its_value_not_in_a_comment() {
    let run = Opsbook::new()
        .file(
            "c.yaml",
            "# the hook is ${OPSBOOK_TEST_UNSET_HOOK}, set per host\nincident:\n  webhook: { url: \"https://x/${OPSBOOK_TEST_UNSET_HOOK}\" }\n",
        )
        .args(["config", "validate", "c.yaml"])
        .run()
        .expect_exit(0)
        .stderr_contains("c.yaml:3:30: `incident.webhook.url` uses ${OPSBOOK_TEST_UNSET_HOOK}");
    assert!(!run.stderr.contains("c.yaml:1:"), "{}", run.stderr);
}

/// The example configurations, one per system the runbooks describe: each one is there,
/// is valid, and every runbook (the shipped ones with that config's `runbooks.vars`) still
/// loads with it.
#[test]
fn every_example_config_validates_and_loads_the_shipped_runbooks() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples");
    let mut found: Vec<String> = std::fs::read_dir(&examples)
        .unwrap_or_else(|e| panic!("{}: {e}", examples.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            "edi-processor.yaml",
            "fileforge.yaml",
            "floyo.yaml",
            "inventory-service.yaml",
            "upload-bridge.yaml",
        ],
        "one example config per system, and nothing else"
    );
    for name in &found {
        let file = examples.join(name);
        let file = file.to_str().unwrap();
        Opsbook::new()
            .args(["config", "validate", file])
            .run()
            .expect_exit(0)
            .stdout_contains("ok: ");
        let run = Opsbook::new()
            .args(["--config", file, "runbook", "validate"])
            .run();
        assert_eq!(run.code, Some(0), "{name}: {}", run.stderr);
        let shown = Opsbook::new()
            .args(["--config", file, "runbook", "show", "startup"])
            .run()
            .expect_exit(0);
        assert!(
            shown.stdout.contains("app_log = "),
            "{name}: {}",
            shown.stdout
        );
    }
}

/// What `config show` prints loads back as config: an endpoint step is shown as written,
/// without `runbook show`'s `role` (which only describes a runbook's steps).
#[test]
fn config_show_loads_back_as_config() {
    let ob = Opsbook::new().file(
        "ops.yaml",
        "health:\n  endpoints:\n    - name: api\n      http: { url: \"http://127.0.0.1:9/health\" }\n",
    );
    let dir = ob.dir().to_path_buf();
    let shown = ob
        .args(["--config", "ops.yaml", "config", "show"])
        .run()
        .expect_exit(0);
    assert!(!shown.stdout.contains("role:"), "{}", shown.stdout);
    std::fs::write(dir.join("back.yaml"), &shown.stdout).unwrap();
    Opsbook::new()
        .args(["--config", "back.yaml", "config", "validate"])
        .run_in(&dir)
        .expect_exit(0);
}

/// `config validate` refuses what every incident command would: a template that does not
/// render, escalation routing for a severity that does not exist.
#[test]
fn config_validate_checks_incident_templates_and_escalation() {
    for (config, said) in [
        (
            "incident:\n  templates:\n    declaration: \"{{ nosuch.thing }}\"\n",
            "incident.templates.declaration",
        ),
        (
            "incident:\n  escalation:\n    SEV-9: { contacts: [{ after: 0m, who: x }] }\n",
            "incident.escalation.SEV-9: no such severity",
        ),
    ] {
        Opsbook::new()
            .file("ops.yaml", config)
            .args(["--config", "ops.yaml", "config", "validate"])
            .run()
            .expect_exit(78)
            .stderr_contains(said);
    }
}

/// A name YAML 1.1 reads as a boolean (`y`, `yes`, `on`, `no`) where a setting takes text
/// — a route's channel, a severity's name, a schedule's variable — is an error at its
/// file, line and key that says to quote it, not a bare "boolean true" for the whole
/// configuration; with every such word in every layered file named. Quoted, it is the
/// name. A real boolean setting written `yes` is not among them.
#[test]
fn a_name_that_reads_as_a_boolean_is_located_and_quoting_it_is_suggested() {
    let real = "logging:\n  to_console: yes\n";
    let cases = [
        (
            "notify:\n  channels:\n    y: { slack: { url: \"http://127.0.0.1:9/x\" } }\n  routes:\n    - { channels: [y] }\n",
            "ops.yaml:7:20: notify.routes[0].channels[0]: y reads as the boolean true in YAML; to mean the name or text, quote it: \"y\"",
        ),
        (
            "incident:\n  severities:\n    - { name: yes, response: 15m }\n",
            "ops.yaml:5:15: incident.severities[0].name: yes reads as the boolean true",
        ),
        (
            "maintain:\n  schedules:\n    daily: { runbook: daily, vars: { log_set: off } }\n",
            "ops.yaml:5:47: maintain.schedules.daily.vars.log_set: off reads as the boolean false",
        ),
    ];
    for (config, said) in cases {
        let config = format!("{real}{config}");
        let run = Opsbook::new()
            .file("ops.yaml", &config)
            .args(["--config", "ops.yaml", "config", "validate"])
            .run()
            .expect_exit(78);
        assert!(run.stderr.contains(said), "{config}\n{}", run.stderr);
        assert!(!run.stderr.contains("to_console"), "{}", run.stderr);
        assert!(!run.stderr.contains("layered"), "{}", run.stderr);
        // Quoted, it is the name.
        let fixed = config
            .replace("[y]", "[\"y\"]")
            .replace("name: yes", "name: \"yes\"")
            .replace("log_set: off", "log_set: \"off\"");
        Opsbook::new()
            .file("ops.yaml", &fixed)
            .args(["--config", "ops.yaml", "config", "validate"])
            .run()
            .expect_exit(0);
    }
    // Two layered files, a word in each: both named, each in its own file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("production.yaml"),
        "incident:\n  severities:\n    - { name: on }\n",
    )
    .unwrap();
    let run = Opsbook::new()
        .file(
            "ops.yaml",
            "notify:\n  channels:\n    n: { slack: { url: \"http://127.0.0.1:9/x\" } }\n  routes:\n    - { channels: [n] }\n",
        )
        .env("OPSBOOK_CONFIG_DIR", dir.path().to_str().unwrap())
        .args(["--env", "production", "--config", "ops.yaml", "config", "validate"])
        .run()
        .expect_exit(78);
    for said in [
        "production.yaml:3:15: incident.severities[0].name: on reads as the boolean true",
        "ops.yaml:5:20: notify.routes[0].channels[0]: n reads as the boolean false",
    ] {
        assert!(run.stderr.contains(said), "{said:?} not in {}", run.stderr);
    }
}
