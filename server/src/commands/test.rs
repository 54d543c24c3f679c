//! `warden test [DIR]`.

use std::path::Path;
use std::process::ExitCode;

pub fn run(dir: &Path) -> anyhow::Result<ExitCode> {
    let Some((policy, warnings)) = super::load_policy(dir)? else {
        return Ok(ExitCode::FAILURE);
    };
    super::print_diagnostics(&warnings, crate::cli::DiagnosticFormat::Human);
    let report = warden_engine::run_tests(&policy);
    for o in &report.outcomes {
        match &o.failure {
            None => println!("pass  {}  ({})", o.name, o.position),
            Some(why) => println!("FAIL  {}  ({})\n      {why}", o.name, o.position),
        }
    }
    let total = report.outcomes.len();
    let covered = report.rule_count - report.uncovered.len();
    println!();
    println!("{} passed, {} failed, {total} total", total - report.failed(), report.failed());
    println!("rule coverage: {covered}/{} rules fired in at least one test", report.rule_count);
    if !report.uncovered.is_empty() {
        println!("not exercised by any test: {}", report.uncovered.join(", "));
    }
    Ok(if report.all_passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
