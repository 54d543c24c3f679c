//! Reading a request: one walk that refuses content fields, checks declared
//! types, and fills the slots rules read from. Two readers give the same
//! result (`engine/tests/read_agreement.rs` proves it on generated JSON):
//!
//! - [`value`]: over a `serde_json::Value` a library user built;
//! - [`bytes`]: straight from the request's bytes, in the same pass that
//!   parses them, with no `Value` built. The service and `warden eval` use
//!   it.
//!
//! Declared paths are resolved once, at compile time, into a trie whose
//! leaves are slot numbers; a decision never looks a field up by name.
//!
//! What a refused request is refused for, when it has several faults, is
//! fixed: text that is not one JSON document, a repeated key, or nesting past
//! the parser's limit (the first in the text) before anything else; then the
//! first content field; then the first nesting past [`DEFAULT_MAX_DEPTH`]
//! (whose inside is not searched); then the first type error; then the first
//! missing required field. "First" is document order.

use serde_json::{Map, Value};
use smallvec::SmallVec;
use warden_dsl::ast::{FieldPath, Literal, Presence, Type};

use crate::decision::{Rejection, RejectionKind};
use crate::forbidden::ForbiddenNames;

/// Default limit on how deeply a request may nest objects and arrays.
pub const DEFAULT_MAX_DEPTH: usize = 32;

/// Index of a declared field's value in a decision's slot array.
pub(crate) type Slot = u16;

pub(crate) mod bytes;
mod value;

/// A declared field's value in one request. Borrows from the request, from
/// the policy for defaults, or, for a string the request's bytes escaped
/// (`"gpt\u002d4"`), from the reading's arena: `Copy`, so filling, reading
/// and dropping a slot array costs no more than its size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum SlotValue<'a> {
    Absent,
    Str(&'a str),
    Num(f64),
    Bool(bool),
    List(StrList<'a>),
}

/// The value of an absent slot, to lend where a slot number is out of range.
pub(crate) static ABSENT: SlotValue<'static> = SlotValue::Absent;

/// A `list<string>` field's value: the request's own array when it was read
/// from a `Value`, the strings read when it was read from bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum StrList<'a> {
    /// Every element is a string (checked when it was read).
    Json(&'a [Value]),
    Read(&'a [&'a str]),
}

impl StrList<'_> {
    /// Whether one of the strings is `item`.
    pub(crate) fn contains(&self, item: &str) -> bool {
        match self {
            Self::Json(items) => items.iter().any(|i| i.as_str() == Some(item)),
            Self::Read(items) => items.contains(&item),
        }
    }

    fn to_json(self) -> Value {
        match self {
            Self::Json(items) => Value::Array(items.to_vec()),
            Self::Read(items) => Value::Array(items.iter().map(|i| Value::String((*i).to_owned())).collect()),
        }
    }
}

/// The slot `slot` of `slots`, absent when out of range.
#[inline]
pub(crate) fn slot_value<'s, 'a>(slots: &'s [SlotValue<'a>], slot: Slot) -> &'s SlotValue<'a> {
    slots.get(usize::from(slot)).unwrap_or(&ABSENT)
}

/// Slot arrays up to this size live on the stack.
pub(crate) type Slots<'a> = SmallVec<[SlotValue<'a>; 16]>;

#[derive(Debug)]
pub(crate) struct SlotSpec {
    pub(crate) path: String,
    pub(crate) ty: Type,
    pub(crate) required: bool,
    /// The default as JSON, so a defaulted value borrows like a sent one.
    pub(crate) default: Option<Value>,
}

/// One level of the declared paths: a key names a slot or a deeper level.
#[derive(Debug, Default)]
pub(crate) struct TrieNode {
    children: Vec<(Box<str>, Child)>,
}

#[derive(Debug)]
pub(crate) enum Child {
    Slot(Slot),
    Node(TrieNode),
}

impl TrieNode {
    #[inline]
    pub(crate) fn find(&self, key: &str) -> Option<&Child> {
        // Length and first byte first: most keys differ there, and the
        // full comparison (a `memcmp` call) runs for the one that matches.
        let (len, first) = (key.len(), key.as_bytes().first());
        self.children
            .iter()
            .find(|(k, _)| k.len() == len && k.as_bytes().first() == first && **k == *key)
            .map(|(_, c)| c)
    }

    fn insert(&mut self, segments: &[String], slot: Slot) {
        let Some((first, rest)) = segments.split_first() else {
            return;
        };
        let pos = self.children.iter().position(|(k, _)| **k == **first);
        if rest.is_empty() {
            if pos.is_none() {
                self.children.push((first.as_str().into(), Child::Slot(slot)));
            }
            return;
        }
        let idx = match pos {
            Some(i) => i,
            None => {
                self.children.push((first.as_str().into(), Child::Node(TrieNode::default())));
                self.children.len() - 1
            }
        };
        // The checker refuses a path that is both a value and a parent, so a
        // `Slot` here can only come from a set that skipped the checker; the
        // deeper path is then ignored rather than panicking.
        if let Some((_, Child::Node(n))) = self.children.get_mut(idx) {
            n.insert(rest, slot);
        }
    }
}

