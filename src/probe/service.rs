//! `service`: a systemd unit is active (`systemctl is-active`, seed 004's
//! `systemctl status`). Without systemd the step is `unknown` and says why.

use super::{Env, Probe};
use crate::model::{BoxFuture, Data, Outcome, Status};
use crate::values::Text;
use serde::{Deserialize, Serialize};
use std::process::Stdio;

#[derive(Clone, Debug, Serialize)]
pub struct ServiceSpec {
    pub unit: Text,
    /// A user unit (`systemctl --user`).
    pub user: bool,
}

impl<'de> Deserialize<'de> for ServiceSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Map {
            unit: Text,
            #[serde(default)]
            user: bool,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Unit(Text),
            Map(Map),
        }
        match Raw::deserialize(deserializer) {
            Ok(Raw::Unit(unit)) => Ok(ServiceSpec { unit, user: false }),
            Ok(Raw::Map(Map { unit, user })) => Ok(ServiceSpec { unit, user }),
            Err(_) => Err(serde::de::Error::custom(
                "write a unit name, e.g. `service: nginx` or `service: { unit: nginx, user: false }`",
            )),
        }
    }
}

pub struct ServiceCheck {
    pub spec: ServiceSpec,
}

impl Probe for ServiceCheck {
    fn kind(&self) -> &'static str {
        "service"
    }

    fn run<'a>(&'a self, _ctx: &'a Env) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let unit = self.spec.unit.as_str();
            let shown = self.spec.unit.shown();
            let mut command = std::process::Command::new("systemctl");
            if self.spec.user {
                command.arg("--user");
            }
            command.args(["is-active", "--", unit]).stdin(Stdio::null());
            let ran = tokio::task::spawn_blocking(move || {
                crate::process::Run::new(command, "systemctl")
                    .timeout(std::time::Duration::from_secs(10))
                    .run()
            })
            .await;
            let output = match ran {
                Ok(Ok(output)) if output.timed_out => {
                    return Outcome::unknown("systemctl did not answer within 10s");
                }
                Ok(Ok(output)) => output,
                Ok(Err(crate::process::Error::Spawn { error, .. }))
                    if error.kind() == std::io::ErrorKind::NotFound =>
                {
                    return Outcome::unknown("systemctl not found: service steps need systemd");
                }
                Ok(Err(
                    crate::process::Error::Spawn { error, .. }
                    | crate::process::Error::Wait { error, .. },
                )) => {
                    return Outcome::unknown(format!("cannot run systemctl: {error}"));
                }
                Err(e) => return Outcome::unknown(format!("cannot run systemctl: {e}")),
            };
            let state = String::from_utf8_lossy(&output.stdout).trim().to_string();
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
            let data = Data::Service {
                unit: shown.to_string(),
                state: state.clone(),
            };
            if output.status.success() {
                return Outcome::new(Status::Ok, format!("{shown} is {state}"), data);
            }
            if state.is_empty()
                || state == "offline"
                || stderr.contains("not been booted with systemd")
            {
                let why = if stderr.is_empty() { state } else { stderr };
                return Outcome::new(
                    Status::Unknown,
                    format!("cannot ask systemd about {shown}: {why}"),
                    data,
                );
            }
            Outcome::new(
                Status::Critical,
                format!("{shown} is {state}, expected active"),
                data,
            )
        })
    }
}
