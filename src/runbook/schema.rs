//! `opsbook runbook schema`: a JSON Schema of the runbook format, for editors with a YAML
//! language server (`# yaml-language-server: $schema=…`). Plain structs derive theirs;
//! the types that parse themselves (durations, percentages, templated strings, the step
//! with its exactly-one kind) say here what they accept. The step schema is built from the
//! kind registry, so a new kind cannot be missing from it.

use crate::engine::condition::Condition;
use crate::engine::registry::{Item, KINDS, KindSpec, StepSpec};
use crate::probe::command::CommandSpec;
use crate::probe::cpu::CpuSpec;
use crate::probe::disk::DiskSpec;
use crate::probe::http::{
    HeaderExpect, HttpUrl, JsonExpect, JsonPointer, JsonValue, Pattern, StatusExpect,
};
use crate::probe::latency::LatencyLevels;
use crate::probe::log_errors::LogErrorsSpec;
use crate::probe::port::PortSpec;
use crate::probe::resolve::Server;
use crate::probe::service::ServiceSpec;
use crate::probe::threshold::Levels;
use crate::probe::tls_cert::TlsCertSpec;
use crate::runbook::load::Defaults;
use crate::values::Mode;
use crate::values::{ByteSize, Duration, Percent, PercentLevels, Text};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use std::borrow::Cow;

