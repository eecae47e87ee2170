//! One idea, one file: `expect.json`: per JSON pointer, a plain value the body must hold
//! there, or an operator map (`len`, `any`, `regex`, `exists`, `lt`/`gt`/`le`/`ge`, `eq`,
//! `eq_pointer`), all of whose operators must hold. Everything is checked when the file is
//! read; at run time each failure names the pointer, what was found and what was expected.

use super::Pattern;
use super::expect::Failure;
use super::len::Len;
use crate::probe::threshold::{self, Number};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;

/// An RFC 6901 pointer (`/status`, `/checks/0/name`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct JsonPointer(pub String);

impl<'de> Deserialize<'de> for JsonPointer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = crate::values::Text::deserialize(deserializer)?
            .as_str()
            .to_string();
        JsonPointer::parse(text).map_err(de::Error::custom)
    }
}

impl JsonPointer {
    /// `text` if it is a pointer: empty or starting with `/`, and every `~` an escape
    /// (`~0` for `~`, `~1` for `/`), as RFC 6901 says.
    pub fn parse(text: String) -> Result<JsonPointer, String> {
        if !(text.is_empty() || text.starts_with('/')) {
            return Err(format!(
                "{text:?} is not a JSON pointer: it starts with `/`, e.g. /status"
            ));
        }
        let mut tildes = text.match_indices('~');
        if let Some((i, _)) =
            tildes.find(|(i, _)| !matches!(text.as_bytes().get(i + 1), Some(b'0' | b'1')))
        {
            return Err(format!(
                "{text:?} is not a JSON pointer: `~` at character {} must be `~0` (for `~`) or `~1` (for `/`)",
                text[..i].chars().count() + 1
            ));
        }
        Ok(JsonPointer(text))
    }
}

/// A JSON value as written in YAML, with `{{ var }}` and `${VAR}` substituted in every
/// string in it (as in any other string of a runbook).
pub struct Templated(pub Value);

impl<'de> Deserialize<'de> for Templated {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(TemplatedVisitor)
            .map(Templated)
    }
}

struct TemplatedVisitor;

impl<'de> Visitor<'de> for TemplatedVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a JSON number")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        let text = crate::values::Text::from_template(v).map_err(E::custom)?;
        Ok(Value::String(text.as_str().to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Templated(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Templated(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// What one pointer of the body must hold.
#[derive(Clone, Debug, PartialEq)]
pub enum JsonExpect {
    /// A plain value: equal to it (numbers by value, `1` equals `1.0`).
    Equals(Value),
    /// An operator map: every operator holds.
    Ops(Vec<Op>),
}

#[derive(Clone, Debug)]
pub enum Op {
    Eq(Value),
    Any(Vec<Value>),
    Regex(Pattern),
    Exists(bool),
    Compare(Compare, f64),
    Len(Len),
    EqPointer(JsonPointer),
}

impl PartialEq for Op {
    fn eq(&self, other: &Op) -> bool {
        match (self, other) {
            (Op::Regex(a), Op::Regex(b)) => a.0.as_str() == b.0.as_str(),
            (Op::Eq(a), Op::Eq(b)) => a == b,
            (Op::Any(a), Op::Any(b)) => a == b,
            (Op::Exists(a), Op::Exists(b)) => a == b,
            (Op::Compare(a, x), Op::Compare(b, y)) => a == b && x == y,
            (Op::Len(a), Op::Len(b)) => a == b,
            (Op::EqPointer(a), Op::EqPointer(b)) => a == b,
            _ => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    Lt,
    Gt,
    Le,
    Ge,
}

impl Compare {
    fn key(self) -> &'static str {
        match self {
            Compare::Lt => "lt",
            Compare::Gt => "gt",
            Compare::Le => "le",
            Compare::Ge => "ge",
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Compare::Lt => "<",
            Compare::Gt => ">",
            Compare::Le => "<=",
            Compare::Ge => ">=",
        }
    }

    fn holds(self, found: f64, limit: f64) -> bool {
        match self {
            Compare::Lt => found < limit,
            Compare::Gt => found > limit,
            Compare::Le => found <= limit,
            Compare::Ge => found >= limit,
        }
    }
}

/// The operator keys, in the order messages list them.
pub const OPERATORS: &[&str] = &[
    "eq",
    "any",
    "regex",
    "exists",
    "len",
    "lt",
    "gt",
    "le",
    "ge",
    "eq_pointer",
];

impl<'de> Deserialize<'de> for JsonExpect {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ExpectVisitor { at: None })
    }
}

/// What `pointer` must hold, read knowing the pointer, so an `eq_pointer` naming it (which
/// always holds) is refused where it is written.
pub struct ExpectAt<'p>(pub &'p JsonPointer);

impl<'de> de::DeserializeSeed<'de> for ExpectAt<'_> {
    type Value = JsonExpect;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<JsonExpect, D::Error> {
        deserializer.deserialize_any(ExpectVisitor { at: Some(self.0) })
    }
}

struct ExpectVisitor<'p> {
    at: Option<&'p JsonPointer>,
}

