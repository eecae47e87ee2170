//! Where each part of a runbook is written: a step, its `name`, its `include`, each `needs`
//! entry, its `when` and its `undo` steps, read from the YAML parser's spans (never by
//! searching the text, where a comment or another value can hold the same words).
//!
//! The outline is read leniently (anything of the wrong shape is simply not located), so
//! it is there even when the steps themselves do not parse.

use super::load::Source;
use crate::error::ConfigError;
use crate::values::Text;
use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

/// A place in a runbook file.
#[derive(Clone, Debug)]
pub struct Spot {
    source: Rc<Source>,
    pub line: u64,
    pub column: u64,
}

impl Spot {
    fn new(source: &Rc<Source>, at: Location) -> Option<Spot> {
        (at.line() > 0 && at.column() > 0).then(|| Spot {
            source: Rc::clone(source),
            line: at.line(),
            column: at.column(),
        })
    }

    /// An error here, with the line quoted and a caret under the column.
    pub fn error(&self, message: &str) -> ConfigError {
        ConfigError::at(
            &self.source.label,
            &self.source.text,
            self.line,
            self.column,
            message,
        )
    }

    /// This place as seen from `from`: `line 3` in the same file, `other.yaml:3` elsewhere.
    pub fn seen_from(&self, from: Option<&Spot>) -> String {
        if from.is_some_and(|from| self.source.label == from.source.label) {
            format!("line {}", self.line)
        } else {
            format!("{}:{}", self.source.label.display(), self.line)
        }
    }
}

/// Where one step's parts are written.
#[derive(Clone, Debug, Default)]
pub struct StepSpots {
    /// The step itself (its first key).
    pub at: Option<Spot>,
    pub name: Option<Spot>,
    /// The name as written, when it is a plain value.
    pub name_text: Option<String>,
    pub include: Option<Spot>,
    /// Each `needs` entry, in order.
    pub needs: Vec<Option<Spot>>,
    pub when: Option<Spot>,
    /// The `undo:` value, and each undo step in order.
    pub undo_at: Option<Spot>,
    pub undo: Vec<StepSpots>,
    /// The steps of a `parallel:` group.
    pub parallel: Vec<StepSpots>,
}

impl StepSpots {
    /// The most precise place known: the name, else the step.
    pub fn best(&self) -> Option<&Spot> {
        self.name.as_ref().or(self.at.as_ref())
    }
}

/// The top-level keys, read leniently: the variables, and where each step is written.
#[derive(Deserialize)]
pub struct Outline {
    #[serde(default)]
    pub vars: BTreeMap<String, Text>,
    #[serde(default)]
    steps: Vec<Spanned<Node>>,
    #[serde(default)]
    on_failure: Vec<Spanned<Node>>,
}

impl Outline {
    /// The steps' places, one per list item of `steps`.
    pub fn steps(&self, source: &Rc<Source>) -> Vec<StepSpots> {
        self.steps.iter().map(|n| spots(source, n)).collect()
    }

    /// The places of the `on_failure` steps.
    pub fn on_failure(&self, source: &Rc<Source>) -> Vec<StepSpots> {
        self.on_failure.iter().map(|n| spots(source, n)).collect()
    }

    /// Where each list item of `steps` starts.
    pub fn starts_of_steps(&self) -> impl Iterator<Item = Location> + '_ {
        self.steps.iter().map(|n| n.referenced)
    }

    /// Where each list item of `on_failure` starts.
    pub fn starts_of_on_failure(&self) -> impl Iterator<Item = Location> + '_ {
        self.on_failure.iter().map(|n| n.referenced)
    }
}

fn spots(source: &Rc<Source>, node: &Spanned<Node>) -> StepSpots {
    let at = Spot::new(source, node.referenced);
    let Some(fields) = &node.value.0 else {
        return StepSpots {
            at,
            ..StepSpots::default()
        };
    };
    let spot = |s: &Location| Spot::new(source, *s);
    let (undo_at, undo) = match &fields.undo {
        Some(u) => (
            spot(&u.referenced),
            match &u.value {
                Undos::One(fields) => vec![field_spots(source, spot(&u.referenced), fields)],
                Undos::Many(nodes) => nodes.iter().map(|n| spots(source, n)).collect(),
            },
        ),
        None => (None, Vec::new()),
    };
    StepSpots {
        undo_at,
        undo,
        ..field_spots(source, at, fields)
    }
}

fn field_spots(source: &Rc<Source>, at: Option<Spot>, fields: &Fields) -> StepSpots {
    let spot = |s: &Location| Spot::new(source, *s);
    StepSpots {
        at,
        name: fields.name.as_ref().and_then(|n| spot(&n.referenced)),
        name_text: fields.name.as_ref().and_then(|n| n.value.0.clone()),
        include: fields.include.as_ref().and_then(|i| spot(&i.referenced)),
        needs: fields
            .needs
            .as_ref()
            .map(|n| n.0.iter().map(|e| spot(&e.referenced)).collect())
            .unwrap_or_default(),
        when: fields.when.as_ref().and_then(|w| spot(&w.referenced)),
        undo_at: None,
        undo: Vec::new(),
        parallel: fields
            .parallel
            .as_ref()
            .map(|p| p.0.iter().map(|n| spots(source, n)).collect())
            .unwrap_or_default(),
    }
}

