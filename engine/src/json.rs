//! Strict JSON: parsing that refuses an object repeating a key.
//!
//! RFC 8259 §4 says names within an object "SHOULD be unique" and leaves
//! what a parser does with a repeat open; serde_json keeps the last value.
//! For Warden that is a hole: in
//! `{"metadata": {"messages": [..]}, "metadata": {}}` the content field would
//! be dropped before the forbidden-field walk could see it, while another
//! reader of the same bytes (a proxy, the model's own API) might keep the
//! first. [`parse`] refuses every repeat instead, at any depth, and names
//! where it is. Use it for every JSON document Warden reads from outside:
//! decision requests, overrides files, admin API bodies.
//!
//! Keys are compared byte for byte after JSON unescaping: `"a"` and
//! `"\u0061"` are the same key, `"a"` and `"A"` are not. (Forbidden content
//! field names are matched more loosely; see `docs/language.md`.)
//!
//! No crate checks this for `serde_json::Value`, so the value is built here
//! by a small [`DeserializeSeed`] over serde_json's own parser: the syntax,
//! numbers, escapes and the nesting limit are still serde_json's.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Value};

use crate::decision::{Rejection, RejectionKind};
use crate::input::DEFAULT_MAX_DEPTH;

/// How deeply a document may nest arrays and objects: serde_json's
/// recursion limit (128) counts the level that fails, so 127 levels parse.
pub const MAX_NESTING: usize = 127;

/// Why a document was refused.
///
/// None of the messages quote a value from the document; a duplicate key's
/// path holds keys only, like a rejection's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Not JSON: a syntax error, an unterminated document, trailing text, a
    /// number out of range, an invalid escape.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// One-based line of the problem.
        line: usize,
        /// One-based column (in bytes) of the problem.
        column: usize,
        /// What was wrong, e.g. `expected value` or `trailing characters`.
        message: String,
    },
    /// An object gives the same key twice.
    #[error("key `{path}` appears more than once in the same object")]
    DuplicateKey {
        /// The repeated key with the path to it, in the engine's notation:
        /// `metadata.messages[0].content`.
        path: String,
    },
    /// Arrays and objects nest deeper than [`MAX_NESTING`] levels.
    #[error("the document nests arrays and objects deeper than {MAX_NESTING} levels")]
    TooDeep,
}

impl JsonError {
    /// The rejection a decision request gets for this error, audited like
    /// any other refused request: `duplicate_key` with the key's path, or
    /// `too_deep` (the same code the engine gives nesting past its own,
    /// lower, limit). `None` for a syntax error: that is not a request at
    /// all, and is answered as malformed JSON.
    pub fn rejection(&self) -> Option<Rejection> {
        match self {
            Self::Syntax { .. } => None,
            Self::DuplicateKey { path } => Some(Rejection::new(RejectionKind::DuplicateKey, path.clone())),
            Self::TooDeep => Some(Rejection::new(RejectionKind::TooDeep { limit: DEFAULT_MAX_DEPTH }, String::new())),
        }
    }
}

/// Parses one JSON document (surrounding whitespace allowed, nothing else)
/// into a [`Value`], refusing any object that repeats a key at any depth.
/// Object members keep their order (the workspace builds serde_json with
/// `preserve_order`).
///
/// ```
/// use warden_engine::json::{JsonError, parse};
///
/// assert!(parse(br#"{"model": "gpt-4", "metadata": {"a": [1, {"b": null}]}}"#).is_ok());
/// assert_eq!(
///     parse(br#"{"metadata": {"m": [{"content": 1, "content": 2}]}}"#),
///     Err(JsonError::DuplicateKey { path: "metadata.m[0].content".into() })
/// );
/// ```
///
/// # Errors
///
/// [`JsonError::Syntax`] for text that is not one JSON document,
/// [`JsonError::DuplicateKey`] for a repeated key, [`JsonError::TooDeep`]
/// past serde_json's nesting limit.
pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue { duplicate: &duplicate }.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    value.map_err(|e| match duplicate.into_inner() {
        Some(segments) => JsonError::DuplicateKey { path: render(segments) },
        None => classify(&e),
    })
}

