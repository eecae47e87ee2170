//! `opsbook completions SHELL` and `opsbook man [--dir DIR]`.

use crate::cli::printer::Printer;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write opsbook.1 and one page per command (opsbook-health.1,
    /// opsbook-incident-declare.1, …) into DIR instead of printing opsbook.1
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn exec_completions(args: &CompletionsArgs, printer: &Printer) -> anyhow::Result<u8> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut super::command(), "opsbook", &mut out);
    printer.data(&String::from_utf8_lossy(&out));
    Ok(0)
}

pub fn exec_man(args: &ManArgs, printer: &Printer) -> anyhow::Result<u8> {
    let Some(dir) = &args.dir else {
        let mut out = Vec::new();
        clap_mangen::Man::new(super::command()).render(&mut out)?;
        printer.data(&String::from_utf8_lossy(&out));
        return Ok(0);
    };
    let pages = pages()?;
    for (name, page) in &pages {
        crate::fsutil::write_atomically(&dir.join(name), page).map_err(anyhow::Error::msg)?;
    }
    printer.human(&format!(
        "{} in {}\n",
        crate::plural::count(pages.len(), "man page", "man pages"),
        dir.display()
    ));
    Ok(0)
}

/// Every page, rendered before anything is written: `opsbook.1` and one per command and
/// subcommand, named as the pages' SUBCOMMANDS sections refer to them (`opsbook-health(1)`).
fn pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    fn walk(cmd: clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub.clone(), pages)?;
        }
        let man = clap_mangen::Man::new(cmd);
        let name = man.get_filename();
        let mut page = Vec::new();
        man.render(&mut page)?;
        pages.push((name, page));
        Ok(())
    }
    let mut cmd = super::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    walk(cmd, &mut pages)?;
    Ok(pages)
}
