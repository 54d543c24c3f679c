//! Property: deciding arbitrary JSON against the default policies never
//! panics, with or without overrides, and `explain` agrees with `decide`.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use warden_dsl::SourceFile;
use warden_engine::{Overrides, Policy, PreparedOverrides};

static POLICY: LazyLock<Policy> = LazyLock::new(|| {
    let sources = vec![
        SourceFile::new("base.warden", include_str!("../../policies/base.warden")),
        SourceFile::new("models.warden", include_str!("../../policies/models.warden")),
        SourceFile::new("risk.warden", include_str!("../../policies/risk.warden")),
    ];
    match Policy::from_sources(sources) {
        Ok((p, _)) => p,
        Err(e) => panic!("default policies: {:?}", e.iter().map(ToString::to_string).collect::<Vec<_>>()),
    }
});

static OVERRIDES: LazyLock<PreparedOverrides> = LazyLock::new(|| {
    let o: Overrides = serde_json::from_str(r#"{"threshold": 10, "rules": {"approved_models": {"enabled": true}, "external_model": {"score": 5}}}"#)
        .unwrap_or_default();
    POLICY.prepare(&o)
});

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let plain = POLICY.decide(&input);
    let _ = POLICY.decide_with(&input, &OVERRIDES);
    let _ = POLICY.declared_fields(&input);
    let explained = POLICY.explain(&input, None);
    match (plain, explained) {
        (Ok(d), Ok(e)) => assert_eq!(d, e.decision),
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("decide and explain disagree: {a:?} vs {b:?}"),
    }
});
