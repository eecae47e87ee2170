//! `manual`: a prompt for a person. Confirmed interactively on a terminal, confirmed by
//! `--yes`, and `unknown` — never a silent pass — when nobody can answer.

use crate::engine::{Check, Context, Interaction};
use crate::model::{BoxFuture, Data, Outcome, Status};
use crate::values::Text;
use std::io::{BufRead, Write};

pub struct ManualCheck {
    pub prompt: Text,
}

impl Check for ManualCheck {
    fn kind(&self) -> &'static str {
        "manual"
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Outcome> {
        let prompt = self.prompt.shown().to_string();
        let interaction = ctx.interaction;
        Box::pin(async move {
            match interaction {
                Interaction::Yes => Outcome::new(
                    Status::Ok,
                    format!("{prompt}: confirmed by --yes"),
                    Data::None,
                ),
                Interaction::Todo => {
                    Outcome::new(Status::Skipped, format!("to do: {prompt}"), Data::None)
                }
                Interaction::None => Outcome::unknown(format!(
                    "{prompt}: needs a person (no terminal to ask on; run with --yes to confirm)"
                )),
                Interaction::Ask => tokio::task::spawn_blocking(move || ask(&prompt))
                    .await
                    .unwrap_or_else(|_| Outcome::unknown("the prompt crashed")),
            }
        })
    }
}

/// One prompt at a time, even from a parallel group.
fn ask(prompt: &str) -> Outcome {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "? {prompt} [y/N] ");
    let _ = stderr.flush();
    let mut answer = String::new();
    match std::io::stdin().lock().read_line(&mut answer) {
        Ok(0) | Err(_) => Outcome::unknown(format!("{prompt}: no answer")),
        Ok(_) if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") => {
            Outcome::new(Status::Ok, format!("{prompt}: confirmed"), Data::None)
        }
        Ok(_) => Outcome::new(
            Status::Critical,
            format!("{prompt}: not confirmed"),
            Data::None,
        ),
    }
}
