//! One integration-test binary: a module per feature, all driving the real `opsbook`.

mod common;

mod architecture;
mod backup;
mod config;
mod endpoints;
mod health;
mod help;
mod incident;
mod incident_notify;
mod library_diagnosis;
mod library_maintenance;
mod library_verification;
mod logging;
mod logs;
mod maintain;
mod modes;
mod notify;
mod notify_mail;
mod readme;
mod renderers;
mod restore;
mod runbooks;
mod steps;
mod system_probes;
mod tls_dns;
mod watch;
