//! Property: deciding arbitrary bytes against the default policies never
//! panics, with or without overrides; `explain` agrees with `decide`; and
//! `decide_recorded`, the decision service's path, agrees with
//! `decide_with` and records nothing undeclared; and reading the bytes
//! directly (`decide_bytes*`, `decide_recorded_bytes`) agrees with parsing
//! them into a `Value` first, refusals and syntax errors included.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use warden_engine::{Overrides, Policy, PreparedOverrides, RequestError};

#[path = "../../tests/default_policies.rs"]
mod default_policies;

static POLICY: LazyLock<Policy> = LazyLock::new(|| {
    let sources = default_policies::sources().unwrap_or_else(|e| panic!("reading the default policies: {e}"));
    match Policy::from_sources(sources) {
        Ok((p, _)) => p,
        Err(e) => panic!("default policies: {:?}", e.iter().map(ToString::to_string).collect::<Vec<_>>()),
    }
});

static OVERRIDES: LazyLock<PreparedOverrides> = LazyLock::new(|| {
    let o = Overrides::from_json(
        br#"{"threshold": 10, "rules": {"approved_models": {"enabled": true}, "external_model": {"score": 5}}}"#,
    )
    .unwrap_or_default();
    POLICY.prepare(&o)
});

fuzz_target!(|data: &[u8]| {
    let from_bytes = POLICY.decide_bytes(data);
    let recorded_bytes = POLICY.decide_recorded_bytes(data, &OVERRIDES);
    let parsed = warden_engine::json::parse(data);
    // Reading the bytes directly agrees with parsing, then reading.
    match &parsed {
        Ok(v) => {
            assert_eq!(
                from_bytes,
                POLICY.decide(v).map_err(RequestError::Rejected),
                "decide_bytes and decide disagree"
            );
            assert_eq!(
                POLICY.decide_bytes_with(data, &OVERRIDES),
                POLICY.decide_with(v, &OVERRIDES).map_err(RequestError::Rejected)
            );
            let by_value = POLICY.decide_recorded(v, &OVERRIDES);
            let Ok(by_bytes) = &recorded_bytes else { panic!("decide_recorded_bytes refused what parses") };
            assert_eq!((&by_bytes.outcome, &by_bytes.declared), (&by_value.outcome, &by_value.declared));
            assert_eq!((&by_bytes.model, &by_bytes.operation), (&by_value.model, &by_value.operation));
        }
        Err(e) => {
            let want = match e.rejection() {
                Some(r) => RequestError::Rejected(r),
                None => RequestError::Malformed(e.clone()),
            };
            assert_eq!(from_bytes.as_ref().err(), Some(&want), "decide_bytes and parse disagree");
        }
    }
    // Read as the service reads it: the strict parser, which must accept
    // exactly what serde_json accepts, less repeated keys.
    let input = match (parsed, serde_json::from_slice::<Value>(data)) {
        (Ok(strict), Ok(plain)) => {
            assert_eq!(strict, plain, "the strict parser reads a document differently");
            strict
        }
        (Err(warden_engine::json::JsonError::DuplicateKey { .. }), Ok(_)) => return,
        (Err(e), Ok(_)) => panic!("the strict parser refuses what serde_json accepts: {e}"),
        (Ok(_), Err(e)) => panic!("the strict parser accepts what serde_json refuses: {e}"),
        (Err(_), Err(_)) => return,
    };
    let plain = POLICY.decide(&input);
    let with = POLICY.decide_with(&input, &OVERRIDES);
    let explained = POLICY.explain(&input, None);
    match (&plain, explained) {
        (Ok(d), Ok(e)) => assert_eq!(*d, e.decision),
        (Err(a), Err(b)) => assert_eq!(*a, b),
        (a, b) => panic!("decide and explain disagree: {a:?} vs {b:?}"),
    }
    let recorded = POLICY.decide_recorded(&input, &OVERRIDES);
    assert_eq!(recorded.outcome, with, "decide_recorded and decide_with disagree");
    match POLICY.declared_fields(&input) {
        Ok(fields) => assert_eq!(recorded.declared, fields),
        Err(_) => assert!(recorded.declared.is_empty()),
    }
    // `model` and `operation` are recorded only as the request sent them.
    for (key, got) in [("model", recorded.model), ("operation", recorded.operation)] {
        if let Some(v) = got {
            assert_eq!(input.get(key).and_then(Value::as_str), Some(&*v), "`{key}` recorded but not sent");
        }
    }
});
