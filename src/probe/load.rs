//! `load`: the 1/5/15-minute load averages beside the CPU count. Informational: load
//! alone does not say a machine is unhealthy, so it is never graded.

use super::{Env, Probe};
use crate::model::{BoxFuture, Data, Outcome, Status, round};

pub struct LoadCheck;

impl Probe for LoadCheck {
    fn kind(&self) -> &'static str {
        "load"
    }

    fn run<'a>(&'a self, ctx: &'a Env) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let reading = match ctx.resources.load() {
                Ok(r) => r,
                Err(e) => return Outcome::unknown(e.to_string()),
            };
            let cpu_count = std::thread::available_parallelism().map_or(1, |n| n.get());
            let message = format!(
                "load {:.2} {:.2} {:.2} on {cpu_count} CPUs",
                reading.one, reading.five, reading.fifteen
            );
            let data = Data::Load {
                load1: round(reading.one, 2),
                load5: round(reading.five, 2),
                load15: round(reading.fifteen, 2),
                cpu_count,
            };
            Outcome::new(Status::Ok, message, data)
        })
    }
}
