//! Reading a request straight from its bytes: one pass of serde_json's
//! parser that fills the declared slots, refuses content fields and repeated
//! keys, enforces the depth limit and checks types, without building a
//! `serde_json::Value` of the body.
//!
//! The pass is a tree of [`DeserializeSeed`]s driven by serde_json's own
//! parser, so the syntax, numbers, escapes and the nesting limit are
//! serde_json's, exactly as for [`crate::json::parse`]. Strings are borrowed
//! from the body; the few the body escaped are unescaped into a bump arena
//! that lives as long as the reading, so a slot is a plain `Copy` borrow
//! either way and the slot array needs no dropping. Undeclared subtrees are still
//! parsed (a syntax error or a repeated key anywhere refuses the body) and
//! their keys still checked against the content field names; nothing in them
//! is kept.
//!
//! It agrees with parsing into a `Value` and reading that
//! ([`super::value`]) on every input, refusals included:
//! `engine/tests/read_agreement.rs` proves it on generated JSON text, the
//! reference proptest (`tests/reference.rs`) on generated policies, and the
//! `decide` fuzz target on arbitrary bytes.

use std::fmt;

use bumpalo::Bump;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use smallvec::SmallVec;
use warden_dsl::ast::Type;

use super::{Child, InputSchema, Seg, SlotValue, Slots, TrieNode, render_segments};
use crate::decision::{Rejection, RejectionKind};
use crate::json::{self, JsonError};

mod keys;
mod slot;

use keys::{KeySeed, Keys};
use slot::SlotSeed;

/// Why a body gave no slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadFailure {
    /// Refused while parsing: not JSON, a repeated key, nesting past the
    /// parser's limit.
    Json(JsonError),
    /// Parsed, and refused by the declared schema.
    Rejected(Rejection),
}

/// The path to the value being read, as a chain through the readers' stack
/// frames: nothing is allocated unless a refusal needs to name it.
#[derive(Clone, Copy)]
struct Path<'p> {
    parent: Option<&'p Path<'p>>,
    /// `None` at the root.
    seg: Option<Seg<'p>>,
}

impl<'p> Path<'p> {
    const ROOT: Path<'static> = Path { parent: None, seg: None };

    fn child(&'p self, seg: Seg<'p>) -> Path<'p> {
        Path { parent: Some(self), seg: Some(seg) }
    }

    fn render(&self) -> String {
        let mut segs: SmallVec<[Seg<'_>; 8]> = SmallVec::new();
        let mut at = Some(self);
        while let Some(p) = at {
            segs.extend(p.seg);
            at = p.parent;
        }
        render_segments(segs.into_iter().rev())
    }
}

/// What one pass has found so far. Only the first of each kind of refusal
/// is kept: that is the one reported.
struct State<'s, 'x, 'de> {
    schema: &'s InputSchema,
    /// Holds the strings the body escaped, unescaped.
    arena: &'de Bump,
    slots: &'x mut Slots<'de>,
    not_an_object: bool,
    forbidden: Option<Rejection>,
    too_deep: Option<Rejection>,
    type_error: Option<Rejection>,
    /// The path of a repeated key; the parse stops there.
    duplicate: Option<String>,
}

impl State<'_, '_, '_> {
    fn type_error(&mut self, expected: &'static str, path: &Path<'_>) {
        if self.type_error.is_none() {
            self.type_error = Some(Rejection::new(RejectionKind::TypeMismatch { expected }, path.render()));
        }
    }

    fn too_deep(&mut self, path: &Path<'_>) {
        if self.too_deep.is_none() {
            self.too_deep =
                Some(Rejection::new(RejectionKind::TooDeep { limit: self.schema.max_depth }, path.render()));
        }
    }

    /// Whether a container holding something, whose parent is at
    /// `parent_depth`, is past the limit; records it if so.
    fn past_limit(&mut self, checked: bool, parent_depth: usize, path: &Path<'_>) -> bool {
        let past = checked && parent_depth >= self.schema.max_depth;
        if past {
            self.too_deep(path);
        }
        past
    }
}

impl InputSchema {
    /// Reads `bytes` (one JSON document) into `slots` in one pass; the same
    /// result as [`crate::json::parse`] followed by
    /// [`InputSchema::extract`], refusals included.
    pub(crate) fn read<'a>(
        &'a self,
        bytes: &'a [u8],
        arena: &'a Bump,
        slots: &mut Slots<'a>,
    ) -> Result<(), ReadFailure> {
        slots.clear();
        slots.resize(self.slots.len(), SlotValue::Absent);
        let mut state = State {
            schema: self,
            arena,
            slots,
            not_an_object: false,
            forbidden: None,
            too_deep: None,
            type_error: None,
            duplicate: None,
        };
        let walk =
            Walk { st: &mut state, path: Path::ROOT, role: Role::Root, parent_depth: 0, checked: true, first_of: None };
        // A body that is UTF-8 throughout (as every JSON text must be,
        // RFC 8259 §8.1) is checked once, in one fast pass, rather than
        // string by string; one that is not goes to the byte reader, so it
        // fails exactly where `json::parse` fails.
        let parsed = match std::str::from_utf8(bytes) {
            Ok(text) => {
                let mut de = serde_json::Deserializer::from_str(text);
                walk.deserialize(&mut de).and_then(|()| de.end())
            }
            Err(_) => {
                let mut de = serde_json::Deserializer::from_slice(bytes);
                walk.deserialize(&mut de).and_then(|()| de.end())
            }
        };
        if let Err(e) = parsed {
            // Not a request at all: nothing read from it is kept.
            state.slots.clear();
            return Err(ReadFailure::Json(match state.duplicate.take() {
                Some(path) => JsonError::DuplicateKey { path },
                None => json::classify(&e),
            }));
        }
        if state.not_an_object {
            return Err(ReadFailure::Rejected(Rejection::new(RejectionKind::NotAnObject, String::new())));
        }
        if let Some(r) = state.forbidden.or(state.too_deep).or(state.type_error) {
            return Err(ReadFailure::Rejected(r));
        }
        self.finish(slots).map_err(ReadFailure::Rejected)
    }
}

