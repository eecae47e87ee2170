//! `opsbook run RUNBOOK`: load (exit 78 on any problem, before a step runs), then run with
//! text streamed as each step finishes, or a report in the format asked.

use super::{Session, check_context, runtime};
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
    session
        .loaded
        .config
        .runbooks
        .dirs
        .iter()
        .map(|d| PathBuf::from(d.as_str()))
        .collect()
}

/// Find and load a runbook; any problem is exit 78.
pub fn load(wanted: &str, vars: &VarArgs, session: &Session) -> anyhow::Result<Runbook> {
    let dirs = dirs(session);
    let source = runbook::find(wanted, &dirs).map_err(crate::Error::Config)?;
    let mut overrides = session_vars(session);
    overrides.extend(vars.overrides());
    Ok(runbook::load(&source, &overrides, &dirs)?)
}

/// `{{ opsbook_config }}` and `{{ opsbook_env }}`: the `--config` (absolute) and the
/// environment asked for, each empty when not given, so a step that runs opsbook itself
/// reads the same configuration.
pub fn session_vars(session: &Session) -> BTreeMap<String, Text> {
    let config = session
        .global
        .config
        .as_ref()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    BTreeMap::from([
        ("opsbook_config".to_string(), Text::plain(config)),
        (
            "opsbook_env".to_string(),
            Text::plain(session.global.env.clone().unwrap_or_default()),
        ),
    ])
}

pub fn exec(args: &RunArgs, session: &Session) -> anyhow::Result<u8> {
    let format = session.format(Format::Text)?;
    let book = load(&args.runbook, &args.vars, session)?;
    let selection = Selection {
        only: args.only.clone(),
        skip: args.skip.clone(),
    };
    if args.dry_run {
        session.printer.data(&plan(&book, &selection));
        return Ok(0);
    }
    let mut ctx = check_context()?;
    ctx.config = std::sync::Arc::new(super::backup::step_settings(session));
    ctx.interaction = if args.yes {
        Interaction::Yes
    } else if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        Interaction::Ask
    } else {
        Interaction::None
    };
    let stream = format == Format::Text || args.output.is_some();
    let style = session.printer.style();
    let width = book
        .all_steps()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0);
    let spinner = stream && !session.global.quiet && std::io::stderr().is_terminal();
    let mut observer = Stream {
        session,
        stream,
        width,
        style,
        spinner: spinner.then(indicatif::ProgressBar::new_spinner),
    };
    tracing::info!(target: crate::logging::RESULTS, runbook = %book.name, source = %book.source, "run started");
    let report = runtime()?.block_on(runbook::run(&book, &ctx, &selection, &mut observer));
    if let Some(spinner) = &observer.spinner {
        spinner.finish_and_clear();
    }
    tracing::info!(target: crate::logging::RESULTS, runbook = %book.name, status = report.status().as_str(), "run finished");
    if stream {
        session
            .printer
            .human(&format!("{}\n", summary(&report, style)));
    }
    match &args.output {
        Some(path) => {
            let text = render(&report, format, crate::report::Style::default());
            crate::fsutil::write_atomically(path, crate::redact::mask(&text).as_bytes())
                .map_err(anyhow::Error::msg)?;
        }
        None if format != Format::Text => session.printer.data(&render(&report, format, style)),
        None => {}
    }
    Ok(report.status().exit_code())
}

/// Text as each step finishes; on a terminal, a spinner naming what is running.
struct Stream<'a> {
    session: &'a Session,
    stream: bool,
    width: usize,
    style: crate::report::Style,
    spinner: Option<indicatif::ProgressBar>,
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

/// What would run, in order, and what the selection leaves out: each step's kind, name
/// and conditions, then what it would do with its variables resolved (secrets masked),
/// and under it what would undo it.
fn plan(book: &Runbook, selection: &Selection) -> String {
    use std::fmt::Write;
    let mut out = format!("{} ({}): {}\n", book.name, book.source, book.description);
    let mut line = |step: &crate::engine::registry::StepSpec, prefix: &str| {
        let mut notes = Vec::new();
        if let Some(why) = selection.excludes(step) {
            notes.push(why);
        }
        let o = &step.options;
        if !o.needs.is_empty() {
            notes.push(format!("needs {}", o.needs.join(", ")));
        }
        if let Some(when) = &o.when {
            notes.push(format!("when {}", when.source()));
        }
        if o.always {
            notes.push("always".into());
        }
        if o.continue_on_failure {
            notes.push("continue_on_failure".into());
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!("  ({})", notes.join("; "))
        };
        let _ = writeln!(out, "{prefix}{:<10} {}{notes}", step.kind_name(), step.name);
        let last_line = prefix.rsplit('\n').next().unwrap_or(prefix);
        let indent = " ".repeat(last_line.chars().count() + 11);
        let _ = writeln!(out, "{indent}{}", what(step));
        for undo in &o.undo {
            let when = undo
                .options
                .when
                .as_ref()
                .map(|w| format!("  (when {})", w.source()))
                .unwrap_or_default();
            let _ = writeln!(out, "{indent}{:<10} {}{when}", undo.kind_name(), undo.name);
            let _ = writeln!(out, "{indent}           {}", what(undo));
        }
    };
    for item in &book.steps {
        match item {
            crate::engine::registry::Item::Step(step) => line(step, "  "),
            crate::engine::registry::Item::Parallel { parallel } => {
                for step in parallel {
                    line(step, "  ‖ ");
                }
            }
        }
    }
    for (i, step) in book.on_failure.iter().enumerate() {
        line(step, if i == 0 { "on failure:\n  " } else { "  " });
    }
    out
}

/// One line saying what a step would do: a command as it would run (`$ …`), otherwise its
/// settings. Values print as they do everywhere else, secrets masked.
fn what(step: &crate::engine::registry::StepSpec) -> String {
    use crate::engine::registry::KindSpec;
    match &step.kind {
        KindSpec::Command(spec) => {
            let mut text = format!("$ {}", spec.shown);
            if let Some(dir) = &spec.dir {
                text.push_str(&format!("   (in {})", dir.shown()));
            }
            text
        }
        KindSpec::Manual(prompt) => format!("asks: {}", prompt.shown()),
        KindSpec::Http(spec) => {
            let method = serde_json::to_value(spec.method)
                .ok()
                .and_then(|m| m.as_str().map(str::to_string))
                .unwrap_or_default();
            format!("{method} {}", spec.url.0.shown())
        }
        kind => match serde_json::to_value(kind) {
            Ok(serde_json::Value::Object(map)) => map
                .into_iter()
                .map(|(_, mut settings)| {
                    prune(&mut settings);
                    settings.to_string()
                })
                .collect::<Vec<_>>()
                .join(" "),
            Ok(other) => other.to_string(),
            Err(e) => format!("(cannot show: {e})"),
        },
    }
}

/// Leave out settings that say nothing (null, false, empty).
fn prune(value: &mut serde_json::Value) {
    if let serde_json::Value::Object(map) = value {
        map.retain(|_, v| {
            prune(v);
            !matches!(v, serde_json::Value::Null | serde_json::Value::Bool(false))
                && v.as_object().is_none_or(|o| !o.is_empty())
                && v.as_array().is_none_or(|a| !a.is_empty())
        });
    }
}