/// A list item: a mapping's fields, or nothing for anything else.
struct Node(Option<Fields>);

/// The keys of a step that are located; every other key is ignored here.
#[derive(Deserialize)]
struct Fields {
    name: Option<Spanned<Scalar>>,
    include: Option<Spanned<IgnoredAny>>,
    needs: Option<List<Spanned<IgnoredAny>>>,
    when: Option<Spanned<IgnoredAny>>,
    parallel: Option<List<Spanned<Node>>>,
    undo: Option<Spanned<Undos>>,
}

/// A scalar's text, or nothing for a list or mapping.
struct Scalar(Option<String>);

/// A list's items, or none for anything else.
struct List<T>(Vec<T>);

/// `undo:` as one step or a list of steps.
enum Undos {
    One(Box<Fields>),
    Many(Vec<Spanned<Node>>),
}

/// Skip whatever is left of a list or mapping.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Every item of a list.
fn collect_seq<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(
    mut seq: A,
) -> Result<Vec<T>, A::Error> {
    let mut items = Vec::new();
    while let Some(item) = seq.next_element()? {
        items.push(item);
    }
    Ok(items)
}

/// A visitor's scalars, each giving `$out` (with `str`: strings too).
macro_rules! lenient_scalars {
    ($out:expr; str) => {
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($out)
        }
        lenient_scalars!($out);
    };
    ($out:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok($out)
        }
    };
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a step")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Node, A::Error> {
                let de = serde::de::value::MapAccessDeserializer::new(map);
                Ok(Node(Some(Fields::deserialize(de)?)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Node, A::Error> {
                drain_seq(seq).map(|()| Node(None))
            }
            lenient_scalars!(Node(None); str);
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a name")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            lenient_scalars!(Scalar(None));
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
                drain_seq(seq).map(|()| Scalar(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
                drain_map(map).map(|()| Scalar(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<List<T>, A::Error> {
                collect_seq(seq).map(List)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<List<T>, A::Error> {
                drain_map(map).map(|()| List(Vec::new()))
            }
            lenient_scalars!(List(Vec::new()); str);
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl<'de> Deserialize<'de> for Undos {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Undos;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a step or a list of steps")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Undos, A::Error> {
                let de = serde::de::value::MapAccessDeserializer::new(map);
                Ok(Undos::One(Box::new(Fields::deserialize(de)?)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Undos, A::Error> {
                collect_seq(seq).map(Undos::Many)
            }
            lenient_scalars!(Undos::Many(Vec::new()); str);
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outline(text: &str) -> (Rc<Source>, Outline) {
        let source = Rc::new(Source {
            label: "rb.yaml".into(),
            text: text.to_string(),
            dir: None,
        });
        let outline = crate::values::parse_yaml(&source.label, text).unwrap();
        (source, outline)
    }

    #[test]
    fn names_needs_includes_and_undos_are_located_by_the_parser() {
        let text = "# a, b and c.yaml are named here first\nsteps:\n  - name: a\n    load: {}\n    undo:\n      - { name: ua, load: {} }\n  - { name: b, needs: [x, a], load: {} }\n  - parallel:\n      - name: p\n        load: {}\n  - name: c\n    include: c.yaml\non_failure:\n  - name: f\n    when: \"x\"\n";
        let (source, outline) = outline(text);
        let steps = outline.steps(&source);
        let at = |s: &Option<Spot>| s.as_ref().map(|s| (s.line, s.column));
        assert_eq!(at(&steps[0].name), Some((3, 11)));
        assert_eq!(steps[0].name_text.as_deref(), Some("a"));
        assert_eq!(at(&steps[0].undo[0].name), Some((6, 17)));
        assert_eq!(
            steps[1].needs.iter().map(at).collect::<Vec<_>>(),
            [Some((7, 24)), Some((7, 27))]
        );
        assert_eq!(at(&steps[2].parallel[0].name), Some((9, 15)));
        assert_eq!(at(&steps[3].include), Some((12, 14)));
        assert_eq!(at(&outline.on_failure(&source)[0].when), Some((15, 11)));
    }

    #[test]
    fn anything_of_the_wrong_shape_is_simply_not_located() {
        let (source, outline) = outline(
            "steps:\n  - just text\n  - name: [1, 2]\n    needs: oops\n    undo: 3\n    parallel: { a: 1 }\n  - [1]\n",
        );
        let steps = outline.steps(&source);
        assert_eq!(steps.len(), 3);
        assert!(steps[0].name.is_none());
        assert!(steps[1].name.is_some() && steps[1].name_text.is_none());
        assert!(steps[1].needs.is_empty() && steps[1].undo.is_empty());
        assert!(steps[1].parallel.is_empty());
        assert_eq!(steps[2].at.as_ref().map(|s| s.line), Some(7));
    }
}
