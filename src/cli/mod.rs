//! The command line: parse (clap derive), set up logging, dispatch to one file per
//! subcommand, and map an error to its exit code. No business logic lives here.

mod backup;
mod completions;
mod config;
mod health;
mod incident;
mod incident_followup;
mod logs;
mod maintain;
pub mod printer;
mod run;
mod runbook;
mod session;

pub use session::{
    Session, check_context, config_error, config_file, duration_arg, missing_setting, open_store,
    pick_sets, runtime, step_context, stop_signal,
};

use crate::cli::printer::Printer;
use crate::config::{LoadOptions, Loaded};
use crate::error::Error;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Operations runbooks as one binary: health checks, logs, backups, incidents, maintenance.
#[derive(Debug, Parser)]
#[command(
    name = "opsbook",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Accepted before or after the subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Config file layered over <env>.yaml in $OPSBOOK_CONFIG_DIR (else ./config)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Environment: development, staging, production, or any name with its own <env>.yaml
    #[arg(long, global = true, env = "ENVIRONMENT", value_name = "ENV")]
    pub env: Option<String>,
    /// Output format (each command's help lists the ones it has)
    #[arg(long, global = true, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Print only errors, and no report on a terminal
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More diagnostics on stderr (-v info, -vv debug, -vvv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No colours (also: NO_COLOR)
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check this machine's resources against thresholds, and every configured endpoint
    /// (exit 0 ok, 1 warning, 2 critical, 3 unknown)
    Health(health::HealthArgs),
    /// Run a runbook (exit 0 ok, 1 warning, 2 critical, 3 unknown; 78 if invalid)
    Run(run::RunArgs),
    /// Runbooks: list, validate, show, schema
    #[command(subcommand)]
    Runbook(runbook::RunbookCommand),
    /// Back up sets of files and command output: create, list, verify, prune
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Incidents: declare, ack, update, list, show, escalate, resolve, report, notice, collect, remind, metrics, actions, action
    #[command(subcommand)]
    Incident(incident::IncidentCommand),
    /// Scheduled maintenance: run (a schedule, under its lock), status, schedule (cron/systemd)
    #[command(subcommand)]
    Maintain(maintain::MaintainCommand),
    /// Restore a backup, or a tar archive made by hand, without writing outside the target (exit 0 done, 1 refused or failed)
    Restore(backup::RestoreArgs),
    /// Log sets and files: rotate, archive, search, tail, summary
    #[command(subcommand)]
    Logs(logs::LogsCommand),
    /// The configuration: show, validate
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Print shell completions
    Completions(completions::CompletionsArgs),
    /// Print the man page, or write every command's page into a directory (--dir)
    Man(completions::ManArgs),
}

/// Exit codes that are not a report's status.
pub mod exit {
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 64;
    pub const TEMPFAIL: u8 = 75;
    pub const CONFIG: u8 = 78;
}

/// The formats each command renders with `--format`, the default first. Each command's
/// help lists its own; `--format` on a command not listed here is a usage error, so the
/// flag never silently does nothing. (`None`: every report format.)
const FORMATS: &[(&str, Option<&[&str]>)] = &[
    ("health", None),
    ("run", None),
    ("runbook list", Some(&["text", "json"])),
    ("runbook show", Some(&["text", "yaml", "json"])),
    ("backup list", Some(&["text", "json"])),
    ("incident list", Some(&["text", "json"])),
    ("incident show", Some(&["text", "json"])),
    ("incident actions", Some(&["text", "json"])),
    ("logs rotate", Some(&["text", "json"])),
    ("logs summary", Some(&["text", "json"])),
    ("maintain status", Some(&["text", "json"])),
    ("config show", Some(&["yaml", "json"])),
];

/// The formats of the command at `path` (`["incident", "list"]`), if it has any.
fn formats(path: &[&str]) -> Option<Vec<String>> {
    let key = path.join(" ");
    let (_, names) = FORMATS.iter().find(|(name, _)| *name == key)?;
    Some(match names {
        Some(names) => names.iter().map(|n| (*n).to_string()).collect(),
        None => <crate::report::Format as clap::ValueEnum>::value_variants()
            .iter()
            .filter_map(clap::ValueEnum::to_possible_value)
            .map(|p| p.get_name().to_string())
            .collect(),
    })
}

