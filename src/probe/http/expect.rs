//! `expect`: what a response must be — status, headers, body, JSON pointers — and
//! `any_of`, alternatives of which one must hold. A failure says what was seen.

use super::json::{ExpectAt, JsonExpect, JsonPointer};
use super::{Pattern, Response};
use crate::values::Text;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `200`, `2xx`, or a list mixing both: `[200, 4xx]`. Without it (and without
    /// `any_of`), any 2xx.
    pub status: Option<StatusExpect>,
    pub body_contains: Option<Text>,
    pub body_regex: Option<Pattern>,
    /// JSON pointer → a plain value (`{ /status: healthy }`) or an operator map
    /// (`{ /items: { len: { min: 1 } } }`).
    #[serde(default, deserialize_with = "pointers")]
    pub json: BTreeMap<JsonPointer, JsonExpect>,
    /// Header → expected value, or `true` for "present".
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderExpect>,
    /// Expectation sets of which at least one must hold, beside everything above. Each
    /// alternative without `status` expects 2xx.
    #[serde(
        default,
        deserialize_with = "alternatives",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub any_of: Vec<Expect>,
}

/// The pointers and what each must hold, each read knowing its pointer.
fn pointers<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<JsonPointer, JsonExpect>, D::Error> {
    struct Pointers;
    impl<'de> Visitor<'de> for Pointers {
        type Value = BTreeMap<JsonPointer, JsonExpect>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of JSON pointers: { /status: healthy }")
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut pointers = BTreeMap::new();
            while let Some(pointer) = map.next_key::<JsonPointer>()? {
                let wanted = map.next_value_seed(ExpectAt(&pointer))?;
                pointers.insert(pointer, wanted);
            }
            Ok(pointers)
        }
    }
    deserializer.deserialize_map(Pointers)
}

/// An `expect` that some status can pass: `status: 200` beside `any_of: [{ status: 503 }]`
/// could never hold, so it is refused.
pub(super) fn admitting<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Expect, D::Error> {
    let expect = Expect::deserialize(deserializer)?;
    if expect.any_of.is_empty() || (100..=599).any(|code| expect.admits(code)) {
        return Ok(expect);
    }
    let theirs: Vec<String> = expect.any_of.iter().map(Expect::statuses).collect();
    Err(de::Error::custom(format!(
        "no HTTP status passes both `status` ({}) and an alternative of any_of ({}): no response could pass",
        expect.statuses(),
        theirs.join("; ")
    )))
}

fn alternatives<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Expect>, D::Error> {
    let list = Vec::<Expect>::deserialize(deserializer)?;
    if list.is_empty() {
        return Err(de::Error::custom(
            "`any_of: []` can never hold: list at least one expectation set",
        ));
    }
    Ok(list)
}

/// Why an expectation failed, said with what was seen: a critical outcome's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure(pub String);

/// The response as the expectations see it; the body is parsed as JSON at most once.
pub(super) struct Seen<'a> {
    response: &'a Response,
    document: OnceCell<Result<Value, Failure>>,
}

impl<'a> Seen<'a> {
    pub(super) fn new(response: &'a Response) -> Self {
        Seen {
            response,
            document: OnceCell::new(),
        }
    }

    fn document(&self) -> Result<&Value, Failure> {
        let parsed = self.document.get_or_init(|| {
            serde_json::from_slice(&self.response.body).map_err(|e| {
                Failure(if self.response.truncated {
                    format!("body is not JSON within max_body bytes: {e}")
                } else {
                    format!("body is not JSON: {e}")
                })
            })
        });
        parsed.as_ref().map_err(Clone::clone)
    }
}

