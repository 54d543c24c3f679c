//! Decides the `limit` bench's requests N times, for counting instructions
//! with callgrind (repeatable on a noisy machine, unlike wall time) and
//! seeing where they go (README, "Where the time goes"):
//!
//! ```sh
//! cargo build --release -p warden-benches --example limit_cost
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!   target/release/examples/limit_cost 1000 json 20000
//! callgrind_annotate --inclusive=yes /tmp/cg.out | head -40
//! ```
//!
//! `SET` is `default` (the shipped policies, the seed's request) or a
//! shaped set's size (2, 100, 1000, 10000); `INPUT` is `prebuilt` (a
//! `serde_json::Value`), `read` (a request already read against the
//! policy, `Policy::read`) or `json` (the request's bytes, read as the
//! service reads them). (Instructions at N − at 0) / N is the cost of one decision.

use std::hint::black_box;
use std::process::ExitCode;

use warden_benches::{default_policy, shaped_requests, shaped_set};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(set), Some(input), Some(n)) =
        (args.get(1), args.get(2), args.get(3).and_then(|n| n.parse::<usize>().ok()))
    else {
        eprintln!("usage: limit_cost default|2|100|1000|10000 prebuilt|read|json N");
        return ExitCode::FAILURE;
    };
    let (policy, requests) = if set == "default" {
        let Ok(seed) = serde_json::from_str::<serde_json::Value>(include_str!("../../examples/check.json")) else {
            eprintln!("examples/check.json is not JSON");
            return ExitCode::FAILURE;
        };
        (default_policy().ok(), vec![seed])
    } else {
        let size = set.parse::<usize>().unwrap_or(0);
        (warden_tests::compile(shaped_set(size)).ok(), shaped_requests(64, 7))
    };
    let Some(policy) = policy else {
        eprintln!("the set does not compile");
        return ExitCode::FAILURE;
    };
    let texts: Vec<String> = requests.iter().map(ToString::to_string).collect();
    let read: Vec<_> = requests.iter().filter_map(|r| policy.read(r).ok()).collect();
    let mut blocked = 0usize;
    for i in 0..n {
        let at = i % requests.len();
        let allowed = match input.as_str() {
            "prebuilt" => requests.get(at).and_then(|r| policy.decide(black_box(r)).ok()).map(|d| d.allowed),
            "read" => read.get(at).map(|r| black_box(r).decide().allowed),
            _ => texts.get(at).and_then(|t| policy.decide_bytes(black_box(t.as_bytes())).ok()).map(|d| d.allowed),
        };
        blocked += usize::from(allowed == Some(false));
    }
    println!("{set} {input}: {n} decisions, {blocked} blocked");
    ExitCode::SUCCESS
}
