//! The step schema shared by `health.endpoints` and runbooks (a `name`, exactly one kind,
//! and the run options) and **the one registry of step kinds**: the `registry!` list at
//! the bottom. Adding a kind is one new file (its spec and its `Check`) plus one line
//! there; the parser, the "exactly one of" messages, `is_reading`, the builder and the
//! JSON Schema all come from that line.

use crate::engine::condition::Condition;
use crate::engine::steps::archive::{ArchiveCheck, ArchiveSpec};
use crate::engine::steps::backup::{BackupCheck, BackupSpec};
use crate::engine::steps::manual::ManualCheck;
use crate::engine::steps::prune::{PruneCheck, PruneSpec};
use crate::engine::steps::rotate::{RotateCheck, RotateSpec};
use crate::engine::steps::verify::{VerifyCheck, VerifySpec};
use crate::engine::{Check, Step};
use crate::probe::command::{CommandCheck, CommandSpec};
use crate::probe::cpu::CpuSpec;
use crate::probe::disk::DiskSpec;
use crate::probe::dns::{DnsCheck, DnsSpec};
use crate::probe::env::{EnvCheck, EnvSpec};
use crate::probe::file::{FileCheck, FileSpec};
use crate::probe::http::{HttpCheck, HttpSpec};
use crate::probe::log_errors::{LogErrorsCheck, LogErrorsSpec};
use crate::probe::port::{PortCheck, PortSpec};
use crate::probe::process::{ProcessCheck, ProcessSpec};
use crate::probe::service::{ServiceCheck, ServiceSpec};
use crate::probe::tcp::{TcpCheck, TcpSpec};
use crate::probe::threshold::Levels;
use crate::probe::tls_cert::{TlsCertCheck, TlsCertSpec};
use crate::probe::{CpuCheck, DiskCheck, LoadCheck, MemoryCheck, SwapCheck};
use crate::values::{Duration, PercentLevels, Text};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize)]
pub struct StepSpec {
    pub name: String,
    #[serde(flatten)]
    pub kind: KindSpec,
    #[serde(flatten)]
    pub options: StepOptions,
}

/// `load: {}`: informational, nothing to set.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {}

/// How a step runs inside a runbook (ignored by `health`, which runs every endpoint).
#[derive(Clone, Debug, Default, Serialize)]
pub struct StepOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub always: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub continue_on_failure: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// What reverses this step, run (newest first) when a later step fails the run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub undo: Vec<StepSpec>,
}

/// A runbook's list item: a step, or a `parallel:` group of steps.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)] // a few per runbook; boxing would only add noise
pub enum Item {
    Step(StepSpec),
    Parallel { parallel: Vec<StepSpec> },
}

/// `undo:` — one step or a list of steps; a name is optional (`undo: STEP` by default).
struct Undo(Vec<UndoStep>);

/// One undo step as written, its name not yet known.
struct UndoStep {
    name: Option<String>,
    kinds: Vec<KindSpec>,
    options: StepOptions,
}

impl<'de> Deserialize<'de> for UndoStep {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut raw = Raw::deserialize(deserializer)?;
        let refuse = |what: &str| {
            Err(serde::de::Error::custom(format!(
                "an `undo` step cannot have {what}: it runs only when the step it reverses completed and the run failed"
            )))
        };
        if raw.parallel.is_some() {
            return refuse("`parallel`");
        }
        if raw.undo.is_some() {
            return refuse("an `undo` of its own");
        }
        if raw.always || !raw.needs.is_empty() {
            return refuse("`always` or `needs`");
        }
        if raw.include.is_some() {
            return refuse("`include`");
        }
        let name = raw.name.take();
        let (kinds, options, _) = raw.kinds();
        Ok(UndoStep {
            name,
            kinds,
            options,
        })
    }
}

