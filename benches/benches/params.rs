//! What a customer's own parameter values cost per decision, against the
//! same customer deciding with the files' values (issue target: at most
//! 20% more). Rules reading a parameter the customer sets are compiled
//! again with its values and tested in full, outside the index.
//!
//! Run: `cargo bench -p warden-benches --bench params`

#![allow(clippy::panic, clippy::indexing_slicing)] // benchmark harness: a broken fixture should stop the run loudly

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use warden_benches::{generated_requests, generated_with_params};
use warden_dsl::SourceFile;
use warden_engine::{Overrides, Policy};

fn compile(sources: Vec<SourceFile>) -> Policy {
    match Policy::from_sources(sources) {
        Ok((p, _)) => p,
        Err(e) => {
            panic!("benchmark policy does not compile: {:?}", e.iter().map(ToString::to_string).collect::<Vec<_>>())
        }
    }
}

fn overrides(v: Value) -> Overrides {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
}

/// Decides `requests` in turn with the overrides prepared from `file` and
/// from `own`: the files' values, then the customer's.
fn compare(c: &mut Criterion, group: &str, policy: &Policy, requests: &[Value], own: &Overrides) {
    let files = policy.prepare(&Overrides::default());
    let own = policy.prepare(own);
    let mut g = c.benchmark_group(group);
    for (name, prepared) in [("files_values", &files), ("own_values", &own)] {
        g.bench_function(name, |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) % requests.len();
                black_box(policy.decide_with(black_box(&requests[i]), prepared).map(|d| d.risk_score).ok())
            })
        });
    }
    g.finish();
}

/// The default policies plus three rules reading parameters.
fn bench_default(c: &mut Criterion) {
    let mut sources = warden_tests::default_policies::sources().unwrap_or_else(|e| panic!("{e}"));
    sources.push(SourceFile::new(
        "params.warden",
        r#"
param approved: list<string> = ["gpt-4", "gpt-4o", "claude-3"]
param block_external: bool = true
param strict_operations: list<string> = ["generate"]
rule unapproved { description "d" when not (model in param.approved) score +60 reason unapproved }
rule external { description "d" when param.block_external and metadata.is_external_model deny reason external }
rule strict_operation { description "d" when operation in param.strict_operations score +20 reason strict }
"#,
    ));
    let policy = compile(sources);
    let requests = vec![
        json!({"model": "gpt-4", "operation": "classify", "metadata": {"intent": "spam_detection"}}),
        json!({"model": "llama-3", "operation": "generate", "metadata": {"contains_personal_data": true}}),
        json!({"model": "claude-3", "operation": "summarize", "metadata": {"is_external_model": true}}),
        json!({"model": "gpt-4o", "operation": "generate", "metadata": {}}),
    ];
    let own = overrides(json!({"params": {
        "approved": ["gpt-4", "llama-3", "mistral-7b", "gemini-1", "claude-3", "claude-3.5"],
        "block_external": false,
        "strict_operations": ["generate", "summarize"],
    }}));
    compare(c, "params/default_policy", &policy, &requests, &own);
}

/// The generated 1,000-rule set plus 20 rules reading parameters.
fn bench_generated(c: &mut Criterion) {
    let (sources, own) = generated_with_params();
    let policy = compile(sources);
    compare(c, "params/generated_1000", &policy, &generated_requests(64, 7), &overrides(own));
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(50)
}

criterion_group! { name = benches; config = config(); targets = bench_default, bench_generated }
criterion_main!(benches);