/// The command line as clap sees it (also for completions and man pages): the derived
/// one, with each command's `--format` help naming that command's formats.
pub fn command() -> clap::Command {
    let cmd = Cli::command();
    let Some(global) = cmd
        .get_arguments()
        .find(|a| a.get_id() == "format")
        .cloned()
    else {
        return cmd;
    };
    with_format_help(cmd, &mut Vec::new(), &global)
}

fn with_format_help(
    mut cmd: clap::Command,
    path: &mut Vec<String>,
    global: &clap::Arg,
) -> clap::Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    if names.is_empty() && !path.is_empty() {
        let words: Vec<&str> = path.iter().map(String::as_str).collect();
        let help = match formats(&words) {
            Some(list) => format!("Output format: {} (default {})", list.join(", "), list[0]),
            None => "Not accepted here: this command has one output form".to_string(),
        };
        // A copy of the global flag, still global, so its value lands where it always did.
        return cmd.arg(global.clone().help(help));
    }
    for name in names {
        path.push(name.clone());
        cmd = cmd.mut_subcommand(&name, |sub| with_format_help(sub, path, global));
        path.pop();
    }
    cmd
}

/// `--format` given to a command that has none: a usage error naming the ones that do.
fn check_format(cli: &Cli, matches: &clap::ArgMatches) -> Result<(), Error> {
    let Some(format) = &cli.global.format else {
        return Ok(());
    };
    let mut path = Vec::new();
    let mut at = matches;
    while let Some((name, sub)) = at.subcommand() {
        path.push(name);
        at = sub;
    }
    if formats(&path).is_some() {
        return Ok(());
    }
    let with: Vec<&str> = FORMATS.iter().map(|(name, _)| *name).collect();
    Err(Error::Usage(format!(
        "`opsbook {}` has no --format (asked for {format:?}); these commands have one: {}",
        path.join(" "),
        with.join(", ")
    )))
}

pub fn main() -> ExitCode {
    let parsed = command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches).map(|cli| (cli, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let code = clap_error(&e);
            if let (0, Some(e)) = (code, crate::cli::printer::stdout_failure()) {
                Printer::new(true, false).error(&format!("cannot write the output: {e}"));
                return ExitCode::from(1);
            }
            return ExitCode::from(code);
        }
    };
    let printer = Printer::new(cli.global.no_color, cli.global.quiet);
    if let Err(err) = check_format(&cli, &matches) {
        printer.error(&err.to_string());
        return ExitCode::from(exit::USAGE);
    }
    let mut code = match run(cli, printer) {
        Ok(code) => code,
        Err(err) => {
            printer.error(&format!("{err:#}"));
            exit_code(&err)
        }
    };
    if let Some(e) = crate::cli::printer::stdout_failure() {
        printer.error(&format!("cannot write the output: {e}"));
        if code == 0 {
            code = 1;
        }
    }
    ExitCode::from(code)
}

fn clap_error(e: &clap::Error) -> u8 {
    use clap::error::ErrorKind;
    let printer = Printer::new(true, false);
    let text = e.render().to_string();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            printer.data(&text);
            0
        }
        _ => {
            crate::cli::printer::write_stderr(&text);
            exit::USAGE
        }
    }
}

fn run(cli: Cli, printer: Printer) -> anyhow::Result<u8> {
    // These must work even with a broken config file.
    match &cli.command {
        Command::Completions(args) => return completions::exec_completions(args, &printer),
        Command::Man(args) => return completions::exec_man(args, &printer),
        _ => {}
    }
    let loaded = load_config(&cli.global, &printer)?;
    // An unset `${VAR}` blocks only the commands that use its section.
    loaded.require(sections(&cli.command))?;
    let session = Session {
        printer,
        loaded,
        global: cli.global,
    };
    match cli.command {
        Command::Health(args) => health::exec(&args, &session),
        Command::Config(command) => config::exec(&command, &session),
        Command::Run(args) => run::exec(&args, &session),
        Command::Logs(command) => logs::exec(&command, &session),
        Command::Backup(command) => backup::exec(&command, &session),
        Command::Restore(args) => backup::restore(&args, &session),
        Command::Incident(command) => incident::exec(&command, &session),
        Command::Maintain(command) => maintain::exec(&command, &session),
        Command::Runbook(command) => runbook::exec(&command, &session),
        Command::Completions(_) | Command::Man(_) => Ok(0),
    }
}

