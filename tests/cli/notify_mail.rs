//! E-mail notifications against a real SMTP server (aiosmtpd, `common::smtp`) on
//! 127.0.0.1 in each security mode: plain, STARTTLS and implicit TLS, the server's
//! certificate signed by a throwaway CA that opsbook trusts only through `ca_file`.

use crate::common::Opsbook;
use crate::common::smtp::{Certs, Mail, Mode, SmtpServer};
use crate::notify::{T0, daily_with, memory, no_secret_in_files, opsbook, setup, undelivered};
use std::path::Path;

/// The `mail` channel: an `email` with these settings (YAML lines under `email:`), to
/// oncall@example.com from ops@example.com on 127.0.0.1:`port`.
fn mail_channel(port: u16, settings: &str) -> String {
    let mut channel = format!(
        "  delivery: {{ attempts: 2, backoff: 10ms, timeout: 30s }}
  channels:
    mail:
      email:
        server: 127.0.0.1
        port: {port}
        from: \"opsbook <ops@example.com>\"
        to: [oncall@example.com]
"
    );
    for line in settings.lines() {
        channel.push_str(&format!("        {line}\n"));
    }
    channel
}

/// The schedule `daily` fails (memory at 95%) once, at `now`: opsbook exits 2.
fn fail_daily(dir: &Path, now: &str) -> crate::common::Run {
    memory(dir, 95.0);
    opsbook(dir, now, &["maintain", "run", "daily"]).expect_exit(2)
}

/// The one message `server` took is the problem e-mail for `maintain:daily`.
fn one_problem_mail(server: &SmtpServer) -> Mail {
    let mails = server.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = mails[0].clone();
    assert_eq!(mail.mail_from, "ops@example.com");
    assert_eq!(mail.rcpt_tos, ["oncall@example.com"]);
    let data = mail.unfolded();
    for part in [
        "Subject: [opsbook] PROBLEM maintain:daily on ",
        "From: opsbook <ops@example.com>",
        "To: oncall@example.com",
        "Memory failed (critical) in maintain:daily on ",
        "memory 95% used",
        "Rerun: opsbook --config ",
        "/ops.yaml maintain run daily",
    ] {
        assert!(data.contains(part), "{part:?} not in {data}");
    }
    mail
}

#[test]
fn plain_mail_without_credentials_reaches_a_relay_on_this_machine() {
    let server = SmtpServer::start(Mode::Plain, None, None);
    let dir = setup(&daily_with(&mail_channel(server.port, "security: plain")));
    let run = fail_daily(dir.path(), T0);
    assert!(!run.stderr.contains("notification"), "{}", run.stderr);
    let mail = one_problem_mail(&server);
    assert!(!mail.tls);
    assert_eq!(mail.login, None);
    assert_eq!(undelivered(dir.path()), 0);
}

/// A server in `mode` (starttls or tls) with a certificate from a fresh CA, taking only
/// the user `ops` with `password`.
struct Secured {
    server: SmtpServer,
    certs: Certs,
    _dir: tempfile::TempDir,
}

impl Secured {
    fn start(mode: Mode, password: &str) -> Secured {
        let dir = tempfile::tempdir().unwrap();
        let certs = Certs::new(dir.path());
        let server = SmtpServer::start(mode, Some(&certs), Some(("ops", password)));
        Secured {
            server,
            certs,
            _dir: dir,
        }
    }

    /// The channel's settings: `security`, the login `ops` with the password from
    /// SMTP_PASSWORD and, when `trusted`, `ca_file` naming the CA.
    fn settings(&self, security: &str, trusted: bool) -> String {
        let mut settings =
            format!("security: {security}\nusername: ops\npassword_env: SMTP_PASSWORD");
        if trusted {
            settings.push_str(&format!("\nca_file: {}", self.certs.ca.display()));
        }
        settings
    }
}

/// A failure in `maintain:daily` reaches a `mode` server over TLS as `ops`, with the
/// password from the environment.
fn delivered_over(mode: Mode, security: &str) {
    let secured = Secured::start(mode, "canary-smtp-password");
    let settings = secured.settings(security, true);
    let dir = setup(&daily_with(&mail_channel(secured.server.port, &settings)));
    let run = fail_daily(dir.path(), T0);
    assert!(!run.stderr.contains("notification"), "{}", run.stderr);
    let mail = one_problem_mail(&secured.server);
    assert!(mail.tls, "sent without TLS");
    assert_eq!(mail.login.as_deref(), Some("ops"));
    no_secret_in_files(dir.path());
}

#[test]
fn starttls_with_the_password_from_the_environment_is_delivered() {
    delivered_over(Mode::Starttls, "starttls");
}

#[test]
fn implicit_tls_is_delivered() {
    delivered_over(Mode::Tls, "tls");
}

