//! The heap a compiled shaped set holds, and how long parse + check +
//! compile took, for README's compile figures:
//!
//! ```sh
//! cargo run --release -p warden-benches --example policy_memory -- 10000
//! ```
//!
//! Memory is the growth of the process's resident memory from before the
//! source text is generated to after the set is compiled and everything but
//! the `Policy` dropped (it keeps the checked AST, the compiled conditions,
//! the indexes and the text of its files); Linux only.

use std::process::ExitCode;
use std::time::Instant;

use warden_benches::shaped_set;

/// This process's resident memory in bytes (Linux: `VmRSS` in
/// `/proc/self/status`).
fn resident() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn main() -> ExitCode {
    let n = std::env::args().nth(1).and_then(|n| n.parse::<usize>().ok()).unwrap_or(10_000);
    let before = resident().unwrap_or(0);
    let sources = shaped_set(n);
    let text_bytes: usize = sources.iter().map(|s| s.text.len()).sum();
    let started = Instant::now();
    let policy = match warden_tests::compile(sources) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let took = started.elapsed();
    let held = resident().unwrap_or(0).saturating_sub(before);
    println!(
        "{n} rules: source {:.2} MB, parse + check + compile {:.0} ms, compiled set holds {:.1} MB",
        text_bytes as f64 / 1e6,
        took.as_secs_f64() * 1e3,
        held as f64 / 1e6
    );
    drop(policy);
    ExitCode::SUCCESS
}