/// Load the configuration and start logging as it says; a missing `<env>.yaml` for an
/// environment asked for by name is said on stderr and in application.log.
fn load_config(global: &GlobalArgs, printer: &Printer) -> anyhow::Result<Loaded> {
    let options = LoadOptions::new(global.env.clone(), global.config.clone());
    let loaded = crate::config::load(&options)?;
    let verbosity = crate::logging::Verbosity {
        verbose: global.verbose,
        quiet: global.quiet,
    };
    if let Some(warning) =
        crate::logging::init(&loaded.config.logging, verbosity, printer.style().color)
    {
        printer.warn(&warning);
    }
    tracing::debug!(env = %loaded.env, sources = ?loaded.sources, "configuration loaded");
    if let Some(message) = crate::config::missing_env_warning(&options, &loaded) {
        // To the log files only (the results target); the printer says it on stderr.
        tracing::warn!(target: crate::logging::RESULTS, "{message}");
        printer.warn(&message);
    }
    Ok(loaded)
}

/// The config sections a command uses: their `${VAR}`s must be set. `notify` for every
/// command that tells people (a `run` asks for it once it knows it notifies), and only
/// those: a missing pager key never blocks `incident show` or `maintain status`.
fn sections(command: &Command) -> &'static [&'static str] {
    match command {
        Command::Health(args) if args.watch.is_some() || args.serve.is_some() => {
            &["health", "notify"]
        }
        Command::Health(_) => &["health"],
        Command::Run(_) => &["runbooks", "logs", "backup"],
        Command::Runbook(_) => &["runbooks"],
        Command::Logs(_) => &["logs"],
        Command::Backup(_) | Command::Restore(_) => &["backup"],
        Command::Incident(command) if incident::notifies(command) => &["incident", "notify"],
        Command::Incident(_) => &["incident"],
        Command::Maintain(maintain::MaintainCommand::Run(_)) => {
            &["maintain", "runbooks", "logs", "backup", "health", "notify"]
        }
        Command::Maintain(_) => &["maintain", "runbooks", "logs", "backup", "health"],
        Command::Config(_) | Command::Completions(_) | Command::Man(_) => &[],
    }
}

/// The one place an error becomes an exit code: the first error in the chain that knows
/// its kind decides. A domain's error enum is one more line in `kind_of`.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    use crate::error::Kind;
    match err.chain().find_map(kind_of) {
        Some(Kind::Config) => exit::CONFIG,
        Some(Kind::Usage) => exit::USAGE,
        Some(Kind::Busy) => exit::TEMPFAIL,
        Some(Kind::Failure) | None => exit::FAILURE,
    }
}

/// What kind of failure `cause` is, when it is one of the library's typed errors.
fn kind_of(cause: &(dyn std::error::Error + 'static)) -> Option<crate::error::Kind> {
    use crate::error::Kind;
    cause
        .downcast_ref::<Error>()
        .map(Error::kind)
        .or_else(|| {
            cause
                .downcast_ref::<crate::error::ConfigError>()
                .map(|_| Kind::Config)
        })
        .or_else(|| {
            cause
                .downcast_ref::<crate::backup::Error>()
                .map(crate::backup::Error::kind)
        })
        .or_else(|| {
            cause
                .downcast_ref::<crate::incident::Error>()
                .map(crate::incident::Error::kind)
        })
        .or_else(|| {
            cause
                .downcast_ref::<crate::logs::Error>()
                .map(crate::logs::Error::kind)
        })
        .or_else(|| {
            cause
                .downcast_ref::<crate::maintain::Error>()
                .map(crate::maintain::Error::kind)
        })
}
