//! `opsbook completions SHELL` and `opsbook man`.

use super::Cli;
use crate::printer::Printer;
use clap::{Args, CommandFactory};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell
    pub shell: clap_complete::Shell,
}

pub fn exec_completions(args: &CompletionsArgs, printer: &Printer) -> anyhow::Result<u8> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "opsbook", &mut out);
    printer.data(&String::from_utf8_lossy(&out));
    Ok(0)
}

pub fn exec_man(printer: &Printer) -> anyhow::Result<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    printer.data(&String::from_utf8_lossy(&out));
    Ok(0)
}
