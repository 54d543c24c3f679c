//! Reading a request from its bytes agrees with parsing it into a `Value`
//! and reading that, on arbitrary JSON text: the same decision, the same
//! rejection (code and path), the same syntax error, the same audit
//! record. The generated text repeats keys at any depth, spells content
//! field names the ways clients do, escapes keys and strings, nests past
//! the engine's depth limit and past the parser's, puts wrong types in
//! declared fields, and is sometimes cut short or not an object at all.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // tests fail loudly

use std::fmt::Write as _;

use proptest::prelude::*;
use warden_engine::json::{self, JsonError};
use warden_engine::{Overrides, Policy, RequestError, SourceFile};

const POLICY: &str = r#"
input {
  # A default declared before a required field: a refused request's record
  # must not name it.
  operation: string = "chat"
  model: string
  metadata.tier: string?
  metadata.tokens: number = 0
  metadata.pii: bool = false
  metadata.tags: list<string> = []
  metadata.deep.level.x: string?
}
rule a { description "d" when model == "gpt-4" score +10 reason a }
rule b { description "d" when metadata.tokens > 100 score +20 reason b }
rule c { description "d" when metadata.pii score +70 reason c }
rule d { description "d" when metadata.tags contains "pii" score +30 reason d }
rule e { description "d" when metadata.deep.level.x starts_with "g" deny reason e }
rule f { description "d" when metadata.tier in ["free", "gpt-4"] and operation == "chat" score +5 reason f }
"#;

fn policy() -> Policy {
    Policy::from_sources(vec![SourceFile::new("p.warden", POLICY)])
        .unwrap_or_else(|e| panic!("{:?}", e.iter().map(ToString::to_string).collect::<Vec<_>>()))
        .0
}

