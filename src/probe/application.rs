//! `application`: seed 000's "Application is running" entry, for opsbook itself.

use super::{Env, Probe};
use crate::model::{BoxFuture, Data, Outcome, Status};

pub struct ApplicationCheck;

impl Probe for ApplicationCheck {
    fn kind(&self) -> &'static str {
        "application"
    }

    fn run<'a>(&'a self, _ctx: &'a Env) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let version = env!("CARGO_PKG_VERSION");
            let pid = std::process::id();
            Outcome::new(
                Status::Ok,
                format!("Application is running (opsbook {version}, pid {pid})"),
                Data::Application { version, pid },
            )
        })
    }
}