impl<'de> Deserialize<'de> for Undo {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Undo;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a step, or a list of steps, that reverses this one")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Undo, A::Error> {
                let one = UndoStep::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Undo(vec![one]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Undo, A::Error> {
                let mut steps = Vec::new();
                while let Some(step) = seq.next_element::<UndoStep>()? {
                    steps.push(step);
                }
                if steps.is_empty() {
                    return Err(serde::de::Error::custom(
                        "an empty `undo` list: give a step, or leave `undo` out",
                    ));
                }
                Ok(Undo(steps))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Raw {
    fn kinds(mut self) -> (Vec<KindSpec>, StepOptions, Vec<UndoStep>) {
        let kinds = self.take_kinds();
        let undo = self.undo.map_or_else(Vec::new, |u| u.0);
        let options = StepOptions {
            timeout: self.timeout,
            retries: self.retries,
            when: self.when,
            needs: self.needs,
            always: self.always,
            continue_on_failure: self.continue_on_failure,
            tags: self.tags,
            undo: Vec::new(),
        };
        (kinds, options, undo)
    }
}

fn one_kind<E: serde::de::Error>(
    name: Option<String>,
    kinds: Vec<KindSpec>,
    mut options: StepOptions,
    undo: Vec<UndoStep>,
) -> Result<StepSpec, E> {
    let Some(name) = name.filter(|n| !n.trim().is_empty()) else {
        return Err(E::custom("a step needs a `name`"));
    };
    // An undo step's own name, or `undo: <step>` (numbered when there are several).
    let count = undo.len();
    for (i, step) in undo.into_iter().enumerate() {
        let own = step.name.filter(|n| !n.trim().is_empty());
        // Named as reports show it, so names stay unique across steps and undos.
        let undo_name = match own {
            Some(own) if own.starts_with("undo: ") => own,
            Some(own) => format!("undo: {own}"),
            None if count == 1 => format!("undo: {name}"),
            None => format!("undo: {name} ({}/{count})", i + 1),
        };
        let spec = exactly_one(undo_name, step.kinds, step.options)?;
        options.undo.push(spec);
    }
    exactly_one(name, kinds, options)
}

fn exactly_one<E: serde::de::Error>(
    name: String,
    mut kinds: Vec<KindSpec>,
    options: StepOptions,
) -> Result<StepSpec, E> {
    match kinds.len() {
        1 => Ok(StepSpec {
            name,
            kind: kinds.remove(0),
            options,
        }),
        0 => Err(E::custom(format!(
            "step {name:?} has no kind: give exactly one of {}",
            KINDS.join(", ")
        ))),
        _ => Err(E::custom(format!(
            "step {name:?} has more than one kind: give exactly one of {}",
            KINDS.join(", ")
        ))),
    }
}

impl<'de> Deserialize<'de> for StepSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut raw = Raw::deserialize(deserializer)?;
        if raw.parallel.take().is_some() {
            return Err(serde::de::Error::custom(
                "`parallel` groups cannot be nested or named: list the group's steps under `parallel:` at the top level",
            ));
        }
        let name = raw.name.take();
        let (kinds, options, undo) = raw.kinds();
        one_kind(name, kinds, options, undo)
    }
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut raw = Raw::deserialize(deserializer)?;
        if let Some(parallel) = raw.parallel.take() {
            let name = raw.name.take();
            let (kinds, options, undo) = raw.kinds();
            if name.is_some() || !kinds.is_empty() || options.timeout.is_some() || !undo.is_empty()
            {
                return Err(serde::de::Error::custom(
                    "a `parallel:` group holds only its list of steps; put names and kinds on the steps inside it",
                ));
            }
            if parallel.is_empty() {
                return Err(serde::de::Error::custom(
                    "a `parallel:` group needs at least one step",
                ));
            }
            return Ok(Item::Parallel { parallel });
        }
        let name = raw.name.take();
        let (kinds, options, undo) = raw.kinds();
        one_kind(name, kinds, options, undo).map(Item::Step)
    }
}

impl StepSpec {
    /// The runnable step. `default_timeout` bounds kinds that run programs when neither
    /// they nor the step say otherwise. `include` never gets here: the runbook loader
    /// splices it out.
    pub fn build(&self, default_timeout: std::time::Duration) -> Step {
        let timeout = self.options.timeout.map_or(default_timeout, |t| t.0);
        Step {
            name: self.name.clone(),
            check: self.kind.build(timeout),
        }
    }

    /// Whether this step reads the state of things rather than changes it (a `backup`
    /// step with `max_age`/`max_drill_age` reads; without them it makes the backup).
    pub fn is_reading(&self) -> bool {
        self.kind.is_reading()
    }

    /// The kind's key as written in YAML.
    pub fn kind_name(&self) -> &'static str {
        self.kind.key()
    }
}

fn levels<const W: u8, const C: u8>(t: &PercentLevels<W, C>) -> Levels {
    Levels::from(t)
}

