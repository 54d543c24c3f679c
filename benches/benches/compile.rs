//! Parse + check + compile time for generated rule sets.
//!
//! Run: `cargo bench -p warden-benches --bench compile`

#![allow(clippy::panic, clippy::indexing_slicing)] // benchmark harness: a broken fixture should stop the run loudly

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use warden_benches::{generated_set, shaped_set};
use warden_engine::Policy;

fn bench_compile(c: &mut Criterion) {
    let mut g = c.benchmark_group("compile");
    for n in [100usize, 1000] {
        let sources = generated_set(n, 42);
        g.bench_function(format!("parse_check_compile_{n}_rules"), |b| {
            b.iter(|| black_box(Policy::from_sources(black_box(sources.clone())).is_ok()))
        });
    }
    // The compile target: 10,000 shaped rules.
    for n in [1000usize, 10_000] {
        let sources = shaped_set(n);
        g.bench_function(format!("parse_check_compile_shaped_{n}_rules"), |b| {
            b.iter(|| black_box(Policy::from_sources(black_box(sources.clone())).is_ok()))
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5)).sample_size(20)
}

criterion_group! { name = benches; config = config(); targets = bench_compile }
criterion_main!(benches);