/// `impl JsonSchema` for a type whose schema is a fixed JSON value.
macro_rules! fixed_schema {
    ($type:ty, $name:literal, $schema:tt) => {
        impl JsonSchema for $type {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
            fn inline_schema() -> bool {
                true
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

fixed_schema!(Text, "Text", {
    "type": "string",
    "description": "Text; `${VAR}` / `${VAR:-default}` read the environment (secret), `{{ var }}` a runbook variable"
});
fixed_schema!(Duration, "Duration", {
    "type": ["string", "number"],
    "description": "500ms, 5s, 10m, 1h 30m, 30d, or a number of seconds"
});
fixed_schema!(Percent, "Percent", {
    "type": ["number", "string"],
    "description": "0–100, or \"80%\""
});
fixed_schema!(ByteSize, "ByteSize", {
    "type": ["integer", "string"],
    "description": "bytes, or 512K, 10MB, 1G (powers of 1024)"
});
fixed_schema!(Mode, "Mode", { "type": ["string", "integer"], "description": "octal, quoted: \"0640\"" });
fixed_schema!(Pattern, "Regex", { "type": "string", "format": "regex" });
fixed_schema!(JsonPointer, "JsonPointer", { "type": "string", "pattern": "^(/.*)?$" });
fixed_schema!(HttpUrl, "HttpUrl", { "type": "string", "format": "uri", "pattern": "^(https?://|\\$\\{|\\{\\{)" });
fixed_schema!(crate::values::number::WholeOrText, "WholeNumber", {
    "type": ["integer", "string"],
    "description": "a whole number, or text such as \"{{ var }}\" that becomes one"
});
fixed_schema!(Server, "DnsServer", { "type": "string", "description": "IP or IP:port" });
fixed_schema!(Condition, "Condition", {
    "type": "string",
    "description": "e.g. env == 'production' && status(\"API healthy\") == 'ok'"
});
fixed_schema!(StatusExpect, "StatusExpect", {
    "oneOf": [
        { "type": "integer", "minimum": 100, "maximum": 599 },
        { "type": "string", "pattern": "^([1-5][xX][xX]|[1-5][0-9][0-9])$|\\{\\{|\\$\\{" },
        {
            "type": "array",
            "minItems": 1,
            "items": {
                "oneOf": [
                    { "type": "integer", "minimum": 100, "maximum": 599 },
                    { "type": "string", "pattern": "^([1-5][xX][xX]|[1-5][0-9][0-9])$|\\{\\{|\\$\\{" }
                ]
            }
        }
    ],
    "description": "200, 2xx, or a list mixing codes and classes: [200, 4xx]"
});
fixed_schema!(JsonExpect, "JsonExpect", {
    "description": "a value the pointer must equal, or an operator map whose operators must all hold (a map whose first key is not an operator is a plain object)",
    "anyOf": [
        { "type": ["string", "number", "boolean", "null", "array"] },
        {
            "type": "object",
            "minProperties": 1,
            "properties": {
                "eq": { "description": "equal to this value (also an object)" },
                "any": { "type": "array", "minItems": 1, "description": "equal to one of these" },
                "regex": { "type": "string", "format": "regex" },
                "exists": { "type": "boolean" },
                "len": {
                    "description": "entries of an array, members of an object, characters of a string",
                    "oneOf": [
                        { "type": "integer", "minimum": 0 },
                        {
                            "type": "object",
                            "properties": {
                                "min": { "type": ["integer", "string"] },
                                "max": { "type": ["integer", "string"] },
                                "warn": { "type": ["number", "string"] },
                                "crit": { "type": ["number", "string"] },
                                "below": { "type": "boolean" }
                            },
                            "additionalProperties": false
                        }
                    ]
                },
                "lt": { "type": ["number", "string"] },
                "gt": { "type": ["number", "string"] },
                "le": { "type": ["number", "string"] },
                "ge": { "type": ["number", "string"] },
                "eq_pointer": { "type": "string", "pattern": "^(/.*)?$", "description": "equal to the value at this pointer" }
            },
            "additionalProperties": false
        },
        { "type": "object" }
    ]
});
fixed_schema!(HeaderExpect, "HeaderExpect", {
    "type": ["boolean", "string"],
    "description": "true: present; false: absent; a string: equal to it"
});
fixed_schema!(Levels, "Levels", {
    "type": "object",
    "properties": {
        "warn": { "type": ["number", "string"] },
        "crit": { "type": ["number", "string"] },
        "below": { "type": "boolean", "description": "lower is worse" }
    },
    "additionalProperties": false
});
fixed_schema!(LatencyLevels, "LatencyLevels", {
    "type": "object",
    "properties": {
        "warn": { "type": ["string", "number"] },
        "crit": { "type": ["string", "number"] }
    },
    "additionalProperties": false
});
fixed_schema!(JsonValue, "JsonValue", {
    "type": "object",
    "required": ["json"],
    "properties": {
        "json": { "type": "string", "pattern": "^(/.*)?$" },
        "warn": { "type": ["number", "string"] },
        "crit": { "type": ["number", "string"] },
        "below": { "type": "boolean" }
    },
    "additionalProperties": false
});
fixed_schema!(CommandSpec, "CommandSpec", {
    "type": "object",
    "properties": {
        "run": { "type": "string", "description": "split into words as a POSIX shell would, without a shell" },
        "argv": { "type": "array", "items": { "type": "string" } },
        "shell": { "type": "boolean" },
        "env": { "type": "object", "additionalProperties": { "type": "string" } },
        "dir": { "type": "string" },
        "timeout": { "type": ["string", "number"] },
        "exit": { "oneOf": [{ "type": "integer" }, { "type": "array", "items": { "type": "integer" } }] },
        "stdout_contains": { "type": "string" },
        "stdout_regex": { "type": "string", "format": "regex" },
        "stderr_contains": { "type": "string" },
        "value": {
            "type": "object",
            "properties": {
                "pattern": { "type": "string", "format": "regex" },
                "warn": { "type": ["number", "string"] },
                "crit": { "type": ["number", "string"] },
                "below": { "type": "boolean" }
            },
            "additionalProperties": false
        }
    },
    "additionalProperties": false
});
fixed_schema!(TlsCertSpec, "TlsCertSpec", {
    "type": "object",
    "required": ["host"],
    "properties": {
        "host": { "type": "string" },
        "port": { "type": ["integer", "string"], "default": 443, "description": "a number, or text such as \"{{ tls_port }}\"" },
        "server_name": { "type": "string" },
        "warn": { "type": ["number", "string"], "description": "days (a number), or a duration such as 48h; with crit, default 30 days" },
        "crit": { "type": ["number", "string"], "description": "days (a number), or a duration such as 48h; with warn, default 7 days" },
        "leaf_only": { "type": "boolean", "default": false, "description": "grade the server's own certificate only, not the soonest-expiring of the chain" },
        "timeout": { "type": ["string", "number"] },
        "resolver": { "type": "string" }
    },
    "additionalProperties": false
});
fixed_schema!(crate::probe::dns::DnsSpec, "DnsSpec", {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": { "type": "string" },
        "server": { "type": "string", "description": "IP or IP:port; needed for rcode and for CNAME, MX, TXT" },
        "type": {
            "type": "string",
            "pattern": "^\\s*([Aa]|[Aa][Aa][Aa][Aa]|[Cc][Nn][Aa][Mm][Ee]|[Mm][Xx]|[Tt][Xx][Tt])\\s*$|\\{\\{|\\$\\{",
            "default": "A",
            "description": "A, AAAA, CNAME, MX or TXT, in any case"
        },
        "expect": {
            "description": "records to look for: addresses, a name (CNAME, MX), \"10 mx.example.com\" (MX), the text (TXT)",
            "oneOf": [{ "type": "string" }, { "type": "array", "items": { "type": "string" } }]
        },
        "expect_all": { "type": "boolean", "default": false, "description": "every answer must be one of expect (default: any one answer)" },
        "rcode": {
            "type": "string",
            "pattern": "^\\s*([Nn][Oo][Ee][Rr][Rr][Oo][Rr]|[Nn][Xx][Dd][Oo][Mm][Aa][Ii][Nn]|[Ss][Ee][Rr][Vv][Ff][Aa][Ii][Ll]|[Rr][Ee][Ff][Uu][Ss][Ee][Dd]|[Ff][Oo][Rr][Mm][Ee][Rr][Rr]|[Nn][Oo][Tt][Ii][Mm][Pp])\\s*$|\\{\\{|\\$\\{",
            "description": "NOERROR, NXDOMAIN, SERVFAIL, REFUSED, FORMERR or NOTIMP, in any case"
        },
        "timeout": { "type": ["string", "number"] },
        "latency": {
            "type": "object",
            "properties": { "warn": { "type": ["string", "number"] }, "crit": { "type": ["string", "number"] } },
            "additionalProperties": false
        }
    },
    "additionalProperties": false
});
fixed_schema!(DiskSpec, "DiskSpec", {
    "type": "object",
    "properties": {
        "path": { "type": "string", "default": "/" },
        "warn": { "type": ["number", "string"], "description": "default 80 when crit is left out too; crit alone is a one-level threshold" },
        "crit": { "type": ["number", "string"], "description": "default 90 when warn is left out too; warn alone is a one-level threshold" }
    },
    "additionalProperties": false
});
fixed_schema!(CpuSpec, "CpuSpec", {
    "type": "object",
    "properties": {
        "sample": { "type": ["string", "number"], "default": "1s", "description": "at least 1s" },
        "warn": { "type": ["number", "string"], "description": "default 90 when crit is left out too; crit alone is a one-level threshold" },
        "crit": { "type": ["number", "string"], "description": "default 95 when warn is left out too; warn alone is a one-level threshold" }
    },
    "additionalProperties": false
});
fixed_schema!(LogErrorsSpec, "LogErrorsSpec", {
    "type": "object",
    "required": ["path"],
    "properties": {
        "path": { "type": "string" },
        "level": { "type": "string", "default": "ERROR" },
        "since": { "type": ["string", "number"] },
        "max": { "type": ["integer", "string"], "description": "more lines than this is critical (default 0); a number, or text such as \"{{ max_errors }}\"" },
        "warn": { "type": ["number", "string"], "description": "a count, or a rate such as \"1%\"" },
        "crit": { "type": ["number", "string"] },
        "format": { "description": "auto, python, json, access, or { regex, time_format }, as a log set's format" }
    },
    "additionalProperties": false
});
fixed_schema!(ServiceSpec, "ServiceSpec", {
    "oneOf": [
        { "type": "string" },
        {
            "type": "object",
            "required": ["unit"],
            "properties": { "unit": { "type": "string" }, "user": { "type": "boolean" } },
            "additionalProperties": false
        }
    ]
});
fixed_schema!(PortSpec, "PortSpec", {
    "oneOf": [
        { "type": "integer", "minimum": 1, "maximum": 65535 },
        { "type": "string", "description": "a number, or text such as \"{{ db_port }}\"" },
        {
            "type": "object",
            "required": ["port"],
            "properties": {
                "port": {
                    "oneOf": [
                        { "type": "integer", "minimum": 1, "maximum": 65535 },
                        { "type": "string", "description": "a number, or text such as \"{{ db_port }}\"" }
                    ]
                }
            },
            "additionalProperties": false
        }
    ]
});

impl<const W: u8, const C: u8> JsonSchema for PercentLevels<W, C> {
    fn schema_name() -> Cow<'static, str> {
        Cow::Owned(format!("PercentLevels_{W}_{C}"))
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "description": format!("percent levels; neither given: warn {W}, crit {C}; one alone is a one-level threshold"),
            "properties": {
                "warn": { "type": ["number", "string"] },
                "crit": { "type": ["number", "string"] }
            },
            "additionalProperties": false
        })
    }
}

