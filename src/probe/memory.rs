//! `memory`: RAM in use (total minus available) against percent thresholds.

use super::threshold::{Levels, grade, note};
use super::{Env, Probe};
use crate::model::{BoxFuture, Data, Outcome, gb, percent};

pub struct MemoryCheck {
    pub levels: Levels,
}

impl Probe for MemoryCheck {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn run<'a>(&'a self, ctx: &'a Env) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let reading = match ctx.resources.memory() {
                Ok(r) if r.total > 0 => r,
                Ok(_) => return Outcome::unknown("memory total reads as 0"),
                Err(e) => return Outcome::unknown(e.to_string()),
            };
            let used = percent(
                reading.total.saturating_sub(reading.available),
                reading.total,
            );
            let (status, crossed) = grade(used, self.levels, "%");
            let data = Data::Memory {
                percent_used: used,
                total_gb: gb(reading.total),
                available_gb: gb(reading.available),
            };
            let message = format!(
                "memory {used}% used{}, {:.2} of {:.2} GB available",
                note(crossed),
                gb(reading.available),
                gb(reading.total),
            );
            Outcome::new(status, message, data)
        })
    }
}
