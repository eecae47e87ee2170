//! `opsbook logs rotate|archive|search|tail|summary`: arguments, one library call each
//! (the set actions are `logs::rotate_set` and `logs::archive_set`), and what is printed.

use super::{Session, check_context};
use crate::logs::rotate::Outcome;
use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Rotate the log sets that are due (exit 0 done, 1 failed, 75 locked)
    Rotate(RotateArgs),
    /// Put rotated files older than `archive_after` into one verified archive per set, then delete them
    Archive(ArchiveArgs),
    /// Lines matching PATTERN in files or log sets, oldest first (.gz and .zst too)
    Search(SearchArgs),
    /// The last lines of a log; with -f, new lines as they come, across rotations
    Tail(TailArgs),
    /// Levels, top errors (normalized), slow operations, latency percentiles, errors per hour
    Summary(SummaryArgs),
}

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// Sets to archive (default: every set with `archive_after`)
    pub sets: Vec<String>,
    /// Archive files older than this instead of the set's `archive_after`
    #[arg(long, value_name = "DUR", value_parser = super::duration_arg)]
    pub older_than: Option<std::time::Duration>,
    /// List what would be archived and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Where to read: files, or log sets (default: every set, rotated files included).
#[derive(Debug, Args)]
pub struct Sources {
    /// Files to read (plain, .gz or .zst)
    pub paths: Vec<std::path::PathBuf>,
    /// Read this log set's files, rotated ones included (repeatable)
    #[arg(long = "set", value_name = "NAME")]
    pub sets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Text to find (a regex with --regex)
    pub pattern: String,
    #[command(flatten)]
    pub sources: Sources,
    /// PATTERN is a regular expression
    #[arg(short = 'E', long)]
    pub regex: bool,
    /// Only lines at this level or above (DEBUG, INFO, WARNING, ERROR, CRITICAL)
    #[arg(long, value_name = "LEVEL", value_parser = crate::values::Level::parse)]
    pub level: Option<crate::values::Level>,
    /// Only lines from this far back (24h, 30m)
    #[arg(long, value_name = "DUR", value_parser = super::duration_arg)]
    pub since: Option<std::time::Duration>,
    /// Only lines older than this (1h: up to an hour ago)
    #[arg(long, value_name = "DUR", value_parser = super::duration_arg)]
    pub until: Option<std::time::Duration>,
    /// Lines of context around each match
    #[arg(short = 'C', long, value_name = "N", default_value_t = 0)]
    pub context: usize,
    /// Print only the number of matching lines
    #[arg(short = 'c', long)]
    pub count: bool,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// The log file
    pub path: std::path::PathBuf,
    /// Keep following (across rotations) until Ctrl-C
    #[arg(short, long)]
    pub follow: bool,
    /// Lines to show first
    #[arg(short = 'n', long, value_name = "N", default_value_t = 10)]
    pub lines: usize,
    /// Only lines at this level or above
    #[arg(long, value_name = "LEVEL", value_parser = crate::values::Level::parse)]
    pub level: Option<crate::values::Level>,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    #[command(flatten)]
    pub sources: Sources,
    /// How many distinct error messages to show
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// Operations slower than this count as slow
    #[arg(long, value_name = "DUR", value_parser = super::duration_arg, default_value = "1s")]
    pub slow: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Sets to rotate (default: every set in config)
    pub sets: Vec<String>,
    /// Print every rename, compression and deletion, and do none
    #[arg(long)]
    pub dry_run: bool,
    /// Rotate even if no trigger is due
    #[arg(long)]
    pub force: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ActionFormat {
    Text,
    Json,
}

pub fn exec(command: &LogsCommand, session: &Session) -> anyhow::Result<u8> {
    match command {
        LogsCommand::Rotate(args) => rotate(args, session),
        LogsCommand::Archive(args) => archive(args, session),
        LogsCommand::Search(args) => search(args, session),
        LogsCommand::Summary(args) => summary(args, session),
        LogsCommand::Tail(args) => tail(args, session),
    }
}

fn archive(args: &ArchiveArgs, session: &Session) -> anyhow::Result<u8> {
    use crate::logs::Archived;
    let config = &session.loaded.config;
    // Default: the sets that say when to archive (or all, with --older-than).
    let chosen: Vec<_> = super::pick_sets(&args.sets, &config.logs.sets, "logs.sets")?
        .into_iter()
        .filter(|(_, set)| {
            !args.sets.is_empty() || set.archive_after.is_some() || args.older_than.is_some()
        })
        .collect();
    if chosen.is_empty() {
        return Err(crate::Error::Usage(
            "no set to archive: give `archive_after` to a set, or --older-than".to_string(),
        )
        .into());
    }
    let now = check_context()?.clock.now();
    let state_dir = config.state_dir();
    let mut failed = false;
    for (name, set) in chosen {
        let older_than = crate::logs::archive_age(name, set, args.older_than, "--older-than")?;
        let age = humantime::format_duration(older_than);
        match crate::logs::archive_set(name, set, &state_dir, older_than, now, args.dry_run) {
            Ok(Archived::Nothing) => session
                .printer
                .human(&format!("{name}: nothing older than {age}\n")),
            Ok(Archived::Would(files)) => session.printer.human(&would_archive(name, &files, &age)),
            Ok(Archived::Done(outcome)) => {
                if let Some(archive) = &outcome.archive {
                    session.printer.human(&format!(
                        "{name}: archived {} ({}) into {archive}, verified; originals deleted\n",
                        crate::plural::count(outcome.files.len(), "file", "files"),
                        crate::plural::count(outcome.bytes, "byte", "bytes")
                    ));
                }
                for error in &outcome.errors {
                    session.printer.error(&format!("log set {name}: {error}"));
                }
                failed |= !outcome.errors.is_empty();
            }
            // Another run holding the set stops the whole command (exit 75).
            Err(e @ crate::logs::Error::Lock(_)) => return Err(e.into()),
            Err(e) => {
                session.printer.error(&format!("log set {name}: {e}"));
                failed = true;
            }
        }
    }
    Ok(u8::from(failed))
}

/// A dry run's listing: each file that would go, then how many.
fn would_archive(
    name: &str,
    files: &[std::path::PathBuf],
    age: &humantime::FormattedDuration,
) -> String {
    let mut out = String::new();
    for file in files {
        out.push_str(&format!("{name}: would archive {}\n", file.display()));
    }
    out.push_str(&format!(
        "{name}: would archive {} older than {age}\n",
        crate::plural::count(files.len(), "file", "files")
    ));
    out
}

/// The files to read, oldest first, each with its line format.
fn files(sources: &Sources, session: &Session) -> anyhow::Result<Vec<crate::logs::search::Input>> {
    let sets = &session.loaded.config.logs.sets;
    Ok(crate::logs::search::inputs(
        sets,
        &sources.paths,
        &sources.sets,
    )?)
}

fn search(args: &SearchArgs, session: &Session) -> anyhow::Result<u8> {
    let files = files(&args.sources, session)?;
    let now = check_context()?.clock.now();
    let ago = |d: std::time::Duration| {
        jiff::SignedDuration::try_from(d)
            .ok()
            .and_then(|d| now.checked_sub(d).ok())
    };
    let (since, until) = (args.since.and_then(ago), args.until.and_then(ago));
    let fast =
        args.count && !args.regex && args.level.is_none() && since.is_none() && until.is_none();
    // (`count_literal` reads bytes only, so a set's line format does not matter to it.)
    let (count, warnings) = if fast {
        let paths: Vec<std::path::PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
        crate::logs::search::count_literal(&paths, &args.pattern)
    } else {
        let query = crate::logs::search::Query {
            matcher: crate::logs::search::Matcher::new(&args.pattern, args.regex)?,
            level: args.level,
            since,
            until,
            context: if args.count { 0 } else { args.context },
        };
        print_matches(&files, &query, args.count, session)
    };
    for warning in &warnings {
        session.printer.warn(warning);
    }
    if args.count {
        session.printer.data(&format!("{count}\n"));
    }
    // grep's convention: 0 found, 1 none found.
    Ok(u8::from(count == 0))
}

/// Search `files` and print each hit as `file:line:text` (like `grep -Hn`, one file or
/// many), or only count them; the count and the warnings.
fn print_matches(
    files: &[crate::logs::search::Input],
    query: &crate::logs::search::Query,
    count_only: bool,
    session: &Session,
) -> (u64, Vec<String>) {
    use crate::logs::search::MAX_CONTEXT;
    if query.context > MAX_CONTEXT {
        session.printer.warn(&format!(
            "-C {}: showing at most {MAX_CONTEXT} lines of context around each match",
            query.context
        ));
    }
    let mut out = String::new();
    let result = crate::logs::search::search(files, query, &mut |hit| {
        if count_only {
            return;
        }
        if hit.gap {
            out.push_str("--\n");
        }
        let mark = if hit.is_match { ':' } else { '-' };
        out.push_str(&format!(
            "{}{mark}{}{mark}{}\n",
            hit.file.display(),
            hit.number,
            hit.text
        ));
        if out.len() > 1 << 16 {
            session.printer.data(&out);
            out.clear();
        }
    });
    session.printer.data(&out);
    result
}

fn tail(args: &TailArgs, session: &Session) -> anyhow::Result<u8> {
    use crate::logs::tail::{follow, last_lines};
    let level = args.level;
    if args.path.is_dir() {
        return Err(crate::Error::Usage(format!(
            "{} is a directory: name the log file",
            args.path.display()
        ))
        .into());
    }
    let (first, position) = last_lines(&args.path, args.lines, level)?;
    let mut out = String::new();
    for line in first {
        out.push_str(&line);
        out.push('\n');
    }
    session.printer.data(&out);
    if !args.follow {
        return Ok(0);
    }
    let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [libc::SIGINT, libc::SIGTERM] {
        signal_hook_flag(signal, &stopped);
    }
    follow(
        &args.path,
        position,
        level,
        &mut |line| session.printer.data(&format!("{line}\n")),
        &|| stopped.load(std::sync::atomic::Ordering::Relaxed),
    )?;
    Ok(0)
}

/// Set `flag` when `signal` arrives (through tokio's signal-hook registry, already a
/// dependency): the follow loop checks it between polls and ends cleanly.
fn signal_hook_flag(signal: i32, flag: &std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let flag = std::sync::Arc::clone(flag);
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    let _ = unsafe {
        signal_hook_registry::register(signal, move || {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        })
    };
}

fn summary(args: &SummaryArgs, session: &Session) -> anyhow::Result<u8> {
    let format = session.format(ActionFormat::Text)?;
    let files = files(&args.sources, session)?;
    let summary =
        crate::logs::summary::summarize(&files, args.top, args.slow.as_secs_f64() * 1000.0);
    for warning in &summary.warnings {
        session.printer.warn(warning);
    }
    match format {
        ActionFormat::Json => {
            let json = serde_json::to_string_pretty(&summary).unwrap_or_default();
            session.printer.data(&format!("{json}\n"));
        }
        ActionFormat::Text => session.printer.data(&render_summary(&summary)),
    }
    Ok(0)
}

fn render_summary(s: &crate::logs::summary::Summary) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let levels: Vec<String> = s.levels.iter().map(|(l, n)| format!("{l} {n}")).collect();
    let _ = writeln!(
        out,
        "{} in {}: {}",
        crate::plural::count(s.lines, "line", "lines"),
        crate::plural::count(s.files, "file", "files"),
        levels.join(", ")
    );
    if !s.top_errors.is_empty() {
        let _ = writeln!(out, "\ntop errors:");
        for e in &s.top_errors {
            let _ = writeln!(out, "{:>8}  {}", e.count, e.text);
        }
    }
    if !s.slow.is_empty() {
        let _ = writeln!(out, "\nslow operations (> {} ms):", s.slow_threshold_ms);
        for e in &s.slow {
            let _ = writeln!(out, "{:>8}  {}", e.count, e.text);
        }
    }
    if !s.operations.is_empty() {
        let width = s
            .operations
            .iter()
            .map(|o| o.operation.len())
            .max()
            .unwrap_or(9)
            .max(9);
        let _ = writeln!(
            out,
            "\n{:<width$}  {:>8}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}",
            "operation", "count", "mean ms", "p50", "p95", "p99", "max"
        );
        for o in &s.operations {
            let _ = writeln!(
                out,
                "{:<width$}  {:>8}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}",
                o.operation, o.count, o.mean_ms, o.p50_ms, o.p95_ms, o.p99_ms, o.max_ms
            );
        }
    }
    if !s.errors_per_hour.is_empty() {
        let _ = writeln!(out, "\nerrors per hour:");
        for (hour, n) in &s.errors_per_hour {
            let _ = writeln!(out, "{hour}  {n:>8}");
        }
    }
    out
}