pub(crate) fn classify(e: &serde_json::Error) -> JsonError {
    let text = e.to_string();
    // serde_json has no public code for this error; its message is pinned
    // by `nesting_past_the_limit_is_too_deep_not_a_syntax_error` below.
    if text.starts_with("recursion limit exceeded") {
        return JsonError::TooDeep;
    }
    let (line, column) = (e.line(), e.column());
    let suffix = format!(" at line {line} column {column}");
    let message = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
    JsonError::Syntax { line, column, message }
}

/// A step on the path to a duplicate key.
enum Segment {
    Key(String),
    Index(usize),
}

/// Segments are collected innermost first, as the error travels outwards.
fn render(mut segments: Vec<Segment>) -> String {
    segments.reverse();
    let mut out = String::new();
    for seg in segments {
        match seg {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&k);
            }
            Segment::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// Builds a [`Value`] like serde_json's own `Deserialize` impl, except that
/// a repeated key fails. The path to the repeat is recorded in `duplicate`
/// as the error unwinds (each enclosing object or array adds its step), so
/// the well-formed case pays for no path bookkeeping at all.
#[derive(Clone, Copy)]
struct StrictValue<'c> {
    duplicate: &'c RefCell<Option<Vec<Segment>>>,
}

impl StrictValue<'_> {
    fn add_step(&self, step: impl FnOnce() -> Segment) {
        if let Some(path) = self.duplicate.borrow_mut().as_mut() {
            path.push(step());
        }
    }
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity; serde_json's own impl maps them the
        // same way should a deserializer produce one.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        loop {
            match seq.next_element_seed(self) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => return Ok(Value::Array(items)),
                Err(e) => {
                    let index = items.len();
                    self.add_step(|| Segment::Index(index));
                    return Err(e);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            // One hash lookup per key, as serde_json's own `insert` does.
            let slot = match map.entry(key) {
                Entry::Vacant(slot) => slot,
                Entry::Occupied(taken) => {
                    *self.duplicate.borrow_mut() = Some(vec![Segment::Key(taken.key().clone())]);
                    return Err(de::Error::custom("duplicate key"));
                }
            };
            match access.next_value_seed(self) {
                Ok(value) => {
                    slot.insert(value);
                }
                Err(e) => {
                    self.add_step(|| Segment::Key(slot.key().clone()));
                    return Err(e);
                }
            }
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // tests fail loudly

    use serde_json::json;

    use super::*;

    fn duplicate(text: &str) -> Option<String> {
        match parse(text.as_bytes()) {
            Err(JsonError::DuplicateKey { path }) => Some(path),
            _ => None,
        }
    }

    #[test]
    fn well_formed_documents_parse_exactly_as_serde_json_does() {
        for text in [
            r#"{"model": "gpt-4", "operation": "classify", "metadata": {"a": [1, -2, 3.5, 1e300, true, null, "x"]}}"#,
            r#"[{"a": 1}, {"a": 2}, [], {}]"#,
            r#""just a string""#,
            "18446744073709551615",
            "-9223372036854775808",
            r#"  {"é\u00e9": "\ud83d\ude00"}  "#,
            r#"{"b": 1, "a": 2}"#,
        ] {
            let ours = parse(text.as_bytes()).unwrap();
            let theirs: Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours, theirs, "{text}");
            assert_eq!(ours.to_string(), theirs.to_string(), "order and number forms are kept: {text}");
        }
    }

    #[test]
    fn a_repeated_key_at_the_top_level_is_refused() {
        let issue = r#"{"model":"gpt-4","operation":"classify","metadata":{"messages":[{"content":"x"}]},"metadata":{"intent":"chat"}}"#;
        assert_eq!(duplicate(issue).as_deref(), Some("metadata"));
        assert_eq!(duplicate(r#"{"a": 1, "b": 2, "a": 1}"#).as_deref(), Some("a"));
    }

    #[test]
    fn a_repeated_key_in_a_nested_object_is_refused_with_its_path() {
        assert_eq!(
            duplicate(r#"{"metadata": {"x": 1, "flag": true, "flag": false}}"#).as_deref(),
            Some("metadata.flag")
        );
        assert_eq!(duplicate(r#"{"a": {"b": {"c": {"d": 1, "d": {}}}}}"#).as_deref(), Some("a.b.c.d"));
    }

    #[test]
    fn a_repeated_key_inside_an_array_element_is_refused_with_its_index() {
        let text = r#"{"metadata": {"messages": [{"role": "user"}, {"content": "x", "content": "y"}]}}"#;
        assert_eq!(duplicate(text).as_deref(), Some("metadata.messages[1].content"));
        assert_eq!(duplicate(r#"[[], [0, {"k": 1, "k": 1}]]"#).as_deref(), Some("[1][1].k"));
    }

    #[test]
    fn keys_differing_only_in_case_are_different_keys() {
        assert_eq!(parse(br#"{"prompt": 1, "Prompt": 2, "PROMPT": 3}"#).unwrap().as_object().unwrap().len(), 3);
    }

    #[test]
    fn keys_equal_after_unescaping_are_the_same_key() {
        assert_eq!(duplicate(r#"{"a": 1, "\u0061": 2}"#).as_deref(), Some("a"));
        assert_eq!(duplicate(r#"{"m": {"é": 1, "\u00e9": 2}}"#).as_deref(), Some("m.é"));
        assert_eq!(duplicate(r#"{"a\/b": 1, "a/b": 2}"#).as_deref(), Some("a/b"));
    }

    #[test]
    fn the_same_key_in_sibling_objects_is_not_a_repeat() {
        let v = parse(br#"{"a": {"k": 1}, "b": {"k": 2}, "c": [{"k": 3}, {"k": 4}]}"#).unwrap();
        assert_eq!(v["c"][1]["k"], json!(4));
    }

    #[test]
    fn syntax_errors_say_where_and_what() {
        match parse(b"{\n  \"a\": 1,\n  \"b\" 2\n}") {
            Err(JsonError::Syntax { line, column, message }) => {
                assert_eq!((line, column), (3, 7));
                assert_eq!(message, "expected `:`");
            }
            other => panic!("{other:?}"),
        }
        for bad in ["", "{", r#"{"a": 1} x"#, "[1,]", r#"{"a": "\q"}"#, "1e400", "{1: 2}"] {
            assert!(matches!(parse(bad.as_bytes()), Err(JsonError::Syntax { .. })), "{bad:?}");
        }
    }

    #[test]
    fn a_syntax_error_after_a_repeat_still_reports_the_repeat() {
        assert_eq!(duplicate(r#"{"a": 1, "a": 2"#).as_deref(), Some("a"));
    }

    #[test]
    fn nesting_past_the_limit_is_too_deep_not_a_syntax_error() {
        let deep = format!("{}{}", "[".repeat(MAX_NESTING + 1), "]".repeat(MAX_NESTING + 1));
        assert_eq!(parse(deep.as_bytes()), Err(JsonError::TooDeep));
        let ok = format!("{}{}", "[".repeat(MAX_NESTING), "]".repeat(MAX_NESTING));
        assert!(parse(ok.as_bytes()).is_ok());
        let objects = format!("{}1{}", r#"{"a":"#.repeat(200), "}".repeat(200));
        assert_eq!(parse(objects.as_bytes()), Err(JsonError::TooDeep));
    }

    #[test]
    fn duplicates_and_nesting_become_rejections_and_syntax_errors_do_not() {
        let dup = parse(br#"{"m": {"k": 1, "k": 2}}"#).unwrap_err().rejection().unwrap();
        assert_eq!((dup.code(), dup.path.as_str()), ("duplicate_key", "m.k"));
        let deep = JsonError::TooDeep.rejection().unwrap();
        assert_eq!((deep.code(), deep.path.as_str()), ("too_deep", ""));
        assert_eq!(parse(b"{").unwrap_err().rejection(), None);
    }

    #[test]
    fn messages_never_quote_a_value() {
        let err = parse(br#"{"secret": "my text", "secret": "more text"}"#).unwrap_err();
        assert!(!err.to_string().contains("text"), "{err}");
        let err = parse(br#"{"a": "my secret text" x}"#).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
