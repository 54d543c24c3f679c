//! Decision cost with 10,000 customers holding overrides, against none:
//! the snapshot lookup plus `decide_with`, as `/v1/check` does it.
//!
//! Run: `cargo bench -p warden-benches --bench overrides`

#![allow(clippy::panic, clippy::indexing_slicing)] // benchmark harness: a broken fixture should stop the run loudly

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use uuid::Uuid;
use warden_benches::default_policy;
use warden_engine::{Overrides, Policy, RuleOverride};
use warden_server::live::Snapshot;
use warden_server::store::OverrideTables;

fn policy() -> Arc<Policy> {
    match default_policy() {
        Ok(p) => Arc::new(p),
        Err(e) => panic!("default policies: {e}"),
    }
}

fn bench(c: &mut Criterion) {
    let input = json!({"model": "gpt-4", "operation": "classify", "metadata": {"contains_personal_data": true, "is_external_model": true}});
    let ids: Vec<Uuid> = (0..10_000u128).map(Uuid::from_u128).collect();
    let mut tables = OverrideTables::default();
    tables
        .global
        .rules
        .insert("approved_models".into(), RuleOverride { enabled: Some(false), score: None, mode: None });
    for (i, id) in ids.iter().enumerate() {
        let mut o = Overrides { threshold: (i % 3 == 0).then_some(80), ..Overrides::default() };
        o.rules
            .insert("external_model".into(), RuleOverride { enabled: None, score: Some((i % 60) as i64), mode: None });
        // Three overrides each, none of which turns on a rule the baseline
        // doesn't evaluate: the difference measured is finding and applying
        // overrides, not deciding more rules.
        o.rules.insert("approved_models".into(), RuleOverride { enabled: Some(false), score: None, mode: None });
        o.rules.insert(
            "contains_personal_data".into(),
            RuleOverride { enabled: Some(true), score: Some(40 + (i % 50) as i64), mode: None },
        );
        tables.customers.insert(*id, o);
    }
    // As if each had been set for the rules served: bound, so they apply.
    tables.bind_all(&policy());
    let empty = Snapshot::build(policy(), OverrideTables::default(), 0);
    let full = Snapshot::build(policy(), tables.clone(), 0);
    let mut g = c.benchmark_group("overrides");
    g.bench_function("no_customer_overrides", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % ids.len();
            let (ov, _) = empty.for_customer(&ids[i]);
            black_box(empty.policy.decide_with(black_box(&input), ov).map(|d| d.risk_score).ok())
        })
    });
    g.bench_function("10000_customers_with_overrides", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i * 7919 + 1) % ids.len();
            let (ov, _) = full.for_customer(&ids[i]);
            black_box(full.policy.decide_with(black_box(&input), ov).map(|d| d.risk_score).ok())
        })
    });
    g.bench_function("build_snapshot_10000_customers", |b| {
        b.iter(|| black_box(Snapshot::build(policy(), tables.clone(), 0).customers.len()))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = bench }
criterion_main!(benches);