impl Expect {
    /// `Err`: the first expectation the response fails, said with what was seen. `Ok`:
    /// every expectation holds; the notes are warnings (a graded `len` past `warn`).
    pub(super) fn judge(&self, seen: &Seen) -> Result<Vec<String>, Failure> {
        let response = seen.response;
        let status_ok = match &self.status {
            Some(wanted) => wanted.accepts(response.code),
            None => !self.any_of.is_empty() || (200..300).contains(&response.code),
        };
        if !status_ok {
            let wanted = self
                .status
                .as_ref()
                .map_or_else(|| "2xx".to_string(), StatusExpect::describe);
            return Err(Failure(format!(
                "status {}, expected {wanted}",
                response.code
            )));
        }
        self.judge_headers(response)?;
        self.judge_body(response)?;
        let mut notes = Vec::new();
        if !self.json.is_empty() {
            let document = seen.document()?;
            for (pointer, wanted) in &self.json {
                notes.extend(wanted.judge(&pointer.0, document)?);
            }
        }
        if !self.any_of.is_empty() {
            notes.extend(self.judge_alternatives(seen)?);
        }
        Ok(notes)
    }

    /// Whether a response with `code` can pass the status checks of this set and of its
    /// alternatives.
    fn admits(&self, code: u16) -> bool {
        let own = match &self.status {
            Some(wanted) => wanted.accepts(code),
            None => !self.any_of.is_empty() || (200..300).contains(&code),
        };
        own && (self.any_of.is_empty() || self.any_of.iter().any(|a| a.admits(code)))
    }

    /// The statuses this set itself accepts, as a message says them.
    fn statuses(&self) -> String {
        match &self.status {
            Some(wanted) => wanted.describe(),
            None if self.any_of.is_empty() => "2xx".to_string(),
            None => "any".to_string(),
        }
    }

    /// The first alternative that holds without a warning, else the first that holds;
    /// when none holds, why each failed.
    fn judge_alternatives(&self, seen: &Seen) -> Result<Vec<String>, Failure> {
        let mut held = None;
        let mut failures = Vec::new();
        for (number, alternative) in self.any_of.iter().enumerate() {
            match alternative.judge(seen) {
                Ok(notes) if notes.is_empty() => return Ok(notes),
                Ok(notes) => {
                    held.get_or_insert(notes);
                }
                Err(why) => failures.push(format!("({}) {}", number + 1, why.0)),
            }
        }
        held.ok_or_else(|| {
            Failure(format!(
                "no alternative of any_of holds: {}",
                failures.join("; ")
            ))
        })
    }