/// Declares every step kind from one list: the `KindSpec` enum, the raw step as parsed
/// (each kind an optional key), `KINDS`, and per kind its key, whether it only reads,
/// how it is built, and (in `runbook::schema`) its JSON Schema.
macro_rules! registry {
    ($( $key:ident : $variant:ident ( $spec:ty ), $doc:literal, role: $role:expr, build: $build:expr ; )*) => {
        /// A step's kind and its settings.
        #[derive(Clone, Debug, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum KindSpec {
            $( $variant($spec), )*
        }

        /// Every kind's key, for "exactly one of" messages and the schema.
        pub const KINDS: &[&str] = &[ $( stringify!($key), )* ];

        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            name: Option<String>,
            parallel: Option<Vec<StepSpec>>,
            $( $key: Option<$spec>, )*
            timeout: Option<Duration>,
            #[serde(default, deserialize_with = "crate::values::whole_opt")]
            retries: Option<u32>,
            when: Option<Condition>,
            #[serde(default)]
            needs: Vec<String>,
            #[serde(default)]
            always: bool,
            #[serde(default)]
            continue_on_failure: bool,
            #[serde(default)]
            tags: Vec<String>,
            undo: Option<Undo>,
        }

        impl Raw {
            /// The kinds given, in registry order (more than one is an error later).
            fn take_kinds(&mut self) -> Vec<KindSpec> {
                let mut kinds = Vec::new();
                $( if let Some(spec) = self.$key.take() { kinds.push(KindSpec::$variant(spec)); } )*
                kinds
            }
        }

        impl KindSpec {
            /// The kind's key as written in YAML.
            pub fn key(&self) -> &'static str {
                match self { $( KindSpec::$variant(_) => stringify!($key), )* }
            }

            /// What the step does, which decides where it may run.
            pub fn role(&self) -> Role {
                match self { $( KindSpec::$variant(spec) => ($role)(spec), )* }
            }

            fn build(&self, timeout: std::time::Duration) -> Box<dyn Check> {
                match self { $( KindSpec::$variant(spec) => Box::new(($build)(spec, timeout)), )* }
            }

            /// Each kind's key with the JSON Schema of its settings, described.
            pub fn schemas(generator: &mut schemars::SchemaGenerator) -> Vec<(&'static str, schemars::Schema)> {
                let described = |mut schema: schemars::Schema, doc: &str| {
                    schema.insert("description".into(), doc.into());
                    schema
                };
                vec![ $( (stringify!($key), described(generator.subschema_for::<$spec>(), $doc)), )* ]
            }
        }
    };
}

/// What a step kind does: it decides where a step may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the state of things (resources, endpoints, files, error rates): runs in
    /// `health`, and never stops a maintenance schedule.
    Reads,
    /// Changes things (rotates, archives, backs up, prunes, verifies, restores): runbooks
    /// only.
    Acts,
    /// Runs a program whose effect opsbook cannot know: allowed in `health.endpoints`.
    Runs,
    /// Asks a person, or splices in another runbook: runbooks only.
    Runbook,
}

impl KindSpec {
    /// Whether the step reads the state of things rather than changes it.
    pub fn is_reading(&self) -> bool {
        self.role() == Role::Reads
    }

    /// Whether the step may be one of `health.endpoints`.
    pub fn in_health(&self) -> bool {
        matches!(self.role(), Role::Reads | Role::Runs)
    }
}

fn reads<T>(_: &T) -> Role {
    Role::Reads
}

fn acts<T>(_: &T) -> Role {
    Role::Acts
}

fn runbook_only<T>(_: &T) -> Role {
    Role::Runbook
}

