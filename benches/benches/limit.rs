//! Warden against the limit: the same decisions as Rust `if`s over a typed
//! struct (`warden_benches::baseline`), for the default policy and the
//! shaped sets of 2, 100, 1,000 and 10,000 rules, in one run. Each size is
//! measured from a prebuilt input (Warden: a `serde_json::Value`, and a
//! request already read against the policy, `Policy::read`; the baseline:
//! the typed struct) and from JSON text (Warden: the one-pass
//! reader of the bytes the service uses, `Policy::decide_bytes`; the
//! baseline: serde into borrowed fields).
//!
//! Run: `cargo bench -p warden-benches --bench limit`
//! Ratios to the baseline: `python3 benches/ratios.py` after the run.

#![allow(clippy::panic, clippy::indexing_slicing)] // benchmark harness: a broken fixture should stop the run loudly

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime};
use warden_benches::baseline::{self, Request, Wire};
use warden_benches::{default_policy, shaped_requests, shaped_set};
use warden_engine::Policy;

/// Benches one policy and its baseline over `requests` (cycling), from
/// prebuilt inputs and from JSON text.
fn bench_pair(
    g: &mut BenchmarkGroup<'_, WallTime>,
    policy: &Policy,
    decide: baseline::Decide,
    requests: &[serde_json::Value],
) {
    let texts: Vec<String> = requests.iter().map(ToString::to_string).collect();
    let wires: Vec<Wire<'_>> = texts.iter().map(|t| Wire::parse(t).unwrap_or_else(|e| panic!("{e}: {t}"))).collect();
    let typed: Vec<Request<'_>> = wires.iter().map(Wire::request).collect();
    let len = requests.len();
    g.bench_function("handwritten/prebuilt", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % len;
            black_box(decide(black_box(&typed[i])).score)
        })
    });
    g.bench_function("warden/prebuilt", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % len;
            black_box(policy.decide(black_box(&requests[i])).map(|d| d.risk_score).ok())
        })
    });
    // The engine's counterpart of the typed struct: requests already read
    // against the policy's declared fields (`Policy::read`).
    let read: Vec<_> = requests.iter().map(|r| policy.read(r).unwrap_or_else(|e| panic!("{e}: {r}"))).collect();
    g.bench_function("warden/read", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % len;
            black_box(black_box(&read[i]).decide().risk_score)
        })
    });
    g.bench_function("handwritten/json", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % len;
            black_box(Wire::parse(black_box(&texts[i])).map(|w| decide(&w.request()).score).ok())
        })
    });
    g.bench_function("warden/json", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % len;
            black_box(policy.decide_bytes(black_box(texts[i].as_bytes())).map(|d| d.risk_score).ok())
        })
    });
}

fn bench_default(c: &mut Criterion) {
    let policy = default_policy().unwrap_or_else(|e| panic!("default policies: {e}"));
    // The seed's request (examples/check.json).
    let seed: serde_json::Value = serde_json::from_str(include_str!("../../examples/check.json"))
        .unwrap_or_else(|e| panic!("examples/check.json: {e}"));
    let mut g = c.benchmark_group("limit/default");
    bench_pair(&mut g, &policy, baseline::decide_default, &[seed]);
    g.finish();
}

fn bench_shaped(c: &mut Criterion) {
    let requests = shaped_requests(64, 7);
    for (n, decide) in baseline::SHAPED {
        let policy = warden_tests::compile(shaped_set(n)).unwrap_or_else(|e| panic!("{n} rules: {e}"));
        let mut g = c.benchmark_group(format!("limit/shaped_{n}"));
        bench_pair(&mut g, &policy, decide, &requests);
        g.finish();
    }
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(50)
}

criterion_group! { name = benches; config = config(); targets = bench_default, bench_shaped }
criterion_main!(benches);
