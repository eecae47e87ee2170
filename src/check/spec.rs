//! The step schema shared by `health.endpoints` and runbooks: a `name`, exactly one kind,
//! and the run options. This is the one place step kinds are registered.

use super::archive::{ArchiveCheck, ArchiveSpec};
use super::backup::{BackupCheck, BackupSpec};
use super::command::{CommandCheck, CommandSpec};
use super::cpu::CpuSpec;
use super::disk::DiskSpec;
use super::dns::{DnsCheck, DnsSpec};
use super::file::{FileCheck, FileSpec};
use super::http::{HttpCheck, HttpSpec};
use super::log_errors::{LogErrorsCheck, LogErrorsSpec};
use super::manual::ManualCheck;
use super::port::{PortCheck, PortSpec};
use super::process::{ProcessCheck, ProcessSpec};
use super::prune::{PruneCheck, PruneSpec};
use super::rotate::{RotateCheck, RotateSpec};
use super::service::{ServiceCheck, ServiceSpec};
use super::tcp::{TcpCheck, TcpSpec};
use super::threshold::Levels;
use super::tls_cert::{TlsCertCheck, TlsCertSpec};
use super::verify::{VerifyCheck, VerifySpec};
use super::{CpuCheck, DiskCheck, LoadCheck, MemoryCheck, SwapCheck};
use crate::config::{Duration, Text, Threshold};
use crate::engine::Step;
use crate::runbook::condition::Condition;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize)]
pub struct StepSpec {
    pub name: String,
    #[serde(flatten)]
    pub kind: KindSpec,
    #[serde(flatten)]
    pub options: StepOptions,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KindSpec {
    Http(HttpSpec),
    Tcp(TcpSpec),
    TlsCert(TlsCertSpec),
    Dns(DnsSpec),
    Memory(Threshold<75, 90>),
    Swap(Threshold<100, 100>),
    Disk(DiskSpec),
    Cpu(CpuSpec),
    Load(LoadSpec),
    Command(CommandSpec),
    File(FileSpec),
    Backup(BackupSpec),
    Rotate(RotateSpec),
    Archive(ArchiveSpec),
    Prune(PruneSpec),
    Verify(VerifySpec),
    LogErrors(LogErrorsSpec),
    Manual(Text),
    Process(ProcessSpec),
    Service(ServiceSpec),
    Port(PortSpec),
    /// Another runbook's steps, spliced in by the runbook loader.
    Include(Text),
}

impl KindSpec {
    /// Whether the step changes things (rotates, archives, backs up, prunes, verifies)
    /// rather than only looking: never in `health`.
    pub fn is_action(&self) -> bool {
        match self {
            KindSpec::Rotate(_)
            | KindSpec::Archive(_)
            | KindSpec::Prune(_)
            | KindSpec::Verify(_) => true,
            KindSpec::Backup(spec) => spec.max_age.is_none() && spec.max_drill_age.is_none(),
            _ => false,
        }
    }
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

/// Every kind's key, for "exactly one of" messages.
pub const KINDS: [&str; 22] = [
    "http",
    "tcp",
    "tls_cert",
    "dns",
    "memory",
    "swap",
    "disk",
    "cpu",
    "load",
    "command",
    "file",
    "backup",
    "rotate",
    "archive",
    "prune",
    "verify",
    "log_errors",
    "manual",
    "process",
    "service",
    "port",
    "include",
];

/// Kinds that read the state of things (resources, endpoints, files, error rates) rather
/// than change it.
pub const READINGS: [&str; 15] = [
    "http",
    "tcp",
    "tls_cert",
    "dns",
    "memory",
    "swap",
    "disk",
    "cpu",
    "load",
    "file",
    "log_errors",
    "process",
    "service",
    "port",
    "backup",
];

/// A runbook's list item: a step, or a `parallel:` group of steps.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)] // a few per runbook; boxing would only add noise
pub enum Item {
    Step(StepSpec),
    Parallel { parallel: Vec<StepSpec> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Option<String>,
    parallel: Option<Vec<StepSpec>>,
    http: Option<HttpSpec>,
    tcp: Option<TcpSpec>,
    tls_cert: Option<TlsCertSpec>,
    dns: Option<DnsSpec>,
    memory: Option<Threshold<75, 90>>,
    swap: Option<Threshold<100, 100>>,
    disk: Option<DiskSpec>,
    cpu: Option<CpuSpec>,
    load: Option<LoadSpec>,
    command: Option<CommandSpec>,
    file: Option<FileSpec>,
    backup: Option<BackupSpec>,
    rotate: Option<RotateSpec>,
    archive: Option<ArchiveSpec>,
    prune: Option<PruneSpec>,
    verify: Option<VerifySpec>,
    log_errors: Option<LogErrorsSpec>,
    manual: Option<Text>,
    process: Option<ProcessSpec>,
    service: Option<ServiceSpec>,
    port: Option<PortSpec>,
    include: Option<Text>,
    timeout: Option<Duration>,
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
    fn kinds(self) -> (Vec<KindSpec>, StepOptions, Vec<UndoStep>) {
        let mut kinds = Vec::new();
        let mut add = |kind: Option<KindSpec>| kinds.extend(kind);
        add(self.http.map(KindSpec::Http));
        add(self.tcp.map(KindSpec::Tcp));
        add(self.tls_cert.map(KindSpec::TlsCert));
        add(self.dns.map(KindSpec::Dns));
        add(self.memory.map(KindSpec::Memory));
        add(self.swap.map(KindSpec::Swap));
        add(self.disk.map(KindSpec::Disk));
        add(self.cpu.map(KindSpec::Cpu));
        add(self.load.map(KindSpec::Load));
        add(self.command.map(KindSpec::Command));
        add(self.file.map(KindSpec::File));
        add(self.backup.map(KindSpec::Backup));
        add(self.rotate.map(KindSpec::Rotate));
        add(self.archive.map(KindSpec::Archive));
        add(self.prune.map(KindSpec::Prune));
        add(self.verify.map(KindSpec::Verify));
        add(self.log_errors.map(KindSpec::LogErrors));
        add(self.manual.map(KindSpec::Manual));
        add(self.process.map(KindSpec::Process));
        add(self.service.map(KindSpec::Service));
        add(self.port.map(KindSpec::Port));
        add(self.include.map(KindSpec::Include));
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
        let name = &self.name;
        let timeout = self.options.timeout.map_or(default_timeout, |t| t.0);
        match &self.kind {
            KindSpec::Http(spec) => Step::new(name, HttpCheck::new(spec.clone())),
            KindSpec::Tcp(spec) => Step::new(name, TcpCheck { spec: spec.clone() }),
            KindSpec::TlsCert(spec) => Step::new(name, TlsCertCheck { spec: spec.clone() }),
            KindSpec::Dns(spec) => Step::new(name, DnsCheck { spec: spec.clone() }),
            KindSpec::Memory(t) => Step::new(
                name,
                MemoryCheck {
                    levels: levels(t.warn.0, t.crit.0),
                },
            ),
            KindSpec::Swap(t) => Step::new(
                name,
                SwapCheck {
                    levels: levels(t.warn.0, t.crit.0),
                },
            ),
            KindSpec::Disk(spec) => Step::new(
                name,
                DiskCheck {
                    path: spec.path.as_str().into(),
                    levels: levels(spec.threshold.warn.0, spec.threshold.crit.0),
                },
            ),
            KindSpec::Cpu(spec) => Step::new(
                name,
                CpuCheck {
                    levels: levels(spec.threshold.warn.0, spec.threshold.crit.0),
                    sample: spec.sample.0,
                },
            ),
            KindSpec::Load(_) => Step::new(name, LoadCheck),
            KindSpec::Command(spec) => Step::new(
                name,
                CommandCheck {
                    spec: spec.clone(),
                    default_timeout: timeout,
                },
            ),
            KindSpec::File(spec) => Step::new(name, FileCheck { spec: spec.clone() }),
            KindSpec::Backup(spec) => Step::new(name, BackupCheck { spec: spec.clone() }),
            KindSpec::Rotate(spec) => Step::new(name, RotateCheck { spec: spec.clone() }),
            KindSpec::Archive(spec) => Step::new(name, ArchiveCheck { spec: spec.clone() }),
            KindSpec::Prune(spec) => Step::new(name, PruneCheck { spec: spec.clone() }),
            KindSpec::Verify(spec) => Step::new(name, VerifyCheck { spec: spec.clone() }),
            KindSpec::LogErrors(spec) => Step::new(name, LogErrorsCheck { spec: spec.clone() }),
            KindSpec::Manual(prompt) => Step::new(
                name,
                ManualCheck {
                    prompt: prompt.clone(),
                },
            ),
            KindSpec::Process(spec) => Step::new(name, ProcessCheck { spec: spec.clone() }),
            KindSpec::Service(spec) => Step::new(name, ServiceCheck { spec: spec.clone() }),
            KindSpec::Port(spec) => Step::new(name, PortCheck { spec: spec.clone() }),
            KindSpec::Include(file) => Step::new(
                name,
                super::Unrunnable(format!("include {} was not expanded", file.shown())),
            ),
        }
    }

    /// The kind's key as written in YAML.
    /// Whether this step reads the state of things rather than changes it (a `backup`
    /// step with `max_age`/`max_drill_age` reads; without them it makes the backup).
    pub fn is_reading(&self) -> bool {
        READINGS.contains(&self.kind_name()) && !self.kind.is_action()
    }

    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            KindSpec::Http(_) => "http",
            KindSpec::Tcp(_) => "tcp",
            KindSpec::TlsCert(_) => "tls_cert",
            KindSpec::Dns(_) => "dns",
            KindSpec::Memory(_) => "memory",
            KindSpec::Swap(_) => "swap",
            KindSpec::Disk(_) => "disk",
            KindSpec::Cpu(_) => "cpu",
            KindSpec::Load(_) => "load",
            KindSpec::Command(_) => "command",
            KindSpec::File(_) => "file",
            KindSpec::Backup(_) => "backup",
            KindSpec::Rotate(_) => "rotate",
            KindSpec::Archive(_) => "archive",
            KindSpec::Prune(_) => "prune",
            KindSpec::Verify(_) => "verify",
            KindSpec::LogErrors(_) => "log_errors",
            KindSpec::Manual(_) => "manual",
            KindSpec::Process(_) => "process",
            KindSpec::Service(_) => "service",
            KindSpec::Port(_) => "port",
            KindSpec::Include(_) => "include",
        }
    }
}

fn levels(warn: f64, crit: f64) -> Levels {
    Levels::new(warn, crit)
}
