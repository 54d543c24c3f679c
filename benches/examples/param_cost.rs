//! Decides the generated 1,000-rule set with parameters N times, with the
//! files' values or a customer's own, for counting instructions with
//! callgrind (repeatable on a noisy machine, unlike wall time):
//!
//! ```sh
//! cargo build --release -p warden-benches --example param_cost
//! for mode in files own; do for n in 0 20000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/param_cost $mode $n
//! done; done
//! ```
//!
//! (instructions at 20,000 − at 0) / 20,000 is the cost of one decision.

use std::hint::black_box;
use std::process::ExitCode;

use warden_benches::{generated_requests, generated_with_params};
use warden_engine::{Overrides, Policy};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<usize>().ok())) else {
        eprintln!("usage: param_cost files|own N");
        return ExitCode::FAILURE;
    };
    let (sources, own) = generated_with_params();
    let Ok((policy, _)) = Policy::from_sources(sources) else {
        eprintln!("the generated set does not compile");
        return ExitCode::FAILURE;
    };
    let overrides = match mode.as_str() {
        "own" => serde_json::from_value::<Overrides>(own).unwrap_or_default(),
        _ => Overrides::default(),
    };
    let prepared = policy.prepare(&overrides);
    let requests = generated_requests(64, 7);
    let mut blocked = 0usize;
    for i in 0..n {
        if let Some(r) = requests.get(i % requests.len()) {
            if let Ok(d) = policy.decide_with(black_box(r), &prepared) {
                blocked += usize::from(!d.allowed);
            }
        }
    }
    println!("{mode}: {n} decisions, {blocked} blocked");
    ExitCode::SUCCESS
}
