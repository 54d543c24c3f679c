//! Reading a request: one iterative walk over the JSON that refuses content
//! fields, checks declared types, and fills the slots rules read from.
//!
//! Declared paths are resolved once, at compile time, into a trie whose
//! leaves are slot numbers; a decision never looks a field up by name. The
//! walk uses an explicit stack, so hostile nesting can't overflow the thread's
//! stack: past the depth limit the request is rejected.

use serde_json::{Map, Value};
use smallvec::SmallVec;
use warden_dsl::ast::{FieldPath, Literal, Presence, Type};

use crate::decision::{Rejection, RejectionKind};
use crate::forbidden::ForbiddenNames;

/// Default limit on how deeply a request may nest objects and arrays.
pub const DEFAULT_MAX_DEPTH: usize = 32;

/// Index of a declared field's value in a decision's slot array.
pub(crate) type Slot = u16;

/// A declared field's value in one request. Borrows from the request, or from
/// the policy for defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum SlotValue<'a> {
    Absent,
    Str(&'a str),
    Num(f64),
    Bool(bool),
    List(&'a [Value]),
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

#[derive(Debug, Default)]
struct TrieNode {
    children: Vec<(Box<str>, Child)>,
}

#[derive(Debug)]
enum Child {
    Slot(Slot),
    Node(TrieNode),
}

impl TrieNode {
    fn find(&self, key: &str) -> Option<&Child> {
        self.children.iter().find(|(k, _)| &**k == key).map(|(_, c)| c)
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
    root: TrieNode,
    pub(crate) forbidden: ForbiddenNames,
    pub(crate) max_depth: usize,
}

#[derive(Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

enum Children<'a> {
    Object(serde_json::map::Iter<'a>),
    Array(std::iter::Enumerate<std::slice::Iter<'a, Value>>),
}

struct Frame<'a, 's> {
    children: Children<'a>,
    trie: Option<&'s TrieNode>,
    /// How this container was reached from its parent.
    seg: Option<Seg<'a>>,
    depth: usize,
}

fn render_path(frames: &[Frame<'_, '_>], last: Seg<'_>) -> String {
    let mut out = String::new();
    let segs = frames.iter().filter_map(|f| f.seg).chain(std::iter::once(last));
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

    /// Walks `input` once: refuses content fields anywhere, checks declared
    /// types, and fills `slots`. A content field wins over any other problem,
    /// since it decides how the attempt is audited; then nesting past the
    /// limit (whose inside is not searched); then type errors.
    pub(crate) fn extract<'a>(&'a self, input: &'a Value, slots: &mut Slots<'a>) -> Result<(), Rejection> {
        let Value::Object(root) = input else {
            return Err(Rejection::new(RejectionKind::NotAnObject, String::new()));
        };
        slots.clear();
        slots.resize(self.slots.len(), SlotValue::Absent);
        let mut type_error: Option<Rejection> = None;
        let mut too_deep: Option<Rejection> = None;
        let mut stack: SmallVec<[Frame<'a, 'a>; 8]> = SmallVec::new();
        stack.push(Frame { children: Children::Object(root.iter()), trie: Some(&self.root), seg: None, depth: 1 });
        while let Some(frame) = stack.last_mut() {
            let next = match &mut frame.children {
                Children::Object(it) => it.next().map(|(k, v)| (Seg::Key(k.as_str()), v)),
                Children::Array(it) => it.next().map(|(i, v)| (Seg::Index(i), v)),
            };
            let (trie, depth) = (frame.trie, frame.depth);
            let Some((seg, value)) = next else {
                stack.pop();
                continue;
            };
            let mut child_trie = None;
            if let Seg::Key(key) = seg {
                if self.forbidden.contains(key) {
                    return Err(Rejection::new(RejectionKind::ForbiddenField, render_path(&stack, seg)));
                }
                match trie.and_then(|t| t.find(key)) {
                    Some(Child::Slot(slot)) => match self.read(*slot, value) {
                        Ok(v) => {
                            if let Some(s) = slots.get_mut(usize::from(*slot)) {
                                *s = v;
                            }
                        }
                        Err(err) => {
                            if type_error.is_none() {
                                let path = match err.index {
                                    Some(i) => format!("{}[{i}]", render_path(&stack, seg)),
                                    None => render_path(&stack, seg),
                                };
                                type_error =
                                    Some(Rejection::new(RejectionKind::TypeMismatch { expected: err.expected }, path));
                            }
                        }
                    },
                    Some(Child::Node(node)) => match value {
                        Value::Object(_) => child_trie = Some(node),
                        Value::Null => {}
                        _ => {
                            if type_error.is_none() {
                                type_error = Some(Rejection::new(
                                    RejectionKind::TypeMismatch { expected: "an object" },
                                    render_path(&stack, seg),
                                ));
                            }
                        }
                    },
                    None => {}
                }
            }
            let children = match value {
                Value::Object(m) if !m.is_empty() => Children::Object(m.iter()),
                Value::Array(a) if !a.is_empty() => Children::Array(a.iter().enumerate()),
                _ => continue,
            };
            if depth >= self.max_depth {
                // Don't descend, but keep scanning the rest of the request:
                // a content field elsewhere must still win.
                if too_deep.is_none() {
                    too_deep = Some(Rejection::new(
                        RejectionKind::TooDeep { limit: self.max_depth },
                        render_path(&stack, seg),
                    ));
                }
                continue;
            }
            stack.push(Frame { children, trie: child_trie, seg: Some(seg), depth: depth + 1 });
        }
        if let Some(err) = too_deep.or(type_error) {
            return Err(err);
        }
        for (spec, value) in self.slots.iter().zip(slots.iter_mut()) {
            if *value != SlotValue::Absent {
                continue;
            }
            if spec.required {
                return Err(Rejection::new(
                    RejectionKind::MissingField { expected: expected_of(spec.ty) },
                    spec.path.clone(),
                ));
            }
            if let Some(default) = &spec.default {
                // A default was type-checked by the checker against the
                // declared type, so `read` succeeds; were it not to, the
                // field simply stays absent.
                *value = read_value(spec.ty, default).unwrap_or(SlotValue::Absent);
            }
        }
        Ok(())
    }

    fn read<'a>(&self, slot: Slot, value: &'a Value) -> Result<SlotValue<'a>, ReadError> {
        match self.slots.get(usize::from(slot)) {
            Some(spec) => read_value(spec.ty, value),
            None => Ok(SlotValue::Absent),
        }
    }
}

struct ReadError {
    expected: &'static str,
    /// The offending element, for lists.
    index: Option<usize>,
}

fn expected_of(ty: Type) -> &'static str {
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
            SlotValue::List(items)
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
            SlotValue::List(items) => Value::Array(items.to_vec()),
        };
        out.insert(spec.path.clone(), v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_keys_with_dots_and_indexes_in_brackets() {
        let frames = [
            Frame { children: Children::Array([].iter().enumerate()), trie: None, seg: None, depth: 1 },
            Frame {
                children: Children::Array([].iter().enumerate()),
                trie: None,
                seg: Some(Seg::Key("metadata")),
                depth: 2,
            },
            Frame {
                children: Children::Array([].iter().enumerate()),
                trie: None,
                seg: Some(Seg::Key("messages")),
                depth: 3,
            },
            Frame { children: Children::Array([].iter().enumerate()), trie: None, seg: Some(Seg::Index(0)), depth: 4 },
        ];
        assert_eq!(render_path(&frames, Seg::Key("content")), "metadata.messages[0].content");
        assert_eq!(render_path(&frames[..1], Seg::Key("prompt")), "prompt");
    }
}