/// What a request may hold and where each declared value goes.
#[derive(Debug)]
pub(crate) struct InputSchema {
    pub(crate) slots: Vec<SlotSpec>,
    pub(crate) root: TrieNode,
    pub(crate) forbidden: ForbiddenNames,
    pub(crate) max_depth: usize,
}

impl InputSchema {
    pub(crate) fn new(fields: &[warden_dsl::FieldSpec], forbidden: &[String]) -> Self {
        let mut root = TrieNode::default();
        let mut slots = Vec::with_capacity(fields.len());
        for (i, f) in fields.iter().enumerate() {
            // `compile` refuses sets declaring more fields than a `Slot` can
            // number, so this never stops early for a compiled policy.
            let Ok(slot) = Slot::try_from(i) else { break };
            root.insert(f.path.segments(), slot);
            slots.push(SlotSpec {
                path: f.path.to_string(),
                ty: f.ty,
                required: matches!(f.presence, Presence::Required),
                default: match &f.presence {
                    Presence::Default(lit) => Some(literal_json(&lit.node)),
                    _ => None,
                },
            });
        }
        Self { slots, root, forbidden: ForbiddenNames::new(forbidden), max_depth: DEFAULT_MAX_DEPTH }
    }

    /// The slot of a declared path.
    pub(crate) fn slot_of(&self, path: &FieldPath) -> Option<Slot> {
        let mut node = &self.root;
        let (last, init) = path.segments().split_last()?;
        for seg in init {
            match node.find(seg)? {
                Child::Node(n) => node = n,
                Child::Slot(_) => return None,
            }
        }
        match node.find(last)? {
            Child::Slot(s) => Some(*s),
            Child::Node(_) => None,
        }
    }

    /// After a walk that found nothing to refuse: refuses a missing
    /// required field (the first declared), else fills in defaults. A
    /// refused request's slots are left as read, so nothing in them is a
    /// default the request did not send.
    pub(crate) fn finish<'a>(&'a self, slots: &mut Slots<'a>) -> Result<(), Rejection> {
        let missing =
            self.slots.iter().zip(slots.iter()).find(|(spec, value)| spec.required && **value == SlotValue::Absent);
        if let Some((spec, _)) = missing {
            return Err(Rejection::new(
                RejectionKind::MissingField { expected: expected_of(spec.ty) },
                spec.path.clone(),
            ));
        }
        for (spec, value) in self.slots.iter().zip(slots.iter_mut()) {
            if let (SlotValue::Absent, Some(default)) = (&*value, &spec.default) {
                // A default was type-checked by the checker against the
                // declared type, so `read` succeeds; were it not to, the
                // field simply stays absent.
                *value = read_value(spec.ty, default).unwrap_or(SlotValue::Absent);
            }
        }
        Ok(())
    }
}

/// Where a reader is in the request: a key of an object or an index of an
/// array.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// Renders segments as the engine names paths: keys joined by dots, indexes
/// in brackets (`metadata.messages[0].content`).
pub(crate) fn render_segments<'a>(segs: impl Iterator<Item = Seg<'a>>) -> String {
    let mut out = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

struct ReadError {
    expected: &'static str,
    /// The offending element, for lists.
    index: Option<usize>,
}

pub(crate) fn expected_of(ty: Type) -> &'static str {
    match ty {
        Type::String => "a string",
        Type::Bool => "a boolean",
        Type::Number => "a number",
        Type::StringList => "a list of strings",
    }
}

fn read_value(ty: Type, value: &Value) -> Result<SlotValue<'_>, ReadError> {
    let mismatch = || ReadError { expected: expected_of(ty), index: None };
    Ok(match (ty, value) {
        (_, Value::Null) => SlotValue::Absent,
        (Type::String, Value::String(s)) => SlotValue::Str(s),
        (Type::Bool, Value::Bool(b)) => SlotValue::Bool(*b),
        (Type::Number, Value::Number(n)) => SlotValue::Num(n.as_f64().ok_or_else(mismatch)?),
        (Type::StringList, Value::Array(items)) => {
            if let Some(i) = items.iter().position(|v| !v.is_string()) {
                return Err(ReadError { expected: "a string", index: Some(i) });
            }
            SlotValue::List(StrList::Json(items))
        }
        _ => return Err(mismatch()),
    })
}

/// A literal as the JSON a request would carry.
pub(crate) fn literal_json(lit: &Literal) -> Value {
    match lit {
        Literal::String(s) => Value::String(s.clone()),
        Literal::Number(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
        Literal::Bool(b) => Value::Bool(*b),
        Literal::List(items) => Value::Array(items.iter().map(|i| literal_json(&i.node)).collect()),
    }
}

/// Keeps only the declared fields of a request, for an audit record: nothing
/// undeclared is ever copied. Absent fields are left out.
pub(crate) fn declared_only(schema: &InputSchema, slots: &[SlotValue<'_>]) -> Map<String, Value> {
    let mut out = Map::new();
    for (spec, value) in schema.slots.iter().zip(slots) {
        let v = match value {
            SlotValue::Absent => continue,
            SlotValue::Str(s) => Value::String((*s).to_owned()),
            SlotValue::Num(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
            SlotValue::Bool(b) => Value::Bool(*b),
            SlotValue::List(items) => items.to_json(),
        };
        out.insert(spec.path.clone(), v);
    }
    out
}