/// A plain scalar or list becomes `Equals`; a mapping is an operator map when its first
/// key is an operator, else a plain object.
impl<'de> Visitor<'de> for ExpectVisitor<'_> {
    type Value = JsonExpect;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value or an operator map such as { len: { min: 1 } }")
    }

    // Anything but a mapping is a plain value, read as `Templated` reads it.
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<JsonExpect, E> {
        TemplatedVisitor.visit_bool(v).map(JsonExpect::Equals)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<JsonExpect, E> {
        TemplatedVisitor.visit_i64(v).map(JsonExpect::Equals)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<JsonExpect, E> {
        TemplatedVisitor.visit_u64(v).map(JsonExpect::Equals)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<JsonExpect, E> {
        TemplatedVisitor.visit_f64(v).map(JsonExpect::Equals)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<JsonExpect, E> {
        TemplatedVisitor.visit_str(v).map(JsonExpect::Equals)
    }

    fn visit_unit<E: de::Error>(self) -> Result<JsonExpect, E> {
        Ok(JsonExpect::Equals(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<JsonExpect, E> {
        Ok(JsonExpect::Equals(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<JsonExpect, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<JsonExpect, A::Error> {
        TemplatedVisitor.visit_seq(seq).map(JsonExpect::Equals)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonExpect, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Ok(JsonExpect::Equals(Value::Object(Default::default())));
        };
        if !OPERATORS.contains(&first.as_str()) {
            return plain_object(first, map).map(JsonExpect::Equals);
        }
        let mut ops = vec![operator(&first, &mut map, self.at)?];
        while let Some(OperatorKey(key)) = map.next_key()? {
            ops.push(operator(&key, &mut map, self.at)?);
        }
        if let Some(why) = inconsistency(&ops) {
            let at = self.at.map(|p| format!("{}: ", p.0)).unwrap_or_default();
            return Err(de::Error::custom(format!("{at}{why}")));
        }
        Ok(JsonExpect::Ops(ops))
    }
}

/// A key after an operator: another operator, checked as it is read so an error points
/// at it.
struct OperatorKey(String);

impl<'de> Deserialize<'de> for OperatorKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let key = String::deserialize(deserializer)?;
        if OPERATORS.contains(&key.as_str()) {
            return Ok(OperatorKey(key));
        }
        Err(de::Error::custom(format!(
            "`{key}` is not a JSON operator (one of {}); to compare with an object, write eq: {{ … }}{}",
            OPERATORS.join(", "),
            crate::error::hint(&key, OPERATORS)
        )))
    }
}

/// The rest of a plain object whose first key was `first`.
fn plain_object<'de, A: MapAccess<'de>>(first: String, mut map: A) -> Result<Value, A::Error> {
    let mut object = serde_json::Map::new();
    let mut key = Some(first);
    while let Some(name) = key {
        if OPERATORS.contains(&name.as_str()) {
            return Err(de::Error::custom(format!(
                "`{name}` is an operator, but this map's first key `{}` is not: write operators only, or eq: {{ … }} to compare with an object",
                object.keys().next().map_or("", String::as_str)
            )));
        }
        let Templated(value) = map.next_value()?;
        object.insert(name, value);
        key = map.next_key::<String>()?;
    }
    Ok(Value::Object(object))
}

/// The value of operator `key`, checked.
fn operator<'de, A: MapAccess<'de>>(
    key: &str,
    map: &mut A,
    at: Option<&JsonPointer>,
) -> Result<Op, A::Error> {
    let compare = |c| move |n: Number| Op::Compare(c, n.0);
    Ok(match key {
        "eq" => Op::Eq(map.next_value::<Templated>()?.0),
        "any" => {
            let values: Vec<Value> = map
                .next_value::<Vec<Templated>>()?
                .into_iter()
                .map(|t| t.0)
                .collect();
            if values.is_empty() {
                return Err(de::Error::custom(
                    "`any: []` accepts nothing: list at least one value",
                ));
            }
            Op::Any(values)
        }
        "regex" => Op::Regex(map.next_value()?),
        "exists" => Op::Exists(map.next_value()?),
        "len" => Op::Len(map.next_value()?),
        "lt" => compare(Compare::Lt)(map.next_value()?),
        "gt" => compare(Compare::Gt)(map.next_value()?),
        "le" => compare(Compare::Le)(map.next_value()?),
        "ge" => compare(Compare::Ge)(map.next_value()?),
        _ => {
            let other: JsonPointer = map.next_value()?;
            if at == Some(&other) {
                return Err(de::Error::custom(format!(
                    "{0}: `eq_pointer: {0}` compares the value with itself, which always holds",
                    other.0
                )));
            }
            Op::EqPointer(other)
        }
    })
}

/// Why the operators can never all hold, if they cannot: `exists: false` beside anything else, a
/// lower bound above an upper one, an `eq` value that is not among `any` or outside a bound.
fn inconsistency(ops: &[Op]) -> Option<String> {
    if let Some(why) = eq_conflict(ops) {
        return Some(why);
    }
    if ops.contains(&Op::Exists(false))
        && let Some(other) = ops.iter().find(|op| **op != Op::Exists(false))
    {
        return Some(format!(
            "`exists: false` cannot hold together with `{}`, which needs a value",
            key_of(other)
        ));
    }
    let bounds = ops.iter().filter_map(|op| match op {
        Op::Compare(c, n) => Some((*c, *n)),
        _ => None,
    });
    let (lower, upper): (Vec<_>, Vec<_>) =
        bounds.partition(|(c, _)| matches!(c, Compare::Gt | Compare::Ge));
    for (low, a) in &lower {
        for (high, b) in &upper {
            let empty = a > b || (a == b && (*low == Compare::Gt || *high == Compare::Lt));
            if empty {
                return Some(format!(
                    "no number is both {} {} and {} {}: `{}` and `{}` can never both hold",
                    low.symbol(),
                    threshold::trim(*a),
                    high.symbol(),
                    threshold::trim(*b),
                    low.key(),
                    high.key()
                ));
            }
        }
    }
    None
}

/// `eq` beside an operator its value fails: `{ eq: 1, any: [2, 3] }`, `{ eq: 5, lt: 3 }`.
fn eq_conflict(ops: &[Op]) -> Option<String> {
    let wanted = ops.iter().find_map(|op| match op {
        Op::Eq(v) => Some(v),
        _ => None,
    })?;
    for op in ops {
        let fails = match op {
            Op::Any(values) => !values.iter().any(|v| same_json(wanted, v)),
            Op::Compare(c, limit) => number(wanted).is_some_and(|n| !c.holds(n, *limit)),
            _ => false,
        };
        if fails {
            return Some(format!(
                "`eq: {}` cannot hold together with `{}`, which refuses that value",
                shown(wanted),
                key_of(op)
            ));
        }
    }
    None
}

fn key_of(op: &Op) -> &'static str {
    match op {
        Op::Eq(_) => "eq",
        Op::Any(_) => "any",
        Op::Regex(_) => "regex",
        Op::Exists(_) => "exists",
        Op::Compare(c, _) => c.key(),
        Op::Len(_) => "len",
        Op::EqPointer(_) => "eq_pointer",
    }
}

impl Serialize for JsonExpect {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let ops = match self {
            JsonExpect::Equals(value) => return value.serialize(serializer),
            JsonExpect::Ops(ops) => ops,
        };
        let mut map = serializer.serialize_map(Some(ops.len()))?;
        for op in ops {
            let key = key_of(op);
            match op {
                Op::Eq(v) => map.serialize_entry(key, v)?,
                Op::Any(v) => map.serialize_entry(key, v)?,
                Op::Regex(p) => map.serialize_entry(key, p.0.as_str())?,
                Op::Exists(b) => map.serialize_entry(key, b)?,
                Op::Compare(_, n) => map.serialize_entry(key, &super::len::written(*n))?,
                Op::EqPointer(p) => map.serialize_entry(key, &p.0)?,
                Op::Len(len) => map.serialize_entry(key, len)?,
            }
        }
        map.end()
    }
}

/// A pointer's verdict: `Ok(None)` holds, `Ok(Some(note))` holds with a warning (a graded
/// `len` past `warn`), `Err(why)` fails.
pub type Verdict = Result<Option<String>, Failure>;

impl JsonExpect {
    /// Judge `pointer` of `document`.
    pub fn judge(&self, pointer: &str, document: &Value) -> Verdict {
        let found = document.pointer(pointer);
        let ops = match self {
            JsonExpect::Equals(wanted) => {
                let found = found.ok_or_else(|| missing(pointer))?;
                return equal(pointer, found, wanted).map(|()| None);
            }
            JsonExpect::Ops(ops) => ops,
        };
        let Some(found) = found else {
            // Checked while parsing: `exists: false` stands alone.
            return if ops.contains(&Op::Exists(false)) {
                Ok(None)
            } else {
                Err(missing(pointer))
            };
        };
        let mut note = None;
        for op in ops {
            if let Some(warning) = judge_op(op, pointer, found, document)? {
                note = Some(warning);
            }
        }
        Ok(note)
    }
}

fn missing(pointer: &str) -> Failure {
    Failure(format!("{pointer} not found in the JSON body"))
}

fn equal(pointer: &str, found: &Value, wanted: &Value) -> Result<(), Failure> {
    if same_json(found, wanted) {
        Ok(())
    } else {
        Err(Failure(format!(
            "{pointer} = {}, expected {}",
            shown(found),
            shown(wanted)
        )))
    }
}

fn judge_op(op: &Op, pointer: &str, found: &Value, document: &Value) -> Verdict {
    let at = || format!("{pointer} = {}", shown(found));
    match op {
        Op::Eq(wanted) => equal(pointer, found, wanted)?,
        Op::Any(values) if values.iter().any(|v| same_json(found, v)) => {}
        Op::Any(values) => {
            let list: Vec<String> = values.iter().map(shown).collect();
            return Err(Failure(format!(
                "{}, expected one of {}",
                at(),
                list.join(", ")
            )));
        }
        Op::Regex(pattern) => {
            let text = match found {
                Value::String(s) => s.clone(),
                Value::Number(_) | Value::Bool(_) => found.to_string(),
                _ => {
                    return Err(Failure(format!(
                        "{}, expected text matching /{}/",
                        at(),
                        pattern.0.as_str()
                    )));
                }
            };
            if !pattern.0.is_match(&text) {
                return Err(Failure(format!(
                    "{}, expected text matching /{}/",
                    at(),
                    pattern.0.as_str()
                )));
            }
        }
        Op::Exists(true) => {}
        Op::Exists(false) => return Err(Failure(format!("{}, expected absent", at()))),
        Op::Compare(compare, limit) => {
            let wanted = format!("{} {}", compare.symbol(), threshold::trim(*limit));
            match number(found) {
                Some(n) if compare.holds(n, *limit) => {}
                Some(_) => return Err(Failure(format!("{}, expected {wanted}", at()))),
                None => return Err(Failure(format!("{}, expected a number {wanted}", at()))),
            }
        }
        Op::Len(len) => return len.judge(pointer, found),
        Op::EqPointer(other) => {
            let Some(theirs) = document.pointer(&other.0) else {
                return Err(Failure(format!(
                    "{} (eq_pointer of {pointer}) not found in the JSON body",
                    other.0
                )));
            };
            if !same_json(found, theirs) {
                return Err(Failure(format!(
                    "{}, expected {} = {}",
                    at(),
                    other.0,
                    shown(theirs)
                )));
            }
        }
    }
    Ok(None)
}

/// A number, or a string holding one (`"42"`), as APIs write counters both ways.
fn number(value: &Value) -> Option<f64> {
    value
        .as_f64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
        .filter(|n: &f64| n.is_finite())
}

/// Equal values, with numbers compared by value (`1` equals `1.0`) at any depth.
pub fn same_json(found: &Value, wanted: &Value) -> bool {
    match (found, wanted) {
        (Value::Number(a), Value::Number(b)) => same_number(a, b),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, x)| b.get(k).is_some_and(|y| same_json(x, y)))
        }
        _ => found == wanted,
    }
}

/// Numbers by value: two integers exactly (2^53 + 1 is not 2^53, as it would be as
/// floats), an integer and a float equal when the float is that whole number exactly,
/// two floats as floats.
fn same_number(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    let whole = |n: &serde_json::Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    let float_is = |f: Option<f64>, i: i128| {
        // 2^127 bounds every i64 and u64; `as` saturates beyond it, so check first.
        f.is_some_and(|f| f.fract() == 0.0 && f.abs() < 1.7e38 && f as i128 == i)
    };
    match (whole(a), whole(b)) {
        (Some(x), Some(y)) => x == y,
        (Some(x), None) => float_is(b.as_f64(), x),
        (None, Some(y)) => float_is(a.as_f64(), y),
        (None, None) => a.as_f64() == b.as_f64(),
    }
}

/// A value as JSON text, cut to 120 characters so a large array cannot flood a report.
pub(super) fn shown(value: &Value) -> String {
    const LIMIT: usize = 120;
    let text = value.to_string();
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<JsonExpect, String> {
        crate::values::parse_yaml(std::path::Path::new("t.yaml"), yaml).map_err(|e| e.message)
    }

    #[test]
    fn bounds_that_touch_are_allowed_and_crossed_ones_refused() {
        assert!(parse("{ ge: 5, le: 5 }").is_ok());
        assert!(parse("{ gt: 1, ge: 3, lt: 9 }").is_ok());
        assert!(
            parse("{ gt: 5, le: 5 }")
                .unwrap_err()
                .contains("no number is both > 5 and <= 5")
        );
    }

    #[test]
    fn plain_values_and_operator_maps_serialize_as_written() {
        for yaml in [
            "healthy",
            "[1, 2]",
            "{ db: ok }",
            "{ len: { min: 1, max: 3 }, regex: '^a' }",
            "{ len: { warn: 100, crit: 10, below: true } }",
            "{ eq_pointer: /b, exists: true, lt: 3 }",
        ] {
            let parsed = parse(yaml).unwrap();
            let again: JsonExpect =
                serde_json::from_value(serde_json::to_value(&parsed).unwrap()).unwrap();
            assert_eq!(parsed, again, "{yaml}");
        }
    }

    #[test]
    fn large_integers_compare_exactly() {
        let a: Value = serde_json::from_str("9007199254740993").unwrap();
        let b: Value = serde_json::from_str("9007199254740992").unwrap();
        assert!(!same_json(&a, &b));
        assert!(same_json(&a, &a.clone()));
        let f: Value = serde_json::from_str("9007199254740992.0").unwrap();
        assert!(!same_json(&a, &f));
        assert!(same_json(&b, &f));
        let max: Value = serde_json::from_str("18446744073709551615").unwrap();
        assert!(!same_json(&max, &serde_json::from_str("-1").unwrap()));
        assert!(same_json(&max, &max.clone()));
        assert!(same_json(
            &serde_json::json!(0.5),
            &serde_json::from_str("0.5").unwrap()
        ));
    }

    #[test]
    fn contradictory_operators_and_bad_pointer_escapes_are_refused() {
        let err = parse("{ eq: 1, any: [2, 3] }").unwrap_err();
        assert!(
            err.contains("`eq: 1` cannot hold together with `any`"),
            "{err}"
        );
        assert!(parse("{ eq: 2, any: [2, 3] }").is_ok());
        let err = parse("{ eq: 5, lt: 3 }").unwrap_err();
        assert!(
            err.contains("`eq: 5` cannot hold together with `lt`"),
            "{err}"
        );
        assert!(JsonPointer::parse("/a~0b~1c".into()).is_ok());
        let err = JsonPointer::parse("/a~2".into()).unwrap_err();
        assert!(err.contains("`~` at character 3 must be `~0`"), "{err}");
        assert!(JsonPointer::parse("/a~".into()).is_err());
    }

    #[test]
    fn numbers_compare_by_value_at_any_depth_and_long_values_are_cut() {
        let a = serde_json::json!({ "n": [1, { "m": 2 }] });
        let b = serde_json::json!({ "n": [1.0, { "m": 2.0 }] });
        assert!(same_json(&a, &b));
        assert!(!same_json(&a, &serde_json::json!({ "n": [1, { "m": 3 }] })));
        let long = Value::String("é".repeat(300));
        let cut = shown(&long);
        assert_eq!(cut.chars().count(), 121);
        assert!(cut.ends_with('…'));
    }
}
