//! `swap`: swap in use. Reported always, graded only when levels are configured.

use super::threshold::{Levels, grade, note};
use super::{Env, Probe};
use crate::model::{BoxFuture, Data, Outcome, Status, gb, percent};

pub struct SwapCheck {
    pub levels: Levels,
}

impl Probe for SwapCheck {
    fn kind(&self) -> &'static str {
        "swap"
    }

    fn run<'a>(&'a self, ctx: &'a Env) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let reading = match ctx.resources.memory() {
                Ok(r) => r,
                Err(e) => return Outcome::unknown(e.to_string()),
            };
            let free = reading.swap_total.saturating_sub(reading.swap_used);
            let data = Data::Swap {
                percent_used: percent(reading.swap_used, reading.swap_total),
                total_gb: gb(reading.swap_total),
                free_gb: gb(free),
            };
            if reading.swap_total == 0 {
                return Outcome::new(Status::Ok, "no swap configured", data);
            }
            let used = percent(reading.swap_used, reading.swap_total);
            let (status, crossed) = grade(used, self.levels, "%");
            let message = format!(
                "swap {used}% used{}, {:.2} of {:.2} GB free",
                note(crossed),
                gb(free),
                gb(reading.swap_total),
            );
            Outcome::new(status, message, data)
        })
    }
}
