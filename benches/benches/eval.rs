//! Decision latency: the default policies, and generated 100- and
//! 1,000-rule sets, with and without per-customer overrides.
//!
//! Run: `cargo bench -p warden-benches --bench eval`

#![allow(clippy::panic, clippy::indexing_slicing)] // benchmark harness: a broken fixture should stop the run loudly

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use warden_benches::{default_policy, generated_requests, generated_set};
use warden_engine::{Overrides, Policy};

fn compile(sources: Vec<warden_dsl::SourceFile>) -> Policy {
    match Policy::from_sources(sources) {
        Ok((p, _)) => p,
        Err(e) => {
            panic!("benchmark policy does not compile: {:?}", e.iter().map(ToString::to_string).collect::<Vec<_>>())
        }
    }
}

fn bench_default(c: &mut Criterion) {
    let policy = default_policy().unwrap_or_else(|e| panic!("default policies: {e}"));
    let mut g = c.benchmark_group("decide/default");
    let cases = [
        (
            "allowed",
            json!({"model": "gpt-4", "operation": "classify", "metadata": {"intent": "spam_detection", "contains_personal_data": false, "is_external_model": false}}),
        ),
        (
            "blocked_both",
            json!({"model": "gpt-4", "operation": "classify", "metadata": {"intent": "spam_detection", "contains_personal_data": true, "is_external_model": true}}),
        ),
        ("empty_metadata", json!({"model": "gpt-4", "operation": "classify", "metadata": {}})),
        (
            "forbidden_field",
            json!({"model": "gpt-4", "operation": "classify", "metadata": {"messages": [{"content": "x"}]}}),
        ),
        // Keys outside ASCII take the normalising path of forbidden-name
        // matching (docs/language.md §3.5).
        (
            "non_ascii_keys",
            json!({"model": "gpt-4", "operation": "classify", "metadata": {"intent": "x", "clé": 1, "ключ": 2, "キー": 3}}),
        ),
    ];
    for (name, input) in &cases {
        g.bench_function(*name, |b| b.iter(|| black_box(policy.decide(black_box(input)).is_ok())));
    }
    let overrides: Overrides = match serde_json::from_value(
        json!({"threshold": 80, "rules": {"external_model": {"score": 30}, "approved_models": {"enabled": true}}}),
    ) {
        Ok(o) => o,
        Err(e) => panic!("{e}"),
    };
    let prepared = policy.prepare(&overrides);
    for (name, input) in &cases[..2] {
        g.bench_function(format!("{name}_with_overrides"), |b| {
            b.iter(|| black_box(policy.decide_with(black_box(input), &prepared).is_ok()))
        });
    }
    let text = cases[1].1.to_string();
    g.bench_function("blocked_both_including_json_parse", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_str(black_box(&text)).unwrap_or_default();
            black_box(policy.decide(&v).map(|d| d.risk_score).ok())
        })
    });
    // What `/v1/check` does: one pass over the bytes, refusing repeated
    // keys, building no `Value`.
    g.bench_function("blocked_both_from_bytes", |b| {
        b.iter(|| black_box(policy.decide_bytes(black_box(text.as_bytes())).map(|d| d.risk_score).ok()))
    });
    g.finish();
}

fn bench_generated(c: &mut Criterion) {
    let requests = generated_requests(64, 7);
    for n in [100usize, 1000] {
        let policy = compile(generated_set(n, 42));
        let overrides = Overrides {
            threshold: Some(120),
            rules: (0..n)
                .step_by(n / 10)
                .map(|i| {
                    (
                        format!("r{i}"),
                        warden_engine::RuleOverride { enabled: Some(i % 20 != 0), score: Some(15), mode: None },
                    )
                })
                .collect(),
            ..Overrides::default()
        };
        let prepared = policy.prepare(&overrides);
        let mut g = c.benchmark_group(format!("decide/generated_{n}"));
        // Each iteration decides one request, cycling through 64 of them.
        g.bench_function("no_overrides", |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) % requests.len();
                black_box(policy.decide(black_box(&requests[i])).map(|d| d.risk_score).ok())
            })
        });
        g.bench_function("with_overrides", |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) % requests.len();
                black_box(policy.decide_with(black_box(&requests[i]), &prepared).map(|d| d.risk_score).ok())
            })
        });
        g.finish();
    }
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(50)
}

criterion_group! { name = benches; config = config(); targets = bench_default, bench_generated }
criterion_main!(benches);