    fn judge_headers(&self, response: &Response) -> Result<(), Failure> {
        for (name, wanted) in &self.headers {
            let found = response
                .headers
                .get(name.as_str())
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            match (wanted, found) {
                (HeaderExpect::Present(true), None) => {
                    return Err(Failure(format!("header {name} missing")));
                }
                (HeaderExpect::Present(false), Some(_)) => {
                    return Err(Failure(format!("header {name} present, expected absent")));
                }
                (HeaderExpect::Equals(value), None) => {
                    return Err(Failure(format!(
                        "header {name} missing, expected {:?}",
                        value.shown()
                    )));
                }
                (HeaderExpect::Equals(value), Some(found)) if found != value.as_str() => {
                    return Err(Failure(format!(
                        "header {name} = {found:?}, expected {:?}",
                        value.shown()
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn judge_body(&self, response: &Response) -> Result<(), Failure> {
        let body = String::from_utf8_lossy(&response.body);
        let cut = if response.truncated {
            " (in the first max_body bytes)"
        } else {
            ""
        };
        if let Some(needle) = &self.body_contains
            && !body.contains(needle.as_str())
        {
            return Err(Failure(format!(
                "body does not contain {:?}{cut}",
                needle.shown()
            )));
        }
        if let Some(pattern) = &self.body_regex
            && !pattern.0.is_match(&body)
        {
            return Err(Failure(format!(
                "body does not match /{}/{cut}",
                pattern.0.as_str()
            )));
        }
        Ok(())
    }
}

/// The statuses accepted: codes and classes, any of which will do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusExpect(pub Vec<StatusEntry>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusEntry {
    Code(u16),
    /// `4xx`: the hundreds digit.
    Class(u16),
}

impl StatusEntry {
    fn accepts(self, code: u16) -> bool {
        match self {
            StatusEntry::Code(wanted) => code == wanted,
            StatusEntry::Class(class) => code / 100 == class,
        }
    }

    fn describe(self) -> String {
        match self {
            StatusEntry::Code(code) => code.to_string(),
            StatusEntry::Class(class) => format!("{class}xx"),
        }
    }

    /// `200`, `404`, `2xx`, `5XX`.
    fn parse(text: &str) -> Option<Self> {
        let lower = text.trim().to_ascii_lowercase();
        if let Some(digit) = lower.strip_suffix("xx") {
            return match digit.parse::<u16>() {
                Ok(class @ 1..=5) if digit.len() == 1 => Some(StatusEntry::Class(class)),
                _ => None,
            };
        }
        match lower.parse::<u16>() {
            Ok(code @ 100..=599) => Some(StatusEntry::Code(code)),
            _ => None,
        }
    }
}

impl StatusExpect {
    fn accepts(&self, code: u16) -> bool {
        self.0.iter().any(|entry| entry.accepts(code))
    }

    fn describe(&self) -> String {
        let entries: Vec<String> = self.0.iter().map(|e| e.describe()).collect();
        entries.join(" or ")
    }
}

/// Text with its `{{ var }}` filled in: a status may come from a runbook variable.
fn templated<E: de::Error>(written: &str) -> Result<String, E> {
    Text::from_template(written)
        .map(|text| text.as_str().to_string())
        .map_err(E::custom)
}

/// One status as written, a number or text, before it is checked.
fn entry<E: de::Error>(written: &str) -> Result<StatusEntry, E> {
    StatusEntry::parse(written).ok_or_else(|| {
        E::custom(format!(
            "{written:?} is not an HTTP status: write a code 100–599 or a class 1xx–5xx, e.g. 200, 4xx or [200, 4xx]"
        ))
    })
}

impl<'de> Deserialize<'de> for StatusExpect {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StatusVisitor)
    }
}

struct StatusVisitor;

impl<'de> Visitor<'de> for StatusVisitor {
    type Value = StatusExpect;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an HTTP status: 200, 2xx, or a list such as [200, 4xx]")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<StatusExpect, E> {
        entry(&v.to_string()).map(|e| StatusExpect(vec![e]))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<StatusExpect, E> {
        entry(&v.to_string()).map(|e| StatusExpect(vec![e]))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<StatusExpect, E> {
        entry(&templated(v)?).map(|e| StatusExpect(vec![e]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StatusExpect, A::Error> {
        let mut entries = Vec::new();
        while let Some(status) = seq.next_element::<StatusEntry>()? {
            entries.push(status);
        }
        if entries.is_empty() {
            return Err(de::Error::custom(
                "`status: []` accepts nothing: list at least one code or class",
            ));
        }
        Ok(StatusExpect(entries))
    }
}

/// A list entry, checked as it is read so an error points at it.
impl<'de> Deserialize<'de> for StatusEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl Visitor<'_> for EntryVisitor {
            type Value = StatusEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a status code such as 200 or a class such as 4xx")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StatusEntry, E> {
                entry(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StatusEntry, E> {
                entry(&v.to_string())
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<StatusEntry, E> {
                entry(&v.to_string())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StatusEntry, E> {
                entry(&templated(v)?)
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}

impl Serialize for StatusExpect {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let written: Vec<Value> = self
            .0
            .iter()
            .map(|e| match e {
                StatusEntry::Code(code) => Value::from(*code),
                StatusEntry::Class(_) => Value::from(e.describe()),
            })
            .collect();
        match written.as_slice() {
            [one] => one.serialize(serializer),
            _ => written.serialize(serializer),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum HeaderExpect {
    Present(bool),
    Equals(Text),
}

impl<'de> Deserialize<'de> for HeaderExpect {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Present(bool),
            Equals(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Present(p) => Ok(HeaderExpect::Present(p)),
            Raw::Equals(s) => Text::from_template(&s)
                .map(HeaderExpect::Equals)
                .map_err(de::Error::custom),
        }
    }
}