fn rotate(args: &RotateArgs, session: &Session) -> anyhow::Result<u8> {
    let format = session.format(ActionFormat::Text)?;
    let config = &session.loaded.config;
    let chosen = super::pick_sets(&args.sets, &config.logs.sets, "logs.sets")?;
    let state_dir = config.state_dir();
    let now = check_context()?.clock.now();
    let options = crate::logs::RotateOptions {
        dry_run: args.dry_run,
        force: args.force,
    };
    let mut results = serde_json::Map::new();
    let mut failed = false;
    for (name, set) in chosen {
        let outcome = crate::logs::rotate_set(name, set, &state_dir, now, options)?;
        failed |= !outcome.errors.is_empty();
        if format == ActionFormat::Text {
            session
                .printer
                .human(&describe(name, &outcome, args.dry_run));
        }
        for error in &outcome.errors {
            session.printer.error(&format!("log set {name}: {error}"));
        }
        results.insert(
            name.to_string(),
            serde_json::to_value(&outcome).unwrap_or_default(),
        );
    }
    if format == ActionFormat::Json {
        let json = serde_json::json!({"dry_run": args.dry_run, "sets": results});
        session.printer.data(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        ));
    }
    Ok(u8::from(failed))
}

fn describe(name: &str, outcome: &Outcome, dry_run: bool) -> String {
    let mut out = String::new();
    let verb = if dry_run { "would " } else { "" };
    for action in &outcome.actions {
        out.push_str(&format!("{name}: {verb}{action}\n"));
    }
    out.push_str(&format!(
        "{name}: {} {}{}\n",
        if dry_run { "would rotate" } else { "rotated" },
        crate::plural::count(outcome.rotated, "file", "files"),
        if outcome.errors.is_empty() {
            String::new()
        } else {
            format!(
                ", {}",
                crate::plural::count(outcome.errors.len(), "error", "errors")
            )
        }
    ));
    out
}