/// The schema of one kind's settings, by its key, from the registry.
fn kind_schema(kind: &str, generator: &mut SchemaGenerator) -> Schema {
    KindSpec::schemas(generator)
        .into_iter()
        .find(|(key, _)| *key == kind)
        .map_or_else(|| json_schema!({}), |(_, schema)| schema)
}

impl JsonSchema for StepSpec {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Step")
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut properties = serde_json::Map::new();
        properties.insert("name".into(), json_schema!({ "type": "string" }).to_value());
        for &kind in KINDS {
            properties.insert(kind.into(), kind_schema(kind, generator).to_value());
        }
        for (key, schema) in [
            ("timeout", generator.subschema_for::<Duration>()),
            (
                "retries",
                json_schema!({ "type": ["integer", "string"], "minimum": 0 }),
            ),
            ("when", generator.subschema_for::<Condition>()),
            (
                "needs",
                json_schema!({ "type": "array", "items": { "type": "string" } }),
            ),
            ("always", json_schema!({ "type": "boolean" })),
            ("continue_on_failure", json_schema!({ "type": "boolean" })),
            (
                "tags",
                json_schema!({ "type": "array", "items": { "type": "string" } }),
            ),
        ] {
            properties.insert(key.into(), schema.to_value());
        }
        let exactly_one: Vec<serde_json::Value> = KINDS
            .iter()
            .filter(|k| **k != "include")
            .map(|k| serde_json::json!({ "required": [k] }))
            .collect();
        // An undo step: any kind but `include`, a name optional, no `needs`/`always`/`undo`.
        let mut undo_properties = properties.clone();
        for key in ["include", "needs", "always"] {
            undo_properties.remove(key);
        }
        let undo_step = json_schema!({
            "type": "object",
            "properties": undo_properties,
            "additionalProperties": false,
            "oneOf": exactly_one,
        })
        .to_value();
        properties.insert(
            "undo".into(),
            json_schema!({
                "description": "What reverses this step: run, newest first, when a later step fails the run and this one completed (ok or warning). Never for a step that did not run or failed.",
                "oneOf": [undo_step, { "type": "array", "minItems": 1, "items": undo_step }]
            })
            .to_value(),
        );
        let exactly_one: Vec<serde_json::Value> = KINDS
            .iter()
            .map(|k| serde_json::json!({ "required": [k] }))
            .collect();
        json_schema!({
            "type": "object",
            "required": ["name"],
            "properties": properties,
            "additionalProperties": false,
            "oneOf": exactly_one,
        })
    }
}