/// A JSON document as text is written: keys may repeat, strings may be
/// escaped, numbers are kept as written.
#[derive(Debug, Clone)]
enum Doc {
    Null,
    Bool(bool),
    Num(&'static str),
    Str(String, bool),
    Arr(Vec<Doc>),
    Obj(Vec<(String, bool, Doc)>),
}

impl Doc {
    fn write(&self, out: &mut String) {
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::Num(n) => out.push_str(n),
            Self::Str(s, escaped) => write_str(out, s, *escaped),
            Self::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Self::Obj(members) => {
                out.push('{');
                for (i, (k, escaped, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(out, k, *escaped);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// A JSON string; `escaped` writes every character as `\uXXXX` (surrogate
/// pairs beyond the basic plane), so the reader must unescape it.
fn write_str(out: &mut String, s: &str, escaped: bool) {
    out.push('"');
    for c in s.chars() {
        if escaped || c < ' ' || c == '"' || c == '\\' {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{u:04x}");
            }
        } else {
            out.push(c);
        }
    }
    out.push('"');
}

const KEYS: [&str; 22] = [
    "model",
    "operation",
    "metadata",
    "tier",
    "tokens",
    "pii",
    "tags",
    "deep",
    "level",
    "x",
    "wrap",
    "undeclared",
    "prompt",
    "Prompt",
    " messages\t",
    "ｐｒｏｍｐｔ",
    "pro\u{200B}mpt",
    "prompts",
    "content",
    "cl\u{e9}",
    "",
    "a\"b",
];
const NUMBERS: [&str; 10] =
    ["0", "-1", "2.5", "150", "1e3", "-0", "18446744073709551615", "-9223372036854775808", "1e400", "0.1e-2"];
const STRINGS: [&str; 8] = ["gpt-4", "free", "pii", "chat", "g", "", "caf\u{e9}", "line\nbreak"];

fn leaf() -> impl Strategy<Value = Doc> {
    prop_oneof![
        Just(Doc::Null),
        any::<bool>().prop_map(Doc::Bool),
        prop::sample::select(NUMBERS.to_vec()).prop_map(Doc::Num),
        (prop::sample::select(STRINGS.to_vec()), prop::bool::weighted(0.2))
            .prop_map(|(s, e)| Doc::Str(s.to_owned(), e)),
    ]
}

fn key() -> impl Strategy<Value = (String, bool)> {
    (prop::sample::select(KEYS.to_vec()), prop::bool::weighted(0.15)).prop_map(|(k, e)| (k.to_owned(), e))
}

fn doc() -> impl Strategy<Value = Doc> {
    leaf().prop_recursive(6, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Doc::Arr),
            // Keys drawn from a small pool: some objects repeat one.
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|m| Doc::Obj(m.into_iter().map(|((k, e), v)| (k, e, v)).collect())),
        ]
    })
}

/// `doc` inside `levels` arrays or objects: around the engine's limit (32)
/// and the parser's (127).
fn nested(doc: Doc, levels: usize, objects: bool) -> Doc {
    (0..levels).fold(doc, |d, _| if objects { Doc::Obj(vec![("wrap".into(), false, d)]) } else { Doc::Arr(vec![d]) })
}

/// A request: mostly a well-formed one with declared fields of the right
/// type, sometimes with arbitrary documents in their place or beside them.
fn request() -> impl Strategy<Value = Doc> {
    let declared = (
        prop::option::weighted(0.9, prop_oneof![4 => Just(Doc::Str("gpt-4".into(), false)), 1 => doc()]),
        prop::option::weighted(0.5, prop_oneof![3 => Just(Doc::Str("chat".into(), false)), 1 => doc()]),
        prop::option::weighted(0.5, prop_oneof![3 => Just(Doc::Num("150")), 1 => doc()]),
        prop::option::weighted(0.5, prop_oneof![3 => any::<bool>().prop_map(Doc::Bool), 1 => doc()]),
        prop::option::weighted(
            0.4,
            prop_oneof![
                3 => prop::collection::vec(
                    (prop::sample::select(STRINGS.to_vec()), prop::bool::weighted(0.2)).prop_map(|(s, e)| Doc::Str(s.into(), e)),
                    0..4
                ).prop_map(Doc::Arr),
                1 => doc()
            ],
        ),
        prop::option::weighted(0.3, prop_oneof![Just(Doc::Str("gpt".into(), false)), doc()]),
    );
    let extra = prop::collection::vec((key(), doc()), 0..3);
    let deep = prop::option::weighted(0.15, (prop_oneof![25usize..40, 120usize..132], any::<bool>(), doc()));
    (declared, extra, deep, prop::bool::weighted(0.03)).prop_map(
        |((model, op, tokens, pii, tags, x), extra, deep, shuffle)| {
            let mut meta = Vec::new();
            let mut root = Vec::new();
            if let Some(m) = model {
                root.push(("model".to_owned(), false, m));
            }
            if let Some(o) = op {
                root.push(("operation".to_owned(), false, o));
            }
            for (k, v) in [("tokens", tokens), ("pii", pii), ("tags", tags)] {
                if let Some(v) = v {
                    meta.push((k.to_owned(), false, v));
                }
            }
            if let Some(x) = x {
                let level = Doc::Obj(vec![("x".into(), false, x)]);
                meta.push(("deep".into(), false, Doc::Obj(vec![("level".into(), false, level)])));
            }
            for ((k, e), v) in extra {
                meta.push((k, e, v));
            }
            if let Some((levels, objects, inner)) = deep {
                meta.push(("wrap".into(), false, nested(inner, levels, objects)));
            }
            if shuffle {
                meta.reverse();
            }
            root.push(("metadata".to_owned(), false, Doc::Obj(meta)));
            Doc::Obj(root)
        },
    )
}

/// Request text, sometimes damaged: cut short, or with a byte inserted.
fn text() -> impl Strategy<Value = Vec<u8>> {
    let damage = prop::option::weighted(
        0.1,
        (any::<prop::sample::Index>(), prop::sample::select(vec![b'}', b',', b'"', b'x', b' ', 0xff])),
    );
    (prop_oneof![9 => request(), 1 => doc()], damage, any::<bool>()).prop_map(|(d, damage, cut)| {
        let mut s = String::new();
        d.write(&mut s);
        let mut bytes = s.into_bytes();
        if let Some((at, b)) = damage {
            let i = at.index(bytes.len() + 1);
            if cut {
                bytes.truncate(i);
            } else {
                bytes.insert(i, b);
            }
        }
        bytes
    })
}

/// What one reading decided, in comparable form.
type Outcome = Result<(bool, i64, String, Vec<(String, i64)>), (String, String)>;

fn outcome(d: Result<warden_engine::Decision<'_>, RequestError>) -> Outcome {
    match d {
        Ok(d) => Ok((
            d.allowed,
            d.risk_score,
            d.reason.to_owned(),
            d.contributions.iter().map(|c| (c.rule.to_owned(), c.score)).collect(),
        )),
        Err(RequestError::Rejected(r)) => Err((r.code().to_owned(), r.path)),
        Err(RequestError::Malformed(e)) => Err(("malformed".to_owned(), e.to_string())),
    }
}

/// The `Value` path: the strict parser, then the reader over the `Value`.
fn through_value(policy: &Policy, bytes: &[u8], overrides: Option<&Overrides>) -> Outcome {
    match json::parse(bytes) {
        Ok(v) => outcome(
            match overrides {
                Some(o) => policy.decide_with(&v, &policy.prepare(o)),
                None => policy.decide(&v),
            }
            .map_err(RequestError::Rejected),
        ),
        Err(e) => outcome(Err(match e.rejection() {
            Some(r) => RequestError::Rejected(r),
            None => RequestError::Malformed(e),
        })),
    }
}

fn agree(policy: &Policy, bytes: &[u8]) -> Result<(), TestCaseError> {
    let shown = String::from_utf8_lossy(bytes);
    let overrides = Overrides::from_json(br#"{"threshold": 25, "rules": {"c": {"score": 5}}}"#).unwrap();
    prop_assert_eq!(outcome(policy.decide_bytes(bytes)), through_value(policy, bytes, None), "{}", shown);
    let prepared = policy.prepare(&overrides);
    prop_assert_eq!(
        outcome(policy.decide_bytes_with(bytes, &prepared)),
        through_value(policy, bytes, Some(&overrides)),
        "with overrides: {}",
        shown
    );
    // The audit record: the same model, operation and declared fields.
    match (policy.decide_recorded_bytes(bytes, &prepared), json::parse(bytes)) {
        (Ok(from_bytes), Ok(v)) => {
            let from_value = policy.decide_recorded(&v, &prepared);
            prop_assert_eq!(&from_bytes.model, &from_value.model, "{}", shown);
            prop_assert_eq!(&from_bytes.operation, &from_value.operation, "{}", shown);
            prop_assert_eq!(&from_bytes.declared, &from_value.declared, "{}", shown);
            prop_assert_eq!(&from_bytes.outcome, &from_value.outcome, "{}", shown);
        }
        (Ok(from_bytes), Err(e)) => {
            // Refused while parsing: refused alike, naming nothing.
            prop_assert_eq!(from_bytes.outcome.map(|_| ()), Err(e.rejection().unwrap()), "{}", shown);
            prop_assert!(
                from_bytes.declared.is_empty() && from_bytes.model.is_none() && from_bytes.operation.is_none(),
                "{}",
                shown
            );
        }
        (Err(a), Err(b)) => prop_assert_eq!(a, b, "{}", shown),
        (Err(a), Ok(_)) => prop_assert!(false, "bytes refused what parses: {a} {shown}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, .. ProptestConfig::default() })]

    #[test]
    fn reading_bytes_agrees_with_reading_a_value(bytes in text()) {
        agree(&policy(), &bytes)?;
    }
}

#[test]
fn cases_at_the_edges_agree() {
    let policy = policy();
    let deep = |n: usize| format!(r#"{{"model": "m", "metadata": {{"x": {}1{}}}}}"#, "[".repeat(n), "]".repeat(n));
    let mut cases: Vec<String> = vec![
        r#"{"model": "gpt-4", "metadata": {"pii": true, "tokens": 150}}"#.into(),
        r#"{"model": "gpt\u002d4", "metadata": {"tags": ["p\u0069i"]}}"#.into(),
        r#"{"model": "gpt-4", "model": "x"}"#.into(),
        r#"{"model": "gpt-4", "metadata": {"pii": true, "p\u0069i": false}}"#.into(),
        r#"{"model": "gpt-4", "metadata": {"prompt": "x", "prompt": "y"}}"#.into(),
        r#"{"model": "gpt-4", "metadata": {"w": [{"k": 1, "k": 2}]}, "prompt": 1}"#.into(),
        r#"{"model": 4, "metadata": {"pii": "yes", "messages": []}}"#.into(),
        r#"{"model": "m", "metadata": "flat"}"#.into(),
        r#"{"model": "m", "metadata": {"deep": [1, {"prompt": 2}]}}"#.into(),
        r#"{"model": "m", "metadata": {"tags": ["a", 3, {"prompt": 1}]}}"#.into(),
        r#"{"model": "m", "metadata": {"tags": {"prompt": 1}}}"#.into(),
        r#"{"model": "m", "metadata": {"tokens": [{"content": 1}]}}"#.into(),
        r#"{"metadata": {}}"#.into(),
        r#"{"model": null}"#.into(),
        r#"[{"prompt": 1}]"#.into(),
        r#""text""#.into(),
        r#"{"model": "m"} trailing"#.into(),
        r#"{"model": "m", "metadata": {"tokens": 1e400}}"#.into(),
        "{\"model\": \"m\", \"\\u0000prompt\": 1}".into(),
        String::new(),
    ];
    for n in [30, 31, 32, 33, 126, 127, 128] {
        cases.push(deep(n));
        cases.push(format!(
            r#"{{"model": "m", "metadata": {{"x": {}{{"prompt": 1}}{}, "prompt": 1}}}}"#,
            "[".repeat(n),
            "]".repeat(n)
        ));
    }
    for case in &cases {
        if let Err(e) = agree(&policy, case.as_bytes()) {
            panic!("{e}");
        }
    }
    // And the edges are what they should be.
    let code = |text: &str| match policy.decide_bytes(text.as_bytes()) {
        Ok(_) => "decided".to_owned(),
        Err(RequestError::Rejected(r)) => format!("{} {}", r.code(), r.path),
        Err(RequestError::Malformed(JsonError::Syntax { .. })) => "syntax".to_owned(),
        Err(RequestError::Malformed(e)) => panic!("{e}"),
    };
    assert_eq!(code(&cases[2]), "duplicate_key model");
    assert_eq!(code(&cases[3]), "duplicate_key metadata.pii");
    assert_eq!(code(&cases[5]), "duplicate_key metadata.w[0].k");
    assert_eq!(code(&cases[6]), "forbidden_field metadata.messages");
    assert_eq!(code(&cases[7]), "type_mismatch metadata");
    assert_eq!(code(&cases[9]), "forbidden_field metadata.tags[2].prompt");
    assert_eq!(code(&cases[12]), "missing_field model");
    assert_eq!(code(&cases[14]), "not_an_object ");
    assert_eq!(code(&cases[16]), "syntax");
    // NUL is removed before names are compared (docs/language.md §3.5).
    assert_eq!(code(&cases[18]), "forbidden_field \0prompt");
    assert_eq!(code(&deep(30)), "decided");
    // The root is level 1, `metadata` 2, the first array 3: the 31st array
    // is the 33rd level.
    assert_eq!(code(&deep(31)), format!("too_deep metadata.x{}", "[0]".repeat(30)));
    assert_eq!(code(&deep(127)), "too_deep ");
}

#[test]
fn an_escaped_value_is_read_unescaped() {
    let policy = policy();
    let d = policy.decide_bytes(br#"{"model": "gpt\u002d4", "metadata": {"tags": ["\u0070ii"]}}"#).unwrap();
    assert_eq!(d.contributions.iter().map(|c| c.rule).collect::<Vec<_>>(), ["a", "d"]);
    let recorded =
        policy.decide_recorded_bytes(br#"{"model": "gpt\u002d4"}"#, &policy.prepare(&Overrides::default())).unwrap();
    assert_eq!(recorded.model.as_deref(), Some("gpt-4"));
}

#[test]
fn a_refused_request_records_only_what_it_sent() {
    // A default declared before a required field the request lacks: the
    // refusal's record names no operation, as the request named none.
    let src = SourceFile::new("p.warden", "input { operation: string = \"chat\"  model: string }\n");
    let policy = Policy::from_sources(vec![src]).map_err(|e| e.len()).unwrap().0;
    let prepared = policy.prepare(&Overrides::default());
    for body in [&b"{}"[..], br#"{"operation": null}"#] {
        let from_bytes = policy.decide_recorded_bytes(body, &prepared).unwrap();
        let value = json::parse(body).unwrap();
        let from_value = policy.decide_recorded(&value, &prepared);
        assert_eq!(from_bytes.outcome.as_ref().map_err(|r| r.code()).err(), Some("missing_field"));
        assert_eq!((&from_bytes.model, &from_bytes.operation), (&None, &None));
        assert_eq!((&from_value.model, &from_value.operation), (&None, &None));
    }
    let sent = policy.decide_recorded_bytes(br#"{"operation": "embed"}"#, &prepared).unwrap();
    assert_eq!(sent.operation.as_deref(), Some("embed"));
}
