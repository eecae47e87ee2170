//! `cpu`: CPU busy time over a short sample, against percent thresholds.

use super::threshold::{Levels, grade, note};
use super::{BoxFuture, Check, Context, Data, Outcome, round};
use std::time::Duration;

pub struct CpuCheck {
    pub levels: Levels,
    pub sample: Duration,
}

impl Check for CpuCheck {
    fn kind(&self) -> &'static str {
        "cpu"
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            // Sampling sleeps; keep it off the runtime so probes run meanwhile.
            let resources = ctx.resources.clone();
            let sample = self.sample;
            let reading = match tokio::task::spawn_blocking(move || resources.cpu(sample)).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return Outcome::unknown(e),
                Err(e) => return Outcome::unknown(format!("cpu sampling failed: {e}")),
            };
            let used = round(reading.percent, 1);
            let (status, crossed) = grade(used, self.levels, "%");
            let message = format!(
                "cpu {used}% busy{} over {} ms, {} CPUs",
                note(crossed),
                sample.as_millis(),
                reading.count,
            );
            let data = Data::Cpu {
                percent_used: used,
                cpu_count: reading.count,
            };
            Outcome::new(status, message, data)
        })
    }
}
