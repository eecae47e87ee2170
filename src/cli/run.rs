//! `opsbook run RUNBOOK`: load (exit 78 on any problem, before a step runs), then run with
//! text streamed as each step finishes, or a report in the format asked.

use super::{Session, runtime};
use crate::engine::Interaction;
use crate::report::{Format, render, render_result, summary};
use crate::runbook::{self, Runbook, Selection};
use crate::values::Text;
use clap::Args;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A runbook file, or a name found in the runbook dirs or built in (`daily`)
    pub runbook: String,
    #[command(flatten)]
    pub vars: VarArgs,
    /// Also write the report, in --format, to FILE (stdout keeps the text)
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Run only these steps (names or tags; comma-separated or repeated)
    #[arg(long, value_name = "NAME|TAG", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Skip these steps (names or tags)
    #[arg(long, value_name = "NAME|TAG", value_delimiter = ',')]
    pub skip: Vec<String>,
    /// Print the plan and run nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm every manual step
    #[arg(short, long)]
    pub yes: bool,
    /// Tell the channels of config `notify:` what started failing and what recovered
    /// (as the runbook's `notify: true` does)
    #[arg(long)]
    pub notify: bool,
}

#[derive(Debug, Args)]
pub struct VarArgs {
    /// Set a runbook variable (repeatable), over the file's vars
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
}

fn parse_var(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

impl VarArgs {
    pub fn overrides(&self) -> BTreeMap<String, Text> {
        self.vars
            .iter()
            .map(|(k, v)| (k.clone(), Text::plain(v.clone())))
            .collect()
    }
}

/// The runbook dirs from config.
pub fn dirs(session: &Session) -> Vec<PathBuf> {
    session.loaded.config.runbooks.paths()
}

/// Find and load a runbook, with the session's variables and `--var`s; any problem is
/// exit 78.
pub fn load(wanted: &str, vars: &VarArgs, session: &Session) -> anyhow::Result<Runbook> {
    let mut overrides = session_vars(session);
    overrides.extend(vars.overrides());
    Ok(runbook::open(wanted, &dirs(session), &overrides)?)
}

/// The configured `runbooks.vars`, `{{ opsbook_config }}` and `{{ opsbook_env }}` of this
/// session.
pub fn session_vars(session: &Session) -> BTreeMap<String, Text> {
    runbook::session_vars(
        session.global.config.as_deref(),
        session.global.env.as_deref(),
        &session.loaded.config.runbooks.vars(),
    )
}

pub fn exec(args: &RunArgs, session: &Session) -> anyhow::Result<u8> {
    let format = session.format(Format::Text)?;
    let book = load(&args.runbook, &args.vars, session)?;
    let selection = Selection {
        only: args.only.clone(),
        skip: args.skip.clone(),
    };
    let unknown = selection.unknown(&book);
    if !unknown.is_empty() {
        return Err(crate::Error::Usage(format!(
            "--only/--skip name no step or tag of runbook {}: {}",
            book.name,
            unknown.join(", ")
        ))
        .into());
    }
    if args.dry_run {
        session.printer.data(&runbook::plan(&book, &selection));
        return Ok(0);
    }
    if args.notify || book.notify {
        // Told to notify: an unset `${VAR}` under `notify:` stops the run before it starts.
        session.loaded.require(&["notify"])?;
    }
    let ctx = context(args.yes, session)?;
    let stream = format == Format::Text || args.output.is_some();
    let mut observer = Stream::new(session, &book, stream);
    tracing::info!(target: crate::logging::RESULTS, runbook = %book.name, source = %book.source, "run started");
    let report = runtime()?.block_on(runbook::run(&book, &ctx, &selection, &mut observer));
    if let Some(spinner) = &observer.spinner {
        spinner.finish_and_clear();
    }
    tracing::info!(target: crate::logging::RESULTS, runbook = %book.name, status = report.status().as_str(), "run finished");
    if stream {
        let style = session.printer.style();
        session
            .printer
            .human(&format!("{}\n", summary(&report, style)));
    }
    write_report(&report, format, args.output.as_deref(), session)?;
    if args.notify || book.notify {
        tell(&rerun(args, session), &book, &report, &ctx, session)?;
    }
    Ok(report.status().exit_code())
}

/// The command that reproduces this run, said in every message: the options that pick
/// the configuration (`--env`, `--config` as an absolute path), the runbook (a file as an
/// absolute path), each `--var`, `--only`, `--skip`, `--yes` and `--notify`, each word
/// quoted for a shell. A secret's value is never written: its `--var` reads the shell
/// variable of its name (`--var API_TOKEN="$API_TOKEN"`), so the name says what to pass.
fn rerun(args: &RunArgs, session: &Session) -> String {
    use crate::maintain::shell_word as word;
    let mut words = invoked(session);
    words.push("run".to_string());
    let runbook = std::path::Path::new(&args.runbook);
    words.push(if runbook.is_file() || args.runbook.contains('/') {
        absolute(runbook)
    } else {
        word(&args.runbook)
    });
    for (name, value) in &args.vars.vars {
        words.push("--var".to_string());
        words.push(if is_secret_var(name, value) {
            secret_var(name)
        } else {
            word(&format!("{name}={value}"))
        });
    }
    for (flag, names) in [("--only", &args.only), ("--skip", &args.skip)] {
        if !names.is_empty() {
            words.extend([flag.to_string(), word(&names.join(","))]);
        }
    }
    for (flag, on) in [("--yes", args.yes), ("--notify", args.notify)] {
        if on {
            words.push(flag.to_string());
        }
    }
    words.join(" ")
}

/// `opsbook` with the options that picked this session's configuration (`--env`, and
/// `--config` as an absolute path), as words for a shell: how a message's rerun starts.
pub fn invoked(session: &Session) -> Vec<String> {
    let mut words = vec!["opsbook".to_string()];
    if let Some(env) = &session.global.env {
        words.extend(["--env".to_string(), crate::maintain::shell_word(env)]);
    }
    if let Some(config) = &session.global.config {
        words.extend(["--config".to_string(), absolute(config)]);
    }
    words
}

/// `path` made absolute (not resolving links), quoted for a shell.
fn absolute(path: &std::path::Path) -> String {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    crate::maintain::shell_word(&path.to_string_lossy())
}

/// Whether a `--var` holds a secret, by the rule that masks it everywhere else: a name
/// like a password or token, a URL with credentials, or a value registered as secret.
fn is_secret_var(name: &str, value: &str) -> bool {
    crate::redact::is_credential_name(name)
        || crate::redact::mask_url_parts(value).0 != value
        || crate::redact::mask(value) != value
}

/// A secret `--var` without its value: `NAME="$NAME"` (the shell variable of that name),
/// or `'NAME=<secret>'` for a name no shell variable can have.
fn secret_var(name: &str) -> String {
    let mut chars = name.chars();
    let shell_name = chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric());
    if shell_name {
        format!("{name}=\"${name}\"")
    } else {
        crate::maintain::shell_word(&format!("{name}=<secret>"))
    }
}

