//! The one printer: everything a person or a pipe reads goes through here. It knows
//! whether stdout is a terminal, whether colour is wanted (`--no-color`, `NO_COLOR`,
//! `TERM=dumb`), `--quiet`, and it masks secrets on the way out. A closed pipe
//! (`opsbook … | head`) is not an error.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use crate::redact;
use crate::report::Style;
use std::io::{IsTerminal, Write};

#[derive(Clone, Copy, Debug)]
pub struct Printer {
    quiet: bool,
    color_out: bool,
    color_err: bool,
}

impl Printer {
    pub fn new(no_color: bool, quiet: bool) -> Self {
        let allowed = !no_color
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
        Printer {
            quiet,
            color_out: allowed && std::io::stdout().is_terminal(),
            color_err: allowed && std::io::stderr().is_terminal(),
        }
    }

    /// How reports should be styled for stdout.
    pub fn style(&self) -> Style {
        Style {
            color: self.color_out,
        }
    }

    /// Output that was asked for (a report in a machine format, a config dump,
    /// completions): printed even under `--quiet`.
    pub fn data(&self, text: &str) {
        let written = write_masked(&mut std::io::stdout().lock(), text);
        if let Err(e) = written {
            // `| head` going away is fine; a full disk or a failing device under
            // `> report.md` is not, and the command must not say it succeeded.
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                let _ = STDOUT_FAILED.set(e.to_string());
            }
        }
    }

    /// Output for a person reading a terminal: suppressed by `--quiet`.
    pub fn human(&self, text: &str) {
        if !self.quiet {
            self.data(text);
        }
    }

    /// A progress line for a person (retrying, listening on…): stderr, so stdout stays
    /// the report; suppressed by `--quiet`.
    pub fn progress(&self, message: &str) {
        if !self.quiet {
            let _ = write_masked(&mut std::io::stderr().lock(), &format!("{message}\n"));
        }
    }

    /// A progress bar of `total` bytes with rate and ETA, on stderr when it is a terminal
    /// (never under cron, in a pipe, or with `--quiet`).
    /// `total` is only asked for when the bar is shown.
    pub fn bytes_bar(
        &self,
        total: impl FnOnce() -> u64,
        what: &str,
    ) -> Option<indicatif::ProgressBar> {
        if self.quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = indicatif::ProgressBar::new(total());
        let style = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .map(|s| s.progress_chars("=> "));
        if let Ok(style) = style {
            bar.set_style(style);
        }
        bar.set_message(what.to_string());
        Some(bar)
    }

    /// Whether stdout is a terminal a report can be redrawn on.
    pub fn redraws(&self) -> bool {
        std::io::stdout().is_terminal()
    }

    pub fn warn(&self, message: &str) {
        self.diagnostic("warning", anstyle::AnsiColor::Yellow, message);
    }

    pub fn error(&self, message: &str) {
        self.diagnostic("error", anstyle::AnsiColor::Red, message);
    }

    fn diagnostic(&self, label: &str, color: anstyle::AnsiColor, message: &str) {
        let label = if self.color_err {
            let style = anstyle::Style::new().fg_color(Some(color.into())).bold();
            format!("{style}{label}{style:#}")
        } else {
            label.to_string()
        };
        // Nothing can be done about a failing stderr.
        let _ = write_masked(
            &mut std::io::stderr().lock(),
            &format!("{label}: {message}\n"),
        );
    }
}

/// The first error writing stdout (other than a reader going away), if any.
static STDOUT_FAILED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Why stdout could not be written (a full disk under `> file`), if it could not: the
/// command then fails, whatever it did otherwise.
pub fn stdout_failure() -> Option<&'static str> {
    STDOUT_FAILED.get().map(String::as_str)
}

fn write_masked(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    let masked = redact::mask(text);
    out.write_all(masked.as_bytes()).and_then(|()| out.flush())
}

/// For text that is already formatted as a whole diagnostic (clap's usage errors).
pub fn write_stderr(text: &str) {
    let _ = write_masked(&mut std::io::stderr().lock(), text);
}
