//! `health:` in the config: resource thresholds, the disks to check, the endpoints to
//! probe (and how `--watch`/`--serve` grade each) and how `health --serve` caches. Health owns its section; the root settings
//! struct only holds it.

use crate::engine::registry::StepSpec;
use crate::values::{Duration, Text, Threshold};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    pub thresholds: Thresholds,
    /// Paths whose filesystems are checked; the first is `checks.disk`, the rest `disk:<path>`.
    pub disks: Vec<Text>,
    /// How long CPU usage is sampled.
    pub cpu_sample: Duration,
    /// Services to probe, each a runbook step (`http`, `tcp`), all run concurrently.
    pub endpoints: Endpoints,
    /// How many endpoint probes run at once (`--concurrency`).
    pub concurrency: usize,
    /// How long `health --serve` reuses a result before running the checks again.
    pub serve_cache: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            thresholds: Thresholds::default(),
            disks: vec![Text::plain("/")],
            cpu_sample: Duration(std::time::Duration::from_millis(250)),
            endpoints: Endpoints::default(),
            concurrency: 64,
            serve_cache: Duration(std::time::Duration::from_secs(5)),
        }
    }
}

/// Resource thresholds in percent (seed 000's defaults).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    pub memory: Threshold<75, 90>,
    pub disk: Threshold<80, 90>,
    pub cpu: Threshold<90, 95>,
    /// Swap is reported but never graded unless levels are set here.
    pub swap: Threshold<100, 100>,
}

/// `health.endpoints`: probes with names unique among themselves and the built-in checks,
/// since names key the JSON report.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(transparent)]
pub struct Endpoints(pub Vec<Endpoint>);

/// One endpoint: a step (a `name` and one kind) and how `--watch`/`--serve` grade it.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub step: StepSpec,
    pub grading: GradingSpec,
}

/// `interval`, `failure_threshold` and `success_threshold` as written on an endpoint
/// (only `--watch` and `--serve` read them; a single `health` run probes every endpoint
/// once).
#[derive(Clone, Debug, Default, Serialize)]
pub struct GradingSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<Streak>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<Streak>,
}

/// How often an endpoint is probed: a duration of more than zero.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(transparent)]
pub struct Interval(pub Duration);

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let duration = Duration::deserialize(deserializer)?;
        if duration.0.is_zero() {
            return Err(serde::de::Error::custom(
                "`interval` must be more than zero (write e.g. 30s, 1m)",
            ));
        }
        Ok(Interval(duration))
    }
}

/// How many readings in a row make a change count: a whole number from 1 to 1000.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Streak(pub u32);

/// The longest streak a threshold may ask for (a thousand readings at 1s is 17 minutes).
const MAX_STREAK: u32 = 1000;

impl<'de> Deserialize<'de> for Streak {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = crate::values::whole::<D, u32>(deserializer)?;
        if !(1..=MAX_STREAK).contains(&n) {
            return Err(serde::de::Error::custom(format!(
                "a threshold of {n} readings in a row: give 1 to {MAX_STREAK}"
            )));
        }
        Ok(Streak(n))
    }
}

impl Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown<'a> {
            #[serde(flatten)]
            step: &'a StepSpec,
            #[serde(flatten)]
            grading: &'a GradingSpec,
        }
        Shown {
            step: &self.step,
            grading: &self.grading,
        }
        .serialize(serializer)
    }
}

/// The grading keys are taken out as the mapping streams past, each parsed in place (so
/// its errors keep their line and column); every other key goes on to the step's parser.
impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Endpoint;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an endpoint: a `name`, exactly one kind, and optionally `interval`, `failure_threshold`, `success_threshold`")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Endpoint, A::Error> {
                let mut split = Split {
                    inner: map,
                    grading: GradingSpec::default(),
                };
                let step = StepSpec::deserialize(serde::de::value::MapAccessDeserializer::new(
                    &mut split,
                ))?;
                Ok(Endpoint {
                    step,
                    grading: split.grading,
                })
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// The keys an endpoint has beyond a step's.
const GRADING_KEYS: [&str; 3] = ["interval", "failure_threshold", "success_threshold"];

/// A mapping with the grading keys read out of it.
struct Split<A> {
    inner: A,
    grading: GradingSpec,
}

impl<'de, A: serde::de::MapAccess<'de>> Split<A> {
    /// The step parser's "unknown field …, expected one of …" lists the grading keys too
    /// (so a misspelling of one gets its did-you-mean), raised as the key's value is read
    /// so that the error keeps the key's line.
    fn unknown(&mut self, e: A::Error) -> A::Error {
        let message = e.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message);
        if !message.starts_with("unknown field") {
            return e;
        }
        let message = format!("{message}, {}", GRADING_KEYS.join(", "));
        self.inner
            .next_value_seed(Refuse(message))
            .err()
            .unwrap_or(e)
    }
}

/// A value that is refused with a message, whatever it is.
struct Refuse(String);

impl<'de> serde::de::DeserializeSeed<'de> for Refuse {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, _: D) -> Result<(), D::Error> {
        Err(serde::de::Error::custom(self.0))
    }
}

impl<'de, A: serde::de::MapAccess<'de>> serde::de::MapAccess<'de> for Split<A> {
    type Error = A::Error;

    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            let Some(key) = self.inner.next_key::<String>()? else {
                return Ok(None);
            };
            match key.as_str() {
                "interval" => self.grading.interval = Some(self.inner.next_value()?),
                "failure_threshold" => {
                    self.grading.failure_threshold = Some(self.inner.next_value()?)
                }
                "success_threshold" => {
                    self.grading.success_threshold = Some(self.inner.next_value()?)
                }
                _ => {
                    use serde::de::IntoDeserializer;
                    return match seed.deserialize(key.into_deserializer()) {
                        Ok(key) => Ok(Some(key)),
                        Err(e) => Err(self.unknown(e)),
                    };
                }
            }
        }
    }

    fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }
}

/// Names the health report gives its own checks.
pub const BUILT_IN_CHECKS: [&str; 6] = ["application", "memory", "swap", "disk", "cpu", "load"];

impl<'de> Deserialize<'de> for Endpoints {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let endpoints = Vec::<Endpoint>::deserialize(deserializer)?;
        let mut seen = std::collections::HashSet::new();
        for endpoint in &endpoints {
            let endpoint = &endpoint.step;
            let name = endpoint.name.as_str();
            if BUILT_IN_CHECKS.contains(&name) || name.starts_with("disk:") {
                return Err(serde::de::Error::custom(format!(
                    "endpoint name {name:?} is a built-in check's name: choose another"
                )));
            }
            if !endpoint.kind.in_health() {
                return Err(serde::de::Error::custom(format!(
                    "endpoint {name:?}: `{}` steps belong in runbooks, not in health.endpoints",
                    endpoint.kind_name()
                )));
            }
            if !seen.insert(name) {
                return Err(serde::de::Error::custom(format!(
                    "endpoint name {name:?} is used twice: names must be unique"
                )));
            }
        }
        Ok(Endpoints(endpoints))
    }
}

impl std::ops::Deref for Endpoints {
    type Target = [Endpoint];

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}