/// Hand the run's failing steps to `notify::settle` (scope `run:NAME`, saying `rerun`);
/// what could not be delivered is a warning, never the run's failure.
fn tell(
    rerun: &str,
    book: &Runbook,
    report: &crate::model::Report,
    ctx: &crate::engine::Context,
    session: &Session,
) -> anyhow::Result<()> {
    let config = &session.loaded.config.notify;
    if !config.is_configured() {
        session
            .printer
            .warn("notifications asked for, but config `notify.channels` names none");
        return Ok(());
    }
    let name = format!("run:{}", book.name);
    let unseen = crate::notify::Problem::unseen_in(report);
    let scope = crate::notify::Scope {
        name: &name,
        rerun,
        unseen: &unseen,
    };
    let problems = crate::notify::Problem::from_report(report);
    let state_dir = session.loaded.config.state_dir();
    let settled = runtime()?.block_on(crate::notify::settle(
        config,
        &state_dir,
        ctx.clock.now(),
        &scope,
        &problems,
    ));
    match settled {
        Ok(told) => told.all_warnings().for_each(|w| session.printer.warn(w)),
        Err(e) => session
            .printer
            .warn(&format!("notifications not sent: {e}")),
    }
    Ok(())
}

/// The checks' context for a run: manual steps confirmed with `--yes`, asked on a
/// terminal, else left unknown.
fn context(yes: bool, session: &Session) -> anyhow::Result<crate::engine::Context> {
    let mut ctx = super::step_context(session)?;
    ctx.interaction = if yes {
        Interaction::Yes
    } else if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        Interaction::Ask
    } else {
        Interaction::None
    };
    Ok(ctx)
}

/// The report in `format`: to `--output` (plain, secrets masked), else to stdout unless
/// the text was already streamed.
fn write_report(
    report: &crate::model::Report,
    format: Format,
    output: Option<&std::path::Path>,
    session: &Session,
) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            let text = render(report, format, crate::report::Style::default());
            crate::fsutil::write_atomically(path, crate::redact::mask(&text).as_bytes())
                .map_err(anyhow::Error::msg)?;
        }
        None if format != Format::Text => {
            session
                .printer
                .data(&render(report, format, session.printer.style()))
        }
        None => {}
    }
    Ok(())
}

/// Text as each step finishes; on a terminal, a spinner naming what is running.
struct Stream<'a> {
    session: &'a Session,
    stream: bool,
    width: usize,
    style: crate::report::Style,
    spinner: Option<indicatif::ProgressBar>,
}

impl<'a> Stream<'a> {
    /// Lines as wide as the runbook's longest step name; a spinner only on a terminal.
    fn new(session: &'a Session, book: &Runbook, stream: bool) -> Self {
        let width = book
            .all_steps()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(0);
        let spinner = stream && !session.global.quiet && std::io::stderr().is_terminal();
        Stream {
            session,
            stream,
            width,
            style: session.printer.style(),
            spinner: spinner.then(indicatif::ProgressBar::new_spinner),
        }
    }
}

impl runbook::run::Observer for Stream<'_> {
    fn started(&mut self, steps: &[&crate::engine::registry::StepSpec]) {
        let Some(spinner) = &self.spinner else {
            return;
        };
        // A prompt needs the line: no spinner while a person is asked.
        if steps.iter().any(|s| s.kind_name() == "manual") {
            spinner.disable_steady_tick();
            spinner.finish_and_clear();
            return;
        }
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        spinner.reset();
        spinner.set_message(format!("running {}", names.join(", ")));
        spinner.enable_steady_tick(std::time::Duration::from_millis(100));
    }

    fn finished(&mut self, result: &crate::model::CheckResult) {
        if !self.stream {
            return;
        }
        let line = render_result(result, self.width, self.style);
        match &self.spinner {
            Some(spinner) => spinner.suspend(|| self.session.printer.human(&line)),
            None => self.session.printer.human(&line),
        }
    }
}