impl JsonSchema for Item {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Item")
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let step = generator.subschema_for::<StepSpec>();
        json_schema!({
            "oneOf": [
                step,
                {
                    "type": "object",
                    "required": ["parallel"],
                    "properties": { "parallel": { "type": "array", "minItems": 1, "items": step } },
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// The whole runbook document.
#[derive(schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // exists only to describe the format
struct RunbookDocument {
    name: Option<String>,
    description: Option<String>,
    /// What the runbook is for, as `runbook list` groups them.
    kind: Option<super::load::Kind>,
    /// Tell the channels of config `notify:` what started failing and what recovered, on
    /// every `opsbook run` of this runbook.
    notify: Option<bool>,
    /// Runbook variables; values may use `${ENV:-default}`.
    vars: Option<std::collections::BTreeMap<String, String>>,
    defaults: Option<Defaults>,
    steps: Vec<Item>,
    /// Runs when any step failed, after the `undo` of each completed step: what any
    /// failure needs (notify, clear a flag).
    on_failure: Option<Vec<StepSpec>>,
}

/// The JSON Schema of a runbook, pretty-printed.
pub fn runbook_schema() -> String {
    let mut schema = schemars::schema_for!(RunbookDocument);
    schema.insert("title".into(), "opsbook runbook".into());
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_schema() {
        let mut generator = SchemaGenerator::default();
        for &kind in KINDS {
            assert_ne!(
                kind_schema(kind, &mut generator).to_value(),
                serde_json::json!({}),
                "{kind}"
            );
        }
        let text = runbook_schema();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["title"], "opsbook runbook");
        assert!(
            !text.contains("#/$defs/ValueSpec"),
            "no dangling references"
        );
        let step = &value["$defs"]["Step"]["properties"];
        for &kind in KINDS {
            assert!(
                step.get(kind).is_some(),
                "{kind} missing from the step schema"
            );
        }
        // `undo`: one step or a list, a name optional, no include/needs/always.
        let undo = &step["undo"];
        assert!(
            undo["description"]
                .as_str()
                .unwrap()
                .contains("newest first")
        );
        let one = &undo["oneOf"][0];
        assert_eq!(undo["oneOf"][1]["items"], *one);
        assert!(one.get("required").is_none());
        for key in ["include", "needs", "always"] {
            assert!(one["properties"].get(key).is_none(), "{key}");
        }
        assert!(one["properties"].get("command").is_some());
    }
}