/// What a value is to the schema.
#[derive(Clone, Copy)]
enum Role<'s> {
    /// The whole request: must be an object.
    Root,
    /// A level of declared paths: an object, or null.
    Declared(&'s TrieNode),
    /// Nothing declared here: only names, keys and depth are checked.
    Free,
}

/// Reads one value that is not a declared field's.
struct Walk<'r, 'p, 's, 'x, 'de> {
    st: &'r mut State<'s, 'x, 'de>,
    path: Path<'p>,
    role: Role<'s>,
    /// The depth of the container holding this value (0 for the root).
    parent_depth: usize,
    /// Whether names and depth are checked (not inside a subtree already
    /// past the depth limit, which is not searched).
    checked: bool,
    /// Set on an array's first element: the array's path, so the array is
    /// found past the depth limit only when it holds something.
    first_of: Option<(&'p Path<'p>, usize)>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_, '_, '_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(mut self, deserializer: D) -> Result<(), D::Error> {
        self.checked = enter_element(self.st, self.first_of.take(), self.checked);
        deserializer.deserialize_any(self)
    }
}

/// Called as an array's element is about to be read (so the array holds
/// something): when it is the first, records the array as past the depth
/// limit if it is. Returns whether the element is checked.
fn enter_element(st: &mut State<'_, '_, '_>, first_of: Option<(&Path<'_>, usize)>, checked: bool) -> bool {
    match first_of {
        Some((array, parent_depth)) => !st.past_limit(checked, parent_depth, array) && checked,
        None => checked,
    }
}

impl Walk<'_, '_, '_, '_, '_> {
    /// A scalar, or null, where this value is.
    fn scalar(self, null: bool) {
        match self.role {
            Role::Root => self.st.not_an_object = true,
            Role::Declared(_) if !null => self.st.type_error("an object", &self.path),
            Role::Declared(_) | Role::Free => {}
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_, '_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.scalar(false);
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.scalar(false);
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.scalar(false);
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.scalar(false);
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.scalar(false);
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.scalar(true);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Walk { st, path, role, parent_depth, mut checked, .. } = self;
        match role {
            Role::Root => {
                // Refused whatever it holds: only the parse goes on.
                st.not_an_object = true;
                checked = false;
            }
            Role::Declared(_) => st.type_error("an object", &path),
            Role::Free => {}
        }
        let depth = parent_depth + 1;
        let mut i = 0usize;
        loop {
            let seed = Walk {
                st: &mut *st,
                path: path.child(Seg::Index(i)),
                role: Role::Free,
                parent_depth: depth,
                checked,
                first_of: (i == 0).then_some((&path, parent_depth)),
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            if i == 0 {
                // Past the limit, nothing inside this array is searched.
                checked = checked && parent_depth < st.schema.max_depth;
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Walk { st, path, role, parent_depth, mut checked, .. } = self;
        let mut trie = match role {
            Role::Root => Some(&st.schema.root),
            Role::Declared(node) => Some(node),
            Role::Free => None,
        };
        let depth = parent_depth + 1;
        let mut keys = Keys::default();
        let mut first = true;
        while let Some(key) = map.next_key_seed(KeySeed(st.arena))? {
            if std::mem::take(&mut first) && st.past_limit(checked, parent_depth, &path) {
                checked = false;
                trie = None;
            }
            if !keys.insert(key) {
                st.duplicate = Some(path.child(Seg::Key(key)).render());
                return Err(de::Error::custom("duplicate key"));
            }
            let child = path.child(Seg::Key(key));
            if checked && st.forbidden.is_none() && st.schema.forbidden.contains(key) {
                st.forbidden = Some(Rejection::new(RejectionKind::ForbiddenField, child.render()));
            }
            match trie.and_then(|t| t.find(key)) {
                Some(Child::Slot(slot)) => {
                    let ty = st.schema.slots.get(usize::from(*slot)).map_or(Type::String, |s| s.ty);
                    let seed = SlotSeed { st: &mut *st, path: child, slot: *slot, ty, parent_depth: depth };
                    map.next_value_seed(seed)?;
                }
                found => {
                    let role = match found {
                        Some(Child::Node(node)) => Role::Declared(node),
                        _ => Role::Free,
                    };
                    let seed = Walk { st: &mut *st, path: child, role, parent_depth: depth, checked, first_of: None };
                    map.next_value_seed(seed)?;
                }
            }
        }
        Ok(())
    }
}