// The registry: `key: Variant(Spec), "what it does", role: <Role of a spec>, build: <its Check>;`
#[rustfmt::skip]
registry! {
    http: Http(HttpSpec), "an HTTP request judged by status, body, JSON, headers and latency", role: reads, build: |s: &HttpSpec, _| HttpCheck::new(s.clone());
    tcp: Tcp(TcpSpec), "a TCP connect, optionally a reply expected", role: reads, build: |s: &TcpSpec, _| TcpCheck { spec: s.clone() };
    tls_cert: TlsCert(TlsCertSpec), "days until the served certificate expires", role: reads, build: |s: &TlsCertSpec, _| TlsCertCheck { spec: s.clone() };
    dns: Dns(DnsSpec), "a name resolves, optionally to expected addresses", role: reads, build: |s: &DnsSpec, _| DnsCheck { spec: s.clone() };
    memory: Memory(PercentLevels<75, 90>), "percent of memory used", role: reads, build: |t: &PercentLevels<75, 90>, _| MemoryCheck { levels: levels(t) };
    swap: Swap(PercentLevels<100, 100>), "percent of swap used", role: reads, build: |t: &PercentLevels<100, 100>, _| SwapCheck { levels: levels(t) };
    disk: Disk(DiskSpec), "percent of a filesystem used", role: reads, build: |s: &DiskSpec, _| DiskCheck { path: s.path.as_str().into(), levels: levels(&s.threshold) };
    cpu: Cpu(CpuSpec), "percent of CPU used, sampled", role: reads, build: |s: &CpuSpec, _| CpuCheck { levels: levels(&s.threshold), sample: s.sample.0 };
    load: Load(LoadSpec), "the load averages (informational)", role: reads, build: |_: &LoadSpec, _| LoadCheck;
    command: Command(CommandSpec), "a program run and judged by exit code, output or a number in it", role: |_: &CommandSpec| Role::Runs, build: |s: &CommandSpec, timeout| CommandCheck { spec: s.clone(), default_timeout: timeout };
    file: File(FileSpec), "a file or directory: exists, mode, owner, age, size, content, count", role: reads, build: |s: &FileSpec, _| FileCheck { spec: s.clone() };
    backup: Backup(BackupSpec), "with max_age/max_drill_age: the newest backup and drill are fresh enough; without: back the set up", role: |s: &BackupSpec| if s.max_age.is_some() || s.max_drill_age.is_some() { Role::Reads } else { Role::Acts }, build: |s: &BackupSpec, _| BackupCheck { spec: s.clone() };
    rotate: Rotate(RotateSpec), "rotate a log set", role: acts, build: |s: &RotateSpec, _| RotateCheck { spec: s.clone() };
    archive: Archive(ArchiveSpec), "archive a log set's old rotated files", role: acts, build: |s: &ArchiveSpec, _| ArchiveCheck { spec: s.clone() };
    prune: Prune(PruneSpec), "apply a backup set's retention", role: acts, build: |s: &PruneSpec, _| PruneCheck { spec: s.clone() };
    verify: Verify(VerifySpec), "verify a backup set's newest backup against its manifest", role: acts, build: |s: &VerifySpec, _| VerifyCheck { spec: s.clone() };
    drill: Drill(super::steps::drill::DrillSpec), "verify a backup set's newest backup and run its restore drill", role: acts, build: |s: &super::steps::drill::DrillSpec, _| super::steps::drill::DrillCheck { spec: s.clone() };
    restore: Restore(super::steps::restore::RestoreSpec), "restore a backup or a hand-made archive into a directory", role: acts, build: |s: &super::steps::restore::RestoreSpec, _| super::steps::restore::RestoreCheck { spec: s.clone() };
    cleanup: Cleanup(super::steps::cleanup::CleanupSpec), "remove files older than a limit from directories (never through a symlink, never a directory)", role: acts, build: |s: &super::steps::cleanup::CleanupSpec, _| super::steps::cleanup::CleanupCheck { spec: s.clone() };
    log_errors: LogErrors(LogErrorsSpec), "lines at or above a level in a window of a log file", role: reads, build: |s: &LogErrorsSpec, _| LogErrorsCheck { spec: s.clone() };
    log_match: LogMatch(crate::probe::log_match::LogMatchSpec), "lines matching a text or regex in a window of a log: a count or a rate per minute", role: reads, build: |s: &crate::probe::log_match::LogMatchSpec, _| crate::probe::log_match::LogMatchCheck { spec: s.clone() };
    log_latency: LogLatency(crate::probe::log_latency::LogLatencySpec), "percentiles of a duration read from log lines in a window", role: reads, build: |s: &crate::probe::log_latency::LogLatencySpec, _| crate::probe::log_latency::LogLatencyCheck { spec: s.clone() };
    manual: Manual(Text), "the question a person confirms", role: runbook_only, build: |p: &Text, _| ManualCheck { prompt: p.clone() };
    process: Process(ProcessSpec), "a program runs (by name, command line or pid file), its memory, CPU and open files graded", role: reads, build: |s: &ProcessSpec, _| ProcessCheck { spec: s.clone() };
    service: Service(ServiceSpec), "a systemd unit is active", role: reads, build: |s: &ServiceSpec, _| ServiceCheck { spec: s.clone() };
    port: Port(PortSpec), "something listens on a local TCP port", role: reads, build: |s: &PortSpec, _| PortCheck { spec: s.clone() };
    env: Env(EnvSpec), "an environment variable is set, non-empty or matches (its value never shown)", role: reads, build: |s: &EnvSpec, _| EnvCheck { spec: s.clone() };
    include: Include(Text), "a runbook file or name whose steps are spliced in here", role: runbook_only, build: |f: &Text, _| crate::engine::Unrunnable(format!("include {} was not expanded", f.shown()));
}