/// A certificate from a CA opsbook does not trust: nothing is sent, the message waits in undelivered/, and once `ca_file` names the CA the
/// next run delivers it, once.
#[test]
fn an_untrusted_certificate_keeps_the_message_until_ca_file_names_its_ca() {
    let secured = Secured::start(Mode::Starttls, "canary-smtp-password");
    let server = &secured.server;
    let port = server.port;
    let dir = setup(&daily_with(&mail_channel(
        port,
        &secured.settings("starttls", false),
    )));
    fail_daily(dir.path(), T0)
        .stderr_contains(
            "notification problem \"Memory\" to mail failed: the mail server \"127.0.0.1\" \
             was not trusted: its certificate is not signed by a trusted root",
        )
        .stderr_contains("name that CA's certificate in `ca_file`")
        .stderr_contains("(after 1 attempt)")
        .stderr_contains("kept in state/undelivered/");
    assert!(server.mails().is_empty(), "{:?}", server.mails());
    assert_eq!(undelivered(dir.path()), 1);
    no_secret_in_files(dir.path());

    std::fs::write(
        dir.path().join("ops.yaml"),
        daily_with(&mail_channel(port, &secured.settings("starttls", true))),
    )
    .unwrap();
    let run = fail_daily(dir.path(), "2026-03-02T04:00:00Z");
    assert!(!run.stderr.contains("notification"), "{}", run.stderr);
    let mail = one_problem_mail(server);
    assert!(mail.tls);
    assert_eq!(undelivered(dir.path()), 0);
    fail_daily(dir.path(), "2026-03-02T05:00:00Z");
    assert_eq!(server.mails().len(), 1, "still one: {:?}", server.mails());
    no_secret_in_files(dir.path());
}

#[test]
fn a_wrong_password_is_not_delivered_and_says_authentication_failed() {
    let secured = Secured::start(Mode::Starttls, "the-password-the-server-wants");
    let server = &secured.server;
    let settings = secured.settings("starttls", true);
    let dir = setup(&daily_with(&mail_channel(server.port, &settings)));
    // `opsbook` checks that SMTP_PASSWORD's value (canary-smtp-password) shows nowhere.
    let run = fail_daily(dir.path(), T0)
        .stderr_contains(
            "notification problem \"Memory\" to mail failed: authentication as \"ops\" failed",
        )
        .stderr_contains("535")
        .stderr_contains("(after 1 attempt)")
        .stderr_contains("kept in state/undelivered/");
    assert!(
        !run.stderr.contains("the-password-the-server-wants"),
        "{}",
        run.stderr
    );
    assert!(server.mails().is_empty(), "{:?}", server.mails());
    assert_eq!(undelivered(dir.path()), 1);
    let audit = std::fs::read_to_string(dir.path().join("ops-logs/audit.log")).unwrap();
    assert!(audit.contains("\"failed\""), "{audit}");
    no_secret_in_files(dir.path());
}

/// What cannot work is refused before anything is sent: `config validate` exits 78
/// naming the channel and, for `ca_file`, the file.
#[test]
fn email_settings_that_cannot_work_are_refused_by_config_validate() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(at("notes.txt"), "just some notes\n").unwrap();
    std::fs::write(
        at("garbage.pem"),
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(at("broken.pem"), "-----BEGIN CERTIFICATE-----\n!!!\n").unwrap();
    let email = |settings: &str| {
        format!(
            "notify:\n  channels:\n    mail:\n      email: {{ server: {settings}, from: a@example.com, to: [b@example.com] }}\n"
        )
    };
    let cases = [
        (
            email("smtp.example.com, security: plain, username: u, password_env: SMTP_PASSWORD"),
            "notify.channels.mail: `security: plain` would send the password in the clear to smtp.example.com".to_string(),
        ),
        (
            email("127.mail.example.com, security: plain, username: u, password_env: SMTP_PASSWORD"),
            "would send the password in the clear to 127.mail.example.com".to_string(),
        ),
        (
            email(&format!("smtp.example.com, ca_file: {}", at("missing.pem"))),
            format!("notify.channels.mail: `ca_file` {}: cannot read it: No such file", at("missing.pem")),
        ),
        (
            email(&format!("smtp.example.com, security: tls, ca_file: {}", dir.path().display())),
            format!("notify.channels.mail: `ca_file` {}: cannot read it", dir.path().display()),
        ),
        (
            email(&format!("smtp.example.com, ca_file: {}", at("notes.txt"))),
            format!("notify.channels.mail: `ca_file` {} holds no PEM certificate", at("notes.txt")),
        ),
        (
            email(&format!("smtp.example.com, ca_file: {}", at("broken.pem"))),
            format!("notify.channels.mail: `ca_file` {} is not valid PEM", at("broken.pem")),
        ),
        (
            email(&format!("smtp.example.com, ca_file: {}", at("garbage.pem"))),
            format!("notify.channels.mail: `ca_file` {}: certificate 1 is not a usable CA certificate", at("garbage.pem")),
        ),
        (
            email(&format!("localhost, security: plain, ca_file: {}", at("garbage.pem"))),
            "notify.channels.mail: `ca_file` is for `security: starttls` or `tls`".to_string(),
        ),
    ];
    for (config, said) in cases {
        let run = Opsbook::new()
            .file("ops.yaml", &config)
            .args(["--config", "ops.yaml", "config", "validate"])
            .run()
            .expect_exit(78);
        assert!(run.stderr.contains("ops.yaml:"), "{config}: {}", run.stderr);
        assert!(
            run.stderr.contains(&said),
            "{config}: {said:?} not in {}",
            run.stderr
        );
    }
    // Credentials over plain to this machine's relay remain allowed.
    let certs = Certs::new(dir.path());
    for settings in [
        "localhost, security: plain, username: u, password_env: SMTP_PASSWORD".to_string(),
        "\"::1\", security: plain, username: u, password_env: SMTP_PASSWORD".to_string(),
        format!(
            "smtp.example.com, security: tls, ca_file: {}",
            certs.ca.display()
        ),
    ] {
        Opsbook::new()
            .file("ops.yaml", &email(&settings))
            .args(["--config", "ops.yaml", "config", "validate"])
            .run()
            .expect_exit(0);
    }
}
